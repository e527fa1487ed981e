"""Cell functions: what the runner calls for one cell of an experiment.

A cell function takes ``(cell, out_dir)``, where ``cell`` is a dict of CallConfig fields plus ``mode``
and ``metrics``, writes the cell's artefacts into ``out_dir`` (an empty directory) and returns the
summary row (a flat dict). It raises on failure; the runner turns that into a failed row. Cell functions
must be importable module-level functions so worker processes (local or Dask) can unpickle them.

* :func:`run_cell` (the default) dispatches on ``mode``: :func:`simulate_cell` or :func:`live_cell`.
* :func:`toy_cell` is a fast, deterministic stand-in used by tests and ``translab run --cell-function``
  to exercise the runner without the engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

#: Keys of a cell that are not CallConfig fields.
RUNNER_KEYS = ("mode",)


def call_config(cell: dict[str, Any]) -> Any:
    """The :class:`translab.config.CallConfig` of a cell (runner keys removed)."""
    from translab.config import CallConfig

    return CallConfig.from_dict({k: v for k, v in cell.items() if k not in RUNNER_KEYS})


def _save_frames(result: Any, out_dir: Path) -> None:
    """Keep the playout frames log (m2e per played block) for latency CDFs in figures."""
    frames = getattr(getattr(result, "playout", None), "frames", None)
    if frames is not None:
        cols = [c for c in ("play_s", "media_ts", "samples", "kind", "m2e_ms") if c in frames.columns]
        frames[cols].to_parquet(out_dir / "frames.parquet", index=False)


def simulate_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Simulate one call (translab.simulate) and write trace.parquet, output.wav, summary.json and
    frames.parquet into ``out_dir``."""
    from translab.simulate import simulate

    result = simulate(call_config(cell), out_dir=out_dir)
    _save_frames(result, Path(out_dir))
    return dict(result.summary)


def live_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Run one live call in real time (translab.live) and write the same artefacts as a simulated
    cell. Live calls are never run in parallel by the runner."""
    from translab.live import live_call

    result = live_call(call_config(cell), out_dir=out_dir)
    _save_frames(result, Path(out_dir))
    return dict(result.summary)


def run_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The default cell function: simulate or live by ``cell["mode"]``."""
    if cell.get("mode", "simulate") == "live":
        return live_cell(cell, out_dir)
    return simulate_cell(cell, out_dir)


def toy_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """A deterministic fake cell (no engine): numbers derived from a hash of the cell.

    Fails (raises RuntimeError) when ``cell["seed"] == 666``. Sleeps ``TRANSLAB_TOY_SLEEP_S`` seconds
    (environment, default 0) to let tests interrupt a run.
    """
    sleep_s = float(os.environ.get("TRANSLAB_TOY_SLEEP_S", "0") or 0)
    if sleep_s:
        time.sleep(sleep_s)
    if cell.get("seed") == 666:
        raise RuntimeError("toy failure for seed 666")
    digest = hashlib.sha256(json.dumps(cell, sort_keys=True, default=str).encode()).digest()
    u = [b / 255 for b in digest[:8]]
    ws = cell.get("transport") == "websocket"
    summary = {
        "transport": cell.get("transport"),
        "codec": cell.get("codec"),
        "bitrate_bps": int(cell.get("bitrate") or 0),
        "profile": cell.get("profile"),
        "seed": cell.get("seed"),
        "m2e_p50_ms": 60 + 40 * u[0] + (20 if ws else 0),
        "m2e_p95_ms": 90 + 60 * u[1] + (60 if ws else 0),
        "m2e_p99_ms": 110 + 80 * u[2] + (120 if ws else 0),
        "loss_rate": 0.0 if ws else 0.05 * u[3],
        "concealed_ratio": 0.04 * u[4],
        "plcmos": 2.5 + 1.5 * u[5],
        "wire_kbps_up": 40 + 300 * u[6] * ws,
        "emodel_mos": 3 + u[7],
    }
    (Path(out_dir) / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
