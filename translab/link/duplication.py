"""Random packet duplication (netem ``duplicate P``).

Invariants
----------
* Every packet leaves once, or twice with probability ``p`` (independently, one uniform per packet).
* Both copies leave at the input time; they are adjacent in the output with the same ``index``.
  Placed before a delay line, each copy then gets its own delay (and may be lost on its own).
* A copy is never duplicated again by the same model.
"""

from __future__ import annotations

import numpy as np

from translab.link.base import as_inputs, check_probability


class Duplication:
    """Emit each packet twice with probability ``p`` (0 to 1)."""

    def __init__(self, p: float) -> None:
        self.p = check_probability("duplication.p", p)

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each packet once or twice (adjacent), at its input time."""
        t, _ = as_inputs(send_s, size)
        n = t.size
        copies = 1 + (rng.random(n) < self.p).astype(np.int64)
        idx = np.repeat(np.arange(n, dtype=np.int64), copies)
        return idx, t[idx]

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[t_s]`` or ``[t_s, t_s]`` (one uniform)."""
        return [t_s, t_s] if rng.random() < self.p else [t_s]

    def expected(self) -> float:
        """Expected extra copies per packet: ``p``."""
        return self.p

    def __repr__(self) -> str:
        return f"Duplication(p={self.p!r})"
