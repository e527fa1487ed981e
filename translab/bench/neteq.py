"""translab's adaptive playout against Chromium's NetEq on the same arrival traces.

Each run is a browser peer call (``run_call(cfg, BrowserEngine())``, translab.call.browser):
translab sends a clip to headless Chromium through the emulator; NetEq's W3C inbound-rtp counters
(over the media window) are compared with translab's adaptive playout run on the emulator's delivery
log of the same packets. Per profile: the mean NetEq and model figures over the seeds, the mean gap
and its 95 % confidence interval (paired: same packets, same arrival times;
translab.metrics.statistics), the gap in % of NetEq's
mean, and the per-call figures (``calls``); the quality heard (PESQ-WB, STOI of the browser's
recording and of translab's playout, against the clip). Also the browser call's set-up times (ms).
Skipped (``{"skipped": reason}``) without Chromium / playwright.

Real time: about 20-30 s per call on a shared 2-core machine (browser start included).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: (profile, seeds) measured; clip cut to DURATION_S
PROFILES = ("clean-lan", "hotel-wifi", "4g", "4g-handoff")
SEEDS = (1, 2, 3)
DURATION_S = 8.0
#: quality of what was heard, scored against the clip: the browser's recording vs translab's playout
HEARD = ("pesq_wb", "stoi")
FIGS = ("concealed_share", "mean_buffer_delay_ms", "mean_target_delay_ms", "jitter_ms", "accel_samples",
        "decel_samples", "concealment_events")


def compare(profiles: tuple[str, ...] = PROFILES, seeds: tuple[int, ...] = SEEDS,
            duration_s: float = DURATION_S, out_dir: str | None = None) -> dict[str, Any]:
    """Run the browser calls and summarise NetEq vs model per profile (see the module docstring).

    ``out_dir``: keep each call's artefacts in ``<out_dir>/<profile>-s<seed>`` (its ``down/`` holds the
    browser's arrival trace and NetEq's counters, so the model can be re-run on them offline), and
    the 1-minute load average at each call's start (``load1``)."""
    import os
    from pathlib import Path

    from translab.call import run_call
    from translab.call.browser import BrowserEngine
    from translab.config import CallConfig

    out: dict[str, Any] = {"duration_s": duration_s, "seeds": list(seeds), "clip": None}
    setups: list[float] = []
    launches: list[float] = []
    for profile in profiles:
        rows: list[dict[str, Any] | None] = []
        for seed in seeds:
            cfg = CallConfig(transport="webrtc", profile=profile, seed=seed, duration_s=duration_s, metrics=HEARD)
            load1 = os.getloadavg()[0]
            r = run_call(cfg, BrowserEngine(), Path(out_dir) / f"{profile}-s{seed}" if out_dir else None)
            s = {**r.summary, "load1": load1}
            if s.get("status") != "ok" or "down_neteq_concealed_share" not in s:
                rows.append(None)
                continue
            out["clip"] = s.get("clip")
            rows.append(s)
            if "setup_connected_ms" in s and "setup_start_ms" in s:
                setups.append(s["setup_connected_ms"] - s["setup_start_ms"])
            launches.append(s.get("setup_browser_launch_only_ms", math.nan))
        ok = [s for s in rows if s is not None]
        prof = {"n": len(ok), "failed": len(rows) - len(ok), **summarise(ok)}
        out[profile] = prof
    out["setup_page_to_connected_ms_median"] = float(np.median(setups)) if setups else math.nan
    out["browser_launch_ms_median"] = float(np.nanmedian(launches)) if launches else math.nan
    return out


def summarise(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """One profile's figures from its calls' summaries (``down_neteq_<fig>``, ``down_model_<fig>``,
    ``down_browser_<q>``, ``down_model_<q>``, ``down_loss_rate``, ``seed``, ``load1``): per figure the
    mean NetEq and model values, the paired gap model - NetEq (mean, 95 % interval ``_lo``/``_hi``:
    translab.metrics.statistics.paired) and the gap in % of NetEq's mean; per quality metric the same
    for model - browser; the per-call figures (``calls``)."""
    from translab.metrics import statistics as st

    def col(key: str) -> np.ndarray:
        return np.array([c.get(key, math.nan) for c in calls], dtype=float)

    prof: dict[str, Any] = {}
    for pairs in ([(f, "neteq", "model") for f in FIGS] + [(q, "browser", "model") for q in HEARD]):
        f, ref, mine = pairs
        r = col(f"down_{ref}_{f}")
        m = col(f"down_{mine}_{f}")
        gap = st.paired(m, r)
        ref_mean = float(np.nanmean(r)) if np.isfinite(r).any() else math.nan
        prof[f"{ref}_{f}"] = ref_mean
        prof[f"model_{f}"] = float(np.nanmean(m)) if np.isfinite(m).any() else math.nan
        prof[f"gap_{f}"], prof[f"gap_{f}_lo"], prof[f"gap_{f}_hi"] = gap.value, gap.lo, gap.hi
        if ref == "neteq":
            prof[f"gap_{f}_pct"] = 100.0 * gap.value / ref_mean if ref_mean else math.nan
    loss = col("down_loss_rate")
    prof["loss_rate"] = float(np.nanmean(loss)) if np.isfinite(loss).any() else math.nan
    # per call (seed order; failed calls left out), so runs can be pooled and re-tested
    prof["calls"] = [{"seed": c.get("seed"), "loss_rate": c.get("down_loss_rate"), "load1": c.get("load1"),
                      **{f"{w}_{f}": c.get(f"down_{w}_{f}") for f in FIGS for w in ("neteq", "model")}}
                     for c in calls]
    return prof


def replay(out_dir: str) -> dict[str, Any]:
    """The current adaptive playout re-run on the calls :func:`compare` kept in ``out_dir``
    (``<profile>-s<seed>/down``: the browser's arrival trace and NetEq's counters), summarised as
    :func:`compare` does: a model change is measured against the same NetEq figures, paired call by
    call, without running a browser again. Quality heard is not re-scored (model quality NaN)."""
    import json
    from pathlib import Path

    from translab import trace as trace_mod
    from translab.playout import neteq_check
    from translab.playout.play import play

    by_profile: dict[str, list[dict[str, Any]]] = {}
    for down in sorted(Path(out_dir).glob("*-s*/down")):
        profile, _, seed = down.parent.name.rpartition("-s")
        summ = json.loads((down / "summary.json").read_text())
        result = play(trace_mod.load(down / "trace.parquet"), policy="adaptive", conceal=summ["conceal"])
        model = neteq_check.model_figures(result.stats)
        by_profile.setdefault(profile, []).append(
            {"seed": int(seed), "down_loss_rate": summ.get("loss_rate"),
             **{f"down_neteq_{f}": summ.get(f"neteq_{f}") for f in FIGS},
             **{f"down_model_{f}": model[f] for f in FIGS}})
    return {profile: {"n": len(calls), **summarise(calls)} for profile, calls in by_profile.items()}


def run() -> dict[str, Any]:
    """The NetEq comparison at the default profiles and seeds (skipped without a browser)."""
    from translab.transport.chromium import unavailable_reason

    reason = unavailable_reason()
    if reason:
        return {"skipped": reason}
    return compare()
