"""External endpoints: URL validation, downlink decoding, jitter, the Prometheus families and the
probe loop's guarantees (pure parts, no sockets), then live calls and probes against a real pipecat
echo bot (examples/pipecat_echo_bot.py, WebRTC and Twilio-framed WebSocket) and `translab serve`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from translab.errors import ConfigError
from translab.lab.probe import ProbeConfig, parse_duration
from translab.media.g711 import ulaw_decode
from translab.metrics.prometheus import CallMetrics
from translab.transport.external import (
    FAILURES, ExternalRecord, decode_downlink, parse_target, rfc3550_jitter,
)

ROOT = Path(__file__).resolve().parents[1]


# -- pure parts ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, transport, port, path, framing", [
    ("ws://127.0.0.1:8765/", "websocket", 8765, "/", None),
    ("wss://voice.example/media?x=1#twilio-json", "websocket", 443, "/media?x=1", "twilio-json"),
    ("http://127.0.0.1:7860/api/offer", "webrtc", 7860, "/api/offer", None),
    ("https://bot.example/offer", "webrtc", 443, "/offer", None),
])
def test_parse_target(url: str, transport: str, port: int, path: str, framing: str | None) -> None:
    t = parse_target(url)
    assert (t.transport, t.port, t.path, t.framing) == (transport, port, path, framing)
    assert t.tls == url.startswith(("wss", "https"))


@pytest.mark.parametrize("url", ["ftp://h/", "ws://", "http:///offer", "ws://h:99999/", "127.0.0.1:8765",
                                 "ws://h/#bogus", "http://h/#binary"])
def test_parse_target_refuses_with_one_error_naming_the_option(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^--target: "):
        parse_target(url)


def test_cli_bad_target_is_one_line_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "translab.cli", "call", "--target", "ftp://x/"],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "translab call: error: --target: 'ftp://x/' is not allowed (allowed: ws://HOST[:PORT]/PATH[#FRAMING] or "
        "wss://... (WebSocket), http(s)://HOST[:PORT]/PATH (WebRTC offer URL taking POST {sdp, type}; #whip: a WHIP endpoint))"]


def test_decode_downlink_per_framing() -> None:
    pcm = np.array([0, 1000, -1000, 32767], dtype="<i2")
    kind, x = decode_downlink("binary", pcm.tobytes(), 16000)
    assert kind == "audio" and np.array_equal(x, pcm / 32768.0)
    for name in ("response.output_audio.delta", "response.audio.delta"):
        ev = json.dumps({"type": name, "response_id": "r", "delta": base64.b64encode(pcm.tobytes()).decode()})
        kind, x = decode_downlink("realtime-json", ev, 24000)
        assert kind == "audio" and np.array_equal(x, pcm / 32768.0)
    ulaw = bytes([0xFF, 0x7F, 0x00, 0x80])
    ev = json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": base64.b64encode(ulaw).decode()}})
    kind, x = decode_downlink("twilio-json", ev, 8000)
    assert kind == "audio" and np.array_equal(x, ulaw_decode(ulaw) / 32768.0)
    assert decode_downlink("twilio-json", json.dumps({"event": "clear", "streamSid": "MZ1"}), 8000)[0] == "clear"
    assert decode_downlink("twilio-json", json.dumps({"event": "mark"}), 8000)[0] == "other"
    assert decode_downlink("realtime-json", "not json", 24000)[0] == "other"
    assert decode_downlink("binary", b"\x00", 16000)[0] == "other"  # odd byte count: not PCM16


def test_delivery_times_of_messages_from_a_relay_log() -> None:
    """A message has arrived when the relay has delivered its last byte; bytes come in order."""
    from translab.transport.external import delivery_times

    log = [(1.0, 100), (1.5, 250), (2.0, 250), (3.0, 400)]  # (s, bytes delivered so far)
    got = delivery_times(np.array([100, 101, 250, 400, 401]), log)
    assert got[:4].tolist() == [1.0, 1.5, 1.5, 3.0] and math.isnan(got[4])
    assert np.isnan(delivery_times(np.array([1]), [])).all()


def test_rfc3550_jitter() -> None:
    media = np.arange(100) * 0.02
    assert rfc3550_jitter(media + 0.05, media) == pytest.approx(0.0)
    # transit alternates 0 / 10 ms: |D| = 10 ms each step; J -> 10 ms * (1 - (15/16)^n)
    arr = media + np.where(np.arange(100) % 2, 0.01, 0.0)
    assert rfc3550_jitter(arr, media) == pytest.approx(0.01 * (1 - (15 / 16) ** 99))
    assert math.isnan(rfc3550_jitter(np.array([1.0]), np.array([0.0])))


def test_first_audible_ignores_silence_and_comfort_noise() -> None:
    rec = ExternalRecord(rate=8000)
    rng = np.random.default_rng(1)
    rec.chunks = [(0.1, np.zeros(160, np.float32)), (0.12, (1e-4 * rng.standard_normal(160)).astype(np.float32)),
                  (0.14, (0.1 * np.sin(np.arange(160) / 3)).astype(np.float32))]
    assert rec.first_audible_s() == 0.14
    assert math.isnan(ExternalRecord().first_audible_s())


def test_parse_duration_and_probe_must_fit_its_interval() -> None:
    assert [parse_duration(s, "--every") for s in ("60s", "3m", "1h", "500ms", "2.5")] == [60, 180, 3600, 0.5, 2.5]
    with pytest.raises(ConfigError, match="--every"):
        parse_duration("soon", "--every")
    from translab.config import CallConfig

    t = (parse_target("ws://127.0.0.1:1/"),)
    with pytest.raises(ConfigError, match=r"^--every: .*more than the probe call's 6.5 s"):
        ProbeConfig(targets=t, every_s=6.5, call=CallConfig(duration_s=3.0)).check()
    ProbeConfig(targets=t, every_s=7.0, call=CallConfig(duration_s=3.0)).check()


def _sample(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def test_call_metrics_from_summaries() -> None:
    m = CallMetrics("translab_probe")
    ok = {"status": "ok", "transport": "webrtc", "target": "http://h/offer", "profile": "4g", "connect_ms": 300.0,
          "first_audio_out_ms": 900.0, "turn_latency_ms": None, "loss_rate": 0.02, "reply_loss_rate": 0.0,
          "reply_jitter_ms": 5.0, "rtt_ms": 60.0, "reply_plcmos": 3.5}
    m.observe(ok)
    m.observe({**ok, "connect_ms": 2500.0})
    m.observe({"status": "failed", "failure": "ice_failed", "transport": "webrtc", "target": "http://h/offer",
               "profile": "4g"})
    text = m.exposition()
    lab = {"transport": "webrtc", "target": "http://h/offer", "profile": "4g"}
    assert _sample(text, "translab_probe_setup_seconds_count", **lab) == 2
    assert _sample(text, "translab_probe_setup_seconds_sum", **lab) == pytest.approx(2.8)
    assert _sample(text, "translab_probe_setup_seconds_bucket", le="0.3", **lab) == 1
    assert _sample(text, "translab_probe_first_audio_out_seconds_count", **lab) == 2
    assert _sample(text, "translab_probe_turn_latency_seconds_count", **lab) is None  # never observed
    assert _sample(text, "translab_probe_calls_total", **lab) == 3
    assert _sample(text, "translab_probe_failures_total", reason="ice_failed", **lab) == 1
    assert _sample(text, "translab_probe_up", **lab) == 0
    assert _sample(text, "translab_probe_loss_ratio", direction="up", **lab) == pytest.approx(0.02)
    assert _sample(text, "translab_probe_jitter_seconds", **lab) == pytest.approx(0.005)
    assert _sample(text, "translab_probe_rtt_seconds", **lab) == pytest.approx(0.06)
    assert _sample(text, "translab_probe_quality_mos", estimator="plcmos", **lab) == pytest.approx(3.5)
    assert set(FAILURES) >= {"ice_failed", "dtls_timeout", "ws_handshake_refused", "connect_refused", "no_audio_back"}


# -- live: a real pipecat echo bot, translab serve ----------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bot(mode: str):
    """examples/pipecat_echo_bot.py in a subprocess on loopback: (offer URL, Twilio WebSocket URL)."""
    pytest.importorskip("pipecat", reason="pipecat-ai not installed (pip install 'translab[pipecat]')")
    ws_port = _free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "pipecat_echo_bot.py"), "--http-port", "0",
                             "--ws-port", str(ws_port), "--mode", mode, "--stop-secs", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while not line.startswith("ready") and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("ready"), f"pipecat bot did not start: {line!r} (exit {proc.poll()})"
        http = int(line.split("http=")[1].split()[0])
        yield f"http://127.0.0.1:{http}/api/offer", f"ws://127.0.0.1:{ws_port}/#twilio-json"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def pipecat_bot():
    """The echo bot: (offer URL, Twilio WebSocket URL)."""
    yield from _bot("echo")


@pytest.fixture(scope="module")
def pipecat_parrot():
    """The parrot bot (replies with the caller's utterance when its Silero VAD hears the turn end)."""
    yield from _bot("parrot")


@pytest.mark.live
@pytest.mark.parametrize("which", ["webrtc", "websocket"])
def test_call_target_pipecat_bot_over_a_lossy_profile(pipecat_bot, which: str, tmp_path: Path, capsys) -> None:
    from translab.cli import main

    url = pipecat_bot[0] if which == "webrtc" else pipecat_bot[1]
    rc = main(["call", "--target", url, "--profile", "hotel-wifi", "--duration", "2.5", "--quiet",
               "--out", str(tmp_path), "--metrics", "plcmos", "--json", "--no-realtime"])
    s = json.loads((tmp_path / "summary.json").read_text())
    assert json.loads(capsys.readouterr().out) == s  # --json: exactly one JSON object on stdout
    assert rc == 0, s.get("reason")
    assert s["status"] == "ok" and s["mode"] == "live" and s["transport"] == which and s["failure"] == ""
    assert s["profile"] == "hotel-wifi" and s["emu_profile"] == "hotel-wifi" and s["target"] == url
    assert s["packets_sent"] == 200  # 2.5 s of clip + 1.5 s of silence while listening, 20 ms frames
    assert s["duration_s"] == pytest.approx(4.0)
    # the echo comes back after set-up; it starts while the caller still speaks, so no turn latency
    assert 0 < s["connect_ms"] < s["first_audio_out_ms"] < s["connect_ms"] + 2500
    assert s["turn_latency_ms"] is None
    assert 1.5 < s["reply_audio_s"] < 6.0
    # hotel-wifi: 10 ms base +- Pareto jitter each way (0 ms at best); bare loopback is < 1 ms
    assert 2 < s["rtt_ms"] < 300
    assert 1.0 < s["reply_plcmos"] <= 5.0
    # the one analysis ran on the uplink as the endpoint's socket got it: the profile's delay is in it
    assert 3 < s["net_delay_p50_ms"] < 300 and s["m2e_p50_ms"] > s["net_delay_p50_ms"]
    for f in ("trace.parquet", "output.wav", "frames.parquet", "received.wav"):
        assert (tmp_path / f).stat().st_size > 1000, f
    if which == "webrtc":
        for k in ("offer_ready", "tcp_connected", "answer_received", "ice_connected", "dtls_connected"):
            assert s[f"setup_{k}_ms"] is not None, k
        assert s["setup_answer_received_ms"] < s["setup_dtls_connected_ms"]
        assert s["emu_udp_up_packets_sent"] > 100 and s["emu_udp_down_packets_sent"] > 100
        # the uplink loss the emulator caused, and the loss pipecat's aiortc reported in RTCP: one
        # figure measured on two sides (RTCP's last report may miss the final second's packets)
        assert s["lost_packets"] == round(s["loss_rate"] * 200)
        assert abs(s["reported_loss_up"] - s["loss_rate"]) <= 0.03, (s["reported_loss_up"], s["loss_rate"])
        # the emulator draws media from the simulator's streams: the simulated call with the same seed and
        # packet count loses the same packets (hotel-wifi's loss is per packet, its queue never fills)
        import pandas as pd

        from translab.call import simulate

        sim = simulate(profile="hotel-wifi", seed=s["seed"], duration_s=4.0, metrics=())
        live = pd.read_parquet(tmp_path / "trace.parquet")
        assert set(live.loc[live["arrival_s"].isna(), "seq"]) == set(sim.trace.loc[sim.trace["arrival_s"].isna(), "seq"])
        assert abs(s["net_delay_p50_ms"] - sim.summary["net_delay_p50_ms"]) < 5
    else:
        assert s["framing"] == "twilio-json" and s["codec"] == "pcmu" and s["reply_rate"] == 8000
        assert s["setup_tcp_connected_ms"] < s["setup_upgrade_done_ms"]
        assert s["loss_rate"] == 0.0 and s["ws_pings"] >= 2  # TCP delivers every message, late or not
        assert s["reported_loss_up"] is None  # no RTCP over WebSocket


@pytest.mark.live
@pytest.mark.parametrize("which", ["webrtc", "websocket"])
def test_turn_latency_of_a_pipecat_bot_that_answers_turns(pipecat_parrot, which: str) -> None:
    """The parrot answers when pipecat's Silero VAD has heard 0.5 s of silence after the caller's
    speech: the turn latency the caller measures is at least that, plus transport both ways."""
    from translab.call import run_call
    from translab.call.external import ExternalEngine
    from translab.config import CallConfig

    url = pipecat_parrot[0] if which == "webrtc" else pipecat_parrot[1]
    s = run_call(CallConfig(profile="4g", duration_s=2.5, metrics=()), ExternalEngine(url, listen_s=3.0)).summary
    assert s["status"] == "ok", s["reason"]
    assert s["speech_end_s"] == pytest.approx(2.5, abs=0.05)  # the cut is inside speech
    assert 500 < s["turn_latency_ms"] < 2500
    assert s["first_audio_out_ms"] == pytest.approx(
        s["setup_t0_ms"] + 1e3 * s["speech_end_s"] + s["turn_latency_ms"], abs=1)


@pytest.fixture()
def serve_echo(tmp_path: Path):
    """`translab serve --echo --metrics-port` in a subprocess: (WebSocket URL, metrics URL)."""
    ws, http, mport = _free_port(), _free_port(), _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "translab.cli", "serve", "--echo", "--ws-port", str(ws),
                             "--http-port", str(http), "--metrics-port", str(mport), "--out", str(tmp_path / "serve"),
                             "--for", "120"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        lines = []
        deadline = time.monotonic() + 60
        while not any("WebSocket at" in ln for ln in lines) and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())  # type: ignore[union-attr]
        assert any("metrics at" in ln for ln in lines), lines
        yield f"ws://127.0.0.1:{ws}/?framing=binary&codec=pcm16&rate=16000&frame_ms=20", \
            f"http://127.0.0.1:{mport}/metrics"
    finally:
        proc.terminate()
        proc.wait(20)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


