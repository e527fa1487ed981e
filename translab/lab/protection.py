"""What each loss-protection option costs and buys, as paired comparisons over seeds x clips.

:func:`cost_gain` simulates every (profile, seed, clip) once without protection and once per
option, with everything else equal (same seed, clip, bitrate, playout, concealment), and reports per
profile and option the mean paired difference option - baseline of each figure with a 95 %
bootstrap interval (percentile method over the pairs, 2000 resamples, fixed seed):

- ``wire_kbps_up`` (media + RTCP + STUN on the uplink; retransmissions and RED included) and
  ``feedback_kbps_down`` (NACKs and feedback reports on the downlink), kbit/s;
- ``m2e_mean_ms`` and ``m2e_p95_ms`` (mouth-to-ear, ms): the delay added;
- ``effective_loss_rate`` (frames never heard from their own packet, FEC, a retransmission or RED),
  and ``loss_rate`` (what the network lost);
- ``plcmos``, ``pesq_wb``, ``stoi`` (quality gain; PESQ only with the optional package).

The baseline is translab's default WebRTC sender (Opus with in-band FEC at 10 % expected loss,
adaptive playout, Opus FEC then PLC at the receiver).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from translab.config import CallConfig
from translab.media.clips import list_clips
from translab.simulate import simulate

#: The options compared with the baseline, as CallConfig changes.
OPTIONS: dict[str, dict[str, Any]] = {
    "nack": {"nack": True},
    "red1": {"red": 1},
    "red2": {"red": 2},
    "abr": {"abr": True},
    "fec_measured": {"fec_loss": "measured"},
}
FIGURES = ("wire_kbps_up", "feedback_kbps_down", "m2e_mean_ms", "m2e_p95_ms", "loss_rate",
           "effective_loss_rate", "plcmos", "pesq_wb", "stoi")


def paired_bootstrap_ci(diff: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences ``diff`` with a 95 % percentile-bootstrap interval
    ``(mean, lo, hi)``; NaNs are left out; all NaN when nothing is left."""
    d = np.asarray(diff, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


@dataclass(frozen=True)
class CostGainPlan:
    """Which calls :func:`cost_gain` runs. ``bitrates``: Opus bit/s per profile (default
    ``bitrate``); ``duration_s``: cut the clips (None: whole clips)."""

    profiles: tuple[str, ...] = ("4g", "hotel-wifi", "sfu-10pct-loss", "capacity-drop")
    options: tuple[str, ...] = tuple(OPTIONS)
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    clips: tuple[str, ...] | None = None  # None: every shipped clip
    bitrate: int = 32000
    bitrates: tuple[tuple[str, int], ...] = (("capacity-drop", 64000),)
    metrics: tuple[str, ...] = ("plcmos", "pesq_wb", "stoi")
    duration_s: float | None = None


def run_calls(plan: CostGainPlan) -> pd.DataFrame:
    """One row per call: profile, option ("none" for the baseline), seed, clip and the figures."""
    clips = plan.clips or tuple(list_clips())
    metrics = tuple(plan.metrics)  # a metric whose package is missing gives empty values
    rates = dict(plan.bitrates)
    rows = []
    for profile in plan.profiles:
        base = CallConfig(profile=profile, bitrate=rates.get(profile, plan.bitrate), metrics=metrics,
                          duration_s=plan.duration_s)
        for seed in plan.seeds:
            for clip in clips:
                for option in ("none",) + tuple(plan.options):
                    cfg = dataclasses.replace(base, seed=seed, clip=clip, **OPTIONS.get(option, {}))
                    s = simulate(cfg).summary
                    rows.append({"profile": profile, "option": option, "seed": seed, "clip": clip,
                                 **{f: s.get(f, math.nan) for f in FIGURES}})
    return pd.DataFrame(rows)


def summarise_pairs(calls: pd.DataFrame) -> pd.DataFrame:
    """Per profile and option: n pairs, the baseline mean and the mean paired difference with its
    95 % bootstrap interval for every figure (columns ``<fig>_base``, ``<fig>_diff``, ``_lo``, ``_hi``)."""
    key = ["profile", "seed", "clip"]
    base = calls[calls["option"] == "none"].set_index(key)
    out = []
    for (profile, option), g in calls[calls["option"] != "none"].groupby(["profile", "option"], sort=False):
        g = g.set_index(key)
        b = base.loc[g.index]
        row: dict[str, Any] = {"profile": profile, "option": option, "n": len(g)}
        for f in FIGURES:
            d = g[f].to_numpy(dtype=float) - b[f].to_numpy(dtype=float)
            m, lo, hi = paired_bootstrap_ci(d)
            row.update({f"{f}_base": float(np.nanmean(b[f].to_numpy(dtype=float))) if b[f].notna().any() else math.nan,
                        f"{f}_diff": m, f"{f}_lo": lo, f"{f}_hi": hi})
        out.append(row)
    return pd.DataFrame(out)


def cost_gain(plan: CostGainPlan | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``plan`` (default: every option on four profiles, 5 seeds x every clip) and return
    ``(calls, summary)`` (see :func:`run_calls` and :func:`summarise_pairs`)."""
    calls = run_calls(plan or CostGainPlan())
    return calls, summarise_pairs(calls)
