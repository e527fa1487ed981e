"""What each loss-protection option costs and buys, as paired comparisons over seeds x clips.

:func:`cost_gain` simulates every (profile, seed, clip) once without protection and once per
option, with everything else equal (same seed, clip, bitrate, playout, concealment), and reports per
profile and option the mean paired difference option - baseline of each figure with its 95 %
interval over the seed x clip pairs (:func:`translab.metrics.statistics.paired`):

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
from translab.metrics import statistics as st
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


def summarise_pairs(calls: pd.DataFrame, keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per profile and option: n pairs, the baseline mean and the mean paired difference with its
    95 % interval (:func:`translab.metrics.statistics.paired`) for every figure (columns ``<fig>_base``,
    ``<fig>_diff``, ``_lo``, ``_hi``). ``calls`` may carry more key columns (e.g. ``bitrate_bps``):
    pass them as ``keys``; a baseline is paired only with options of the same keys."""
    key = ["profile", *keys, "seed", "clip"]
    base = calls[calls["option"] == "none"].drop_duplicates(key).set_index(key)
    out = []
    for grp, g in calls[calls["option"] != "none"].groupby(["profile", *keys, "option"], sort=False):
        g = g.drop_duplicates(key).set_index(key)
        g = g[g.index.isin(base.index)]
        b = base.loc[g.index]
        row: dict[str, Any] = dict(zip(["profile", *keys, "option"], grp))
        row["n"] = len(g)
        for f in FIGURES:
            if f not in g.columns:
                row.update({f"{f}_base": math.nan, f"{f}_diff": math.nan, f"{f}_lo": math.nan, f"{f}_hi": math.nan})
                continue
            e = st.paired(g[f].to_numpy(dtype=float), b[f].to_numpy(dtype=float))
            row.update({f"{f}_base": float(np.nanmean(b[f].to_numpy(dtype=float))) if b[f].notna().any() else math.nan,
                        f"{f}_diff": e.value, f"{f}_lo": e.lo, f"{f}_hi": e.hi})
        out.append(row)
    return pd.DataFrame(out)


#: Result-row columns that say which protection a call used (CallConfig fields).
PROTECTION_COLUMNS = ("nack", "red", "abr", "fec_loss")
#: Result-row columns that must be equal on both sides of a pair besides profile, seed and clip.
PAIR_KEYS = ("bitrate_bps", "fec", "frame_ms", "playout", "conceal")


def option_of(nack: Any, red: Any, abr: Any, fec_loss: Any) -> str:
    """The option label of a call (the names of :data:`OPTIONS`, joined by "+"; "none" without any)."""
    parts = (["nack"] if _on(nack) else []) + ([f"red{int(red)}"] if _num(red) > 0 else []) \
        + (["abr"] if _on(abr) else []) + (["fec_measured"] if str(fec_loss) == "measured" else [])
    return "+".join(parts) or "none"


def _on(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_)) and bool(v) or str(v).lower() == "true"


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(x) else x


def calls_from_results(df: pd.DataFrame) -> pd.DataFrame:
    """The finished simulated WebRTC rows of a results table (``translab run``) as :func:`run_calls`'s
    frame: profile (short name), option (:func:`option_of`), seed, clip, the :data:`PAIR_KEYS`, the
    figures and ``cell_hash``; empty when the table has no protection columns or no protected call."""
    need = {"transport", "profile", "seed", "clip", *PROTECTION_COLUMNS}
    if not need <= set(df.columns):
        return pd.DataFrame()
    d = df[(df["transport"] == "webrtc")]
    if "status" in d.columns:
        d = d[d["status"] == "ok"]
    if "mode" in d.columns:
        d = d[d["mode"].fillna("simulate") == "simulate"]
    if not len(d):
        return pd.DataFrame()
    out = pd.DataFrame({
        "profile": d["profile"].map(lambda p: str(p).rsplit("/", 1)[-1].removesuffix(".toml")),
        "option": [option_of(*r) for r in d[list(PROTECTION_COLUMNS)].itertuples(index=False)],
        "seed": d["seed"], "clip": d["clip"]})
    for k in PAIR_KEYS:
        out[k] = d[k].astype(str) if k in d.columns else ""
    for f in FIGURES:
        out[f] = pd.to_numeric(d[f], errors="coerce") if f in d.columns else math.nan
    out["cell_hash"] = d["cell_hash"] if "cell_hash" in d.columns else ""
    if not (out["option"] != "none").any():
        return pd.DataFrame()
    return out.reset_index(drop=True)


def cost_gain(plan: CostGainPlan | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``plan`` (default: every option on four profiles, 5 seeds x every clip) and return
    ``(calls, summary)`` (see :func:`run_calls` and :func:`summarise_pairs`)."""
    calls = run_calls(plan or CostGainPlan())
    return calls, summarise_pairs(calls)
