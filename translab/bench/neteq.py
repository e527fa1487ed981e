"""translab's adaptive playout against Chromium's NetEq on the same arrival traces.

Each run is a browser peer call (``run_call(cfg, BrowserEngine())``, translab.call.browser):
translab sends a clip to headless Chromium through the emulator; NetEq's W3C inbound-rtp counters
(over the media window) are compared with translab's adaptive playout run on the emulator's delivery
log of the same packets. Per profile: the mean NetEq and model figures over the seeds, the mean gap
and its 95 % confidence interval (paired: same packets, same arrival times), the gap in % of NetEq's
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


def _ci95(x: np.ndarray) -> tuple[float, float]:
    """Mean and 95 % half-width (Student t) of ``x``."""
    from scipy import stats

    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan), math.nan
    return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


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
        prof: dict[str, Any] = {"n": len(ok), "failed": len(rows) - len(ok)}
        for f in FIGS:
            neteq = np.array([s[f"down_neteq_{f}"] for s in ok], dtype=float)
            model = np.array([s[f"down_model_{f}"] for s in ok], dtype=float)
            gap, half = _ci95(model - neteq)
            n_mean = float(np.nanmean(neteq)) if neteq.size else math.nan
            prof[f"neteq_{f}"] = n_mean
            prof[f"model_{f}"] = float(np.nanmean(model)) if model.size else math.nan
            prof[f"gap_{f}"] = gap
            prof[f"gap_{f}_ci95"] = half
            prof[f"gap_{f}_pct"] = 100.0 * gap / n_mean if n_mean else math.nan
        for q in HEARD:
            b = np.array([s.get(f"down_browser_{q}", math.nan) for s in ok], dtype=float)
            m = np.array([s.get(f"down_model_{q}", math.nan) for s in ok], dtype=float)
            gap, half = _ci95(m - b)
            prof[f"browser_{q}"] = float(np.nanmean(b)) if b.size else math.nan
            prof[f"model_{q}"] = float(np.nanmean(m)) if m.size else math.nan
            prof[f"gap_{q}"] = gap
            prof[f"gap_{q}_ci95"] = half
        prof["loss_rate"] = float(np.mean([s["down_loss_rate"] for s in ok])) if ok else math.nan
        # per call (seed order; failed calls left out), so runs can be pooled and re-tested
        prof["calls"] = [{"seed": s["seed"], "loss_rate": s["down_loss_rate"], "load1": s["load1"],
                          **{f"{w}_{f}": s[f"down_{w}_{f}"] for f in FIGS for w in ("neteq", "model")}}
                         for s in ok]
        out[profile] = prof
    out["setup_page_to_connected_ms_median"] = float(np.median(setups)) if setups else math.nan
    out["browser_launch_ms_median"] = float(np.nanmedian(launches)) if launches else math.nan
    return out


def run() -> dict[str, Any]:
    """The NetEq comparison at the default profiles and seeds (skipped without a browser)."""
    from translab.transport.chromium import unavailable_reason

    reason = unavailable_reason()
    if reason:
        return {"skipped": reason}
    return compare()
