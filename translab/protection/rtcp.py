"""The RTCP report schedule of a protected WebRTC call, seeded and shared by the live aiortc call
(:func:`translab.transport.webrtc.seeded_rtcp`) and the simulator's ``abr_feedback = "rr"`` mode
(:func:`translab.protection.sim.simulate_uplink`), so both send the same reports at the same times.

The rules are aiortc's (``RTCRtpSender._run_rtcp`` / ``RTCRtpReceiver._run_rtcp``, aiortc 1.x) plus
the project's rapid start:

- **Periodic Sender Reports**: the caller's sender loops "sleep 0.5 + U[0, 1) s, send an SR (+ SDES)";
  aiortc draws from Python's global ``random``, here from :meth:`RtcpSchedule.times` ("sr"), a
  generator keyed on the call's seed. The loop starts at the call clock's zero (media start; aiortc
  starts it when DTLS connects, ~50 ms earlier).
- **Periodic Receiver Reports**: the callee's receiver, the same loop with its own stream ("rr"); no
  RR before the first RTP packet (aiortc sends one only when it has a remote stream).
- **Rapid start** (:data:`RAPID_SR_PACKETS`): the sender sends one more SR right after its 2nd, 7th,
  12th ... 47th RTP packet while it has no RTT sample (RFC 4585 3.5.2 early RTCP).
- **Answers**: the receiver answers every SR it receives with an RR at once (DLSR >= 1/65536 s).

Report contents (aiortc's ``StreamStatistics``): the loss fraction (8 bits, /256) over the packets
expected since the previous RR (counted from the first packet received, negative sent as 0), every
packet arriving counting as received (retransmissions and duplicates too, as aiortc's statistics see
them behind the RTX unwrapping), the highest sequence number received, LSR (the middle 32 bits of the
NTP time of the sender's last RTP packet before the SR) and DLSR (1/65536 s units, truncated). The
sender takes an RTT sample when an RR's LSR equals its latest SR's: arrival - SR send time - DLSR.

RTCP crosses the emulated links on a model instance of its own per direction, drawing from
:func:`rtcp_rngs` (children 3 and 4 of ``np.random.SeedSequence(seed)``; 0 and 1 are the media
directions, 2 the retransmissions), in the simulator and live (:func:`translab.transport.webrtc.route_rtcp`),
so each SR / RR / NACK meets the same loss and delay draws in both. Pure: no clock.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

#: the sender sends an early SR after these RTP packets (1-based) while it has no RTT sample
RAPID_SR_PACKETS: tuple[int, ...] = tuple(range(2, 52, 5))
#: aiortc's RTCP interval: uniform over [MIN, MIN + SPAN) s
INTERVAL_MIN_S = 0.5
INTERVAL_SPAN_S = 1.0
_ROLES = {"sr": 0, "rr": 1}


def rtcp_rngs(seed: int) -> dict[str, np.random.Generator]:
    """The generators RTCP datagrams draw their link fates from, per direction ("up": SRs, "down":
    RRs and NACKs): children 3 and 4 of ``np.random.SeedSequence(seed)``."""
    return {d: np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(3 + i,)))
            for i, d in enumerate(("up", "down"))}


class RtcpSchedule:
    """The periodic report times of one call (``seed``: the call's seed)."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def times(self, role: str) -> Iterator[float]:
        """The send times (s, call clock, increasing, without end) of the periodic ``role`` reports,
        "sr" (the sender's) or "rr" (the receiver's): cumulative sums of 0.5 + U[0, 1) s, drawn
        from child 5 of ``np.random.SeedSequence(seed)`` (one stream per role). Each call starts
        the stream afresh."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(5, _ROLES[role])))
        t = 0.0
        while True:
            t += INTERVAL_MIN_S + INTERVAL_SPAN_S * float(rng.random())
            yield t

    def until(self, role: str, end_s: float) -> list[float]:
        """The ``role`` report times up to ``end_s`` (s)."""
        out: list[float] = []
        for t in self.times(role):
            if t > end_s:
                return out
            out.append(t)
        return out


def dlsr_s(delay_s: float, answer: bool) -> float:
    """The DLSR an RR carries (s, as the 1/65536 s units aiortc writes: truncated; 0 outside
    (0, 65536) s), for ``delay_s`` since the SR arrived; an answer RR carries at least one unit."""
    units = int(delay_s * 65536) if 0 < delay_s < 65536 else 0
    return max(units, 1 if answer else 0) / 65536.0


def fraction_lost(expected: int, received: int) -> int:
    """aiortc's 8-bit loss fraction over an interval: 256 x lost / expected, 0 when none were lost
    (or more arrived than expected) or none expected."""
    lost = expected - received
    return 0 if expected == 0 or lost <= 0 else (lost << 8) // expected
