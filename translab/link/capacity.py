"""Capacity-limited FIFO links with a drop-tail queue: a constant rate, or a mahimahi trace.

Semantics follow libwebrtc's SimulatedNetwork capacity queue (``link_capacity``,
``packet_overhead``, ``queue_length_packets``; the queue comes first, then loss and the delay line)
and mahimahi's mm-link (one 1500-byte delivery opportunity per trace line, droptail queue).

Shared invariants
-----------------
* FIFO in input order: packet k starts after packet k-1 has left and not before it arrives;
  ``exit_k >= max(t_k, exit_{k-1})``. Output times are the moments the last bit leaves.
* Wire size of a packet = ``size + overhead_bytes``.
* The queue holds every accepted packet that has not fully left (the one on the wire included).
  Drop-tail: a packet arriving at ``t`` is dropped iff the queue is full at ``t``: it holds
  ``queue_packets`` packets already, or its bytes plus this packet's wire size exceed
  ``queue_bytes``. No limit (``None``) = infinite queue, never drops. Drops happen only then.
* No randomness. Input times should be non-decreasing (true when the queue precedes the delay
  line, the order of :class:`~translab.link.chain.LinkChain` profiles use).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from pathlib import Path

import numpy as np

from translab.errors import ConfigError
from translab.link.base import as_inputs, check_nonnegative, check_positive, identity, read_trace_lines

MAHIMAHI_OPPORTUNITY_BYTES = 1500


def _check_limit(field: str, value: "int | None") -> "int | None":
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(field, value, "an integer >= 1, or omitted for an unlimited queue")
    return int(value)


class _DropTail:
    """The queue's contents as (exit_s, wire_bytes) of accepted packets not yet fully gone."""

    def __init__(self, queue_packets: "int | None", queue_bytes: "int | None") -> None:
        self.queue_packets = _check_limit("capacity.queue_packets", queue_packets)
        self.queue_bytes = _check_limit("capacity.queue_bytes", queue_bytes)
        if self.queue_packets is not None and self.queue_bytes is not None:
            raise ConfigError("capacity.queue_bytes", queue_bytes, "omitted when queue_packets is given (one limit)")
        self.q: deque[tuple[float, int]] = deque()
        self.bytes = 0

    @property
    def limited(self) -> bool:
        return self.queue_packets is not None or self.queue_bytes is not None

    def clear(self) -> None:
        self.q.clear()
        self.bytes = 0

    def drain(self, t: float) -> None:
        """Remove packets that have fully left by time ``t``."""
        q = self.q
        while q and q[0][0] <= t:
            self.bytes -= q.popleft()[1]

    def full_for(self, wire: int) -> bool:
        """Would a packet of ``wire`` bytes arriving now be dropped?"""
        if self.queue_packets is not None:
            return len(self.q) >= self.queue_packets
        if self.queue_bytes is not None:
            return self.bytes + wire > self.queue_bytes
        return False

    def push(self, exit_s: float, wire: int) -> None:
        self.q.append((exit_s, wire))
        self.bytes += wire


