"""Random packet loss: Bernoulli, Gilbert-Elliott (netem and libwebrtc parameterisations), and
netem's 4-state Markov model. (Replay of a recorded loss trace lives in ``loss_trace.py``.)

Common invariants
-----------------
* A packet is either dropped or passed once, unchanged in time: ``arrival_s == send_s``.
* Output is in input order. The Markov state carries across calls, so one call per packet equals one
  batch call.
* Random draws per packet are fixed: Bernoulli 1 uniform, Gilbert-Elliott 2 (loss, then transition),
  4-state 1, in packet order.

Semantics (sch_netem.c ``loss_gilb_ell`` / ``loss_4state``, libwebrtc SimulatedNetwork):

* Gilbert-Elliott: hidden state Good/Bad; packet k is lost with probability ``1-k`` in Good and ``1-h``
  in Bad (decided by the state the packet finds), then the state moves Good->Bad with ``p`` and
  Bad->Good with ``r``. Starts in Good.
* libwebrtc's (loss percent ``q``, mean burst length ``L``) is the simple Gilbert case ``1-h = 1``,
  ``1-k = 0``, ``p = q/(1-q)/L``, ``r = 1/L``: the chain is then "was the previous packet lost". It
  exists only when ``p <= 1``; as libwebrtc we demand ``L > q/(1-q)`` (and ``L >= 1``).
* 4-state (Salsano et al., "GI" model, netem ``loss state p13 p31 p32 p23 p14``): states 1 = received
  in a gap, 2 = received in a burst, 3 = lost in a burst, 4 = isolated loss in a gap. Each packet
  moves the chain first; it is lost when the new state is 3 or 4. Starts in state 1.
"""

from __future__ import annotations

import numpy as np

from translab.errors import ConfigError
from translab.link.base import as_inputs, check_probability, identity


def markov_loss_stats(
    transition: np.ndarray, loss_prob: np.ndarray, initial: int = 0
) -> tuple[float, float]:
    """Long-run loss rate and mean loss-burst length (packets) of a hidden-Markov loss process.

    ``transition[i, j]`` is P(next state j | state i); a packet in state ``i`` is lost with
    probability ``loss_prob[i]`` independently of the move; the chain starts in ``initial``. Burst
    length = run of consecutive losses. Returns ``(rate, mean_burst)``; ``mean_burst`` is ``inf`` when bursts never end and
    ``nan`` when nothing is ever lost.
    """
    P = np.asarray(transition, dtype=float)
    lp = np.asarray(loss_prob, dtype=float)
    m = P.shape[0]
    # Long-run state occupancy starting from state ``initial``: the limit of the lazy chain
    # (P + I)/2, which has P's stationary laws, is aperiodic, and picks the right closed class
    # when the chain is reducible (e.g. states that are never reached).
    A = (P + np.eye(m)) / 2.0
    for _ in range(64):  # A ** (2 ** 64)
        A = A @ A
        A /= A.sum(axis=1, keepdims=True)
    pi = A[initial].clip(0.0, None)
    pi /= pi.sum()
    rate = float(pi @ lp)
    if rate <= 0.0:
        return 0.0, float("nan")
    end_rate = float((pi * lp) @ (P @ (1.0 - lp)))
    return rate, (float("inf") if end_rate <= 0.0 else rate / end_rate)


class NoLoss:
    """Passes every packet unchanged (the identity model)."""

    def reset(self) -> None:
        """Nothing to forget."""

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every packet once, at its input time."""
        t, _ = as_inputs(send_s, size)
        return identity(t.size), t.copy()

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[t_s]``."""
        return [t_s]

    def expected(self) -> tuple[float, float]:
        """(loss rate, mean burst length): (0, nan)."""
        return 0.0, float("nan")

    def __repr__(self) -> str:
        return "NoLoss()"


class BernoulliLoss:
    """Each packet is lost independently with probability ``p`` (netem ``loss p``)."""

    def __init__(self, p: float) -> None:
        self.p = check_probability("loss.p", p)

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surviving packets at their input time; one uniform per packet."""
        t, _ = as_inputs(send_s, size)
        keep = rng.random(t.size) >= self.p
        idx = np.flatnonzero(keep).astype(np.int64)
        return idx, t[idx]

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[t_s]`` or ``[]`` if lost (one uniform)."""
        return [t_s] if rng.random() >= self.p else []

    def expected(self) -> tuple[float, float]:
        """(loss rate, mean burst length in packets): ``(p, 1/(1-p))``."""
        return self.p, (float("inf") if self.p >= 1.0 else 1.0 / (1.0 - self.p))

    def __repr__(self) -> str:
        return f"BernoulliLoss(p={self.p!r})"


