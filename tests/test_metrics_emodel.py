"""E-model: the worked examples of REFERENCE section 8 (ITU-T G.107 / G.113)."""

from __future__ import annotations

import numpy as np
import pytest

from translab.errors import ConfigError, TranslabError
from translab.metrics.emodel import (
    NB_DEFAULT_BASE,
    burst_ratio,
    g107_components,
    idd,
    ie_eff,
    impairment_for,
    mos_from_r,
    r_factor,
)


def test_default_components_give_93_2():
    c = g107_components()
    assert c["Ro"] == pytest.approx(94.77, abs=0.01)
    assert c["Is"] == pytest.approx(1.41, abs=0.01)
    assert c["Id"] == pytest.approx(0.15, abs=0.01)
    assert c["R"] == pytest.approx(93.2, abs=0.01)
    assert NB_DEFAULT_BASE == pytest.approx(93.2, abs=0.01)
    assert mos_from_r(c["R"]) == pytest.approx(4.41, abs=0.005)


@pytest.mark.parametrize("ta_ms, expected", [(150, 0.16), (200, 3.04), (300, 14.8), (400, 24.1)])
def test_idd_worked_examples(ta_ms, expected):
    assert idd(ta_ms) == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("ta_ms", [0, 50, 100])
def test_no_delay_impairment_up_to_100_ms(ta_ms):
    assert idd(ta_ms) == 0.0
    assert r_factor(ta_ms, 0.0) == pytest.approx(93.2, abs=0.01)


# G.711 (Ie 0), random loss, at a mouth-to-ear delay of at most 100 ms (Idd = 0 there).
@pytest.mark.parametrize(
    "bpl, loss_pct, r_expected, mos_expected",
    [(25.1, 5, 77.4, 3.92), (25.1, 20, 51.1, 2.63), (4.3, 5, 42.1, None), (4.3, 20, 15.0, None)],
)
def test_g711_loss_worked_examples(bpl, loss_pct, r_expected, mos_expected):
    for delay_ms in (0.0, 100.0):
        r = r_factor(delay_ms, loss_pct, ie=0.0, bpl=bpl)
        assert r == pytest.approx(r_expected, abs=0.05)
        if mos_expected is not None:
            assert mos_from_r(r) == pytest.approx(mos_expected, abs=0.005)
    # beyond 100 ms the delay term bites
    assert r_factor(300.0, loss_pct, ie=0.0, bpl=bpl) == pytest.approx(r_expected - 14.76, abs=0.05)


def test_impairment_for_g711_feeds_worked_example():
    ie, bpl, wb, src = impairment_for("pcmu", 64000, plc=True)
    assert (ie, bpl, wb) == (0.0, 25.1, False) and "G.113" in src
    assert r_factor(80.0, 5.0, ie, bpl, wideband=wb) == pytest.approx(77.4, abs=0.05)
    assert impairment_for("pcmu", 64000, plc=False).bpl == 4.3


def test_mos_limits_and_monotonic():
    assert mos_from_r(-5) == 1.0 and mos_from_r(0) == 1.0
    assert mos_from_r(100) == 4.5 and mos_from_r(120) == 4.5
    rs = np.linspace(0.5, 99.5, 199)
    m = [mos_from_r(r) for r in rs]
    assert all(b >= a for a, b in zip(m, m[1:])) and min(m) == 1.0
    assert all(b > a for a, b in zip(m[14:], m[15:]))  # strictly increasing from R = 7.5
    # wideband: R_WB / 1.29 onto the narrowband scale
    assert mos_from_r(129.0, wideband=True) == 4.5
    assert mos_from_r(77.4 * 1.29, wideband=True) == pytest.approx(mos_from_r(77.4))
    assert mos_from_r(77.4 * 1.48, wideband="swb") == pytest.approx(mos_from_r(77.4))


def test_wideband_scale():
    assert r_factor(50.0, 0.0, wideband=True) == pytest.approx(129.0)
    # Ie,eff,WB uses 129 in place of 95
    assert r_factor(0.0, 5.0, ie=0.0, bpl=25.1, wideband=True) == pytest.approx(129 - 129 * 5 / 30.1)
    assert r_factor(0.0, 0.0, ie=20.2, bpl=11.3, wideband="swb") == pytest.approx(148 - 20.2)


