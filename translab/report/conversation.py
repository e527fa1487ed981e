"""Live against simulated voice-agent conversations (data/experiments/conversation_live.toml): does a
conversation run for real (websockets and aiortc through the in-process emulator, in real time) give
the turn latency its simulation predicts? The issue's criterion: turn-latency p50 within
:data:`AGREE_MS`.

Each live conversation cell also runs the simulation of the same cell (same profile, seed, script
and think-time draws; translab.lab.cells.conversation_cell), so each live row pairs with its own
simulation: ``live_minus_sim_p50_ms`` = its ``turn_latency_p50_ms`` - ``sim_turn_latency_p50_ms``
(the simulated row of the same seed in the same run holds the same simulated figure).

* :func:`agreement_table`: per topology, the calls, each side's mean p50, the mean paired difference
  live - sim with its 95 % interval (:func:`translab.metrics.statistics.paired`), the share of calls
  within :data:`AGREE_MS` with its interval (:func:`translab.metrics.statistics.estimate` of the
  0/1 outcome), the largest miss, and the calls during which the host stalled the event loop;
* :func:`agreement_figure`: every call's live - sim p50 per topology and profile, the +-20 ms band
  and each topology's mean with its interval;
* :func:`measured_rows`: the checked-in run (:data:`MEASURED`), which the report's "Conversation"
  section shows when the run it reports has no live conversation cells.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from translab.metrics import statistics as st
from translab.paths import DATA_DIR
from translab.report.claims import conversation_rows, profile_name

#: The issue's agreement criterion: live and simulated turn-latency p50 within this (ms).
AGREE_MS = 20.0
#: The checked-in live-vs-simulated conversations (see data/measured/README.md).
MEASURED = DATA_DIR / "measured" / "conversation_live.parquet"
TOPOLOGIES = ("direct-ws", "webrtc-gateway", "twilio")
PROFILE_MARKERS = ("o", "s", "^", "D", "v")


def live_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The finished live conversation rows that carry their simulation's p50 (empty when none)."""
    d = conversation_rows(df)
    if not len(d) or "sim_turn_latency_p50_ms" not in d.columns or "mode" not in d.columns:
        return d.iloc[0:0]
    return d[(d["mode"] == "live") & d["sim_turn_latency_p50_ms"].notna()]


def measured_rows() -> pd.DataFrame:
    """The checked-in results table of data/experiments/conversation_live.toml (:data:`MEASURED`);
    empty when the file is absent."""
    return pd.read_parquet(MEASURED) if MEASURED.exists() else pd.DataFrame()


