"""Figures of the report and the notebooks, each a function of the results table (and, for the
per-frame latency CDFs, the run directory holding each cell's ``frames.parquet``).

Every function returns a :class:`matplotlib.figure.Figure` (made without pyplot, so it works headless
and displays inline in Jupyter after ``%matplotlib inline``) or None when the
results hold no data for it. :data:`FIGURES` maps a figure key (used by the claims) to its function
and caption. Units: latency in ms, bit rates in kbit/s.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any, Callable

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # figures are built without pyplot: no GUI backend, no global state

from translab.metrics import statistics as st
from translab.report.claims import (OPUS_PLC, OPUS_ZERO, WEBRTC, WEBRTC_FIXED, WS_BINARY, WS_FIXED, WS_FIXED_ZERO,
                                    Setting, is_clean, ok_rows, opus_no_fec, profile_name, setup_rows)

TRANSPORT_COLORS = {"webrtc": "#1f77b4", "websocket": "#d62728"}
LINESTYLES = ["-", "--", ":", "-."]


def _fig(w: float = 7.5, h: float = 4.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


#: The two configurations the transport figures compare (one exact configuration per transport).
TRANSPORT_SETTINGS = (WEBRTC, WS_BINARY)


def transport_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the two exact transport configurations (:data:`TRANSPORT_SETTINGS`)."""
    parts = [s.rows(df) for s in TRANSPORT_SETTINGS]
    return pd.concat(parts) if any(len(p) for p in parts) else ok_rows(df).iloc[0:0]


def cell_label(row: pd.Series) -> str:
    """Short label of a cell's codec setting: "opus 24k 20ms", "pcm16 24kHz binary", "pcmu twilio-json"."""
    codec = row.get("codec")
    if codec == "opus":
        fec = " FEC" if bool(row.get("fec", False)) else ""
        return f"opus {int(row.get('bitrate_bps') or row.get('bitrate') or 0) // 1000}k{fec} {row.get('frame_ms', 20):g}ms"
    rate = int(row.get("sample_rate") or 0) // 1000
    return f"{codec} {rate}kHz {row.get('framing')} {row.get('frame_ms', 20):g}ms"


def load_frames(run_dir: str | Path | None, hashes: list[str], max_rows: int = 200_000,
                lookahead_ms: list[float] | None = None) -> pd.Series:
    """Mouth-to-ear (ms) of every played frame of the given cells (from frames.parquet), plus each
    cell's codec lookahead when ``lookahead_ms`` (one value per hash, ms; NaN counts as 0) is given:
    frames.parquet's m2e_ms excludes it, the summary's m2e_* columns include it."""
    if run_dir is None:
        return pd.Series(dtype=float)
    parts = []
    for i, h in enumerate(hashes):
        p = Path(run_dir) / "cells" / str(h) / "frames.parquet"
        if p.exists():
            f = pd.read_parquet(p, columns=["m2e_ms"])
            la = float(lookahead_ms[i]) if lookahead_ms is not None else 0.0
            parts.append(f["m2e_ms"].dropna() + (0.0 if math.isnan(la) else la))
    if not parts:
        return pd.Series(dtype=float)
    s = pd.concat(parts, ignore_index=True)
    return s.sample(max_rows, random_state=0) if len(s) > max_rows else s


#: The CDF's x-axis ends at this percentile of all plotted frames (or 50 ms); each panel writes the
#: share of its frames beyond the cut.
CDF_CUT_PERCENTILE = 99.5


