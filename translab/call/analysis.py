"""The one analysis of a call, whatever engine made it: arrival trace -> playout -> metrics -> the
result row (columns declared in translab.call.row)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from translab import provenance
from translab.call.prepare import EXTERNAL_CLIP, PreparedCall, load_reference, stream_trace
from translab.call.record import CallRecord, CallResult
from translab.call.row import check_engine_figures
from translab.config import CallConfig
from translab.media.audio import resample
from translab.media.stream import encode_stream
from translab.metrics.bandwidth import HeaderModel, bandwidth
from translab.metrics.emodel import burst_ratio, impairment_for, mos_from_r, r_factor
from translab.metrics.impairment import impairment_summary
from translab.metrics.latency import latency_budget, mouth_to_ear, played_frames
from translab.metrics.quality import quality
from translab.playout import play
from translab.playout.aiortc_stock import sink_play_times
from translab.playout.stats import CONCEAL_KINDS
from translab.protection.receive import original_packets, playout_options, playout_view, protection_figures

#: CallConfig fields that do not change the codec-only reference call (it has no network and its own
#: fixed playout), so calls differing only in them share one cached codec-only score.
_NOT_CODEC_FIELDS = ("seed", "profile", "playout", "ip_version", "tls", "nack", "red", "abr", "fec_loss",
                     "abr_feedback")


def codec_only_key(cfg: CallConfig) -> str:
    """The cache key of :func:`codec_only_scores`: the resolved config as JSON without the fields
    that only concern the network (seed, profile, playout, header model)."""
    d = cfg.to_dict()
    for k in _NOT_CODEC_FIELDS:
        d.pop(k, None)
    return json.dumps(d, sort_keys=True)


@functools.lru_cache(maxsize=64)
def codec_only_scores(cfg_json: str) -> dict[str, float | None]:
    """Quality of the codec alone (same codec settings, perfect network, playout ``fixed:<frame>``),
    cached per process and per :func:`codec_only_key`, so a sweep over seeds and profiles computes it
    once per codec setting."""
    cfg = CallConfig.from_dict(json.loads(cfg_json)).resolved()
    assert cfg.sample_rate is not None and cfg.conceal is not None
    stream = encode_stream(load_reference(cfg), cfg)
    n = len(stream.seq)
    perfect = stream_trace(cfg, stream, send_s=stream.capture_s, arrival_s=stream.capture_s,
                           wire_bytes=stream.message_bytes, duplicates=np.zeros(n, dtype=np.int64),
                           mode="simulate")
    out = play(perfect, policy=f"fixed:{cfg.frame_ms:g}", conceal=cfg.conceal)
    return quality(stream.reference, out.audio, cfg.sample_rate, metrics=cfg.metrics)


def frame_fates(trace: pd.DataFrame, frames: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per sent frame slot, in send order: ``unheard`` (its audio was not played from its packet nor
    recovered by FEC: lost in the network, discarded late, or skipped/dropped by the receiver) and
    ``concealed`` (the receiver played concealment in the slot, e.g. while waiting for it). A packet
    holding several frames (an adaptor's 60 ms packets in a 20 ms call) counts once per frame, so
    the shares are shares of audio time. DTX frames were never sent and do not count."""
    heard = frames.loc[frames["kind"].isin(("decoded", "fec")), "media_ts"].to_numpy(dtype=np.int64)
    patched = frames.loc[frames["kind"].isin(CONCEAL_KINDS), "media_ts"].to_numpy(dtype=np.int64)
    sent_rows = trace.sort_values("seq")
    sent = sent_rows["media_ts"].to_numpy(dtype=np.int64)
    if "frame_samples" in sent_rows.columns and len(sent):
        size = sent_rows["frame_samples"].to_numpy(dtype=np.int64)
        frame_n = int(size.min())
        if frame_n > 0 and (size != frame_n).any():
            parts = size // frame_n
            sent = np.repeat(sent, parts) + frame_n * (np.arange(int(parts.sum())) - np.repeat(np.cumsum(parts) - parts, parts))
    return ~np.isin(sent, heard), np.isin(sent, patched)


