"""One call to an external endpoint (``translab call --target URL``, ``translab probe``): translab's
clip, encoder and framing on the caller side, the user's voice stack on the other, the profile's
link models in between (the in-process live emulator), measured from the caller's side only.

The summary (``mode == "external"``) holds what a caller can know:

* set-up milestones ``setup_*_ms`` (ms since dial) and ``setup_ms``: dial until media can flow
  (WebRTC: DTLS connected, after the offer POST and ICE; WebSocket: upgrade done);
* ``first_audio_out_ms``: dial until the endpoint's first audible audio (a 10 ms window above
  :data:`translab.transport.external.AUDIBLE_DBFS`) reached the caller;
* ``turn_latency_ms``: end of the caller's speech (last audible 10 ms of the clip as sent) until the
  endpoint's first audible audio, when that audio starts after the speech ended (an endpoint that
  answers a turn; an echo starts during the speech, so an echo has none);
* ``loss_up`` / ``loss_down`` (fractions), ``jitter_ms``, ``rtt_ms``: the path as the caller sees
  it (WebRTC: the endpoint's RTCP receiver reports and the sequence numbers of what came back;
  WebSocket: 0 loss at the application, TCP retransmissions in ``emu_tcp_*``, RFC 3550 jitter of
  audio message arrivals, WebSocket ping/pong round trip);
* ``rx_underruns`` / ``rx_underrun_ms``: gaps a client would hear playing each received chunk on
  arrival with no buffer (WebSocket: the server's pacing and TCP stalls; WebRTC: after aiortc's own
  jitter buffer);
* ``quality_plcmos``: PLCMOS v2 (non-intrusive, the endpoint's reply is unknown to translab) of the
  audio content received, concatenated in arrival order (timing is in the underrun figures, not in
  this score: a WebSocket reply that arrives whole scores the same however late), cut to its audible span (first to last audible 10 ms, 0.1 s margins: an endpoint that streams silence
  between replies would otherwise be scored on its silence); ``rx_audible_s`` is that span's length;
* ``failure``: one of :data:`translab.transport.external.FAILURES` when ``status == "failed"``.

The uplink's arrival trace is not known here (the endpoint is someone else's), so no playout or
mouth-to-ear figure of the uplink is computed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from translab.call.artefacts import write_summary
from translab.config import CallConfig
from translab.transport.external import ExternalRecord, Target, audible_span, external_leg, parse_target

__all__ = ["ExternalResult", "target_config", "external_call_async", "external_call", "summarise_external",
           "parse_target", "speech_end_s"]


#: how long (s) the caller still listens after its last packet (the silence after the clip is sent)
DRAIN_S = 0.3

#: sample rate (Hz) of binary PCM16 to an external WebSocket unless the call says otherwise: 16 kHz,
#: what `translab serve` assumes for binary framing and what most voice pipelines take
BINARY_DEFAULT_RATE = 16000


@dataclass
class ExternalResult:
    """A call to an external endpoint: the summary, the received audio (float32 at ``rate`` Hz)
    and the raw record; ``wall_s``: how long it took (s)."""

    summary: dict[str, Any]
    audio: np.ndarray
    rate: int
    record: ExternalRecord
    wall_s: float = math.nan


def target_config(cfg: CallConfig, target: Target) -> CallConfig:
    """``cfg`` with the transport the target speaks and, for WebSocket, its framing (the URL's
    fragment, else ``cfg.framing``, else binary) and the codec the framing carries (twilio-json:
    pcmu 8 kHz; realtime-json: pcm16 24 kHz; binary: the call's codec, pcm16 at
    :data:`BINARY_DEFAULT_RATE` unless the call sets a rate)."""
    if target.transport == "webrtc":
        return dataclasses.replace(cfg, transport="webrtc", framing=None,
                                   codec=cfg.codec if cfg.transport == "webrtc" else None,
                                   sample_rate=cfg.sample_rate if cfg.transport == "webrtc" else None)
    framing = target.framing or (cfg.framing if cfg.transport == "websocket" else None) or "binary"
    codec = {"twilio-json": "pcmu", "realtime-json": "pcm16"}.get(framing)
    keep = cfg.transport == "websocket" and framing == "binary"
    rate = cfg.sample_rate if keep else None
    if framing == "binary" and rate is None and (codec or (cfg.codec if keep else None) or "pcm16") == "pcm16":
        rate = BINARY_DEFAULT_RATE
    return dataclasses.replace(cfg, transport="websocket", framing=framing, tls=target.tls,
                               codec=codec or (cfg.codec if keep else None), sample_rate=rate)


def speech_end_s(reference: np.ndarray, rate: int, dbfs: float = -45.0) -> float:
    """End (s from the clip's start) of the last audible 10 ms window of ``reference``."""
    win = max(1, rate // 100)
    n = len(reference) // win
    if n == 0:
        return 0.0
    rms = np.sqrt(np.mean(np.square(reference[: n * win].reshape(n, win), dtype=np.float64), axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10)) > dbfs)
    return float((loud[-1] + 1) * win / rate) if len(loud) else 0.0


def summarise_external(cfg: CallConfig, target: Target, rec: ExternalRecord, reference: np.ndarray,
                       *, quality: bool = True) -> dict[str, Any]:
    """The summary row of one external call (see the module docstring); NaN figures are None."""
    from translab import provenance

    d = cfg.to_dict()
    s: dict[str, Any] = {
        "mode": "external", "status": rec.status, "failure": rec.failure or None, "reason": rec.reason or None,
        "target": target.url, "transport": cfg.transport, "framing": cfg.framing, "codec": cfg.codec,
        "sample_rate": int(cfg.sample_rate or 0), "frame_ms": float(cfg.frame_ms), "profile": cfg.profile,
        "seed": int(cfg.seed), "clip": cfg.clip, "frames_sent": rec.frames_sent,
        **{f"setup_{k}_ms": v for k, v in rec.setup_ms.items()},
    }
    connected = rec.setup_ms.get("dtls_connected" if cfg.transport == "webrtc" else "upgrade_done")
    s["setup_ms"] = connected
    t0_ms = rec.extra.get("setup_t0_ms", math.nan)
    first = rec.first_audible_s()
    s["first_audio_out_ms"] = t0_ms + first * 1e3
    end = speech_end_s(reference, int(cfg.sample_rate or 0))
    s["speech_end_s"] = end
    s["turn_latency_ms"] = (first - end) * 1e3 if first > end else math.nan
    audio = rec.audio()
    s["rx_audio_s"] = len(audio) / rec.rate
    s["rx_rate"] = rec.rate
    gaps, gap_s = rec.underruns()
    s["rx_underruns"], s["rx_underrun_ms"] = gaps, gap_s * 1e3
    s.update({"loss_up": rec.loss_up, "loss_down": rec.loss_down, "jitter_ms": rec.jitter_s * 1e3,
              "rtt_ms": rec.rtt_s * 1e3})
    if rec.status == "ok" and math.isnan(first):
        rec.fail("no_audio_back", f"no audible audio came back ({s['rx_audio_s']:.2f} s received, "
                 f"all below {-45:g} dBFS)" if len(audio) else "no audio came back")
        s.update(status=rec.status, failure=rec.failure, reason=rec.reason)
    s["quality_plcmos"] = math.nan
    speech = audible_span(audio, rec.rate)
    s["rx_audible_s"] = len(speech) / rec.rate
    if quality and rec.status == "ok" and len(speech) >= rec.rate // 2:
        from translab.metrics.quality import plcmos

        s["quality_plcmos"] = plcmos(speech, rec.rate)
    s.update({k: v for k, v in rec.extra.items() if k not in s})
    s.update({f"v_{k}": v for k, v in provenance.versions().items()})
    s["config_hash"] = provenance.config_hash(d)
    s["config"] = json.dumps(d, sort_keys=True)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in s.items()}


