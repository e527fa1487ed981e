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

from translab.report.claims import (BITRATE_CELLS, LIKE_FOR_LIKE, bitrate_cells, is_clean, like_for_like, ok_rows,
                                    profile_name, setup_ms)

TRANSPORT_COLORS = {"webrtc": "#1f77b4", "websocket": "#d62728"}
LINESTYLES = ["-", "--", ":", "-."]


def _fig(w: float = 7.5, h: float = 4.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def cell_label(row: pd.Series) -> str:
    """Short label of a cell's codec setting: "opus 24k 20ms", "pcm16 24kHz binary", "pcmu twilio-json"."""
    codec = row.get("codec")
    if codec == "opus":
        return f"opus {int(row.get('bitrate_bps') or row.get('bitrate') or 0) // 1000}k {row.get('frame_ms', 20):g}ms"
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
    (:func:`translab.report.claims.like_for_like`: adaptive playout, 20 ms frames, default
    concealment), every played frame with the cell's codec lookahead added (without frame logs, the
    per-cell p50/p95/p99 instead). The x-axis ends at the :data:`CDF_CUT_PERCENTILE` th percentile of
    all plotted frames; each panel writes the share of each transport's frames beyond it."""
    d = like_for_like(ok_rows(df))
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
    fig.suptitle("Mouth-to-ear latency CDF per profile (adaptive playout, 20 ms, default concealment)")
    return fig


BUDGET = [("budget_framing_ms", "framing"), ("budget_lookahead_ms", "codec lookahead"),
          ("budget_network_ms", "network"), ("budget_jitter_buffer_ms", "jitter buffer / stall")]


