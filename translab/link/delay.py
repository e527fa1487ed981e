"""Delay line: a constant base delay plus random jitter, with or without reordering.

Semantics follow netem's ``delay TIME JITTER distribution D`` (``tabledist`` in sch_netem.c and the
iproute2 table generators) and libwebrtc's SimulatedNetwork delay line:

* ``uniform``: ``base + U(-J, +J)`` (netem's default without a table; std = J / sqrt(3)).
* ``normal``: ``base + J * Z``, Z standard normal (libwebrtc's ``delay_standard_deviation_ms``).
* ``pareto``: ``base + J * t``, ``t = min((4/3) * (U**(-1/3) - 1.5), 32767/8192)``, U uniform in (0, 1]:
  netem's pareto.dist, a Pareto with shape 3 shifted to mean 0 and scaled by 4/3, capped where
  the 16-bit table saturates. Right-skewed: a long tail of late packets.
* ``paretonormal``: ``base + J * (z(q) + 3 * t(1 - q)) / 4`` with one uniform ``q`` feeding both the
  normal quantile ``z`` and the Pareto deviate ``t`` (netem's paretonormal.dist: 0.25 normal + 0.75
  pareto, built from one shared quantile), clipped to the table's range [-4, 32767/8192).

netem's ``CORR`` (jitter correlation) is not modelled: netem's own correlation is only an
approximation, and it changes the marginal distribution.

Invariants
----------
* Every packet leaves exactly once (no loss, no duplication); output is in input order.
* ``arrival_s >= send_s``: a negative sampled delay is clipped to 0 (netem sends it at once).
* ``reorder=False`` (default, as libwebrtc ``allow_reordering=false``): a packet never overtakes the
  one before it: its arrival is pushed up to the previous packet's arrival, so arrival times are
  non-decreasing across calls. ``reorder=True``: each packet keeps its own sampled delay, so jitter
  larger than the packet gap reorders packets (as netem).
* One random variate per packet when ``jitter_s > 0`` (none when it is 0), drawn in packet order.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from translab.errors import ConfigError, check_choice
from translab.link.base import as_inputs, check_nonnegative, identity

DISTRIBUTIONS: tuple[str, ...] = ("uniform", "normal", "pareto", "paretonormal")

# netem tables hold int16 values scaled by NETEM_DIST_SCALE = 8192.
_TABLE_MAX = 32767 / 8192
_TABLE_MIN = -32768 / 8192


# The deviates use ufuncs only (np.power, not ``**``), so an array and a scalar input run the same
# inner loops and round identically (batch == one packet at a time).


def pareto_deviate(u: "np.ndarray | float") -> np.ndarray:
    """netem's Pareto deviate for uniforms ``u`` in (0, 1]: mean about 0, capped at 32767/8192."""
    t = (4.0 / 3.0) * (np.power(u, -1.0 / 3.0) - 1.5)
    return np.minimum(t, _TABLE_MAX)


def paretonormal_deviate(q: "np.ndarray | float") -> np.ndarray:
    """netem's Pareto-normal deviate for quantiles ``q`` in [0, 1): (z(q) + 3 * pareto(1 - q)) / 4."""
    z = np.minimum(np.maximum(ndtri(q), _TABLE_MIN), _TABLE_MAX)
    t = pareto_deviate(1.0 - q)
    out: np.ndarray = np.minimum(np.maximum((z + 3.0 * t) / 4.0, _TABLE_MIN), _TABLE_MAX)
    return out


def _pareto_one(u: float) -> float:
    """:func:`pareto_deviate` for one float: the power through the same ufunc, the rest in plain
    IEEE arithmetic (which numpy's element-wise loops match exactly)."""
    t = (4.0 / 3.0) * (float(np.power(u, -1.0 / 3.0)) - 1.5)
    return t if t < _TABLE_MAX else _TABLE_MAX


def _paretonormal_one(q: float) -> float:
    """:func:`paretonormal_deviate` for one float (see :func:`_pareto_one`)."""
    z = min(max(float(ndtri(q)), _TABLE_MIN), _TABLE_MAX)
    t = _pareto_one(1.0 - q)
    return min(max((z + 3.0 * t) / 4.0, _TABLE_MIN), _TABLE_MAX)


def standard_deviates(distribution: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` jitter deviates (unit scale, mean about 0) of a named distribution, one variate each."""
    if distribution == "normal":
        return rng.standard_normal(n)
    u = rng.random(n)  # [0, 1)
    if distribution == "uniform":
        return 2.0 * u - 1.0
    if distribution == "pareto":
        return pareto_deviate(1.0 - u)  # (0, 1]
    if distribution == "paretonormal":
        return paretonormal_deviate(u)
    raise ConfigError("distribution", distribution, ", ".join(DISTRIBUTIONS))


class Delay:
    """Constant ``base_s`` plus jitter of scale ``jitter_s`` (seconds) drawn from ``distribution``.

    ``jitter_s`` is netem's JITTER: the half-width for ``uniform``, the standard deviation for
    ``normal``, the table scale for ``pareto``/``paretonormal``. See the module docstring for the
    invariants (no loss, arrival >= send, no overtaking unless ``reorder``).
    """

    def __init__(
        self,
        base_s: float = 0.0,
        jitter_s: float = 0.0,
        distribution: str = "normal",
        reorder: bool = False,
    ) -> None:
        self.base_s = check_nonnegative("delay.base", base_s, "s")
        self.jitter_s = check_nonnegative("delay.jitter", jitter_s, "s")
        check_choice("delay.distribution", distribution, DISTRIBUTIONS)
        self.distribution = distribution
        if not isinstance(reorder, (bool, np.bool_)):
            raise ConfigError("delay.reorder", reorder, "true or false")
        self.reorder = bool(reorder)
        self._last_arrival_s = -np.inf

    def reset(self) -> None:
        """Forget the previous packet's arrival time."""
        self._last_arrival_s = -np.inf

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every packet once, in input order, at ``send_s + max(0, base + jitter)`` (seconds)."""
        t, _ = as_inputs(send_s, size)
        n = t.size
        if n == 0:
            return identity(0), t.copy()
        d = np.full(n, self.base_s)
        if self.jitter_s > 0.0:
            d += self.jitter_s * standard_deviates(self.distribution, n, rng)
            np.maximum(d, 0.0, out=d)
        arrival = t + d
        if not self.reorder:
            arrival[0] = max(arrival[0], self._last_arrival_s)
            np.maximum.accumulate(arrival, out=arrival)
            self._last_arrival_s = float(arrival[-1])
        return identity(n), arrival

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[arrival_s]`` (same result and draws as :meth:`apply`)."""
        d = self.base_s
        if self.jitter_s > 0.0:
            dist = self.distribution
            if dist == "normal":
                dev = float(rng.standard_normal())
            elif dist == "uniform":
                dev = 2.0 * float(rng.random()) - 1.0
            elif dist == "pareto":
                dev = _pareto_one(1.0 - rng.random())
            else:
                dev = _paretonormal_one(rng.random())
            d = d + self.jitter_s * dev
            if d < 0.0:
                d = 0.0
        a = t_s + d
        if not self.reorder:
            if a < self._last_arrival_s:
                a = self._last_arrival_s
            self._last_arrival_s = a
        return [a]

    def __repr__(self) -> str:
        return (
            f"Delay(base_s={self.base_s!r}, jitter_s={self.jitter_s!r}, "
            f"distribution={self.distribution!r}, reorder={self.reorder!r})"
        )