class GilbertElliottLoss:
    """Two-state Gilbert-Elliott loss in netem's parameters (``loss gemodel p r 1-h 1-k``).

    ``p``: P(Good -> Bad) per packet; ``r``: P(Bad -> Good); ``one_minus_h``: loss probability in
    Bad (default 1); ``one_minus_k``: loss probability in Good (default 0). All in [0, 1].
    Use :meth:`from_loss_burst` for libwebrtc's (loss percent, mean burst length).
    """

    def __init__(self, p: float, r: float, one_minus_h: float = 1.0, one_minus_k: float = 0.0) -> None:
        self.p = check_probability("loss.p", p)
        self.r = check_probability("loss.r", r)
        self.one_minus_h = check_probability("loss.one_minus_h", one_minus_h)
        self.one_minus_k = check_probability("loss.one_minus_k", one_minus_k)
        self._bad = False

    @classmethod
    def from_loss_burst(cls, loss_percent: float, avg_burst_length: float) -> "GilbertElliottLoss":
        """libwebrtc's bursty loss: ``loss_percent`` (0 to 100) with mean burst ``avg_burst_length``
        (packets). Valid only when ``avg_burst_length > q/(1-q)`` with ``q = loss_percent/100``
        (and >= 1): a shorter mean burst cannot reach that loss rate."""
        try:
            q_pct = float(loss_percent)
        except (TypeError, ValueError):
            raise ConfigError("loss.loss_percent", loss_percent, "0 to 100 (percent)") from None
        if not (0.0 <= q_pct < 100.0):
            raise ConfigError("loss.loss_percent", loss_percent, "0 to below 100 (percent)")
        try:
            L = float(avg_burst_length)
        except (TypeError, ValueError):
            raise ConfigError("loss.avg_burst_length", avg_burst_length, "a number >= 1 (packets)") from None
        if not (L >= 1.0) or not np.isfinite(L):
            raise ConfigError("loss.avg_burst_length", avg_burst_length, "a number >= 1 (packets)")
        q = q_pct / 100.0
        min_len = q / (1.0 - q)
        if q > 0.0 and not (L > min_len):
            raise ConfigError(
                "loss.avg_burst_length",
                avg_burst_length,
                f"more than {min_len:.4g} packets for {q_pct:g} % loss (L > q/(1-q))",
            )
        return cls(p=q / (1.0 - q) / L, r=1.0 / L, one_minus_h=1.0, one_minus_k=0.0)

    def reset(self) -> None:
        """Back to the Good state."""
        self._bad = False

    def _states(self, u_move: np.ndarray) -> np.ndarray:
        """State each packet finds (True = Bad), given one transition uniform per packet.

        Vectorised two-state chain: with one uniform ``u`` per step, ``G->B`` iff ``u < p`` and
        ``B->B`` iff ``u < 1-r``; each step either sets the state, holds it or flips it, so the
        state is the last set value xor the parity of flips since.
        """
        n = u_move.size
        to_bad_from_good = u_move < self.p
        stay_bad = u_move < 1.0 - self.r
        is_set = to_bad_from_good == stay_bad
        flip = to_bad_from_good & ~stay_bad
        steps = np.arange(n)
        last_set = np.maximum.accumulate(np.where(is_set, steps, -1))
        cflip = np.cumsum(flip)
        has_set = last_set >= 0
        ls = np.where(has_set, last_set, 0)
        base = np.where(has_set, to_bad_from_good[ls], self._bad)
        flips = np.where(has_set, cflip - cflip[ls], cflip)
        after = base ^ (flips % 2 == 1)  # state after step k
        found = np.empty(n, dtype=bool)
        found[0] = self._bad
        found[1:] = after[:-1]
        self._bad = bool(after[-1])
        return found

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surviving packets at their input time; two uniforms per packet (loss, transition)."""
        t, _ = as_inputs(send_s, size)
        n = t.size
        if n == 0:
            return identity(0), t.copy()
        u = rng.random((n, 2))
        bad = self._states(u[:, 1])
        lost = u[:, 0] < np.where(bad, self.one_minus_h, self.one_minus_k)
        idx = np.flatnonzero(~lost).astype(np.int64)
        return idx, t[idx]

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[t_s]`` or ``[]`` if lost (two uniforms: loss, then transition)."""
        u_loss = rng.random()
        u_move = rng.random()
        bad = self._bad
        lost = u_loss < (self.one_minus_h if bad else self.one_minus_k)
        self._bad = bool(u_move < 1.0 - self.r) if bad else bool(u_move < self.p)
        return [] if lost else [t_s]

    def expected(self) -> tuple[float, float]:
        """(long-run loss rate, mean burst length in packets) from the chain's parameters."""
        P = np.array([[1.0 - self.p, self.p], [self.r, 1.0 - self.r]])
        return markov_loss_stats(P, np.array([self.one_minus_k, self.one_minus_h]))

    def __repr__(self) -> str:
        return (
            f"GilbertElliottLoss(p={self.p!r}, r={self.r!r}, one_minus_h={self.one_minus_h!r}, "
            f"one_minus_k={self.one_minus_k!r})"
        )


