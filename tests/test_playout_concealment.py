"""Concealment: lengths, G.711 Appendix I style PCM PLC, Opus PLC and FEC, event counting."""

from __future__ import annotations

import numpy as np
import pytest

from translab.errors import ConfigError
from translab.playout import play
from translab.playout.concealment import make_concealer
from translab.playout.pcm_plc import PcmPlc, estimate_pitch
from translab.playout.synthetic import packet_trace, voiced


def snr_db(ref: np.ndarray, deg: np.ndarray) -> float:
    n = min(ref.size, deg.size)
    err = ref[:n].astype(np.float64) - deg[:n]
    return 10 * np.log10(np.sum(ref[:n].astype(np.float64) ** 2) / (np.sum(err**2) + 1e-20))


# --- lengths --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["zero", "repeat", "pcm-plc"])
@pytest.mark.parametrize("n", [1, 80, 160, 320, 1000])
def test_pcm_concealers_return_the_requested_length(method, n):
    c = make_concealer(method, "pcm16", 16000)
    c.good(voiced(0.06, 16000).astype(np.float64))
    for _ in range(4):
        y, kind = c.conceal(n)
        assert y.shape == (n,)
        assert kind == {"zero": "zero", "repeat": "repeat", "pcm-plc": "pcm-plc"}[method]
        assert np.all(np.isfinite(y))


@pytest.mark.parametrize("n", [120, 480, 960, 2880])
def test_opus_plc_returns_the_requested_length(n):
    from translab.media.opus import OpusDecoder

    dec = OpusDecoder(48000, 1)
    c = make_concealer("opus-plc", "opus", 48000, dec)
    y, kind = c.conceal(n)
    assert y.shape == (n,) and kind == "plc"


def test_pcm_plc_without_history_is_silence():
    y = PcmPlc(8000).conceal(160)
    assert y.shape == (160,) and not y.any()


# --- G.711 Appendix I behaviour -------------------------------------------------------------------

def test_pitch_estimate_finds_the_period():
    rate = 8000
    t = np.arange(int(0.05 * rate))
    for period in (48, 64, 100):
        saw = ((t % period) / period - 0.5) + 0.3 * np.sin(2 * np.pi * t / period * 3)
        assert estimate_pitch(saw, rate) == period


def test_pcm_plc_attenuates_20_percent_per_10ms_then_silence():
    rate = 8000
    t = np.arange(400)
    x = 0.5 * np.sin(2 * np.pi * t / 64)  # period 64 samples = 8 ms
    plc = PcmPlc(rate)
    plc.good(x)
    blocks = [plc.conceal(80) for _ in range(8)]  # 8 x 10 ms
    peak = [float(np.max(np.abs(b))) for b in blocks]
    assert peak[0] == pytest.approx(0.5, rel=0.02)  # first 10 ms at full level
    # linear -20 % per 10 ms from 10 ms on: peaks at the block starts 1.0, 0.8, 0.6, 0.4, 0.2
    for i, g in zip(range(1, 5), (1.0, 0.8, 0.6, 0.4)):
        assert peak[i] <= 0.5 * g + 1e-9
        assert peak[i] >= 0.5 * (g - 0.2) * 0.9
    assert not blocks[6].any() and not blocks[7].any()  # silent from 60 ms
    # the synthetic signal continues the waveform: the first block is the sine going on
    np.testing.assert_allclose(blocks[0], 0.5 * np.sin(2 * np.pi * np.arange(400, 480) / 64), atol=0.02)


def test_pcm_plc_overlap_adds_into_the_next_good_frame():
    rate = 8000
    x = 0.5 * np.sin(2 * np.pi * np.arange(480) / 64)
    plc = PcmPlc(rate)
    plc.good(x[:320])
    plc.conceal(80)
    good = x[400:480].copy()
    y = plc.good(good)
    assert y.shape == good.shape
    assert not np.array_equal(y[:16], good[:16])  # the first quarter period is blended
    np.testing.assert_array_equal(y[20:], good[20:])  # the rest is untouched


def test_pcm_plc_beats_zero_on_a_voiced_signal():
    rate = 16000
    x = voiced(4.0, rate, glide=0.04, pauses=False)  # pitch +-4 %: waveform SNR is meaningful
    lost = list(range(5, 195, 9))
    tr = packet_trace(x, rate, delay_s=0.001, lost=lost)
    ref = play(packet_trace(x, rate, delay_s=0.001), policy="fixed:20", conceal="zero").audio
    snr = {c: snr_db(ref, play(tr, policy="fixed:20", conceal=c).audio) for c in ("zero", "repeat", "pcm-plc")}
    assert snr["pcm-plc"] > snr["zero"] + 3.0
    assert snr["pcm-plc"] > snr["repeat"]


