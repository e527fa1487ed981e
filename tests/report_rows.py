"""Hand-made results tables for the report tests: exact configurations (translab.report.claims
settings) on seeds x clips, with figures drawn from known distributions, so a verdict's expected
outcome is known."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from translab.report.claims import Setting

SEEDS = (1, 2, 3, 4, 5)
CLIPS = ("a", "b", "c", "d")


def cells(setting: Setting, profile: str, rng: np.random.Generator | None = None, **figures: Any) -> list[dict]:
    """One row per seed x clip of ``setting`` on ``profile``; each figure is a number (same in every
    cell) or a (mean, sd) pair drawn per cell, plus a clip effect shared by every setting when a
    figure is given as (mean, sd, clip_sd)."""
    rng = rng or np.random.default_rng(0)
    out = []
    clip_fx = {c: np.random.default_rng(i).normal() for i, c in enumerate(CLIPS)}
    for seed in SEEDS:
        for clip in CLIPS:
            r: dict[str, Any] = {"status": "ok", "mode": "simulate", "profile": profile, "seed": seed, "clip": clip,
                                 **dict(setting.values)}
            r["cell_hash"] = f"{setting.label}|{profile}|{seed}|{clip}"
            for k, v in figures.items():
                if isinstance(v, tuple):
                    r[k] = v[0] + rng.normal(0, v[1]) + (v[2] * clip_fx[clip] if len(v) > 2 else 0.0)
                else:
                    r[k] = v
            out.append(r)
    return out


def table(*groups: list[dict]) -> pd.DataFrame:
    """The rows of several :func:`cells` calls as one results table."""
    return pd.DataFrame([r for g in groups for r in g])
