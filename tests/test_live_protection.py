"""Issue 13 on the live aiortc path: audio NACK + RTX (RFC 4585 / RFC 4588) and RED (RFC 2198)
negotiated in SDP, carried by real aiortc peers through the in-process emulator, and agreeing with
the simulator (residual loss within 0.5 percentage points on the same profile, seed and clip).

The live calls here are few and short (10 s and 3 s); on a loaded host the agreement call is
retried once when the host paused the process during it (``host_stalls``)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pytest

from translab.config import CallConfig
from translab.errors import ConfigError

OPUS_PT, RTX_PT, RED_PT = 96, 97, 63


def _lines(sdp: str, prefix: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith(prefix)]


def test_sdp_negotiates_audio_nack_rtx_and_red_and_restores_aiortc() -> None:
    from translab.transport.webrtc import advertised, new_peer

    cfg = CallConfig(nack=True, red=2).resolved()

    async def negotiate(protected: bool) -> tuple[str, str, int, int]:
        caller, callee = new_peer(), new_peer()
        try:
            with advertised(cfg, protected):
                caller.addTransceiver("audio", direction="sendonly")
                await caller.setLocalDescription(await caller.createOffer())
                await callee.setRemoteDescription(caller.localDescription)
                await callee.setLocalDescription(await callee.createAnswer())
            s = caller.getSenders()[0]
            return caller.localDescription.sdp, callee.localDescription.sdp, s._ssrc, s._rtx_ssrc
        finally:
            await asyncio.gather(caller.close(), callee.close())

    offer, answer, ssrc, rtx_ssrc = asyncio.run(negotiate(True))
    for sdp in (offer, answer):
        m = _lines(sdp, "m=audio")[0].split()
        assert m[3] == str(OPUS_PT) and {str(RTX_PT), str(RED_PT)} <= set(m[3:])  # Opus stays first
        assert f"a=rtcp-fb:{OPUS_PT} nack" in sdp.splitlines()
        assert f"a=rtpmap:{RTX_PT} rtx/48000" in sdp.splitlines()
        assert f"a=fmtp:{RTX_PT} apt={OPUS_PT}" in sdp.splitlines()
        assert f"a=rtpmap:{RED_PT} red/48000/2" in sdp.splitlines()
        assert f"a=fmtp:{RED_PT} 96/96/96" in sdp.splitlines()  # red = 2: two redundant blocks + primary
    assert f"a=ssrc-group:FID {ssrc} {rtx_ssrc}" in offer.splitlines()
    assert f"a=ssrc:{rtx_ssrc} cname:" in offer
    plain, plain_answer, _, _ = asyncio.run(negotiate(False))  # the codec table was restored
    for sdp in (plain, plain_answer):
        assert not _lines(sdp, "a=rtcp-fb") and "rtx/" not in sdp and "red/" not in sdp
        assert not _lines(sdp, "a=ssrc-group")


def test_live_engines_refuse_what_they_do_not_carry_by_name() -> None:
    from translab.call.live_protection import LIVE_OPTIONS, refuse_live

    refuse_live(CallConfig(nack=True, red=1, fec_loss="measured").resolved(), "live", LIVE_OPTIONS)  # carried
    refuse_live(CallConfig(abr=True, abr_feedback="rr").resolved(), "live", LIVE_OPTIONS)  # agrees: test_live_protection_rtcp
    with_abr = LIVE_OPTIONS
    with pytest.raises(ConfigError) as e:  # the live sender has receiver reports only
        refuse_live(CallConfig(nack=True, abr=True).resolved(), "live", with_abr)
    assert e.value.field == "abr_feedback" and e.value.value == "twcc" and "transport-wide CC" in str(e.value)
    with pytest.raises(ConfigError) as e:
        refuse_live(CallConfig(fec_loss="measured", dtx=True).resolved(), "live", LIVE_OPTIONS)
    assert e.value.field == "dtx" and "measured" in str(e.value)
    with pytest.raises(ConfigError) as e:
        refuse_live(CallConfig(abr=True, abr_feedback="rr", dtx=True).resolved(), "live", with_abr)
    assert e.value.field == "dtx" and "abr" in str(e.value)
    with pytest.raises(ConfigError) as e:
        refuse_live(CallConfig(abr=True, abr_feedback="rr").resolved(), "netns")
    assert e.value.field == "abr" and "netns" in str(e.value)
    with pytest.raises(ConfigError) as e:
        refuse_live(CallConfig(red=1).resolved(), "netns")
    assert e.value.field == "red" and "netns" in str(e.value) and "in-process" in str(e.value)


def test_sequence_numbers_and_timestamps_unwrap_across_the_wrap() -> None:
    from translab.protection.endpoint import SeqUnwrapper

    u = SeqUnwrapper()
    assert [u(x) for x in (65534, 65535, 0, 1, 65535, 2)] == [65534, 65535, 65536, 65537, 65535, 65538]
    t = SeqUnwrapper(bits=32)
    assert [t(x) for x in (2**32 - 960, 0, 960)] == [2**32 - 960, 2**32, 2**32 + 960]


def test_endpoints_nack_and_resend_across_the_sequence_wrap() -> None:
    """The sender's RED blocks and RTX history and the receiver's NACKs work on 16-bit sequence
    numbers and 32-bit timestamps that wrap during the call."""
    from translab.protection.endpoint import ProtectedReceiver, ProtectedSender

    tx = ProtectedSender(red=1)
    rx = ProtectedReceiver(48000, 0.02, "fixed:200", nack=True)
    seqs = [(65530 + k) % 65536 for k in range(12)]
    ts = [(2**32 - 3 * 960 + 960 * k) % 2**32 for k in range(12)]
    sent = {}
    for k, (q, t) in enumerate(zip(seqs, ts)):
        sent[q] = tx.wrap(q, t, bytes([k]) * 3, 0.02 * k, 0.05)
        assert sent[q] == (bytes([OPUS_PT]) if k == 0 else _red([(960, bytes([k - 1]) * 3)], b"")) + bytes([k]) * 3
    asked: list[list[int]] = []
    for k, (q, t) in enumerate(zip(seqs, ts)):
        if q in (65535, 0):  # lost on either side of the wrap
            continue
        asked.append(rx.on_packet(q, t, 0.02 * k + 0.04, 0.05))
    assert [65535, 0] in asked and rx.nack_sent == sum(1 for a in asked if a)
    out = tx.on_nack([65535, 0], 0.25, 0.05)
    assert out == [(65535, b"\xff\xff" + sent[65535]), (0, b"\x00\x00" + sent[0])]
    assert tx.on_nack([0], 0.27, 0.05) == []  # within one RTT of the resend: still in flight


def test_retransmissions_cross_the_link_on_side_streams_leaving_the_originals_draws_alone() -> None:
    """RTP with the RTX payload type crosses the media chain (shared state) but draws from the side
    streams of retransmission_rng(seed), as the simulator's retransmissions do: the originals' loss
    pattern is the one of a call without retransmissions, and the retransmissions' is the side
    streams' own."""
    from translab.emulate.datagram import DatagramLink
    from translab.emulate.scheduler import DeadlineScheduler
    from translab.link.chain import LinkChain
    from translab.link.loss import BernoulliLoss
    from translab.link.profiles import direction_rngs, retransmission_rng

    seed, n = 11, 60
    mk = lambda: LinkChain([BernoulliLoss(0.3)])  # noqa: E731

    async def main() -> DatagramLink:
        sched = DeadlineScheduler()
        link = DatagramLink("up", sched, mk(), direction_rngs(seed)["up"])
        link.route_retransmissions(RTX_PT, retransmission_rng(seed))
        for i in range(n):
            link.submit(bytes([0x80, OPUS_PT]) + b"\0" * 10, lambda d: None)
            if i % 3 == 0:
                link.submit(bytes([0x80, RTX_PT]) + b"\0" * 12, lambda d: None)
        sched.close()
        return link

    link = asyncio.run(main())
    lost = np.isnan(np.array(link.media_log)[:, 1])
    assert len(lost) == n and link.counters.by_kind["rtx"] == n // 3
    ref = mk()
    idx, _ = ref.apply(np.zeros(n), np.full(n, 40), direction_rngs(seed)["up"])
    assert (lost == ~np.isin(np.arange(n), idx)).all()
    side = mk()
    side.bind(direction_rngs(seed)["up"])
    streams = side.side_streams(retransmission_rng(seed))
    rtx_lost = sum(not side.apply_one(0.0, 42, direction_rngs(seed)["up"], streams=streams) for _ in range(n // 3))
    assert link.counters.packets_lost == int(lost.sum()) + rtx_lost


@pytest.mark.live
@pytest.mark.parametrize("playout, seed", [("fixed:200", 3), ("adaptive", 1)])
def test_live_nack_recovers_losses_and_agrees_with_the_simulation(playout: str, seed: int) -> None:
    """sfu-10pct-loss (10 % Bernoulli loss up, ~85 ms RTT), the default clip, 10 s, with a 200 ms
    fixed buffer (the RTT fits) and with the adaptive buffer and its NACK rule: the originals see
    the simulator's draws (identical loss), retransmissions cross the uplink on the simulator's side
    streams, the RTCP reports (SR/RR, the RTT from LSR/DLSR, NACKs) follow the schedule and link
    draws the simulator's rr mode shares (translab.protection.rtcp), every datagram enters the link
    when the simulator sends it (translab.protection.timing), and so the loss after recovery
    (effective_loss_rate) is within the issue's 0.5 percentage points of the simulation's; measured,
    it is the same packet for packet (the same NACKs and retransmissions). Adaptive seed 1
    was +1.29 points before the launch times (the host's ~2 ms on the NACK loop). A run in which
    the host handed a datagram over late is run again (at most twice)."""
    from translab.call import run_call
    from translab.call.live import LiveEngine
    from translab.call.simulated import SimulatedEngine

    cfg = CallConfig(profile="sfu-10pct-loss", duration_s=10, seed=seed, metrics=(), nack=True, conceal="opus-plc",
                     playout=playout, abr_feedback="rr")
    sim = run_call(cfg, SimulatedEngine()).summary
    assert sim["rtx_recovered"] > 0
    for attempt in range(3):
        live = run_call(cfg, LiveEngine(drain_s=0.5, realtime=True)).summary
        assert live["status"] == "ok", live["reason"]
        if live["host_late_launches"] == 0:
            break
    assert live["rtp_payload_mismatches"] == 0
    assert live["loss_rate"] == sim["loss_rate"] and live["loss_rate"] > 0.06
    # NACK recovers: the RTT (~90 ms) fits in the buffer; every retransmission crossed the uplink
    assert live["nack_sent"] == live["rtp_nacks_sent"] == live["rtp_nacks_received"] > 0
    assert live["rtx_sent"] == live["rtp_rtx_sent"] == live["emu_udp_up_packets_rtx"] > 0
    assert live["rtx_recovered"] >= 0.5 * live["loss_rate"] * live["packets_sent"]
    assert live["effective_loss_rate"] < 0.4 * live["loss_rate"]
    assert abs(live["effective_loss_rate"] - sim["effective_loss_rate"]) <= 0.005, (
        live["effective_loss_rate"], sim["effective_loss_rate"], live["host_late_launches"])
    if live["host_late_launches"] == 0:  # then the same NACKs and retransmissions
        assert [live[k] for k in ("nack_sent", "rtx_sent", "rtx_recovered")] == [
            sim[k] for k in ("nack_sent", "rtx_sent", "rtx_recovered")]


def _pcap_udp(path: Path) -> list[tuple[tuple[str, int], bytes]]:
    """(source address, UDP payload) of every record of a raw-IPv4 pcap."""
    data = path.read_bytes()
    out = []
    pos = 24
    while pos + 16 <= len(data):
        n = struct.unpack_from("<I", data, pos + 8)[0]
        pkt = data[pos + 16:pos + 16 + n]
        pos += 16 + n
        if pkt[0] >> 4 != 4 or pkt[9] != 17:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        src = ".".join(str(b) for b in pkt[12:16])
        sport = struct.unpack_from("!H", pkt, ihl)[0]
        out.append(((src, sport), pkt[ihl + 8:]))
    return out


def _red(blocks: list[tuple[int, bytes]], primary: bytes) -> bytes:
    """RFC 2198 section 3 written out: 4-byte headers (F=1, PT, 14-bit offset, 10-bit length) for
    the redundant blocks, oldest first, a 1-byte header (F=0, PT) for the primary, then the data."""
    head = b"".join(bytes([0x80 | OPUS_PT, off >> 6, ((off & 0x3F) << 2) | (len(d) >> 8), len(d) & 0xFF])
                    for off, d in blocks)
    return head + bytes([OPUS_PT]) + b"".join(d for _, d in blocks) + primary


@pytest.mark.live
def test_live_red_and_rtx_packets_are_byte_exact_on_the_wire(tmp_path) -> None:
    """A 3 s live call with RED (distance 2) and NACK: the payloads sent and received are RFC 2198 /
    RFC 4588 byte for byte, and the capture shows the headers: RED on payload type 63 and the media
    SSRC, RTX on payload type 97, the RTX SSRC of the offer's FID group, its own consecutive sequence
    numbers, the original's timestamp, and 2 bytes (the OSN) more than the original."""
    from translab.call import run_call
    from translab.call.live import LiveEngine

    # a fixed 200 ms buffer: NACKs go out from the first loss on, whenever the first RTT sample comes
    cfg = CallConfig(profile="sfu-10pct-loss", duration_s=3, seed=3, metrics=(), nack=True, red=2, conceal="opus-plc",
                     playout="fixed:200")
    res = run_call(cfg, LiveEngine(pcap=tmp_path / "call.pcap", drain_s=0.5, realtime=True))
    s = res.summary
    assert s["status"] == "ok", s["reason"]
    assert s["rtp_payload_mismatches"] == 0  # what the receiver got is what was sent, RTX included
    assert s["red_recovered"] > 0 and s["rtx_sent"] > 0
    from translab.call.prepare import prepare_call

    stream = prepare_call(cfg).stream
    assert stream is not None
    sent = dict(zip(res.trace["seq"].tolist(), res.trace["payload"].tolist()))  # originals as sent
    ts48 = [int(t) * 48000 // int(stream.sample_rate) for t in stream.media_ts]
    for k in range(len(stream.seq)):
        blocks = [(ts48[k] - ts48[k - j], bytes(stream.payload[k - j])) for j in (2, 1) if k - j >= 0]
        assert sent[k] == _red(blocks, bytes(stream.payload[k])), k

    fid = next(x for x in s["sdp_offer_protection"].split(" | ") if x.startswith("a=ssrc-group:FID"))
    media_ssrc, rtx_ssrc = (int(x) for x in fid.split()[1:3])
    rtp = []
    for _, d in _pcap_udp(tmp_path / "call.pcap"):
        if len(d) >= 12 and 128 <= d[0] <= 191 and not 192 <= d[1] <= 223:
            pt = d[1] & 0x7F
            seq, ts, ssrc = struct.unpack_from("!HII", d, 2)
            rtp.append((pt, seq, ts, ssrc, len(d)))
    red = [r for r in rtp if r[0] == RED_PT]  # in release order = send order (no reordering)
    rtx = [r for r in rtp if r[0] == RTX_PT]
    assert red and rtx and {r[0] for r in rtp} == {RED_PT, RTX_PT}  # no plain Opus on the wire
    assert {r[3] for r in red} == {media_ssrc} and {r[3] for r in rtx} == {rtx_ssrc}
    # the first captured original is the first delivered packet of the trace; from it, every
    # original's k follows from its sequence number, and its timestamp must follow the media's
    k0 = int(res.trace.loc[res.trace["arrival_s"].notna(), "seq"].min())
    _, seq0, ts0, _, _ = red[0]
    k_of_ts = {(ts0 + ts48[k] - ts48[k0]) % 2**32: k for k in range(len(stream.seq))}
    overhead = set()
    for _, seq, ts, _, size in red:
        k = k0 + (seq - seq0) % 2**16
        assert k_of_ts[ts] == k
        overhead.add(size - len(sent[k]))  # RTP header + SRTP tag: the same for every packet
    (o,) = overhead
    for _, seq, ts, _, size in rtx:  # the original's timestamp, its payload plus the 2-byte OSN
        assert size == o + 2 + len(sent[k_of_ts[ts]])
    assert s["emu_udp_up_packets_rtx"] == s["rtx_sent"]
    seqs = [r[1] for r in rtx]  # their own sequence space: consecutive in send order
    assert all((b - a) % 2**16 >= 1 for a, b in zip(seqs, seqs[1:]))
    assert (seqs[-1] - seqs[0]) % 2**16 < s["rtx_sent"]


@pytest.mark.live
def test_live_fec_follows_the_loss_the_receiver_reports() -> None:
    """fec_loss = "measured" live: the sender encodes during the call and sets Opus' expected loss
    from the RTCP receiver reports' loss fraction (libwebrtc's smoothing, MeasuredLossFec): it starts
    at 0 % (no FEC in the packets), rises once reports show the 10 % loss, and the packets carry FEC
    from then on. The reports follow the seeded schedule the simulator's rr mode shares
    (translab.protection.rtcp), so the expected loss changes at the simulated time (1.367 s, live
    within 2 ms) and the loss after recovery agrees within 0.5 points (measured: 5.6 % both)."""
    from translab.call import run_call
    from translab.call.live import LiveEngine
    from translab.call.simulated import SimulatedEngine

    cfg = CallConfig(profile="sfu-10pct-loss", duration_s=5, seed=3, metrics=(), fec_loss="measured",
                     abr_feedback="rr")
    sim = run_call(cfg, SimulatedEngine())
    live = run_call(cfg, LiveEngine(drain_s=0.5, realtime=True))
    s = live.summary
    assert s["status"] == "ok", s["reason"]
    assert s["rtp_payload_mismatches"] == 0
    tl = live.trace.attrs["protection"]["timeline"]
    assert tl[0][3] == 0 and len(tl) >= 2 and tl[1][3] > 0
    change = tl[1][0]
    assert 0.1 < change < 3.0 and abs(change - sim.trace.attrs["protection"]["timeline"][1][0]) < 0.005
    t = live.trace.sort_values("seq")
    before = t.loc[t["send_s"] < change - 0.05, "fec"]
    after = t.loc[t["send_s"] > change + 0.1, "fec"]
    assert not before.any() and after.mean() > 0.2  # FEC (LBRR) in voiced frames once asked for
    assert s["effective_loss_rate"] < s["loss_rate"] == sim.summary["loss_rate"]
    assert abs(s["effective_loss_rate"] - sim.summary["effective_loss_rate"]) <= 0.005


@pytest.mark.live
def test_protection_live_bench_counts_agreement_and_late_launches() -> None:
    """translab bench --only protection_live on one short case: the difference it reports is the
    live minus simulated loss after recovery in points, and the totals count the calls."""
    from translab.bench.protection_live import agreement

    out = agreement((("nack_adaptive_sfu", dict(nack=True, conceal="opus-plc"), (3,)),), duration_s=3.0)
    assert out["calls"] == 1 and set(out) >= {"nack_adaptive_sfu_s3_live_minus_sim_pp", "nack_adaptive_sfu_s3_late_launches"}
    assert out["calls_within_bar"] == (abs(out["nack_adaptive_sfu_s3_live_minus_sim_pp"]) <= 0.5)
    if out["calls_with_late_launches"] == 0:
        assert out["calls_equal"] == 1 and out["max_abs_diff_pp_on_time"] == 0.0
