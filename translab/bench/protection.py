"""Cost and gain of loss protection (NACK + RTX, RED distance 1 and 2, adaptive bitrate, Opus FEC
with measured loss) against the default WebRTC sender, per profile: paired differences over 5 seeds
x every shipped clip with 95 % bootstrap intervals (:func:`translab.lab.protection.cost_gain`).
About 360 simulated calls with PLCMOS, PESQ-WB and STOI: about 6 CPU-minutes.

Keys: ``<profile>/<option>`` -> ``n`` pairs and, per figure, ``<fig>_base`` (baseline mean),
``<fig>_diff`` (mean of option - baseline) and ``<fig>_ci95`` ([lo, hi]). Units: kbit/s, ms,
fractions (loss), scores.
"""

from __future__ import annotations

import math
from typing import Any

from translab.lab.protection import FIGURES, CostGainPlan, cost_gain


def _r(x: float, nd: int = 4) -> float | None:
    return None if x != x or math.isinf(x) else round(float(x), nd)


def run(plan: CostGainPlan | None = None) -> dict[str, Any]:
    """The cost/gain table as JSON-ready figures (see the module docstring)."""
    plan = plan or CostGainPlan()
    _, summary = cost_gain(plan)
    out: dict[str, Any] = {"seeds": list(plan.seeds), "clips": plan.clips or "all shipped",
                           "baseline": "Opus FEC 10 %, adaptive playout, opus-fec concealment",
                           "bitrate_bps": plan.bitrate, "bitrates_bps": dict(plan.bitrates)}
    for row in summary.to_dict("records"):
        d: dict[str, Any] = {"n": int(row["n"])}
        for f in FIGURES:
            d[f"{f}_base"] = _r(row[f"{f}_base"])
            d[f"{f}_diff"] = _r(row[f"{f}_diff"])
            d[f"{f}_ci95"] = [_r(row[f"{f}_lo"]), _r(row[f"{f}_hi"])]
        out[f"{row['profile']}/{row['option']}"] = d
    return out