@pytest.mark.live
@pytest.mark.slow
def test_probe_serve_and_pipecat_while_an_unreachable_target_fails(pipecat_bot, serve_echo) -> None:
    """Two reachable targets (translab serve's echoing WebSocket, the pipecat bot over WebRTC) and
    one refused port, probed every 7 s for 14 s: two probes each; the scrape has the histograms,
    no failure for the good ones and connect_refused for the bad one; serve counted its calls."""
    from translab.config import CallConfig
    from translab.lab.probe import run_probes

    ws_url, serve_metrics = serve_echo
    bad = f"ws://127.0.0.1:{_free_port()}/"
    targets = (parse_target(ws_url), parse_target(pipecat_bot[0]), parse_target(bad))
    # broadband, not 4g: a lost segment in a 4g TCP set-up waits for a 1 s RTO (twice: 2.3 s
    # measured), which a short test interval cannot hold; the lossy call tests are above
    cfg = ProbeConfig(targets=targets, every_s=7.0, for_s=14.0, listen_s=1.0,
                      call=CallConfig(profile="broadband", duration_s=1.5, metrics=(), framing="binary",
                                      transport="websocket", sample_rate=16000))
    m = CallMetrics("translab_probe")
    server = m.serve(0)
    seen: list[tuple[str, int, str | None, float]] = []
    try:
        n = asyncio.run(run_probes(cfg, m, on_result=lambda u, s: seen.append(
            (u[:24], s["probe"], s.get("failure"), round(s["probe_wall_s"], 2)))))
        text = _scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
    assert n == 6, seen
    for t in targets[:2]:
        lab = {"target": t.url, "transport": t.transport, "profile": "broadband"}
        assert _sample(text, "translab_probe_calls_total", **lab) == 2, seen
        assert _sample(text, "translab_probe_setup_seconds_count", **lab) == 2, seen
        assert _sample(text, "translab_probe_first_audio_out_seconds_count", **lab) == 2
        assert _sample(text, "translab_probe_up", **lab) == 1
        assert _sample(text, "translab_probe_rtt_seconds", **lab) > 0.005  # emulated path, not bare loopback
        for reason in FAILURES:  # declared at 0 for every reason, none counted
            assert _sample(text, "translab_probe_failures_total", reason=reason, **lab) == 0, reason
    badlab = {"target": bad, "transport": "websocket", "profile": "broadband"}
    assert _sample(text, "translab_probe_failures_total", reason="connect_refused", **badlab) == 2
    assert _sample(text, "translab_probe_up", **badlab) == 0
    deadline = time.monotonic() + 10  # serve records a call when its WebSocket closes
    served = None
    while time.monotonic() < deadline and not served:
        served = _sample(_scrape(serve_metrics), "translab_serve_calls_total", transport="websocket")
        time.sleep(0.5)
    assert served == 2
    assert _sample(_scrape(serve_metrics), "translab_serve_mouth_to_ear_seconds_count", transport="websocket") == 2


