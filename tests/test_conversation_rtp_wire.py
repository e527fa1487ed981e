"""The wire of a live conversation's RTP legs (translab.conversation.rtp_wire): a launch-time pacer and
delivery stamps, on constructed datagrams (no aiortc)."""

import asyncio
import struct

import numpy as np
import pytest

from translab.conversation.rtp_wire import RtpWire, _Pacing, _Stamping
from translab.emulate.scheduler import DeadlineScheduler, now


def _rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, 160 * seq, 0x1234) + b"\x00" * 20


class _Socket:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, float]] = []

    def sendto(self, data: bytes, addr=None) -> None:
        self.sent.append((data, now()))

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 1)


def test_media_datagrams_launch_at_their_grid_time_rtcp_at_once_and_late_ones_at_once():
    async def main():
        loop = asyncio.get_running_loop()
        sched = DeadlineScheduler(loop)
        start = loop.create_future()
        wire = RtpWire(np.array([0.020, 0.040, 0.060]), start, sched)
        sock = _Socket()
        pacer = _Pacing(sock, wire)
        assert pacer.get_extra_info("sockname") == ("127.0.0.1", 1)  # the rest is the socket's
        t0 = now() + 0.01
        start.set_result(t0)
        pacer.sendto(_rtp(7))  # ready 30 ms early: held until t0 + 20 ms
        rtcp = bytes([0x80, 200]) + b"\x00" * 26
        pacer.sendto(rtcp)  # RTCP is not paced
        assert sock.sent[0][0] == rtcp
        pacer.sendto(_rtp(8))
        await asyncio.sleep(t0 + 0.045 - now())
        pacer.sendto(_rtp(9))  # ready 15 ms before its launch time (t0 + 60 ms)
        await asyncio.sleep(t0 + 0.080 - now())
        await asyncio.sleep(0)
        sched.close()
        return t0, sock.sent, wire

    t0, sent, wire = asyncio.run(main())
    media = sent[1:]
    assert [struct.unpack_from("!H", d, 2)[0] for d, _ in media] == [7, 8, 9]
    late_ms = [1000 * (t - t0 - g) for (_, t), g in zip(media, (0.020, 0.040, 0.060))]
    # within the scheduler's accuracy (timerfd: ~0.1-0.3 ms; a loaded host: a few ms)
    assert all(0 <= x < 5 for x in late_ms), late_ms
    assert wire.late == 0
    # the launch log is the time each left (what the leg's trace gives as its send time)
    assert [wire.launched[s] for s in (7, 8, 9)] == pytest.approx([t for _, t in media], abs=1e-3)


def test_a_datagram_ready_after_its_launch_time_leaves_at_once_and_is_counted():
    async def main():
        loop = asyncio.get_running_loop()
        sched = DeadlineScheduler(loop)
        start = loop.create_future()
        wire = RtpWire(np.array([0.001]), start, sched)
        sock = _Socket()
        t0 = now() - 0.050
        start.set_result(t0)
        _Pacing(sock, wire).sendto(_rtp(1))
        sched.close()
        return sock.sent, wire

    sent, wire = asyncio.run(main())
    assert len(sent) == 1 and wire.late == 1


def test_arrivals_are_the_deliveries_on_the_wire_copies_in_order():
    async def main():
        loop = asyncio.get_running_loop()
        wire = RtpWire(np.zeros(0), loop.create_future(), DeadlineScheduler(loop))
        sock = _Socket()
        stamp = _Stamping(sock, wire)
        stamp.sendto(_rtp(5))
        stamp.sendto(_rtp(6))
        stamp.sendto(_rtp(5))  # a duplicate
        stamp.sendto(bytes([0x16, 0xFE]) + b"\x00" * 20)  # DTLS: not noted
        return sock.sent, wire

    sent, wire = asyncio.run(main())
    assert len(sent) == 4 and set(wire.delivered) == {5, 6}
    tap = [(5, 0, 100.0, b"a"), (6, 0, 100.1, b"b"), (5, 0, 100.2, b"a"), (9, 0, 100.3, b"c")]
    out, missing = wire.arrivals(tap)
    assert [t for _, _, t, _ in out[:3]] == pytest.approx([sent[0][1], sent[1][1], sent[2][1]], abs=1e-3)
    assert out[0][2] < out[1][2] < out[2][2]  # the duplicate's second copy: its own, later delivery
    assert out[3][2] == 100.3 and missing == 1  # never seen on the wire: the tap's time, counted
    assert wire.sends([(5, 0, 1.0, 40)]) == [(5, 0, 1.0, 40)]  # not launched by the pacer: unchanged
