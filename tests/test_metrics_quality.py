"""Quality metrics: alignment, PLCMOS (published example scores), PESQ, STOI, ViSQOL."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from translab.errors import ConfigError, TranslabError
from translab.metrics import quality as qmod
from translab.metrics.quality import (
    VisqolUnavailable,
    align,
    align_piecewise,
    pesq_score,
    plcmos,
    quality,
    stoi_score,
    visqol_score,
)

RATE = 16000
EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "plcmos-examples"


def speechlike(rate: int = RATE, seconds: float = 4.0, seed: int = 3) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal with three formant-like peaks and pauses:
    enough like speech for PESQ's voice activity detection, made here so the test needs no file."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.zeros(n)
    for k in range(1, 30):
        fk = k * f0
        amp = sum(np.exp(-(((fk - f) / b) ** 2)) for f, b in ((500, 150), (1500, 250), (2500, 350))) + 0.05
        x += np.where(fk < rate / 2 - 200, amp / k**0.5, 0.0) * np.sin(k * phase)
    env = np.clip(np.sin(2 * np.pi * 3.0 * t) * 1.2, 0, 1) ** 0.7
    gate = (np.sin(2 * np.pi * 0.4 * t) > -0.6).astype(float)
    x = x * env * gate + 0.003 * rng.standard_normal(n)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def zero_filled(x: np.ndarray, loss: float, rate: int = RATE, frame_ms: int = 20, seed: int = 1) -> np.ndarray:
    """``x`` with random 20 ms frames replaced by silence (a receiver without concealment)."""
    f = rate * frame_ms // 1000
    y = x.copy()
    lost = np.random.default_rng(seed).random(len(x) // f) < loss
    for i in np.flatnonzero(lost):
        y[i * f : (i + 1) * f] = 0
    return y


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speechlike()


@pytest.mark.parametrize("delay", [0, 1, 1234, 4000, -777])
def test_align_recovers_known_delay_exactly(speech, delay):
    rng = np.random.default_rng(5)
    if delay >= 0:
        deg = np.concatenate([np.zeros(delay, np.float32), speech])
    else:
        deg = speech[-delay:]
    deg = deg + 0.001 * rng.standard_normal(deg.size).astype(np.float32)
    r, d, lag = align(speech, deg, RATE)
    assert lag == delay
    assert r.size == d.size > 0
    assert np.max(np.abs(r - d)) < 0.01  # same content after alignment


def test_align_lag_window(speech):
    deg = np.concatenate([np.zeros(8000, np.float32), speech])
    assert align(speech, deg, RATE, max_lag_s=1.0)[2] == 8000
    assert align(speech, deg, RATE, max_lag_s=0.1)[2] != 8000  # outside the window: not found


def test_align_piecewise_follows_a_stall(speech):
    # 30 ms late, then a 250 ms stall 2 s in (an elastic buffer waiting for a retransmission)
    d0, stall, at = 480, 4000, 2 * RATE
    deg = np.concatenate([np.zeros(d0, np.float32), speech[:at], np.zeros(stall, np.float32), speech[at:]])
    r, d, lags = align_piecewise(speech, deg, RATE)
    assert r.size == d.size == speech.size
    assert set(lags[: at // (RATE // 2)].tolist()) == {d0}
    assert set(lags[at // (RATE // 2) :].tolist()) == {d0 + stall}
    assert np.max(np.abs(r - d)) < 1e-6  # every block found exactly
    rg, dg, _ = align(speech, deg, RATE)
    assert stoi_score(r, d, RATE) > 0.999 > stoi_score(rg, dg, RATE) + 0.05
    q = quality(speech, deg, RATE, metrics=("stoi",))
    assert q["align_drift_ms"] == pytest.approx(250.0) and q["stoi"] > 0.999


def test_align_piecewise_follows_time_stretching(speech):
    # an accelerating buffer drops 10 ms every 0.5 s: the lag shrinks by 160 samples each time
    chunks, pos, cut = [], 0, RATE // 100
    while pos < speech.size:
        chunks.append(speech[pos : pos + RATE // 2])
        pos += RATE // 2 + cut
    deg = np.concatenate([np.zeros(1600, np.float32)] + chunks)
    r, d, lags = align_piecewise(speech, deg, RATE)
    assert lags[0] == 1600 and np.all(np.diff(lags) <= 0) and lags[-1] < 1600 - 1000
    rg, dg, _ = align(speech, deg, RATE)
    assert stoi_score(r, d, RATE) > stoi_score(rg, dg, RATE) + 0.05


def test_align_piecewise_identity(speech):
    r, d, lags = align_piecewise(speech, speech, RATE)
    assert np.array_equal(r, d) and not np.any(lags)


def test_identical_signals_score_max(speech):
    assert pesq_score(speech, speech, RATE, "wb") == pytest.approx(4.64, abs=0.01)
    assert pesq_score(speech, speech, RATE, "nb") == pytest.approx(4.55, abs=0.01)
    assert stoi_score(speech, speech, RATE) == pytest.approx(1.0, abs=1e-6)
    assert stoi_score(speech, speech, RATE, extended=True) == pytest.approx(1.0, abs=1e-6)


def test_damaged_scores_lower_in_order(speech):
    scores = [
        quality(speech, zero_filled(speech, p), RATE, metrics=("pesq_wb", "pesq_nb", "stoi", "estoi"))
        for p in (0.0, 0.05, 0.2)
    ]
    for m in ("pesq_wb", "pesq_nb", "stoi", "estoi"):
        clean, five, twenty = (s[m] for s in scores)
        assert clean > five > twenty, (m, clean, five, twenty)
    assert scores[2]["pesq_wb"] < 2.5 and scores[2]["stoi"] < 0.85


def test_intrusive_metrics_align_first(speech):
    deg = np.concatenate([np.zeros(1600, np.float32), zero_filled(speech, 0.05)])
    q = quality(speech, deg, RATE, metrics=("stoi",))
    assert q["align_lag_ms"] == pytest.approx(100.0)
    assert q["stoi"] == pytest.approx(stoi_score(speech, zero_filled(speech, 0.05), RATE), abs=1e-9)
    # unaligned STOI is meaningless (far lower)
    assert stoi_score(speech, deg, RATE) < q["stoi"] - 0.2


def test_scores_repeat_exactly_and_leave_global_rng_alone(speech):
    deg = zero_filled(speech, 0.2)
    np.random.seed(123)
    a = quality(speech, deg, RATE, metrics=("plcmos", "pesq_wb", "stoi"))
    after_a = np.random.random()
    np.random.seed(123)
    b = quality(speech, deg, RATE, metrics=("plcmos", "pesq_wb", "stoi"))
    assert a == b
    assert np.random.random() == after_a
    np.random.seed(123)
    assert np.random.random() == after_a  # the global stream is as if PLCMOS had not run


def test_plcmos_lower_for_heavy_loss(speech):
    assert plcmos(zero_filled(speech, 0.2), RATE) < plcmos(speech, RATE) - 0.3


def test_plcmos_split_model_scores_exactly_as_speechmos(speech, monkeypatch):
    deg = zero_filled(speech, 0.05)
    fast = plcmos(deg, RATE)
    assert qmod._plcmos_split, "onnx could not cut the PLCMOS model: the slow path is in use"
    monkeypatch.setattr(qmod, "_plcmos_split", False)  # speechmos' own loop over the whole model
    assert plcmos(deg, RATE) == fast


def test_other_rates_and_int16(speech):
    from scipy.signal import resample_poly

    x48 = resample_poly(speech, 3, 1).astype(np.float32)
    assert pesq_score(x48, x48, 48000, "wb") == pytest.approx(4.64, abs=0.02)
    assert abs(plcmos(x48, 48000) - plcmos(speech, RATE)) < 0.15
    i16 = (speech * 32767).astype(np.int16)
    assert pesq_score(i16, i16, RATE, "nb") == pytest.approx(4.55, abs=0.01)


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/data/plcmos-examples not beside the repo")
@pytest.mark.parametrize("name, published", [("clean.wav", 4.50), ("plc_good.wav", 4.12), ("plc_poor.wav", 2.74)])
def test_plcmos_published_examples(name, published):
    rate, x = wavfile.read(EXAMPLES / name)
    assert rate == RATE
    score = plcmos(x, rate)  # int16 in, scaled to [-1, 1]
    print(f"PLCMOS {name}: {score:.3f} (published {published})")
    assert score == pytest.approx(published, abs=0.1)


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/data/plcmos-examples not beside the repo")
def test_examples_intrusive_need_alignment():
    _, ref = wavfile.read(EXAMPLES / "clean.wav")
    _, good = wavfile.read(EXAMPLES / "plc_good.wav")
    _, poor = wavfile.read(EXAMPLES / "plc_poor.wav")
    qg = quality(ref, good, RATE, metrics=("stoi", "pesq_wb"))
    qp = quality(ref, poor, RATE, metrics=("stoi", "pesq_wb"))
    assert 110 <= qg["align_lag_ms"] <= 150 and 110 <= qp["align_lag_ms"] <= 150
    assert qg["stoi"] > qp["stoi"] and qg["pesq_wb"] > qp["pesq_wb"]


def test_pesq_missing_returns_none(speech, monkeypatch):
    monkeypatch.setitem(sys.modules, "pesq", None)  # makes `import pesq` raise ImportError
    assert pesq_score(speech, speech, RATE) is None
    assert quality(speech, speech, RATE, metrics=("pesq_wb",))["pesq_wb"] is None


def test_pesq_silence_is_nan():
    z = np.zeros(RATE * 2, np.float32)
    assert np.isnan(pesq_score(z, z, RATE))


def test_visqol_unavailable_is_a_clear_error(speech, monkeypatch):
    monkeypatch.setattr(qmod, "_visqol_api", None)
    monkeypatch.setitem(sys.modules, "visqol.api", None)
    with pytest.raises(VisqolUnavailable, match="visqol-python"):
        visqol_score(speech, speech, RATE)


def _have_visqol() -> bool:
    try:
        import ai_edge_litert  # noqa: F401
        import visqol.api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _have_visqol(), reason="optional visqol-python[lattice] not installed")
def test_visqol_orders_damage(speech):
    x = speech[: RATE * 3]
    clean = visqol_score(x, x, RATE)
    lossy = visqol_score(x, zero_filled(x, 0.2), RATE)
    assert clean > lossy
    assert 1.0 <= lossy <= 5.0 and 1.0 <= clean <= 5.0


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda x: quality(x, x, RATE, metrics=("mos",)), "metrics"),
        (lambda x: pesq_score(x, x, RATE, mode="swb"), "mode"),
        (lambda x: plcmos(np.stack([x, x]), RATE), "x"),
        (lambda x: plcmos(x, 0), "rate"),
        (lambda x: align(x, np.array([], np.float32), RATE), "deg"),
        (lambda x: plcmos(x.astype(np.int32), RATE), "x"),
        (lambda x: plcmos(x[:100], RATE), "x"),
    ],
)
def test_bad_inputs_name_the_field(speech, call, field):
    with pytest.raises(ConfigError) as e:
        call(speech)
    assert e.value.field == field


def test_errors_are_translab_errors():
    assert issubclass(VisqolUnavailable, TranslabError)
