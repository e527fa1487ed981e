"""The lab's own overheads, without the engine: runner cost per cell and resume scan, measured with
:func:`noop_cell`, a cell function that runs no call and returns only the cell's keys (so what is timed
is hashing, the atomic cell store and the executor, not a call).

The report build is timed over real results instead: the shipped ``smoke`` experiment (4 short
simulated calls) is run with the engine first, because a report of no-op rows would have no figures."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from translab.lab.experiment import from_dict, load_experiment
from translab.lab.runner import run_experiment
from translab.report.html import write_report

GRID = {
    "name": "bench-lab", "description": "runner overhead: no-op cells (no call is run)", "metrics": [],
    "grid": [
        {"transport": "webrtc", "bitrate": ["12k", "24k", "32k", "64k"],
         "profile": ["clean-lan", "4g-handoff", "hotel-wifi"], "seed": [1, 2, 3, 4]},
        {"transport": "websocket", "framing": ["binary", "realtime-json", "twilio-json"],
         "sample_rate": [16000, 24000], "profile": ["clean-lan", "4g-handoff", "hotel-wifi"],
         "seed": [1, 2, 3, 4]},
        {"transport": ["webrtc", "websocket"], "playout": ["adaptive", "elastic", "fixed:60"],
         "profile": ["4g-handoff", "hotel-wifi"]},
    ],
}


def noop_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Runs nothing and measures nothing: the row is the cell's own keys (metrics aside)."""
    return {k: v for k, v in cell.items() if k != "metrics"}


def run() -> dict:
    """Runner overhead (ms per cell) serial and with 2 local processes, and resume scan (ms per cell),
    over no-op cells; report build (s) and size (kB) of a real run of the smoke experiment."""
    exp = from_dict(GRID)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for executor in ("serial", "local"):
            d = Path(tmp) / executor
            t0 = time.perf_counter()
            res = run_experiment(exp, d, executor=executor, workers=2, run_cell=noop_cell, progress=False)
            out[f"runner_{executor}_ms_per_cell"] = round(1000 * (time.perf_counter() - t0) / res.n_cells, 2)
        t0 = time.perf_counter()
        res = run_experiment(exp, Path(tmp) / "serial", executor="serial", run_cell=noop_cell, progress=False)
        out["resume_scan_ms_per_cell"] = round(1000 * (time.perf_counter() - t0) / res.n_cells, 2)
        out["cells"] = res.n_cells
        smoke = run_experiment(load_experiment("smoke"), Path(tmp) / "smoke", workers=2, progress=False)
        t0 = time.perf_counter()
        path = write_report(smoke.out_dir)
        out["report_build_s"] = round(time.perf_counter() - t0, 2)
        out["report_size_kB"] = round(path.stat().st_size / 1024, 1)
        out["report_cells"] = smoke.n_cells
    return out
