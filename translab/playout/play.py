"""The playout entry point: :func:`play` picks the jitter-buffer policy (each a module built on
:class:`translab.playout.receiver.Receiver`), so the base receiver never imports its policies."""

from __future__ import annotations

from typing import Any

import pandas as pd

from translab.errors import ConfigError
from translab.playout.adaptive import play_adaptive
from translab.playout.aiortc_stock import play_aiortc_stock
from translab.playout.concealment import check_conceal
from translab.playout.elastic import play_elastic
from translab.playout.fixed_delay import play_fixed
from translab.playout.receiver import PlayoutResult, parse_policy


def play(trace: pd.DataFrame, *, policy: str, conceal: str, **options: Any) -> PlayoutResult:
    """Play ``trace`` out with jitter-buffer ``policy`` and concealment ``conceal``.

    ``policy``: ``"fixed:<ms>"``, ``"adaptive"``, ``"elastic"`` or ``"aiortc-stock"``.
    ``conceal``: ``"opus-plc"``, ``"opus-fec"`` (Opus only), ``"zero"``, ``"repeat"``, ``"pcm-plc"``
    (PCM only). ``aiortc-stock`` reproduces aiortc, which has no concealment: ``conceal`` is checked
    but not used there. ``options`` go to the policy (``adaptive``: ``config`` a
    :class:`~translab.playout.delay_manager.DelayManagerConfig`; ``elastic``: ``loss_wait_s``).
    Deterministic: the same trace gives identical audio, frames and stats.
    """
    name, target_ms = parse_policy(policy)
    codec = str(trace.attrs.get("codec", ""))
    check_conceal(conceal, codec)
    allowed_options = {"fixed": (), "adaptive": ("config",), "elastic": ("loss_wait_s",), "aiortc-stock": ()}[name]
    for key in options:
        if key not in allowed_options:
            raise ConfigError("option", key, f"{', '.join(allowed_options) or 'none'} for policy {name}")
    if name == "fixed":
        return play_fixed(trace, target_ms=float(target_ms), conceal=conceal, policy=policy)  # type: ignore[arg-type]
    if name == "adaptive":
        return play_adaptive(trace, conceal=conceal, policy=policy, **options)
    if name == "elastic":
        return play_elastic(trace, conceal=conceal, policy=policy, **options)
    return play_aiortc_stock(trace, conceal=conceal, policy=policy)