@pytest.mark.live
def test_an_endpoint_that_sends_no_audio_back_is_a_no_audio_back_failure(serve_echo, tmp_path: Path) -> None:
    """translab serve echoes a realtime-json client's own input_audio_buffer.append events, which
    are not output audio (response.output_audio.delta): nothing audible comes back."""
    from translab.cli import main

    url = serve_echo[0].split("?")[0] + "?framing=realtime-json#realtime-json"
    rc = main(["call", "--target", url, "--profile", "clean-lan", "--duration", "1", "--listen", "0.5",
               "--quiet", "--out", str(tmp_path), "--metrics", "none"])
    s = json.loads((tmp_path / "summary.json").read_text())
    assert rc == 1 and s["status"] == "failed" and s["failure"] == "no_audio_back"
    assert s["framing"] == "realtime-json" and s["setup_upgrade_done_ms"] > 0


@pytest.mark.live
def test_a_plain_http_server_refuses_the_websocket_handshake(pipecat_bot) -> None:
    from translab.call import run_call
    from translab.call.external import ExternalEngine
    from translab.config import CallConfig

    http = pipecat_bot[0].replace("http://", "ws://")  # the bot's HTTP offer endpoint: no WebSocket there
    s = run_call(CallConfig(profile="clean-lan", duration_s=0.5, metrics=()), ExternalEngine(http, listen_s=0.1)).summary
    assert s["status"] == "failed" and s["failure"] == "ws_handshake_refused", s["reason"]
    assert s["setup_tcp_connected_ms"] is not None and s.get("setup_upgrade_done_ms") is None


