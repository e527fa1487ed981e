"""The ITU-T G.107 E-model (narrowband) and its wideband / fullband scales (G.107.1 / G.107.2):
a transmission rating R and an estimated MOS from mouth-to-ear delay and packet loss.

    R = Ro - Is - Id - Ie,eff + A,     Id = Idte + Idle + Idd

What is implemented, and what is assumed
-----------------------------------------
* Narrowband (G.107 06/2015, section 7) is implemented in full with the Table 1 default parameters:
  Ro (noise), Is (loudness, sidetone, quantisation), Idte (talker echo), Idle (listener echo), Idd
  (absolute delay), Ie,eff (codec + loss), A. :func:`g107_components` returns every term. With all
  defaults and no delay it gives Ro = 94.77, Is = 1.41, Id = 0.15, R = 93.2 (MOS 4.41), the figure
  G.107 quotes. That zero-delay value is the only echo check available here (no worked numbers for
  Idte/Idle at other delays were at hand), so:
* :func:`r_factor` by default (``echo="default"``) keeps the echo terms at their zero-delay default
  contribution (Ro - Is - Idte - Idle = 93.2) and lets only Idd vary with delay. That is the usual
  reading for VoIP planning with good echo control, and it is what makes the worked examples of
  REFERENCE section 8 hold: G.711 with PLC at 5 % / 20 % random loss gives R 77.4 / 51.1 **at a
  mouth-to-ear delay Ta <= 100 ms** (Idd = 0 there). ``echo="g107"`` instead applies G.107's echo
  formulas with T = Ta = delay and Tr = 2 x delay (default TELR 65 dB, WEPL 110 dB): R then falls
  by about 2.5 at 100 ms and 3.5 at 150 ms from echo alone.
* Wideband (G.107.1) uses Ro,WB = 129 with Is,WB = 0, Id,WB = Idd (same formula) and
  Ie,eff,WB = Ie,WB + (129 - Ie,WB) * Ppl / (Ppl/BurstR + Bpl); MOS from R_WB / 1.29.
* Super-wideband / fullband values (the published Opus SWB values) are used on the G.107.2
  fullband scale: Ro,FB = 148, same structure, MOS from R_FB / 1.48. This scale is our reading of
  G.107.2 (not checked against its text here); pass ``wideband="swb"`` to use it.

Units: delays in milliseconds (the names say ``_ms``), loss in percent (0..100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from translab.errors import ConfigError, check_choice, check_range

__all__ = [
    "G107Params",
    "NB_DEFAULT_BASE",
    "Impairment",
    "burst_ratio",
    "g107_components",
    "idd",
    "ie_eff",
    "impairment_for",
    "mos_from_r",
    "r_factor",
]

#: Band name -> (Ro of that scale, divisor mapping R to the narrowband MOS scale).
_SCALES: dict[str, tuple[float, float]] = {"nb": (95.0, 1.0), "wb": (129.0, 1.29), "fb": (148.0, 1.48)}

Band = bool | str
"""``False``/"nb": narrowband G.107; ``True``/"wb": wideband G.107.1; "swb"/"fb": fullband G.107.2."""


def _band(wideband: Band) -> str:
    if wideband is False or wideband == "nb":
        return "nb"
    if wideband is True or wideband == "wb":
        return "wb"
    if wideband in ("swb", "fb"):
        return "fb"
    raise ConfigError("wideband", wideband, "False or 'nb', True or 'wb', 'swb' or 'fb'")


#: The E-model scale of each ``emodel_band`` value (summary rows), in words.
SCALES = {"nb": "G.107 narrowband scale", "wb": "G.107.1 wideband scale",
          "swb": "G.107.2 super-wideband scale", "fb": "G.107.2 fullband scale"}


def scale_name(band: str) -> str:
    """The scale an E-model figure of ``band`` ("nb", "wb", "swb", "fb") is on, in words; print it
    beside every E-model figure (R and MOS of different scales are not comparable)."""
    return SCALES.get(str(band), f"{band} scale")


@dataclass(frozen=True)
class G107Params:
    """G.107 (06/2015) Table 1 parameters, all at their default values. Loudness ratings and
    noise in dB / dBm0p / dB(A) as G.107 defines them."""

    SLR: float = 8.0  #: send loudness rating, dB
    RLR: float = 2.0  #: receive loudness rating, dB
    STMR: float = 15.0  #: sidetone masking rating, dB
    LSTR: float = 18.0  #: listener sidetone rating, dB
    Ds: float = 3.0  #: D-value of telephone, send side
    Dr: float = 3.0  #: D-value of telephone, receive side
    TELR: float = 65.0  #: talker echo loudness rating, dB
    WEPL: float = 110.0  #: weighted echo path loss, dB
    Nc: float = -70.0  #: circuit noise referred to 0 dBr point, dBm0p
    Nfor: float = -64.0  #: noise floor at the receive side, dBmp
    Ps: float = 35.0  #: room noise at the send side, dB(A)
    Pr: float = 35.0  #: room noise at the receive side, dB(A)
    qdu: float = 1.0  #: number of quantisation distortion units
    A: float = 0.0  #: advantage factor
    mT: float = 100.0  #: delay (ms) below which Idd = 0
    sT: float = 1.0  #: delay sensitivity


class Impairment(NamedTuple):
    """Codec impairment values for the E-model: ``ie`` (equipment impairment, on the scale named by
    ``wideband``), ``bpl`` (packet-loss robustness), ``wideband`` (pass it straight to
    :func:`r_factor`: False narrowband, True wideband G.107.1, "swb" fullband G.107.2 scale) and
    ``source`` (where the numbers come from, including any assumption)."""

    ie: float
    bpl: float
    wideband: Band
    source: str


def idd(ta_ms: float, mt_ms: float = 100.0, st: float = 1.0) -> float:
    """G.107 absolute-delay impairment Idd for a mouth-to-ear delay ``ta_ms`` (ms).

    0 for Ta <= mT (100 ms); else with X = log2(Ta / mT):
    Idd = 25 * ((1 + X^(6 sT))^(1/(6 sT)) - 3 (1 + (X/3)^(6 sT))^(1/(6 sT)) + 2).
    """
    check_range("delay_ms", ta_ms, 0.0, math.inf, "ms")
    if ta_ms <= mt_ms:
        return 0.0
    x = math.log2(ta_ms / mt_ms)
    k = 6.0 * st
    idd: float = 25.0 * ((1.0 + x**k) ** (1.0 / k) - 3.0 * (1.0 + (x / 3.0) ** k) ** (1.0 / k) + 2.0)
    return idd


def ie_eff(loss_pct: float, ie: float, bpl: float, burst_r: float = 1.0, ro: float = 95.0) -> float:
    """Effective equipment impairment: Ie,eff = Ie + (ro - Ie) * Ppl / (Ppl / BurstR + Bpl).

    ``loss_pct`` is Ppl in percent (0..100); ``ro`` is 95 for narrowband (G.107), 129 for
    wideband (G.107.1), 148 for fullband (G.107.2).
    """
    check_range("loss_pct", loss_pct, 0.0, 100.0, "%")
    check_range("bpl", bpl, 1e-9, math.inf)
    check_range("burst_r", burst_r, 1e-9, math.inf)
    check_range("ie", ie, 0.0, ro)
    return ie + (ro - ie) * loss_pct / (loss_pct / burst_r + bpl)


def g107_components(
    t_ms: float = 0.0,
    ta_ms: float | None = None,
    tr_ms: float | None = None,
    loss_pct: float = 0.0,
    ie: float = 0.0,
    bpl: float = 4.3,
    burst_r: float = 1.0,
    params: G107Params = G107Params(),
) -> dict[str, float]:
    """Every term of the narrowband G.107 (06/2015) E-model.

    ``t_ms``: mean one-way delay of the echo path T (ms); ``ta_ms``: absolute (mouth-to-ear)
    delay Ta (defaults to T); ``tr_ms``: round-trip delay of the listener-echo loop Tr (defaults to
    2 T). Returns a dict with Ro, Is, Idte, Idle, Idd, Id, Ie_eff, A, R.
    """
    p = params
    ta = t_ms if ta_ms is None else ta_ms
    tr = 2.0 * t_ms if tr_ms is None else tr_ms
    for name, v in (("t_ms", t_ms), ("ta_ms", ta), ("tr_ms", tr)):
        check_range(name, v, 0.0, math.inf, "ms")

    # 7.2 basic signal-to-noise ratio
    olr = p.SLR + p.RLR
    lstr = p.LSTR
    nos = p.Ps - p.SLR - p.Ds - 100.0 + 0.004 * (p.Ps - olr - p.Ds - 14.0) ** 2
    pre = p.Pr + 10.0 * math.log10(1.0 + 10.0 ** ((10.0 - lstr) / 10.0))
    nor = p.RLR - 121.0 + pre + 0.008 * (pre - 35.0) ** 2
    nfo = p.Nfor + p.RLR
    no = 10.0 * math.log10(sum(10.0 ** (n / 10.0) for n in (p.Nc, nos, nor, nfo)))
    ro = 15.0 - 1.5 * (p.SLR + no)

    # 7.3 simultaneous impairments
    xolr = olr + 0.2 * (64.0 + no - p.RLR)
    iolr = 20.0 * ((1.0 + (xolr / 8.0) ** 8) ** (1.0 / 8.0) - xolr / 8.0)
    stmro = -10.0 * math.log10(10.0 ** (-p.STMR / 10.0) + math.exp(-t_ms / 4.0) * 10.0 ** (-p.TELR / 10.0))
    ist = (
        12.0 * (1.0 + ((stmro - 13.0) / 6.0) ** 8) ** (1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4) ** 35) ** (1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0) ** 13) ** (1.0 / 13.0)
        + 29.0
    )
    q = 37.0 - 15.0 * math.log10(p.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0
    z = 46.0 / 30.0 - g / 40.0
    iq = 15.0 * math.log10(1.0 + 10.0**y + 10.0**z)
    is_ = iolr + ist + iq

    # 7.4 delay impairments
    roe = -1.5 * (no - p.RLR)
    terv = p.TELR - 40.0 * math.log10((1.0 + t_ms / 10.0) / (1.0 + t_ms / 150.0)) + 6.0 * math.exp(-0.3 * t_ms**2)
    if p.STMR < 9.0:
        terv += ist / 2.0
    re = 80.0 + 2.5 * (terv - 14.0)
    idte = ((roe - re) / 2.0 + math.sqrt((roe - re) ** 2 / 4.0 + 100.0) - 1.0) * (1.0 - math.exp(-t_ms)) + 0.0
    if p.STMR > 20.0:
        idte = math.sqrt(idte**2 + ist**2)
    rle = 10.5 * (p.WEPL + 7.0) * (tr + 1.0) ** -0.25
    idle = (ro - rle) / 2.0 + math.sqrt((ro - rle) ** 2 / 4.0 + 169.0)
    idd_ = idd(ta, p.mT, p.sT)

    iee = ie_eff(loss_pct, ie, bpl, burst_r, 95.0)
    r = ro - is_ - (idte + idle + idd_) - iee + p.A
    return {
        "Ro": ro, "Is": is_, "Idte": idte, "Idle": idle, "Idd": idd_,
        "Id": idte + idle + idd_, "Ie_eff": iee, "A": p.A, "R": r,
    }


#: Ro - Is - Idte - Idle with all G.107 defaults at zero delay (93.19..., "93.2").
NB_DEFAULT_BASE: float = (lambda c: c["Ro"] - c["Is"] - c["Idte"] - c["Idle"])(g107_components())


def r_factor(
    delay_ms: float,
    loss_pct: float,
    ie: float = 0.0,
    bpl: float = 4.3,
    burst_r: float = 1.0,
    wideband: Band = False,
    *,
    echo: str = "default",
    advantage: float = 0.0,
) -> float:
    """Transmission rating R for a mouth-to-ear delay ``delay_ms`` (ms) and packet loss
    ``loss_pct`` (percent, 0..100) with codec impairment ``ie`` / robustness ``bpl`` (both on the
    scale of ``wideband``) and burst ratio ``burst_r`` (1 = random loss).

    ``wideband``: False (G.107, R up to 93.2), True (G.107.1, up to 129) or "swb" (G.107.2, up to
    148). ``echo``: "default" keeps the echo terms at their zero-delay default value, so only Idd
    varies with delay (R = 93.2 - Ie,eff for delay <= 100 ms); "g107" applies G.107's talker and
    listener echo formulas with T = Ta = delay and Tr = 2 x delay (narrowband only).
    ``advantage``: the advantage factor A (0 by default; G.107 allows up to 20 for mobility).
    The result is not clipped (it can be negative under heavy loss).
    """
    check_choice("echo", echo, ("default", "g107"))
    check_range("delay_ms", delay_ms, 0.0, math.inf, "ms")
    check_range("advantage", advantage, 0.0, 20.0)
    band = _band(wideband)
    ro, _ = _SCALES[band]
    if band == "nb":
        if echo == "g107":
            c = g107_components(delay_ms, loss_pct=loss_pct, ie=ie, bpl=bpl, burst_r=burst_r)
            return c["R"] + advantage
        return NB_DEFAULT_BASE - idd(delay_ms) - ie_eff(loss_pct, ie, bpl, burst_r, 95.0) + advantage
    if echo == "g107":
        raise ConfigError("echo", echo, "'default' for wideband/fullband (G.107.1/.2 echo terms not modelled)")
    return ro - idd(delay_ms) - ie_eff(loss_pct, ie, bpl, burst_r, ro) + advantage


def mos_from_r(r: float, wideband: Band = False) -> float:
    """Estimated MOS (1..4.5, conversational quality) from R (G.107 Annex B).

    Wideband / fullband R is first mapped to the narrowband scale (R / 1.29, R / 1.48), as
    G.107.1 / G.107.2 Annex A do. MOS = 1 + 0.035 R + R (R - 60)(100 - R) 7e-6 for 0 < R < 100;
    1 at or below 0 (and where the cubic would dip below 1, R < 6.5); 4.5 at or above 100.
    """
    _, div = _SCALES[_band(wideband)]
    x = float(r) / div
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    if x >= 100.0:
        return 4.5
    # The cubic dips just below 1 for 0 < R < 6.5; MOS is held at 1 there.
    return max(1.0, 1.0 + 0.035 * x + x * (x - 60.0) * (100.0 - x) * 7e-6)


def burst_ratio(lost: Sequence[bool] | np.ndarray) -> float:
    """G.107 / G.113 burst ratio from a per-packet loss sequence (True = lost, in send order).

    BurstR = (mean length of observed loss bursts) / (mean burst length expected for random loss
    at the same rate, 1 / (1 - Ppl)). 1 for random loss, > 1 for bursty loss, < 1 for loss more
    spread out than random. Returns 1.0 when nothing or everything was lost (undefined there).
    """
    a = np.asarray(lost, dtype=bool)
    if a.ndim != 1:
        raise ConfigError("lost", f"array of shape {a.shape}", "a 1-D sequence of booleans")
    n = a.size
    n_lost = int(a.sum())
    if n == 0 or n_lost == 0 or n_lost == n:
        return 1.0
    starts = int(np.count_nonzero(a[1:] & ~a[:-1])) + int(a[0])
    mean_burst = n_lost / starts
    ppl = n_lost / n
    return float(mean_burst * (1.0 - ppl))


# --- codec impairment values -------------------------------------------------------------------

_G711_SOURCE = "ITU-T G.113 Appendix I: G.711 Ie 0; Bpl 25.1 with PLC (G.711 Appendix I), 4.3 without"
# Alahmadi, Pocta, Melvin, ACM TOMM 2021 (Opus VBR, 20 ms frames, own PLC): (bitrate, Ie, Bpl).
_OPUS_SWB: tuple[tuple[int, float, float], ...] = ((16000, 30.2, 11.8), (25000, 20.2, 11.3), (40000, 10.7, 9.8))
_OPUS_WB: tuple[tuple[int, float, float], ...] = ((13000, 20.0, 19.5),)
_OPUS_REF = "Alahmadi, Pocta, Melvin, ACM TOMM 2021"


def impairment_for(codec: str, bitrate_bps: int, plc: bool, sample_rate: int | None = None) -> Impairment:
    """E-model values (Ie, Bpl, band, source) for one of the lab's codecs.

    ``codec``: "pcmu" (G.711 mu-law), "pcm16" (linear PCM) or "opus"; ``bitrate_bps``: codec
    bit rate in bit/s; ``plc``: whether lost frames are concealed; ``sample_rate`` (Hz, optional):
    for pcm16 it is derived from the bit rate (16 bit mono) when not given; when the bit rate is not
    16 x a rate of 8 to 48 kHz either (e.g. an Opus target passed through), the rate is assumed to
    be >= 16 kHz and ``source`` says so; for Opus it selects the
    wideband values when <= 16000 and the super-wideband values otherwise (default: SWB, as WebRTC
    runs Opus at 48 kHz).

    * pcmu: Ie 0, Bpl 25.1 with PLC / 4.3 without, narrowband (G.113 Appendix I).
    * pcm16: assumed Ie 0 (no coding distortion; treated like G.711) with G.711's Bpl values;
      narrowband below 16 kHz, wideband G.107.1 (Ie,WB 0) at 16 kHz and above: content above
      7 kHz earns no credit on that scale.
    * opus: the published value at the nearest bit rate at or below ``bitrate_bps`` (the lowest
      published one, optimistically, below that); without PLC (zero-filled frames) no value is
      published: Bpl 4.3 (as G.711 without PLC) is assumed. ``source`` states the choice.
    """
    check_choice("codec", codec, ("opus", "pcm16", "pcmu"))
    check_range("bitrate_bps", bitrate_bps, 1, 10_000_000, "bit/s")
    if sample_rate is not None:
        check_range("sample_rate", sample_rate, 8000, 48000, "Hz")
    if codec == "pcmu":
        return Impairment(0.0, 25.1 if plc else 4.3, False, _G711_SOURCE)
    if codec == "pcm16":
        rate: int | None = int(sample_rate) if sample_rate is not None else None
        if rate is None and 8000 <= bitrate_bps / 16 <= 48000:
            rate = int(round(bitrate_bps / 16))  # 16-bit mono
        wb = rate is None or rate >= 16000
        what = f"linear PCM at {rate} Hz" if rate else (
            f"linear PCM at an unknown rate ({bitrate_bps} bit/s is not 16 x a sample rate; pass "
            "sample_rate): assumed >= 16 kHz"
        )
        src = (
            f"assumption: {what} has no coding impairment (Ie 0, like G.711) and G.711's "
            f"Bpl ({_G711_SOURCE}); " + ("G.107.1 wideband scale (rate >= 16 kHz)" if wb else "narrowband G.107")
        )
        return Impairment(0.0, 25.1 if plc else 4.3, wb, src)
    # opus
    use_wb = sample_rate is not None and sample_rate <= 16000
    table, band_name, band = (_OPUS_WB, "WB", True) if use_wb else (_OPUS_SWB, "SWB", "swb")
    at_or_below = [row for row in table if row[0] <= bitrate_bps]
    if at_or_below:
        rate_bps, ie, bpl = at_or_below[-1]
        how = f"nearest published bitrate at or below {bitrate_bps} bit/s"
    else:
        rate_bps, ie, bpl = table[0]
        how = f"{bitrate_bps} bit/s is below the lowest published bitrate: using it (optimistic)"
    src = f"{_OPUS_REF}: Opus {band_name} VBR {rate_bps // 1000} kbit/s Ie {ie} Bpl {bpl} ({how})"
    if not plc:
        bpl = 4.3
        src += "; no PLC: Bpl 4.3 assumed (as G.711 without PLC, none published for Opus)"
    return Impairment(ie, bpl, band, src)