def latency_cdf(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Mouth-to-ear CDF per transport, one panel per profile, over the like-for-like cells
    (:data:`TRANSPORT_SETTINGS`: one exact configuration per transport, adaptive playout, 20 ms frames,
    concealment), every played frame with the cell's codec lookahead added (without frame logs, the
    per-cell p50/p95/p99 instead). The x-axis ends at the :data:`CDF_CUT_PERCENTILE` th percentile of
    all plotted frames; each panel writes the share of each transport's frames beyond it."""
    d = transport_rows(df)
    if not len(d) or "m2e_p50_ms" not in d.columns:
        return None
    pname = d["profile"].map(profile_name)
    profiles = sorted(pname.unique(), key=lambda p: (not is_clean(p), p))
    curves: dict[tuple[str, str], np.ndarray] = {}
    for prof in profiles:
        for tr, g in d[pname == prof].groupby("transport"):
            la = list(_num(g["budget_lookahead_ms"])) if "budget_lookahead_ms" in g.columns else None
            vals = load_frames(run_dir, list(g.get("cell_hash", [])), lookahead_ms=la)
            if not len(vals):
                vals = pd.concat([_num(g[c]) for c in ("m2e_p50_ms", "m2e_p95_ms", "m2e_p99_ms")]).dropna()
            if len(vals):
                curves[(prof, str(tr))] = np.sort(vals.to_numpy(dtype=float))
    if not curves:
        return None
    allv = np.concatenate(list(curves.values()))
    hi = max(float(np.percentile(allv, CDF_CUT_PERCENTILE)) * 1.05, 50.0)
    ncol = min(len(profiles), 4)
    nrow = math.ceil(len(profiles) / ncol)
    fig = Figure(figsize=(3.0 * ncol + 1.0, 2.9 * nrow + 0.4), dpi=100, layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
    for i, prof in enumerate(profiles):
        ax = axes[i // ncol][i % ncol]
        beyond = []
        for (p, tr), x in curves.items():
            if p != prof:
                continue
            ax.plot(x, np.arange(1, len(x) + 1) / len(x), color=TRANSPORT_COLORS.get(tr, "gray"), label=tr, lw=1.6)
            frac = float((x > hi).mean())
            if frac > 0:
                beyond.append(f"{tr}: {100 * frac:.1f}% > {hi:.0f} ms (max {x[-1]:.0f})")
        if beyond:
            ax.text(0.98, 0.04, "\n".join(beyond), transform=ax.transAxes, ha="right", va="bottom", fontsize=6,
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        ax.set_title(prof, fontsize=10)
        ax.set_xlim(0, hi)
        ax.grid(alpha=0.3)
        ax.set_xlabel("mouth-to-ear incl. codec lookahead (ms)", fontsize=8)
        if i % ncol == 0:
            ax.set_ylabel("fraction of played frames", fontsize=8)
    for j in range(len(profiles), nrow * ncol):
        axes[j // ncol][j % ncol].set_visible(False)
    axes[0][0].legend(fontsize=8, loc="center right")
    fig.suptitle(f"Mouth-to-ear latency CDF per profile: {WEBRTC.label} vs {WS_BINARY.label}", fontsize=10)
    return fig


BUDGET = [("budget_framing_ms", "framing"), ("budget_lookahead_ms", "codec lookahead"),
          ("budget_network_ms", "network"), ("budget_jitter_buffer_ms", "jitter buffer / stall")]


def latency_budget(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Where the latency goes: framing, codec lookahead, network, jitter buffer, as a stacked bar per
    transport and profile over the like-for-like cells. Each part is a MEAN (per cell, then over the
    group's cells), so the parts add up to the mean mouth-to-ear (``m2e_mean_ms``, the tick); runs
    made before the budget used means show medians that need not add up."""
    d = transport_rows(df)
    cols = [c for c, _ in BUDGET if c in d.columns]
    if not len(d) or not cols:
        return None
    key = [d["transport"], d["profile"].map(profile_name)]
    g = d.groupby(key)[cols].mean(numeric_only=True)
    if g.empty:
        return None
    n = d.groupby(key).size().reindex(g.index)
    fig, ax = _fig(7.5, max(2.6, 0.8 + 0.45 * len(g)))
    labels = [f"{t} / {p} (n={n[(t, p)]})" for t, p in g.index]
    left = np.zeros(len(g))
    colors = ["#9467bd", "#8c564b", "#2ca02c", "#ff7f0e"]
    for (c, name), col in zip(BUDGET, colors):
        if c not in g.columns:
            continue
        v = g[c].fillna(0).to_numpy()
        ax.barh(labels, v, left=left, color=col, label=name)
        left += v
    if "m2e_mean_ms" in d.columns:
        mean = d.groupby(key)["m2e_mean_ms"].mean()
        ax.plot(mean.reindex(g.index).to_numpy(), labels, "k|", ms=14, mew=2, label="measured mean m2e")
    ax.set_xlabel("ms (mean)")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=7, loc="outside lower center", ncol=5)
    ax.set_title("Latency budget (means per transport / profile)")
    return fig


def _bars_with_ci(ax: Any, labels: list[str], ests: list[st.Estimate], colors: list[str], unit: str,
                  nd: int = 0) -> None:
    """Horizontal bars (means) with 95 % interval whiskers; each bar labelled "mean [lo, hi] n=..."."""
    y = np.arange(len(labels))
    vals = np.array([e.value for e in ests], dtype=float)
    lo = np.array([e.value - e.lo if e.has_interval else 0.0 for e in ests])
    hi = np.array([e.hi - e.value if e.has_interval else 0.0 for e in ests])
    ax.barh(y, np.nan_to_num(vals), color=colors, alpha=0.8, xerr=[lo, hi], capsize=3, ecolor="k")
    for i, e in enumerate(ests):
        if not math.isnan(e.value):
            ax.annotate(f"{e.value:.{nd}f} [{e.lo:.{nd}f}, {e.hi:.{nd}f}] {unit} n={e.n}" if e.has_interval
                        else f"{e.value:.{nd}f} {unit} n={e.n}", (e.hi if e.has_interval else e.value, i),
                        xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def _setting_color(s: Setting) -> str:
    return TRANSPORT_COLORS.get(dict(s.values).get("transport", ""), "gray")


#: The jitter-buffer figure's configurations in the default experiment: each transport's default with
#: its adaptive and a fixed 60 ms buffer.
POLICY_SETTINGS = (WEBRTC, WEBRTC_FIXED, WS_BINARY, WS_FIXED)


def policy_settings(df: pd.DataFrame) -> list[Setting]:
    """Each transport's default configuration (:data:`TRANSPORT_SETTINGS`) with every playout policy
    the results hold (the rest of the configuration unchanged)."""
    pols = sorted(ok_rows(df).get("playout", pd.Series(dtype=str)).dropna().astype(str).unique(),
                  key=lambda p: (p != "adaptive", p))
    return [s.with_(f"{s.label.split(' ')[0]} {p}", playout=p) for s in TRANSPORT_SETTINGS for p in pols]


def playout_policy(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """The jitter-buffer trade-off on each impaired profile: mean mouth-to-ear p95 (left) and mean
    PLCMOS (right) per exact configuration (adaptive vs fixed 60 ms, per transport), with 95 %
    intervals and n."""
    d = ok_rows(df)
    profs = sorted({profile_name(p) for p in d.get("profile", []) if not is_clean(p)})
    profs = [p for p in profs if sum(len(s.rows(d, p)) > 0 for s in policy_settings(d)) >= 2]
    if not profs:
        return None
    fig = Figure(figsize=(11, 1.2 + 0.35 * len(policy_settings(d)) * len(profs)), dpi=100, layout="constrained")
    axes = fig.subplots(len(profs), 2, squeeze=False)
    for row, prof in enumerate(profs):
        sets = [s for s in policy_settings(d) if len(s.rows(d, prof))]
        labels = [s.label for s in sets]
        colors = [_setting_color(s) for s in sets]
        for col, (metric, unit, nd) in enumerate((("m2e_p95_ms", "ms", 0), ("plcmos", "", 2))):
            ests = [st.estimate(_num(s.rows(d, prof)[metric]).to_numpy()) if metric in d.columns
                    else st.estimate([]) for s in sets]
            ax = axes[row][col]
            _bars_with_ci(ax, labels if col == 0 else [""] * len(labels), ests, colors, unit, nd)
            ax.set_title(f"{prof}: {'mouth-to-ear p95 (ms)' if col == 0 else 'PLCMOS v2'}", fontsize=9)
            top = max((e.hi if e.has_interval else e.value) for e in ests if not math.isnan(e.value)) if any(
                not math.isnan(e.value) for e in ests) else 1.0
            ax.set_xlim(0, top * 1.6)
    fig.suptitle("Jitter buffer: adaptive vs fixed 60 ms (mean over seed x clip cells, 95 % interval)", fontsize=10)
    return fig


def setup_time(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Live calls: time from dialling to the first media packet received, per transport and profile
    (like-for-like rows only, :func:`translab.report.claims.setup_rows`): every call as a dot (the
    spread), a bar at the median, the median's 95 % interval as a black whisker, n under each bar."""
    live = setup_rows(df)
    if not len(live):
        return None
    live = live.assign(setup=live["setup_ms"], pname=live["profile"].map(profile_name))
    groups = sorted(live.groupby(["pname", "transport"]).groups, key=lambda g: (not is_clean(g[0]), g))
    fig, ax = _fig(1.6 + 1.1 * len(groups), 3.4)
    jitter = np.random.default_rng(0)
    for i, (prof, tr) in enumerate(groups):
        v = live[(live["pname"] == prof) & (live["transport"] == tr)]["setup"].to_numpy(dtype=float)
        med = st.estimate(v, "median")
        ax.bar(i, med.value, color=TRANSPORT_COLORS.get(tr, "gray"), alpha=0.6, width=0.7)
        ax.plot(i + jitter.uniform(-0.2, 0.2, len(v)), v, "k.", ms=5, alpha=0.7)
        if med.has_interval:
            ax.errorbar(i, med.value, yerr=[[med.value - med.lo], [med.hi - med.value]], color="k",
                        capsize=5, lw=1.5)
        ax.annotate(f"{med.value:.0f} ms", (i, float(np.max(v))), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)), [f"{tr}\n{prof}\nn={int(((live['pname'] == prof) & (live['transport'] == tr)).sum())}"
                                       for prof, tr in groups], fontsize=8)
    ax.set_ylabel("dial to first media received (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.15)
    ax.set_title("Call set-up time (live calls; dots: calls, whisker: median's 95 % CI)", fontsize=9)
    return fig


def setup_breakdown(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Live calls: each set-up milestone (ICE, DTLS, TCP, TLS, upgrade, first media, first audio
    played; ms since the call started) per transport and profile, median over calls."""
    d = ok_rows(df)
    cols = [c for c in d.columns if c.startswith("setup_") and c.endswith("_ms") and "t0" not in c
            and pd.api.types.is_numeric_dtype(d[c])]
    if not cols:
        return None
    live = d[d[cols].notna().any(axis=1)]
    if not len(live):
        return None
    g = live.groupby(["transport", live["profile"].map(profile_name)])[cols].median()
    transports = sorted({t for t, _ in g.index})
    # one panel per transport, each with a legend of its own milestones only (no 12-entry legend)
    fig = Figure(figsize=(8.0, 1.4 + 0.55 * len(g) + 0.5 * len(transports)), dpi=100, layout="constrained")
    axes = fig.subplots(len(transports), 1, squeeze=False, sharex=True)[:, 0]
    markers = "osD^vP*Xhp<>"
    cmap = matplotlib.colormaps["tab10"]
    for ax, tr in zip(axes, transports):
        gt = g.loc[tr]
        names = [c for c in cols if gt[c].notna().any()]
        names.sort(key=lambda c: float(np.nanmedian(gt[c].to_numpy())))
        for y, (prof, r) in enumerate(gt.iterrows()):
            ax.hlines(y, 0, np.nanmax(r[names].to_numpy()), color=TRANSPORT_COLORS.get(tr, "gray"), lw=3, alpha=0.35)
            for k, c in enumerate(names):
                if not math.isnan(r[c]):
                    ax.plot(r[c], y, markers[k % len(markers)], color=cmap(k % 10), ms=7, ls="none",
                            label=c[6:-3].replace("_", " ") if y == 0 else None)
        ax.set_yticks(range(len(gt)), [str(p) for p in gt.index])
        ax.set_ylim(-0.6, len(gt) - 0.4)
        ax.set_title(tr, fontsize=9)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("ms since the call started")
    fig.suptitle("Call set-up milestones (live calls, median)", fontsize=10)
    return fig


def call_timeline(trace: pd.DataFrame, frames: pd.DataFrame | None = None) -> Figure:
    """One call: per packet, the network delay (arrival - send, ms) against send time with lost packets
    marked; below, per played block, its mouth-to-ear latency coloured by what was played (decoded,
    FEC, concealment, stall...)."""
    fig = Figure(figsize=(9, 5), dpi=100, layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    send = _num(trace["send_s"])
    delay_ms = 1000 * (_num(trace["arrival_s"]) - send)
    lost = trace["arrival_s"].isna()
    ax1.plot(send[~lost], delay_ms[~lost], ".", ms=3, color="#1f77b4", label="received")
    if lost.any():
        top = float(np.nanmax(delay_ms)) if delay_ms.notna().any() else 100.0
        ax1.plot(send[lost], np.full(int(lost.sum()), top * 1.05), "x", color="#d62728", ms=5,
                 label=f"lost ({int(lost.sum())})")
    ax1.set_ylabel("network delay (ms)")
    ax1.legend(fontsize=8, loc="upper right")
    ax1.grid(alpha=0.3)
    tr = trace.attrs.get("transport", "")
    ax1.set_title(f"{tr} {trace.attrs.get('codec', '')} over {trace.attrs.get('profile', '')}: packets")
    if frames is not None and len(frames):
        kinds = {"decoded": "#2ca02c", "fec": "#17becf", "plc": "#ff7f0e", "pcm-plc": "#ff7f0e",
                 "zero": "#d62728", "repeat": "#9467bd", "stall": "#7f7f7f", "inserted": "#bcbd22"}
        for kind, g in frames.groupby("kind"):
            ax2.plot(_num(g["play_s"]), _num(g["m2e_ms"]) if "m2e_ms" in g else np.zeros(len(g)), ".",
                     ms=3, color=kinds.get(str(kind), "black"), label=f"{kind} ({len(g)})")
        ax2.legend(fontsize=7, loc="upper right", ncol=3)
    ax2.set_ylabel("mouth-to-ear (ms)")
    ax2.set_xlabel("call time (s)")
    ax2.grid(alpha=0.3)
    ax2.set_title("played audio: latency and concealment")
    return fig


def loss_axis(d: pd.DataFrame) -> tuple[pd.Series, str]:
    """The quality-vs-loss x values (%) and their axis label: ``effective_loss_rate`` (share of sent
    frames not played from their own packet or its FEC: lost, discarded late or skipped) when the
    results have it; else (older runs) ``concealed_ratio``, which misses frames a receiver skipped
    without concealing (elastic, aiortc-stock)."""
    if "effective_loss_rate" in d.columns and _num(d["effective_loss_rate"]).notna().any():
        return (100 * _num(d["effective_loss_rate"]),
                "sent frames never played from their packet or its FEC: lost, discarded late or skipped (%)")
    return (100 * _num(d.get("concealed_ratio", pd.Series(0.0, index=d.index))).fillna(0),
            "concealed samples (% of output; frames skipped without concealment not counted)")


#: The concealment figure's configurations, like for like within each transport.
CONCEAL_SETTINGS = (WEBRTC, OPUS_PLC, OPUS_ZERO, WS_BINARY, WS_FIXED, WS_FIXED_ZERO)


def quality_loss(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Concealment like for like on each impaired profile: mean PLCMOS (95 % interval, n) of Opus
    with FEC, with decoder PLC, with zero-fill (FEC off on both), and PCM over WebSocket with the
    adaptive buffer, with a fixed 60 ms buffer and PCM PLC, and with zero-fill; the effective loss
    (frames never played from their packet or FEC) is written beside each label."""
    d = ok_rows(df)
    if "plcmos" not in d.columns:
        return None
    profs = sorted({profile_name(p) for p in d.get("profile", []) if not is_clean(p)})
    profs = [p for p in profs if sum(len(s.rows(d, p)) > 0 for s in CONCEAL_SETTINGS) >= 2]
    if not profs:
        return None
    fig = Figure(figsize=(10, 0.8 + 2.4 * len(profs)), dpi=100, layout="constrained")
    axes = fig.subplots(len(profs), 1, squeeze=False)[:, 0]
    for ax, prof in zip(axes, profs):
        sets = [s for s in CONCEAL_SETTINGS if len(s.rows(d, prof))]
        labels = []
        for s in sets:
            eff = _num(s.rows(d, prof).get("effective_loss_rate", pd.Series(dtype=float))).mean()
            labels.append(f"{s.label}\n(never played {100 * eff:.1f}%)" if not math.isnan(eff) else s.label)
        ests = [st.estimate(_num(s.rows(d, prof)["plcmos"]).to_numpy()) for s in sets]
        _bars_with_ci(ax, labels, ests, [_setting_color(s) for s in sets], "", 2)
        ax.set_xlim(1, 5.4)
        ax.set_title(prof, fontsize=10)
        ax.set_xlabel("PLCMOS v2 (mean, 95 % interval)", fontsize=8)
    fig.suptitle("Concealment, like for like (blue: WebRTC, red: WebSocket)", fontsize=10)
    return fig


def quality_bitrate(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """PESQ-WB (full reference) against Opus bitrate on the clean profile with FEC off (the codec
    alone): mean with 95 % interval per bitrate over the seed x clip cells; the codec-only score (no
    network) as a dotted line; PCM16 24 kHz binary over WebSocket as a horizontal reference."""
    d = ok_rows(df)
    metric = "pesq_wb" if "pesq_wb" in d.columns and _num(d["pesq_wb"]).notna().any() else "plcmos"
    if metric not in d.columns:
        return None
    clean = sorted({profile_name(p) for p in d.get("profile", []) if is_clean(p)})
    rates = sorted(int(b) // 1000 for b in _num(d.get("bitrate_bps", pd.Series(dtype=float))).dropna().unique())
    prof = next((p for p in clean if sum(len(opus_no_fec(k).rows(d, p)) > 0 for k in rates) >= 2), None)
    if prof is None:
        return None
    ks = [k for k in rates if len(opus_no_fec(k).rows(d, prof))]
    ests = [st.estimate(_num(opus_no_fec(k).rows(d, prof)[metric]).to_numpy()) for k in ks]
    fig, ax = _fig(7.5, 4.0)
    y = np.array([e.value for e in ests])
    err = np.array([[e.value - e.lo, e.hi - e.value] if e.has_interval else [0, 0] for e in ests]).T
    ax.errorbar(ks, y, yerr=err, fmt="o-", color=TRANSPORT_COLORS["webrtc"], capsize=4,
                label=f"Opus, FEC off, {prof} (n={min(e.n for e in ests)} per point)")
    cm = f"codec_{metric}"
    if cm in d.columns:
        co = [_num(opus_no_fec(k).rows(d, prof)[cm]).mean() for k in ks]
        ax.plot(ks, co, "k^:", label="codec only (no network)")
    pcm = WS_BINARY.rows(d, prof)
    if len(pcm) and metric in pcm.columns:
        e = st.estimate(_num(pcm[metric]).to_numpy())
        ax.axhline(e.value, color=TRANSPORT_COLORS["websocket"], ls="--", lw=1.2,
                   label=f"PCM16 24 kHz over WebSocket: {e.value:.2f} (n={e.n})")
    ax.set_xscale("log")
    ax.set_xticks(ks, [f"{k:g}" for k in ks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("Opus bitrate (kbit/s)")
    ax.set_ylabel(f"{'PESQ-WB' if metric == 'pesq_wb' else 'PLCMOS v2'} (mean, 95 % interval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Quality vs Opus bitrate (FEC off, adaptive, 20 ms, {prof})", fontsize=10)
    return fig


def bandwidth_stack(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Uplink kbit/s per codec setting, stacked: codec payload, JSON/base64 inflation, packet headers
    (RTP/SRTP/UDP/IP or WebSocket/TLS/TCP/IP), uplink control traffic (RTCP/STUN), then, hatched and
    labelled as downlink, the control traffic the stream causes the other way (TCP ACKs / RTCP RR).
    Median over cells of the cleanest profile in the run."""
    d = ok_rows(df)
    need = ("payload_kbps_up", "wire_kbps_up")
    if not len(d) or any(c not in d.columns for c in need):
        return None
    clean = d[d["profile"].map(is_clean)]
    d = clean if len(clean) else d
    lab = d.apply(lambda r: f"{r['transport']}: {cell_label(r)}", axis=1)
    cols = [c for c in ("payload_kbps_up", "message_kbps_up", "media_wire_kbps_up", "wire_kbps_up",
                        "control_kbps_down") if c in d.columns]
    g = d.groupby(lab)[cols].median(numeric_only=True).sort_values("wire_kbps_up")
    payload = g["payload_kbps_up"]
    message = g.get("message_kbps_up", payload)
    media_wire = g.get("media_wire_kbps_up", g["wire_kbps_up"])
    parts = {"codec payload": payload, "JSON + base64": (message - payload).clip(lower=0),
             "headers (IP/UDP/RTP/SRTP or IP/TCP/TLS/WS)": (media_wire - message).clip(lower=0),
             "control (RTCP, STUN)": (g["wire_kbps_up"] - media_wire).clip(lower=0)}
    if "control_kbps_down" in g.columns:
        # not uplink: the control traffic the uplink stream causes in the other direction
        parts["DOWNLINK control caused by it (TCP ACKs / RTCP RR)"] = g["control_kbps_down"].clip(lower=0)
    fig, ax = _fig(8.0, max(2.6, 0.9 + 0.38 * len(g)))
    left = np.zeros(len(g))
    for (name, v), col in zip(parts.items(), ["#2ca02c", "#bcbd22", "#7f7f7f", "#17becf", "#c5b0d5"]):
        vv = v.fillna(0).to_numpy()
        down = name.startswith("DOWNLINK")
        ax.barh(g.index, vv, left=left, color=col, label=name, hatch="///" if down else None,
                edgecolor="#7b5fa0" if down else None, lw=0)
        left += vv
    for y, (w, p) in enumerate(zip(g["wire_kbps_up"], payload)):
        ax.annotate(f"{w:.0f} ({w / p:.1f}x)" if p else f"{w:.0f}", (left[y], y), va="center", fontsize=7,
                    xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel("kbit/s (hatched: downlink control; label: uplink wire kbit/s, wire/payload)", fontsize=8)
    ax.set_xlim(0, max(left) * 1.18 if len(left) else 1)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=7, loc="outside lower center", ncol=3)
    ax.set_title("Bandwidth: payload vs wire" + (" (clean profile)" if len(clean) else ""))
    return fig


FigureFn = Callable[[pd.DataFrame, "str | Path | None"], "Figure | None"]

#: key -> (function, title, caption). The order is the report's.
FIGURES: dict[str, tuple[FigureFn, str, str]] = {
    "latency_cdf": (latency_cdf, "Mouth-to-ear latency CDFs",
                    f"Every played frame of the two headline configurations ({WEBRTC.label} vs {WS_BINARY.label}, "
                    f"adaptive playout, 20 ms), all seeds and clips, per profile, with each cell's codec lookahead "
                    f"added (Opus 6.5 ms, PCM none). The x-axis is cut at the {CDF_CUT_PERCENTILE:g}th percentile of "
                    f"all plotted frames (at least 50 ms); each panel writes the share of frames beyond the "
                    f"cut and the largest value (notebook 02)."),
    "latency_budget": (latency_budget, "Latency budget",
                       f"Mean framing, codec lookahead, network and jitter-buffer delay of the two headline "
                       f"configurations ({WEBRTC.label} vs {WS_BINARY.label}); means add up, so the bars end at the measured mean "
                       f"mouth-to-ear (the tick); n = cells per group (notebook 02)."),
    "setup_time": (setup_time, "Call set-up time",
                   "Live calls only: from call start (WebRTC: building the offer, then the HTTPS POST over "
                   "the emulated TCP path; WebSocket: the TCP dial) to the first media packet received, which "
                   "includes the sender's 50 ms start once connected and one frame of capture on both "
                   "transports; the milestones below split it. Dots are calls (the spread), bars the median, "
                   "black whiskers the median's 95 % bootstrap interval (n >= 3); n = calls per bar. WebRTC "
                   "rows whose offer/answer did not cross the emulated link are left out. Run "
                   "data/experiments/setup.toml for >= 10 calls per bar (notebook 02)."),
    "setup_breakdown": (setup_breakdown, "Call set-up milestones",
                        "Live calls only: when each set-up step completed (notebook 02)."),
    "playout_policy": (playout_policy, "Jitter-buffer policies",
                       "Per impaired profile: mouth-to-ear p95 and PLCMOS of each transport's default with the "
                       "adaptive buffer and with a fixed 60 ms buffer; mean over the seed x clip cells with the "
                       "95 % bootstrap interval (whiskers) and n (notebook 02)."),
    "quality_loss": (quality_loss, "Concealment, like for like",
                     "Per impaired profile: PLCMOS of Opus with in-band FEC, with decoder PLC and with zero-fill "
                     "(FEC off on both), and of PCM16 over WebSocket with the adaptive buffer, with a fixed "
                     "60 ms buffer and PCM PLC, and with zero-fill; mean over seed x clip cells, 95 % interval, "
                     "n. The share of sent frames never played from their packet or FEC is under each label; "
                     "over TCP a stall drops no frame, so its cost shows as latency and concealed audio "
                     "(notebook 03)."),
    "quality_bitrate": (quality_bitrate, "Quality vs Opus bitrate",
                        "PESQ-WB (full reference) per Opus bitrate with FEC off on the clean profile: the codec's "
                        "own quality, the cells the 24 kbit/s claim uses; mean over seed x clip cells with 95 % "
                        "intervals; codec-only scores (no network) dotted; PCM16 over WebSocket dashed. The "
                        "shipped clips carry nothing above 8 kHz, so higher bitrates have little to add "
                        "(notebook 03)."),
    "bandwidth": (bandwidth_stack, "Bandwidth: payload vs wire",
                  "Uplink kbit/s stacked by what the bytes are; the last, hatched segment is NOT uplink: it is "
                  "the control traffic the stream causes in the downlink (TCP ACKs for WebSocket, RTCP "
                  "receiver reports for WebRTC), so a bar is the stream's cost in both directions while the "
                  "label gives the uplink wire rate alone (notebook 04)."),
}


def render_all(df: pd.DataFrame, run_dir: str | Path | None = None,
               errors: dict[str, str] | None = None) -> dict[str, Figure | None]:
    """Every figure of :data:`FIGURES` (None where the run has no data for it). A figure that raises
    is None too, with its error recorded in ``errors`` (when given): never fatal for the report."""
    out: dict[str, Figure | None] = {}
    for key, (fn, _, _) in FIGURES.items():
        try:
            out[key] = fn(df, run_dir)
        except Exception as err:
            out[key] = None
            if errors is not None:
                errors[key] = f"{type(err).__name__}: {err}"
    return out


def to_png_base64(fig: Figure, dpi: int = 90) -> str:
    """The figure as a base64-encoded PNG (for data: URIs)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------------
# conversations (data/experiments/conversation.toml): not in FIGURES, shown in the report's
# "Conversation" section when the run has conversation cells

TOPOLOGY_COLORS = {"direct-ws": "#d62728", "webrtc-gateway": "#1f77b4", "twilio": "#2ca02c"}
BUDGET_PARTS = (("uplink", "#9ecae1"), ("vad", "#fdae6b"), ("think", "#bcbddc"), ("downlink", "#a1d99b"))


def conversation_turns(df: pd.DataFrame, run_dir: str | Path | None) -> pd.DataFrame:
    """The per-turn tables of the conversation cells (``cells/<hash>/turns.parquet``) with topology,
    profile and seed; empty without a run directory or tables."""
    from translab.report.claims import conversation_rows

    d = conversation_rows(df)
    if run_dir is None or not len(d) or "cell_hash" not in d.columns:
        return pd.DataFrame()
    parts = []
    for _, r in d.iterrows():
        f = Path(run_dir) / "cells" / str(r["cell_hash"]) / "turns.parquet"
        if f.exists():
            t = pd.read_parquet(f)
            t["topology"], t["profile"], t["seed"] = r["topology"], profile_name(r["profile"]), r["seed"]
            parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def conversation_figure(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Three panels per caller access profile and topology: the turn latency of every answered turn
    (box, ms; per-conversation p50 when the per-turn tables are not at hand), the mean turn budget
    stacked (uplink, VAD, think, downlink, ms; they add up to the mean turn latency) and the barge-in
    stop times (box, ms)."""
    from translab.report.claims import conversation_rows

    d = conversation_rows(df)
    if not len(d):
        return None
    turns = conversation_turns(d, run_dir)
    profs = sorted(set(d["profile"].map(profile_name)), key=lambda p: (not is_clean(p), p))
    topos = [t for t in TOPOLOGY_COLORS if t in set(d["topology"])]
    fig = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    width = 0.8 / max(1, len(topos))
    top = 0.0
    for j, topo in enumerate(topos):
        pos = [i + (j - (len(topos) - 1) / 2) * width for i in range(len(profs))]
        lat, stop, bottoms = [], [], np.zeros(len(profs))
        for p in profs:
            if len(turns):
                t = turns[(turns["topology"] == topo) & (turns["profile"] == p)]
                lat.append(_num(t["turn_latency_ms"]).dropna().to_numpy())
                stop.append(_num(t["bargein_stop_ms"]).dropna().to_numpy())
            else:
                r = d[(d["topology"] == topo) & (d["profile"].map(profile_name) == p)]
                lat.append(_num(r["turn_latency_p50_ms"]).dropna().to_numpy())
                stop.append(_num(r.get("bargein_stop_p50_ms", pd.Series(dtype=float))).dropna().to_numpy())
        color = TOPOLOGY_COLORS[topo]
        for ax, data in ((axes[0], lat), (axes[2], stop)):
            keep = [k for k, x in enumerate(data) if len(x)]
            if keep:
                b = ax.boxplot([data[k] for k in keep], positions=[pos[k] for k in keep], widths=width * 0.8,
                               patch_artist=True, showfliers=True, manage_ticks=False)
                for box in b["boxes"]:
                    box.set_facecolor(color)
                    box.set_alpha(0.6)
        for part, pc in BUDGET_PARTS:
            col = f"{part}_mean_ms"
            vals = np.array([_num(d[(d["topology"] == topo) & (d["profile"].map(profile_name) == p)].get(
                col, pd.Series(dtype=float))).mean() for p in profs], dtype=float)
            vals = np.nan_to_num(vals)
            axes[1].bar(pos, vals, width * 0.9, bottom=bottoms, color=pc, edgecolor=color, linewidth=1.2,
                        label=part if j == 0 else None)
            bottoms += vals
        top = max(top, float(bottoms.max()) if len(bottoms) else 0.0)
        axes[0].plot([], [], color=color, lw=6, alpha=0.6, label=topo)
    for ax, title, unit in ((axes[0], "turn latency (end of speech -> agent heard)", "ms"),
                            (axes[1], "mean turn budget (edge colour: topology)", "ms"),
                            (axes[2], "barge-in: onset -> agent stops at the ear", "ms")):
        ax.set_xticks(range(len(profs)), profs)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].set_ylim(0, 1.3 * top if top > 0 else 1.0)  # room for the legend above the bars
    axes[1].legend(fontsize=8, loc="upper left", ncol=4, handlelength=1.0, columnspacing=0.8)
    return fig