@contextlib.asynccontextmanager
async def _aiortc_answerer(after_answer):
    """A WebRTC offer URL on loopback answered by a real aiortc peer per offer; ``await
    after_answer(pc)`` runs once the answer is set, before it is sent (to hang up, to break the peer).
    Yields the URL; closes the server and every peer at exit."""
    from aiohttp import web
    from aiortc import RTCSessionDescription

    from translab.transport.webrtc import new_peer

    peers: list = []

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        pc = new_peer()
        peers.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"sdp": pc.localDescription.sdp, "type": "answer"}
        await after_answer(pc)
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/api/offer", offer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api/offer"
    finally:
        for pc in peers:
            await pc.close()
        await runner.cleanup()


@pytest.mark.live
def test_an_answerer_that_goes_away_is_an_ice_failure() -> None:
    """A real aiortc answerer that hangs up right after answering (a bot that crashed): the
    caller's connectivity checks get no answer, so ICE never connects."""
    from translab.call.engine import run_call_async
    from translab.call.external import ExternalEngine
    from translab.config import CallConfig

    async def hang_up(pc) -> None:
        await pc.close()

    async def main() -> dict:
        async with _aiortc_answerer(hang_up) as url:
            r = await run_call_async(CallConfig(profile="clean-lan", duration_s=0.5, metrics=()),
                                     ExternalEngine(url, connect_timeout_s=2.0, listen_s=0.1))
        return r.summary

    t = time.monotonic()
    s = asyncio.run(main())
    assert s["status"] == "failed" and s["failure"] == "ice_failed", s["reason"]
    assert s["setup_answer_received_ms"] is not None and s.get("setup_ice_connected_ms") is None
    assert time.monotonic() - t < 8


