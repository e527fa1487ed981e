"""Live calls through the Python API: artefacts, setup breakdown, failures that end cleanly (no
task, thread or socket left behind), and live against simulation.

The live-vs-simulation tests here are SHORT (4 s of speech, for CI time) and therefore looser than
the benchmark (``translab.bench.emulator.live_vs_sim``, 20 s): loss within 1 percentage point (the
media draws are the simulator's, so the loss pattern is identical), median network delay within
2 ms, and mouth-to-ear p50 within 6 ms of the simulation's own spread under the 0.3-1.5 ms of
timing noise a live path adds (``playout_sensitivity``: the adaptive buffer's median jumps by up to a
frame for that little; benchmark target: 3 ms). The mouth-to-ear comparison is
skipped when the host descheduled the whole process during the call (``host_stalls``: on a
shared VM, ~100 ms pauses a few times a minute, which an adaptive jitter buffer answers by growing
for the rest of the call, in live use as it would in a real client); it says so when it does."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time

import numpy as np
import pytest

from translab.config import CallConfig

pytestmark = pytest.mark.live


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_refused_websocket_connection_fails_fast_and_leaves_nothing_behind() -> None:
    from translab.emulate.emulator import LiveEmulator
    from translab.media.stream import encode_stream
    from translab.transport.websocket import websocket_call

    cfg = CallConfig(transport="websocket", sample_rate=16000, tls=False, profile="clean-lan").resolved()
    stream = encode_stream(np.zeros(1600, dtype=np.float32), cfg)
    fds, threads = _open_fds(), _threads()

    async def main():
        emu = LiveEmulator("clean-lan", seed=1)
        await emu.start()
        try:
            rec = await websocket_call(stream, cfg, emu, connect_timeout_s=2, target=("127.0.0.1", _free_port()))
        finally:
            await emu.close()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return rec, pending

    t = time.monotonic()
    rec, pending = asyncio.run(main())
    assert time.monotonic() - t < 4
    assert rec.status == "failed" and ("refused" in rec.reason.lower() or "failed" in rec.reason)
    assert pending == []
    assert _open_fds() <= fds
    assert _threads() <= threads


def test_webrtc_that_cannot_connect_fails_within_timeout_and_cleans_up(tmp_path) -> None:
    """A link that loses everything: the offer's TCP connection never opens (signalling crosses the
    link); the call reports failed with a reason within the timeout."""
    from translab.link.loss import BernoulliLoss
    from translab.live import live_call

    cfg = CallConfig(transport="webrtc", profile="clean-lan", duration_s=1, metrics=())
    fds = _open_fds()
    t = time.monotonic()
    res = live_call(cfg, tmp_path / "out", connect_timeout_s=2, chain_factory=lambda d: BernoulliLoss(1.0))
    assert time.monotonic() - t < 6
    assert res.summary["status"] == "failed"
    assert "signalling not done within 2 s (stuck in TCP connect" in res.summary["reason"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["mode"] == "live"
    time.sleep(0.2)
    assert _open_fds() <= fds + 1  # aiortc may keep one cached resource; no per-call leak
    assert not [t for t in threading.enumerate() if "decoder" in t.name.lower() or "encoder" in t.name.lower()]


def test_live_webrtc_call_writes_artefacts_and_setup_breakdown(tmp_path) -> None:
    from translab import trace as trace_mod
    from translab.live import live_call

    cfg = CallConfig(transport="webrtc", profile="clean-lan", duration_s=2, playout="fixed:40", metrics=(), seed=2)
    res = live_call(cfg, tmp_path, pcap=tmp_path / "call.pcap", drain_s=0.3, realtime=True)
    s = res.summary
    assert s["status"] == "ok" and s["mode"] == "live"
    for k in ("signalling_done", "ice_connected", "dtls_connected", "first_rtp_sent", "first_rtp_received",
              "first_audio_played"):
        assert s[f"setup_{k}_ms"] > 0
    assert s["setup_signalling_done_ms"] < s["setup_ice_connected_ms"] <= s["setup_dtls_connected_ms"]
    assert s["setup_first_rtp_sent_ms"] < s["setup_first_rtp_received_ms"] < s["setup_first_audio_played_ms"]
    tr = trace_mod.load(tmp_path / "trace.parquet")
    assert tr.attrs["mode"] == "live" and tr["arrival_s"].notna().all()
    assert (tmp_path / "output.wav").stat().st_size > 1000
    assert (tmp_path / "call.pcap").stat().st_size > 1000
    assert s["loss_rate"] == 0.0
    # clean LAN, fixed 40 ms buffer: m2e is frame + lookahead + 40 ms, within 3 ms. fixed:<ms> plays
    # each frame at its capture time + target (sender and receiver share the clock here), so that
    # sum holds by construction as long as every frame arrived in time; what the live call must
    # show is that it did (nothing late, nothing concealed) and that the real path through aiortc,
    # SRTP and the emulator adds well under 3 ms on a clean LAN.
    expected = cfg.frame_ms + s["budget_lookahead_ms"] + 40
    assert abs(s["m2e_p50_ms"] - expected) < 3, (s["m2e_p50_ms"], expected)
    assert 0.0 < s["budget_network_ms"] < 3.0, s["budget_network_ms"]
    if not s["host_stalls"]:  # a ~100 ms pause of the whole VM makes a few frames miss 40 ms, rightly
        assert s["late_rate"] == 0.0 and s["concealed_ratio"] == 0.0, (s["late_rate"], s["host_stalls"])
    assert s["stock_frames"] > 0 and s["rtc_callee_inbound_rtp_packetsReceived"] > 0


@pytest.mark.parametrize("transport", ["webrtc", "websocket"])
def test_live_matches_simulation_on_a_lossy_jittery_profile(transport: str) -> None:
    """Up to 3 live calls, until one ran without a host stall; loss and network delay are checked on
    every attempt, mouth-to-ear on the stall-free one (skipped, saying so, if none was)."""
    from translab.bench.emulator import playout_sensitivity
    from translab.live import live_call
    from translab.simulate import simulate

    extra = {"sample_rate": 16000} if transport == "websocket" else {}
    cfg = CallConfig(transport=transport, profile="hotel-wifi", duration_s=4, seed=5, metrics=(), **extra)
    sim_res = simulate(cfg)
    sim = sim_res.summary
    # the adaptive buffer's median moves by up to a frame under the 0.3-1.5 ms a live path adds
    # (WebSocket here: 138-154 ms), so the live call is judged against that spread, +-6 ms
    lo, hi = playout_sensitivity(sim_res.trace, cfg.playout, sim["conceal"])
    # the adaptive buffer times arrivals on NetEq's 10 ms tick, so delaying every packet by 0.3-1.5 ms
    # can move the median by part of a frame against the undelayed trace (WebSocket here: 153.9 vs
    # 150.1-151.3 ms), more than random per-packet noise spreads it
    assert lo - 4.0 <= sim["m2e_p50_ms"] <= hi + 4.0
    stalls = []
    for _ in range(3):
        live = live_call(cfg, drain_s=0.5, realtime=True).summary
        assert live["status"] == "ok", live["reason"]
        assert abs(live["loss_rate"] - sim["loss_rate"]) <= 0.01
        assert abs(live["budget_network_ms"] - sim["budget_network_ms"]) <= 2.0
        if not live["host_stalls"]:
            break
        stalls.append(f"{live['host_stalls']} (max {live['host_stall_max_ms']:.0f} ms)")
    else:
        pytest.skip(f"host paused the process in every attempt: {', '.join(stalls)}; "
                    "live mouth-to-ear not comparable")
    assert lo - 6.0 <= live["m2e_p50_ms"] <= hi + 6.0, (live["m2e_p50_ms"], sim["m2e_p50_ms"], lo, hi)


@pytest.mark.parametrize("lossy", [True, False])
def test_no_task_or_thread_left_after_a_call(lossy: bool) -> None:
    """After a failed (everything lost) and after a good WebRTC call, the loop has no task left and
    no aiortc worker thread survives."""
    from translab.link.loss import BernoulliLoss
    from translab.live import live_call_async

    async def main():
        cfg = CallConfig(transport="webrtc", profile="clean-lan", duration_s=1, metrics=())
        kw = {"chain_factory": lambda d: BernoulliLoss(1.0), "connect_timeout_s": 2} if lossy else {"drain_s": 0.2}
        res = await live_call_async(cfg, **kw)
        await asyncio.sleep(0.1)
        return res.summary["status"], [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    before = _threads()
    status, tasks = asyncio.run(main())
    assert status == ("failed" if lossy else "ok")
    assert tasks == []
    assert _threads() <= before


def test_aiortc_stock_playout_reports_what_aiortc_delivered() -> None:
    """With ``aiortc-stock`` a live call reports aiortc's own receiver in its own column group
    (``stock_*``, and its audio as ``stock_audio`` / stock_output.wav) beside translab's model of that
    receiver (the headline columns); nothing rewrites the headline."""
    from translab.live import live_call

    cfg = CallConfig(transport="webrtc", profile="clean-lan", duration_s=1.5, playout="aiortc-stock", metrics=())
    res = live_call(cfg, drain_s=0.5, realtime=True)
    s = res.summary
    assert s["status"] == "ok" and "playout_source" not in s and "model_m2e_p50_ms" not in s
    # aiortc holds 4 frames (prefetch) before playing: well above one frame on a clean LAN
    assert s["stock_m2e_p50_ms"] > 60 and s["m2e_p50_ms"] > 60
    assert res.stock_audio is not None and 0.5 * 1.5 * 48000 < len(res.stock_audio) <= 1.5 * 48000 + 960


def test_aiortc_stock_model_matches_real_aiortc_on_a_lossy_call() -> None:
    """The model, fed the live call's own arrival trace, plays what real aiortc delivered: same
    frames, same latency on the same sink (hotel-wifi seed 11 loses packet 21, so aiortc's buffer
    blocks, flushes and stays ~15 frames deep). Delivery time (``track.recv()`` returning) is
    reported apart: after an underrun the sink never catches up, so played > delivered."""
    from translab.live import live_call

    cfg = CallConfig(transport="webrtc", profile="hotel-wifi", seed=11, duration_s=3, playout="aiortc-stock",
                     metrics=())
    s = live_call(cfg, drain_s=0.5, realtime=True).summary
    assert s["status"] == "ok" and s["loss_rate"] > 0
    assert abs(s["m2e_p50_ms"] - s["stock_m2e_p50_ms"]) <= 3.0, (s["m2e_p50_ms"], s["stock_m2e_p50_ms"])
    assert abs(s["m2e_max_ms"] - s["stock_m2e_max_ms"]) <= 5.0
    assert s["stock_delivery_m2e_p50_ms"] <= s["stock_m2e_p50_ms"]
    assert s["m2e_p50_ms"] > 200  # the flush after the loss: ~15 frames buffered for good (issue #543)


def test_websocket_echo_measures_round_trips() -> None:
    """With echo on, the server sends each frame back and the client times the round trip: over a
    20 ms each-way link it is at least 40 ms and not much more."""
    from translab.link.delay import Delay
    from translab.live import live_call

    cfg = CallConfig(transport="websocket", sample_rate=16000, tls=False, profile="clean-lan", duration_s=1.0, metrics=())
    s = live_call(cfg, drain_s=0.3, echo=True, chain_factory=lambda d: Delay(0.02)).summary
    assert s["status"] == "ok", s["reason"]
    assert s["echo_messages"] >= 0.9 * s["packets_sent"]
    assert 40.0 <= s["echo_rtt_p50_ms"] < 55.0, s["echo_rtt_p50_ms"]


def test_live_webrtc_dtx_skips_silent_frames(tmp_path) -> None:
    """Opus DTX on a live call: the SDP says usedtx=1, the frames DTX leaves out are not sent (as a
    browser would), and every packet that is sent arrives byte for byte under its own media time."""
    from translab.live import live_call
    from translab.media.audio import write_wav

    t = np.arange(48000) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    clip = tmp_path / "tone-silence-tone.wav"
    write_wav(clip, np.concatenate([tone, np.zeros(48000, np.float32), tone]), 48000)
    cfg = CallConfig(transport="webrtc", dtx=True, profile="colocated", clip=str(clip), duration_s=3, metrics=())
    res = live_call(cfg, drain_s=0.3)
    s = res.summary
    assert s["status"] == "ok", s["reason"]
    assert "usedtx=1" in s["sdp_offer_opus_fmtp"]
    assert s["dtx_skipped"] > 20  # most of the silent second is not sent
    assert s["rtp_packets_sent"] == 150 - s["dtx_skipped"] == len(res.trace)
    assert s["rtp_payload_mismatches"] == 0 and s["loss_rate"] == 0.0
    gaps = np.diff(res.trace["media_ts"].to_numpy())
    assert gaps.max() > 20 * 960  # the skipped frames are a hole in media time, not renumbered


def test_websocket_permessage_deflate_only_when_asked() -> None:
    """Issue 4: permessage-deflate is off unless asked. Asked for, base64 JSON audio shrinks on the
    real wire (the emulator counts the bytes that crossed it), and the summary says so."""
    from translab.live import live_call

    cfg = CallConfig(transport="websocket", framing="realtime-json", profile="clean-lan", duration_s=1.0,
                     metrics=(), tls=False)
    plain = live_call(cfg, drain_s=0.3).summary
    packed = live_call(cfg, drain_s=0.3, deflate=True).summary
    assert plain["status"] == packed["status"] == "ok"
    assert plain["ws_deflate"] is False and packed["ws_deflate"] is True
    assert packed["emu_tcp_up_app_bytes_in"] < 0.85 * plain["emu_tcp_up_app_bytes_in"]
    assert packed["loss_rate"] == 0.0
