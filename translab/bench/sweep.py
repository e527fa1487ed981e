"""A 240-cell simulated sweep with PLCMOS, STOI and PESQ through the experiment runner (target:
under 4 minutes on 2 cores). Run it on its own: ``translab bench --only sweep``."""

from __future__ import annotations

import tempfile
import time

from translab.lab.experiment import from_dict
from translab.lab.runner import run_experiment

GRID = {
    "name": "bench-sweep",
    "description": "240 simulated 10 s calls: 2 transports x 4 profiles x 3 settings x 10 seeds",
    "metrics": ["plcmos", "stoi", "pesq_wb"],
    "defaults": {"clip": "slt-weather", "duration_s": 10.0},
    "grid": [
        {"transport": "webrtc", "bitrate": ["12k", "24k", "64k"],
         "profile": ["clean-lan", "4g", "4g-handoff", "hotel-wifi"], "seed": list(range(10))},
        {"transport": "websocket", "framing": ["binary", "realtime-json"], "sample_rate": [24000],
         "profile": ["clean-lan", "4g", "4g-handoff", "hotel-wifi"], "seed": list(range(10))},
        {"transport": "websocket", "codec": "pcmu", "framing": "twilio-json",
         "profile": ["clean-lan", "4g", "4g-handoff", "hotel-wifi"], "seed": list(range(10))},
    ],
}


def run() -> dict:
    """Wall time (s) of the whole sweep and per cell, with 2 local worker processes."""
    exp = from_dict(GRID)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        outcome = run_experiment(exp, out, workers=2, progress=False)
        wall = time.perf_counter() - t0
        table = outcome.results
    n = len(table)
    return {
        "cells": n,
        "failed": int((table["status"] != "ok").sum()),
        "wall_s": round(wall, 1),
        "per_cell_s": round(wall / max(n, 1), 3),
        "target_wall_s": 240,
    }
