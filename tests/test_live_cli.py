"""`translab call` from the command line: artefacts, JSON summary, Ctrl-C ends cleanly; and the
WebSocket framings / Opus settings the issue lists, each as a short live call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from translab.config import CallConfig

pytestmark = pytest.mark.live

TRANSLAB = [sys.executable, "-m", "translab.cli"]


def test_cli_call_websocket_writes_artefacts_and_pcap(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pcap = tmp_path / "ws.pcap"
    r = subprocess.run(TRANSLAB + ["call", "--transport", "websocket", "--sample-rate", "16000", "--profile",
                                   "broadband", "--duration", "1.5", "--metrics", "none", "--out", str(out),
                                   "--pcap", str(pcap), "--json", "--quiet"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)  # --json: stdout is exactly one JSON object
    assert s["mode"] == "live" and s["status"] == "ok" and s["transport"] == "websocket"
    for k in ("tcp_connected", "tls_done", "upgrade_done", "first_frame_sent", "first_frame_received",
              "first_audio_played"):
        assert s[f"setup_{k}_ms"] > 0, k
    assert s["setup_tcp_connected_ms"] < s["setup_tls_done_ms"] < s["setup_upgrade_done_ms"]
    assert s["emu_tcp_up_acks"] > 0 and s["emu_tcp_down_acks"] > 0
    assert s["emu_tcp_media_aligned"] is True
    for name in ("trace.parquet", "output.wav", "summary.json"):
        assert (out / name).exists()
    shark = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", "io,phs"], capture_output=True, text=True)
    if shark.returncode == 0:
        assert "tls" in shark.stdout and "tcp" in shark.stdout


def _ctrl_c_after(args: list[str], wait_s: float = 3.0, ready: str | None = None) -> tuple[int, str, str]:
    """Start ``translab ARGS``, press Ctrl-C after ``wait_s`` s, or, with ``ready``, once a stdout line
    holds that text (at most 60 s: start-up under load can take seconds); (exit code, stdout,
    stderr). Fails the test if it has not stopped 15 s after Ctrl-C."""
    p = subprocess.Popen(TRANSLAB + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    head = ""
    if ready is None:
        time.sleep(wait_s)
    else:
        assert p.stdout is not None
        deadline = time.monotonic() + 60.0
        while ready not in head and time.monotonic() < deadline and p.poll() is None:
            head += p.stdout.readline()
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError(f"translab {args[0]} did not stop within 15 s of Ctrl-C") from None
    return p.returncode, head + out, err


def test_cli_call_ctrl_c_ends_cleanly(tmp_path: Path) -> None:
    # 3 s: connected and sending by then
    code, _, err = _ctrl_c_after(["call", "--transport", "webrtc", "--profile", "clean-lan", "--metrics", "none",
                                  "--out", str(tmp_path / "o")])
    assert code == 130
    assert "Traceback" not in err, err
    assert "interrupted" in err


@pytest.mark.parametrize("transport,args,expect", [
    # issue 4 "Done when": each path from the CLI, at the ends of the ranges the issue names
    ("webrtc", ["--bitrate", "12k", "--frame-ms", "60"], {"codec": "opus", "frame_ms": 60.0}),
    ("websocket", ["--sample-rate", "24000", "--frame-ms", "100", "--no-tls"],
     {"codec": "pcm16", "frame_ms": 100.0, "sample_rate": 24000}),
])
def test_cli_call_each_transport(tmp_path: Path, transport: str, args: list[str], expect: dict) -> None:
    out = tmp_path / "out"
    r = subprocess.run(TRANSLAB + ["call", "--transport", transport, "--profile", "colocated", "--duration",
                                   "1.2", "--metrics", "none", "--out", str(out), "--json", "--quiet", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)  # --json: stdout is exactly one JSON object
    assert s["mode"] == "live" and s["status"] == "ok" and s["transport"] == transport
    assert s["loss_rate"] == 0.0 and s["packets_sent"] > 0
    for k, v in expect.items():
        assert s[k] == v, (k, s[k])
    # a fresh process: one-off start-up (importing aiortc, ~140 ms; the server's certificate) must
    # not be counted as the call's set-up
    first = s["setup_signalling_done_ms"] if transport == "webrtc" else s["setup_tcp_connected_ms"]
    assert first < 50, s
    assert (out / "trace.parquet").exists() and (out / "output.wav").exists()


@pytest.mark.parametrize("framing,codec,rate,frame_ms", [
    # PCM16 binary at 16 and 24 kHz with 20 and 100 ms frames (issue 4), then the JSON framings
    ("binary", "pcm16", 16000, 20),
    ("binary", "pcm16", 16000, 100),
    ("binary", "pcm16", 24000, 20),
    ("binary", "pcm16", 24000, 100),
    ("realtime-json", "pcm16", 24000, 20),
    ("twilio-json", "pcmu", 8000, 20),
    ("binary", "opus", 48000, 20),
])
def test_live_websocket_framings(framing: str, codec: str, rate: int, frame_ms: int) -> None:
    from translab.live import live_call

    cfg = CallConfig(transport="websocket", framing=framing, codec=codec, sample_rate=rate, frame_ms=frame_ms,
                     profile="colocated", duration_s=1.2, metrics=(), tls=framing != "binary")
    s = live_call(cfg, drain_s=0.2).summary
    assert s["status"] == "ok", s["reason"]
    assert s["loss_rate"] == 0.0 and s["packets_sent"] == s["server_messages"]
    assert s["framing"] == framing


@pytest.mark.parametrize("bitrate,frame_ms", [(12000, 10), (24000, 20), (32000, 60), (64000, 20)])
def test_live_webrtc_bitrates(bitrate: int, frame_ms: int) -> None:
    """Opus 12, 24, 32, 64 kbit/s and 10, 20, 60 ms frames through the Python API (issue 4)."""
    from translab.live import live_call

    cfg = CallConfig(transport="webrtc", bitrate=bitrate, frame_ms=frame_ms, profile="colocated",
                     duration_s=1.2, metrics=())
    s = live_call(cfg, drain_s=0.2).summary
    assert s["status"] == "ok", s["reason"]
    assert s["rtp_payload_mismatches"] == 0 and s["loss_rate"] == 0.0
    assert 0.5 * bitrate < s["payload_kbps_up"] * 1000 < 1.5 * bitrate
    assert s["frame_ms"] == frame_ms and s["packets_sent"] == pytest.approx(1200 / frame_ms, abs=2)


def test_cli_serve_prints_endpoints_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    code, out, err = _ctrl_c_after(["serve", "--http-port", "0", "--ws-port", "0", "--out", str(tmp_path)],
                                   ready="Ctrl-C stops")
    assert code == 0 and "Traceback" not in err, err
    assert "/offer" in out and "ws://127.0.0.1:" in out


def test_cli_serve_rejects_unknown_profile() -> None:
    r = subprocess.run(TRANSLAB + ["serve", "--profile", "nowhere", "--for", "0.1"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "nowhere" in r.stderr
