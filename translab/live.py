"""One live call: the same clip, encoder and framing as ``translab simulate``, but carried by a real
transport (aiortc WebRTC or websockets) in real time through the in-process live emulator, whose
link models are the profile's, seeded like the simulator's. The recorded arrival trace
(``attrs["mode"] == "live"``) goes through the same :func:`translab.simulate.summarise`, so playout
and metrics are shared with simulation.

``live_call(cfg)`` returns a :class:`translab.simulate.CallResult` with ``summary["mode"] == "live"``.
A call that cannot connect ends within ``connect_timeout_s`` with ``status == "failed"`` and a
``reason``; every peer, socket, task and timer it opened is closed before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from translab import trace as trace_mod
from translab.config import CallConfig
from translab.jsonio import write_json
from translab.transport.record import LegRecord

__all__ = ["live_call", "live_call_async", "build_live_trace", "LIVE_GIL_SWITCH_S"]

#: GIL switch interval during a live call (s). aiortc decodes and encrypts in worker threads; at
#: Python's default 5 ms a worker holding the GIL delays the emulator's releases by up to 5 ms.
LIVE_GIL_SWITCH_S = 0.0002


#: SCHED_RR priority a live call asks for with ``realtime=True`` (PipeWire/JACK use similar ones)
RT_PRIORITY = 10


@contextlib.contextmanager
def realtime_mode(interval_s: float = LIVE_GIL_SWITCH_S, rt_priority: int | None = None
                  ) -> Iterator[dict[str, Any]]:
    """For the block: a short GIL switch interval (worker threads cannot hold the loop for 5 ms)
    and no cyclic garbage collection (a full collection with pandas/aiortc loaded pauses the loop
    for 20-100 ms, measured; reference counting still frees almost everything during a call). With
    ``rt_priority``, the calling thread (and threads it starts, e.g. aiortc's codec workers) also
    runs under SCHED_RR at that priority, so other busy processes on the machine cannot delay the
    emulator's releases by a scheduler time slice (needs root or CAP_SYS_NICE; silently skipped
    otherwise). Everything is restored afterwards. Yields ``{"rt_scheduling": bool}``."""
    import gc
    import os

    old = sys.getswitchinterval()
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    sys.setswitchinterval(interval_s)
    state: dict[str, Any] = {"rt_scheduling": False}
    old_policy: tuple[int, Any] | None = None
    if rt_priority is not None and hasattr(os, "sched_setscheduler"):
        try:
            old_policy = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(rt_priority))
            state["rt_scheduling"] = True
        except (PermissionError, OSError):
            old_policy = None
    try:
        yield state
    finally:
        if old_policy is not None:
            try:
                os.sched_setscheduler(0, old_policy[0], old_policy[1])
            except OSError:
                pass
        sys.setswitchinterval(old)
        gc.unfreeze()
        if was_enabled:
            gc.enable()
        gc.collect()


class LoopLagMonitor:
    """Measures how late the event loop wakes up (a 10 ms sleep that takes longer): on a shared or
    virtualised host the whole process is sometimes descheduled for ~100 ms, which delays sends
    and arrivals alike. ``stalls`` lists (monotonic s, lag s) of wake-ups later than
    ``threshold_s``; reported so live figures can be judged."""

    def __init__(self, period_s: float = 0.01, threshold_s: float = 0.02) -> None:
        self.period_s, self.threshold_s = period_s, threshold_s
        self.stalls: list[tuple[float, float]] = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                t = loop.time()
                await asyncio.sleep(self.period_s)
                lag = loop.time() - t - self.period_s
                if lag > self.threshold_s:
                    self.stalls.append((t, lag))
        except asyncio.CancelledError:
            pass

    async def stop(self) -> dict[str, float]:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        lags = [lag for _, lag in self.stalls]
        return {"host_stalls": len(lags), "host_stall_max_ms": 1e3 * max(lags) if lags else 0.0,
                "host_stall_total_ms": 1e3 * sum(lags)}


def build_live_trace(cfg: CallConfig, stream: Any, rec: LegRecord) -> pd.DataFrame:
    """The arrival trace of a live leg: one row per packet of ``stream``; a packet that was never
    sent (call ended early) keeps ``send_s = capture_s`` and is lost. ``wire_bytes`` follow the
    same header model as the simulator (the emulator's real counts are in the summary)."""
    from translab.metrics.bandwidth import HeaderModel, rtp_wire_bytes, ws_wire_bytes
    from translab.simulate import trace_attrs

    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    n = len(stream.seq)
    send = np.array([rec.send_s.get(k, float(stream.capture_s[k])) for k in range(n)], dtype=float)
    arrival = np.full(n, np.nan)
    dups = np.zeros(n, dtype=np.int64)
    for k, times in rec.arrivals.items():
        if 0 <= k < n and times:
            arrival[k] = max(min(times), send[k])
            dups[k] = len(times) - 1
    msg = stream.message_bytes
    if cfg.transport == "webrtc":
        wire = np.array([rtp_wire_bytes(int(b), hm) for b in msg], dtype=np.int64)
    else:
        wire = np.array([ws_wire_bytes(int(b), True, hm) for b in msg], dtype=np.int64)
    rows = {
        "seq": stream.seq, "media_ts": stream.media_ts, "frame_samples": stream.frame_samples,
        "capture_s": stream.capture_s, "send_s": send, "arrival_s": arrival,
        "payload_bytes": stream.payload_bytes, "message_bytes": msg, "wire_bytes": wire,
        "transport": [cfg.transport] * n, "direction": ["up"] * n, "fec": stream.fec,
        "duplicates": dups, "payload": stream.payload,
    }
    return trace_mod.make_trace(rows, trace_attrs(cfg, stream, "live"))


def _stock_m2e_ms(rec: LegRecord, lookahead_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Per frame aiortc's receiver delivered: (delivery, played) mouth-to-ear in ms. Delivery is when
    ``track.recv()`` returned it; played is when the steady sink of the ``aiortc-stock`` model
    (:func:`translab.playout.aiortc_stock.sink_play_times`) plays it, so it is the same quantity the
    model and the simulation report. Both include the codec lookahead (``lookahead_ms``, ms), as
    :func:`translab.metrics.latency.mouth_to_ear` does: a sound spoken at t leaves the decoder that
    much later than the frame's timestamp says."""
    from translab.playout.aiortc_stock import sink_play_times

    a = np.asarray(rec.stock_frames, dtype=float)
    capture_s = a[:, 1] / 48000.0
    frame_s = float(np.median(a[:, 2])) / 48000.0
    return ((a[:, 0] - capture_s) * 1e3 + lookahead_ms,
            (sink_play_times(a[:, 0], frame_s) - capture_s) * 1e3 + lookahead_ms)


def _stock_figures(rec: LegRecord, lookahead_ms: float = 0.0) -> dict[str, float]:
    """What aiortc's own receiver delivered: how many frames / samples, and mouth-to-ear (first
    sample captured to first sample played on the model's steady sink, ms; ``stock_delivery_*``:
    to the moment aiortc delivered the frame)."""
    if not rec.stock_frames:
        return {}
    a = np.asarray(rec.stock_frames, dtype=float)
    delivered, played = _stock_m2e_ms(rec, lookahead_ms)
    return {
        "stock_frames": int(len(a)),
        "stock_samples_48k": int(a[:, 2].sum()),
        "stock_m2e_p50_ms": float(np.percentile(played, 50)),
        "stock_m2e_p95_ms": float(np.percentile(played, 95)),
        "stock_m2e_max_ms": float(played.max()),
        "stock_delivery_m2e_p50_ms": float(np.percentile(delivered, 50)),
        "stock_delivery_m2e_p95_ms": float(np.percentile(delivered, 95)),
    }


def _use_stock_output(cfg: CallConfig, summary: dict[str, Any], rec: LegRecord,
                      reference: np.ndarray, lookahead_ms: float) -> np.ndarray:
    """``aiortc-stock`` in a live call: the headline latency and the output audio are what aiortc's
    own receiver delivered (its jitter buffer, no PLC/FEC), played on the model's steady sink so
    the figure means what the simulation's does; translab's model of it stays in ``model_*`` keys
    for comparison. Quality metrics are recomputed on aiortc's audio."""
    from translab.media.audio import resample

    for k in ("m2e_p50_ms", "m2e_p95_ms", "m2e_p99_ms", "m2e_max_ms"):
        if k in summary:
            summary[f"model_{k}"] = summary[k]
    _, m2e = _stock_m2e_ms(rec, lookahead_ms)
    summary.update({"m2e_p50_ms": float(np.percentile(m2e, 50)), "m2e_p95_ms": float(np.percentile(m2e, 95)),
                    "m2e_p99_ms": float(np.percentile(m2e, 99)), "m2e_max_ms": float(m2e.max()),
                    "playout_source": "aiortc"})
    audio = np.asarray(rec.stock_audio, dtype=np.float32)
    if int(cfg.sample_rate) != 48000:
        audio = resample(audio, 48000, int(cfg.sample_rate))
    if cfg.metrics:
        from translab.metrics.quality import quality

        scores = quality(reference, audio, int(cfg.sample_rate), metrics=cfg.metrics)
        for k, v in scores.items():
            summary[f"model_{k}"] = summary.get(k)
            summary[k] = v
    return audio


def _failed_summary(cfg: CallConfig, rec: LegRecord, extra: dict[str, Any]) -> dict[str, Any]:
    from translab.lab import provenance

    d = cfg.to_dict()
    return {
        "mode": "live", "status": "failed", "reason": rec.reason, "transport": cfg.transport,
        "codec": cfg.codec, "frame_ms": float(cfg.frame_ms), "sample_rate": int(cfg.sample_rate),
        "framing": cfg.framing, "profile": cfg.profile, "seed": int(cfg.seed), "playout": cfg.playout,
        "conceal": cfg.conceal, "clip": cfg.clip,
        **{f"setup_{k}_ms": v for k, v in rec.setup_ms.items()},
        **extra,
        **{f"v_{k}": v for k, v in provenance.versions().items()},
        "config_hash": provenance.config_hash(d),
        "config": __import__("json").dumps(d, sort_keys=True),
    }


async def live_call_async(cfg: CallConfig, *, pcap: str | Path | None = None,
                          connect_timeout_s: float = 10.0, drain_s: float = 1.0,
                          progress: Callable[[float], None] | None = None,
                          chain_factory: Callable[[str], Any] | None = None,
                          control: str = "separate", echo: bool = False, realtime: bool = False,
                          deflate: bool = False) -> Any:
    """The coroutine behind :func:`live_call` (see there)."""
    from translab.emulate.emulator import LiveEmulator
    from translab.simulate import CallResult, prepare_call, summarise

    t_wall = time.perf_counter()
    cfg, _, stream = prepare_call(cfg)
    from translab.protection.sim import refuse_live

    refuse_live(cfg)  # NACK / RED / ABR exist in simulated calls only
    emu = LiveEmulator(cfg.profile, cfg.seed, chain_factory=chain_factory, control=control,
                       pcap=pcap, ip_version=cfg.ip_version)
    with realtime_mode(rt_priority=RT_PRIORITY if realtime else None) as rt_state:
        await emu.start()
        monitor = LoopLagMonitor()
        try:
            if cfg.transport == "webrtc":
                from translab.transport.webrtc import webrtc_call

                rec = await webrtc_call(stream, cfg, emu, connect_timeout_s=connect_timeout_s,
                                        drain_s=drain_s, progress=progress)
            else:
                from translab.transport.websocket import websocket_call

                rec = await websocket_call(stream, cfg, emu, connect_timeout_s=connect_timeout_s,
                                           drain_s=drain_s, progress=progress, echo=echo, deflate=deflate)
        finally:
            host = await monitor.stop()
            await emu.close()
    extra: dict[str, Any] = {"dtx_skipped": stream.dtx_skipped, **host, **rt_state}
    if cfg.transport == "websocket":
        extra["ws_deflate"] = bool(deflate)
    send_late = [rec.send_s[k] - float(stream.capture_s[k]) for k in rec.send_s]
    if send_late:
        extra["send_late_p50_ms"] = float(np.percentile(send_late, 50)) * 1e3
        extra["send_late_p99_ms"] = float(np.percentile(send_late, 99)) * 1e3
    extra.update(emu.report())
    extra.update(rec.extra)
    extra.update(_stock_figures(rec, float(stream.lookahead_ms)))
    if rec.echo_rtt_s:
        rtt = np.asarray(rec.echo_rtt_s) * 1e3
        extra.update({"echo_rtt_p50_ms": float(np.percentile(rtt, 50)),
                      "echo_rtt_p95_ms": float(np.percentile(rtt, 95)), "echo_messages": int(len(rtt))})
    trace = build_live_trace(cfg, stream, rec)
    if rec.status != "ok":
        result = CallResult(summary=_failed_summary(cfg, rec, extra), trace=trace,
                            audio=np.zeros(0, dtype=np.float32), playout=None)
    else:
        summary, out = summarise(cfg, trace, stream.reference, mode="live", extra=extra)
        setup = dict(rec.setup_ms)
        played = out.frames[out.frames["kind"].isin(("decoded", "fec"))]
        if len(played) and not math.isnan(rec.extra.get("setup_t0_ms", math.nan)):
            setup["first_audio_played"] = rec.extra["setup_t0_ms"] + float(played["play_s"].iloc[0]) * 1e3
        summary.update({f"setup_{k}_ms": v for k, v in setup.items()})
        audio = out.audio
        if cfg.playout == "aiortc-stock" and rec.stock_frames and rec.stock_audio is not None:
            audio = _use_stock_output(cfg, summary, rec, stream.reference, float(stream.lookahead_ms))
        result = CallResult(summary=summary, trace=trace, audio=audio, playout=out)
    result.wall_s = time.perf_counter() - t_wall
    return result


def live_call(cfg: CallConfig, out_dir: str | Path | None = None, **kwargs: Any) -> Any:
    """Run one live call (blocking; real time) and return its CallResult (``mode == "live"``).

    Keyword arguments: ``pcap`` (path to write forwarded packets), ``connect_timeout_s`` (s),
    ``drain_s`` (s to wait for stragglers after the last packet), ``progress(fraction)``,
    ``chain_factory(direction)`` (link models overriding the profile), ``control``
    ("separate"/"shared", see translab.emulate.datagram), ``echo`` (WebSocket: server echoes audio,
    round trips in the summary), ``realtime`` (run the call under SCHED_RR, see
    :func:`realtime_mode`). With ``out_dir``, writes trace.parquet, output.wav, summary.json.
    """
    from translab.simulate import write_artefacts

    result = asyncio.run(live_call_async(cfg, **kwargs))
    if out_dir is not None:
        if result.summary.get("status") == "ok":
            write_artefacts(result, out_dir)
        else:
            _write_failed(result, out_dir)
    return result


def _write_failed(result: Any, out_dir: str | Path) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace_mod.save(result.trace, out / "trace.parquet")
    write_json(out / "summary.json", result.summary, sort_keys=True)  # strict JSON: NaN -> null
