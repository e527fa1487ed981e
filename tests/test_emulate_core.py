"""The live emulator's pieces: deadline scheduler, UDP links over link models, pcap output."""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
import time

import numpy as np
import pytest

from translab.emulate.datagram import DatagramLink, classify_datagram
from translab.emulate.pcap import PcapWriter, TcpFlowWriter
from translab.emulate.scheduler import DeadlineScheduler, now
from translab.link.chain import LinkChain
from translab.link.delay import Delay
from translab.link.loss import BernoulliLoss


def test_scheduler_releases_in_deadline_order_and_logs() -> None:
    async def main() -> tuple[list[int], list[tuple[float, float]], str]:
        sched = DeadlineScheduler()
        out: list[int] = []
        t = now()
        for i, d in enumerate([0.03, 0.01, 0.02, 0.02, -0.01]):
            sched.at(t + d, lambda i=i: out.append(i))
        await asyncio.sleep(0.06)
        log, mech = list(sched.log), sched.mechanism
        sched.close()
        return out, log, mech

    out, log, mech = asyncio.run(main())
    assert out == [4, 1, 2, 3, 0]  # equal deadlines keep insertion order
    assert len(log) == 5
    late = [a - i for i, a in log]
    assert min(late) >= -50e-6  # never released (much) before its deadline
    assert mech in ("timerfd", "call_at")


def test_scheduler_close_drops_pending_and_releases_fd() -> None:
    async def main() -> list[int]:
        sched = DeadlineScheduler()
        out: list[int] = []
        sched.at(now() + 0.02, lambda: out.append(1))
        sched.close()
        sched.at(now(), lambda: out.append(2))  # ignored after close
        await asyncio.sleep(0.04)
        return out

    assert asyncio.run(main()) == []


def test_classify_rfc7983() -> None:
    assert classify_datagram(b"\x00\x01") == "stun"
    assert classify_datagram(b"\x16\xfe\xfd") == "dtls"
    assert classify_datagram(b"\x80\x60") == "rtp"
    assert classify_datagram(b"\x80\xc8") == "rtcp"
    assert classify_datagram(b"") == "other"


def _run_link(models: dict[str, LinkChain], n: int, gap_s: float, kinds: list[bytes]) -> tuple[list[float], DatagramLink]:
    async def main() -> tuple[list[float], DatagramLink]:
        sched = DeadlineScheduler()
        rng_m, rng_c = np.random.default_rng(1), np.random.default_rng(2)
        link = DatagramLink("up", sched, models["media"], rng_m, control=models["control"], control_rng=rng_c)
        got: list[float] = []
        for i in range(n):
            link.submit(kinds[i % len(kinds)] + struct.pack("!I", i), lambda d: got.append(now()))
            await asyncio.sleep(gap_s)
        await asyncio.sleep(0.1)
        sched.close()
        return got, link

    return asyncio.run(main())


def test_link_media_draws_match_batch_apply_of_the_same_chain() -> None:
    """Media datagrams see exactly the loss pattern one batch call with the same rng gives, even
    with control datagrams interleaved (they use their own model instance and rng)."""
    mk = lambda: LinkChain([BernoulliLoss(0.3), Delay(0.005)])  # noqa: E731
    got, link = _run_link({"media": mk(), "control": mk()}, 60, 0.002, [b"\x80\x60" + b"\0" * 10, b"\x00\x01"])
    media = np.array(link.media_log)
    lost_live = np.isnan(media[:, 1])
    idx, _ = mk().apply(np.arange(30) * 0.004, np.full(30, 40), np.random.default_rng(1))
    lost_batch = np.ones(30, dtype=bool)
    lost_batch[idx] = False
    assert (lost_live == lost_batch).all()
    c = link.counters
    assert c.packets_sent == 60 and c.by_kind == {"rtp": 30, "stun": 30}
    assert c.packets_delivered == len(got) == 60 - c.packets_lost
    assert c.bytes_sent == 30 * (16 + 28) + 30 * (6 + 28)


def test_link_adds_configured_delay() -> None:
    async def main() -> list[float]:
        sched = DeadlineScheduler()
        link = DatagramLink("up", sched, Delay(0.03), np.random.default_rng(0))
        delays: list[float] = []
        for _ in range(20):
            t = now()
            link.submit(b"\x80\x60", lambda d, t=t: delays.append(now() - t))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.06)
        sched.close()
        return delays

    d = np.array(asyncio.run(main()))
    assert len(d) == 20
    assert np.all(d >= 0.03 - 50e-6)
    assert np.median(d) < 0.03 + 0.003  # generous: shared CI machine; the bench measures precisely


