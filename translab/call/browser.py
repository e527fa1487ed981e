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

:class:`BrowserEngine` is an :class:`translab.call.engine.Engine`: ``run_call(cfg, BrowserEngine(),
out)`` makes the call and analyses the uplink (browser -> translab) like every call. Its
:class:`~translab.call.record.CallRecord` carries the uplink trace (receiver-estimated clock: the
browser's capture clock is not known), the set-up milestones (``setup_*_ms``), the microphone's
signal from when the call connected as the reference, and the engine's figures (row group
``browser``, see translab.call.row): ``peer``, the browser's own stats (``browser_*``), the reply
direction's headline figures (``down_*``) and the model - NetEq gaps (``gap_*``); nothing is added to
the row after the analysis.

The reply direction (translab -> browser) is a second analysed leg: its trace (the emulator's
delivery log of the packets the browser received, on the reply's clock) goes through the same
:func:`translab.call.analysis.analyse` (translab's adaptive playout of the arrivals the browser had),
with NetEq's counters (``neteq_*``, over the media window, see translab.playout.neteq_check) and the
browser's inbound stats and heard quality as that leg's engine figures. With ``out_dir`` it is
written to ``down/`` by the one artefact writer: trace.parquet, output.wav (translab's playout),
frames.parquet and summary.json, plus browser_output.wav (what the browser played, recorded) and
browser_stats.json (every getStats() snapshot).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from translab import trace as trace_mod
from translab.call.analysis import analyse
from translab.call.artefacts import write_artefacts
from translab.call.engine import ClipEngine, run_call
from translab.call.live import leg_trace, run_outside_event_loop
from translab.call.prepare import PreparedCall
from translab.call.record import CallRecord, CallResult
from translab.call.served import ServedEngine
from translab.config import PEERS, CallConfig
from translab.errors import ConfigError
from translab.jsonio import dumps
from translab.media.audio import write_wav
from translab.metrics.quality import quality
from translab.playout import neteq_check

__all__ = ["LEAD_S", "PEERS", "BrowserEngine", "browser_call", "check_browser_config", "sdp_audio"]

#: silence before the clip on the browser's fake microphone (s): the microphone starts playing its
#: file at getUserMedia, before the call is connected; the clip must start after that
LEAD_S = 2.0
#: the caller page's stats period (ms)
STATS_MS = 50


def check_browser_config(cfg: CallConfig) -> CallConfig:
    """The resolved config, refused (ConfigError) where a browser peer cannot follow it."""
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


def sdp_audio(sdp: str) -> dict[str, str]:
    """What an SDP offers or accepts for audio: ``codecs`` (the rtpmap encodings of the audio
    section, space-separated, e.g. ``opus/48000/2 red/48000/2 ...``), ``opus_rtcp_fb`` (the
    rtcp-fb values of Opus's payload type, comma-separated: ``transport-cc``, ``nack`` ...) and
    ``opus_fmtp`` (Opus's whole fmtp line). Empty strings where the SDP has none."""
    lines = sdp.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("m=audio")), None)
    if start is None:
        return {"codecs": "", "opus_rtcp_fb": "", "opus_fmtp": ""}
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    audio = lines[start:end]
    maps = [ln.split(None, 1) for ln in audio if ln.startswith("a=rtpmap:") and " " in ln]
    pt = next((m[0].split(":")[1] for m in maps if m[1].lower().startswith("opus/48000")), None)
    return {"codecs": " ".join(m[1] for m in maps),
            "opus_rtcp_fb": ",".join(ln.split(None, 1)[1] for ln in audio
                                     if pt and ln.startswith(f"a=rtcp-fb:{pt} ") and " " in ln),
            "opus_fmtp": next((ln for ln in audio if pt and ln.startswith(f"a=fmtp:{pt} ")), "")}


@dataclass
class _Session:
    """What the browser session left for the analysis: the server's finished call (``done``: its
    reply taps and, ``up``, the uplink's trace columns), the page's result (``res``: stats snapshots,
    recording, SDP), the set-up milestones (ms since start), the uplink's reference and why it failed."""

    done: dict[str, Any] | None = None
    res: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)
    user_agent: str = ""
    reference: np.ndarray | None = None
    failure: str = ""