class CapacityQueue:
    """A link of ``rate_kbps`` (kbit/s) with ``overhead_bytes`` added per packet and an optional
    drop-tail limit ``queue_packets`` or ``queue_bytes`` (see the module docstring).

    Transmission time of a packet = ``(size + overhead_bytes) * 8 / (rate_kbps * 1000)`` seconds.
    """

    def __init__(
        self,
        rate_kbps: float,
        overhead_bytes: int = 0,
        queue_packets: "int | None" = None,
        queue_bytes: "int | None" = None,
    ) -> None:
        self.rate_kbps = check_positive("capacity.rate_kbps", rate_kbps, "kbit/s")
        self.overhead_bytes = int(check_nonnegative("capacity.overhead_bytes", overhead_bytes, "bytes"))
        self._queue = _DropTail(queue_packets, queue_bytes)
        self._last_exit_s = -np.inf

    @property
    def queue_packets(self) -> "int | None":
        """Drop-tail limit in packets (None: no packet limit)."""
        return self._queue.queue_packets

    @property
    def queue_bytes(self) -> "int | None":
        """Drop-tail limit in bytes, overhead included (None: no byte limit)."""
        return self._queue.queue_bytes

    def reset(self) -> None:
        """Empty the queue and the link."""
        self._queue.clear()
        self._last_exit_s = -np.inf

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Accepted packets with the time their last bit leaves the link (seconds)."""
        t, s = as_inputs(send_s, size)
        n = t.size
        if n == 0:
            return identity(0), t.copy()
        wire = s + self.overhead_bytes
        tx = wire * (8.0 / (self.rate_kbps * 1000.0))
        # FIFO recursion exit_k = max(t_k, exit_{k-1}) + tx_k, as a tight loop: the closed form
        # with cumulative sums is faster but rounds differently from one-packet-at-a-time calls.
        last = self._last_exit_s
        out = []
        for tk, txk in zip(t.tolist(), tx.tolist()):
            last = (tk if tk > last else last) + txk
            out.append(last)
        exit_s = np.asarray(out, dtype=np.float64)
        q = self._queue
        if not q.limited:
            self._last_exit_s = float(exit_s[-1])
            return identity(n), exit_s
        first_drop = self._first_drop(t, wire, exit_s)
        if first_drop is None:
            for e, w in zip(exit_s.tolist(), wire.tolist()):
                q.push(e, w)
            q.drain(float(t[-1]))
            self._last_exit_s = float(exit_s[-1])
            return identity(n), exit_s
        # Accept the prefix in bulk, then walk the rest packet by packet.
        keep_idx = list(range(first_drop))
        keep_exit = exit_s[:first_drop].tolist()
        for e, w in zip(keep_exit, wire[:first_drop].tolist()):
            q.push(e, w)
        last = float(exit_s[first_drop - 1]) if first_drop > 0 else self._last_exit_s
        tl, wl, txl = t.tolist(), wire.tolist(), tx.tolist()
        for k in range(first_drop, n):
            tk = tl[k]
            q.drain(tk)
            if q.full_for(wl[k]):
                continue
            last = (tk if tk > last else last) + txl[k]
            q.push(last, wl[k])
            keep_idx.append(k)
            keep_exit.append(last)
        q.drain(float(t[-1]))
        self._last_exit_s = last
        return np.asarray(keep_idx, dtype=np.int64), np.asarray(keep_exit, dtype=np.float64)

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[exit_s]`` or ``[]`` if the queue is full."""
        q = self._queue
        wire = int(size) + self.overhead_bytes
        if q.limited:
            q.drain(t_s)
            if q.full_for(wire):
                return []
        last = self._last_exit_s
        last = (t_s if t_s > last else last) + wire * (8.0 / (self.rate_kbps * 1000.0))
        self._last_exit_s = last
        if q.limited:
            q.push(last, wire)
        return [last]

    def _first_drop(self, t: np.ndarray, wire: np.ndarray, exit_s: np.ndarray) -> "int | None":
        """Index of the first packet the limit would drop if all before it were accepted."""
        q = self._queue
        n = t.size
        prev_exit = np.fromiter((e for e, _ in q.q), dtype=np.float64, count=len(q.q))
        prev_wire = np.fromiter((w for _, w in q.q), dtype=np.int64, count=len(q.q))
        m = prev_exit.size
        all_exit = np.concatenate([prev_exit, exit_s])
        before = m + np.arange(n)  # packets ahead of packet k, gone or not
        gone = np.minimum(np.searchsorted(all_exit, t, side="right"), before)
        if q.queue_packets is not None:
            bad = (before - gone) >= q.queue_packets
        else:
            cw = np.concatenate([[0], np.cumsum(np.concatenate([prev_wire, wire]))])
            in_queue = cw[before] - cw[gone]
            bad = in_queue + wire > q.queue_bytes
        hits = np.flatnonzero(bad)
        return int(hits[0]) if hits.size else None

    def __repr__(self) -> str:
        return (
            f"CapacityQueue(rate_kbps={self.rate_kbps!r}, overhead_bytes={self.overhead_bytes!r}, "
            f"queue_packets={self.queue_packets!r}, queue_bytes={self.queue_bytes!r})"
        )


def read_mahimahi_trace(path: "str | Path") -> np.ndarray:
    """Read a mahimahi link trace: one integer millisecond timestamp per line, non-decreasing, each
    a 1500-byte delivery opportunity; the last timestamp (> 0) is the period the trace wraps at.
    Returns float64 milliseconds. ConfigError with the line number for a malformed line."""
    p = Path(path)
    lines = read_trace_lines(p, "capacity.trace")
    out = np.empty(len(lines), dtype=np.float64)
    prev = 0
    for i, s in enumerate(lines):
        if not s.isdigit():
            raise ConfigError(f"line {i + 1}", s, "a whole number of milliseconds >= 0", where=str(p))
        v = int(s)
        if v < prev:
            raise ConfigError(f"line {i + 1}", s, f"a timestamp >= the previous one ({prev} ms)", where=str(p))
        out[i] = v
        prev = v
    return _check_opportunities(out, str(p))