def _diffs(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Live and simulated p50 (ms) of the rows, pairs with a NaN on either side dropped."""
    a = pd.to_numeric(g["turn_latency_p50_ms"], errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(g["sim_turn_latency_p50_ms"], errors="coerce").to_numpy(dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def agreement_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per topology (live conversation rows, :func:`live_rows`): ``profiles``, ``n`` calls,
    ``live p50 (ms)`` and ``sim p50 (ms)`` (means over the calls), ``live - sim (ms)`` (the mean paired
    difference with its 95 % interval, an Estimate), ``within 20 ms`` (share of calls with
    |live - sim| <= :data:`AGREE_MS`, an Estimate), ``max |live - sim| (ms)``, ``verdict``
    (:func:`translab.metrics.statistics.judge` of the mean difference within +-:data:`AGREE_MS`) and
    ``stalled calls`` (calls during whose script the host stalled the event loop for over 20 ms at
    least once, ``host_stalls`` > 0). Empty without live conversation rows."""
    d = live_rows(df)
    rows = []
    for topo in TOPOLOGIES:
        g = d[d["topology"] == topo]
        live, sim = _diffs(g)
        if not len(live):
            continue
        diff = st.paired(live, sim)
        within = st.estimate((np.abs(live - sim) <= AGREE_MS).astype(float))
        stalls = pd.to_numeric(g.get("host_stalls", pd.Series(np.nan, index=g.index)), errors="coerce")
        rows.append({"topology": topo, "profiles": ", ".join(sorted(set(g["profile"].map(profile_name)))),
                     "n": len(live), "live p50 (ms)": float(live.mean()), "sim p50 (ms)": float(sim.mean()),
                     "live - sim (ms)": diff, "within 20 ms": within,
                     "max |live - sim| (ms)": float(np.abs(live - sim).max()),
                     "verdict": st.judge(diff, AGREE_MS, "within"), "stalled calls": int((stalls > 0).sum())})
    return pd.DataFrame(rows)


def agreement_words(t: pd.DataFrame) -> str:
    """One sentence per topology of :func:`agreement_table`: the mean difference with its interval,
    how many calls were within 20 ms, the verdict on "within 20 ms", and how many calls the host
    stalled."""
    out = []
    for _, r in t.iterrows():
        diff, within = r["live - sim (ms)"], r["within 20 ms"]
        k = round(within.value * r["n"])
        out.append(f"{r['topology']}: live - simulated turn-latency p50 {diff.text('ms', 1, signed=True)}, "
                   f"{k} of {r['n']} calls within {AGREE_MS:g} ms (largest miss "
                   f"{r['max |live - sim| (ms)']:.0f} ms; {r['stalled calls']} of {r['n']} calls with a host "
                   f"stall); mean agreement within {AGREE_MS:g} ms: {r['verdict']}.")
    return " ".join(out)


def agreement_figure(df: pd.DataFrame) -> Figure | None:
    """Every live call's turn-latency p50 minus its simulation's (ms), per topology (x) and caller
    access profile (marker; black edge: no host stall while the script ran), the +-:data:`AGREE_MS`
    band shaded, and each topology's mean paired difference with its 95 % interval (black bar). None
    without live conversation rows."""
    d = live_rows(df)
    t = agreement_table(d)
    if not len(t):
        return None
    fig = Figure(figsize=(7.5, 3.8), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    topos = list(t["topology"])
    profs = sorted(set(d["profile"].map(profile_name)))
    ax.axhspan(-AGREE_MS, AGREE_MS, color="#2ca02c", alpha=0.12, label=f"within +-{AGREE_MS:g} ms")
    ax.axhline(0, color="0.5", lw=0.8)
    width = 0.5 / max(1, len(profs))
    for j, p in enumerate(profs):
        for i, topo in enumerate(topos):
            g = d[(d["topology"] == topo) & (d["profile"].map(profile_name) == p)]
            g = g[pd.to_numeric(g["turn_latency_p50_ms"], errors="coerce").notna()
                  & pd.to_numeric(g["sim_turn_latency_p50_ms"], errors="coerce").notna()]
            live, sim = _diffs(g)
            x = i - 0.3 + (j + 0.5) * width + np.linspace(-0.3, 0.3, max(1, len(live)))[:len(live)] * width
            calm = (pd.to_numeric(g.get("host_stalls", pd.Series(np.nan, index=g.index)), errors="coerce") == 0).to_numpy()
            for sel, edge in ((~calm, "none"), (calm, "k")):
                ax.scatter(x[sel], (live - sim)[sel], marker=PROFILE_MARKERS[j % len(PROFILE_MARKERS)], s=28,
                           alpha=0.75, color=f"C{j}", edgecolors=edge, linewidths=1.2,
                           label=p if i == 0 and edge == "none" else None)
    for i, r in enumerate(t.itertuples(index=False)):
        e = r[t.columns.get_loc("live - sim (ms)")]
        if math.isfinite(e.value):
            lo, hi = (e.lo, e.hi) if e.has_interval else (e.value, e.value)
            ax.errorbar([i + 0.35], [e.value], yerr=[[e.value - lo], [hi - e.value]], fmt="D", color="k",
                        capsize=4, label="mean [95 % CI]" if i == 0 else None)
    ax.set_xticks(range(len(topos)), topos)
    ax.set_ylabel("live - simulated turn-latency p50 (ms)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def section_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The rows the report's agreement part shows: the run's own live conversation rows, else the
    checked-in ones (:func:`measured_rows`); and whether they are the checked-in ones."""
    if len(live_rows(df)):
        return df, False
    return measured_rows(), True