# --- Opus PLC / FEC -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def opus_speech():
    rate = 16000
    x = voiced(4.0, rate, pauses=False)
    clean = packet_trace(x, rate, codec="opus", bitrate=24000, fec=True, loss_perc=20, delay_s=0.001)
    fec = clean["fec"].to_numpy()
    # lose frames whose successor carries FEC, away from the start
    lost = [k for k in range(10, len(clean) - 2, 7) if fec[k + 1]]
    assert len(lost) >= 15
    return x, rate, clean, lost


def test_opus_fec_recovers_when_the_next_packet_is_in_time(opus_speech):
    x, rate, clean, lost = opus_speech
    tr = packet_trace(x, rate, codec="opus", bitrate=24000, fec=True, loss_perc=20, delay_s=0.001, lost=lost)
    out = play(tr, policy="fixed:40", conceal="opus-fec")
    f = out.frames
    assert (f["kind"] == "fec").sum() == len(lost)
    assert (f["kind"] == "plc").sum() == 0
    st = out.stats
    assert st["fecPacketsReceived"] == int((tr["fec"] & tr["arrival_s"].notna()).sum())
    assert st["fecPacketsDiscarded"] == st["fecPacketsReceived"] - len(lost)
    assert st["concealedSamples"] == 0
    assert f.loc[f["kind"] == "fec", "m2e_ms"].notna().all()


def test_opus_fec_falls_back_to_plc_when_the_next_packet_is_late(opus_speech):
    x, rate, clean, lost = opus_speech
    delay = np.full(len(clean), 0.001)
    delay[np.asarray(lost) + 1] = 0.030  # in time for its own slot (40 ms), not for the one before
    tr = packet_trace(x, rate, codec="opus", bitrate=24000, fec=True, loss_perc=20, delay_s=delay, lost=lost)
    out = play(tr, policy="fixed:40", conceal="opus-fec")
    f = out.frames
    assert (f["kind"] == "fec").sum() == 0
    assert (f["kind"] == "plc").sum() == len(lost)
    assert out.stats["fecPacketsDiscarded"] == out.stats["fecPacketsReceived"]
    assert out.stats["packetsDiscarded"] == 0


def test_opus_fec_beats_plc_and_plc_beats_zero(opus_speech):
    x, rate, clean, lost = opus_speech
    tr = packet_trace(x, rate, codec="opus", bitrate=24000, fec=True, loss_perc=20, delay_s=0.001, lost=lost)
    ref = play(clean, policy="fixed:40", conceal="opus-plc").audio
    snr = {c: snr_db(ref, play(tr, policy="fixed:40", conceal=c).audio) for c in ("opus-fec", "opus-plc", "zero")}
    assert snr["opus-fec"] > snr["opus-plc"] + 1.0
    assert snr["opus-plc"] > snr["zero"]


def test_opus_fec_is_refused_for_pcm():
    tr = packet_trace(voiced(0.2, 16000), 16000)
    with pytest.raises(ConfigError) as e:
        play(tr, policy="adaptive", conceal="opus-fec")
    assert e.value.field == "conceal" and e.value.value == "opus-fec"
    assert "pcm-plc" in e.value.allowed


# --- counting -------------------------------------------------------------------------------------

def test_concealment_events_count_runs():
    rate = 16000
    tr = packet_trace(voiced(2.0, rate), rate, delay_s=0.001, lost=[10, 20, 21, 22, 40, 41])
    st = play(tr, policy="fixed:20", conceal="pcm-plc").stats
    assert st["concealmentEvents"] == 3
    assert st["concealedSamples"] == 6 * 320
    assert st["packetsLost"] == 6
    assert st["interruptionCount"] == 0


@pytest.mark.parametrize("burst, interruptions", [(7, 0), (8, 1)])
def test_interruptions_are_concealment_runs_of_150ms_or_more(burst, interruptions):
    rate = 16000
    lost = list(range(30, 30 + burst)) + [70, 71]
    tr = packet_trace(voiced(2.0, rate), rate, delay_s=0.001, lost=lost)
    st = play(tr, policy="fixed:20", conceal="zero").stats
    assert st["interruptionCount"] == interruptions
    assert st["totalInterruptionDuration"] == pytest.approx(0.020 * burst if interruptions else 0.0)
    assert st["silentConcealedSamples"] == st["concealedSamples"] == (burst + 2) * 320
