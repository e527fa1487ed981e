"""The wire of a live conversation's RTP legs: when each media datagram entered the emulated path and
when the emulator handed it to the receiving socket, as packet captures at the two ends record them.

A live call runs every party (caller, edge, model) on one asyncio loop, so a datagram's times as an
aiortc tap sees them carry that loop's work: a sender's task wakes behind the other parties' tasks
due at the same 20 ms tick (0.3-0.6 ms median, up to several ms), and a receiver's tap runs after
the socket read, DTLS demultiplexing and SRTP (0.3 ms median, up to 4 ms). On the caller's
downlink these made the live arrivals 1.9-2.3 ms later than the simulation's at the median (p95
+4 to +5 ms; 8 gateway and twilio calls, seeds 1-4), which moves packets across the caller's
jitter buffer's 10 ms arrival ticks (translab.playout.delay_manager) and so its target by whole
20 ms frames. Two parts of one object remove that loop noise from the trace, each at its seam:

* :meth:`RtpWire.pace` (after the emulator wraps a peer's sockets): a launch-time pacer, as Linux's
  ``SO_TXTIME`` with the ETF qdisc paces a media server's packets: the k-th media RTP datagram the
  peer sends names ``t0 + launch_s[k]`` as its launch time and the emulated path holds it until
  then (:func:`translab.emulate.datagram.launch_at`, the hold protected calls use too), not
  whenever the sender's task got to it. A sender hands its packets over early for this (the
  caller's are encoded before the call; an edge reads its reply buffer
  :data:`translab.conversation.legs.EDGE_LEAD_S` before each tick); one that is later than its
  launch time still leaves at once (a host stall stays visible).
* :meth:`RtpWire.stamp` (before the emulator wraps the sending peer's sockets): each RTP datagram's
  delivery time, when the emulator hands it to the real socket toward the receiver (what a capture
  on that interface records), in place of the receiving tap's time.

Times are monotonic s (``translab.emulate.scheduler.now``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from translab.emulate.datagram import classify_datagram, ice_connections_of, launch_at
from translab.emulate.scheduler import now


def _rtp_seq(data: bytes) -> int | None:
    """The sequence number of a media RTP (or SRTP: its header is in the clear) datagram, else None."""
    if len(data) >= 12 and classify_datagram(data) == "rtp":
        return int.from_bytes(data[2:4], "big")
    return None


class _Stamping:
    """A socket transport that notes each RTP datagram's send time (the emulator's delivery)."""

    def __init__(self, real: Any, wire: "RtpWire") -> None:
        self._real, self._wire = real, wire

    def sendto(self, data: bytes, addr: Any = None) -> None:
        seq = _rtp_seq(data)
        if seq is not None:
            self._wire.delivered.setdefault(seq, deque()).append(now())
        self._real.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Pacing:
    """A socket transport that holds media RTP datagrams until their launch time."""

    def __init__(self, inner: Any, wire: "RtpWire") -> None:
        self._inner, self._wire = inner, wire

    def sendto(self, data: bytes, addr: Any = None) -> None:
        seq = _rtp_seq(data)
        if seq is None:
            self._inner.sendto(data, addr)
            return
        self._wire.hold(seq, lambda: self._inner.sendto(data, addr))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class RtpWire:
    """One direction's media datagrams on the wire (see the module docstring). ``launch_s``: the
    launch time of the k-th media RTP datagram the sending peer emits (s on the call clock) and
    ``start`` its zero (monotonic s); ``launched``: RTP sequence number -> monotonic s it entered the
    emulated path; ``delivered``: -> the monotonic s of each copy the emulator handed on."""

    launch_s: np.ndarray
    start: "asyncio.Future[float]"
    launched: dict[int, float] = field(default_factory=dict)
    delivered: dict[int, deque[float]] = field(default_factory=dict)
    late: int = 0  # datagrams handed over after their launch time (left at once)
    _k: int = 0  # media datagrams launched on schedule so far

    def stamp(self, pc: Any) -> None:
        """Note the delivery of every RTP datagram ``pc`` sends: call before the emulator wraps
        ``pc``'s sockets (its egress then hands datagrams on through this)."""
        for conn in ice_connections_of(pc):
            for proto in list(getattr(conn, "_protocols", [])):
                proto.transport = _Stamping(proto.transport, self)

    def pace(self, pc: Any) -> None:
        """Launch ``pc``'s media RTP on schedule: call after the emulator wrapped its sockets."""
        for conn in ice_connections_of(pc):
            for proto in list(getattr(conn, "_protocols", [])):
                proto.transport = _Pacing(proto.transport, self)

    def hold(self, seq: int, send: Callable[[], None]) -> None:
        """The next media datagram (``seq``) is ready: ``send()`` it (through the emulated path) with
        its launch time."""
        k = self._k
        if not self.start.done() or k >= len(self.launch_s):
            self.launched[seq] = now()
            send()
            return
        self._k += 1
        at = self.start.result() + float(self.launch_s[k])
        if at <= now():
            self.late += 1
        self.launched[seq] = max(at, now())
        with launch_at(at):
            send()

    def arrivals(self, received: list[tuple[int, int, float, bytes]]) -> tuple[list[tuple[int, int, float, bytes]], int]:
        """A receive tap's ``received`` (seq, ts, monotonic s, payload) with each time replaced by
        the delivery of that datagram (copies in order), and how many had no delivery noted (they
        keep the tap's time)."""
        queues = {s: deque(q) for s, q in self.delivered.items()}
        out, missing = [], 0
        for seq, ts, t, payload in received:
            q = queues.get(seq)
            if q:
                t = q.popleft()
            else:
                missing += 1
            out.append((seq, ts, t, payload))
        return out, missing

    def sends(self, sent: list[tuple[int, int, float, int]]) -> list[tuple[int, int, float, int]]:
        """A send tap's ``sent`` (seq, ts, monotonic s, bytes) with each time replaced by its launch."""
        return [(seq, ts, self.launched.get(seq, t), n) for seq, ts, t, n in sent]
