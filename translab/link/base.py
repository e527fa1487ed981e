"""The interface every link model shares, and small checks used by all of them.

A link model is a plain object with

* ``apply(send_s, size, rng) -> (index, arrival_s)``: packets enter with the time they reach the
  model (seconds, float64) and their size (bytes, int64); for every copy that leaves, ``index`` is the
  position of its input packet in *this call's* arrays and ``arrival_s`` the time it leaves (seconds).
  Lost packets are absent; a duplicated packet appears twice (adjacent). Output rows are in input
  order (``index`` non-decreasing), not in arrival order.
* ``reset()``: forget all state (queues, Markov states, packet counters).
* ``apply_one(t_s, size, rng) -> list[float]`` (optional, all shipped models have it): the same for
  one packet without numpy arrays (the arrival times of its copies; empty if lost), bit-identical
  to ``apply`` on a one-element array and drawing the same variates. LinkChain and the TCP model
  use it to make per-packet calls cheap.

Models are stateful across calls and draw a fixed number of random variates per input packet, in
packet order, so feeding packets one call at a time gives exactly the result of one batch call with a
generator in the same state. No model reads a clock, a socket or global randomness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from translab.errors import ConfigError

FloatArray = np.ndarray
IntArray = np.ndarray


@runtime_checkable
class LinkModel(Protocol):
    """What a link model offers (see the module docstring for the semantics)."""

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Packets sent at ``send_s`` (s, float64, non-decreasing) of ``size`` bytes (int64) ->
        ``(index, arrival_s)``: for each copy that comes out, the input index (int64) and its arrival
        time (s); lost packets are absent, duplicates appear twice. Stateful across calls."""
        ...

    def reset(self) -> None:
        """Forget all state (queues, last arrival, loss-chain state), as if newly made."""
        ...


def as_inputs(send_s: "np.ndarray | list[float]", size: "np.ndarray | list[int]") -> tuple[np.ndarray, np.ndarray]:
    """Coerce ``send_s`` to float64 and ``size`` to int64 arrays of equal length (1-D)."""
    t = np.asarray(send_s, dtype=np.float64).reshape(-1)
    s = np.asarray(size, dtype=np.int64).reshape(-1)
    if s.shape != t.shape:
        if s.size == 1:
            s = np.full(t.shape, int(s[0]), dtype=np.int64)
        else:
            raise ConfigError("size", f"{s.size} values", f"one per packet ({t.size})")
    return t, s


def identity(n: int) -> np.ndarray:
    """``arange(n)`` as int64: the index output of a model that passes every packet once."""
    return np.arange(n, dtype=np.int64)


def check_probability(field: str, value: float) -> float:
    """A probability in [0, 1], else ConfigError naming the field."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(field, value, "a probability from 0 to 1") from None
    if not (0.0 <= v <= 1.0):  # also rejects NaN
        raise ConfigError(field, value, "a probability from 0 to 1")
    return v


def _check_bound(field: str, value: float, unit: str, strict: bool) -> float:
    """A finite number ``> 0`` (strict) or ``>= 0``, else ConfigError naming the field and unit."""
    allowed = f"a number {'>' if strict else '>='} 0 {unit}".rstrip()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(field, value, allowed) from None
    if not np.isfinite(v) or v < 0.0 or (strict and v == 0.0):  # also rejects NaN
        raise ConfigError(field, value, allowed)
    return v


def check_nonnegative(field: str, value: float, unit: str) -> float:
    """A finite number >= 0, else ConfigError naming the field and unit."""
    return _check_bound(field, value, unit, strict=False)


def check_positive(field: str, value: float, unit: str) -> float:
    """A finite number > 0, else ConfigError naming the field and unit."""
    return _check_bound(field, value, unit, strict=True)


def check_count(field: str, value: int, lo: int, unit: str) -> int:
    """A whole number (not a bool) ``>= lo``, else ConfigError naming the field and unit."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ConfigError(field, value, f"an integer >= {lo} ({unit})")
    return int(value)


def read_trace_lines(path: "str | Path", field: str) -> list[str]:
    """The stripped lines of a line-per-event trace file (loss or capacity trace), without the final
    newline's empty line, for the caller to parse with line numbers (1-based = index + 1).
    ConfigError naming ``field`` when the file cannot be read as UTF-8 text."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(field, str(p), f"a readable text file ({err.__class__.__name__})") from None
    lines = text.split("\n")
    if lines and lines[-1].strip() == "":
        lines.pop()  # the final newline (or a trailing blank) is fine
    return [line.strip() for line in lines]