async def external_call_async(cfg: CallConfig, target: Target | str, *, connect_timeout_s: float = 10.0,
                              listen_s: float = 1.5, pcap: str | Path | None = None,
                              quality: bool = True, realtime: bool = False) -> ExternalResult:
    """Call ``target`` (a Target or URL) with ``cfg`` through the in-process emulator (see
    :func:`external_call`). ``realtime``: as :func:`translab.emulate.realtime.realtime_mode` (one call per
    process only: it changes process-wide settings; the prober leaves it off)."""
    from translab.emulate.emulator import LiveEmulator
    from translab.media.stream import encode_stream
    from translab.call.prepare import prepare_call

    t_wall = time.perf_counter()
    target = parse_target(target) if isinstance(target, str) else target
    prepared = prepare_call(target_config(cfg, target))
    cfg, reference = prepared.cfg, prepared.reference
    # a microphone keeps sending while its user listens: the clip, then listen_s of silence (an
    # endpoint's VAD sees the turn end by silence, not by the stream stopping)
    pad = np.zeros(int(round(listen_s * int(cfg.sample_rate or 0))), dtype=np.float32)
    stream = encode_stream(np.concatenate([reference, pad]), cfg)
    emu = LiveEmulator(cfg.profile, cfg.seed, pcap=pcap, ip_version=cfg.ip_version)
    with contextlib.ExitStack() as stack:
        if realtime:
            from translab.emulate.realtime import RT_PRIORITY, realtime_mode

            stack.enter_context(realtime_mode(rt_priority=RT_PRIORITY))
        await emu.start()
        try:
            rec = await external_leg(stream, cfg, emu, target, connect_timeout_s=connect_timeout_s,
                                     listen_s=DRAIN_S)
        finally:
            await emu.close()
    rec.extra.update(emu.report())
    summary = summarise_external(cfg, target, rec, reference, quality=quality)
    return ExternalResult(summary=summary, audio=rec.audio(), rate=rec.rate, record=rec,
                          wall_s=time.perf_counter() - t_wall)


def external_call(cfg: CallConfig, target: Target | str, out_dir: str | Path | None = None,
                  **kwargs: Any) -> ExternalResult:
    """Call an external endpoint (blocking, real time). Keywords: ``connect_timeout_s`` (s),
    ``listen_s`` (s of silence sent after the clip, listening), ``pcap``, ``quality``,
    ``realtime``. With
    ``out_dir``: writes ``received.wav`` (what came back, at the rate it came in) and
    ``summary.json`` (last, atomically)."""
    import asyncio

    result = asyncio.run(external_call_async(cfg, target, **kwargs))
    if out_dir is not None:
        write_external(result, out_dir)
    return result


def write_external(result: ExternalResult, out_dir: str | Path) -> Path:
    """Write ``received.wav`` and ``summary.json`` into ``out_dir`` (summary last)."""
    from translab.media.audio import write_wav

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(result.audio):
        write_wav(out / "received.wav", np.clip(result.audio, -1.0, 1.0), result.rate)
    write_summary(result.summary, out)
    return out
