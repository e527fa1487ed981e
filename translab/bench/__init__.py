"""Benchmarks behind `translab bench`: each module has `run() -> dict` of figures (units in key names)."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np


def time_s(fn: Callable[[], Any], repeats: int, *, stat: str = "median", warmup: bool = False) -> float:
    """Wall-clock seconds (``time.perf_counter``) of ``fn()`` over ``repeats`` runs, after one
    untimed run when ``warmup``; ``stat``: "median" or "best" (the minimum)."""
    if stat not in ("median", "best"):
        raise ValueError(f"stat: {stat!r} is not allowed (allowed: median, best)")
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) if stat == "median" else min(times)