def _check_opportunities(ms: np.ndarray, where: str = "capacity.trace") -> np.ndarray:
    if ms.size == 0 or not (ms[-1] > 0):
        raise ConfigError("capacity.trace", where, "at least one line, with a last timestamp > 0 ms")
    if np.any(np.diff(ms) < 0) or ms[0] < 0:
        raise ConfigError("capacity.trace", where, "non-decreasing timestamps >= 0 ms")
    return ms


class TraceCapacity:
    """A link whose delivery opportunities come from a mahimahi trace (``trace``: path, or an array
    of millisecond timestamps). Each opportunity carries up to 1500 bytes; the trace wraps with
    period = its last timestamp; trace time 0 is simulation time 0 s.

    As in mahimahi, a packet can use an opportunity at or after the time it arrives, is served FIFO,
    may span several opportunities, and bytes an opportunity has left after a packet completes go
    to the next queued packet if it has already arrived (otherwise they are wasted).
    Drop-tail limits as in :class:`CapacityQueue` (module docstring).
    """

    def __init__(
        self,
        trace: "str | Path | np.ndarray",
        overhead_bytes: int = 0,
        queue_packets: "int | None" = None,
        queue_bytes: "int | None" = None,
    ) -> None:
        if isinstance(trace, (str, Path)):
            self.path: Path | None = Path(trace)
            self.opportunities_ms = read_mahimahi_trace(trace)
        else:
            self.path = None
            self.opportunities_ms = _check_opportunities(np.asarray(trace, dtype=np.float64).reshape(-1))
        self.period_ms = float(self.opportunities_ms[-1])
        self._ms: list[float] = self.opportunities_ms.tolist()
        self.overhead_bytes = int(check_nonnegative("capacity.overhead_bytes", overhead_bytes, "bytes"))
        self._queue = _DropTail(queue_packets, queue_bytes)
        self.reset()

    def reset(self) -> None:
        """Empty the queue; the next packet starts on a fresh opportunity."""
        self._queue.clear()
        self._g = -1  # global index of the opportunity in use (-1: none yet)
        self._left = 0  # bytes still free in it

    def mean_rate_kbps(self) -> float:
        """Average capacity of the trace (kbit/s)."""
        return self.opportunities_ms.size * MAHIMAHI_OPPORTUNITY_BYTES * 8 / self.period_ms

    def _time_ms(self, g: int) -> float:
        """Time (ms) of opportunity number ``g`` counted from the start, across wraps."""
        n = len(self._ms)
        return self._ms[g % n] + (g // n) * self.period_ms

    def _first_at_or_after(self, t_ms: float) -> int:
        """Number of the first opportunity at or after ``t_ms``."""
        n = len(self._ms)
        c = max(0, int(t_ms // self.period_ms))
        g = c * n + bisect_left(self._ms, t_ms - c * self.period_ms)
        while self._time_ms(g) < t_ms:  # settle rounding at the edges on _time_ms itself
            g += 1
        while g > 0 and self._time_ms(g - 1) >= t_ms:
            g -= 1
        return g

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Accepted packets with the time (seconds) of the opportunity that carries their last byte."""
        t, s = as_inputs(send_s, size)
        q = self._queue
        keep_idx: list[int] = []
        keep_exit: list[float] = []
        full = MAHIMAHI_OPPORTUNITY_BYTES
        for k, (tk, sk) in enumerate(zip(t.tolist(), s.tolist())):
            wire = sk + self.overhead_bytes
            q.drain(tk)
            if q.full_for(wire):
                continue
            t_ms = tk * 1000.0
            g, left = self._g, self._left
            if g < 0 or left == 0 or self._time_ms(g) < t_ms:
                # The current opportunity is used up or already past: wait for the next usable one.
                start = self._first_at_or_after(t_ms)
                if g >= 0 and left == 0:
                    start = max(start, g + 1)
                elif g >= 0:
                    start = max(start, g + 1) if self._time_ms(g) < t_ms else start
                g, left = start, full
            remaining = wire
            while remaining > left:
                remaining -= left
                g += 1
                left = full
            left -= remaining
            self._g, self._left = g, left
            exit_s = self._time_ms(g) / 1000.0
            q.push(exit_s, wire)
            keep_idx.append(k)
            keep_exit.append(exit_s)
        return np.asarray(keep_idx, dtype=np.int64), np.asarray(keep_exit, dtype=np.float64)

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[exit_s]`` or ``[]`` if the queue is full."""
        _, e = self.apply(np.array([t_s]), np.array([size]), rng)
        out: list[float] = e.tolist()
        return out

    def __repr__(self) -> str:
        src = str(self.path) if self.path else f"{self.opportunities_ms.size} opportunities"
        return f"TraceCapacity({src!r}, overhead_bytes={self.overhead_bytes!r})"
