"""Issue 13: a protected live call's protocol timing comes from the emulated wire
(:class:`translab.transport.webrtc.WireTimes`), not from when Python handles a datagram."""

from __future__ import annotations

import asyncio
import types

import numpy as np
import pytest

from translab.config import CallConfig


def test_wire_times_stamp_each_datagram_with_its_delivery_not_its_handling() -> None:
    """Each delivered copy of an RTP datagram is stamped with the arrival the link model gave it (the
    scheduler's intended release), even when it is handled 20 ms later; two copies of one datagram
    (duplication) get their own arrivals in order; a datagram the link did not deliver is stamped
    when handled; an SR's send time is when it entered the link."""
    from translab.emulate.datagram import DatagramLink
    from translab.emulate.scheduler import DeadlineScheduler, now
    from translab.link.chain import LinkChain
    from translab.link.delay import Delay
    from translab.link.duplication import Duplication
    from translab.transport.webrtc import WireTimes

    async def main() -> tuple[list[tuple[float, float]], list[float], dict[int, float], tuple[float, float]]:
        sched = DeadlineScheduler()
        chain = LinkChain([Duplication(1.0), Delay(0.03, 0.005, "uniform", reorder=True)])
        link = DatagramLink("up", sched, chain, np.random.default_rng(5))
        wire = WireTimes()
        assert wire.attach(types.SimpleNamespace(udp={"up": link}))
        assert not WireTimes().attach(types.SimpleNamespace())  # no UDP links: nothing stamped
        inbox: asyncio.Queue[bytes] = asyncio.Queue()
        ice = types.SimpleNamespace(_recv=inbox.get)  # what aiortc's DTLS transport awaits per datagram
        clock = wire.receiving(ice)
        rtp = bytes([0x80, 96, 0, 7]) + b"\x00" * 8 + b"srtp payload"
        before = now()
        link.submit(rtp, inbox.put_nowait)
        sr = bytes([0x80, 200, 0, 6, 0x12, 0x34, 0x56, 0x78]) + b"\x00" * 40
        link.submit(sr, lambda d: None)
        after = now()
        await asyncio.sleep(0.08)  # both copies delivered ~30 ms in, handled 50 ms later
        handled = []
        for _ in range(2):
            assert await ice._recv() == rtp
            handled.append((clock(), now()))
        inbox.put_nowait(rtp[:4] + b"\x01" * 20)  # never crossed the link
        await ice._recv()
        unstamped = clock() - now()
        releases = sorted(d for d, _ in sched.log)
        sched.close()
        return handled, releases, dict(wire.sr_sent), (before, after, unstamped)

    handled, releases, sr_sent, (before, after, unstamped) = asyncio.run(main())
    rtp_due = [d for d in releases if d < after + 0.1][:4]
    stamps = [t for t, _ in handled]
    assert stamps == sorted(stamps) and stamps[0] != stamps[1]  # each copy its own arrival
    assert set(stamps) <= set(rtp_due)  # the link model's arrivals, exactly
    for t, t_handled in handled:
        assert 0.025 - 1e-9 <= t - before <= 0.04 and t_handled - t > 0.03
    assert before <= sr_sent[0x12345678] <= after
    assert abs(unstamped) < 0.005


