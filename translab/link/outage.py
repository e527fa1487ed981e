"""Scheduled blackouts (for example mobile handoffs): the link carries nothing during a window.

Window k (k = 0, 1, 2, ...; a single window when ``period_s`` is 0) is
``[s_k, s_k + duration_s)`` with ``s_k = start_s + k * period_s + u_k``. ``u_k`` is 0 unless
``start_spread_s`` > 0: then it is drawn uniformly from ``[0, start_spread_s)``, so an event lands
at a seeded random time (on speech or in a pause) instead of at the same instant in every run.
Times are seconds on the same clock as the packets.

Randomness: ``u_k`` comes from ``SeedSequence(entropy, spawn_key=(OUTAGE_KEY, k))``, where
``entropy`` is the root entropy of the generator the model is first given (a profile's chains get
generators spawned from ``SeedSequence(seed)``, so that is the call's seed). Hence the same seed
gives the same times, different seeds give different times, and the uplink and downlink chains of
one call (:func:`~translab.link.profiles.direction_rngs`) black out at the same moments, as one
handoff does; window k's time does not depend on how many windows were asked about before it.

Invariants
----------
* A packet is lost iff the time it reaches this model falls inside a window (half-open: a packet at
  exactly the window's end passes). In a profile chain the outage model comes first, so that time is
  the packet's **send time**: packets sent during an outage are lost, packets already in flight
  when it begins are delivered (they are past the failed access link). Place the model last in a
  custom :class:`~translab.link.chain.LinkChain` to drop by arrival time instead.
* Survivors keep their input time. Windows never overlap: ``start_spread_s + duration_s`` must not
  exceed ``period_s`` (when periodic), so window k lies inside period k.
"""

from __future__ import annotations

import math

import numpy as np

from translab.errors import ConfigError
from translab.link.base import as_inputs, check_nonnegative

#: First word of the spawn key of every outage time draw (the bytes of "outa").
OUTAGE_KEY = 0x6F757461


class Outage:
    """Blackouts of ``duration_s`` starting at ``start_s`` (+ a seeded uniform offset in
    ``[0, start_spread_s)``), repeating every ``period_s`` (0 = once). Seconds throughout."""

    def __init__(self, start_s: float, duration_s: float, period_s: float = 0.0, start_spread_s: float = 0.0) -> None:
        self.start_s = check_nonnegative("outage.start_s", start_s, "s")
        self.duration_s = check_nonnegative("outage.duration_s", duration_s, "s")
        self.period_s = check_nonnegative("outage.period_s", period_s, "s")
        self.start_spread_s = check_nonnegative("outage.start_spread_s", start_spread_s, "s")
        if self.period_s > 0.0 and self.duration_s >= self.period_s:
            raise ConfigError(
                "outage.duration_s", duration_s, f"less than period_s ({self.period_s:g} s), or period_s = 0"
            )
        if self.period_s > 0.0 and self.start_spread_s + self.duration_s > self.period_s:
            raise ConfigError(
                "outage.start_spread_s", start_spread_s,
                f"at most period_s - duration_s ({self.period_s - self.duration_s:g} s), so windows cannot overlap",
            )
        self._entropy: int | None = None
        self._offsets: dict[int, float] = {}

    @property
    def random(self) -> bool:
        """True when window times are drawn (``start_spread_s`` > 0)."""
        return self.start_spread_s > 0.0

    def reset(self) -> None:
        """Forget the drawn times; the next generator given decides them again."""
        self._entropy = None
        self._offsets = {}

    def bind(self, rng: np.random.Generator | None) -> None:
        """Take the root entropy of ``rng`` for the window times (first call only; a no-op when the
        times are fixed)."""
        if self._entropy is not None or not self.random:
            return
        if not isinstance(rng, np.random.Generator):
            raise ConfigError("rng", rng, "a numpy.random.Generator (outage times are drawn from its seed)")
        seq = getattr(rng.bit_generator, "seed_seq", None)
        entropy = getattr(seq, "entropy", None)
        self._entropy = int(entropy) if isinstance(entropy, (int, np.integer)) else int(rng.integers(2**63))

    def _offset(self, k: int) -> float:
        if not self.random:
            return 0.0
        if self._entropy is None:
            raise ConfigError("outage", "unbound", "times drawn from a generator: call apply() or bind(rng) first")
        u = self._offsets.get(k)
        if u is None:
            seq = np.random.SeedSequence(self._entropy, spawn_key=(OUTAGE_KEY, k))
            u = self._offsets[k] = float(np.random.default_rng(seq).uniform(0.0, self.start_spread_s))
        return u

    def window_start(self, k: int) -> float:
        """Start of window k (s)."""
        return self.start_s + k * self.period_s + self._offset(k)

    def windows(self, until_s: float) -> list[tuple[float, float]]:
        """The windows ``(start_s, end_s)`` that begin before ``until_s`` (s), in order."""
        out: list[tuple[float, float]] = []
        k = 0
        while True:
            a = self.window_start(k)
            if a >= until_s:
                return out
            out.append((a, a + self.duration_s))
            if self.period_s <= 0.0:
                return out
            k += 1

    def _period_index(self, t: np.ndarray) -> np.ndarray:
        if self.period_s <= 0.0:
            return np.zeros(t.shape, dtype=np.int64)
        k = np.floor((t - self.start_s) / self.period_s)
        k = np.where(self.start_s + k * self.period_s > t, k - 1, k)  # guard rounding
        return np.maximum(k, 0).astype(np.int64)

    def in_outage(self, t_s: np.ndarray) -> np.ndarray:
        """Boolean mask: which times (seconds) fall inside a blackout window."""
        t = np.asarray(t_s, dtype=np.float64)
        k = self._period_index(t)
        if self.random:
            uniq, inv = np.unique(k, return_inverse=True)
            window = np.array([self.window_start(int(i)) for i in uniq], dtype=np.float64)[inv].reshape(t.shape)
        else:
            window = self.start_s + k * self.period_s
        # Compare absolute times (window start + duration), not a phase, so the edges are exact.
        return (t >= window) & (t < window + self.duration_s)

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Packets outside every window, at their input time; ``rng`` only seeds drawn times."""
        t, _ = as_inputs(send_s, size)
        self.bind(rng)
        idx = np.flatnonzero(~self.in_outage(t)).astype(np.int64)
        return idx, t[idx]

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator | None) -> list[float]:
        """One packet: ``[t_s]``, or ``[]`` inside a window."""
        self.bind(rng)
        if self.period_s > 0.0:  # the arithmetic of in_outage(), on one float
            k = float(math.floor((t_s - self.start_s) / self.period_s))
            if self.start_s + k * self.period_s > t_s:
                k -= 1.0
            window = self.window_start(int(max(k, 0.0)))
        else:
            window = self.window_start(0)
        return [] if (t_s >= window and t_s < window + self.duration_s) else [t_s]

    def __repr__(self) -> str:
        spread = f", start_spread_s={self.start_spread_s!r}" if self.random else ""
        return (f"Outage(start_s={self.start_s!r}, duration_s={self.duration_s!r}, "
                f"period_s={self.period_s!r}{spread})")