class FourStateLoss:
    """netem's 4-state Markov loss (``loss state p13 p31 p32 p23 p14``), see the module docstring.

    Defaults when omitted (ours): ``p31 = 1 - p13``, ``p32 = 0``, ``p23 = 0``, ``p14 = 0`` (which
    reduces to a Gilbert chain). Requires ``p13 + p14 <= 1`` and ``p31 + p32 <= 1``.
    """

    def __init__(
        self,
        p13: float,
        p31: float | None = None,
        p32: float = 0.0,
        p23: float = 0.0,
        p14: float = 0.0,
    ) -> None:
        self.p13 = check_probability("loss.p13", p13)
        self.p31 = check_probability("loss.p31", 1.0 - self.p13 if p31 is None else p31)
        self.p32 = check_probability("loss.p32", p32)
        self.p23 = check_probability("loss.p23", p23)
        self.p14 = check_probability("loss.p14", p14)
        if self.p13 + self.p14 > 1.0 + 1e-12:
            raise ConfigError("loss.p13+p14", self.p13 + self.p14, "at most 1 (leaving state 1)")
        if self.p31 + self.p32 > 1.0 + 1e-12:
            raise ConfigError("loss.p31+p32", self.p31 + self.p32, "at most 1 (leaving state 3)")
        self._state = 0  # 0-based: 0 rx-gap, 1 rx-burst, 2 lost-burst, 3 lost-isolated

    def reset(self) -> None:
        """Back to state 1 (received, in a gap)."""
        self._state = 0

    def transition_matrix(self) -> np.ndarray:
        """4x4 transition matrix in state order 1, 2, 3, 4."""
        return np.array(
            [
                [1.0 - self.p13 - self.p14, 0.0, self.p13, self.p14],
                [0.0, 1.0 - self.p23, self.p23, 0.0],
                [self.p31, self.p32, 1.0 - self.p31 - self.p32, 0.0],
                [1.0, 0.0, 0.0, 0.0],
            ]
        )

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surviving packets at their input time; one uniform per packet (the move)."""
        t, _ = as_inputs(send_s, size)
        n = t.size
        if n == 0:
            return identity(0), t.copy()
        u = rng.random(n).tolist()
        p13, p14, p23, p31, p32 = self.p13, self.p14, self.p23, self.p31, self.p32
        a1, a2 = p14, p14 + p13
        b1, b2 = p32, p32 + p31
        s = self._state
        lost = np.zeros(n, dtype=bool)
        for k, x in enumerate(u):
            if s == 0:
                s = 3 if x < a1 else (2 if x < a2 else 0)
            elif s == 1:
                s = 2 if x < p23 else 1
            elif s == 2:
                s = 1 if x < b1 else (0 if x < b2 else 2)
            else:
                s = 0
            if s >= 2:
                lost[k] = True
        self._state = s
        idx = np.flatnonzero(~lost).astype(np.int64)
        return idx, t[idx]

    def apply_one(self, t_s: float, size: int, rng: np.random.Generator) -> list[float]:
        """One packet: ``[t_s]`` or ``[]`` if lost (one uniform)."""
        _, kept = self.apply(np.array([t_s]), np.array([size]), rng)
        out: list[float] = kept.tolist()
        return out

    def expected(self) -> tuple[float, float]:
        """(long-run loss rate, mean burst length in packets). A packet is lost when the chain
        enters state 3 or 4, i.e. the loss is a function of the state after the move."""
        return markov_loss_stats(self.transition_matrix(), np.array([0.0, 0.0, 1.0, 1.0]))

    def __repr__(self) -> str:
        return (
            f"FourStateLoss(p13={self.p13!r}, p31={self.p31!r}, p32={self.p32!r}, "
            f"p23={self.p23!r}, p14={self.p14!r})"
        )
