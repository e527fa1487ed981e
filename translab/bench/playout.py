"""Playout speed: wall time (s) to play out a 10 s call per policy and concealment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from translab.bench import time_s
from translab.playout import play
from translab.playout.synthetic import packet_trace, voiced


def _best(trace: pd.DataFrame, policy: str, conceal: str, repeats: int = 3) -> float:
    """Best-of-``repeats`` wall time (s) of playing ``trace`` out."""
    return time_s(lambda: play(trace, policy=policy, conceal=conceal), repeats, stat="best")


def run() -> dict:
    """Best-of-3 seconds to play a 10 s, 20 ms-frame call with 3 % loss and 10 ms jitter."""
    rng = np.random.default_rng(1)
    out: dict[str, float] = {}
    for codec, rate, conceals in (("opus", 48000, ("opus-fec",)), ("pcm16", 16000, ("pcm-plc", "zero"))):
        x = voiced(10.0, rate)
        n = len(x) // (rate // 50)
        lost = np.flatnonzero(rng.random(n) < 0.03)
        tr = packet_trace(x, rate, codec=codec, delay_s=0.03 + rng.exponential(0.01, n), lost=lost,
                          fec=codec == "opus", loss_perc=10)
        for policy in ("fixed:60", "adaptive", "elastic", "aiortc-stock"):
            for conceal in conceals:
                key = f"{codec}_{policy.replace(':', '')}_{conceal}_10s_s"
                out[key] = round(_best(tr, policy, conceal), 4)
    return out