def test_audible_span_cuts_leading_and_trailing_silence() -> None:
    from translab.transport.external import audible_span

    rate = 8000
    x = np.zeros(3 * rate, np.float32)
    x[rate: 2 * rate] = 0.1 * np.sin(np.arange(rate) / 3)
    y = audible_span(x, rate)
    assert len(y) == rate + 2 * int(0.1 * rate)
    assert len(audible_span(np.zeros(rate, np.float32), rate)) == 0


@pytest.mark.live
def test_a_probe_of_a_silent_endpoint_ends_within_its_interval() -> None:
    """An offer URL whose server accepts connections and never answers: the probe fails with
    signalling_failed within its interval (every 4 s for 4 s: one probe; the run's start-up loads
    modules and PLCMOS' model first, outside the interval)."""
    from translab.config import CallConfig
    from translab.lab.probe import run_probes

    async def main() -> tuple[list[dict], float]:
        held: list[asyncio.StreamWriter] = []

        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            held.append(w)  # read nothing, answer nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cfg = ProbeConfig(targets=(parse_target(f"http://127.0.0.1:{port}/api/offer"),), every_s=4.0, for_s=4.0,
                          listen_s=0.5, call=CallConfig(profile="clean-lan", duration_s=0.5, metrics=()))
        out: list[dict] = []
        t = time.monotonic()
        await run_probes(cfg, CallMetrics(), on_result=lambda u, s: out.append(s))
        took = time.monotonic() - t
        for w in held:
            w.close()
        server.close()
        return out, took

    out, took = asyncio.run(main())
    assert [s["failure"] for s in out] == ["signalling_failed"], out
    assert 1.0 < out[0]["probe_wall_s"] < 4.0  # the signalling wait is capped at half the interval
    assert took < 4.0 + 20.0