def latency_budget(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Where the latency goes: framing, codec lookahead, network, jitter buffer, as a stacked bar per
    transport and profile over the like-for-like cells. Each part is a MEAN (per cell, then over the
    group's cells), so the parts add up to the mean mouth-to-ear (``m2e_mean_ms``, the tick); runs
    made before the budget used means show medians that need not add up."""
    d = like_for_like(ok_rows(df))
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


def playout_policy(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """The jitter-buffer policy trade-off: mouth-to-ear p95 per playout policy and transport (bars),
    with the share of concealed audio written on each bar; one panel per impaired profile."""
    d = ok_rows(df)
    if not len(d) or "playout" not in d.columns or d["playout"].nunique() < 2:
        return None
    d = d.assign(pname=d["profile"].map(profile_name))
    # elastic and aiortc-stock skip frames instead of concealing them: their concealed share alone reads 0 %
    eff = ["effective_loss_rate"] if "effective_loss_rate" in d.columns else []
    multi = d.groupby("pname")["playout"].nunique()
    profiles = [p for p in multi.index if multi[p] > 1]
    if not profiles:
        return None
    fig = Figure(figsize=(4.2 * len(profiles) + 0.8, 3.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(profiles), squeeze=False, sharey=True)[0]
    for ax, prof in zip(axes, profiles):
        g = d[d["pname"] == prof].groupby(["playout", "transport"])[["m2e_p95_ms", "concealed_ratio"] + eff].median(
            numeric_only=True)
        policies = sorted({p for p, _ in g.index})
        trs = sorted({t for _, t in g.index})
        w = 0.8 / max(len(trs), 1)
        for j, tr in enumerate(trs):
            for i, pol in enumerate(policies):
                if (pol, tr) not in g.index:
                    continue
                v = g.loc[(pol, tr)]
                x = i + (j - (len(trs) - 1) / 2) * w
                ax.bar(x, v["m2e_p95_ms"], w * 0.95, color=TRANSPORT_COLORS.get(tr, "gray"),
                       label=tr if i == 0 else None)
                lab = f"{100 * v['concealed_ratio']:.1f}%"
                if eff:
                    lab += f" / {100 * v['effective_loss_rate']:.1f}%"
                ax.annotate(lab, (x, v["m2e_p95_ms"]), ha="center",
                            va="bottom", fontsize=6, rotation=90, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(policies)), policies, rotation=30, fontsize=8)
        ax.set_title(prof, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    top = float(np.nanmax(_num(d["m2e_p95_ms"]).groupby([d["pname"], d["playout"], d["transport"]]).median()))
    axes[0].set_ylim(0, top * 1.35 if top > 0 else 1.0)  # room for the rotated labels above the tallest bar
    axes[0].set_ylabel("mouth-to-ear p95 (ms)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Jitter-buffer policy: p95 latency (bars); labels: concealed audio"
                 + (" / frames never played" if eff else ""))
    return fig


def setup_time(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """Live calls: time from call start to first media received, per transport and profile (bars:
    median; dots: each call; whiskers: min-max when a group has more than one call; n under each bar)."""
    d = ok_rows(df)
    s = setup_ms(d)
    live = d[s.notna()].assign(setup=s[s.notna()], pname=lambda x: x["profile"].map(profile_name))
    if not len(live):
        return None
    groups = sorted(live.groupby(["pname", "transport"]).groups)
    fig, ax = _fig(1.6 + 1.1 * len(groups), 3.2)
    for i, (prof, tr) in enumerate(groups):
        v = live[(live["pname"] == prof) & (live["transport"] == tr)]["setup"]
        ax.bar(i, v.median(), color=TRANSPORT_COLORS.get(tr, "gray"), alpha=0.7)
        ax.plot(np.full(len(v), i), v, "k.", ms=6)
        if len(v) > 1:
            ax.errorbar(i, v.median(), yerr=[[v.median() - v.min()], [v.max() - v.median()]], color="k",
                        capsize=4, lw=1)
        top = float(v.max())
        ax.annotate(f"{v.median():.0f} ms", (i, top), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)), [f"{tr}\n{prof}\nn={int(((live['pname'] == prof) & (live['transport'] == tr)).sum())}"
                                       for prof, tr in groups], fontsize=8)
    ax.set_ylabel("set-up to first media (ms)")
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.15)
    ax.set_title("Call set-up time (live calls)")
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
    fig, ax = _fig(8.0, 2.2 + 0.6 * len(g))
    cmap = matplotlib.colormaps["tab20"]
    markers = "osD^vP*Xhp<>"
    names = sorted(cols, key=lambda c: float(np.nanmedian(g[c].to_numpy())) if g[c].notna().any() else 1e9)
    labelled: set[str] = set()
    for y, (idx, r) in enumerate(g.iterrows()):
        ax.hlines(y, 0, np.nanmax(r.to_numpy()), color=TRANSPORT_COLORS.get(idx[0], "gray"), lw=3, alpha=0.35)
        for k, c in enumerate(names):
            if not math.isnan(r[c]):
                # milestones a few ms apart would overlap as text labels: a legend names them instead
                ax.plot(r[c], y, markers[k % len(markers)], color=cmap(k % 20), ms=7, ls="none",
                        label=None if c in labelled else c[6:-3].replace("_", " "))
                labelled.add(c)
    ax.set_yticks(range(len(g)), [f"{t} / {p}" for t, p in g.index])
    ax.set_ylim(-0.6, len(g) - 0.4)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, fontsize=7, frameon=False)
    ax.set_xlabel("ms since the call started")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Call set-up milestones (live calls)")
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


def quality_loss(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """PLCMOS against the share of frames not heard (effective loss: lost, late or skipped), coloured
    by concealment method; marker by transport."""
    d = ok_rows(df)
    if "plcmos" not in d.columns or not _num(d["plcmos"]).notna().any():
        return None
    fig, ax = _fig()
    x, xlabel = loss_axis(d)
    conceals = sorted(d["conceal"].dropna().unique()) if "conceal" in d.columns else ["?"]
    cmap = matplotlib.colormaps["tab10"]
    for i, c in enumerate(conceals):
        m = d["conceal"] == c
        for tr, marker in (("webrtc", "o"), ("websocket", "s")):
            mm = m & (d["transport"] == tr)
            if mm.any():
                ax.scatter(x[mm], _num(d.loc[mm, "plcmos"]), color=cmap(i), marker=marker, s=22, alpha=0.8,
                           label=f"{c} ({tr})")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("PLCMOS v2")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Quality vs loss, by concealment (o: WebRTC, s: WebSocket)")
    return fig


def quality_bitrate(df: pd.DataFrame, run_dir: str | Path | None = None) -> Figure | None:
    """PLCMOS against Opus bitrate per profile over like-for-like cells only
    (:data:`translab.report.claims.BITRATE_CELLS`: WebRTC, FEC on, adaptive playout, 20 ms frames,
    opus-fec), the same cells as the 24k claim; codec-only scores (no network) as a black line; PCM
    over WebSocket (adaptive, 20 ms, pcm-plc) as horizontal lines, one per profile and setting:
    colour = profile (as the Opus line), line style = PCM setting."""
    d = ok_rows(df)
    if "plcmos" not in d.columns:
        return None
    opus = bitrate_cells(d)
    if not len(opus):
        return None
    fig, ax = _fig(8.5, 4.4)
    cmap = matplotlib.colormaps["tab10"]
    colors: dict[str, Any] = {}
    for i, (prof, g) in enumerate(opus.groupby(opus["profile"].map(profile_name))):
        colors[str(prof)] = cmap(i)
        q = g.groupby(_num(g["bitrate_bps"]) / 1000)["plcmos"].median()
        ax.plot(q.index, q.values, "o-", color=cmap(i), label=f"opus / {prof}")
    if "codec_plcmos" in opus.columns and _num(opus["codec_plcmos"]).notna().any():
        q = opus.groupby(_num(opus["bitrate_bps"]) / 1000)["codec_plcmos"].median()
        ax.plot(q.index, q.values, "k^:", label="opus codec only (no network)")
    lfl = like_for_like(d)
    pcm = lfl[(lfl["codec"] != "opus") & (lfl["transport"] == "websocket")]
    styles = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3))]
    if len(pcm):
        labs = pcm.apply(cell_label, axis=1)
        settings = sorted(labs.unique())
        for (prof, lab), g in pcm.groupby([pcm["profile"].map(profile_name), labs]):
            if str(prof) not in colors:
                colors[str(prof)] = cmap(len(colors))
            y = _num(g["plcmos"]).median()
            ax.axhline(y, color=colors[str(prof)], ls=styles[settings.index(lab) % len(styles)], lw=1.0,
                       alpha=0.8, label=f"websocket {lab} / {prof}")
    ax.set_xscale("log")
    ticks = sorted(_num(opus["bitrate_bps"]).dropna().unique() / 1000)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("Opus bitrate (kbit/s)")
    ax.set_ylabel("PLCMOS v2 (median over cells)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title("Quality vs Opus bitrate (FEC on, adaptive, 20 ms; lines: PCM over WebSocket)", fontsize=10)
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
                    f"Every played frame of the like-for-like cells ({LIKE_FOR_LIKE}; the same cells as the "
                    f"headline table), per transport and profile, with each cell's codec lookahead added "
                    f"(Opus 6.5 ms, PCM none). The x-axis is cut at the {CDF_CUT_PERCENTILE:g}th percentile of "
                    f"all plotted frames (at least 50 ms); each panel writes the share of frames beyond the "
                    f"cut and the largest value (notebook 02)."),
    "latency_budget": (latency_budget, "Latency budget",
                       f"Mean framing, codec lookahead, network and jitter-buffer delay of the like-for-like "
                       f"cells ({LIKE_FOR_LIKE}); means add up, so the bars end at the measured mean "
                       f"mouth-to-ear (the tick); n = cells per group (notebook 02)."),
    "setup_time": (setup_time, "Call set-up time",
                   "Live calls only: from call start (offer / TCP dial) to the first media packet "
                   "received, which includes the sender's 50 ms start once connected and one frame of "
                   "capture on both transports; the milestones below split it. n = calls per bar (one call "
                   "is one sample, not a distribution); whiskers show min-max when n > 1. On clean-lan the "
                   "link is ~0.3 ms one way, so the extra round trips of ICE/DTLS or TCP/TLS/upgrade cost "
                   "next to nothing there: the difference is processing, not the network (notebook 02)."),
    "setup_breakdown": (setup_breakdown, "Call set-up milestones",
                        "Live calls only: when each set-up step completed (notebook 02)."),
    "playout_policy": (playout_policy, "Jitter-buffer policies",
                       "p95 mouth-to-ear per playout policy and transport (bars, median over cells); labels: "
                       "share of output audio concealed / share of sent frames never played from their packet "
                       "or FEC (lost, discarded late or skipped). elastic and aiortc-stock skip frames instead "
                       "of concealing them, so only the second number shows what they drop (notebook 02)."),
    "quality_loss": (quality_loss, "Quality vs loss and concealment",
                     "PLCMOS against the effective loss: the share of sent frames not played from their own "
                     "packet or its FEC (lost, discarded late, or skipped by receivers that do not conceal, "
                     "such as elastic and aiortc-stock), per concealment method. A stall (audio that arrives "
                     "late and is played late, the gap concealed meanwhile, as over TCP with an adaptive "
                     "buffer) drops no frame, so it counts 0 here: its cost is latency and the concealed share "
                     "in the headline. Runs without that column fall back to the concealed share, and the axis "
                     "label says which (notebook 03)."),
    "quality_bitrate": (quality_bitrate, "Quality vs Opus bitrate",
                        f"Median PLCMOS per Opus bitrate and profile over {BITRATE_CELLS} only (the cells the "
                        f"24 kbit/s claim uses); codec-only scores isolate codec damage; horizontal lines: PCM "
                        f"over WebSocket (adaptive, 20 ms, pcm-plc), colour = profile, style = PCM setting "
                        f"(notebook 03)."),
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
