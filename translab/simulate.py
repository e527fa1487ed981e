"""One offline call, faster than real time: clip -> sender packets -> link model -> arrival trace ->
playout -> metrics -> one flat summary row.

``simulate`` produces the arrival trace in simulated time; live calls produce it from real transports
and hand it to the same :func:`summarise`, so playout and metrics never know where a trace came from.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from translab import trace as trace_mod
from translab.config import CallConfig
from translab.jsonio import write_json
from translab.lab import provenance
from translab.media.audio import write_wav
from translab.media.clips import load_clip
from translab.media.stream import SenderStream, encode_stream


@dataclass
class CallResult:
    """What one call produced: the summary row, the arrival trace, the played-out audio (float32 at
    the codec rate) and the playout result (frames log and receiver stats)."""

    summary: dict[str, Any]
    trace: pd.DataFrame
    audio: np.ndarray
    playout: Any
    wall_s: float = math.nan  # how long producing it took (s); not in the summary, which is deterministic


def load_reference(cfg: CallConfig) -> np.ndarray:
    """The clip as float32 mono at the codec's sample rate, cut to ``cfg.duration_s`` if set."""
    audio = load_clip(cfg.clip, cfg.sample_rate) if cfg.clip else load_clip(_default_clip(), cfg.sample_rate)
    if cfg.duration_s is not None:
        audio = audio[: int(round(cfg.duration_s * cfg.sample_rate))]
    return audio


def _default_clip() -> str:
    from translab.media.clips import list_clips

    return list_clips()[0]


def prepare_call(cfg: CallConfig) -> tuple[CallConfig, np.ndarray, SenderStream]:
    """What every call (simulated, live, netns) starts from: the resolved config with its clip
    chosen, the reference audio (float32 at the codec rate) and the sender's packets."""
    cfg = cfg.resolved()
    if cfg.clip is None:
        cfg = dataclasses.replace(cfg, clip=_default_clip())
    reference = load_reference(cfg)
    return cfg, reference, encode_stream(reference, cfg)


def trace_attrs(cfg: CallConfig, stream: SenderStream, mode: str) -> dict[str, Any]:
    """The metadata every arrival trace carries (see translab.trace)."""
    return {
        "codec": cfg.codec,
        "sample_rate": int(cfg.sample_rate),
        "channels": 1,
        "frame_ms": float(cfg.frame_ms),
        "framing": cfg.framing,
        "transport": cfg.transport,
        "clip": cfg.clip,
        "seed": int(cfg.seed),
        "profile": cfg.profile,
        "mode": mode,
        "lookahead_ms": float(stream.lookahead_ms),
        "bitrate_bps": int(cfg.bitrate) if cfg.codec == "opus" else None,
    }


