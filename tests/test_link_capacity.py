"""Capacity queues: the rate is never exceeded, drop-tail drops only when full, mahimahi traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translab.errors import ConfigError
from translab.link.capacity import CapacityQueue, TraceCapacity, read_mahimahi_trace
from translab.paths import TRACES_DIR

EPS = 1e-9


def reference_queue(t, size, rate_kbps, overhead, qp=None, qb=None):
    """Straightforward per-packet FIFO with drop-tail, written independently of the model."""
    exits: list[float] = []
    wires: list[int] = []
    kept, out = [], []
    last = -np.inf
    for k, (tk, sk) in enumerate(zip(t, size)):
        w = sk + overhead
        inq = [(e, x) for e, x in zip(exits, wires) if e > tk]
        if qp is not None and len(inq) >= qp:
            continue
        if qb is not None and sum(x for _, x in inq) + w > qb:
            continue
        last = max(tk, last) + w * 8 / (rate_kbps * 1000)
        exits.append(last)
        wires.append(w)
        kept.append(k)
        out.append(last)
    return np.array(kept, dtype=np.int64), np.array(out)


arrivals = st.lists(st.floats(0.0, 0.05), min_size=1, max_size=120).map(lambda g: np.cumsum(g))


@settings(max_examples=60, deadline=None)
@given(
    t=arrivals,
    size=st.integers(40, 1500),
    rate=st.sampled_from([64.0, 200.0, 1000.0]),
    limit=st.sampled_from([None, ("p", 1), ("p", 3), ("p", 20), ("b", 1600), ("b", 5000)]),
    cuts=st.lists(st.integers(0, 120), max_size=4),
)
def test_queue_matches_reference_and_chunks(t, size, rate, limit, cuts) -> None:
    sizes = np.full(t.size, size)
    qp = limit[1] if limit and limit[0] == "p" else None
    qb = limit[1] if limit and limit[0] == "b" else None
    ref_i, ref_a = reference_queue(t, sizes, rate, 28, qp, qb)
    model = CapacityQueue(rate, 28, queue_packets=qp, queue_bytes=qb)
    bounds = sorted(set([0, t.size, *[c for c in cuts if c < t.size]]))
    parts = [model.apply(t[a:b], sizes[a:b], None) for a, b in zip(bounds, bounds[1:])]
    idx = np.concatenate([p[0] + a for p, a in zip(parts, bounds)])
    arr = np.concatenate([p[1] for p in parts])
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(arr, ref_a, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(t=arrivals, rate=st.sampled_from([50.0, 300.0]), qp=st.sampled_from([None, 2, 10]))
def test_output_rate_never_exceeds_capacity(t, rate, qp) -> None:
    size = np.full(t.size, 200)
    idx, exit_s = CapacityQueue(rate, 0, queue_packets=qp).apply(t, size, None)
    tx = 200 * 8 / (rate * 1000)
    assert np.all(exit_s >= t[idx] + tx - EPS)  # each packet takes its transmission time
    # Consecutive departures are at least one transmission time apart: bytes leaving in any
    # window [exit_i, exit_j] are at most rate * (exit_j - exit_i) + one packet.
    assert np.all(np.diff(exit_s) >= tx - EPS)


def test_drop_tail_drops_only_when_full() -> None:
    # 100 kbit/s, 1000-byte packets take 80 ms; 10 ms arrivals overload it 8x.
    t = np.arange(2000) * 0.010
    size = np.full(t.size, 1000)
    q = CapacityQueue(100, 0, queue_packets=5)
    idx, exit_s = q.apply(t, size, None)
    kept = set(idx.tolist())
    exits = dict(zip(idx.tolist(), exit_s.tolist()))
    for k in range(t.size):
        occupancy = sum(1 for j in kept if j < k and exits[j] > t[k])
        if k in kept:
            assert occupancy < 5
        else:
            assert occupancy == 5  # dropped only when full
    assert 0.8 < 1 - len(kept) / t.size < 0.9  # about 7/8 dropped
    # Queue delay is bounded by the queue: at most 5 packets ahead (incl. the one on the wire).
    assert np.max(exit_s - t[idx]) <= 5 * 0.08 + 0.08 + EPS


def test_unlimited_queue_never_drops() -> None:
    t = np.arange(1000) * 0.001
    idx, exit_s = CapacityQueue(100, 0).apply(t, np.full(1000, 1000), None)
    assert idx.size == 1000
    assert exit_s[-1] == pytest.approx(1000 * 0.08)


def test_overhead_counts_toward_the_rate() -> None:
    _, a = CapacityQueue(80, 100).apply(np.array([0.0]), np.array([0]), None)
    assert a[0] == pytest.approx(100 * 8 / 80_000)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(rate_kbps=0), "capacity.rate_kbps"),
        (dict(rate_kbps=-5), "capacity.rate_kbps"),
        (dict(rate_kbps=100, overhead_bytes=-1), "capacity.overhead_bytes"),
        (dict(rate_kbps=100, queue_packets=0), "capacity.queue_packets"),
        (dict(rate_kbps=100, queue_packets=2.5), "capacity.queue_packets"),
        (dict(rate_kbps=100, queue_packets=5, queue_bytes=5000), "capacity.queue_bytes"),
    ],
)
def test_bad_capacity_input(kwargs, field) -> None:
    with pytest.raises(ConfigError) as e:
        CapacityQueue(**kwargs)
    assert e.value.field == field


def test_mahimahi_constant_trace_behaves_like_its_rate() -> None:
    # One opportunity per ms = 12 Mbit/s; 1500-byte packets every 0.5 ms queue up 2:1.
    trace = np.arange(1, 1001, dtype=float)
    t = np.arange(400) * 0.0005
    idx, exit_s = TraceCapacity(trace).apply(t, np.full(400, 1500), None)
    assert idx.size == 400
    np.testing.assert_allclose(exit_s, (np.arange(400) + 1) / 1000.0)


def test_mahimahi_packs_small_packets_into_one_opportunity() -> None:
    trace = np.array([10.0, 20.0])  # two opportunities per 20 ms period
    t = np.zeros(4)
    idx, exit_s = TraceCapacity(trace).apply(t, np.array([500, 500, 500, 600]), None)
    # 3 x 500 fill the 10 ms opportunity; the 4th waits for the 20 ms one.
    np.testing.assert_allclose(exit_s, [0.010, 0.010, 0.010, 0.020])


def test_mahimahi_wraps_and_respects_arrival_time() -> None:
    trace = np.array([5.0, 10.0])
    model = TraceCapacity(trace)
    _, a = model.apply(np.array([0.0, 0.012, 0.0125, 0.031]), np.full(4, 1500), None)
    # opportunities at 5, 10, 15, 20, 25, 30, 35 ms ...
    np.testing.assert_allclose(a, [0.005, 0.015, 0.020, 0.035])


def test_mahimahi_drop_tail_and_chunking() -> None:
    trace = np.arange(10, 1001, 10, dtype=float)  # 1.2 Mbit/s
    t = np.arange(300) * 0.002
    s = np.full(300, 1500)
    i_b, a_b = TraceCapacity(trace, queue_packets=4).apply(t, s, None)
    m = TraceCapacity(trace, queue_packets=4)
    parts = [m.apply(t[k : k + 1], s[k : k + 1], None) for k in range(300)]
    np.testing.assert_array_equal(i_b, np.concatenate([p[0] + k for k, p in enumerate(parts)]))
    np.testing.assert_array_equal(a_b, np.concatenate([p[1] for p in parts]))
    assert 0.7 < 1 - i_b.size / 300 < 0.85  # 5x overload
    assert np.all(np.diff(a_b) >= 0.010 - EPS)  # one 1500-byte packet per 10 ms opportunity


def test_mahimahi_sample_and_malformed_lines(tmp_path: Path) -> None:
    ms = read_mahimahi_trace(TRACES_DIR / "cellular-sample.mahimahi")
    assert ms.size > 1000 and np.all(np.diff(ms) >= 0)
    bad = tmp_path / "bad.mahimahi"
    bad.write_text("1\n2\nthree\n")
    with pytest.raises(ConfigError) as e:
        read_mahimahi_trace(bad)
    assert e.value.field == "line 3"
    bad.write_text("5\n4\n")
    with pytest.raises(ConfigError) as e:
        read_mahimahi_trace(bad)
    assert e.value.field == "line 2"
