"""The default experiment (data/experiments/default.toml) end to end, as `./lab run` runs it: wall
time with 2 local workers (target: 3 minutes on 2 cores), CPU seconds, cells, and simulate's
real-time factor without metrics. The quality-score cache starts empty (a fresh temporary folder),
so the figure is a first run's, not a rerun's. Run it on its own: ``translab bench --only default``."""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from translab.lab.experiment import load_experiment
from translab.lab.runner import run_experiment


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run() -> dict[str, Any]:
    """Wall (s) and CPU (s) time of the default experiment, its cells by mode, and the real-time
    factor of one 10 s simulated call per transport without metrics (best of 3), with the clip's
    packets already encoded (as in a sweep) and with encoding (a lone call)."""
    from translab.bench import time_s
    from translab.bench.simulate import _time_call
    from translab.config import CallConfig
    from translab.simulate import simulate

    from translab.media import stream

    out: dict[str, Any] = {}
    for transport in ("webrtc", "websocket"):
        cfg = CallConfig(transport=transport, metrics=(), duration_s=10.0, profile="4g", seed=1)
        # as in a sweep: the clip was encoded by an earlier cell (encode once, impair many)
        out[f"simulate_{transport}_no_metrics_realtime_factor"] = round(10.0 / _time_call(cfg), 1)
        # a lone call: encoding included
        def lone_call(cfg: CallConfig = cfg) -> None:
            stream._CACHE.clear()
            simulate(cfg)

        cold = time_s(lone_call, 3, stat="best")
        out[f"simulate_{transport}_no_metrics_with_encoding_realtime_factor"] = round(10.0 / cold, 1)
    exp = load_experiment("default")
    saved = os.environ.get("TRANSLAB_METRIC_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRANSLAB_METRIC_CACHE"] = str(Path(tmp) / "score-cache")
        try:
            cpu0, t0 = _cpu_s(), time.perf_counter()
            res = run_experiment(exp, Path(tmp) / "run", workers=2, progress=False)
            out["wall_s"] = round(time.perf_counter() - t0, 1)
            out["cpu_s"] = round(_cpu_s() - cpu0, 1)
        finally:
            if saved is None:
                os.environ.pop("TRANSLAB_METRIC_CACHE", None)
            else:
                os.environ["TRANSLAB_METRIC_CACHE"] = saved
        table = res.results
        out["cells"] = int(len(table))
        out["failed"] = int((table["status"] != "ok").sum())
        if "mode" in table.columns:
            out["cells_by_mode"] = {str(k): int(v) for k, v in table["mode"].value_counts().items()}
    out["target_wall_s"] = 180
    out["load_average_1min"] = round(os.getloadavg()[0], 2)  # a shared machine slows the wall time
    return out