def test_launch_time_holds_an_early_datagram_and_counts_a_late_one() -> None:
    """SO_TXTIME for the emulated wire (launch_at): a datagram sent through a peer's socket 20 ms
    before its launch time enters the link model exactly at that time (its send time on the link
    clock, the on_enter time, and its delivery one 30 ms delay later); one sent 5 ms after its
    launch time enters at once and its lateness is kept; without a launch time, at once, uncounted.
    Outside the block nothing is held."""
    from translab.emulate.datagram import _EgressTransport, launch_at, launch_time

    class Socket:  # the real asyncio transport under the emulator's egress
        def __init__(self) -> None:
            self.sent: list[tuple[bytes, float]] = []

        def sendto(self, data: bytes, addr: object = None) -> None:
            self.sent.append((data, now()))

        def get_extra_info(self, name: str) -> tuple[str, int]:
            return ("127.0.0.1", 5000)

        def is_closing(self) -> bool:
            return False

    async def main() -> tuple[DatagramLink, list[tuple[bytes, float]], list[tuple[bytes, float]], dict[str, float]]:
        sched = DeadlineScheduler()
        link = DatagramLink("up", sched, Delay(0.03), np.random.default_rng(0), t0=now())
        entered: list[tuple[bytes, float]] = []
        link.on_enter = lambda d, t: entered.append((d, t))
        sock = Socket()
        egress = _EgressTransport(sock, link)
        t = now()
        marks = {"t": t}
        with launch_at(t + 0.020):
            marks["asked"] = launch_time()
            egress.sendto(b"\x80\x60early", ("127.0.0.1", 6000))
        with launch_at(t - 0.005):
            marks["passed"] = launch_time() - now()
            egress.sendto(b"\x80\x60late", ("127.0.0.1", 6000))
        egress.sendto(b"\x80\x60plain", ("127.0.0.1", 6000))
        await asyncio.sleep(0.08)
        sched.close()
        return link, entered, sock.sent, marks

    link, entered, delivered, marks = asyncio.run(main())
    t = marks["t"]
    assert marks["asked"] == t + 0.020 and abs(marks["passed"]) < 1e-3  # a passed launch time: now
    assert [d[2:] for d, _ in entered] == [b"late", b"plain", b"early"]
    times = {d[2:]: x for d, x in entered}
    assert times[b"early"] == t + 0.020  # held, then entered at exactly its launch time
    assert 0 <= times[b"late"] - t < 0.003 and 0 <= times[b"plain"] - t < 0.003
    assert link.media_log[-1][0] == pytest.approx(0.020 + t - link.t0, abs=1e-9)  # the model's send time
    assert link.held == 1 and len(link.late_launches_s) == 1
    assert 0.005 <= link.late_launches_s[0] < 0.008
    arrival = {d[2:]: x for d, x in delivered}
    assert 0.050 - 50e-6 <= arrival[b"early"] - t < 0.050 + 0.005


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_pcap_opens_in_tshark_with_valid_checksums(tmp_path) -> None:
    path = tmp_path / "x.pcap"
    t = time.time()
    with PcapWriter(path) as pc:
        pc.udp(t, ("10.0.0.1", 3478), ("10.0.0.2", 3478), b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"\0" * 12)
        pc.udp(t + 0.01, ("fd00::1", 5000), ("fd00::2", 6000), b"hello")
        flow = TcpFlowWriter(pc, ("10.0.0.1", 40000), ("10.0.0.2", 443))
        flow.data(t + 0.02, "up", b"x" * 3000)
        flow.data(t + 0.03, "down", b"y" * 10)
        flow.close(t + 0.04)
    out = subprocess.run(
        ["tshark", "-r", str(path), "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "frame.protocols", "-e", "ip.checksum.status",
         "-e", "udp.checksum.status", "-e", "tcp.checksum.status", "-e", "tcp.seq", "-e", "tcp.ack"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()
    assert len(out) == 2 + 3 + 4 + 2 + 3  # udp x2, handshake, 3 data segs + ack, 1 seg + ack, fin x3
    assert "stun" in out[0]
    assert "ipv6" in out[1]
    for line in out:
        # status 0 = bad; 1 = good; empty when not applicable
        assert "\t0" not in "\t" + "\t".join(line.split("\t")[1:4])
    seqs = [line.split("\t") for line in out[2:]]
    assert seqs[3][4] == "1" and seqs[4][4] == "1449" and seqs[5][4] == "2897"  # relative seq numbers advance by MSS