def network_delay(trace: pd.DataFrame) -> dict[str, float]:
    """Transport-level delay of a call's received packets, arrival - send (ms): p50, p95, p99, max.
    For WebSocket this includes TCP retransmission and head-of-line waits; playout is not included."""
    d = (trace["arrival_s"].to_numpy(dtype=float) - trace["send_s"].to_numpy(dtype=float)) * 1000.0
    d = d[~np.isnan(d)]
    if not d.size:
        return {}
    p50, p95, p99 = np.percentile(d, [50, 95, 99])
    return {"net_delay_p50_ms": float(p50), "net_delay_p95_ms": float(p95), "net_delay_p99_ms": float(p99),
            "net_delay_max_ms": float(d.max())}


def codec_bps(cfg: CallConfig) -> int:
    """The codec's bit rate (bit/s): Opus' target, PCM's rate x bits per sample."""
    if cfg.codec == "opus":
        return int(cfg.bitrate)
    return int(cfg.sample_rate or 0) * (16 if cfg.codec == "pcm16" else 8)


def call_columns(cfg: CallConfig, mode: str, status: str, reason: str) -> dict[str, Any]:
    """The ``call`` group: the resolved config echoed, and the outcome."""
    return {
        "mode": mode, "status": status, "reason": reason, "transport": cfg.transport,
        "codec": cfg.codec, "bitrate_bps": codec_bps(cfg), "frame_ms": float(cfg.frame_ms),
        "sample_rate": int(cfg.sample_rate or 0), "framing": cfg.framing,
        "fec": bool(cfg.fec) if cfg.codec == "opus" else False,
        "dtx": bool(cfg.dtx) if cfg.codec == "opus" else False,
        "profile": cfg.profile, "seed": int(cfg.seed), "playout": cfg.playout, "conceal": cfg.conceal,
        "clip": cfg.clip,
    }


def provenance_columns(cfg: CallConfig) -> dict[str, Any]:
    """The ``provenance`` group."""
    d = cfg.to_dict()
    return {**{f"v_{k}": v for k, v in provenance.versions().items()},
            "config_hash": provenance.config_hash(d), "config": json.dumps(d, sort_keys=True)}


def _setup_columns(record: CallRecord, frames: pd.DataFrame | None) -> dict[str, float]:
    setup = dict(record.setup_ms)
    if frames is not None and not math.isnan(record.media_start_ms):
        played = frames[frames["kind"].isin(("decoded", "fec"))]
        if len(played):
            setup["first_audio_played"] = record.media_start_ms + float(played["play_s"].iloc[0]) * 1e3
    out = {f"setup_{k}_ms": v for k, v in setup.items()}
    if not math.isnan(record.media_start_ms):
        out["setup_t0_ms"] = record.media_start_ms
    return out


def _stock_columns(call: PreparedCall, record: CallRecord) -> tuple[dict[str, Any], np.ndarray | None]:
    """The ``aiortc_stock`` group: what aiortc's own receiver delivered, its mouth-to-ear on the
    aiortc-stock model's steady sink (ms, incl. codec lookahead, as the headline m2e), and the quality
    of its audio; plus that audio at the codec rate (None when not recorded)."""
    stock = record.stock
    if stock is None or not stock.frames:
        return {}, None
    a = np.asarray(stock.frames, dtype=float)
    capture_s = a[:, 1] / 48000.0
    frame_s = float(np.median(a[:, 2])) / 48000.0
    delivered = (a[:, 0] - capture_s) * 1e3 + call.lookahead_ms
    played = (sink_play_times(a[:, 0], frame_s) - capture_s) * 1e3 + call.lookahead_ms
    out: dict[str, Any] = {
        "stock_frames": int(len(a)),
        "stock_samples_48k": int(a[:, 2].sum()),
        "stock_m2e_p50_ms": float(np.percentile(played, 50)),
        "stock_m2e_p95_ms": float(np.percentile(played, 95)),
        "stock_m2e_p99_ms": float(np.percentile(played, 99)),
        "stock_m2e_max_ms": float(played.max()),
        "stock_delivery_m2e_p50_ms": float(np.percentile(delivered, 50)),
        "stock_delivery_m2e_p95_ms": float(np.percentile(delivered, 95)),
    }
    if stock.audio is None or call.cfg.playout != "aiortc-stock":
        return out, None
    rate = int(call.cfg.sample_rate or 48000)
    audio = np.asarray(stock.audio, dtype=np.float32)
    if rate != 48000:
        audio = resample(audio, 48000, rate)
    if call.cfg.metrics:
        out.update({f"stock_{k}": v for k, v in
                    quality(call.reference, audio, rate, metrics=call.cfg.metrics).items()})
    return out, audio


