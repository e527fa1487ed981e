"""Jitter-buffer policies: fixed, adaptive, elastic, aiortc-stock, on small synthetic traces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from translab.errors import ConfigError
from translab.playout import play
from translab.playout.delay_manager import DelayManager, DelayManagerConfig
from translab.playout.stats import CONCEAL_KINDS
from translab.playout.synthetic import packet_trace, voiced

RATE = 16000
FRAME_N = 320  # 20 ms at 16 kHz


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return voiced(4.0, RATE)


def slot_kinds(frames: pd.DataFrame) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for ts, kind in zip(frames["media_ts"], frames["kind"]):
        out.setdefault(int(ts) // FRAME_N, []).append(str(kind))
    return out


# --- fixed ----------------------------------------------------------------------------------------

def test_fixed_m2e_is_frame_plus_target_on_a_jitter_free_trace(speech):
    tr = packet_trace(speech, RATE, delay_s=0.004)
    out = play(tr, policy="fixed:30", conceal="zero")
    assert (out.frames["kind"] == "decoded").all()
    np.testing.assert_allclose(out.frames["m2e_ms"], 20.0 + 30.0, atol=1e-6)
    assert out.stats["packetsDiscarded"] == 0
    assert out.stats["concealedSamples"] == 0
    # output is the input, sample for sample
    n = len(speech) // FRAME_N * FRAME_N
    ref = np.round(speech[:n] * 32767) / 32768
    np.testing.assert_allclose(out.audio[:n], ref, atol=2 / 32768)


def test_fixed_discards_exactly_the_late_frames(speech):
    n_pk = len(speech) // FRAME_N
    delay = np.full(n_pk, 0.005)
    late = [7, 30, 31, 77]
    delay[late] = [0.031, 0.045, 0.200, 0.0301]
    delay[50] = 0.030  # exactly on the deadline: in time
    tr = packet_trace(speech, RATE, delay_s=delay, lost=[90])
    out = play(tr, policy="fixed:30", conceal="repeat")
    st = out.stats
    assert st["packetsDiscarded"] == len(late)
    assert st["packetsLost"] == 1
    kinds = slot_kinds(out.frames)
    for k in late + [90]:
        assert kinds[k] == ["repeat"], k
    assert kinds[50] == ["decoded"]
    assert sum(v == ["decoded"] for v in kinds.values()) == n_pk - len(late) - 1
    assert st["concealedSamples"] == (len(late) + 1) * FRAME_N
    assert out.frames.loc[out.frames["kind"] == "repeat", "m2e_ms"].isna().all()


# --- adaptive -------------------------------------------------------------------------------------

def _feed(dm: DelayManager, t0: float, seconds: float, jitter_s: float, rng: np.random.Generator) -> float:
    n = int(seconds / 0.02)
    for i in range(n):
        media = t0 + i * 0.02
        dm.update(media + 0.010 + rng.uniform(0, jitter_s), media)
    return t0 + n * 0.02


def test_delay_manager_target_rises_with_jitter_and_falls_after_forgetting():
    rng = np.random.default_rng(3)
    dm = DelayManager()
    t = _feed(dm, 0.0, 10.0, 0.0, rng)
    assert dm.target_ms == 20.0
    t = _feed(dm, t, 20.0, 0.120, rng)
    high = dm.target_ms
    assert high >= 100.0
    t = _feed(dm, t, 30.0, 0.0, rng)
    assert dm.target_ms >= 60.0  # 30 s later the old jitter still weighs (f = 0.983 per 0.5 s)
    t = _feed(dm, t, 150.0, 0.0, rng)
    assert dm.target_ms == 20.0  # forgotten


def test_delay_manager_clamps_to_min_and_max():
    rng = np.random.default_rng(4)
    dm = DelayManager(DelayManagerConfig(min_target_ms=60.0, max_target_ms=100.0))
    t = _feed(dm, 0.0, 5.0, 0.0, rng)
    assert dm.target_ms == 60.0
    _feed(dm, t, 10.0, 0.5, rng)
    assert dm.target_ms == 100.0


def _phased_trace(speech_s: float, jitter_phase: tuple[float, float], jitter_s: float, seed: int = 1) -> pd.DataFrame:
    x = voiced(speech_s, RATE)
    n_pk = len(x) // FRAME_N
    rng = np.random.default_rng(seed)
    t = (np.arange(n_pk) + 1) * 0.02
    delay = np.full(n_pk, 0.010)
    m = (t >= jitter_phase[0]) & (t < jitter_phase[1])
    delay[m] += rng.uniform(0, jitter_s, m.sum())
    return packet_trace(x, RATE, delay_s=delay)


def test_adaptive_follows_jitter_up_and_back_and_counts_stretching():
    tr = _phased_trace(24.0, (4.0, 10.0), 0.100)
    fast = DelayManagerConfig(forget_factor=0.8)  # forget within ~5 s (14 updates), for a short test
    out = play(tr, policy="adaptive", conceal="zero", config=fast)
    f = out.frames
    dec = f[f["kind"] == "decoded"]
    t = dec["play_s"].to_numpy()
    m2e = dec["m2e_ms"].to_numpy()
    before = np.median(m2e[(t > 2.5) & (t < 4.0)])
    during = np.median(m2e[(t > 7.0) & (t < 10.0)])
    after = np.median(m2e[t > 20.0])
    assert during > before + 50
    assert after < during - 50
    # back inside the band: 10 ms network + 20 ms frame + the band's top at the minimum target (20 ms +
    # largest relative delay of the last 2 s, at most one 10 ms tick on a steady link, + 20 ms)
    assert after <= 10 + 20 + (20 + 10 + 20)
    st = out.stats
    assert st["insertedSamplesForDeceleration"] > 0
    assert st["removedSamplesForAcceleration"] > 0
    # every sample is accounted for: decoded frames + concealment + inserted - removed = output
    n_decoded = int((f["kind"] == "decoded").sum())
    assert (
        n_decoded * FRAME_N + st["concealedSamples"] + st["insertedSamplesForDeceleration"]
        - st["removedSamplesForAcceleration"]
        == len(out.audio)
    )
    assert (f["kind"] == "stall").sum() == 0


def test_adaptive_conceals_a_lost_packet_and_counts_the_late_one():
    x = voiced(3.0, RATE)
    n_pk = len(x) // FRAME_N
    delay = np.full(n_pk, 0.010)
    delay[100] = 0.5  # far too late
    tr = packet_trace(x, RATE, delay_s=delay, lost=[60])
    out = play(tr, policy="adaptive", conceal="pcm-plc")
    kinds = slot_kinds(out.frames)
    assert "pcm-plc" in kinds[60] and "pcm-plc" in kinds[100]
    assert out.stats["packetsDiscarded"] == 1
    assert out.stats["packetsLost"] == 1


# --- elastic --------------------------------------------------------------------------------------

def test_elastic_never_conceals_and_latency_grows_after_a_stall():
    x = voiced(3.0, RATE)
    n_pk = len(x) // FRAME_N
    send = (np.arange(n_pk) + 1) * 0.02
    arrival = send + 0.005
    arrival[40] += 0.300  # head-of-line blocking, as TCP does: the ones behind wait too
    arrival = np.maximum.accumulate(arrival)
    tr = packet_trace(x, RATE, delay_s=arrival - send, transport="websocket")
    out = play(tr, policy="elastic", conceal="pcm-plc")
    f = out.frames
    assert not f["kind"].isin(list(CONCEAL_KINDS)).any()
    st = out.stats
    assert st["concealedSamples"] == 0 and st["concealmentEvents"] == 0
    assert st["stallCount"] == 1
    assert st["totalStallDuration"] == pytest.approx(0.300, abs=1 / RATE)
    assert st["interruptionCount"] == 0  # NetEq's interruptions are concealment runs
    assert st["stallInterruptionCount"] == 1  # a 300 ms stall is an audible gap all the same
    assert st["totalStallInterruptionDuration"] == pytest.approx(0.300, abs=1 / RATE)
    dec = f[f["kind"] == "decoded"].set_index("media_ts")["m2e_ms"]
    assert dec.loc[39 * FRAME_N] == pytest.approx(25.0)
    assert dec.loc[40 * FRAME_N] == pytest.approx(325.0)
    assert dec.loc[(n_pk - 1) * FRAME_N] == pytest.approx(325.0)  # never comes back down
    assert np.all(np.diff(dec.to_numpy()) >= -1e-9)


def test_elastic_skips_a_lost_packet_after_waiting():
    x = voiced(2.0, RATE)
    tr = packet_trace(x, RATE, delay_s=0.005, lost=[30])
    out = play(tr, policy="elastic", conceal="zero", loss_wait_s=0.050)
    f = out.frames
    assert 30 * FRAME_N not in set(f.loc[f["kind"] == "decoded", "media_ts"])
    assert out.stats["skippedFrames"] == 1
    assert out.stats["concealedSamples"] == 0
    dec = f[f["kind"] == "decoded"].set_index("media_ts")["m2e_ms"]
    # slot 30 was due at 0.625 s; slot 31 arrives at 0.645 s; the client gives 30 up 50 ms later
    # and plays 31 at 0.695 s, captured from 0.620 s: 75 ms, 50 ms more than before, for good
    assert dec.loc[29 * FRAME_N] == pytest.approx(25.0)
    assert dec.loc[31 * FRAME_N] == pytest.approx(75.0)
    assert dec.iloc[-1] == pytest.approx(75.0)


# --- errors and determinism -----------------------------------------------------------------------

def test_bad_policy_and_conceal_name_the_field(speech):
    tr = packet_trace(speech[:8000], RATE)
    with pytest.raises(ConfigError) as e:
        play(tr, policy="jittery", conceal="zero")
    assert e.value.field == "policy" and "adaptive" in e.value.allowed
    with pytest.raises(ConfigError) as e:
        play(tr, policy="fixed:abc", conceal="zero")
    assert e.value.field == "policy"
    with pytest.raises(ConfigError) as e:
        play(tr, policy="fixed:40", conceal="opus-fec")
    assert e.value.field == "conceal" and "pcm-plc" in e.value.allowed
    with pytest.raises(ConfigError) as e:
        play(tr, policy="fixed:40", conceal="magic")
    assert e.value.field == "conceal"


@pytest.mark.parametrize("policy", ["fixed:40", "adaptive", "elastic", "aiortc-stock"])
def test_same_trace_same_output(policy):
    x = voiced(3.0, RATE)
    rng = np.random.default_rng(9)
    tr = packet_trace(x, RATE, delay_s=0.02 + rng.exponential(0.015, len(x) // FRAME_N), lost=[10, 11, 70])
    a = play(tr, policy=policy, conceal="pcm-plc")
    b = play(tr, policy=policy, conceal="pcm-plc")
    assert a.audio.tobytes() == b.audio.tobytes()
    pd.testing.assert_frame_equal(a.frames, b.frames)
    assert a.stats == b.stats
    assert a.frames["samples"].sum() == len(a.audio)


def test_adaptive_fills_dtx_gaps_in_their_own_time():
    x = voiced(2.0, RATE)
    tr = packet_trace(x, RATE, delay_s=0.010)
    attrs = dict(tr.attrs)
    tr = tr.drop(index=list(range(30, 45))).reset_index(drop=True)  # nothing sent for 300 ms
    tr["seq"] = np.arange(len(tr))  # DTX: no sequence gap, so nothing is lost
    tr.attrs.update(attrs)
    out = play(tr, policy="adaptive", conceal="zero")
    kinds = slot_kinds(out.frames)
    assert all(kinds[k] == ["zero"] for k in range(30, 45))
    assert out.stats["packetsLost"] == 0 and out.stats["packetsDiscarded"] == 0
    dec = out.frames[out.frames["kind"] == "decoded"].set_index("media_ts")["m2e_ms"]
    assert dec.loc[45 * FRAME_N] == pytest.approx(dec.loc[29 * FRAME_N], abs=1.0)


def test_options_a_policy_does_not_take_are_refused(speech):
    tr = packet_trace(speech[:8000], RATE)
    with pytest.raises(ConfigError) as e:
        play(tr, policy="fixed:40", conceal="zero", config=DelayManagerConfig())
    assert e.value.field == "option" and e.value.value == "config"
