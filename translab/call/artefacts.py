"""The one place a call's artefacts are written: trace.parquet, output.wav (ok calls), frames.parquet
(the playout frames log, for latency CDFs), stock_output.wav (aiortc's own audio, live aiortc-stock
calls) and summary.json, written last and atomically so a directory with a summary is complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from translab import trace as trace_mod
from translab.call.record import CallResult
from translab.media.audio import write_wav

FRAMES_COLUMNS = ("play_s", "media_ts", "samples", "kind", "m2e_ms")


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays (anything else: str)."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def write_summary(summary: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``summary.json`` atomically (a temporary name, then renamed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "summary.json.partial"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=json_default) + "\n")
    return tmp.replace(out / "summary.json")


def write_artefacts(result: CallResult, out_dir: str | Path) -> Path:
    """Write every artefact of ``result`` into ``out_dir``; returns ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace_mod.save(result.trace, out / "trace.parquet")
    if result.summary.get("status") == "ok":
        rate = int(result.summary["sample_rate"])
        write_wav(out / "output.wav", result.audio, rate)
        if result.stock_audio is not None:
            write_wav(out / "stock_output.wav", result.stock_audio, rate)
        frames = getattr(result.playout, "frames", None)
        if frames is not None:
            cols = [c for c in FRAMES_COLUMNS if c in frames.columns]
            frames[cols].to_parquet(out / "frames.parquet", index=False)
    write_summary(result.summary, out)
    return out
