"""Invariants every policy keeps on random traces (delay, jitter, reordering, loss)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translab.playout import play
from translab.playout.stats import CONCEAL_KINDS
from translab.playout.synthetic import packet_trace, voiced

RATE = 8000
FRAME_N = 160
AUDIO = voiced(1.2, RATE)
N_PK = len(AUDIO) // FRAME_N


@st.composite
def traces(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    base = draw(st.floats(0.0, 0.2))
    jitter = draw(st.floats(0.0, 0.15))
    loss = draw(st.floats(0.0, 0.3))
    rng = np.random.default_rng(seed)
    delay = base + rng.exponential(jitter + 1e-9, N_PK)
    lost = np.flatnonzero(rng.random(N_PK) < loss)
    return packet_trace(AUDIO, RATE, 20, codec="pcmu", delay_s=delay, lost=lost)


@pytest.mark.parametrize("policy", ["fixed:60", "adaptive", "elastic", "aiortc-stock"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tr=traces())
def test_invariants(policy, tr):
    out = play(tr, policy=policy, conceal="pcm-plc")
    f = out.frames
    s = out.stats
    assert f["samples"].sum() == len(out.audio)
    assert np.all(np.isfinite(out.audio)) and np.all(np.abs(out.audio) <= 1.0)
    # the clock only moves forward, block after block
    play_s = f["play_s"].to_numpy()
    assert np.allclose(np.diff(play_s), f["samples"].to_numpy()[:-1] / RATE)
    # each packet is played at most once, and only after it arrived
    dec = f[f["kind"] == "decoded"]
    assert dec["media_ts"].is_unique
    arrival = dict(zip(tr["media_ts"], tr["arrival_s"]))
    for ts, t in zip(dec["media_ts"], dec["play_s"]):
        assert t >= arrival[ts] - 1e-6
    # latency is positive and only played audio has one
    assert (dec["m2e_ms"] > 0).all()
    assert f.loc[~f["kind"].isin(["decoded", "fec"]), "m2e_ms"].isna().all()
    received = int(tr["arrival_s"].notna().sum())
    assert s["packetsReceived"] == received
    assert len(dec) + s["packetsDiscarded"] <= received
    assert s["concealedSamples"] == int(f.loc[f["kind"].isin(list(CONCEAL_KINDS)), "samples"].sum())
    assert s["concealmentEvents"] <= max(1, int(f["kind"].isin(list(CONCEAL_KINDS)).sum()))
    if policy in ("elastic", "aiortc-stock"):
        assert s["concealedSamples"] == 0
    if policy == "fixed:60":
        n_slots = (tr["media_ts"].max() - tr["media_ts"].min()) // FRAME_N + 1
        assert len(out.audio) == n_slots * FRAME_N
        np.testing.assert_allclose(dec["m2e_ms"], 80.0)
