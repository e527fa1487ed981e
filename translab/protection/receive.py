"""The receiver's side of loss protection, applied to any arrival trace.

A protected trace (from :func:`translab.protection.sim.protected_trace`) has one row per RTP packet
on the wire: originals (their ``payload`` is the RTP payload as sent: Opus, or RED when
``attrs["protection"]["red"]`` > 0) and retransmissions (column ``rtx`` True, RFC 4588 payload,
``seq`` = the original sequence number). Traces without protection pass through unchanged.

- :func:`original_packets`: the rows of the original packets (what loss, fates and latency count).
- :func:`playout_view`: what the jitter buffer gets, as libwebrtc's receive path feeds NetEq: RTX
  payloads unwrapped to their original packet, RED payloads split into their blocks (primary and
  redundant), each block a row for its own frame with the carrying packet's arrival time. A block's
  row takes its sequence number, length (``frame_samples``) and capture time from its own packet's
  row, so a 60 ms frame carried by a 20 ms packet (or the reverse, an ABR sender switching between
  them) covers its own slots. The jitter
  buffer keeps the earliest copy of a frame, so a frame lost on its own packet is played from a
  retransmission or a later RED packet if one arrives before its slot plays, and is concealed
  otherwise. A retransmission's delay enters the adaptive buffer's delay histogram like any
  arrival (NetEq with ``enable_rtx_handling``), and with NACK on the adaptive buffer's minimum
  target is one RTT plus two frames (:func:`playout_options`): the jitter buffer "waits" for
  retransmissions through its target delay, and never holds a slot past its play time.
- :func:`protection_figures`: the row's protection columns, present for every call (zeros and the
  configured bitrate for an unprotected one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from translab import trace as trace_mod
from translab.media.opus import packet_has_fec
from translab.playout.delay_manager import DelayManagerConfig
from translab.protection.red import decode_red
from translab.protection.rtx import parse_rtx

#: Opus RTP clock (RED timestamp offsets are in these units).
_RTP_HZ = 48000


def _info(trace: pd.DataFrame) -> dict[str, Any]:
    p = trace.attrs.get("protection")
    return p if isinstance(p, dict) else {}


def original_packets(trace: pd.DataFrame) -> pd.DataFrame:
    """The original packets of ``trace`` (retransmission rows removed), attrs kept."""
    if "rtx" not in trace.columns or not trace["rtx"].any():
        return trace
    out = trace.loc[~trace["rtx"].to_numpy(dtype=bool)].reset_index(drop=True)
    out.attrs.update(trace.attrs)
    return out


def playout_view(trace: pd.DataFrame) -> pd.DataFrame:
    """The frames the jitter buffer receives (see the module docstring); ``trace`` itself when it
    carries neither RTX rows nor RED payloads. Adds a column ``source`` ("own", "rtx", "red")."""
    red = int(_info(trace).get("red", 0) or 0)
    has_rtx = "rtx" in trace.columns and bool(trace["rtx"].any())
    if not red and not has_rtx:
        return trace
    rate = int(trace.attrs["sample_rate"])
    rtx = trace["rtx"].to_numpy(dtype=bool) if "rtx" in trace.columns else np.zeros(len(trace), bool)
    orig = ~rtx
    # each frame's own packet (seq, frame length in samples, capture time of its last sample, s) by
    # media_ts: a redundant block or a retransmission is timed as its frame, whose length may differ
    # from the carrying packet's (an ABR sender switches between 20 and 60 ms packets)
    own = trace.loc[orig, ["media_ts", "seq", "frame_samples", "capture_s"]]
    frame_of = {int(ts): (int(q), int(fs), float(c)) for ts, q, fs, c in own.itertuples(index=False)}
    cols: dict[str, list[Any]] = {c: [] for c in trace_mod.COLUMNS}
    cols["source"] = []
    recs = trace.to_dict("records")
    for rec, is_rtx in zip(recs, rtx.tolist()):
        payload = rec["payload"]
        if is_rtx:
            _, payload = parse_rtx(payload)
        blocks = [(0, payload)]
        if red:
            blocks = [(b.ts_offset * rate // _RTP_HZ, b.data) for b in decode_red(payload)]
        for back, data in blocks:
            ts = int(rec["media_ts"]) - back
            if back and (not data or ts not in frame_of):
                continue
            seq, n, cap = frame_of.get(ts, (int(rec["seq"]), int(rec["frame_samples"]), float(rec["capture_s"])))
            row = dict(rec)
            row.update(
                seq=seq, media_ts=ts, frame_samples=n, capture_s=cap, payload=data,
                payload_bytes=len(data), fec=packet_has_fec(data) if data else False,
            )
            for c in trace_mod.COLUMNS:
                cols[c].append(row[c])
            cols["source"].append("rtx" if is_rtx else ("red" if back else "own"))
    view = trace_mod.make_trace({c: cols[c] for c in trace_mod.COLUMNS}, dict(trace.attrs))
    view["source"] = pd.Series(cols["source"], dtype="string")
    return view


def playout_options(trace: pd.DataFrame, policy: str) -> dict[str, Any]:
    """Options for :func:`translab.playout.play` that protection asks of the receiver: with NACK on
    and adaptive playout, the minimum target delay of :func:`translab.protection.sim.nack_min_target_ms`."""
    ms = _info(trace).get("min_target_ms")
    if policy != "adaptive" or not ms:
        return {}
    cfg = DelayManagerConfig()
    return {"config": DelayManagerConfig(min_target_ms=min(float(ms), cfg.max_target_ms))}


def protection_figures(trace: pd.DataFrame, frames: pd.DataFrame, duration_s: float) -> dict[str, Any]:
    """The protection columns of a result row.

    - ``nack_sent`` (RTCP NACK messages), ``nack_seqs`` (sequence numbers asked for), ``rtx_sent``
      (retransmissions sent), ``rtx_recovered`` / ``red_recovered``: frames whose own packet was lost
      or would have come too late, played from a retransmission / a redundant RED block;
    - ``feedback_kbps_down``: NACKs and feedback reports on the downlink (kbit/s);
    - ``abr_bitrate_mean_kbps`` / ``_min_`` / ``_max_`` (time-weighted over the call),
      ``abr_first_reduction_s`` (when the controller first lowered the bitrate, s; None if never),
      ``abr_fec_on_share`` (share of the call with FEC on): the configured values without ABR.
    """
    info = _info(trace)
    rtx_rows = trace["rtx"].to_numpy(dtype=bool) if "rtx" in trace.columns else np.zeros(len(trace), bool)
    out: dict[str, Any] = {
        "nack_sent": int(info.get("nack_sent", 0)),
        "nack_seqs": int(info.get("nack_seqs", 0)),
        "rtx_sent": int(rtx_rows.sum()),
        "rtx_recovered": 0,
        "red_recovered": 0,
        "feedback_kbps_down": float(info.get("feedback_bytes", 0)) * 8 / duration_s / 1000.0 if duration_s > 0 else 0.0,
    }
    if info and (rtx_rows.any() or info.get("red")):
        view = playout_view(trace)
        orig = trace.loc[~rtx_rows]
        own = dict(zip(orig["media_ts"].tolist(), orig["arrival_s"].tolist()))
        v = view[view["arrival_s"].notna()].sort_values(["media_ts", "arrival_s"])
        first = v.drop_duplicates("media_ts")
        src = dict(zip(first["media_ts"].tolist(), first["source"].tolist()))
        decoded = frames.loc[frames["kind"] == "decoded", ["media_ts", "play_s"]].drop_duplicates("media_ts")
        for ts, play in zip(decoded["media_ts"].tolist(), decoded["play_s"].tolist()):
            a = own.get(ts, math.nan)
            if a == a and a <= play + 1e-6:
                continue
            s = src.get(ts)
            if s == "rtx":
                out["rtx_recovered"] += 1
            elif s == "red":
                out["red_recovered"] += 1
    out.update(_bitrate_summary(trace, info, duration_s))
    return out


def _bitrate_summary(trace: pd.DataFrame, info: dict[str, Any], duration_s: float) -> dict[str, Any]:
    bps = trace.attrs.get("bitrate_bps")
    fec0 = bool(trace["fec"].any()) if len(trace) else False
    timeline = info.get("timeline") or []
    if not timeline:
        k = None if bps is None else float(bps) / 1000.0
        return {"abr_bitrate_mean_kbps": k, "abr_bitrate_min_kbps": k, "abr_bitrate_max_kbps": k,
                "abr_first_reduction_s": None, "abr_fec_on_share": 1.0 if fec0 else 0.0}
    t = np.array([float(x[0]) for x in timeline] + [max(duration_s, float(timeline[-1][0]))])
    rate = np.array([float(x[1]) for x in timeline])
    fec = np.array([bool(x[2]) for x in timeline])
    span = np.clip(np.diff(np.minimum(t, duration_s)), 0, None)
    total = span.sum()
    first = next((float(x[0]) for x in timeline if float(x[1]) < float(timeline[0][1])), None)
    return {
        "abr_bitrate_mean_kbps": float((rate * span).sum() / total / 1000.0) if total > 0 else rate[0] / 1000.0,
        "abr_bitrate_min_kbps": float(rate[span > 0].min() / 1000.0) if (span > 0).any() else rate[0] / 1000.0,
        "abr_bitrate_max_kbps": float(rate[span > 0].max() / 1000.0) if (span > 0).any() else rate[0] / 1000.0,
        "abr_first_reduction_s": first,
        "abr_fec_on_share": float((fec * span).sum() / total) if total > 0 else float(fec[0]),
    }
