"""Real-time factor of `simulate`: a 10 s call without and with quality metrics."""

from __future__ import annotations

import os

from translab.bench import time_s
from translab.config import CallConfig
from translab.simulate import _codec_only_scores, simulate


def _time_call(cfg: CallConfig, repeats: int = 3) -> float:
    """Best-of-``repeats`` wall time (s) of one simulated call."""
    return time_s(lambda: simulate(cfg), repeats, stat="best")


def run() -> dict:
    """Best-of-3 wall time (s) of a 10 s call on each transport, and the real-time factor; with
    metrics the codec-only scores are cached (as in a sweep), and ``..._with_codec_only_s`` times one
    call that computes them too (as a lone `translab simulate` does; ONNX session already loaded)."""
    out: dict[str, float] = {}
    base = dict(duration_s=10.0, profile="4g", seed=1)
    saved = os.environ.get("TRANSLAB_METRIC_CACHE")
    os.environ["TRANSLAB_METRIC_CACHE"] = "off"  # time the metrics, not the score cache
    try:
        _run(out, base)
    finally:
        if saved is None:
            os.environ.pop("TRANSLAB_METRIC_CACHE", None)
        else:
            os.environ["TRANSLAB_METRIC_CACHE"] = saved
    out["target_no_metrics_s"] = 0.25
    out["target_with_metrics_s"] = 1.5
    return out


def _run(out: dict, base: dict) -> None:
    for transport in ("webrtc", "websocket"):
        bare = CallConfig(transport=transport, metrics=(), **base)
        full = CallConfig(transport=transport, metrics=("plcmos", "stoi", "pesq_wb"), **base)
        simulate(full)  # warm caches (ONNX session, codec-only scores) as a sweep would have them
        t_bare = _time_call(bare)
        t_full = _time_call(full)
        out[f"{transport}_10s_no_metrics_s"] = round(t_bare, 4)
        out[f"{transport}_10s_no_metrics_realtime_factor"] = round(10.0 / t_bare, 1)
        out[f"{transport}_10s_plcmos_stoi_pesq_s"] = round(t_full, 4)
        out[f"{transport}_10s_plcmos_stoi_pesq_realtime_factor"] = round(10.0 / t_full, 1)
        # A lone call (e.g. `translab simulate`) also scores the codec-only reference once.
        _codec_only_scores.cache_clear()
        out[f"{transport}_10s_plcmos_stoi_pesq_with_codec_only_s"] = round(time_s(lambda: simulate(full), 1), 4)
