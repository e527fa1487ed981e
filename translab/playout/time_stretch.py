"""Pitch-synchronous time stretching of one block ("WSOLA-lite"), as NetEq's accelerate and
preemptive expand do (``time_stretch.cc``, ``accelerate.cc``, ``preemptive_expand.cc``): remove or
repeat one period, cross-faded.

Samples are float64 mono. The period is the lag, between 2.5 ms and 15 ms (and at most half the block),
at which the block best correlates with itself (NetEq's ``peak_index``, searched over the same lags).
How much is removed or inserted is always that lag, never a fixed amount:

* active speech: only when the correlation at the lag is at least ``MIN_CORRELATION`` (NetEq's
  ``kCorrelationThreshold``, 0.9; 0.5 in fast mode), so unvoiced or weakly periodic speech is left alone;
* passive blocks (below ``SILENCE_RMS``; NetEq's simple VAD calls a block passive when its energy is
  below 8x the background noise's): the lag regardless of correlation ("low-energy" success), so a step
  in silence is 2.5 to 15 ms, as long as the noise's own autocorrelation peak says, not always 15 ms;
* fast mode (``accelerate(..., fast=True)``, NetEq's fast accelerate): as many whole periods as fit in
  the allowed amount.
"""

from __future__ import annotations

import numpy as np

MIN_CORRELATION = 0.9
#: the correlation fast accelerate accepts (NetEq: 8192 in Q14)
MIN_CORRELATION_FAST = 0.5
PERIOD_MIN_MS = 2.5
PERIOD_MAX_MS = 15.0
#: Block RMS (full scale 1.0) below which a block counts as silence (about -50 dBFS).
SILENCE_RMS = 3e-3


def is_silent(x: np.ndarray) -> bool:
    """True when the block's RMS is below :data:`SILENCE_RMS`."""
    return x.size == 0 or float(np.sqrt(np.mean(np.square(x)))) < SILENCE_RMS


def best_period(x: np.ndarray, sample_rate: int) -> tuple[int, float]:
    """``(period, correlation)``: the lag P maximising the normalised correlation of
    ``x[0:P]`` with ``x[P:2P]`` ... computed over ``x[:-P]`` against ``x[P:]``; 0 if too short."""
    pmin = max(1, int(round(PERIOD_MIN_MS * sample_rate / 1000)))
    pmax = min(int(round(PERIOD_MAX_MS * sample_rate / 1000)), x.size // 2)
    if pmax < pmin:
        return 0, 0.0
    # correlation at every lag via FFT
    n = x.size
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, nfft)
    ac = np.fft.irfft(spec * np.conj(spec), nfft)[: pmax + 1]
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    lags = np.arange(pmin, pmax + 1)
    e_head = c2[n - lags]  # energy of x[:n-P]
    e_tail = c2[n] - c2[lags]  # energy of x[P:]
    score = ac[lags] / np.sqrt(e_head * e_tail + 1e-12)
    i = int(np.argmax(score))
    return int(lags[i]), float(score[i])


def _fade(n: int) -> np.ndarray:
    return np.arange(1, n + 1, dtype=np.float64) / (n + 1)


def _lag(x: np.ndarray, sample_rate: int, min_corr: float) -> int:
    """The period to remove or insert in block ``x`` (samples): its best lag when the block is passive
    or correlates at ``min_corr`` or more at that lag, else 0. An all-zero block's lag is the shortest."""
    p, corr = best_period(x, sample_rate)
    if p == 0:
        return 0
    return p if is_silent(x) or corr >= min_corr else 0


def accelerate(x: np.ndarray, sample_rate: int, max_remove: int, fast: bool = False) -> tuple[np.ndarray, int]:
    """Shorten block ``x`` by one period (see the module docstring) if it is not more than
    ``max_remove`` samples; ``fast``: by as many whole periods as fit in ``max_remove``, at the lower
    correlation threshold. Returns ``(y, removed)``; cross-fades the period before the cut into the
    one after it. Otherwise unchanged."""
    if max_remove <= 0:
        return x, 0
    p = _lag(x, sample_rate, MIN_CORRELATION_FAST if fast else MIN_CORRELATION)
    if p == 0 or p > max_remove:
        return x, 0
    m = min(max_remove // p if fast else 1, x.size // p - 1) * p
    if m <= 0:
        return x, 0
    a, b = x[:p], x[m : m + p]
    w = _fade(p)
    return np.concatenate([a * (1 - w) + b * w, x[m + p :]]), m


def decelerate(x: np.ndarray, sample_rate: int, max_insert: int) -> tuple[np.ndarray, int]:
    """Lengthen block ``x`` by one period (see the module docstring) if it is not more than
    ``max_insert`` samples. Returns ``(y, inserted)``.

    Passive block: append the period repeating the block's own tail (low-level noise stays noise).
    Periodic speech: insert one period after the first, cross-faded from the second period into the
    first, so both junctions are continuous. Otherwise unchanged.
    """
    if max_insert <= 0:
        return x, 0
    p = _lag(x, sample_rate, MIN_CORRELATION)
    if p == 0 or p > max_insert:
        return x, 0
    if is_silent(x):
        tail = x[np.arange(p) % x.size]
        return np.concatenate([x, tail]), p
    a, b = x[:p], x[p : 2 * p]
    w = _fade(p)
    inserted = b * (1 - w) + a * w
    return np.concatenate([a, inserted, x[p:]]), p
