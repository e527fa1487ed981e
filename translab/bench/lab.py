"""The lab's own overheads, without the engine: runner cost per cell (toy cells, which take
microseconds, so what is measured is hashing, the atomic cell store and the executor) and the time to
build the HTML report of a ~150-cell run."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from translab.lab.cells import toy_cell
from translab.lab.experiment import from_dict
from translab.lab.runner import run_experiment
from translab.report.html import write_report

GRID = {
    "name": "bench-lab", "description": "toy cells", "metrics": [],
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


def run() -> dict:
    """Runner overhead (ms per cell) serial and with 2 local processes; resume scan (ms per cell);
    report build (s) and size (kB)."""
    exp = from_dict(GRID)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for executor in ("serial", "local"):
            d = Path(tmp) / executor
            t0 = time.perf_counter()
            res = run_experiment(exp, d, executor=executor, workers=2, run_cell=toy_cell, progress=False)
            out[f"runner_{executor}_ms_per_cell"] = round(1000 * (time.perf_counter() - t0) / res.n_cells, 2)
        t0 = time.perf_counter()
        res = run_experiment(exp, Path(tmp) / "serial", executor="serial", run_cell=toy_cell, progress=False)
        out["resume_scan_ms_per_cell"] = round(1000 * (time.perf_counter() - t0) / res.n_cells, 2)
        out["cells"] = res.n_cells
        t0 = time.perf_counter()
        path = write_report(Path(tmp) / "serial")
        out["report_build_s"] = round(time.perf_counter() - t0, 2)
        out["report_size_kB"] = round(path.stat().st_size / 1024, 1)
    return out
