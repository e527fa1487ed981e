"""Confidence intervals and verdicts for the lab's conclusions (pure functions, no I/O).

* :func:`estimate`: a figure over cells (mean, median or a percentile of one value per cell) with a
  95 % bootstrap confidence interval.
* :func:`paired`: the difference ``a - b`` of two configurations run on the same units (a unit is a
  seed x clip pair: same seed and clip on both sides), summarised by the mean difference with a 95 %
  bootstrap interval over the pairs.
* :func:`judge`: a claim "the effect is above (or below) a threshold" is ``supported`` only when the
  whole interval is on the claim's side of the threshold, ``refuted`` only when the whole interval is
  on the other side, and ``inconclusive`` otherwise.
* :func:`repeatability`: the spread of a score over replicates that should be identical (the same
  configuration and clip, different seeds, on a lossless link).

The bootstrap is the bias-corrected and accelerated one (BCa, Efron 1987) of ``scipy.stats.bootstrap``
with :data:`RESAMPLES` resamples drawn from a NumPy generator seeded with :data:`SEED`, so the same
inputs always give the same interval. Units are resampled as a whole (a pair keeps both its sides).
When every value is identical the interval is that value (BCa is undefined there). With fewer than
:data:`MIN_N` units no interval is computed (NaN bounds, verdict ``inconclusive``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["CONFIDENCE", "Estimate", "INCONCLUSIVE", "METHOD", "MIN_N", "REFUTED", "RESAMPLES", "SEED",
           "SUPPORTED", "estimate", "judge", "paired", "repeatability"]

CONFIDENCE = 0.95
RESAMPLES = 4000
SEED = 20240229
MIN_N = 3
METHOD = f"BCa bootstrap, {RESAMPLES} resamples, seed {SEED}"

SUPPORTED, REFUTED, INCONCLUSIVE = "supported", "refuted", "inconclusive"


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % confidence interval: ``value`` (the statistic on the data), ``lo`` and
    ``hi`` (NaN when there are fewer than :data:`MIN_N` units), ``n`` units, the statistic's name
    (``"mean"``, ``"median"``, ``"p95"``; ``"mean difference"`` for :func:`paired`) and the method."""

    value: float
    lo: float
    hi: float
    n: int
    stat: str
    method: str = METHOD

    @property
    def has_interval(self) -> bool:
        """True when both bounds are numbers."""
        return not (math.isnan(self.lo) or math.isnan(self.hi))

    def text(self, unit: str = "", nd: int = 2, signed: bool = False) -> str:
        """``"0.32 [0.21, 0.44] (n=20)"``; units after the interval; ``signed`` prints a + sign."""
        if math.isnan(self.value):
            return f"n/a (n={self.n})"
        f = f"{{:+.{nd}f}}" if signed else f"{{:.{nd}f}}"
        ci = f" [{f.format(self.lo)}, {f.format(self.hi)}]" if self.has_interval else " [no interval]"
        return f"{f.format(self.value)}{ci}{(' ' + unit) if unit else ''} (n={self.n})"


def _stat_fn(stat: str) -> Callable[..., Any]:
    if stat == "mean":
        return lambda x, axis=-1: np.mean(x, axis=axis)
    if stat == "median":
        return lambda x, axis=-1: np.median(x, axis=axis)
    if stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit():
        q = float(stat[1:])
        if not 0 <= q <= 100:
            raise ValueError(f"stat: {stat!r}: percentile must be 0-100")
        return lambda x, axis=-1: np.percentile(x, q, axis=axis)
    raise ValueError(f"stat: {stat!r} is not allowed (allowed: mean, median, p<0-100>)")


def estimate(values: Sequence[float] | np.ndarray, stat: str = "mean") -> Estimate:
    """``stat`` (mean, median or ``p<q>``, e.g. ``"p95"``) of ``values`` (one per unit; NaNs dropped)
    with its BCa 95 % bootstrap interval over the units."""
    fn = _stat_fn(stat)
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, stat)
    value = float(fn(x))
    if n < MIN_N:
        return Estimate(value, math.nan, math.nan, n, stat)
    if np.all(x == x[0]):
        return Estimate(value, value, value, n, stat)
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa warns on near-degenerate resamples; the fallback handles it
        res = stats.bootstrap((x,), fn, n_resamples=RESAMPLES, confidence_level=CONFIDENCE, method="BCa",
                              vectorized=True, random_state=np.random.default_rng(SEED))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isnan(lo) or math.isnan(hi):  # BCa undefined (e.g. a median of mostly tied values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap((x,), fn, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                                  method="percentile", vectorized=True, random_state=np.random.default_rng(SEED))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Estimate(value, min(lo, value), max(hi, value), n, stat)


def paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, stat: str = "mean") -> Estimate:
    """The difference ``a - b`` over paired units (``a[i]`` and ``b[i]`` measured on the same seed and
    clip): ``stat`` of the per-pair differences with its BCa 95 % interval (pairs resampled whole).
    Pairs with a NaN on either side are dropped."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired: a has {x.shape} values, b has {y.shape}: they must pair up")
    e = estimate(x - y, stat)
    return Estimate(e.value, e.lo, e.hi, e.n, f"{stat} difference")


def judge(est: Estimate, threshold: float, side: str = "above") -> str:
    """The verdict on the claim "the effect is ``side`` (above / below) ``threshold``": supported when
    the whole interval is on that side, refuted when it is wholly on the other side, else inconclusive
    (also without an interval). ``side="within"`` is an equivalence claim "the effect is within
    +-``threshold``": supported when the whole interval is inside, refuted when it lies wholly beyond
    one end, else inconclusive."""
    if side not in ("above", "below", "within"):
        raise ValueError(f"side: {side!r} is not allowed (allowed: above, below, within)")
    if not est.has_interval:
        return INCONCLUSIVE
    if side == "within":
        m = abs(threshold)
        if -m <= est.lo and est.hi <= m:
            return SUPPORTED
        return REFUTED if est.lo > m or est.hi < -m else INCONCLUSIVE
    if est.lo > threshold:
        return SUPPORTED if side == "above" else REFUTED
    if est.hi < threshold:
        return SUPPORTED if side == "below" else REFUTED
    return INCONCLUSIVE


def repeatability(scores: Sequence[float] | np.ndarray, groups: Sequence[object]) -> tuple[float, int]:
    """The largest spread (max - min) of ``scores`` within a group of replicates that should score the
    same (e.g. one clip and configuration on a lossless link, over seeds), and the number of groups
    with at least two scores; (NaN, 0) without such groups."""
    x = np.asarray(scores, dtype=float)
    g = np.asarray(list(groups), dtype=object)
    worst, k = math.nan, 0
    for key in dict.fromkeys(g.tolist()):
        v = x[(g == key) & ~np.isnan(x)]
        if v.size >= 2:
            k += 1
            s = float(v.max() - v.min())
            worst = s if math.isnan(worst) else max(worst, s)
    return worst, k
