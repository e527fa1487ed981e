"""Delay line: jitter moments, clipping at 0, the reorder switch, determinism, chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import ndtri

from translab.errors import ConfigError
from translab.link.delay import DISTRIBUTIONS, Delay

N = 200_000


def _pareto_t(u: float) -> float:
    return min((4 / 3) * (u ** (-1 / 3) - 1.5), 32767 / 8192)


def _paretonormal_t(q: float) -> float:
    z = float(np.clip(ndtri(q), -4, 32767 / 8192))
    return float(np.clip((z + 3 * _pareto_t(1 - q)) / 4, -4, 32767 / 8192))


def _moments(f) -> tuple[float, float]:
    """Mean and std of f(U), U uniform on (0, 1), by quadrature (independent of the model code)."""
    pts = [1e-9, 1e-6, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-6]
    m1 = integrate.quad(f, 0, 1, points=pts, limit=200)[0]
    m2 = integrate.quad(lambda u: f(u) ** 2, 0, 1, points=pts, limit=200)[0]
    return m1, float(np.sqrt(m2 - m1 * m1))


EXPECTED = {
    "uniform": (0.0, 1 / np.sqrt(3)),
    "normal": (0.0, 1.0),
    "pareto": _moments(_pareto_t),
    "paretonormal": _moments(_paretonormal_t),
}


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_jitter_moments_match_the_distribution(dist: str) -> None:
    # Base 1 s and jitter 10 ms: no clipping at 0, so the delay is exactly base + J * deviate.
    base, j = 1.0, 0.010
    t = np.arange(N) * 0.02
    _, arr = Delay(base, j, dist, reorder=True).apply(t, np.full(N, 100), np.random.default_rng(11))
    dev = (arr - t - base) / j
    mean, std = EXPECTED[dist]
    # Standard error of the mean is std/sqrt(N) (about 0.0025); allow 5 of them. Std within 3 %.
    assert abs(dev.mean() - mean) < 5 * std / np.sqrt(N)
    assert abs(dev.std() - std) < 0.03 * std


def test_pareto_is_right_skewed_and_capped() -> None:
    t = np.zeros(N)
    _, arr = Delay(1.0, 0.01, "pareto", reorder=True).apply(t, np.full(N, 1), np.random.default_rng(2))
    dev = (arr - 1.0) / 0.01
    assert dev.max() <= 32767 / 8192 + 1e-9
    assert dev.min() >= (4 / 3) * (1 - 1.5) - 1e-9  # U = 1 gives the minimum -2/3
    assert np.median(dev) < dev.mean()  # right-skewed


def test_normal_is_clipped_at_zero() -> None:
    t = np.arange(10_000) * 0.02
    _, arr = Delay(0.0, 0.05, "normal", reorder=True).apply(t, np.full(t.size, 1), np.random.default_rng(3))
    d = arr - t
    assert d.min() >= 0.0
    assert 0.4 < np.mean(d == 0.0) < 0.6  # half of a centred normal is negative


def test_no_reordering_when_switched_off() -> None:
    t = np.arange(50_000) * 0.005  # gap 5 ms, jitter 30 ms: heavy overtaking if allowed
    size = np.full(t.size, 100)
    _, a_off = Delay(0.05, 0.03, "pareto").apply(t, size, np.random.default_rng(4))
    assert np.all(np.diff(a_off) >= 0)
    assert np.all(a_off >= t + 0.0)
    _, a_on = Delay(0.05, 0.03, "pareto", reorder=True).apply(t, size, np.random.default_rng(4))
    assert np.mean(np.diff(a_on) < 0) > 0.05  # reorder on does reorder
    # Off = on pushed up to the previous arrival (libwebrtc's allow_reordering=false).
    np.testing.assert_array_equal(a_off, np.maximum.accumulate(a_on))


@settings(max_examples=40, deadline=None)
@given(
    dist=st.sampled_from(DISTRIBUTIONS),
    base=st.floats(0.0, 0.3),
    jitter=st.floats(0.0, 0.2),
    gaps=st.lists(st.floats(0.0, 0.05), min_size=1, max_size=200),
    seed=st.integers(0, 2**32 - 1),
)
def test_reorder_off_never_overtakes_for_any_parameters(
    dist: str, base: float, jitter: float, gaps: list[float], seed: int
) -> None:
    t = np.cumsum(gaps)
    idx, arr = Delay(base, jitter, dist).apply(t, np.full(t.size, 100), np.random.default_rng(seed))
    np.testing.assert_array_equal(idx, np.arange(t.size))  # delay alone neither loses nor duplicates
    assert np.all(np.diff(arr) >= 0)  # a packet never arrives before the one sent before it
    assert np.all(arr >= t)  # never before it was sent (normal jitter is clipped at 0)


@settings(max_examples=30, deadline=None)
@given(
    dist=st.sampled_from(DISTRIBUTIONS),
    reorder=st.booleans(),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_at_a_time_equals_batch(dist: str, reorder: bool, cuts: list[int], seed: int) -> None:
    t = np.cumsum(np.random.default_rng(seed).exponential(0.02, 300))
    size = np.full(t.size, 200)
    i_b, a_b = Delay(0.03, 0.02, dist, reorder).apply(t, size, np.random.default_rng(seed))
    model, rng = Delay(0.03, 0.02, dist, reorder), np.random.default_rng(seed)
    bounds = sorted(set([0, t.size, *cuts]))
    parts = [model.apply(t[a:b], size[a:b], rng) for a, b in zip(bounds, bounds[1:])]
    i_s = np.concatenate([p[0] + a for p, a in zip(parts, bounds)])
    a_s = np.concatenate([p[1] for p in parts])
    np.testing.assert_array_equal(i_b, i_s)
    np.testing.assert_array_equal(a_b, a_s)


def test_same_seed_same_output_different_seed_differs() -> None:
    t = np.arange(1000) * 0.02
    s = np.full(t.size, 1)
    a1 = Delay(0.03, 0.01).apply(t, s, np.random.default_rng(5))[1]
    a2 = Delay(0.03, 0.01).apply(t, s, np.random.default_rng(5))[1]
    a3 = Delay(0.03, 0.01).apply(t, s, np.random.default_rng(6))[1]
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)


def test_reset_restores_initial_state() -> None:
    m = Delay(0.01, 0.05, "uniform")
    m.apply(np.array([0.0]), np.array([1]), np.random.default_rng(0))
    m.reset()
    _, a = m.apply(np.array([0.0]), np.array([1]), np.random.default_rng(1))
    _, b = Delay(0.01, 0.05, "uniform").apply(np.array([0.0]), np.array([1]), np.random.default_rng(1))
    assert a[0] == b[0]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(base_s=-0.001), "delay.base"),
        (dict(jitter_s=-1), "delay.jitter"),
        (dict(distribution="gamma"), "delay.distribution"),
        (dict(reorder="yes"), "delay.reorder"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        Delay(**kwargs)
    assert e.value.field == field
    assert "allowed" in str(e.value)


def test_scalar_deviates_round_exactly_like_the_batch() -> None:
    from translab.link.delay import _pareto_one, _paretonormal_one, pareto_deviate, paretonormal_deviate

    u = np.random.default_rng(0).random(100_000)
    u[:3] = [0.0, 0.5, np.nextafter(1.0, 0.0)]
    np.testing.assert_array_equal(paretonormal_deviate(u), [_paretonormal_one(x) for x in u.tolist()])
    np.testing.assert_array_equal(pareto_deviate(1.0 - u), [_pareto_one(1.0 - x) for x in u.tolist()])