def test_underruns_of_a_no_buffer_player() -> None:
    rec = ExternalRecord(rate=1000)
    x = np.zeros(20, np.float32)  # 20 ms chunks
    # on time, on time, 50 ms late (gap 50 ms), then two at once (no gap), then 3 ms late (ignored)
    rec.chunks = [(0.0, x), (0.02, x), (0.09, x), (0.11, x), (0.11, x), (0.153, x)]
    n, total = rec.underruns()
    assert n == 1 and total == pytest.approx(0.05)


def test_serve_exporter_labels_a_served_call_by_its_endpoint_and_failure(tmp_path: Path) -> None:
    from translab.commands.serve_metrics import ServeExporter

    ok = {"call": "websocket-1", "transport": "websocket", "status": "ok", "loss_rate": 0.01, "rx_jitter": 0.004,
          "m2e_p50_ms": 120.0, "emodel_mos": 4.1, "profile": "4g"}
    bad = {"call": "webrtc-2", "mode": "live", "transport": "webrtc", "status": "failed",
           "reason": "no RTP received (connection closed)"}
    for s in (ok, bad):
        (tmp_path / s["call"]).mkdir()
        (tmp_path / s["call"] / "summary.json").write_text(json.dumps(s))
    ex = ServeExporter(0, "127.0.0.1", "4g")
    try:
        addr = {"ws": ("127.0.0.1", 8765), "http": ("127.0.0.1", 8080)}
        ex.observe_call({"call": "websocket-1", "transport": "websocket", "status": "ok"}, tmp_path, addr)
        ex.observe_call({"call": "webrtc-2", "transport": "webrtc", "status": "failed"}, tmp_path, addr)
        text = _scrape(f"http://127.0.0.1:{ex.port}/metrics")
    finally:
        ex.close()
    ws = {"transport": "websocket", "target": "ws://127.0.0.1:8765/", "profile": "4g"}
    rtc = {"transport": "webrtc", "target": "http://127.0.0.1:8080/offer", "profile": "4g"}
    assert _sample(text, "translab_serve_mouth_to_ear_seconds_sum", **ws) == pytest.approx(0.12)
    assert _sample(text, "translab_serve_loss_ratio", direction="up", **ws) == pytest.approx(0.01)
    assert _sample(text, "translab_serve_jitter_seconds", **ws) == pytest.approx(0.004)
    assert _sample(text, "translab_serve_quality_mos", estimator="emodel", **ws) == pytest.approx(4.1)
    assert _sample(text, "translab_serve_failures_total", reason="no_media", **rtc) == 1
    assert _sample(text, "translab_serve_calls_total", **rtc) == 1


