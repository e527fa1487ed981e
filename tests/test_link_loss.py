"""Loss models: long-run rate and burst length converge; parameter checks; trace replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translab.errors import ConfigError
from translab.link.loss import BernoulliLoss, FourStateLoss, GilbertElliottLoss
from translab.link.loss_trace import TraceLoss, read_loss_trace
from translab.paths import TRACES_DIR

N = 400_000


def lost_mask(model, n: int = N, seed: int = 1) -> np.ndarray:
    t = np.arange(n) * 0.02
    idx, arr = model.apply(t, np.full(n, 100), np.random.default_rng(seed))
    np.testing.assert_array_equal(arr, t[idx])  # loss never moves a packet in time
    lost = np.ones(n, dtype=bool)
    lost[idx] = False
    return lost


def rate_and_burst(lost: np.ndarray) -> tuple[float, float]:
    starts = int(lost[0]) + int(np.sum(lost[1:] & ~lost[:-1]))
    return float(lost.mean()), float(lost.sum() / starts)


def test_bernoulli_rate_converges() -> None:
    rate, burst = rate_and_burst(lost_mask(BernoulliLoss(0.05)))
    # SE of the rate = sqrt(p(1-p)/N) = 0.00034; allow 4 SE.
    assert abs(rate - 0.05) < 4 * np.sqrt(0.05 * 0.95 / N)
    assert abs(burst - 1 / 0.95) < 0.01


@pytest.mark.parametrize("loss_percent, burst_len", [(1.0, 1.5), (5.0, 3.0), (10.0, 2.0), (20.0, 6.0)])
def test_webrtc_parameterisation_converges(loss_percent: float, burst_len: float) -> None:
    model = GilbertElliottLoss.from_loss_burst(loss_percent, burst_len)
    exp_rate, exp_burst = model.expected()
    assert exp_rate == pytest.approx(loss_percent / 100)
    assert exp_burst == pytest.approx(burst_len)
    rate, burst = rate_and_burst(lost_mask(model))
    # Tolerances: rate within 8 % relative (bursts shrink the effective sample by about L, so
    # the relative SE is at most about 4 % at 1 % loss with L = 1.5), mean burst within 5 %.
    assert rate == pytest.approx(loss_percent / 100, rel=0.08)
    assert burst == pytest.approx(burst_len, rel=0.05)


def test_netem_parameterisation_converges() -> None:
    model = GilbertElliottLoss(p=0.02, r=0.25, one_minus_h=0.7, one_minus_k=0.01)
    exp_rate, exp_burst = model.expected()
    pi_bad = 0.02 / 0.27
    assert exp_rate == pytest.approx(pi_bad * 0.7 + (1 - pi_bad) * 0.01)
    rate, burst = rate_and_burst(lost_mask(model))
    assert rate == pytest.approx(exp_rate, rel=0.06)
    assert burst == pytest.approx(exp_burst, rel=0.05)


def test_gilbert_elliott_chain_matches_a_plain_loop() -> None:
    """The vectorised state recursion equals a straightforward per-packet loop (netem's order:
    the loss is decided by the state the packet finds, then the state moves)."""
    for p, r in [(0.05, 0.3), (0.7, 0.6), (0.9, 0.95), (0.0, 1.0), (1.0, 0.0)]:
        model = GilbertElliottLoss(p, r, 0.9, 0.05)
        lost = lost_mask(model, n=5000, seed=3)
        u = np.random.default_rng(3).random((5000, 2))
        bad, ref = False, np.zeros(5000, dtype=bool)
        for k in range(5000):
            ref[k] = u[k, 0] < (0.9 if bad else 0.05)
            bad = (u[k, 1] < p) if not bad else (u[k, 1] < 1 - r)
        np.testing.assert_array_equal(lost, ref)


def test_four_state_converges() -> None:
    model = FourStateLoss(p13=0.01, p31=0.3, p32=0.2, p23=0.4, p14=0.005)
    exp_rate, exp_burst = model.expected()
    rate, burst = rate_and_burst(lost_mask(model))
    assert rate == pytest.approx(exp_rate, rel=0.08)
    assert burst == pytest.approx(exp_burst, rel=0.05)


def test_four_state_reduces_to_gilbert() -> None:
    # With p32 = p14 = 0 the 4-state model is a Gilbert chain: loss p13/(p13+p31), burst 1/p31.
    rate, burst = FourStateLoss(p13=0.02, p31=0.4).expected()
    assert rate == pytest.approx(0.02 / 0.42)
    assert burst == pytest.approx(1 / 0.4)


@pytest.mark.parametrize("loss_percent, burst", [(50.0, 1.0), (20.0, 0.25), (60.0, 1.4), (10.0, 0.1)])
def test_impossible_burst_length_is_refused(loss_percent: float, burst: float) -> None:
    with pytest.raises(ConfigError) as e:
        GilbertElliottLoss.from_loss_burst(loss_percent, burst)
    assert e.value.field == "loss.avg_burst_length"


def test_just_possible_burst_length_is_accepted() -> None:
    GilbertElliottLoss.from_loss_burst(50.0, 1.01)  # 0.5/0.5 = 1 < 1.01


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: BernoulliLoss(1.5), "loss.p"),
        (lambda: BernoulliLoss(-0.1), "loss.p"),
        (lambda: GilbertElliottLoss(0.1, 2.0), "loss.r"),
        (lambda: GilbertElliottLoss(0.1, 0.2, one_minus_h=-1), "loss.one_minus_h"),
        (lambda: GilbertElliottLoss.from_loss_burst(100, 5), "loss.loss_percent"),
        (lambda: FourStateLoss(0.7, p14=0.5), "loss.p13+p14"),
        (lambda: FourStateLoss(0.1, p31=0.8, p32=0.5), "loss.p31+p32"),
        (lambda: FourStateLoss(float("nan")), "loss.p13"),
    ],
)
def test_probability_outside_0_1_is_refused(make, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        make()
    assert e.value.field == field


@settings(max_examples=25, deadline=None)
@given(
    which=st.sampled_from(["bernoulli", "ge", "4state", "trace"]),
    cuts=st.lists(st.integers(0, 500), max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_at_a_time_equals_batch(which: str, cuts: list[int], seed: int) -> None:
    def make():
        return {
            "bernoulli": lambda: BernoulliLoss(0.2),
            "ge": lambda: GilbertElliottLoss(0.1, 0.3, 0.9, 0.02),
            "4state": lambda: FourStateLoss(0.05, 0.3, 0.2, 0.3, 0.02),
            "trace": lambda: TraceLoss(np.array([0, 1, 1, 0, 0, 0, 1]), offset=2),
        }[which]()

    t = np.arange(500) * 0.02
    s = np.full(500, 10)
    i_b, a_b = make().apply(t, s, np.random.default_rng(seed))
    model, rng = make(), np.random.default_rng(seed)
    bounds = sorted(set([0, 500, *cuts]))
    parts = [model.apply(t[a:b], s[a:b], rng) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(i_b, np.concatenate([p[0] + a for p, a in zip(parts, bounds)]))
    np.testing.assert_array_equal(a_b, np.concatenate([p[1] for p in parts]))


def test_trace_replay_maps_packets_to_lines_and_wraps(tmp_path: Path) -> None:
    f = tmp_path / "trace.txt"
    f.write_text("0\n1\n1\n0\n")
    idx, _ = TraceLoss(f).apply(np.arange(10) * 0.06, np.full(10, 1), np.random.default_rng(0))
    # lines 0 1 1 0 | 0 1 1 0 | 0 1 -> packets 1, 2, 5, 6, 9 lost
    np.testing.assert_array_equal(idx, [0, 3, 4, 7, 8])


@pytest.mark.parametrize("text, line", [("0\n1\n2\n", 3), ("0\n\n1\n", 2), ("1\n0.5\n", 2), ("x\n", 1)])
def test_malformed_trace_line_is_reported_with_its_number(tmp_path: Path, text: str, line: int) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        read_loss_trace(f)
    assert e.value.field == f"line {line}"
    assert str(f) in str(e.value)


def test_sample_trace_is_well_formed() -> None:
    model = TraceLoss(TRACES_DIR / "plc-sample.txt")
    rate, burst = model.expected()
    assert model.lost.size == 3000
    assert 0.01 < rate < 0.06 and burst > 1.2
    lost = lost_mask(model, n=3000)
    assert lost.mean() == pytest.approx(rate)