def _sim_webrtc(cfg: CallConfig, stream: SenderStream, hm: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each RTP packet is one datagram through the uplink model."""
    from translab.link.profiles import direction_rngs, load_profile
    from translab.metrics.bandwidth import rtp_wire_bytes

    profile = load_profile(cfg.profile)
    rngs = direction_rngs(cfg.seed)
    wire = np.array([rtp_wire_bytes(int(b), hm) for b in stream.message_bytes], dtype=np.int64)
    send_s = stream.capture_s.astype(float)
    idx, arr = profile.chain("up").apply(send_s, wire, rngs["up"])
    arrival = np.full(len(send_s), np.nan)
    copies = np.bincount(idx, minlength=len(send_s)) if len(idx) else np.zeros(len(send_s), int)
    if len(idx):
        order = np.lexsort((arr, idx))  # first (earliest) copy of each packet
        first = np.ones(len(order), dtype=bool)
        first[1:] = idx[order][1:] != idx[order][:-1]
        arrival[idx[order][first]] = arr[order][first]
    cols = {
        "send_s": send_s,
        "arrival_s": arrival,
        "wire_bytes": wire,
        "duplicates": np.maximum(copies - 1, 0),
    }
    return cols, {}


def _sim_websocket(cfg: CallConfig, stream: SenderStream, hm: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The messages are one TCP byte stream through the TCP delivery model over the uplink model
    (ACKs return over the downlink model)."""
    from translab.link.profiles import direction_rngs, load_profile
    from translab.link.tcp import TcpDeliveryModel
    from translab.metrics.bandwidth import ws_tcp_payload_bytes, ws_wire_bytes

    profile = load_profile(cfg.profile)
    rngs = direction_rngs(cfg.seed)
    msg = stream.message_bytes
    tcp_bytes = np.array([ws_tcp_payload_bytes(int(b), True, hm) for b in msg], dtype=np.int64)
    wire = np.array([ws_wire_bytes(int(b), True, hm) for b in msg], dtype=np.int64)
    send_s = stream.capture_s.astype(float)
    model = TcpDeliveryModel(profile.chain("up"), profile.chain("down"), mss=hm.mss)
    res = model.deliver(send_s, tcp_bytes, rngs["up"], rngs["down"])
    cols = {
        "send_s": send_s,
        "arrival_s": np.asarray(res.delivered_s, dtype=float),
        "wire_bytes": wire,
        "duplicates": np.zeros(len(send_s), dtype=np.int64),
    }
    extra = {"tcp_retransmissions": int(res.retransmissions), "tcp_acks": int(res.acks)}
    return cols, extra


def build_trace(cfg: CallConfig, stream: SenderStream) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate the uplink of one call: the arrival trace and transport counters."""
    from translab.metrics.bandwidth import HeaderModel

    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    if cfg.nack or cfg.red or cfg.abr or cfg.fec_loss != "fixed":  # a closed loop (translab.protection.sim)
        from translab.protection.sim import protected_trace

        return protected_trace(cfg, stream, hm, trace_attrs(cfg, stream, "simulate"))
    sim = _sim_webrtc if cfg.transport == "webrtc" else _sim_websocket
    cols, extra = sim(cfg, stream, hm)
    n = len(stream.seq)
    rows = {
        "seq": stream.seq,
        "media_ts": stream.media_ts,
        "frame_samples": stream.frame_samples,
        "capture_s": stream.capture_s,
        "payload_bytes": stream.payload_bytes,
        "message_bytes": stream.message_bytes,
        "transport": [cfg.transport] * n,
        "direction": ["up"] * n,
        "fec": stream.fec,
        "payload": stream.payload,
        **cols,
    }
    return trace_mod.make_trace(rows, trace_attrs(cfg, stream, "simulate")), extra


#: CallConfig fields that do not change the codec-only reference call (it has no network and its own
#: fixed playout), so calls differing only in them share one cached codec-only score.
_NOT_CODEC_FIELDS = ("seed", "profile", "playout", "ip_version", "tls", "nack", "red", "abr", "fec_loss")


def codec_only_key(cfg: CallConfig) -> str:
    """The cache key of :func:`_codec_only_scores`: the resolved config as JSON without the fields
    that only concern the network (seed, profile, playout, header model)."""
    d = cfg.to_dict()
    for k in _NOT_CODEC_FIELDS:
        d.pop(k, None)
    return json.dumps(d, sort_keys=True)


@functools.lru_cache(maxsize=64)
def _codec_only_scores(cfg_json: str) -> dict[str, float | None]:
    """Quality of the codec alone (same codec settings, perfect network, playout ``fixed:<frame>``),
    cached per process and per :func:`codec_only_key`, so a sweep over seeds and profiles computes it
    once per codec setting."""
    from translab.metrics.quality import quality
    from translab.playout import play

    cfg = CallConfig.from_dict(json.loads(cfg_json)).resolved()
    ref = load_reference(cfg)
    stream = encode_stream(ref, cfg)
    n = len(stream.seq)
    rows = {
        "seq": stream.seq, "media_ts": stream.media_ts, "frame_samples": stream.frame_samples,
        "capture_s": stream.capture_s, "send_s": stream.capture_s, "arrival_s": stream.capture_s,
        "payload_bytes": stream.payload_bytes, "message_bytes": stream.message_bytes,
        "wire_bytes": stream.message_bytes, "transport": [cfg.transport] * n, "direction": ["up"] * n,
        "fec": stream.fec, "duplicates": np.zeros(n, dtype=np.int64), "payload": stream.payload,
    }
    perfect = trace_mod.make_trace(rows, trace_attrs(cfg, stream, "simulate"))
    out = play(perfect, policy=f"fixed:{cfg.frame_ms:g}", conceal=cfg.conceal)
    return quality(stream.reference, out.audio, cfg.sample_rate, metrics=cfg.metrics)


def frame_fates(trace: pd.DataFrame, frames: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per sent packet, in send order: ``unheard`` (its audio was not played from it nor recovered by
    FEC: lost in the network, discarded late, or skipped/dropped by the receiver) and ``concealed``
    (the receiver played concealment in its slot, e.g. while waiting for it). DTX frames were never
    sent and do not count."""
    from translab.playout.stats import CONCEAL_KINDS

    heard = frames.loc[frames["kind"].isin(("decoded", "fec")), "media_ts"].to_numpy(dtype=np.int64)
    patched = frames.loc[frames["kind"].isin(CONCEAL_KINDS), "media_ts"].to_numpy(dtype=np.int64)
    sent = trace.sort_values("seq")["media_ts"].to_numpy(dtype=np.int64)
    return ~np.isin(sent, heard), np.isin(sent, patched)


def summarise(
    cfg: CallConfig,
    trace: pd.DataFrame,
    reference: np.ndarray,
    *,
    mode: str,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Play out ``trace`` and compute every figure of the summary row.

    Shared by simulated and live calls. ``reference`` is the audio that was encoded (float32 at the
    codec rate). Returns ``(summary, playout_result)``.
    """
    from translab.metrics.bandwidth import HeaderModel, bandwidth
    from translab.metrics.emodel import burst_ratio, impairment_for, mos_from_r, r_factor
    from translab.metrics.impairment import impairment_summary
    from translab.metrics.latency import latency_budget, mouth_to_ear, played_frames
    from translab.metrics.quality import quality
    from translab.playout import play
    from translab.protection.receive import original_packets, playout_options, playout_view, protection_figures

    wire_trace, trace = trace, original_packets(trace)  # retransmissions are wire-only rows
    out = play(playout_view(wire_trace), policy=cfg.playout, conceal=cfg.conceal,
               **playout_options(wire_trace, cfg.playout))
    stats = out.stats
    sent = len(trace)
    lost_mask = trace["arrival_s"].isna().to_numpy()
    duration_s = float(len(reference) / cfg.sample_rate)
    lookahead_ms = float(trace.attrs.get("lookahead_ms", 0.0) or 0.0)
    lat = mouth_to_ear(out.frames, lookahead_ms)
    budget = latency_budget(trace, out.frames, lookahead_ms)
    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    acks = (extra or {}).get("tcp_acks")
    bw = bandwidth(
        wire_trace, duration_s, hm,
        acks_per_s=None if acks is None else {"up": acks / duration_s},
        retransmitted_segments={"up": int((extra or {}).get("tcp_retransmissions", 0))},
    )
    total = max(int(stats.get("totalSamplesReceived", 0)), 1)
    concealed_ratio = float(stats.get("concealedSamples", 0)) / total
    scores = quality(reference, out.audio, cfg.sample_rate, metrics=cfg.metrics) if cfg.metrics else {}
    codec_scores = _codec_only_scores(codec_only_key(cfg)) if cfg.metrics else {}
    codec_bps = int(cfg.bitrate) if cfg.codec == "opus" else int(cfg.sample_rate) * (16 if cfg.codec == "pcm16" else 8)
    # The receiver conceals unless told not to: zero-fill, and the elastic and aiortc-stock receivers
    # (which skip or drop what is missing) have no PLC, so G.711's/Opus' robustness without PLC applies.
    has_plc = cfg.conceal != "zero" and cfg.playout not in ("elastic", "aiortc-stock")
    ie, bpl, wideband, ie_source = impairment_for(cfg.codec, codec_bps, has_plc, sample_rate=int(cfg.sample_rate))
    played = played_frames(out.frames)["m2e_ms"]
    ta_ms = float(played.mean()) + lookahead_ms if len(played) else math.nan
    unheard, concealed = frame_fates(trace, out.frames)
    effective_loss_rate = float(unheard.mean()) if unheard.size else 0.0
    # The E-model's Ppl: the share of the call the listener did not hear as sent: concealment played
    # (for lost or late frames, or while waiting for one) plus frames dropped or skipped without any
    # concealment (aiortc-stock, elastic). Stalls without concealment count in Ta (delay) instead.
    # BurstR comes from the per-frame sequence of impaired slots in send order.
    impaired = unheard | concealed
    ppl = 100.0 * (concealed_ratio + (float((unheard & ~concealed).mean()) if unheard.size else 0.0))
    burst = burst_ratio(impaired)
    r = r_factor(ta_ms, ppl, ie=ie, bpl=bpl, burst_r=burst, wideband=wideband) if played.size else math.nan
    cfg_dict = cfg.to_dict()
    summary: dict[str, Any] = {
        "mode": mode,
        "status": "ok",
        "reason": "",
        "transport": cfg.transport,
        "codec": cfg.codec,
        "bitrate_bps": codec_bps,
        "frame_ms": float(cfg.frame_ms),
        "sample_rate": int(cfg.sample_rate),
        "framing": cfg.framing,
        "fec": bool(cfg.fec) if cfg.codec == "opus" else False,
        "dtx": bool(cfg.dtx) if cfg.codec == "opus" else False,
        "profile": cfg.profile,
        "seed": int(cfg.seed),
        "playout": cfg.playout,
        "conceal": cfg.conceal,
        "clip": cfg.clip,
        "duration_s": duration_s,
        "packets_sent": sent,
        "loss_rate": float(lost_mask.mean()) if sent else 0.0,
        "late_rate": float(stats.get("packetsDiscarded", 0)) / sent if sent else 0.0,
        "concealed_ratio": concealed_ratio,
        "effective_loss_rate": effective_loss_rate,
        **impairment_summary(cfg.profile, cfg.seed, str(cfg.clip), trace),  # did it land on speech?
        "interruptions": int(stats.get("interruptionCount", 0)),
        "interruption_s": float(stats.get("totalInterruptionDuration", 0.0)),
        "stalls": int(stats.get("stallCount", 0)),
        "stall_s": float(stats.get("totalStallDuration", 0.0)),
        **lat,
        "m2e_mean_ms": ta_ms,
        **{f"budget_{k}": v for k, v in budget.items()},
        **bw,
        **scores,
        **{f"codec_{k}": v for k, v in codec_scores.items()},
        "emodel_r": r,
        "emodel_mos": mos_from_r(r, wideband=wideband) if not math.isnan(r) else math.nan,
        "emodel_ie_source": ie_source,
        # the E-model's inputs, so emodel_r can be recomputed by hand (G.107 / G.107.1 / G.107.2)
        "emodel_ta_ms": ta_ms,
        "emodel_ppl_pct": ppl,
        "emodel_burst_r": burst,
        "emodel_ie": ie,
        "emodel_bpl": bpl,
        "emodel_band": {False: "nb", True: "wb"}.get(wideband, str(wideband)),
        **{f"rx_{k}": v for k, v in stats.items()},
        **protection_figures(wire_trace, out.frames, duration_s),
        **(extra or {}),
        **{f"v_{k}": v for k, v in provenance.versions().items()},
        "config_hash": provenance.config_hash(cfg_dict),
        "config": json.dumps(cfg_dict, sort_keys=True),
    }
    return summary, out


def write_artefacts(result: CallResult, out_dir: str | Path) -> Path:
    """Write ``trace.parquet``, ``output.wav`` and ``summary.json`` into ``out_dir``; the summary is
    written last (atomically), so a directory with a summary is complete."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace_mod.save(result.trace, out / "trace.parquet")
    write_wav(out / "output.wav", result.audio, int(result.summary["sample_rate"]))
    write_json(out / "summary.json", result.summary, sort_keys=True)  # strict JSON: NaN -> null
    return out


def simulate(cfg: CallConfig | None = None, out_dir: str | Path | None = None) -> CallResult:
    """Simulate one call (uplink: caller to callee) and return its CallResult; with ``out_dir``, also
    write the artefacts there. Same config and seed give byte-identical output."""
    t0 = time.perf_counter()
    cfg, _, stream = prepare_call(cfg or CallConfig())
    trace, extra = build_trace(cfg, stream)
    extra["dtx_skipped"] = stream.dtx_skipped
    summary, out = summarise(cfg, trace, stream.reference, mode="simulate", extra=extra)
    result = CallResult(summary=summary, trace=trace, audio=out.audio, playout=out)
    result.wall_s = time.perf_counter() - t0
    if out_dir is not None:
        write_artefacts(result, out_dir)
    return result