@pytest.mark.live
def test_a_probe_of_an_answerer_whose_dtls_never_arrives_counts_dtls_timeout() -> None:
    """A real aiortc answerer whose outgoing DTLS datagrams are dropped (STUN still passes): ICE
    connects, the DTLS handshake never completes. The probe (every 4 s for 4 s, 1.5 s to connect)
    counts one failure with reason dtls_timeout, ends within its interval, and ICE did connect."""
    from translab.config import CallConfig
    from translab.emulate.datagram import classify_datagram, ice_connections_of
    from translab.lab.probe import run_probes

    dropped = [0]

    async def drop_dtls(pc) -> None:
        for conn in ice_connections_of(pc):
            for protocol in conn._protocols:
                send = protocol.transport.sendto

                def sendto(data: bytes, addr=None, send=send) -> None:
                    if classify_datagram(data) == "dtls":
                        dropped[0] += 1
                    else:
                        send(data, addr)

                protocol.transport.sendto = sendto

    async def main() -> tuple[list[dict], str]:
        async with _aiortc_answerer(drop_dtls) as url:
            cfg = ProbeConfig(targets=(parse_target(url),), every_s=4.0, for_s=4.0, listen_s=0.5,
                              connect_timeout_s=1.5, call=CallConfig(profile="clean-lan", duration_s=0.5, metrics=()))
            m = CallMetrics()
            out: list[dict] = []
            await run_probes(cfg, m, on_result=lambda u, s: out.append(s))
        return out, m.exposition()

    out, text = asyncio.run(main())
    assert [s["failure"] for s in out] == ["dtls_timeout"], out
    s = out[0]
    assert s["setup_ice_connected_ms"] is not None and s.get("setup_dtls_connected_ms") is None
    assert 1.5 < s["probe_wall_s"] < 4.0  # the connect timeout, then the call ended: within its interval
    assert dropped[0] >= 1  # the answerer did try its DTLS handshake
    lab = {"transport": "webrtc", "target": s["target"], "profile": "clean-lan"}
    assert _sample(text, "translab_probe_failures_total", reason="dtls_timeout", **lab) == 1
    assert _sample(text, "translab_probe_failures_total", reason="ice_failed", **lab) == 0


def test_target_cells_are_live_follow_the_url_and_refuse_a_bad_url_naming_it() -> None:
    from translab.lab import experiment as ex

    def cells(grid: dict) -> list[dict]:
        return ex.from_dict({"name": "t", "description": "d", "metrics": [], "grid": [grid]}).cells()

    c = cells({"target": ["http://127.0.0.1:7860/api/offer", "ws://127.0.0.1:8765/#twilio-json"], "profile": "4g",
               "transport": "websocket"})
    assert [(x["target"], x["mode"], x["transport"], x["framing"], x["codec"]) for x in c] == [
        ("http://127.0.0.1:7860/api/offer", "live", "webrtc", "rtp", "opus"),
        ("ws://127.0.0.1:8765/#twilio-json", "live", "websocket", "twilio-json", "pcmu")]
    assert "target" not in cells({"profile": "4g"})[0]  # cells without a target keep their hashes
    with pytest.raises(ConfigError, match="no cells"):  # a browser cannot call a target: dropped
        cells({"target": "ws://h:1/", "peer": "chromium"})
    with pytest.raises(ConfigError) as err:
        cells({"target": ["ws://127.0.0.1:1/", "ftp://x/"]})
    assert (err.value.field, err.value.value) == ("grid[0].target", "ftp://x/")
    assert "ws://HOST[:PORT]/PATH[#FRAMING]" in err.value.allowed


@pytest.mark.live
def test_an_experiment_with_a_target_cell_calls_translab_serve_over_a_lossy_profile(serve_echo, tmp_path: Path) -> None:
    """The runner's default cell function calls the target with the external engine: one row with the
    one analysis' columns (the uplink as serve received it) and the external group (serve echoes)."""
    from translab.lab import experiment as ex
    from translab.lab.runner import run_experiment
    from translab.lab.store import load_results

    url = serve_echo[0]
    exp = ex.from_dict({"name": "target", "description": "d", "metrics": [],
                        "grid": [{"target": url, "profile": "hotel-wifi", "duration_s": 1.5, "sample_rate": 16000}]})
    run_experiment(exp, tmp_path / "run", progress=False, code="test", workers=1)
    df = load_results(tmp_path / "run")
    assert len(df) == 1
    r = df.iloc[0]
    assert r["status"] == "ok", r.get("reason")
    assert (r["target"], r["mode"], r["transport"], r["framing"], r["profile"]) == (
        url, "live", "websocket", "binary", "hotel-wifi")
    assert r["packets_sent"] == 150  # 1.5 s of clip + 1.5 s listening, 20 ms frames
    assert r["loss_rate"] == 0.0 and r["net_delay_p50_ms"] > 3  # TCP: late, never lost
    assert r["emu_tcp_up_segments"] > 0
    assert r["setup_upgrade_done_ms"] < r["first_audio_out_ms"] and r["reply_audio_s"] > 1.0


def test_a_whip_target_is_a_fragment_of_an_http_url() -> None:
    t = parse_target("http://127.0.0.1:8080/whip#whip")
    assert (t.transport, t.whip, t.framing, t.path) == ("webrtc", True, None, "/whip")
    assert not parse_target("http://127.0.0.1:8080/offer").whip
    with pytest.raises(ConfigError, match="#whip"):
        parse_target("ws://127.0.0.1:8080/#whip")