@dataclass
class BrowserEngine(ClipEngine):
    """Headless Chromium calls translab (see the module docstring). Times in s; ``progress(fraction)``
    is called while the media plays."""

    connect_timeout_s: float = 20.0
    drain_s: float = 1.0
    lead_s: float = LEAD_S
    progress: Callable[[float], None] | None = None
    name = "browser"
    mode = "live"

    def prepare(self, cfg: CallConfig) -> PreparedCall:
        return super().prepare(check_browser_config(cfg))

    def run(self, call: PreparedCall, out_dir: Path | None) -> CallRecord:
        return run_outside_event_loop(lambda: asyncio.run(self._run(call, out_dir)))

    async def _run(self, call: PreparedCall, out_dir: Path | None) -> CallRecord:
        work = Path(tempfile.mkdtemp(prefix="translab-browser-call-"))
        try:
            session = await self._session(call, work)
            return self._record(call, session, out_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _session(self, call: PreparedCall, work: Path) -> _Session:
        """Serve, launch Chromium, let it call, play both directions, collect its stats; the browser
        and the server are closed before this returns (also when it fails or is cancelled)."""
        import aiortc  # noqa: F401  (importing aiortc takes ~140 ms once per process: not the call's set-up)

        from translab.call.served import ServeConfig, TranslabServer
        from translab.transport.chromium import ChromiumPeer
        from translab.transport.webrtc import opus_fmtp

        cfg, stream = call.cfg, call.stream
        assert stream is not None
        out = _Session()
        t_start = time.perf_counter()

        def mark(name: str) -> None:
            out.setup.setdefault(name, (time.perf_counter() - t_start) * 1e3)

        mic = np.concatenate([np.zeros(int(self.lead_s * 48000), dtype=np.float32), call.reference])
        write_wav(work / "microphone.wav", mic, 48000)
        server = TranslabServer(ServeConfig(
            host="127.0.0.1", http_port=0, ws_port=0, profile=cfg.profile, seed=cfg.seed, playout=cfg.playout,
            out_dir=work / "serve", reply="clip", reply_stream=stream, reply_fmtp=opus_fmtp(cfg),
            inactivity_s=max(5.0, self.connect_timeout_s), caller_clip=str(cfg.clip), metrics=cfg.metrics,
            analyse_calls=False))
        try:
            addr = await server.start()
            url = f"http://{addr['http'][0]}:{addr['http'][1]}/?autostart=1&record=1&stats_ms={STATS_MS}"
            async with ChromiumPeer(fake_audio=work / "microphone.wav") as browser:
                mark("browser_launched")
                page = await browser.open(url)
                mark("page_loaded")
                out.user_agent = await page.evaluate("navigator.userAgent")
                # page clock -> our clock: performance.timeOrigin is the page's epoch (ms)
                origin_ms = await page.evaluate("performance.timeOrigin")
                epoch_minus_perf = time.time() - time.perf_counter()
                deadline = time.perf_counter() + self.connect_timeout_s
                state = ""
                while time.perf_counter() < deadline:
                    state = await page.evaluate("window.translab.state")
                    if state == "connected" or state.startswith("error") or state == "failed":
                        break
                    await asyncio.sleep(0.02)
                if state != "connected":
                    out.failure = (f"browser not connected within {self.connect_timeout_s:g} s (state {state})"
                                   if not state.startswith("error") else f"browser: {state}")
                else:
                    mark("connected_seen")
                    live = server._rtc[-1] if server._rtc else None
                    t0 = live.get("reply_t0") if live else None
                    start = t0 if t0 is not None else time.perf_counter()
                    reply_end = start + float(stream.capture_s[-1])
                    ms = await page.evaluate("window.translab.milestones")
                    mic_t = (origin_ms + ms.get("microphone", 0.0)) / 1e3 - epoch_minus_perf
                    # the uplink's reference: the microphone's signal from when the call connected on
                    # (the call ends, and is analysed, as soon as the page hangs up)
                    skip = max(0.0, (ms.get("connected", 0.0) - ms.get("microphone", 0.0)) / 1e3 - 0.1)
                    out.reference = mic[int(skip * 48000):]
                    end = max(reply_end, mic_t + len(mic) / 48000.0) + self.drain_s
                    while time.perf_counter() < end:
                        await asyncio.sleep(min(0.5, max(0.0, end - time.perf_counter())))
                        if self.progress is not None:
                            self.progress(min(1.0, (time.perf_counter() - start) / max(end - start, 1e-9)))
                        browser.note_pids()  # renderers started since
                out.res = await page.evaluate("window.translab.finish()")
                for name, v in (out.res.get("milestones") or {}).items():
                    out.setup[name] = ((origin_ms + v) / 1e3 - epoch_minus_perf - t_start) * 1e3
                out.setup["browser_launch_only"] = browser.launch_ms
                if not out.failure and out.res.get("error"):
                    out.failure = f"browser: {out.res['error']}"
        finally:
            await server.close()  # finishes the call: its uplink columns and reply taps are kept
        out.done = next(iter(server.rtc_done.values()), None)
        return out

    def _record(self, call: PreparedCall, s: _Session, out_dir: Path | None) -> CallRecord:
        """The uplink's record, with the reply leg analysed (and written to ``out_dir/down``)."""
        snaps = list(s.res.get("stats") or [])
        last = snaps[-1] if snaps else {}
        figures: dict[str, Any] = {
            "peer": "chromium", "browser_user_agent": s.user_agent,
            **_flat("browser_out_", last.get("outbound-rtp")),
            **_flat("browser_remote_in_", last.get("remote-inbound-rtp")),
            **_flat("browser_pair_", last.get("candidate-pair")),
            **{f"browser_{side}_{k}": v for side in ("offer", "answer")
               for k, v in sdp_audio(s.res.get(side) or "").items()}}
        up = s.done.get("up") if s.done is not None else None
        failure = s.failure or ("" if up is not None else "no RTP received from the browser")
        if failure:
            return CallRecord(trace=trace_mod.empty_trace(), status="failed", reason=failure,
                              setup_ms=dict(s.setup), figures=figures)
        assert s.done is not None and up is not None
        cols, frame_ms, served = up
        trace = ServedEngine(cols, frame_ms=float(frame_ms)).run(call).trace
        figures.update(served)
        figures.update(_sent_figures(trace, last.get("outbound-rtp") or {}))
        figures.update(self._reply_leg(call, s, snaps, out_dir))
        return CallRecord(trace=trace, setup_ms=dict(s.setup), figures=figures, reference=s.reference)

    def _reply_leg(self, call: PreparedCall, s: _Session, snaps: list[dict[str, Any]],
                   out_dir: Path | None) -> dict[str, Any]:
        """Analyse the reply (translab -> browser) on the browser's arrivals, beside NetEq's counters;
        returns the uplink row's ``down_*`` and ``gap_*`` figures."""
        from translab.transport.record import LegRecord
        from translab.transport.reply import reply_arrivals

        done = s.done
        assert done is not None
        if done.get("send_tap") is None or done.get("reply_t0") is None:
            return {}
        cfg, stream = call.cfg, call.stream
        assert stream is not None
        rec = LegRecord()
        rec.t0 = done["reply_t0"]
        rec.send_s, rec.arrivals, unmatched = reply_arrivals(done["send_tap"].sent, done.get("down_log", []),
                                                             rec.t0, rec.t0)
        trace = leg_trace(cfg, stream, rec)
        trace.attrs["direction_name"] = "down"
        inbound = [snap.get("inbound-rtp") or {} for snap in snaps]
        window = neteq_check.neteq_window(inbound)
        neteq_fig = neteq_check.figures(window)
        recorded = _decode_pcm16(s.res.get("record_b64", ""))
        heard: dict[str, Any] = {}
        if recorded.size > 48000 * 0.5 and cfg.metrics:
            try:
                heard = quality(call.reference, recorded, 48000, metrics=cfg.metrics)
            except Exception as err:  # noqa: BLE001 - a recording that cannot be aligned is a figure too
                heard = {"error": str(err)}
        leg_figures = {"peer": "chromium", "down_log_unmatched": unmatched,
                       **{f"neteq_{k}": v for k, v in window.items()},
                       **_flat("browser_in_", inbound[-1] if inbound else {}),
                       **{f"neteq_{k}": v for k, v in neteq_fig.items()},
                       **{f"browser_{k}": v for k, v in heard.items()},
                       "browser_recorded_s": recorded.size / 48000.0}
        down = analyse(call, CallRecord(trace=trace, figures=leg_figures), self.mode, "browser-reply")
        if out_dir is not None:
            d = Path(out_dir) / "down"
            d.mkdir(parents=True, exist_ok=True)
            write_wav(d / "browser_output.wav", recorded, 48000)
            (d / "browser_stats.json").write_text(dumps(snaps) + "\n")
            write_artefacts(down, d)  # summary.json last
        model_fig = neteq_check.model_figures(down.playout.stats)
        out: dict[str, Any] = {"down_loss_rate": down.summary.get("loss_rate"), "down_log_unmatched": unmatched}
        for k in neteq_check.FIGURES:
            out[f"down_neteq_{k}"] = neteq_fig[k]
            out[f"down_model_{k}"] = model_fig[k]
        out.update({f"gap_{k.replace('_gap', '', 1)}": v for k, v in neteq_check.gaps(model_fig, neteq_fig).items()})
        for k, v in heard.items():
            out[f"down_browser_{k}"] = v
            if k in down.summary:  # translab's playout of the same packets, scored the same way
                out[f"down_model_{k}"] = down.summary[k]
        return out


def _sent_figures(trace: Any, out: dict[str, Any]) -> dict[str, float]:
    """What the browser's encoder sent: ``browser_out_ptime_ms`` (ms, the median RTP timestamp step of
    the packets translab received) and ``browser_out_payload_kbps`` (kbit/s: outbound-rtp bytesSent,
    RTP payload only, over packetsSent x ptime, i.e. over the time it was sending)."""
    import pandas as pd

    ts = pd.to_numeric(trace.get("media_ts", pd.Series(dtype=float)), errors="coerce").dropna().sort_values()
    steps = ts.diff().dropna()
    steps = steps[steps > 0]
    if not len(steps):
        return {}
    ptime_ms = float(steps.median()) / 48.0
    sent, n = out.get("bytesSent"), out.get("packetsSent")
    fig = {"browser_out_ptime_ms": ptime_ms}
    if isinstance(sent, (int, float)) and isinstance(n, (int, float)) and n > 0:
        fig["browser_out_payload_kbps"] = 8.0 * float(sent) / (float(n) * ptime_ms)
    return fig


def browser_call(cfg: CallConfig, out_dir: str | Path | None = None, **engine: Any) -> CallResult:
    """One browser peer call (blocking, real time): ``run_call(cfg, BrowserEngine(**engine), out_dir)``
    (keywords: ``connect_timeout_s``, ``drain_s``, ``lead_s`` s, ``progress(fraction)``)."""
    return run_call(cfg, BrowserEngine(**engine), out_dir)
