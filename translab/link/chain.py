"""LinkChain: link models composed in sequence, one chain per direction.

A packet goes through ``models[0]``, then what comes out goes into ``models[1]`` at the time it left
``models[0]``, and so on; the chain's ``index`` maps every surviving copy back to the caller's input.
Profiles build their chains in this canonical order (per direction, up and down independently):

1. :class:`~translab.link.outage.Outage` (packets sent during a blackout are lost),
2. :class:`~translab.link.duplication.Duplication` (copies travel on independently),
3. capacity queue (:class:`~translab.link.capacity.CapacityQueue` or ``TraceCapacity``, drop-tail),
4. loss (Bernoulli, Gilbert-Elliott, 4-state, trace replay): after the queue, so a lost packet has
   used capacity, as in libwebrtc's SimulatedNetwork,
5. :class:`~translab.link.delay.Delay` (base + jitter, reorder switch) last, so that "no reordering"
   holds for what the receiver sees.

Randomness: each model gets its own child generator, spawned from the ``rng`` of the first
``apply`` after construction or ``reset()`` (``rng.spawn(len(models))``); later calls continue those
streams (the ``rng`` argument is then not used). So a model's draws never interleave with another's,
and packets fed one call at a time give exactly the batch result. Pass generators made from a
``SeedSequence`` (``np.random.default_rng(seed)`` or :func:`~translab.link.profiles.direction_rngs`).

Invariants: output rows are in input order (``index`` non-decreasing); every model's invariants
hold for its stage; an empty chain passes every packet unchanged.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence, cast

import numpy as np

from translab.errors import ConfigError
from translab.link.base import LinkModel, as_inputs, identity


class LinkChain:
    """Models applied in the given order (see the module docstring)."""

    def __init__(self, models: "Iterable[LinkModel]" = ()) -> None:
        self.models: list[LinkModel] = list(models)
        self._rngs: "list[np.random.Generator] | None" = None
        self._scalar = all(hasattr(m, "apply_one") for m in self.models)

    def reset(self) -> None:
        """Reset every model and unbind the child generators."""
        for m in self.models:
            m.reset()
        self._rngs = None

    def bind(self, rng: np.random.Generator) -> None:
        """Spawn one child generator per model from ``rng`` (done by the first ``apply``)."""
        if not isinstance(rng, np.random.Generator):
            raise ConfigError("rng", rng, "a numpy.random.Generator (e.g. from direction_rngs(seed))")
        self._rngs = list(rng.spawn(len(self.models))) if self.models else []

    def apply(
        self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surviving copies: (index into this call's input, arrival time in seconds), input order."""
        t, s = as_inputs(send_s, size)
        if self._rngs is None:
            self.bind(rng)
        if t.size == 1 and self._scalar:
            arr = self.apply_one(float(t[0]), int(s[0]), rng)
            return np.zeros(len(arr), dtype=np.int64), np.asarray(arr, dtype=np.float64)
        idx = identity(t.size)
        cur_t, cur_s = t, s
        for model, mrng in zip(self.models, self._rngs or ()):
            if cur_t.size == 0:
                break
            i, cur_t = model.apply(cur_t, cur_s, mrng)
            idx = idx[i]
            cur_s = cur_s[i]
        return idx, cur_t

    def apply_one(
        self, t_s: float, size: int, rng: np.random.Generator,
        streams: "Sequence[np.random.Generator] | None" = None,
    ) -> list[float]:
        """One packet (seconds, bytes): the arrival times of its surviving copies, in output order;
        identical to :meth:`apply` on one-element arrays. ``streams`` (one generator per model, e.g.
        from :meth:`side_streams`): draw this packet's variates from them instead of the chain's own,
        so extra packets (retransmissions) leave the draws of the others as in a call without them;
        the models' state (queue, loss-chain state) is shared either way."""
        if self._rngs is None:
            self.bind(rng)
        cur = [t_s]
        for model, mrng in zip(self.models, streams if streams is not None else (self._rngs or ())):
            one = getattr(model, "apply_one", None)
            nxt: list[float] = []
            for x in cur:
                if one is not None:
                    nxt += one(x, size, mrng)
                else:
                    nxt += model.apply(np.array([x]), np.array([size]), mrng)[1].tolist()
            cur = nxt
            if not cur:
                break
        return cur

    def side_streams(self, rng: np.random.Generator) -> list[np.random.Generator]:
        """One child generator per model spawned from ``rng``: a second set of streams for
        :meth:`apply_one`'s ``streams``."""
        return list(rng.spawn(len(self.models)))

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[LinkModel]:
        return iter(self.models)

    def __repr__(self) -> str:
        return "LinkChain([" + ", ".join(repr(m) for m in self.models) + "])"


def as_chain(model: "LinkChain | LinkModel | Sequence[LinkModel] | None") -> LinkChain:
    """A LinkChain from a chain, a single model, a list of models, or None (the ideal link)."""
    if model is None:
        return LinkChain()
    if isinstance(model, LinkChain):
        return model
    if isinstance(model, (list, tuple)):
        return LinkChain(model)
    return LinkChain([cast(LinkModel, model)])  # not a list or tuple: one model
