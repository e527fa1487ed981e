"""Scheduled blackouts (for example mobile handoffs): the link carries nothing during a window.

Windows are ``[start_s + k * period_s, start_s + k * period_s + duration_s)`` for k = 0, 1, 2, ...
(a single window when ``period_s`` is 0). Times are seconds on the same clock as the packets.

Invariants
----------
* A packet is lost iff the time it reaches this model falls inside a window (half-open: a packet at
  exactly the window's end passes). In a profile chain the outage model comes first, so that time is
  the packet's **send time**: packets sent during an outage are lost, packets already in flight
  when it begins are delivered (they are past the failed access link). Place the model last in a
  custom :class:`~translab.link.chain.LinkChain` to drop by arrival time instead.
* Survivors keep their input time; no randomness; stateless.
"""

from __future__ import annotations

import math

import numpy as np

from translab.errors import ConfigError
from translab.link.base import as_inputs, check_nonnegative


class Outage:
    """Blackouts of ``duration_s`` starting at ``start_s``, repeating every ``period_s`` (0 = once)."""

    def __init__(self, start_s: float, duration_s: float, period_s: float = 0.0) -> None:
        self.start_s = check_nonnegative("outage.start_s", start_s, "s")
        self.duration_s = check_nonnegative("outage.duration_s", duration_s, "s")
        self.period_s = check_nonnegative("outage.period_s", period_s, "s")
        if self.period_s > 0.0 and self.duration_s >= self.period_s:
            raise ConfigError(
                "outage.duration_s", duration_s, f"less than period_s ({self.period_s:g} s), or period_s = 0"
            )

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def in_outage(self, t_s: np.ndarray) -> np.ndarray:
        """Boolean mask: which times (seconds) fall inside a blackout window."""
        t = np.asarray(t_s, dtype=np.float64)
        if self.period_s > 0.0:
            k = np.floor((t - self.start_s) / self.period_s)
            k = np.where(self.start_s + k * self.period_s > t, k - 1, k)  # guard rounding
            window = self.start_s + np.maximum(k, 0) * self.period_s
        else:
            window = np.full(t.shape, self.start_s)
        # Compare absolute times (window start + duration), not a phase, so the edges are exact.
        return (t >= window) & (t < window + self.duration_s)

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Packets outside every window, at their input time; ``rng`` is not used."""
        t, _ = as_inputs(send_s, size)
        idx = np.flatnonzero(~self.in_outage(t)).astype(np.int64)
        return idx, t[idx]

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[t_s]``, or ``[]`` inside a window."""
        if self.period_s > 0.0:  # the arithmetic of in_outage(), on one float
            k = float(math.floor((t_s - self.start_s) / self.period_s))
            if self.start_s + k * self.period_s > t_s:
                k -= 1.0
            window = self.start_s + max(k, 0.0) * self.period_s
        else:
            window = self.start_s
        return [] if (t_s >= window and t_s < window + self.duration_s) else [t_s]

    def __repr__(self) -> str:
        return f"Outage(start_s={self.start_s!r}, duration_s={self.duration_s!r}, period_s={self.period_s!r})"
