"""The NetEq comparison's pure parts: the browser's counters cut to the media window (its tail of
concealment after the last packet removed) and the compared figures."""

from __future__ import annotations

import math

import pytest

from translab.playout.neteq_check import figures, gaps, model_figures, neteq_window


def _snap(total: int, concealed: int, emitted: int, events: int, delay_s: float = 0.0) -> dict:
    return {"totalSamplesReceived": total, "concealedSamples": concealed, "jitterBufferEmittedCount": emitted,
            "concealmentEvents": events, "jitterBufferDelay": delay_s, "jitterBufferTargetDelay": delay_s,
            "silentConcealedSamples": 0, "jitter": 0.004}


def test_window_ends_at_the_last_decoded_sample_and_drops_the_tail() -> None:
    # 50 ms snapshots at 48 kHz (2400 samples each). Media: 4 snapshots, one 960-sample concealment
    # in the middle; the last packet is decoded 1000 samples into the 5th interval, after which
    # everything is concealment (the tail: 1400 samples in that interval, then 2400 per interval).
    snaps = [
        _snap(2400, 0, 2400, 0, 0.1),
        _snap(4800, 960, 3840, 1, 0.2),
        _snap(7200, 960, 6240, 1, 0.3),
        _snap(9600, 960, 8640, 1, 0.4),
        _snap(12000, 960 + 1400, 9640, 2, 0.5),  # last packet decoded in here
        _snap(14400, 960 + 3800, 9640, 2, 0.5),
        _snap(16800, 960 + 6200, 9640, 2, 0.5),
    ]
    w = neteq_window(snaps)
    assert w["tail_concealed_samples"] == 1400
    assert w["concealedSamples"] == 960 and w["totalSamplesReceived"] == 10600
    assert w["concealmentEvents"] == 1  # the tail's own event is not the media's
    assert w["jitterBufferEmittedCount"] == 9640 and w["window_snapshot"] == 4
    f = figures(w)
    assert f["concealed_share"] == pytest.approx(960 / 10600)
    assert f["mean_buffer_delay_ms"] == pytest.approx(1e3 * 0.5 / 9640)
    assert f["jitter_ms"] == pytest.approx(4.0)


def test_a_window_ending_exactly_on_a_snapshot_has_no_tail() -> None:
    snaps = [_snap(2400, 0, 2400, 0), _snap(4800, 0, 4800, 0), _snap(7200, 2400, 4800, 1)]
    w = neteq_window(snaps)
    assert w["tail_concealed_samples"] == 0 and w["concealedSamples"] == 0 and w["concealmentEvents"] == 0
    assert w["totalSamplesReceived"] == 4800
    assert neteq_window([]) == {}


def test_model_figures_and_gaps() -> None:
    stats = {"rx_totalSamplesReceived": 48000, "rx_concealedSamples": 960, "rx_jitterBufferDelay": 2400.0,
             "rx_jitterBufferEmittedCount": 48000, "rx_removedSamplesForAcceleration": 100,
             "rx_insertedSamplesForDeceleration": 0, "rx_concealmentEvents": 1}
    m = model_figures(stats)
    assert m["concealed_share"] == pytest.approx(0.02) and m["mean_buffer_delay_ms"] == pytest.approx(50.0)
    g = gaps(m, {"concealed_share": 0.01, "mean_buffer_delay_ms": 40.0, "accel_samples": 0.0})
    assert g["concealed_share_gap_pct"] == pytest.approx(100.0)
    assert g["mean_buffer_delay_ms_gap"] == pytest.approx(10.0)
    assert g["accel_samples_gap"] == 100 and math.isnan(g["accel_samples_gap_pct"])


def test_bench_replay_re_runs_the_model_on_kept_calls_and_pairs_the_gaps(tmp_path) -> None:
    """translab.bench.neteq.replay: the current model on a kept call's arrival trace, against the NetEq
    figures stored beside it; here NetEq's figures are set 10 ms of buffer delay above what the model
    gives, so the replayed gap is exactly -10 ms (-x %) on every call."""
    import json

    import numpy as np

    from translab import trace as trace_mod
    from translab.bench.neteq import FIGS, replay
    from translab.playout.play import play
    from translab.playout.synthetic import packet_trace, voiced

    rng = np.random.default_rng(2)
    for seed in (1, 2, 3):
        n = 100
        tr = packet_trace(voiced(2.0, 16000), 16000, delay_s=0.02 + rng.uniform(0, 0.03, n))
        down = tmp_path / f"jittery-s{seed}" / "down"
        down.mkdir(parents=True)
        trace_mod.save(tr, down / "trace.parquet")
        m = model_figures(play(trace_mod.load(down / "trace.parquet"), policy="adaptive", conceal="zero").stats)
        neteq = {f"neteq_{f}": m[f] for f in FIGS} | {"neteq_mean_buffer_delay_ms": m["mean_buffer_delay_ms"] + 10.0}
        (down / "summary.json").write_text(json.dumps({"conceal": "zero", "loss_rate": 0.0, **neteq}))
    r = replay(str(tmp_path))["jittery"]
    assert r["n"] == 3 and [c["seed"] for c in r["calls"]] == [1, 2, 3]
    assert r["gap_mean_buffer_delay_ms"] == pytest.approx(-10.0)
    assert r["gap_mean_buffer_delay_ms_lo"] == pytest.approx(-10.0) and r["gap_mean_buffer_delay_ms_hi"] == pytest.approx(-10.0)
    assert r["gap_mean_buffer_delay_ms_pct"] == pytest.approx(-1000.0 / r["neteq_mean_buffer_delay_ms"])
    assert r["gap_decel_samples"] == 0 and r["gap_concealed_share"] == 0
