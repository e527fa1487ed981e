"""The one place a call's artefacts are written: trace.parquet, output.wav (ok calls), frames.parquet
(the playout frames log, for latency CDFs), stock_output.wav (aiortc's own audio, live aiortc-stock
calls) and summary.json, written last and atomically so a directory with a summary is complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from translab import trace as trace_mod
from translab.call.record import CallResult
from translab.jsonio import write_json
from translab.media.audio import write_wav

FRAMES_COLUMNS = ("play_s", "media_ts", "samples", "kind", "m2e_ms")


def write_summary(summary: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``summary.json`` atomically and as strict JSON (NaN -> null; translab.jsonio)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_json(out / "summary.json", summary, sort_keys=True)


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