def _emodel_columns(cfg: CallConfig, trace: pd.DataFrame, frames: pd.DataFrame, concealed_ratio: float,
                    lookahead_ms: float) -> dict[str, Any]:
    """The ``emodel`` group (ITU-T G.107 / G.107.1 / G.107.2) with its inputs, so R can be recomputed
    by hand, and ``effective_loss_rate`` (network group) from the same per-frame fates."""
    assert cfg.codec is not None
    # The receiver conceals unless told not to: zero-fill, and the elastic and aiortc-stock receivers
    # (which skip or drop what is missing) have no PLC, so G.711's/Opus' robustness without PLC applies.
    has_plc = cfg.conceal != "zero" and cfg.playout not in ("elastic", "aiortc-stock")
    ie, bpl, wideband, ie_source = impairment_for(cfg.codec, codec_bps(cfg), has_plc,
                                                  sample_rate=int(cfg.sample_rate or 0))
    played = played_frames(frames)["m2e_ms"]  # frames that played no sample have no mouth-to-ear
    ta_ms = float(played.mean()) + lookahead_ms if len(played) else math.nan
    unheard, concealed = frame_fates(trace, frames)
    # The E-model's Ppl: the share of the call the listener did not hear as sent: concealment played
    # (for lost or late frames, or while waiting for one) plus frames dropped or skipped without any
    # concealment (aiortc-stock, elastic). Stalls without concealment count in Ta (delay) instead.
    # BurstR comes from the per-frame sequence of impaired slots in send order.
    ppl = 100.0 * (concealed_ratio + (float((unheard & ~concealed).mean()) if unheard.size else 0.0))
    burst = burst_ratio(unheard | concealed)
    r = r_factor(ta_ms, ppl, ie=ie, bpl=bpl, burst_r=burst, wideband=wideband) if played.size else math.nan
    return {
        "effective_loss_rate": float(unheard.mean()) if unheard.size else 0.0,
        "m2e_mean_ms": ta_ms,
        "emodel_r": r,
        "emodel_mos": mos_from_r(r, wideband=wideband) if not math.isnan(r) else math.nan,
        "emodel_ie_source": ie_source,
        "emodel_ta_ms": ta_ms,
        "emodel_ppl_pct": ppl,
        "emodel_burst_r": burst,
        "emodel_ie": ie,
        "emodel_bpl": bpl,
        "emodel_band": "wb" if wideband is True else "nb" if wideband is False else str(wideband),
    }


def _bandwidth_columns(cfg: CallConfig, record: CallRecord, duration_s: float) -> dict[str, Any]:
    """The ``bandwidth`` group under the config's header model, over every wire row (RTX and RED
    bytes included); a simulated WebSocket call's TCP ACKs and retransmissions come from the TCP
    delivery model (``record.tcp_*``)."""
    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    return bandwidth(
        record.trace, duration_s, hm,
        acks_per_s=None if record.tcp_acks is None else {"up": record.tcp_acks / duration_s},
        retransmitted_segments={"up": int(record.tcp_retransmissions or 0)},
    )


