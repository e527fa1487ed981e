"""Duplication, outages, and LinkChain composition (order, determinism, chunking)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translab.errors import ConfigError
from translab.link.capacity import CapacityQueue
from translab.link.chain import LinkChain
from translab.link.delay import Delay
from translab.link.duplication import Duplication
from translab.link.loss import GilbertElliottLoss
from translab.link.outage import Outage
from translab.link.profiles import direction_rngs, load_profile, profile_names


def test_duplication_rate() -> None:
    n = 200_000
    t = np.arange(n) * 0.02
    idx, arr = Duplication(0.03).apply(t, np.full(n, 10), np.random.default_rng(1))
    extra = idx.size - n
    # Binomial(n, 0.03): SE = sqrt(n p (1-p)) = 76 copies; allow 4 SE.
    assert abs(extra - 0.03 * n) < 4 * np.sqrt(n * 0.03 * 0.97)
    assert np.all(np.diff(idx) >= 0)
    counts = np.bincount(idx, minlength=n)
    assert set(np.unique(counts)) <= {1, 2}
    np.testing.assert_array_equal(arr, t[idx])


def test_outage_drops_exactly_the_scheduled_windows() -> None:
    t = np.round(np.arange(0, 30, 0.001), 6)  # 1 ms grid
    idx, arr = Outage(start_s=4.0, duration_s=0.3, period_s=10.0).apply(t, np.full(t.size, 1), None)
    lost = np.ones(t.size, dtype=bool)
    lost[idx] = False
    expected = np.zeros(t.size, dtype=bool)
    for start in (4.0, 14.0, 24.0):
        expected |= (t >= start) & (t < start + 0.3)
    np.testing.assert_array_equal(lost, expected)
    assert lost.sum() == 900
    np.testing.assert_array_equal(arr, t[idx])


def test_single_outage_and_validation() -> None:
    m = Outage(1.0, 0.5)
    assert m.in_outage(np.array([0.99, 1.0, 1.49, 1.5, 11.2])).tolist() == [False, True, True, False, False]
    with pytest.raises(ConfigError) as e:
        Outage(1.0, 2.0, period_s=2.0)
    assert e.value.field == "outage.duration_s"
    with pytest.raises(ConfigError):
        Outage(-1.0, 0.1)


def make_chain() -> LinkChain:
    return LinkChain(
        [
            Outage(0.5, 0.2, 3.0),
            Duplication(0.05),
            CapacityQueue(300, 40, queue_packets=10),
            GilbertElliottLoss.from_loss_burst(5.0, 2.0),
            Delay(0.04, 0.02, "paretonormal"),
        ]
    )


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 600), max_size=10), seed=st.integers(0, 2**32 - 1))
def test_chain_one_at_a_time_equals_batch(cuts: list[int], seed: int) -> None:
    rng0 = np.random.default_rng(seed)
    t = np.cumsum(rng0.exponential(0.01, 600))
    s = rng0.integers(60, 1400, 600)
    i_b, a_b = make_chain().apply(t, s, np.random.default_rng(seed))
    chain, rng = make_chain(), np.random.default_rng(seed)
    bounds = sorted(set([0, 600, *cuts]))
    parts = [chain.apply(t[a:b], s[a:b], rng) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(i_b, np.concatenate([p[0] + a for p, a in zip(parts, bounds)]))
    np.testing.assert_array_equal(a_b, np.concatenate([p[1] for p in parts]))


def test_chain_packet_by_packet_equals_batch() -> None:
    t = np.arange(2000) * 0.02
    s = np.full(2000, 160)
    i_b, a_b = make_chain().apply(t, s, np.random.default_rng(9))
    chain, rng = make_chain(), np.random.default_rng(9)
    parts = [chain.apply(t[k : k + 1], s[k : k + 1], rng) for k in range(2000)]
    np.testing.assert_array_equal(i_b, np.concatenate([p[0] + k for k, p in enumerate(parts)]))
    np.testing.assert_array_equal(a_b, np.concatenate([p[1] for p in parts]))


def test_chain_same_seed_identical_different_seed_differs() -> None:
    t = np.arange(3000) * 0.02
    s = np.full(3000, 160)
    a = make_chain().apply(t, s, np.random.default_rng(1))
    b = make_chain().apply(t, s, np.random.default_rng(1))
    c = make_chain().apply(t, s, np.random.default_rng(2))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].size != c[0].size or not np.array_equal(a[1], c[1])


def test_chain_reset_replays() -> None:
    t = np.arange(500) * 0.02
    s = np.full(500, 160)
    chain = make_chain()
    a = chain.apply(t, s, np.random.default_rng(4))
    chain.reset()
    b = chain.apply(t, s, np.random.default_rng(4))
    np.testing.assert_array_equal(a[1], b[1])


def test_chain_order_queue_before_delay_keeps_order() -> None:
    t = np.arange(5000) * 0.005
    s = np.full(5000, 200)
    idx, arr = make_chain().apply(t, s, np.random.default_rng(3))
    assert np.all(np.diff(idx) >= 0)
    assert np.all(np.diff(arr) >= 0)  # the delay line (last) does not reorder
    assert np.all(arr >= t[idx] + 0.04 * 0)  # never before sending


def test_empty_chain_is_ideal() -> None:
    t = np.arange(10) * 0.02
    idx, arr = LinkChain().apply(t, np.full(10, 1), np.random.default_rng(0))
    np.testing.assert_array_equal(idx, np.arange(10))
    np.testing.assert_array_equal(arr, t)


@pytest.mark.parametrize("name", profile_names())
def test_every_profile_is_deterministic_per_seed(name: str) -> None:
    prof = load_profile(name)
    t = np.arange(1500) * 0.02
    s = np.full(1500, 120)
    runs = []
    for seed in (7, 7, 8):
        rngs = direction_rngs(seed)
        runs.append(prof.chain("up").apply(t, s, rngs["up"]))
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1]) or runs[0][0].size != runs[2][0].size


def test_direction_rngs_are_independent_and_reproducible() -> None:
    a, b = direction_rngs(1), direction_rngs(1)
    assert a["up"].random() == b["up"].random()
    assert direction_rngs(1)["up"].random() != direction_rngs(1)["down"].random()


def _all_models():
    from translab.link.capacity import TraceCapacity
    from translab.link.loss import BernoulliLoss, FourStateLoss, NoLoss
    from translab.link.loss_trace import TraceLoss
    from translab.paths import TRACES_DIR

    return {
        "delay-normal": lambda: Delay(0.02, 0.03, "normal"),
        "delay-uniform": lambda: Delay(0.02, 0.03, "uniform", reorder=True),
        "delay-pareto": lambda: Delay(0.0, 0.03, "pareto"),
        "delay-paretonormal": lambda: Delay(0.01, 0.03, "paretonormal", reorder=True),
        "noloss": NoLoss,
        "bernoulli": lambda: BernoulliLoss(0.3),
        "gilbert-elliott": lambda: GilbertElliottLoss(0.2, 0.4, 0.8, 0.05),
        "4-state": lambda: FourStateLoss(0.1, 0.3, 0.2, 0.3, 0.05),
        "trace-loss": lambda: TraceLoss(TRACES_DIR / "plc-sample.txt", offset=10),
        "duplication": lambda: Duplication(0.3),
        "outage": lambda: Outage(0.3, 0.25, 1.0),
        "capacity": lambda: CapacityQueue(100, 28, queue_packets=3),
        "capacity-bytes": lambda: CapacityQueue(100, 28, queue_bytes=2000),
        "mahimahi": lambda: TraceCapacity(TRACES_DIR / "cellular-sample.mahimahi", queue_packets=3),
    }


@pytest.mark.parametrize("name", list(_all_models()))
def test_apply_one_equals_batch(name: str) -> None:
    make = _all_models()[name]
    rng0 = np.random.default_rng(12)
    t = np.cumsum(rng0.exponential(0.01, 3000))
    s = rng0.integers(60, 1500, 3000)
    i_b, a_b = make().apply(t, s, np.random.default_rng(5))
    m, rng = make(), np.random.default_rng(5)
    idx, arr = [], []
    for k in range(t.size):
        out = m.apply_one(float(t[k]), int(s[k]), rng)
        idx += [k] * len(out)
        arr += out
    np.testing.assert_array_equal(i_b, idx)
    np.testing.assert_array_equal(a_b, arr)


def test_chain_needs_a_generator() -> None:
    with pytest.raises(ConfigError) as e:
        make_chain().apply(np.zeros(3), np.ones(3), None)  # type: ignore[arg-type]
    assert e.value.field == "rng"


def test_random_outage_times_come_from_the_root_seed() -> None:
    def windows(rng: np.random.Generator) -> list[tuple[float, float]]:
        m = Outage(1.0, 0.3, 10.0, start_spread_s=4.0)
        m.bind(rng)
        return m.windows(40.0)

    w7 = windows(np.random.default_rng(7))
    assert len(w7) == 4 and all(1.0 + 10 * k <= a < 5.0 + 10 * k for k, (a, _) in enumerate(w7))
    assert windows(np.random.default_rng(7).spawn(3)[2]) == w7  # any generator spawned from seed 7
    assert windows(np.random.default_rng(8)) != w7
    assert len({round(a, 6) for a, _ in w7}) == 4  # each period draws its own time
    m = Outage(1.0, 0.3, 10.0, start_spread_s=4.0)
    with pytest.raises(ConfigError):
        m.in_outage(np.array([1.0]))  # times not drawn yet
    t = np.round(np.arange(0, 40, 0.005), 6)
    idx, _ = m.apply(t, np.ones(t.size), np.random.default_rng(7))
    one = [i for i, x in enumerate(t) if m.apply_one(float(x), 1, None)]
    assert one == idx.tolist()
    lost = np.setdiff1d(np.arange(t.size), idx)
    expected = np.flatnonzero(np.any([(t >= a) & (t < b) for a, b in w7], axis=0))
    np.testing.assert_array_equal(lost, expected)
