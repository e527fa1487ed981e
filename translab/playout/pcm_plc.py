"""Pitch-based waveform substitution for PCM, in the manner of ITU-T G.711 Appendix I.

What it does (rates scale from the 8 kHz figures of the Appendix):

- keeps a history buffer of the last 48.75 ms of good output;
- on the first lost block, estimates the pitch period P by normalised autocorrelation of the most
  recent 20 ms of history against the history delayed by P, for P between 5 and 15 ms
  (66 to 200 Hz);
- synthesises the lost audio by repeating the last pitch period for the first 10 ms, the last two
  periods from 10 ms on and the last three from 20 ms on (a longer pitch buffer avoids the buzz of
  one repeated period), with a quarter-period overlap-add at each switch;
- attenuates linearly by 20 % per 10 ms after the first 10 ms, so the output is silent from 60 ms;
- at the first good block after a loss, overlap-adds the continued synthetic signal into the start
  of the good block over a quarter period plus 4 ms per extra 10 ms of loss (at most 10 ms).

Differences from the Appendix, on purpose: there is no 3.75 ms output delay (so the junction into the
first lost block is not smoothed: the synthetic signal starts one pitch period back, which is
continuous for periodic speech); the work is done per block with NumPy instead of per sample.
"""

from __future__ import annotations

import numpy as np

HISTORY_MS = 48.75
PITCH_MIN_MS = 5.0
PITCH_MAX_MS = 15.0
CORR_MS = 20.0
ATTEN_START_MS = 10.0
ATTEN_PER_10MS = 0.2


def estimate_pitch(history: np.ndarray, sample_rate: int) -> int:
    """Pitch period (samples) of the end of ``history`` by normalised autocorrelation.

    Searches periods of 5 to 15 ms; compares the last 20 ms with the segment P samples earlier.
    Returns the period maximising the normalised correlation (the maximum period when the history
    is too short to search).
    """
    pmin = int(round(PITCH_MIN_MS * sample_rate / 1000))
    pmax = int(round(PITCH_MAX_MS * sample_rate / 1000))
    w = int(round(CORR_MS * sample_rate / 1000))
    h = np.asarray(history, dtype=np.float64)
    if h.size < w + pmax:
        w = h.size - pmax
        if w < pmin:
            return min(pmax, max(pmin, h.size // 2))
    ref = h[-w:]
    # segments h[-w-P : -P] for P in pmin..pmax, as rows of a strided view
    start = h.size - w - pmax
    seg = h[start : h.size - pmin]
    win = np.lib.stride_tricks.sliding_window_view(seg, w)  # row i starts at start + i
    # row for period P starts at h.size - w - P  ->  i = pmax - P
    dots = win @ ref
    energy = np.einsum("ij,ij->i", win, win)
    score = dots / np.sqrt(energy * float(ref @ ref) + 1e-12)
    i = int(np.argmax(score))
    return pmax - i


class PcmPlc:
    """G.711 Appendix I style concealment state for one mono stream at ``sample_rate`` (Hz).

    Call :meth:`good` with every good block as it is played (it returns the block, smoothed into
    the preceding concealment if there was one) and :meth:`conceal` for every lost block.
    """

    def __init__(self, sample_rate: int) -> None:
        self.rate = int(sample_rate)
        self.hist_len = int(round(HISTORY_MS * sample_rate / 1000))
        self.history = np.zeros(0, dtype=np.float64)
        self.erased = 0  # samples concealed in the current loss run
        self.pitch = 0
        self.pitch_buf = np.zeros(0, dtype=np.float64)

    def _ms(self, ms: float) -> int:
        return int(round(ms * self.rate / 1000))

    def _remember(self, x: np.ndarray) -> None:
        self.history = np.concatenate([self.history, x])[-self.hist_len :]

    def _synth(self, start: int, n: int) -> np.ndarray:
        """Synthetic (unattenuated) signal for erasure samples ``start .. start + n``."""
        p = self.pitch
        hb = self.pitch_buf  # last 3 periods of history (or fewer if short)
        j = np.arange(start, start + n)
        ten, twenty = self._ms(10), self._ms(20)
        out = np.empty(n, dtype=np.float64)

        def cyc(k: int, idx: np.ndarray) -> np.ndarray:
            length = min(k * p, hb.size)
            out: np.ndarray = hb[hb.size - length + (idx % length)]
            return out

        # period count in force: 1 before 10 ms, 2 before 20 ms, 3 after
        k = np.where(j < ten, 1, np.where(j < twenty, 2, 3))
        for kk in (1, 2, 3):
            m = k == kk
            if m.any():
                out[m] = cyc(kk, j[m])
        # quarter-period overlap-add at each switch: fade the old cycle out, the new one in
        ola = max(1, p // 4)
        for switch, old_k, new_k in ((ten, 1, 2), (twenty, 2, 3)):
            m = (j >= switch) & (j < switch + ola)
            if m.any():
                w = (j[m] - switch + 1) / (ola + 1)
                out[m] = (1 - w) * cyc(old_k, j[m]) + w * cyc(new_k, j[m])
        return out

    def _gain(self, start: int, n: int) -> np.ndarray:
        j = np.arange(start, start + n, dtype=np.float64)
        ramp = 1.0 - ATTEN_PER_10MS * (j - self._ms(ATTEN_START_MS)) / self._ms(10)
        return np.clip(np.minimum(1.0, ramp), 0.0, 1.0)

    def conceal(self, n: int) -> np.ndarray:
        """``n`` samples (float64) replacing a lost block."""
        if self.history.size == 0:
            self.erased += n
            return np.zeros(n)
        if self.erased == 0:
            self.pitch = estimate_pitch(self.history, self.rate)
            self.pitch_buf = self.history[-min(3 * self.pitch, self.history.size) :].copy()
        y: np.ndarray = self._synth(self.erased, n) * self._gain(self.erased, n)
        self.erased += n
        return y

    def good(self, x: np.ndarray) -> np.ndarray:
        """Pass a good block through; after a loss, overlap-add the synthetic signal into its start."""
        x = np.asarray(x, dtype=np.float64)
        if self.erased and self.history.size:
            extra_10ms = max(0, (self.erased - 1) // self._ms(10))
            m = min(max(1, self.pitch // 4) + extra_10ms * self._ms(4), self._ms(10), x.size)
            tail = self._synth(self.erased, m) * self._gain(self.erased, m)
            w = np.arange(1, m + 1) / (m + 1)
            x = x.copy()
            x[:m] = (1 - w) * tail + w * x[:m]
        self.erased = 0
        self._remember(x)
        return x
