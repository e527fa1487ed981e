"""The external engine: one call to an endpoint outside translab (``translab call --target URL``,
``target`` experiment cells, ``translab probe``): translab's clip, encoder and framing on the caller
side, the user's voice stack on the other, the profile's link models in between (the in-process live
emulator). Its record goes through the one analysis like every engine's (translab.call.run_call).

The uplink arrival trace is the caller's packets as the endpoint's socket received them: the
emulator delivered them, so it knows when (WebRTC: the "up" link's per-datagram log; WebSocket: when
the TCP relay had delivered each message's last byte). The shared groups of the row (network,
receiver, latency, quality, E-model) are therefore the path to the endpoint, played out by
translab's receiver model (``playout``), not by the endpoint's own receiver, which a caller cannot see.

What only a call to an external endpoint measures goes into the row's ``external`` group
(translab.call.row), from the caller's side:

* ``first_audio_out_ms``: dial until the endpoint's first audible audio (a 10 ms window above
  :data:`translab.transport.external.AUDIBLE_DBFS`) reached the caller; ``connect_ms``: dial until
  media can flow (WebRTC: DTLS connected, after the offer POST and ICE; WebSocket: upgrade done);
* ``turn_latency_ms``: end of the caller's speech (last audible 10 ms of the clip as sent) until the
  endpoint's first audible audio, when that audio starts after the speech ended (an endpoint that
  answers a turn; an echo starts during the speech, so an echo has none);
* ``reply_*``: what came back: its length, loss and RFC 3550 jitter (WebRTC: sequence numbers of the
  endpoint's RTP; WebSocket: 0 loss at the application, jitter of audio message arrivals), the gaps a
  client playing each chunk on arrival with no buffer would hear, and PLCMOS v2 (non-intrusive: the
  reply is unknown to translab) of its audible span, when ``plcmos`` is among the call's metrics;
* ``rtt_ms`` (RTCP or WebSocket ping/pong) and ``reported_loss_up`` (the endpoint's RTCP receiver
  reports: an independent check of the trace's ``loss_rate``);
* ``target`` and ``failure`` (one of :data:`translab.transport.external.FAILURES`, empty when ok).

The caller sends the clip, then ``listen_s`` s of silence while it listens (a microphone stays open;
an endpoint's VAD sees the turn end by silence): both are the call's reference and stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from translab.call.engine import ClipEngine
from translab.call.live import leg_record, run_outside_event_loop
from translab.call.live_protection import refuse_live
from translab.call.prepare import PreparedCall, prepare_call
from translab.call.record import CallRecord
from translab.config import CallConfig
from translab.transport.external import (
    AUDIBLE_DBFS,
    ExternalRecord,
    Target,
    audible_span,
    parse_target,
)

__all__ = ["ExternalEngine", "target_config", "speech_end_s", "parse_target", "REPLY_FILE"]


#: how long (s) the caller still listens after its last packet (the silence after the clip is sent)
DRAIN_S = 0.3

#: sample rate (Hz) of binary PCM16 to an external WebSocket unless the call says otherwise: 16 kHz,
#: what `translab serve` assumes for binary framing and what most voice pipelines take
BINARY_DEFAULT_RATE = 16000

#: the audio the endpoint sent back, at the rate it came in (written beside the call's artefacts)
REPLY_FILE = "received.wav"


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


def speech_end_s(reference: np.ndarray, rate: int, dbfs: float = AUDIBLE_DBFS) -> float:
    """End (s from the clip's start) of the last audible 10 ms window of ``reference``."""
    win = max(1, rate // 100)
    n = len(reference) // win
    if n == 0:
        return 0.0
    rms = np.sqrt(np.mean(np.square(reference[: n * win].reshape(n, win), dtype=np.float64), axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10)) > dbfs)
    return float((loud[-1] + 1) * win / rate) if len(loud) else 0.0


def external_figures(call: PreparedCall, target: Target, rec: ExternalRecord) -> dict[str, Any]:
    """The ``external`` group of one call (see the module docstring); decides ``no_audio_back``
    (the record is marked failed when nothing audible came back). NaN: unknown."""
    cfg = call.cfg
    rate = int(cfg.sample_rate or 0)
    connected = rec.setup_ms.get("dtls_connected" if cfg.transport == "webrtc" else "upgrade_done", math.nan)
    t0_ms = float(rec.extra.get("setup_t0_ms", math.nan))
    first = rec.first_audible_s()
    end = speech_end_s(call.reference, rate)
    audio = rec.audio()
    gaps, gap_s = rec.underruns()
    speech = audible_span(audio, rec.rate)
    if rec.status == "ok" and math.isnan(first):
        rec.fail("no_audio_back", f"no audible audio came back ({len(audio) / rec.rate:.2f} s received, "
                 f"all below {AUDIBLE_DBFS:g} dBFS)" if len(audio) else "no audio came back")
    plcmos = math.nan
    if "plcmos" in cfg.metrics and rec.status == "ok" and len(speech) >= rec.rate // 2:
        from translab.metrics.quality import plcmos as plcmos_of

        plcmos = plcmos_of(speech, rec.rate)
    return {
        "target": target.url, "failure": rec.failure, "connect_ms": connected,
        "first_audio_out_ms": t0_ms + first * 1e3, "speech_end_s": end,
        "turn_latency_ms": (first - end) * 1e3 if first > end else math.nan,
        "reply_audio_s": len(audio) / rec.rate, "reply_audible_s": len(speech) / rec.rate,
        "reply_rate": rec.rate, "reply_underruns": gaps, "reply_underrun_ms": gap_s * 1e3,
        "reply_loss_rate": rec.loss_down, "reply_jitter_ms": rec.jitter_s * 1e3, "reply_plcmos": plcmos,
        "rtt_ms": rec.rtt_s * 1e3, "reported_loss_up": rec.loss_up,
    }


@dataclass
class ExternalEngine(ClipEngine):
    """Call ``target`` (a URL or :class:`Target`) through the in-process emulator with the config's
    profile and seed. ``listen_s``: seconds of silence sent after the clip while listening;
    ``connect_timeout_s`` (s); ``pcap``: path for the forwarded packets; ``realtime``: as
    :func:`translab.emulate.realtime.realtime_mode` (process-wide: one call per process; the prober
    leaves it off). With an ``out_dir``, the reply is written there as :data:`REPLY_FILE`."""

    target: Target | str
    listen_s: float = 1.5
    connect_timeout_s: float = 10.0
    pcap: str | Path | None = None
    realtime: bool = False
    name = "external"
    mode = "live"

    def __post_init__(self) -> None:
        if isinstance(self.target, str):
            self.target = parse_target(self.target)

    @property
    def endpoint(self) -> Target:
        assert isinstance(self.target, Target)
        return self.target

    def prepare(self, cfg: CallConfig) -> PreparedCall:
        call = prepare_call(target_config(cfg, self.endpoint), silence_after_s=self.listen_s)
        refuse_live(call.cfg, self.name)
        return call

    def run(self, call: PreparedCall, out_dir: Path | None = None) -> CallRecord:
        return run_outside_event_loop(lambda: asyncio.run(self.run_async(call, out_dir)))

    async def run_async(self, call: PreparedCall, out_dir: Path | None = None) -> CallRecord:
        """The call in the running event loop."""
        from translab.emulate.emulator import LiveEmulator
        from translab.transport.external import external_leg

        cfg, stream = call.cfg, call.stream
        emu = LiveEmulator(cfg.profile, cfg.seed, pcap=self.pcap, ip_version=cfg.ip_version)
        with contextlib.ExitStack() as stack:
            if self.realtime:
                from translab.emulate.realtime import RT_PRIORITY, realtime_mode

                stack.enter_context(realtime_mode(rt_priority=RT_PRIORITY))
            await emu.start()
            try:
                rec = await external_leg(stream, cfg, emu, self.endpoint,
                                         connect_timeout_s=self.connect_timeout_s, listen_s=DRAIN_S)
            finally:
                await emu.close()
        figures = {**external_figures(call, self.endpoint, rec), **emu.report()}
        if out_dir is not None and rec.chunks:
            from translab.media.audio import write_wav

            Path(out_dir).mkdir(parents=True, exist_ok=True)
            write_wav(Path(out_dir) / REPLY_FILE, np.clip(rec.audio(), -1.0, 1.0), rec.rate)
        up = rec.uplink
        up.setup_ms, up.status, up.reason = dict(rec.setup_ms), rec.status, rec.reason
        up.extra = {**up.extra, **rec.extra}
        return leg_record(call, up, figures)
