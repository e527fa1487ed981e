"""Receiver statistics, latency metrics and time stretching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from translab.metrics.latency import latency_budget, mouth_to_ear
from translab.playout import play
from translab.playout.stats import rfc3550_jitter
from translab.playout.synthetic import packet_trace, voiced
from translab.playout.time_stretch import accelerate, best_period, decelerate

RATE = 16000


def _jitter_loop(arrival: np.ndarray, ts: np.ndarray, rate: int) -> float:
    """RFC 3550 A.8, written out packet by packet (in arrival order)."""
    order = np.argsort(arrival, kind="stable")
    j = 0.0
    prev = None
    for i in order:
        if np.isnan(arrival[i]):
            continue
        if prev is not None:
            d = (arrival[i] - arrival[prev]) - (ts[i] - ts[prev]) / rate
            j += (abs(d) - j) / 16
        prev = i
    return j


def test_rfc3550_jitter_matches_the_reference_loop_and_is_zero_without_jitter():
    rng = np.random.default_rng(2)
    ts = np.arange(300) * 320
    arr = (ts + 320) / RATE + 0.02 + rng.exponential(0.01, 300)
    arr[[5, 77]] = np.nan
    assert rfc3550_jitter(arr, ts, RATE) == pytest.approx(_jitter_loop(arr, ts, RATE), rel=1e-12)
    assert rfc3550_jitter((ts + 320) / RATE + 0.05, ts, RATE) == pytest.approx(0.0, abs=1e-12)


def test_fixed_buffer_delay_and_emitted_count():
    tr = packet_trace(voiced(2.0, RATE), RATE, delay_s=0.012, lost=[3])
    out = play(tr, policy="fixed:50", conceal="zero")
    st = out.stats
    n_played = (len(tr) - 1) * 320
    assert st["jitterBufferEmittedCount"] == n_played
    # each sample waits target - network = 38 ms in the buffer
    assert st["jitterBufferDelay"] / st["jitterBufferEmittedCount"] == pytest.approx(0.038)
    assert st["jitterBufferTargetDelay"] / st["jitterBufferEmittedCount"] == pytest.approx(0.050)
    assert st["totalSamplesReceived"] == len(out.audio) == len(tr) * 320
    assert st["packetsReceived"] == len(tr) - 1


def test_mouth_to_ear_ignores_concealed_blocks():
    frames = pd.DataFrame(
        {
            "play_s": np.arange(5) * 0.02,
            "media_ts": np.arange(5) * 320,
            "samples": [320] * 5,
            "kind": ["decoded", "plc", "decoded", "fec", "stall"],
            "m2e_ms": [40.0, np.nan, 60.0, 50.0, np.nan],
        }
    )
    m = mouth_to_ear(frames)
    assert m["m2e_p50_ms"] == 50.0 and m["m2e_max_ms"] == 60.0
    assert set(m) == {"m2e_p50_ms", "m2e_p95_ms", "m2e_p99_ms", "m2e_max_ms", "frames_unplayed"}
    assert m["frames_unplayed"] == 0


def test_mouth_to_ear_leaves_out_and_counts_frames_that_played_nothing():
    # a decoded frame whose samples an accelerating buffer all removed has no latency of its own
    frames = pd.DataFrame(
        {
            "play_s": np.arange(6) * 0.02,
            "media_ts": np.arange(6) * 320,
            "samples": [320, 0, 0, 320, 320, 160],
            "kind": ["decoded", "decoded", "fec", "decoded", "plc", "decoded"],
            "m2e_ms": [40.0, 300.0, 290.0, 60.0, np.nan, 50.0],
        }
    )
    m = mouth_to_ear(frames)
    assert m["frames_unplayed"] == 2
    assert m["m2e_max_ms"] == 60.0 and m["m2e_p50_ms"] == 50.0
    tr = packet_trace(voiced(0.2, RATE), RATE, delay_s=0.01)
    b = latency_budget(tr, frames, lookahead_ms=0.0)
    assert b["framing_ms"] + b["network_ms"] + b["jitter_buffer_ms"] == pytest.approx(50.0)


@pytest.mark.parametrize("policy", ["fixed:60", "adaptive", "elastic", "aiortc-stock"])
def test_latency_budget_adds_up_exactly_to_the_mean_m2e(policy):
    # medians of parts do not add up to the median of the sum; means do, exactly
    rng = np.random.default_rng(5)
    n = int(4.0 / 0.02)
    tr = packet_trace(voiced(4.0, RATE), RATE, delay_s=0.03 + rng.uniform(0, 0.02, n), lost=[30, 31, 90])
    out = play(tr, policy=policy, conceal="pcm-plc")
    b = latency_budget(tr, out.frames, lookahead_ms=3.0)
    assert b["framing_ms"] == 20.0 and b["lookahead_ms"] == 3.0
    assert b["network_ms"] == pytest.approx(40.0, abs=2.0)
    played = out.frames[out.frames["kind"].isin(["decoded", "fec"]) & (out.frames["samples"] > 0)]["m2e_ms"].dropna()
    total = b["framing_ms"] + b["lookahead_ms"] + b["network_ms"] + b["jitter_buffer_ms"]
    assert total == pytest.approx(played.mean() + 3.0, abs=1e-9)


def test_latency_budget_network_is_the_mean_delay_of_the_played_packets():
    # a skewed delay distribution: its mean and median differ by ~19 ms, and the budget takes the mean
    delay = np.full(100, 0.020)
    delay[::5] = 0.120
    tr = packet_trace(voiced(2.0, RATE), RATE, delay_s=delay)
    out = play(tr, policy="fixed:150", conceal="zero")
    b = latency_budget(tr, out.frames, lookahead_ms=0.0)
    assert b["network_ms"] == pytest.approx(40.0, abs=0.5)
    # fixed playout: every frame plays 150 ms after its capture + one frame of framing
    assert b["framing_ms"] + b["network_ms"] + b["jitter_buffer_ms"] == pytest.approx(170.0, abs=1e-6)


def test_latency_budget_reads_lookahead_from_the_trace():
    tr = packet_trace(voiced(0.5, 48000), 48000, codec="opus", delay_s=0.01)
    out = play(tr, policy="fixed:40", conceal="opus-plc")
    b = latency_budget(tr, out.frames)
    assert b["lookahead_ms"] == pytest.approx(tr.attrs["lookahead_ms"]) and b["lookahead_ms"] > 0
    assert mouth_to_ear(out.frames)["m2e_p50_ms"] == pytest.approx(60.0)


# --- time stretching ------------------------------------------------------------------------------

def _periodic(period: int, n: int = 320) -> np.ndarray:
    t = np.arange(n)
    return 0.4 * np.sin(2 * np.pi * t / period) + 0.2 * np.sin(4 * np.pi * t / period + 0.3)


def test_best_period_of_a_periodic_block():
    p, c = best_period(_periodic(100), RATE)
    assert p == 100 and c > 0.95


def test_accelerate_removes_one_period_and_decelerate_inserts_one():
    x = _periodic(100)
    y, removed = accelerate(x, RATE, 200)
    assert removed == 100 and y.size == 220
    z, inserted = decelerate(x, RATE, 200)
    assert inserted == 100 and z.size == 420
    # a periodic signal stays the same signal (up to the cross-fade), so no clicks
    np.testing.assert_allclose(y[100:], x[200:], atol=1e-9)
    np.testing.assert_allclose(z, _periodic(100, 420), atol=0.02)
    # not more than allowed
    assert accelerate(x, RATE, 50)[1] == 0


def test_noise_is_not_stretched_but_silence_is_by_its_own_lag():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.2, 320)
    assert accelerate(noise, RATE, 200)[1] == 0
    assert decelerate(noise, RATE, 200)[1] == 0
    # a passive block moves by its best lag (NetEq's peak_index, 2.5-15 ms), whatever its correlation,
    # not by the most allowed
    quiet = rng.normal(0, 1e-4, 320)
    lag, corr = best_period(quiet, RATE)
    assert 40 <= lag <= 160 and corr < 0.9
    y, removed = accelerate(quiet, RATE, 160)
    assert removed == lag and y.size == 320 - lag
    y, inserted = decelerate(quiet, RATE, 160)
    assert inserted == lag and y.size == 320 + lag
    np.testing.assert_array_equal(y[:320], quiet)  # appended after the block, the block untouched
    # not more than allowed: then nothing
    assert accelerate(quiet, RATE, lag - 1)[1] == 0 and decelerate(quiet, RATE, lag - 1)[1] == 0


def test_fast_accelerate_removes_whole_periods_up_to_the_limit():
    x = _periodic(50, 480)
    assert accelerate(x, RATE, 160)[1] == 50
    y, removed = accelerate(x, RATE, 160, fast=True)
    assert removed == 150 and y.size == 330
    np.testing.assert_allclose(y[50:], x[200:], atol=1e-9)  # still the same periodic signal


def test_mouth_to_ear_adds_the_codec_lookahead_and_the_budget_adds_up():
    tr = packet_trace(voiced(1.0, 48000), 48000, codec="opus", delay_s=0.010)
    out = play(tr, policy="fixed:30", conceal="opus-plc")
    la = tr.attrs["lookahead_ms"]
    m = mouth_to_ear(out.frames, la)
    assert m["m2e_p50_ms"] == pytest.approx(20.0 + 30.0 + la)
    b = latency_budget(tr, out.frames)
    # constant delay: mean == median, so the parts match the p50 too
    assert b["framing_ms"] + b["lookahead_ms"] + b["network_ms"] + b["jitter_buffer_ms"] == pytest.approx(
        m["m2e_p50_ms"]
    )


ISSUE_STATS = (
    "packetsReceived", "packetsLost", "packetsDiscarded", "jitter", "jitterBufferDelay",
    "jitterBufferTargetDelay", "jitterBufferEmittedCount", "totalSamplesReceived", "concealedSamples",
    "silentConcealedSamples", "concealmentEvents", "insertedSamplesForDeceleration",
    "removedSamplesForAcceleration", "fecPacketsReceived", "fecPacketsDiscarded",
    "interruptionCount", "totalInterruptionDuration",
)


@pytest.mark.parametrize("policy", ["fixed:60", "adaptive", "elastic", "aiortc-stock"])
def test_every_policy_reports_every_w3c_stat_the_issue_names(policy):
    tr = packet_trace(voiced(1.0, RATE), RATE, delay_s=0.02, lost=[4, 5])
    st = play(tr, policy=policy, conceal="zero").stats
    missing = [k for k in ISSUE_STATS if k not in st]
    assert missing == []
    assert all(isinstance(st[k], (int, float, np.integer, np.floating)) for k in ISSUE_STATS)
    assert st["packetsLost"] == 2 and st["packetsReceived"] == len(tr) - 2
