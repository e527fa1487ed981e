"""Pitch-synchronous time stretching of one block ("WSOLA-lite"), as NetEq's accelerate and
preemptive expand do: remove or repeat one pitch period, cross-faded, where the signal is periodic.

Samples are float64 mono. Periods are searched between 2.5 ms and 15 ms (and at most half the
block); a block is stretched only when the best normalised correlation between adjacent periods is
at least ``MIN_CORRELATION`` (NetEq's ``kCorrelationThreshold``, 0.9, in ``time_stretch.h``: so
unvoiced or weakly periodic speech is left alone), or when it is silent, where any number of samples
may be removed or inserted (the caller decides how many).
"""

from __future__ import annotations

import numpy as np

MIN_CORRELATION = 0.9
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


def accelerate(x: np.ndarray, sample_rate: int, max_remove: int) -> tuple[np.ndarray, int]:
    """Shorten block ``x`` by up to ``max_remove`` samples. Returns ``(y, removed)``.

    Silence: drop ``max_remove`` samples from the end. Periodic speech: drop one pitch period
    (if it is not more than ``max_remove``), cross-fading the period before into the one after.
    Otherwise unchanged.
    """
    if max_remove <= 0:
        return x, 0
    if is_silent(x):
        k = min(max_remove, x.size)
        return x[: x.size - k], k
    p, corr = best_period(x, sample_rate)
    if p == 0 or corr < MIN_CORRELATION or p > max_remove:
        return x, 0
    a, b = x[:p], x[p : 2 * p]
    w = _fade(p)
    return np.concatenate([a * (1 - w) + b * w, x[2 * p :]]), p


def decelerate(x: np.ndarray, sample_rate: int, max_insert: int) -> tuple[np.ndarray, int]:
    """Lengthen block ``x`` by up to ``max_insert`` samples. Returns ``(y, inserted)``.

    Silence: append ``max_insert`` samples repeating the block's own tail (low-level noise stays
    noise). Periodic speech: insert one pitch period after the first, cross-faded from the second
    period into the first, so both junctions are continuous. Otherwise unchanged.
    """
    if max_insert <= 0:
        return x, 0
    if is_silent(x):
        if x.size == 0:
            return np.zeros(max_insert), max_insert
        tail = x[np.arange(max_insert) % x.size]
        return np.concatenate([x, tail]), max_insert
    p, corr = best_period(x, sample_rate)
    if p == 0 or corr < MIN_CORRELATION or p > max_insert:
        return x, 0
    a, b = x[:p], x[p : 2 * p]
    w = _fade(p)
    inserted = b * (1 - w) + a * w
    return np.concatenate([a, inserted, x[p:]]), p
