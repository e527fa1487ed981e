"""Mouth-to-ear latency and its budget.

The playout frames log (:class:`translab.playout.PlayoutResult.frames`) gives, per output block,
``m2e_ms`` = the time its first sample plays minus the time that sample was captured (ms). Only
*played* frames count (:func:`played_frames`): blocks carrying transmitted audio (``decoded`` and
``fec``) that played at least one sample. Concealment, stall and inserted blocks have NaN m2e; a
frame whose every sample an accelerating buffer removed played nothing, so it has no mouth-to-ear
latency of its own: it is left out and counted as ``frames_unplayed``. Stalls still count: they
push every later frame later. The codec lookahead
(Opus: 6.5 ms at 48 kHz) delays the decoded sound further; :func:`mouth_to_ear` adds it when given,
so its figures are what the caller hears.

The budget splits the MEAN mouth-to-ear into framing (a frame's first sample waits one frame for
the last one to be captured), codec lookahead, network (arrival - send, mean over the packets that
carried the played frames) and jitter buffer (the rest: mean playout - arrival, stalls and waits for
an FEC-carrying packet included). Means add where medians do not, so the four parts add up exactly to
the mean mouth-to-ear over played blocks plus the lookahead (the summary's ``m2e_mean_ms``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PLAYED_KINDS = ("decoded", "fec")


def _carrying(frames: pd.DataFrame) -> np.ndarray:
    carrying: np.ndarray = frames["kind"].isin(PLAYED_KINDS).to_numpy(dtype=bool) & frames["m2e_ms"].notna().to_numpy()
    return carrying


def played_frames(frames: pd.DataFrame) -> pd.DataFrame:
    """The rows of a frames log that count for latency: ``decoded`` / ``fec`` blocks with an m2e
    that played at least one sample."""
    return frames[_carrying(frames) & (frames["samples"].to_numpy() > 0)]


def mouth_to_ear(frames: pd.DataFrame, lookahead_ms: float = 0.0) -> dict[str, float]:
    """``m2e_p50_ms``, ``m2e_p95_ms``, ``m2e_p99_ms``, ``m2e_max_ms`` (ms) over played frames
    (:func:`played_frames`; NaN when nothing was played), and ``frames_unplayed``: decoded / FEC
    frames left out because they played no sample (all removed by acceleration). ``lookahead_ms``
    (the codec's algorithmic delay, ms) is added to every block: a sound spoken at t comes out of
    the decoder lookahead later than the frames log says, so the caller's mouth-to-ear includes it."""
    unplayed = int((_carrying(frames) & (frames["samples"].to_numpy() == 0)).sum())
    v = played_frames(frames)["m2e_ms"].to_numpy(dtype=float) + float(lookahead_ms)
    if v.size == 0:
        out = {k: math.nan for k in ("m2e_p50_ms", "m2e_p95_ms", "m2e_p99_ms", "m2e_max_ms")}
        return {**out, "frames_unplayed": unplayed}
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    return {"m2e_p50_ms": float(p50), "m2e_p95_ms": float(p95), "m2e_p99_ms": float(p99),
            "m2e_max_ms": float(v.max()), "frames_unplayed": unplayed}


def latency_budget(trace: pd.DataFrame, frames: pd.DataFrame, lookahead_ms: float | None = None) -> dict[str, float]:
    """Split of the mean mouth-to-ear latency (ms) into parts that add up exactly:

    - ``framing_ms``: the frame duration (``trace.attrs['frame_ms']``);
    - ``lookahead_ms``: codec algorithmic delay (from ``trace.attrs['lookahead_ms']`` when not given);
    - ``network_ms``: MEAN arrival - send of the packet each played frame came from (its own packet,
      or for an FEC-recovered frame the next packet, which carried it), over played frames; when no
      played frame can be matched, the mean over all received packets;
    - ``jitter_buffer_ms``: mean m2e of played frames - framing - network, i.e. the mean wait from
      arrival to playout (stalls and FEC waits included).

    ``framing + lookahead + network + jitter_buffer == mean(m2e_ms of played frames) + lookahead``
    (the summary's ``m2e_mean_ms``), over :func:`played_frames`. NaN parts when nothing was
    received or played."""
    attrs = trace.attrs
    framing_ms = float(attrs.get("frame_ms", math.nan))
    if lookahead_ms is None:
        lookahead_ms = float(attrs.get("lookahead_ms", 0.0) or 0.0)
    arr = trace["arrival_s"].to_numpy(dtype=float)
    send = trace["send_s"].to_numpy(dtype=float)
    ok = ~np.isnan(arr)
    network_ms = float(np.mean(arr[ok] - send[ok]) * 1000.0) if ok.any() else math.nan
    played = played_frames(frames)
    jb_ms = math.nan
    if len(played) and ok.any():
        ts = trace["media_ts"].to_numpy(dtype=np.int64)[ok]
        delay = (arr - send)[ok]
        a = arr[ok]
        # earliest arrival per media timestamp (a duplicate's later copy is not what was played)
        order = np.lexsort((a, ts))
        ts_s, d_s = ts[order], delay[order]
        first = np.ones(ts_s.size, dtype=bool)
        first[1:] = ts_s[1:] != ts_s[:-1]
        ts_u, d_u = ts_s[first], d_s[first]
        p_ts = played["media_ts"].to_numpy(dtype=np.int64)
        kinds = played["kind"].to_numpy()
        step = int(trace["frame_samples"].iloc[0]) if len(trace) else 0
        want = np.where(kinds == "fec", p_ts + step, p_ts)
        idx = np.searchsorted(ts_u, want)
        idx_c = np.clip(idx, 0, max(ts_u.size - 1, 0))
        hit = (idx < ts_u.size) & (ts_u[idx_c] == want)
        if hit.any():
            network_ms = float(np.mean(d_u[idx_c[hit]]) * 1000.0)
        m2e_mean = float(played["m2e_ms"].to_numpy(dtype=float).mean())
        jb_ms = m2e_mean - framing_ms - network_ms
    return {"framing_ms": framing_ms, "lookahead_ms": float(lookahead_ms), "network_ms": network_ms, "jitter_buffer_ms": jb_ms}