def analyse(call: PreparedCall, record: CallRecord, mode: str, engine: str = "") -> CallResult:
    """Play out the record's trace and compute every column of the result row (see
    translab.call.row), group by group; then the engine's own groups. A failed call gets the
    ``call``, engine and provenance groups only."""
    check_engine_figures(record.figures, engine or mode)
    if record.reference is not None:
        call = dataclasses.replace(call, reference=np.asarray(record.reference, dtype=np.float32))
    cfg, wire_trace = call.cfg, record.trace
    trace = original_packets(wire_trace)  # retransmissions (NACK/RTX) are wire-only rows
    if record.status != "ok":
        failed = {**call_columns(cfg, mode, record.status, record.reason),
                  **_setup_columns(record, None), **record.figures, **provenance_columns(cfg)}
        return CallResult(summary=failed, trace=trace, audio=np.zeros(0, dtype=np.float32), playout=None)
    assert cfg.sample_rate is not None and cfg.conceal is not None
    out = play(playout_view(wire_trace), policy=cfg.playout, conceal=cfg.conceal,
               **playout_options(wire_trace, cfg.playout))
    stats = out.stats
    sent = len(trace)
    duration_s = float(len(call.reference) / cfg.sample_rate)
    lookahead_ms = float(trace.attrs.get("lookahead_ms", 0.0) or 0.0)
    concealed_ratio = float(stats.get("concealedSamples", 0)) / max(int(stats.get("totalSamplesReceived", 0)), 1)
    emodel = _emodel_columns(cfg, trace, out.frames, concealed_ratio, lookahead_ms)
    scores = quality(call.reference, out.audio, cfg.sample_rate, metrics=cfg.metrics) if cfg.metrics else {}
    codec_scores = codec_only_scores(codec_only_key(cfg)) if cfg.metrics else {}
    summary: dict[str, Any] = {
        **call_columns(cfg, mode, "ok", ""),
        "duration_s": duration_s,
        # network
        "packets_sent": sent,
        "loss_rate": float(trace["arrival_s"].isna().to_numpy().mean()) if sent else 0.0,
        "late_rate": float(stats.get("packetsDiscarded", 0)) / sent if sent else 0.0,
        "effective_loss_rate": emodel.pop("effective_loss_rate"),
        # did it land on speech? (unknown for an outside caller's audio)
        **impairment_summary(cfg.profile, cfg.seed, None if cfg.clip == EXTERNAL_CLIP else str(cfg.clip), trace),
        **network_delay(trace),
        # receiver
        "concealed_ratio": concealed_ratio,
        "interruptions": int(stats.get("interruptionCount", 0)),
        "interruption_s": float(stats.get("totalInterruptionDuration", 0.0)),
        "stalls": int(stats.get("stallCount", 0)),
        "stall_s": float(stats.get("totalStallDuration", 0.0)),
        **{f"rx_{k}": v for k, v in stats.items()},
        **protection_figures(wire_trace, out.frames, duration_s),
        # latency
        **mouth_to_ear(out.frames, lookahead_ms),
        **{f"budget_{k}": v for k, v in latency_budget(trace, out.frames, lookahead_ms).items()},
        **_bandwidth_columns(cfg, record, duration_s),
        **scores,
        **{f"codec_{k}": v for k, v in codec_scores.items()},
        **emodel,
    }
    if record.tcp_retransmissions is not None:
        summary["tcp_retransmissions"] = int(record.tcp_retransmissions)
    if record.tcp_acks is not None:
        summary["tcp_acks"] = int(record.tcp_acks)
    stock, stock_audio = _stock_columns(call, record)
    summary.update(record.figures)
    summary.update(stock)
    summary.update(_setup_columns(record, out.frames))
    summary.update(provenance_columns(cfg))
    return CallResult(summary=summary, trace=trace, audio=out.audio, playout=out, stock_audio=stock_audio)
