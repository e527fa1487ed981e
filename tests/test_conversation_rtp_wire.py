"""The wire of a live conversation's RTP legs (translab.conversation.rtp_wire): a launch-time pacer and
delivery stamps, on constructed datagrams (no aiortc)."""

import asyncio
import struct

import numpy as np
import pytest

from translab.conversation.rtp_wire import RtpWire, _Pacing, _Stamping
from translab.emulate.datagram import DatagramLink, _EgressTransport
from translab.emulate.scheduler import DeadlineScheduler, now
from translab.link.delay import Delay


def _rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, 160 * seq, 0x1234) + b"\x00" * 20


class _Socket:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, float]] = []

    def sendto(self, data: bytes, addr=None) -> None:
        self.sent.append((data, now()))

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 1)

    def is_closing(self) -> bool:
        return False


def _path(sock: _Socket) -> tuple[DatagramLink, _EgressTransport, list[tuple[bytes, float]]]:
    """A peer's socket behind an emulated link with no delay; ``entered``: each datagram and the time
    it entered the link."""
    link = DatagramLink("up", DeadlineScheduler(), Delay(0.0), np.random.default_rng(0))
    entered: list[tuple[bytes, float]] = []
    link.on_enter = lambda d, t: entered.append((d, t))
    return link, _EgressTransport(sock, link), entered


def test_media_datagrams_launch_at_their_grid_time_rtcp_at_once_and_late_ones_at_once():
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.create_future()
        wire = RtpWire(np.array([0.020, 0.040, 0.060]), start)
        sock = _Socket()
        link, egress, entered = _path(sock)
        pacer = _Pacing(egress, wire)
        assert pacer.get_extra_info("sockname") == ("127.0.0.1", 1)  # the rest is the socket's
        t0 = now() + 0.01
        start.set_result(t0)
        pacer.sendto(_rtp(7), ("127.0.0.1", 2))  # ready 30 ms early: held until t0 + 20 ms
        rtcp = bytes([0x80, 200]) + b"\x00" * 26
        pacer.sendto(rtcp, ("127.0.0.1", 2))  # RTCP is not paced
        pacer.sendto(_rtp(8), ("127.0.0.1", 2))
        await asyncio.sleep(t0 + 0.045 - now())
        pacer.sendto(_rtp(9), ("127.0.0.1", 2))  # ready 15 ms before its launch time (t0 + 60 ms)
        await asyncio.sleep(t0 + 0.080 - now())
        await asyncio.sleep(0)
        link.scheduler.close()
        return t0, entered, sock.sent, wire, link

    t0, entered, sent, wire, link = asyncio.run(main())
    assert entered[0][0][1] == 200 and entered[0][1] < t0  # RTCP entered at once
    media = entered[1:]
    assert [struct.unpack_from("!H", d, 2)[0] for d, _ in media] == [7, 8, 9]
    # held by the emulated path and entered at exactly the grid time (the link model's send time)
    assert [t - t0 for _, t in media] == pytest.approx([0.020, 0.040, 0.060], abs=1e-9)
    assert link.held == 3 and wire.late == 0 and len(sent) == 4
    # the launch log is the time each entered the wire (what the leg's trace gives as its send time)
    assert [wire.launched[s] for s in (7, 8, 9)] == [t for _, t in media]


def test_a_datagram_ready_after_its_launch_time_leaves_at_once_and_is_counted():
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.create_future()
        wire = RtpWire(np.array([0.001]), start)
        sock = _Socket()
        link, egress, entered = _path(sock)
        t0 = now() - 0.050
        start.set_result(t0)
        _Pacing(egress, wire).sendto(_rtp(1), ("127.0.0.1", 2))
        await asyncio.sleep(0.005)
        link.scheduler.close()
        return sock.sent, wire, link

    sent, wire, link = asyncio.run(main())
    assert len(sent) == 1 and wire.late == 1
    assert len(link.late_launches_s) == 1 and 0.049 <= link.late_launches_s[0] < 0.06


def test_arrivals_are_the_deliveries_on_the_wire_copies_in_order():
    async def main():
        loop = asyncio.get_running_loop()
        wire = RtpWire(np.zeros(0), loop.create_future())
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
