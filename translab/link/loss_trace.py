"""Replay of a recorded loss pattern in the Microsoft PLC Challenge format.

The format: a text file with one line per 20 ms packet, ``1`` = lost, ``0`` = received (the
challenge's traces come from real Teams calls; bursts reach about 1 s). Surrounding whitespace and
a final newline are accepted; anything else (an empty line in the middle, ``2``, ``0.5``, text) is a
:class:`ConfigError` naming the file and the 1-based line number.

Invariants
----------
* Packets are mapped to lines by packet index: the k-th packet this model sees (counting across
  calls since construction or ``reset()``) uses line ``(offset + k) mod N``; the trace wraps.
  The packet's send time is not used, so a 60 ms framing still consumes one line per packet.
* A packet is dropped iff its line is ``1``; survivors keep their input time. No randomness.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from translab.errors import ConfigError
from translab.link.base import as_inputs, read_trace_lines
from translab.paths import TRACES_DIR


def resolve_trace_path(path: "str | Path", base_dir: "Path | None" = None) -> Path:
    """Find a trace file: as given (absolute or relative to the working directory), else relative to
    ``base_dir`` (e.g. the profile's folder), else in the repository's ``data/traces/``."""
    p = Path(path)
    candidates = [p]
    if not p.is_absolute():
        if base_dir is not None:
            candidates.append(Path(base_dir) / p)
        candidates.append(TRACES_DIR / p)
    for c in candidates:
        if c.is_file():
            return c
    available = sorted(x.name for x in TRACES_DIR.glob("*") if x.is_file()) if TRACES_DIR.is_dir() else []
    raise ConfigError("trace", str(path), "an existing file; data/traces has: " + (", ".join(available) or "nothing"))


def read_loss_trace(path: "str | Path") -> np.ndarray:
    """Read a PLC-Challenge loss trace: bool array, True = lost. ConfigError with the line number
    for a malformed line, or when the file is empty or unreadable."""
    p = Path(path)
    lines = read_trace_lines(p, "loss.trace")
    out = np.empty(len(lines), dtype=bool)
    for i, s in enumerate(lines):
        if s == "0":
            out[i] = False
        elif s == "1":
            out[i] = True
        else:
            raise ConfigError(f"line {i + 1}", s, "0 (received) or 1 (lost), one per line", where=str(p))
    if out.size == 0:
        raise ConfigError("loss.trace", str(p), "at least one line of 0 or 1")
    return out


class TraceLoss:
    """Drop packets by replaying a loss pattern (``lost``: bool array or a trace file path).

    ``offset``: the line (0-based) the first packet uses. See the module docstring.
    """

    def __init__(self, lost: "np.ndarray | str | Path", offset: int = 0) -> None:
        if isinstance(lost, (str, Path)):
            self.path: Path | None = Path(lost)
            self.lost = read_loss_trace(lost)
        else:
            self.path = None
            self.lost = np.asarray(lost, dtype=bool).reshape(-1)
            if self.lost.size == 0:
                raise ConfigError("loss.trace", "empty", "at least one entry")
        if int(offset) < 0:
            raise ConfigError("loss.offset", offset, "an integer >= 0 (line)")
        self.offset = int(offset)
        self._count = 0

    def reset(self) -> None:
        """Restart at line ``offset``."""
        self._count = 0

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surviving packets at their input time; ``rng`` is not used."""
        t, _ = as_inputs(send_s, size)
        n = t.size
        lines = (self.offset + self._count + np.arange(n)) % self.lost.size
        self._count += n
        idx = np.flatnonzero(~self.lost[lines]).astype(np.int64)
        return idx, t[idx]

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[t_s]`` or ``[]`` if its line is 1."""
        line = (self.offset + self._count) % self.lost.size
        self._count += 1
        return [] if self.lost[line] else [t_s]

    def expected(self) -> tuple[float, float]:
        """(loss rate, mean burst length in packets) of one pass over the trace (wrapping)."""
        x = self.lost
        rate = float(x.mean())
        if rate == 0.0:
            return 0.0, float("nan")
        if rate == 1.0:
            return 1.0, float("inf")
        starts = int(np.sum(x & ~np.roll(x, 1)))
        return rate, float(x.sum() / starts)

    def __repr__(self) -> str:
        src = str(self.path) if self.path else f"{self.lost.size} entries"
        return f"TraceLoss({src!r}, offset={self.offset})"


__all__ = ["TraceLoss", "read_loss_trace", "resolve_trace_path"]
