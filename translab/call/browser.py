"""A live call with a real browser at the other end: headless Chromium (libwebrtc: its Opus encoder,
its NetEq) calls translab, both directions crossing the in-process live emulator.

What happens (``translab call --peer chromium``):

1. The clip of ``cfg`` is prepared as for any call (translab's Opus packets, ``cfg``'s bitrate,
   frame and FEC) and also written, after ``lead_s`` of silence, to the WAV that Chromium's fake
   microphone plays once.
2. A :class:`translab.call.served.TranslabServer` (the same answerer as ``translab serve``)
   listens on loopback with ``reply="clip"``: it answers the browser's offer with ``cfg``'s Opus
   fmtp (so the browser is asked for the same FEC and bitrate) and sends the prepared packets back.
3. Chromium (:class:`translab.transport.chromium.ChromiumPeer`) opens the server's caller page,
   which calls: getUserMedia -> offer -> ``POST /offer`` -> answer; the reply plays in an
   ``<audio>`` element (so NetEq runs), is recorded with an AudioWorklet, and the page takes
   ``getStats()`` snapshots every ``stats_ms``.
4. Both directions cross the profile's link models at translab's socket: the answerer's aioice
   socket is attached to the emulator with ingress "up" (browser -> translab) and egress "down"
   (translab -> browser), exactly as ``translab serve`` does for any outside caller. No relay and no
   candidate rewriting are needed, no root either; the emulator sees every SRTP datagram (headers in
   the clear) and logs when each reply packet was released towards the browser.

Results (``out_dir``): the uplink (browser -> translab) like every call -- trace.parquet, output.wav
(translab's playout), summary.json (``mode`` live, ``peer`` chromium, receiver-estimated clock: the
browser's capture clock is not known) -- with the browser's own outbound stats (``browser_out_*``)
and set-up milestones (``setup_*_ms``) beside translab's figures; and ``down/`` for the reply
direction: trace.parquet (the emulator's delivery log of the packets the browser received, on the
reply's clock), output.wav (what the browser played, recorded), model_output.wav (translab's
playout of the same trace), browser_stats.json (every snapshot) and summary.json, where NetEq's
counters (``neteq_*``, over the media window, see translab.playout.neteq_check) sit beside
translab's model (``rx_*`` and the usual figures) and their gaps (``gap_*``). The top-level summary
repeats the headline reply figures as ``down_*``.

(After the call-layer refactor, issue 9, this becomes the browser Engine in translab/call/.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from translab.config import CallConfig

__all__ = ["PEERS", "LEAD_S", "BrowserCallResult", "browser_call", "browser_call_async", "check_browser_config"]

PEERS = ("aiortc", "chromium")
#: silence before the clip on the browser's fake microphone (s): the microphone starts playing its
#: file at getUserMedia, before the call is connected; the clip must start after that
LEAD_S = 2.0
#: the caller page's stats period (ms)
STATS_MS = 50


@dataclass
class BrowserCallResult:
    """``summary``: the uplink's summary row (+ browser and ``down_*`` keys); ``down``: the reply
    direction's summary; ``stats``: the browser's snapshots; ``wall_s``: how long it took (s)."""

    summary: dict[str, Any]
    down: dict[str, Any] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = math.nan


def check_browser_config(cfg: CallConfig) -> CallConfig:
    """The resolved config, refused (ConfigError) where a browser peer cannot follow it."""
    from translab.errors import ConfigError

    cfg = cfg.resolved()
    if cfg.transport != "webrtc":
        raise ConfigError("peer", "chromium", "only with transport webrtc")
    if cfg.sample_rate != 48000:
        raise ConfigError("sample_rate", cfg.sample_rate, "48000 with peer chromium (the browser decodes at 48 kHz)")
    return cfg


def _flat(prefix: str, d: dict[str, Any] | None) -> dict[str, Any]:
    return {f"{prefix}{k}": v for k, v in (d or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "timestamp"}


def _decode_pcm16(b64: str) -> np.ndarray:
    raw = base64.b64decode(b64 or "")
    return (np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0) if raw else np.zeros(0, np.float32)


async def browser_call_async(cfg: CallConfig, out_dir: str | Path | None = None, *,
                             connect_timeout_s: float = 20.0, drain_s: float = 1.0, lead_s: float = LEAD_S,
                             progress: Callable[[float], None] | None = None) -> BrowserCallResult:
    """The coroutine behind :func:`browser_call` (see the module docstring)."""
    from translab.media.audio import write_wav
    from translab.call.prepare import prepare_call
    from translab.call.served import ServeConfig, TranslabServer
    from translab.transport.chromium import ChromiumPeer
    from translab.transport.webrtc import opus_fmtp

    import aiortc  # noqa: F401  (importing aiortc takes ~140 ms once per process: not the call's set-up)

    t_wall = time.perf_counter()
    cfg = check_browser_config(cfg)
    prepared = prepare_call(cfg)
    cfg, reference, stream = prepared.cfg, prepared.reference, prepared.stream
    assert stream is not None
    work = Path(tempfile.mkdtemp(prefix="translab-browser-call-"))
    setup: dict[str, float] = {}
    t_start = time.perf_counter()

    def mark(name: str) -> None:
        setup.setdefault(name, (time.perf_counter() - t_start) * 1e3)

    mic = np.concatenate([np.zeros(int(lead_s * 48000), dtype=np.float32), reference])
    write_wav(work / "microphone.wav", mic, 48000)
    server = TranslabServer(ServeConfig(
        host="127.0.0.1", http_port=0, ws_port=0, profile=cfg.profile, seed=cfg.seed, playout=cfg.playout,
        out_dir=work / "serve", reply="clip", reply_stream=stream, reply_fmtp=opus_fmtp(cfg),
        inactivity_s=max(5.0, connect_timeout_s), caller_clip=str(cfg.clip), metrics=cfg.metrics))
    res: dict[str, Any] = {}
    failure = ""
    user_agent = ""
    result: BrowserCallResult | None = None
    closed = False
    try:
        addr = await server.start()
        url = f"http://{addr['http'][0]}:{addr['http'][1]}/?autostart=1&record=1&stats_ms={STATS_MS}"
        async with ChromiumPeer(fake_audio=work / "microphone.wav") as browser:
            mark("browser_launched")
            page = await browser.open(url)
            mark("page_loaded")
            user_agent = await page.evaluate("navigator.userAgent")
            # page clock -> our clock: performance.timeOrigin is the page's epoch (ms)
            origin_ms = await page.evaluate("performance.timeOrigin")
            epoch_minus_perf = time.time() - time.perf_counter()
            deadline = time.perf_counter() + connect_timeout_s
            state = ""
            while time.perf_counter() < deadline:
                state = await page.evaluate("window.translab.state")
                if state == "connected" or state.startswith("error") or state == "failed":
                    break
                await asyncio.sleep(0.02)
            if state != "connected":
                failure = (f"browser not connected within {connect_timeout_s:g} s (state {state})"
                           if not state.startswith("error") else f"browser: {state}")
            else:
                mark("connected_seen")
                call = server._rtc[-1] if server._rtc else None
                t0 = call.get("reply_t0") if call else None
                start = t0 if t0 is not None else time.perf_counter()
                reply_end = start + float(stream.capture_s[-1])
                ms = await page.evaluate("window.translab.milestones")
                mic_t = (origin_ms + ms.get("microphone", 0.0)) / 1e3 - epoch_minus_perf
                # the uplink's reference: the microphone's signal from when the call connected on
                # (the call ends, and is analysed, as soon as the page hangs up)
                skip = max(0.0, (ms.get("connected", 0.0) - ms.get("microphone", 0.0)) / 1e3 - 0.1)
                server.cfg.caller_reference = mic[int(skip * 48000):]
                up_end = mic_t + len(mic) / 48000.0
                end = max(reply_end, up_end) + drain_s
                while time.perf_counter() < end:
                    await asyncio.sleep(min(0.5, max(0.0, end - time.perf_counter())))
                    if progress is not None:
                        progress(min(1.0, (time.perf_counter() - start) / max(end - start, 1e-9)))
                    browser.note_pids()  # renderers started since
            res = await page.evaluate("window.translab.finish()")
            for name, v in (res.get("milestones") or {}).items():
                setup[name] = ((origin_ms + v) / 1e3 - epoch_minus_perf - t_start) * 1e3
            setup["browser_launch_ms_only"] = browser.launch_ms
            if not failure and res.get("error"):
                failure = f"browser: {res['error']}"
        await server.close()  # finishes the call: the uplink is analysed and written under work/
        closed = True
        done = next(iter(server.rtc_done.values()), None)
        result = _analyse(cfg, stream, reference, work, done, res, failure, setup, user_agent)
        if out_dir is not None:
            _write(result, work, Path(out_dir))
    finally:
        try:
            if not closed:
                await server.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    result.wall_s = time.perf_counter() - t_wall
    return result


def _analyse(cfg: CallConfig, stream: Any, reference: np.ndarray, work: Path, done: dict[str, Any] | None,
             res: dict[str, Any], failure: str, setup: dict[str, float], user_agent: str) -> BrowserCallResult:
    """The uplink summary (written by the server) completed with the browser's figures, and the reply
    direction analysed against NetEq."""
    from translab.call.analysis import analyse
    from translab.call.live import leg_trace
    from translab.call.prepare import PreparedCall
    from translab.call.record import CallRecord
    from translab.metrics.quality import quality
    from translab.playout import neteq_check
    from translab.transport.record import LegRecord
    from translab.transport.reply import reply_arrivals

    snaps = list(res.get("stats") or [])
    last = snaps[-1] if snaps else {}
    browser = {"peer": "chromium", "browser_user_agent": user_agent,
               **{f"setup_{k}_ms": v for k, v in setup.items() if not k.endswith("_only")},
               "setup_browser_launch_only_ms": setup.get("browser_launch_ms_only", math.nan),
               **_flat("browser_out_", last.get("outbound-rtp")),
               **_flat("browser_remote_in_", last.get("remote-inbound-rtp")),
               **_flat("browser_pair_", last.get("candidate-pair")),
               "browser_offer_opus_fmtp": _fmtp(res.get("offer") or ""),
               "browser_answer_opus_fmtp": _fmtp(res.get("answer") or "")}
    up_dir = work / "serve" / (done["id"] if done else "none")
    summary: dict[str, Any]
    if (up_dir / "summary.json").exists():
        summary = json.loads((up_dir / "summary.json").read_text())
    else:
        summary = {"mode": "live", "status": "failed", "reason": failure or "the browser's call was not answered"}
    if failure:
        summary.update(status="failed", reason=failure)
    summary.update(browser)
    if done is not None:
        summary["call"] = done["id"]
    down: dict[str, Any] = {}
    if done is not None and done.get("send_tap") is not None and done.get("reply_t0") is not None:
        rec = LegRecord()
        rec.t0 = done["reply_t0"]
        rec.send_s, rec.arrivals, unmatched = reply_arrivals(done["send_tap"].sent, done.get("down_log", []),
                                                             rec.t0, rec.t0)
        trace = leg_trace(cfg, stream, rec)
        trace.attrs["direction_name"] = "down"
        analysed = analyse(PreparedCall(cfg, reference, stream), CallRecord(trace=trace), "live", "browser")
        model = {**analysed.summary, "peer": "chromium", "down_log_unmatched": unmatched}
        played = analysed.playout
        inbound = [s.get("inbound-rtp") or {} for s in snaps]
        window = neteq_check.neteq_window(inbound)
        neteq_fig = neteq_check.figures(window)
        model_fig = neteq_check.model_figures(played.stats)
        recorded = _decode_pcm16(res.get("record_b64", ""))
        heard: dict[str, Any] = {}
        if recorded.size > 48000 * 0.5 and cfg.metrics:
            try:
                heard = quality(reference, recorded, 48000, metrics=cfg.metrics)
            except Exception as err:  # noqa: BLE001 - a recording that cannot be aligned is a figure too
                heard = {"error": str(err)}
        down = {**model,
                **{f"neteq_{k}": v for k, v in window.items()},
                **_flat("browser_in_", inbound[-1] if inbound else {}),
                **{f"neteq_{k}": v for k, v in neteq_fig.items()},
                **{f"model_{k}": v for k, v in model_fig.items()},
                **{f"gap_{k}": v for k, v in neteq_check.gaps(model_fig, neteq_fig).items()},
                **{f"browser_{k}": v for k, v in heard.items()},
                "browser_recorded_s": recorded.size / 48000.0}
        down["_files"] = {"trace": trace, "model_audio": analysed.audio, "recorded": recorded}
        for k in neteq_check.FIGURES:
            summary[f"down_neteq_{k}"] = neteq_fig[k]
            summary[f"down_model_{k}"] = model_fig[k]
        summary["down_loss_rate"] = model.get("loss_rate")
        for k, v in heard.items():
            summary[f"down_browser_{k}"] = v
            if k in model:  # translab's playout of the same packets, scored the same way
                summary[f"down_model_{k}"] = model[k]
    return BrowserCallResult(summary=summary, down=down, stats=snaps)


def _fmtp(sdp: str) -> str:
    pt = next((ln.split()[0].split(":")[1] for ln in sdp.splitlines()
               if ln.startswith("a=rtpmap:") and "opus/48000" in ln.lower()), None)
    return next((ln for ln in sdp.splitlines() if pt and ln.startswith(f"a=fmtp:{pt} ")), "")


def _write(result: BrowserCallResult, work: Path, out: Path) -> None:
    """Artefacts (see the module docstring); summaries last, atomically."""
    from translab import trace as trace_mod
    from translab.media.audio import write_wav
    from translab.jsonio import dumps, write_json

    out.mkdir(parents=True, exist_ok=True)
    up_dir = work / "serve" / str(result.summary.get("call", ""))
    for name in ("trace.parquet", "output.wav"):
        if (up_dir / name).exists():
            shutil.copyfile(up_dir / name, out / name)
    down = dict(result.down)
    files = down.pop("_files", None)
    if files is not None:
        d = out / "down"
        d.mkdir(exist_ok=True)
        trace_mod.save(files["trace"], d / "trace.parquet")
        write_wav(d / "model_output.wav", files["model_audio"], 48000)
        write_wav(d / "output.wav", files["recorded"], 48000)
        (d / "browser_stats.json").write_text(dumps(result.stats) + "\n")
        write_json(d / "summary.json", down, sort_keys=True)
    result.down = down
    write_json(out / "summary.json", result.summary, sort_keys=True)



def browser_call(cfg: CallConfig, out_dir: str | Path | None = None, **kwargs: Any) -> BrowserCallResult:
    """Run one browser peer call (blocking, real time); see :func:`browser_call_async` for keywords
    (``connect_timeout_s``, ``drain_s``, ``lead_s`` s, ``progress(fraction)``)."""
    return asyncio.run(browser_call_async(cfg, out_dir, **kwargs))