@pytest.mark.live
def test_live_nack_rule_and_arrivals_come_from_the_wire() -> None:
    """NACK with the adaptive buffer on sfu-10pct-loss, seed 3, 4 s. The RTT sample (LSR/DLSR with
    wire times, every report launched REACTION_S after its cause, DLSR counted to that launch) and so
    the NACK rule's minimum target (RTT + 2 frames) are the simulator's (measured: equal to 1e-9 ms;
    with handling times, 1.2-1.8 ms apart). Every original enters the link at its capture time and
    arrives when the simulation says, although the receiver handles it later
    (host_rx_lag_p50_ms > 0). A run in which the host handed a datagram over after its launch time
    is run again."""
    from translab.call import run_call
    from translab.call.live import LiveEngine
    from translab.call.simulated import SimulatedEngine

    cfg = CallConfig(profile="sfu-10pct-loss", duration_s=4, seed=3, metrics=(), nack=True, abr_feedback="rr")
    sim = run_call(cfg, SimulatedEngine())
    for attempt in range(3):  # a host stall delays a launch: run again
        live = run_call(cfg, LiveEngine(drain_s=0.5, realtime=True))
        s = live.summary
        assert s["status"] == "ok", s["reason"]
        if s["host_late_launches"] == 0:
            break
    assert s["host_late_launches"] == 0, s["host_launch_late_max_ms"]
    target_sim = sim.trace.attrs["protection"]["min_target_ms"]
    target_live = live.trace.attrs["protection"]["min_target_ms"]
    assert target_sim is not None and target_live is not None
    assert abs(target_live - target_sim) < 1e-3, (target_live, target_sim)
    assert s["host_rx_lag_p50_ms"] > 0.05  # handled after the wire arrival the receiver used
    a, b = sim.trace.set_index("seq"), live.trace.set_index("seq")
    assert (a["arrival_s"].isna() == b["arrival_s"].isna()).all()  # the simulator's loss draws
    assert np.allclose(b["send_s"], a["send_s"], atol=1e-6)  # on the capture grid
    got = b["arrival_s"].dropna()
    assert len(got) > 150 and np.allclose(got, a["arrival_s"].dropna(), atol=1e-6)


@pytest.mark.live
def test_live_datagrams_have_the_header_models_sizes(monkeypatch) -> None:
    """What two aiortc peers put on the emulated wire is what translab.metrics.bandwidth counts:
    every RTP datagram (originals and RFC 4588 retransmissions) is the wire size the trace gives
    it (IP + UDP + RTP 12 + extensions 8 + payload + SRTP tag 16: aiortc negotiates AEAD_AES_256_GCM),
    every SR is rtcp_sr_wire_bytes, every RTCP datagram toward the sender an RR
    (rtcp_rr_wire_bytes) or a NACK (rtcp_nack_wire_bytes for one to three FCIs). sfu-10pct-loss,
    NACK, seed 3, 2 s."""
    from translab.call.live import LiveEngine
    from translab.emulate import datagram as dg
    from translab.metrics.bandwidth import HeaderModel, rtcp_nack_wire_bytes, rtcp_rr_wire_bytes, rtcp_sr_wire_bytes

    seen: dict[tuple[str, str], list[int]] = {}
    enter = dg.DatagramLink._enter

    def counting(self, data, deliver, addrs, kind, t):  # type: ignore[no-untyped-def]
        seen.setdefault((self.name, dg.classify_datagram(data)), []).append(len(data) + dg.UDP_IPV4_OVERHEAD)
        return enter(self, data, deliver, addrs, kind, t)

    monkeypatch.setattr(dg.DatagramLink, "_enter", counting)
    cfg = CallConfig(profile="sfu-10pct-loss", duration_s=2, seed=3, metrics=(), nack=True, playout="fixed:200",
                     abr_feedback="rr", conceal="opus-plc")
    engine = LiveEngine(drain_s=0.5, realtime=True)
    rec = engine.run(engine.prepare(cfg), None)
    assert rec.status == "ok", rec.reason
    assert rec.trace["rtx"].any()
    assert sorted(seen[("up", "rtp")]) == sorted(rec.trace["wire_bytes"].astype(int).tolist())
    hm = HeaderModel()
    bye = hm.ip_bytes + 8 + 8 + 4 + hm.srtp_tag_bytes  # the sender's BYE at the end
    assert set(seen[("up", "rtcp")]) == {rtcp_sr_wire_bytes(hm), bye}
    nacks = {rtcp_nack_wire_bytes(list(range(0, 17 * n, 17)), hm) for n in (1, 2, 3)}
    assert rtcp_rr_wire_bytes(hm) in seen[("down", "rtcp")]
    assert set(seen[("down", "rtcp")]) - {rtcp_rr_wire_bytes(hm)} <= nacks
    assert len(set(seen[("down", "rtcp")]) & nacks) >= 1
