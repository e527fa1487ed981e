"""The emulator-accuracy benchmark (``translab bench --only emulator``) runs and reports its
figures with units: probe delay error per direction, release lateness, host stalls and CPU cost
(figures only; speed targets are the benchmark's business, never a test's)."""

from __future__ import annotations

import math

import pytest

from translab.bench import emulator as bench

pytestmark = pytest.mark.live


def test_accuracy_bench_reports_its_figures() -> None:
    res = bench.run(duration_s=1.0, live_s=0)  # probes only, 1 s with timerfd and 0.5 s with call_at
    for r, timer in ((res, "timerfd"), (res["call_at_comparison"], "call_at")):
        assert r["timer"] == timer and r["delay_ms"] == 40.0 and r["rate_pps_each_way"] == 50.0
        # every probe came back in both directions: 50 per second each way
        assert r["up_probes_received"] == r["down_probes_received"] == round(50 * r["duration_s"])
        for k in ("error_p50_ms", "error_p99_ms", "release_late_p99_ms", "cpu_percent_of_one_core",
                  "host_stall_max_ms"):
            assert isinstance(r[k], float) and math.isfinite(r[k]), k
        assert r["error_abs_p99_ms"] >= 0 and r["cpu_percent_of_one_core"] > 0
        assert r["releases"] == r["up_probes_received"] + r["down_probes_received"]
    assert "live_vs_sim_webrtc" not in res  # live_s=0 leaves the live calls out
