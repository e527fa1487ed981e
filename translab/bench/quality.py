"""Metric cost per 10 s clip: alignment (global and block-wise, 16 and 48 kHz), PLCMOS v2, PESQ wb/nb, STOI, ESTOI, ViSQOL (when the
optional package is installed; one run, it is slow), and the cheap ones (bandwidth of a 10 s
trace, one E-model evaluation).

Timings are wall-clock medians of repeated runs on this machine (``time.perf_counter``), after one
warm-up call (the PLCMOS ONNX session is created once per process). PLCMOS runs single-threaded
unless TRANSLAB_ORT_THREADS says otherwise. Units are in the key names.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from translab.bench import time_s
from translab.metrics import quality as q

CLIP_S = 10.0
RATE = 16000


def _clip() -> tuple[np.ndarray, str]:
    """10 s of speech at 16 kHz (a committed clip, looped), or noise if there is none."""
    n = int(RATE * CLIP_S)
    try:
        from translab.media.clips import list_clips, load_clip

        names = list_clips()
    except ImportError:
        names = []
    if names:
        x = load_clip(names[0], RATE)
        return np.tile(x, -(-n // len(x)))[:n].astype(np.float32), str(names[0])
    return (np.random.default_rng(0).standard_normal(n) * 0.1).astype(np.float32), "noise"


def _zero_fill(x: np.ndarray, loss: float) -> np.ndarray:
    f = RATE // 50
    y = x.copy()
    for i in np.flatnonzero(np.random.default_rng(1).random(len(x) // f) < loss):
        y[i * f : (i + 1) * f] = 0
    return y


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    return time_s(fn, repeats, warmup=True)


def run() -> dict[str, Any]:
    """Per-clip metric costs (s) and the scores they produced on the clip with 5 % zero-filled loss."""
    from translab.metrics.bandwidth import HeaderModel, bandwidth
    from translab.metrics.emodel import r_factor
    from translab.trace import make_trace

    ref, name = _clip()
    deg = np.concatenate([np.zeros(1920, np.float32), _zero_fill(ref, 0.05)])  # 120 ms late
    r, d, _ = q.align(ref, deg, RATE)
    out: dict[str, Any] = {"clip": name, "clip_s": CLIP_S, "rate_hz": RATE,
                           "ort_threads": os.environ.get("TRANSLAB_ORT_THREADS", "1")}
    out["align_s"] = _median_s(lambda: q.align(ref, deg, RATE), 5)
    out["align_piecewise_s"] = _median_s(lambda: q.align_piecewise(ref, deg, RATE), 3)
    ref48 = q._resample(ref.astype(np.float64), RATE, 48000)
    deg48 = q._resample(deg.astype(np.float64), RATE, 48000)
    out["align_48k_s"] = _median_s(lambda: q.align(ref48, deg48, 48000), 3)
    out["align_piecewise_48k_s"] = _median_s(lambda: q.align_piecewise(ref48, deg48, 48000), 3)
    out["plcmos_s"] = _median_s(lambda: q.plcmos(deg, RATE), 3)
    out["pesq_wb_s"] = _median_s(lambda: q.pesq_score(r, d, RATE, "wb"), 3)
    out["pesq_nb_s"] = _median_s(lambda: q.pesq_score(r, d, RATE, "nb"), 3)
    out["stoi_s"] = _median_s(lambda: q.stoi_score(r, d, RATE), 3)
    out["estoi_s"] = _median_s(lambda: q.stoi_score(r, d, RATE, extended=True), 3)
    out["quality_default_s"] = _median_s(lambda: q.quality(ref, deg, RATE, cache=False), 3)
    out["scores_5pct_loss"] = q.quality(ref, deg, RATE, metrics=("plcmos", "pesq_wb", "pesq_nb", "stoi", "estoi"))
    try:
        t0 = time.perf_counter()
        out["scores_5pct_loss"]["visqol"] = q.visqol_score(r, d, RATE)
        out["visqol_s"] = time.perf_counter() - t0  # includes its one-time set-up
    except q.VisqolUnavailable as e:
        out["visqol_s"] = None
        out["visqol_unavailable"] = str(e)

    n = int(CLIP_S * 50)
    t = np.arange(n) * 0.02
    trace = make_trace(
        {"seq": np.arange(n), "media_ts": np.arange(n) * 960, "frame_samples": [960] * n,
         "capture_s": t, "send_s": t, "arrival_s": t + 0.05, "payload_bytes": [60] * n,
         "message_bytes": [60] * n, "wire_bytes": [0] * n, "transport": ["webrtc"] * n,
         "direction": ["up"] * n, "fec": [False] * n, "duplicates": [0] * n, "payload": [b""] * n},
    )
    out["bandwidth_10s_trace_ms"] = 1000 * _median_s(lambda: bandwidth(trace, CLIP_S, HeaderModel()), 5)
    out["emodel_r_factor_us"] = 1e6 * _median_s(lambda: r_factor(180.0, 3.0, 10.7, 9.8, 1.5, "swb"), 50)
    return out
