"""The statistics behind every verdict: interval coverage on known distributions, paired effects,
verdicts at the threshold, reproducibility, repeatability."""

from __future__ import annotations

import math

import numpy as np
import pytest

from translab.metrics import statistics as st


def test_mean_interval_covers_the_true_mean_about_95_percent():
    # 200 samples of n=20 from a skewed distribution (exponential, mean 1): the BCa interval should
    # contain the true mean in about 95 % of them (binomial sd ~1.5 %; BCa undercovers a little at n=20)
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        e = st.estimate(rng.exponential(1.0, 20))
        hits += e.lo <= 1.0 <= e.hi
    assert 0.88 <= hits / 200 <= 0.99


def test_paired_difference_coverage_on_normal_pairs():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(200):
        base = rng.normal(3.5, 0.5, 20)  # clip x seed effect shared by both sides
        a, b = base + 0.1 + rng.normal(0, 0.1, 20), base + rng.normal(0, 0.1, 20)
        e = st.paired(a, b)
        hits += e.lo <= 0.1 <= e.hi
    assert 0.90 <= hits / 200 <= 0.99


def test_pairing_removes_the_shared_unit_effect():
    rng = np.random.default_rng(3)
    base = rng.normal(3.5, 0.8, 20)  # large clip effect, small treatment effect
    a, b = base + 0.3 + rng.normal(0, 0.05, 20), base + rng.normal(0, 0.05, 20)
    e = st.paired(a, b)
    assert e.hi - e.lo < 0.1 and e.lo > 0.2
    assert st.judge(e, 0.1, "above") == st.SUPPORTED
    unpaired = st.estimate(a).lo - st.estimate(b).hi
    assert unpaired < 0  # the two single intervals overlap: only pairing shows the effect


def test_null_effect_is_inconclusive_and_clear_effects_decide():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 20), rng.normal(0, 1, 20)
    assert st.judge(st.paired(a, b), 0.1, "above") == st.INCONCLUSIVE
    assert st.judge(st.paired(a + 5, b), 0.1, "above") == st.SUPPORTED
    assert st.judge(st.paired(a - 5, b), 0.1, "above") == st.REFUTED
    assert st.judge(st.paired(a - 5, b), 0.1, "below") == st.SUPPORTED


def test_judge_needs_the_whole_interval_past_the_threshold():
    e = st.Estimate(0.15, 0.05, 0.25, 20, "mean")
    assert st.judge(e, 0.1, "above") == st.INCONCLUSIVE
    assert st.judge(e, 0.0, "above") == st.SUPPORTED
    assert st.judge(e, 0.3, "above") == st.REFUTED
    assert st.judge(e, 0.3, "below") == st.SUPPORTED
    assert st.judge(st.Estimate(0.15, math.nan, math.nan, 2, "mean"), 0.0) == st.INCONCLUSIVE
    with pytest.raises(ValueError, match="side"):
        st.judge(e, 0.0, "beyond")


def test_estimates_are_reproducible_and_handle_edge_cases():
    x = np.random.default_rng(5).normal(0, 1, 20)
    assert st.estimate(x, "median") == st.estimate(x, "median")
    e = st.estimate([2.0] * 10)
    assert (e.value, e.lo, e.hi, e.n) == (2.0, 2.0, 2.0, 10)
    few = st.estimate([1.0, 2.0])
    assert few.n == 2 and not few.has_interval
    assert st.estimate([np.nan, 1.0, 2.0, 3.0]).n == 3
    p95 = st.estimate(np.arange(100.0), "p95")
    assert p95.lo <= 94.05 <= p95.hi
    with pytest.raises(ValueError, match="stat"):
        st.estimate(x, "mode")
    with pytest.raises(ValueError, match="pair up"):
        st.paired([1.0, 2.0], [1.0])
    assert "[" in st.estimate(x).text("ms", 1) and "(n=20)" in st.estimate(x).text()


def test_repeatability_is_the_worst_spread_within_groups():
    spread, k = st.repeatability([4.3, 4.3, 3.9, 4.0, 4.0, 5.0], ["a", "a", "a", "b", "b", "c"])
    assert spread == pytest.approx(0.4) and k == 2
    assert math.isnan(st.repeatability([1.0], ["a"])[0])