def test_g107_echo_terms_only_lower_r():
    prev = None
    for d in (0.0, 50.0, 100.0, 150.0, 200.0, 300.0):
        full = r_factor(d, 0.0, echo="g107")
        simple = r_factor(d, 0.0)
        assert full <= simple + 1e-9
        if prev is not None:
            assert full < prev
        prev = full
    assert r_factor(0.0, 0.0, echo="g107") == pytest.approx(r_factor(0.0, 0.0))
    assert r_factor(100.0, 0.0, echo="g107") == pytest.approx(90.66, abs=0.05)


def test_burst_ratio():
    assert burst_ratio([False] * 10) == 1.0
    assert burst_ratio([True] * 10) == 1.0
    # 4 lost in one burst out of 20: mean burst 4, random expectation 1 / (1 - 0.2) = 1.25
    seq = [False] * 8 + [True] * 4 + [False] * 8
    assert burst_ratio(seq) == pytest.approx(4 * 0.8)
    # isolated losses: mean burst 1 -> BurstR = 1 - Ppl (< 1: more spread out than random)
    assert burst_ratio([True, False] * 10) == pytest.approx(0.5)
    rng = np.random.default_rng(7)
    assert burst_ratio(rng.random(200_000) < 0.1) == pytest.approx(1.0, abs=0.02)
    # Gilbert chain with p (good->bad) and q (bad->good): BurstR = 1 / (p + q)
    p, q = 0.02, 0.3
    state, lost = False, []
    for u in rng.random(200_000):
        state = (u < p) if not state else (u >= q)
        lost.append(state)
    assert burst_ratio(lost) == pytest.approx(1 / (p + q), rel=0.05)


def test_burst_ratio_raises_ie_eff():
    assert ie_eff(5.0, 0.0, 25.1, burst_r=2.0) > ie_eff(5.0, 0.0, 25.1, burst_r=1.0)


def test_impairment_for_opus_picks_at_or_below():
    assert impairment_for("opus", 24000, True)[:3] == (30.2, 11.8, "swb")
    assert impairment_for("opus", 25000, True)[:3] == (20.2, 11.3, "swb")
    assert impairment_for("opus", 64000, True)[:3] == (10.7, 9.8, "swb")
    low = impairment_for("opus", 12000, True)
    assert (low.ie, low.bpl) == (30.2, 11.8) and "below the lowest" in low.source
    wb = impairment_for("opus", 20000, True, sample_rate=16000)
    assert wb[:3] == (20.0, 19.5, True) and "WB" in wb.source and "at or below" in wb.source
    assert impairment_for("opus", 32000, plc=False).bpl == 4.3
    assert "Alahmadi" in impairment_for("opus", 32000, True).source


def test_impairment_for_pcm16_band_from_rate():
    assert impairment_for("pcm16", 128000, True)[:3] == (0.0, 25.1, False)  # 8 kHz
    nb16 = impairment_for("pcm16", 256000, True)
    assert nb16.wideband is True and "assumption" in nb16.source
    assert impairment_for("pcm16", 384000, False, sample_rate=24000).wideband is True
    assert impairment_for("pcm16", 24000, True, sample_rate=8000).wideband is False
    # an Opus-style bit rate says nothing about a PCM16 stream's rate: assumed wideband, and said so
    unknown = impairment_for("pcm16", 24000, True)
    assert unknown.wideband is True and "unknown rate" in unknown.source and "pass sample_rate" in unknown.source
    with pytest.raises(ConfigError):
        impairment_for("pcm16", 256000, True, sample_rate=4000)


@pytest.mark.parametrize(
    "call",
    [
        lambda: impairment_for("g729", 8000, True),
        lambda: r_factor(-1.0, 0.0),
        lambda: r_factor(0.0, 101.0),
        lambda: r_factor(0.0, 0.0, wideband="ultra"),
        lambda: r_factor(0.0, 0.0, echo="none"),
        lambda: r_factor(0.0, 0.0, bpl=0.0),
        lambda: r_factor(0.0, 0.0, wideband=True, echo="g107"),
        lambda: burst_ratio(np.zeros((2, 2), bool)),
    ],
)
def test_bad_inputs_raise_named_errors(call):
    with pytest.raises(TranslabError):
        call()


def test_error_names_field():
    with pytest.raises(ConfigError) as e:
        r_factor(0.0, 150.0)
    assert e.value.field == "loss_pct" and e.value.value == 150.0
