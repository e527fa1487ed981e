"""TCP delivery model for stream transports (WebSocket): turns packet loss into delay.

The application's writes become segments that cross the forward :class:`LinkChain`; the receiver
ACKs; lost segments are retransmitted; bytes reach the application strictly in order.

Model
-----
* Segmentation: each write is cut into segments of at most ``mss`` bytes (1448 = 1500 - 20 IP -
  20 TCP - 12 timestamp option). Writes are not coalesced and are sent at once (``TCP_NODELAY``;
  a voice sender writes one frame at a time). A segment's size on the link is its payload plus
  ``header_bytes`` (default 52: IPv4 + TCP + timestamps; TLS and WebSocket framing belong to the
  payload the caller writes).
* Congestion control, the receive window, pacing and Nagle are **ignored**: at voice rates
  (tens to a few hundred kbit/s, one write per 20-100 ms) the initial congestion window of 10
  segments is never the limit. After a timeout Linux restarts from a window of 1 segment; we
  retransmit the segments it marks lost as soon as the retransmission is acknowledged, which is
  faster than slow start and so a lower bound on the recovery delay.
* ACKs: by default the receiver sends one ACK per arriving segment (duplicates and out-of-order
  ones included): an upper bound on the ACK count. ``delayed_ack=True`` models Linux's delayed
  ACK instead: an in-order segment with nothing held out of order is ACKed with the next one or
  after ``delack_s`` (40 ms, Linux's minimum), whichever comes first; out-of-order, duplicate and
  hole-filling segments are ACKed at once. Each ACK carries the cumulative point and SACKs the
  segment that triggered it, and crosses the ``reverse`` chain (``None`` = an instant, lossless
  return path).
* Loss detection, ``loss_detection="rack"`` (the default; what Linux does, RFC 8985 RACK as in
  ``net/ipv4/tcp_recovery.c``): time-based. The sender remembers the most recently *sent*
  transmission that has been acknowledged (cumulatively or by SACK; the ACK names which
  transmission arrived, so there is no retransmission ambiguity) and that transmission's RTT,
  ``rack_rtt``. A transmission still unacknowledged that was sent before it is deemed lost once
  ``rack_rtt + reo_wnd`` has passed since it was sent; until then a reordering timer waits for
  it. ``reo_wnd = min(min_rtt / 4, srtt)``, except 0 once ``dupthresh`` (3) segments above the
  cumulative point are SACKed (Linux: no reordering seen yet and the dupack threshold reached).
  Each detected loss is retransmitted at once. Because retransmissions are timed like any other
  transmission, a *lost retransmission* is detected the same way (after a later-sent segment is
  acknowledged) instead of waiting for the RTO. Not modelled: the tail loss probe (TLP; a voice
  sender writes every 20-100 ms, so a later segment soon reveals a tail loss) and reordering
  detection (``reo_wnd`` does not grow: the link models here rarely reorder).
  ``loss_detection="dupack"``: the classic fast retransmit (SACK, RFC 6675 style): a segment is
  retransmitted once when the sender learns that ``dupthresh`` (3) segments above it have
  arrived, i.e. when the dupacks come back over the reverse path; a lost retransmission waits for
  the RTO. (Measured against Linux on the netns backend (translab/bench/netns_tcp.py) "dupack"
  gave a frame-delay p95 1.4-1.9x the kernel's at 1-5 % loss; "rack" follows the kernel.)
* Retransmission timer (RFC 6298): started when data is sent and none is running, restarted when
  the cumulative ACK advances. RTO = ``max(min_rto_s, srtt + 4 * rttvar)`` (``rto_formula=
  "rfc6298"``) or Linux's ``srtt + max(4 * rttvar, min_rto_s)`` (``"linux"``); 1 s before the first
  RTT sample; Karn's rule (no samples from retransmitted segments). On expiry the oldest
  unacknowledged segment is retransmitted, every other outstanding un-SACKed segment is marked lost
  (retransmitted when the cumulative ACK next advances), and the RTO doubles (up to ``max_rto_s``)
  until new data is acknowledged.
* Retransmissions cross the same forward chain and can be lost again. With "dupack" a lost
  retransmission is repaired only by the RTO; with "rack" also by RACK when later data gets
  through. An outage longer than the RTO costs a backed-off timeout either way.

Against Linux
-------------
``python -m translab.bench.netns_tcp 20 1,2,3,4,5``: WebSocket calls (20 ms frames, 9.3 s clip),
25 ms each way, Bernoulli loss both ways, on the netns backend (real kernel TCP: Linux 6.18, RACK
(tcp_recovery=1), BBR, which the namespaces inherit from this host) and through this model; frame delay (ms) and stalls, median over 5 seeds (stalls summed)::

    loss   model "rack" p50/p95/p99, stalls   kernel p50/p95/p99, stalls   p95 model/kernel  ("dupack")
    1 %    25.0 / 25.0 /  95.0,  27           25.5 / 36.5 /  95.9,  27     0.69              (1.92)
    3 %    25.0 / 75.0 /  95.0,  59           25.5 / 75.7 /  97.5,  58     0.99              (1.52)
    5 %    25.0 / 95.0 / 115.9,  94           25.6 / 95.7 / 129.1,  94     0.99              (1.41)

Remaining difference, at 1 % loss p95: each loss delays ~4 frames, ~5 % of frames at 1 % loss, so
p95 sits on the knee of the distribution. The kernel delays a few more frames per loss: during
recovery (until the retransmission is acknowledged) the congestion controller lets new data out
only as ACKs return (BBR's packet conservation; PRR does the same with CUBIC), so the ~3 frames
written then wait ~11 ms each (36 ms instead of 25 ms); and it usually retransmits
one ACK (20 ms) later than RACK's rule predicts here. The model ignores congestion control (see
above), so its p95 at 1 % is 25 ms against the kernel's 36 ms; p99 and stall counts agree.
The +0.5 ms at p50 is the kernel's and the forwarder's own processing.

Invariants
----------
* Bytes are delivered in order: delivery times are non-decreasing in byte offset (head-of-line
  blocking); every written byte is eventually delivered unless the link loses everything.
* With no loss and no reordering, a write is delivered when its last segment arrives.
* The batch API (:meth:`TcpDeliveryModel.deliver`) and the streaming API (:meth:`send`,
  :meth:`poll`, :meth:`next_event_s`) give identical results for the same generators, provided
  ``send`` is called in time order and no later than events already polled.
* Events at equal times run in a fixed order: ACK arrivals, retransmission timers, delayed-ACK
  timers, segment arrivals, writes, RACK reordering timers.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from translab.errors import ConfigError, check_choice
from translab.link.base import LinkModel, check_count, check_positive
from translab.link.chain import LinkChain, as_chain

_ACK, _RTO, _DELACK, _SEG, _WRITE, _RACK = 0, 1, 2, 3, 4, 5  # event kinds, also the order at equal times
LOSS_DETECTIONS = ("rack", "dupack")


@dataclass
class TcpDelivery:
    """Result of :meth:`TcpDeliveryModel.deliver`.

    ``delivered_s``: per write, the time (s) its last byte is delivered in order to the application
    (NaN if never). ``segments``: one row per transmission: seg, write, send_s, arrival_s (first copy;
    NaN = lost), retransmission (0 = original, 1 = first retransmission, ...). ``retransmissions``:
    transmissions beyond the first. ``acks``: ACKs the receiver sent. ``segments_sent``: all data
    transmissions (for bandwidth). ``timeouts``, ``fast_retransmits``: how losses were repaired.
    """

    delivered_s: np.ndarray
    segments: pd.DataFrame
    retransmissions: int
    acks: int
    segments_sent: int
    timeouts: int
    fast_retransmits: int


class TcpDeliveryModel:
    """In-order byte-stream delivery over lossy link chains (see the module docstring).

    ``forward``: the data direction's chain; ``reverse``: the ACK direction's (None = ideal).
    ``mss``: bytes per segment. ``min_rto_s``: the RTO floor (Linux: 0.2 s).
    ``loss_detection``: "rack" (default, Linux's time-based RACK) or "dupack" (``dupthresh``
    SACKed segments above a hole); ``dupthresh`` (segments) is also RACK's threshold for a zero
    reordering window.
    """

    def __init__(
        self,
        forward: "LinkChain | LinkModel",
        reverse: "LinkChain | LinkModel | None" = None,
        mss: int = 1448,
        min_rto_s: float = 0.2,
        *,
        header_bytes: int = 52,
        ack_bytes: int = 52,
        dupthresh: int = 3,
        initial_rto_s: float = 1.0,
        max_rto_s: float = 120.0,
        rto_formula: str = "rfc6298",
        delayed_ack: bool = False,
        delack_s: float = 0.04,
        loss_detection: str = "rack",
    ) -> None:
        self.forward = as_chain(forward)
        self.reverse = as_chain(reverse)
        self.mss = check_count("tcp.mss", mss, 1, "bytes")
        self.min_rto_s = check_positive("tcp.min_rto_s", min_rto_s, "s")
        self.header_bytes = int(header_bytes)
        self.ack_bytes = int(ack_bytes)
        self.dupthresh = check_count("tcp.dupthresh", dupthresh, 1, "segments")
        self.initial_rto_s = check_positive("tcp.initial_rto_s", initial_rto_s, "s")
        self.max_rto_s = check_positive("tcp.max_rto_s", max_rto_s, "s")
        check_choice("tcp.rto_formula", rto_formula, ("rfc6298", "linux"))
        self.rto_formula = rto_formula
        self.delayed_ack = bool(delayed_ack)
        self.delack_s = check_positive("tcp.delack_s", delack_s, "s")
        check_choice("tcp.loss_detection", loss_detection, LOSS_DETECTIONS)
        self.loss_detection = loss_detection
        self._init_state()

    # ----------------------------------------------------------------- state
    def _init_state(self) -> None:
        self._heap: list[tuple[float, int, int, tuple[Any, ...]]] = []
        self._counter = 0
        self._n_writes = 0
        self._rng_fwd: "np.random.Generator | None" = None
        self._rng_rev: "np.random.Generator | None" = None
        # per segment
        self._seg_write: list[int] = []
        self._seg_len: list[int] = []
        self._seg_end: list[int] = []  # cumulative byte offset after the segment
        self._seg_ntx: list[int] = []
        self._seg_first_tx: list[float] = []
        self._seg_sacked: list[bool] = []
        self._seg_fast_done: list[bool] = []
        self._seg_lost_mark: list[bool] = []
        self._seg_tx_s: list[list[float]] = []  # send time of each transmission
        self._rcv_have: list[bool] = []
        self._write_end: list[int] = []  # cumulative byte offset after each write
        self._write_s: list[float] = []
        self._bytes_written = 0
        # receiver
        self._rcv_next = 0  # first segment not yet received in order
        self._rcv_ooo = 0  # segments received above the in-order point
        self._delack_pending = 0  # in-order segments not yet ACKed (delayed ACK)
        self._delack_last: tuple[int, int] = (0, 0)  # (seg, retx) of the last one
        self._delack_version = 0
        self._delack_armed = False
        self._delivered_bytes = 0
        self._deliveries: list[tuple[float, int]] = []
        self._returned = 0
        # sender
        self._snd_una = 0
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._rto = self.initial_rto_s
        self._backoff = 0
        self._timer_version = 0
        self._timer_running = False
        self._last_event_s = -np.inf
        # RACK: (send time, segment) of the most recently sent acknowledged transmission, its RTT
        self._rack_key: tuple[float, int] = (-np.inf, -1)
        self._rack_rtt = 0.0
        self._min_rtt = np.inf
        self._rack_version = 0
        self._rack_armed_s = np.inf
        # log and counters
        self._log: list[tuple[int, int, float, float, int]] = []
        self.acks = 0
        self.timeouts = 0
        self.fast_retransmits = 0

    def reset(self) -> None:
        """Forget everything (both chains are reset too)."""
        self.forward.reset()
        self.reverse.reset()
        self._init_state()

    def _bind(self, rng: np.random.Generator, rng_rev: "np.random.Generator | None") -> None:
        if self._rng_fwd is None:
            if rng is None:
                raise ConfigError("rng", None, "a numpy Generator on the first send")
            self._rng_fwd = rng
            self._rng_rev = rng_rev if rng_rev is not None else rng.spawn(1)[0]

    def _push(self, t: float, kind: int, payload: tuple[Any, ...], key: "int | None" = None) -> None:
        if key is None:
            key = self._counter
            self._counter += 1
        heapq.heappush(self._heap, (t, kind, key, payload))

    # ----------------------------------------------------------------- streaming API
    def send(
        self,
        t_s: float,
        nbytes: int,
        rng: "np.random.Generator | None" = None,
        rng_rev: "np.random.Generator | None" = None,
    ) -> None:
        """The application writes ``nbytes`` at time ``t_s`` (seconds). ``rng`` (and optionally
        ``rng_rev`` for the ACK path, else spawned from ``rng``) are bound on the first call."""
        self._bind(rng, rng_rev)  # type: ignore[arg-type]
        if int(nbytes) < 0:
            raise ConfigError("nbytes", nbytes, "an integer >= 0 (bytes)")
        t = float(t_s)
        if t < self._last_event_s:
            raise ConfigError("t_s", t, f">= the last processed event time ({self._last_event_s:.6f} s)")
        w = self._n_writes
        self._n_writes += 1
        self._bytes_written += int(nbytes)
        self._write_end.append(self._bytes_written)
        self._write_s.append(t)
        self._push(t, _WRITE, (w, int(nbytes)), key=w)

    def poll(self, now_s: float) -> list[tuple[float, int]]:
        """Run every event up to ``now_s``; return the new in-order deliveries as
        ``(delivery_s, nbytes)`` with ``delivery_s <= now_s``."""
        heap = self._heap
        while heap and heap[0][0] <= now_s:
            t, kind, _, payload = heapq.heappop(heap)
            self._last_event_s = t
            if kind == _ACK:
                self._on_ack(t, *payload)
            elif kind == _RTO:
                self._on_rto(t, *payload)
            elif kind == _DELACK:
                self._on_delack(t, *payload)
            elif kind == _SEG:
                self._on_segment(t, *payload)
            elif kind == _WRITE:
                self._on_write(t, *payload)
            else:
                self._on_rack_timer(t, *payload)
        out = self._deliveries[self._returned :]
        self._returned = len(self._deliveries)
        return out

    def next_event_s(self) -> "float | None":
        """Time (s) of the next pending event, or None when nothing is pending."""
        heap = self._heap
        while heap and (
            (heap[0][1] == _RTO and heap[0][3][0] != self._timer_version)
            or (heap[0][1] == _DELACK and heap[0][3][0] != self._delack_version)
            or (heap[0][1] == _RACK and heap[0][3][0] != self._rack_version)
        ):
            heapq.heappop(heap)  # a cancelled timer
        return heap[0][0] if heap else None

    # ----------------------------------------------------------------- batch API
    def deliver(
        self,
        write_s: np.ndarray,
        write_bytes: np.ndarray,
        rng_fwd: np.random.Generator,
        rng_rev: "np.random.Generator | None" = None,
    ) -> TcpDelivery:
        """Deliver a whole stream of writes (times in s, sizes in bytes). Resets the model and both
        chains first. ``rng_rev`` defaults to a generator spawned from ``rng_fwd``."""
        ws = np.asarray(write_s, dtype=np.float64).reshape(-1)
        wb = np.asarray(write_bytes, dtype=np.int64).reshape(-1)
        if ws.shape != wb.shape:
            raise ConfigError("write_bytes", f"{wb.size} values", f"one per write ({ws.size})")
        if ws.size and np.any(np.diff(ws) < 0):
            raise ConfigError("write_s", "decreasing times", "non-decreasing write times (s)")
        self.reset()
        self._bind(rng_fwd, rng_rev)
        for t, b in zip(ws.tolist(), wb.tolist()):
            self.send(t, b)
        self.poll(np.inf)
        return self.result()

    def result(self) -> TcpDelivery:
        """The run so far as a :class:`TcpDelivery` (per-write delivery times from deliveries made)."""
        seg = pd.DataFrame(self._log, columns=["seg", "write", "send_s", "arrival_s", "retransmission"])
        return TcpDelivery(
            delivered_s=self.write_delivery_s(),
            segments=seg,
            retransmissions=int((seg["retransmission"] > 0).sum()) if len(seg) else 0,
            acks=self.acks,
            segments_sent=len(seg),
            timeouts=self.timeouts,
            fast_retransmits=self.fast_retransmits,
        )

    def write_delivery_s(self) -> np.ndarray:
        """Per write, when its last byte was delivered in order (s); NaN if not (yet)."""
        ends = np.asarray(self._write_end, dtype=np.int64)
        write_s = np.asarray(self._write_s, dtype=np.float64)
        out = np.full(ends.size, np.nan)
        zero = ends == 0  # nothing written yet: "delivered" when written
        out[zero] = write_s[zero]
        if self._deliveries:
            dt = np.array([d[0] for d in self._deliveries])
            cum = np.cumsum([d[1] for d in self._deliveries])
            k = np.searchsorted(cum, ends, side="left")
            ok = (k < cum.size) & ~zero
            out[ok] = np.maximum(dt[k[ok]], write_s[ok])
        return out

    # ----------------------------------------------------------------- events
    def _on_write(self, t: float, w: int, nbytes: int) -> None:
        left = nbytes
        while left > 0:
            n = min(left, self.mss)
            left -= n
            s = len(self._seg_len)
            self._seg_write.append(w)
            self._seg_len.append(n)
            self._seg_end.append((self._seg_end[-1] if self._seg_end else 0) + n)
            self._seg_ntx.append(0)
            self._seg_first_tx.append(t)
            self._seg_sacked.append(False)
            self._seg_fast_done.append(False)
            self._seg_lost_mark.append(False)
            self._seg_tx_s.append([])
            self._rcv_have.append(False)
            self._transmit(t, s)

    def _transmit(self, t: float, s: int) -> None:
        retx = self._seg_ntx[s]
        self._seg_ntx[s] = retx + 1
        self._seg_tx_s[s].append(t)
        arr = self.forward.apply_one(t, self._seg_len[s] + self.header_bytes, self._rng_fwd)  # type: ignore[arg-type]
        first = min(arr) if arr else float("nan")
        self._log.append((s, self._seg_write[s], t, first, retx))
        for a in arr:
            self._push(a, _SEG, (s, retx))
        if not self._timer_running:
            self._arm_timer(t)

    def _current_rto(self) -> float:
        rto: float = min(self._rto * (2**self._backoff), self.max_rto_s)
        return rto

    def _arm_timer(self, t: float) -> None:
        self._timer_version += 1
        self._timer_running = True
        self._push(t + self._current_rto(), _RTO, (self._timer_version,))

    def _stop_timer(self) -> None:
        self._timer_version += 1
        self._timer_running = False

    def _on_segment(self, t: float, s: int, retx: int) -> None:
        delay_ok = False
        if not self._rcv_have[s]:
            self._rcv_have[s] = True
            self._rcv_ooo += 1
            old = self._rcv_next
            n = old
            have = self._rcv_have
            while n < len(have) and have[n]:
                n += 1
            if n > old:
                new_end = self._seg_end[n - 1]
                self._deliveries.append((t, new_end - self._delivered_bytes))
                self._delivered_bytes = new_end
                self._rcv_next = n
                self._rcv_ooo -= n - old
            # In order, not filling a hole, nothing held above: an ACK may wait (delayed ACK).
            delay_ok = s == old and n == old + 1 and self._rcv_ooo == 0
        if self.delayed_ack and delay_ok:
            self._delack_pending += 1
            self._delack_last = (s, retx)
            if self._delack_pending >= 2:
                self._send_ack(t, s, retx)
            elif not self._delack_armed:
                self._delack_version += 1
                self._delack_armed = True
                self._push(t + self.delack_s, _DELACK, (self._delack_version,))
            return
        self._send_ack(t, s, retx)

    def _send_ack(self, t: float, s: int, retx: int) -> None:
        """The receiver ACKs now (cumulative point + SACK of segment ``s``); pending delayed ACKs
        are covered by it."""
        self._delack_pending = 0
        if self._delack_armed:
            self._delack_version += 1
            self._delack_armed = False
        self.acks += 1
        arr = self.reverse.apply_one(t, self.ack_bytes, self._rng_rev)  # type: ignore[arg-type]
        for a in arr:
            self._push(a, _ACK, (self._rcv_next, s, retx))

    def _on_delack(self, t: float, version: int) -> None:
        if version != self._delack_version:
            return
        self._delack_armed = False
        if self._delack_pending:
            self._send_ack(t, *self._delack_last)

    def _on_ack(self, t: float, cum: int, s: int, retx: int) -> None:
        sacked = self._seg_sacked
        sacked[s] = True
        for k in range(self._snd_una, min(cum, len(sacked))):
            sacked[k] = True
        old_una = self._snd_una
        una = old_una
        while una < len(sacked) and sacked[una]:
            una += 1
        self._snd_una = una
        if retx == 0 and self._seg_ntx[s] == 1:  # Karn: only never-retransmitted segments
            self._rtt_sample(t - self._seg_first_tx[s])
        outstanding = una < len(sacked)
        if una > old_una:
            self._backoff = 0
            if outstanding:
                self._arm_timer(t)
            else:
                self._stop_timer()
            for k in range(una, len(sacked)):
                if self._seg_lost_mark[k] and not sacked[k]:
                    self._seg_lost_mark[k] = False
                    self._transmit(t, k)
        if self.loss_detection == "rack":
            tx = self._seg_tx_s[s][retx]
            self._min_rtt = min(self._min_rtt, t - tx)
            if (tx, s) > self._rack_key:
                self._rack_key = (tx, s)
                self._rack_rtt = t - tx
            if outstanding:
                self._rack_detect(t)
            return
        if not outstanding:
            return
        # SACK loss detection: a hole with >= dupthresh SACKed segments above it.
        above = 0
        for k in range(len(sacked) - 1, una - 1, -1):
            if sacked[k]:
                above += 1
            elif above >= self.dupthresh and self._seg_ntx[k] == 1 and not self._seg_fast_done[k]:
                self._seg_fast_done[k] = True
                self._seg_lost_mark[k] = False
                self.fast_retransmits += 1
                self._transmit(t, k)

    def _reo_wnd(self) -> float:
        """RACK's reordering window (s): 0 once ``dupthresh`` segments above the hole are SACKed,
        else min(min_rtt / 4, srtt) (Linux's tcp_rack_reo_wnd with no reordering seen)."""
        sacked = self._seg_sacked
        above = sum(1 for k in range(self._snd_una, len(sacked)) if sacked[k])
        if above >= self.dupthresh or not np.isfinite(self._min_rtt):
            return 0.0
        return min(self._min_rtt / 4.0, self._srtt if self._srtt is not None else np.inf)

    def _rack_detect(self, t: float) -> None:
        """Retransmit every unacknowledged transmission sent before the RACK transmission whose
        ``rack_rtt + reo_wnd`` has passed; arm the reordering timer for the earliest other one."""
        reo = self._reo_wnd()
        sacked, tx_s, key = self._seg_sacked, self._seg_tx_s, self._rack_key
        wait = np.inf
        lost = []
        for k in range(self._snd_una, len(sacked)):
            if sacked[k]:
                continue
            last = tx_s[k][-1]
            if (last, k) >= key:
                continue
            remaining = last + self._rack_rtt + reo - t
            if remaining <= 1e-12:
                lost.append(k)
            else:
                wait = min(wait, remaining)
        for k in lost:
            self._seg_lost_mark[k] = False
            self._seg_fast_done[k] = True
            self.fast_retransmits += 1
            self._transmit(t, k)
        if np.isfinite(wait):
            if t + wait != self._rack_armed_s:
                self._rack_version += 1
                self._rack_armed_s = t + wait
                self._push(t + wait, _RACK, (self._rack_version,))
        elif np.isfinite(self._rack_armed_s):
            self._rack_version += 1  # nothing left to wait for: cancel
            self._rack_armed_s = np.inf

    def _on_rack_timer(self, t: float, version: int) -> None:
        if version != self._rack_version:
            return
        self._rack_armed_s = np.inf
        if self._snd_una < len(self._seg_sacked):
            self._rack_detect(t)

    def _rtt_sample(self, r: float) -> None:
        if self._srtt is None:
            self._srtt = r
            self._rttvar = r / 2.0
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - r)
            self._srtt = 0.875 * self._srtt + 0.125 * r
        if self.rto_formula == "linux":
            rto = self._srtt + max(4.0 * self._rttvar, self.min_rto_s)
        else:
            rto = max(self.min_rto_s, self._srtt + 4.0 * self._rttvar)
        self._rto = min(rto, self.max_rto_s)

    def _on_rto(self, t: float, version: int) -> None:
        if version != self._timer_version:
            return  # cancelled or superseded
        self._timer_running = False
        una = self._snd_una
        if una >= len(self._seg_sacked):
            return
        self.timeouts += 1
        self._backoff += 1
        for k in range(una + 1, len(self._seg_sacked)):
            if not self._seg_sacked[k]:
                self._seg_lost_mark[k] = True
        self._transmit(t, una)  # also re-arms the timer with the backed-off RTO

    # ----------------------------------------------------------------- figures
    @property
    def srtt_s(self) -> "float | None":
        """Smoothed RTT estimate (s), None before the first sample."""
        return self._srtt

    @property
    def rto_s(self) -> float:
        """Current retransmission timeout including back-off (s)."""
        return self._current_rto()
