"""A real browser in the lab: headless system Chromium (driven by playwright, no browser download)
loads serve's caller page and calls it without a proxy; cross-origin pages are let through or
refused by serve's allow-list; nothing the browser had is left behind; and ``translab call --peer
chromium`` runs both directions through the emulator with NetEq's stats beside translab's model.
Skipped when Chromium or playwright is missing (``./lab setup`` installs both)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from translab.transport.chromium import ChromiumPeer, unavailable_reason

pytestmark = [pytest.mark.live, pytest.mark.skipif(unavailable_reason() is not None,
                                                   reason=str(unavailable_reason()))]


def _reply_server(tmp_path: Path, profile: str = "clean-lan", seconds: float = 2.0, **kw):  # noqa: ANN003, ANN202
    from translab.call.prepare import prepare_call
    from translab.call.served import ServeConfig, TranslabServer
    from translab.config import CallConfig
    from translab.transport.webrtc import opus_fmtp

    call = prepare_call(CallConfig(transport="webrtc", duration_s=seconds, profile=profile))
    cfg, ref, stream = call.cfg, call.reference, call.stream
    return TranslabServer(ServeConfig(http_port=0, ws_port=0, profile=profile, out_dir=tmp_path / "serve",
                                      reply="clip", reply_stream=stream, reply_fmtp=opus_fmtp(cfg),
                                      inactivity_s=1.0, **kw)), ref


async def _wait_state(page, want: str = "connected", timeout_s: float = 20.0) -> str:  # noqa: ANN001
    state = ""
    for _ in range(int(timeout_s / 0.05)):
        state = await page.evaluate("window.translab.state")
        if state == want or state.startswith("error"):
            break
        await asyncio.sleep(0.05)
    return state


def _udp_ports_bound() -> set[int]:
    ports = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return ports


def test_page_calls_serve_without_a_proxy_and_plays_the_reply(tmp_path: Path) -> None:
    """The page from serve's own port: getUserMedia -> offer -> POST /offer -> connected; the clip
    serve sends back runs Chromium's NetEq (its counters move) and is recorded; serve analyses the
    browser's audio like any served call; afterwards the browser's processes, profile and ICE ports
    are gone."""
    from translab.media.audio import write_wav

    server, ref = _reply_server(tmp_path, profile="clean-lan")
    mic = tmp_path / "mic.wav"
    write_wav(mic, np.concatenate([np.zeros(24000, np.float32), ref]), 48000)

    async def main():  # noqa: ANN202
        addr = await server.start()
        try:
            async with ChromiumPeer(fake_audio=mic) as browser:
                page = await browser.open(f"http://{addr['http'][0]}:{addr['http'][1]}/?autostart=1&record=1")
                state = await _wait_state(page)
                await asyncio.sleep(3.0)
                res = await page.evaluate("window.translab.finish()")
                seen = dict(browser.pids)
                profile = browser.profile_dir
            for _ in range(50):
                if server.finished:
                    break
                await asyncio.sleep(0.1)
            return state, res, seen, profile, browser.alive(), list(server.finished)
        finally:
            await server.close()

    state, res, seen, profile, alive, finished = asyncio.run(main())
    assert state == "connected", res.get("error")
    inbound = res["stats"][-1]["inbound-rtp"]
    assert inbound["packetsReceived"] > 50 and inbound["jitterBufferEmittedCount"] > 48000
    assert res["stats"][-1]["outbound-rtp"]["packetsSent"] > 50
    assert "useinbandfec=1" in res["answer"] and "maxaveragebitrate=24000" in res["answer"]
    rec = np.frombuffer(__import__("base64").b64decode(res["record_b64"]), dtype="<i2")
    assert rec.size > 48000 and np.abs(rec).max() > 1000  # the reply was heard, not silence
    assert finished and finished[0]["status"] == "ok" and finished[0]["packets_sent"] > 50
    # nothing left behind
    assert len(seen) >= 2 and alive == [] and not profile.exists()
    browser_ports = {int(m) for m in re.findall(r"a=candidate:\S+ 1 udp \d+ \S+ (\d+) typ host", res["offer"])}
    assert browser_ports and not (browser_ports & _udp_ports_bound())


def test_cross_origin_page_is_let_through_or_refused_by_the_allow_list(tmp_path: Path) -> None:
    """A page from another origin calls serve with fetch (CORS preflight first). A loopback origin
    gets through; a non-loopback one (a host name the browser maps to 127.0.0.1, treated as a secure
    context so getUserMedia works) fails as a browser fails on a refused preflight ("Failed to
    fetch") until that origin is on the allow-list (``--allow-origin``)."""
    from translab.media.audio import write_wav

    mic = tmp_path / "mic.wav"
    write_wav(mic, np.zeros(48000, np.float32), 48000)
    state, error = asyncio.run(_cross_origin_call(tmp_path, mic, "localhost", allow=False))
    assert state == "connected", error
    state, error = asyncio.run(_cross_origin_call(tmp_path, mic, "lab.test", allow=False))
    assert state.startswith("error") and "Failed to fetch" in (error or ""), (state, error)
    state, error = asyncio.run(_cross_origin_call(tmp_path, mic, "lab.test", allow=True))
    assert state == "connected", error


async def _cross_origin_call(tmp_path: Path, mic: Path, host: str, allow: bool) -> tuple[str, str | None]:
    """Serve the page from one server (origin http://HOST:PORT) and call another with it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    origin = f"http://{host}:{port}"
    target, _ = _reply_server(tmp_path, seconds=0.5, allow_origins=(origin,) if allow else ())
    pages, _ = _reply_server(tmp_path, seconds=0.5)
    pages.cfg.http_port = port
    t_addr = await target.start()
    await pages.start()
    try:
        args = ("--host-resolver-rules=MAP lab.test 127.0.0.1", f"--unsafely-treat-insecure-origin-as-secure={origin}")
        async with ChromiumPeer(fake_audio=mic, extra_args=args) as browser:
            page = await browser.open(f"{origin}/?autostart=1&server=http://127.0.0.1:{t_addr['http'][1]}")
            state = await _wait_state(page, timeout_s=15)
            error = await page.evaluate("window.translab.error")
            await page.evaluate("window.translab.finish()")
        return state, error
    finally:
        await target.close()
        await pages.close()


def test_nothing_is_left_behind_after_a_failure_or_an_interruption(tmp_path: Path) -> None:
    async def failing() -> tuple[dict, Path]:
        browser = ChromiumPeer()
        with pytest.raises(RuntimeError, match="boom"):
            async with browser:
                await browser.open("about:blank")
                raise RuntimeError("boom")
        return dict(browser.pids), browser.profile_dir, browser.alive()

    seen, profile, alive = asyncio.run(failing())
    assert seen and alive == [] and not profile.exists()

    async def interrupted() -> tuple[dict, Path, list]:
        holder: dict = {}

        async def run() -> None:
            async with ChromiumPeer() as browser:
                holder["b"] = browser
                await browser.open("about:blank")
                await asyncio.sleep(60)

        task = asyncio.get_running_loop().create_task(run())
        for _ in range(400):
            if "b" in holder and len(holder["b"].pids) >= 2:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        b = holder["b"]
        return dict(b.pids), b.profile_dir, b.alive()

    seen, profile, alive = asyncio.run(interrupted())
    assert seen and alive == [] and not profile.exists()


def test_a_browser_that_cannot_start_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TRANSLAB_CHROMIUM", str(fake))
    before = set(os.listdir("/tmp"))

    async def main() -> ChromiumPeer:
        browser = ChromiumPeer(launch_timeout_s=10)
        with pytest.raises(Exception):
            async with browser:
                pass
        return browser

    browser = asyncio.run(main())
    assert browser.alive() == [] and not browser.profile_dir.exists()
    assert not [d for d in set(os.listdir("/tmp")) - before if d.startswith("translab-chromium-")]


def test_call_peer_chromium_both_directions_on_a_lossy_profile(tmp_path: Path) -> None:
    """The CLI hook end to end: Chromium's uplink analysed by translab, translab's reply played by
    NetEq; the reply's arrival trace is the browser's (the packets the emulator dropped are the
    ones NetEq counts as lost), its recording is scored, and NetEq's figures sit beside the model's."""
    out = tmp_path / "call"
    r = subprocess.run([sys.executable, "-m", "translab.cli", "call", "--peer", "chromium", "--profile", "hotel-wifi",
                        "--seed", "3", "--duration", "4", "--metrics", "stoi", "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)  # exactly one JSON object
    assert s["status"] == "ok" and s["peer"] == "chromium" and s["mode"] == "live"
    assert s["browser_out_packetsSent"] > 150 and s["packets_sent"] > 150 and s["stoi"] > 0.5
    assert "useinbandfec=1" in s["browser_answer_opus_fmtp"]
    # what the SDPs carried for audio and what the encoder sent: Opus first in both; the answer keeps
    # only what aiortc knows (RED, if offered, is dropped); 20 ms frames at about the answer's cap or below
    assert s["browser_offer_codecs"].startswith("opus/48000/2") and s["browser_answer_codecs"].startswith("opus/48000/2")
    assert "red/48000" not in s["browser_answer_codecs"].lower()
    assert s["browser_out_ptime_ms"] == pytest.approx(20.0)
    assert 4.0 < s["browser_out_payload_kbps"] < 26.0
    assert s["setup_connected_ms"] > s["setup_page_loaded_ms"] > 0
    down = json.loads((out / "down" / "summary.json").read_text())
    import pandas as pd

    trace = pd.read_parquet(out / "down" / "trace.parquet")
    lost = int(trace["arrival_s"].isna().sum())
    assert lost > 0  # hotel-wifi drops some of the reply
    # NetEq counts RFC 3550 losses (up to the highest sequence received): the same packets, except
    # losses at the very end that no later packet reveals
    tail = int(np.argmax(~trace.sort_values("seq")["arrival_s"].isna().to_numpy()[::-1]))
    assert down["neteq_packetsLost"] == lost - tail
    assert down["neteq_packetsReceived"] == len(trace) - lost
    for k in ("concealed_share", "mean_buffer_delay_ms"):
        assert np.isfinite(down[f"neteq_{k}"]) and np.isfinite(s[f"down_model_{k}"])
        assert s[f"gap_{k}"] == pytest.approx(s[f"down_model_{k}"] - s[f"down_neteq_{k}"])
    # the reply leg went through the one analysis: translab's playout of the browser's arrivals
    assert down["status"] == "ok" and down["peer"] == "chromium" and down["loss_rate"] == s["down_loss_rate"]
    assert 0 < down["neteq_mean_buffer_delay_ms"] < 500
    assert down["browser_stoi"] > 0.5 and (out / "down" / "browser_output.wav").stat().st_size > 48000 * 2
    assert (out / "down" / "output.wav").exists() and (out / "down" / "frames.parquet").exists()
    assert (out / "trace.parquet").exists() and (out / "output.wav").exists()


def test_call_peer_chromium_refuses_websocket() -> None:
    r = subprocess.run([sys.executable, "-m", "translab.cli", "call", "--peer", "chromium", "--transport", "websocket"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "chromium" in r.stderr and "Traceback" not in r.stderr


def test_a_browser_call_that_does_not_connect_fails_cleanly(tmp_path: Path) -> None:
    """Not connected in time: a failed summary naming why, written like any failed call, and no
    browser process, profile or work directory left."""
    from translab.call.browser import browser_call
    from translab.config import CallConfig

    before = {d for d in os.listdir(tempfile_dir()) if d.startswith(("translab-chromium-", "translab-browser-call-"))}
    r = browser_call(CallConfig(transport="webrtc", profile="clean-lan", duration_s=1, metrics=()), tmp_path / "out",
                     connect_timeout_s=0.01)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert r.summary["status"] == "failed" == s["status"] and "not connected within" in s["reason"]
    assert s["peer"] == "chromium"
    after = {d for d in os.listdir(tempfile_dir()) if d.startswith(("translab-chromium-", "translab-browser-call-"))}
    assert after <= before


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_a_grid_cell_with_peer_chromium_runs(tmp_path: Path) -> None:
    """``peer = "chromium"`` in an experiment: the cell is live and runs the BrowserEngine through
    run_call, uplink and reply leg written like a CLI call."""
    from translab.lab import experiment as ex
    from translab.lab.cells import run_cell

    exp = ex.from_dict({"name": "t", "description": "", "metrics": [],
                        "defaults": {"duration_s": 2, "profile": "4g"},
                        "grid": {"peer": ["chromium"], "transport": ["webrtc", "websocket"]}})
    cells = exp.cells()
    assert len(cells) == 1 and cells[0]["peer"] == "chromium" and cells[0]["mode"] == "live"
    s = run_cell(cells[0], tmp_path / "cell")
    assert s["status"] == "ok", s.get("reason")
    assert s["peer"] == "chromium" and s["mode"] == "live" and s["packets_sent"] > 50
    assert np.isfinite(s["down_neteq_mean_buffer_delay_ms"]) and np.isfinite(s["gap_mean_buffer_delay_ms"])
    down = json.loads((tmp_path / "cell" / "down" / "summary.json").read_text())
    assert down["status"] == "ok" and down["packets_sent"] > 50 and down["neteq_packetsReceived"] > 50
    assert json.loads((tmp_path / "cell" / "summary.json").read_text())["peer"] == "chromium"