@pytest.mark.live
def test_whip_call_to_translab_serve_over_a_lossy_profile(tmp_path: Path) -> None:
    """`translab serve` speaks WHIP (RFC 9725): wrong media type 415, PATCH 405, unknown session 404;
    `--target ...#whip` gets 201 + Location, hears serve's echo over 4g, and its DELETE ends the served
    call at once (ended "WHIP DELETE", not by silence)."""
    import aiohttp

    from translab.call.engine import run_call_async
    from translab.call.external import ExternalEngine
    from translab.call.served import ServeConfig, TranslabServer
    from translab.config import CallConfig

    async def main() -> tuple[dict, list[int], list[dict]]:
        server = TranslabServer(ServeConfig(http_port=0, ws_port=0, profile="clean-lan", out_dir=tmp_path / "serve",
                                            inactivity_s=5.0, reply="echo"))
        host, port = (await server.start())["http"]
        base = f"http://{host}:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                statuses = []
                for method, path, kw in (("POST", "/whip", {"data": "v=0", "headers": {"Content-Type": "text/plain"}}),
                                         ("PATCH", "/whip/webrtc-9", {}), ("DELETE", "/whip/webrtc-9", {})):
                    async with http.request(method, base + path, **kw) as r:
                        statuses.append(r.status)
            r = await run_call_async(CallConfig(profile="4g", duration_s=1.5, metrics=()),
                                     ExternalEngine(base + "/whip#whip", listen_s=1.0))
            deadline = time.monotonic() + 5
            while not server.finished and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return r.summary, statuses, list(server.finished)
        finally:
            await server.close()

    s, statuses, finished = asyncio.run(main())
    assert statuses == [415, 405, 404]
    assert s["status"] == "ok", s["reason"]
    assert s["whip_delete_status"] == 200 and s["setup_answer_received_ms"] < s["setup_dtls_connected_ms"]
    assert s["first_audio_out_ms"] > s["connect_ms"] and s["reply_audio_s"] > 1.0  # serve's echo came back
    assert s["packets_sent"] == 125 and s["emu_profile"] == "4g"
    assert [c["transport"] for c in finished] == ["webrtc"] and finished[0]["status"] == "ok"
    served = json.loads((tmp_path / "serve" / finished[0]["call"] / "summary.json").read_text())
    assert served["ended"] == "WHIP DELETE"


@pytest.mark.live
@pytest.mark.parametrize("tls", [False, True])
def test_websocket_uplink_arrivals_match_the_servers_own(tls: bool, monkeypatch) -> None:
    """The uplink trace of a WebSocket target is reconstructed from byte offsets and the TCP relay's
    delivery log (TLS: plus one record's overhead per write). A translab VoiceServer in this process
    stamps each message as it reads it, on the same clock: the two agree message by message (an
    offset off by one message would shift every arrival by a 20 ms frame)."""
    import translab.transport.external as ext
    from translab.call.engine import run_call_async
    from translab.call.external import ExternalEngine
    from translab.config import CallConfig
    from translab.transport.tls import self_signed_contexts
    from translab.transport.websocket import VoiceServer

    server_ctx, client_ctx = self_signed_contexts()
    monkeypatch.setattr(ext, "_client_ssl", lambda: client_ctx)
    ended: list = []

    async def start() -> tuple[VoiceServer, int]:
        vs = VoiceServer(spec=None, ssl_context=server_ctx if tls else None, echo=True, on_call_end=ended.append)
        return vs, (await vs.start())[1]

    async def main() -> object:
        vs, port = await start()
        try:
            return await run_call_async(
                CallConfig(profile="clean-lan", duration_s=1.5, metrics=(), transport="websocket", sample_rate=16000),
                ExternalEngine(f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/?framing=binary&codec=pcm16&rate=16000"
                               f"&frame_ms=20", listen_s=0.5))
        finally:
            await asyncio.sleep(0.3)
            await vs.close()

    r = asyncio.run(main())
    assert r.summary["status"] == "ok", r.summary["reason"]
    arrival = r.trace["arrival_s"].to_numpy()
    server = np.array([a[0] for a in ended[0].arrivals])
    assert len(arrival) == len(server) == 100 and not np.isnan(arrival).any()
    d_ms = ((server - server[0]) - (arrival - arrival[0])) * 1e3
    assert abs(np.median(d_ms)) < 2 and np.percentile(np.abs(d_ms), 95) < 10, d_ms
