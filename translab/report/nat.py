"""The NAT and firewall section of the report (and notebook 06): figures of the cells a run made on
the namespace backend (``backend == "netns"``), as pure functions of the results table.

* :func:`outcome_table`: one row per netns cell: did it connect, by which candidate pair, the path
  class (host, srflx, prflx, relay; "tcp" for WebSocket), set-up time, and whether the outcome
  matches what the NAT and firewall facts predict (:func:`translab.link.nat.expected_connected`).
* :func:`outcome_heatmap`: the same as a heatmap (caller NAT x callee NAT per transport, firewall
  and ICE option).
* :func:`setup_by_path`: set-up milestones (ms since the call started) per candidate type.
* :func:`relay_overhead`: one-way media delay (ms) over a relay against direct paths, and the
  relay's traffic (kbit/s).
* :func:`relay_by_bitrate`: what a TURN relay carries per call at each Opus bitrate, from coturn's
  byte counters.

Units: times in ms, rates in kbit/s (names say so).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from translab.call.row import setup_ms

#: relayed calls at least this long (s) are preferred for relay rates (set-up bytes weigh less)
RELAY_MIN_DURATION_S = 2.0
NETNS_KEYS = ("caller_nat", "callee_nat", "firewall", "ice", "relay_only")
PATH_ORDER = ("host", "srflx", "prflx", "relay", "tcp", "-")


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce")


def netns_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of cells run on the namespace backend (finished or failed)."""
    if "backend" not in df.columns:
        return df.iloc[0:0]
    return df[df["backend"] == "netns"]


def has_netns(df: pd.DataFrame) -> bool:
    """Whether the run has netns cells (the report then shows its NAT and firewall section)."""
    return len(netns_rows(df)) > 0


def path_class(transport: Any, pair: Any, connected: bool) -> str:
    """The path a call took: the "most relayed" candidate type of its selected pair (relay >
    prflx > srflx > host) for WebRTC, "tcp" for a connected WebSocket, "-" when not connected."""
    if not connected:
        return "-"
    if transport == "websocket":
        return "tcp"
    types = str(pair or "").split("-")
    for t in ("relay", "prflx", "srflx", "host"):
        if t in types:
            return t
    return "-"


def _connected(d: pd.DataFrame) -> pd.Series:
    if "netns_connected" in d.columns:
        c = d["netns_connected"].map(lambda v: bool(v) if v is not None and v == v else False)
    else:
        c = pd.Series(False, index=d.index)
    if "status" in d.columns:
        c = c & (d["status"] == "ok")
    return c.astype(bool)


def outcome_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per netns cell: transport, NATs, firewall, ICE option, relay-only, Opus bitrate
    (kbit/s), connected, selected pair, path class, set-up to first media (ms), expected outcome
    and whether it matches."""
    from translab.link.nat import Cell, expected_connected

    d = netns_rows(df)
    if not len(d):
        return pd.DataFrame()
    conn = _connected(d)
    setup = setup_ms(d)
    rows = []
    for i, r in d.iterrows():
        cell = Cell(str(r.get("transport")), str(r.get("caller_nat", "none")), str(r.get("callee_nat", "none")),
                    str(r.get("firewall", "open")), str(r.get("ice", "none")), bool(r.get("relay_only", False)))
        exp = expected_connected(cell)
        pair = r.get("netns_pair") if isinstance(r.get("netns_pair"), str) else ""
        br = pd.to_numeric(pd.Series([r.get("bitrate_bps", r.get("bitrate"))]), errors="coerce").iloc[0]
        rows.append({
            "transport": cell.transport, "caller_nat": cell.caller_nat, "callee_nat": cell.callee_nat,
            "firewall": cell.firewall, "ice": cell.ice, "relay_only": cell.relay_only,
            "bitrate_kbps": br / 1000 if cell.transport == "webrtc" else math.nan,
            "connected": bool(conn[i]), "pair": pair if conn[i] else "",
            "path": path_class(cell.transport, pair, bool(conn[i])),
            "setup_ms": float(setup[i]) if conn[i] else math.nan,
            "expected_connected": exp, "matches_expectation": bool(conn[i]) == exp,
        })
    return pd.DataFrame(rows)


def outcome_summary(df: pd.DataFrame) -> dict[str, Any]:
    """Counts: cells, connected, matching the expectation, and the keys of those that differ."""
    t = outcome_table(df)
    if not len(t):
        return {"cells": 0, "connected": 0, "matches": 0, "differs": []}
    key = t.apply(lambda r: f"{r['transport']}|{r['caller_nat']}|{r['callee_nat']}|{r['firewall']}|{r['ice']}"
                  + ("+relay" if r["relay_only"] else ""), axis=1)
    return {"cells": len(t), "connected": int(t["connected"].sum()), "matches": int(t["matches_expectation"].sum()),
            "differs": list(key[~t["matches_expectation"]])}


def outcome_heatmap(df: pd.DataFrame, run_dir: Any = None) -> Any:
    """The outcome matrix as a heatmap (see :func:`translab.lab.nat_matrix.heatmap_figure`);
    None without netns cells. Cells repeated at several bitrates show as one (the first)."""
    from translab.lab.nat_matrix import heatmap_figure

    t = outcome_table(df)
    if not len(t):
        return None
    t = t.rename(columns={"pair": "netns_pair"}).drop_duplicates(
        ["transport", "caller_nat", "callee_nat", "firewall", "ice", "relay_only"])
    return heatmap_figure(t)


SETUP_MILESTONES = (("ice_connected", "setup_ice_connected_ms"), ("dtls_connected", "setup_dtls_connected_ms"),
                    ("tcp_connected", "setup_tcp_connected_ms"), ("tls_done", "setup_tls_done_ms"),
                    ("upgrade_done", "setup_upgrade_done_ms"))


def setup_by_path(df: pd.DataFrame) -> pd.DataFrame:
    """Per transport and path class of connected netns calls: cells, median set-up milestones
    (ICE connected, DTLS connected; TCP, TLS, upgrade for WebSocket) and first media received, in
    ms since the call started."""
    d = netns_rows(df)
    if not len(d):
        return pd.DataFrame()
    conn = _connected(d)
    d = d[conn]
    if not len(d):
        return pd.DataFrame()
    paths = [path_class(r.get("transport"), r.get("netns_pair"), True) for _, r in d.iterrows()]
    d = d.assign(path=paths, first_media_ms=setup_ms(d))
    rows = []
    for (tr, path), g in d.groupby(["transport", "path"]):
        r: dict[str, Any] = {"transport": tr, "path": path, "cells": len(g)}
        for name, col in SETUP_MILESTONES:
            v = _num(g, col)
            if v.notna().any():
                r[f"{name}_ms"] = float(v.median())
        r["first_media_ms"] = float(g["first_media_ms"].median())
        rows.append(r)
    out = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(PATH_ORDER)}
    return out.sort_values(["transport", "path"], key=lambda s: s.map(order) if s.name == "path" else s).reset_index(drop=True)


def _relay_in_kbps(d: pd.DataFrame) -> pd.Series:
    v = _num(d, "netns_relay_in_kbps")
    dur = _num(d, "duration_s")
    fallback = _num(d, "netns_relay_from_clients_bytes") * 8 / dur / 1e3
    return v.fillna(fallback)


def relay_overhead(df: pd.DataFrame) -> pd.DataFrame:
    """Per transport: median one-way media delay (ms, packet arrival - send) of direct and of
    relayed connected calls, the difference (what the relay adds here), and the relay's traffic
    (kbit/s: into the relay from the clients, and in + out)."""
    d = netns_rows(df)
    d = d[_connected(d)] if len(d) else d
    d = d[d.get("transport", pd.Series(dtype=object)) == "webrtc"] if len(d) else d
    if not len(d):
        return pd.DataFrame()
    relayed = d["netns_pair"].astype(str).str.contains("relay")
    owd = _num(d, "netns_one_way_p50_ms")
    direct_ms, relay_ms = owd[~relayed].median(), owd[relayed].median()
    rows = [{"transport": "webrtc", "direct_cells": int((~relayed).sum()), "relay_cells": int(relayed.sum()),
             "direct_one_way_p50_ms": direct_ms, "relay_one_way_p50_ms": relay_ms,
             "relay_adds_ms": relay_ms - direct_ms,
             "relay_in_kbps": float(_relay_in_kbps(d[relayed]).median()) if relayed.any() else math.nan,
             "relay_in_out_kbps": float(_num(d[relayed], "netns_relay_kbps").median()) if relayed.any() else math.nan}]
    return pd.DataFrame(rows)


def relay_by_bitrate(df: pd.DataFrame) -> pd.DataFrame:
    """Per Opus bitrate (kbit/s) and selected pair of connected relayed WebRTC calls, from coturn's
    counters (relay-relay: both ends are the relay's clients; relay-host/srflx: only the caller):
    ``relay_in_kbps`` (one talker's stream entering the relay: TURN-framed RTP/RTCP, no IP/UDP
    headers), ``relay_in_out_kbps`` (in from + out to the relay's clients), the sender's ``wire_kbps_up`` (the header model's
    on-the-wire rate of that stream) and ``two_way_call_kbps`` = 2 x relay_in_kbps (a conversation
    has two talkers: what the relay takes in per call; it sends as much out again).

    coturn's counters include the call's set-up (allocation, ICE checks, DTLS handshake: a few kB),
    which inflate the rate of short calls: when a bitrate has calls of at least
    :data:`RELAY_MIN_DURATION_S`, only those count (``duration_s`` says which)."""
    d = netns_rows(df)
    if not len(d):
        return pd.DataFrame()
    d = d[_connected(d) & (d["transport"] == "webrtc")]
    if not len(d) or "netns_pair" not in d.columns:
        return pd.DataFrame()
    d = d[d["netns_pair"].astype(str).str.contains("relay") & (_num(d, "netns_relay_bytes") > 0)]
    if not len(d):
        return pd.DataFrame()
    d = d.assign(bitrate_kbps=_num(d, "bitrate_bps").fillna(_num(d, "bitrate")) / 1000, rin=_relay_in_kbps(d),
                 dur=_num(d, "duration_s"))
    long_enough = d.groupby("bitrate_kbps")["dur"].transform(lambda s: (s >= RELAY_MIN_DURATION_S).any())
    d = d[~long_enough | (d["dur"] >= RELAY_MIN_DURATION_S)]
    rows = []
    for (br, pair), g in d.groupby(["bitrate_kbps", "netns_pair"]):
        rin = float(g["rin"].median())
        rows.append({"bitrate_kbps": float(br), "pair": pair, "cells": len(g),
                     "duration_s": float(g["dur"].median()), "relay_in_kbps": rin,
                     "relay_in_out_kbps": float(_num(g, "netns_relay_kbps").median()),
                     "wire_kbps_up": float(_num(g, "wire_kbps_up").median()),
                     "payload_kbps_up": float(_num(g, "payload_kbps_up").median()),
                     "two_way_call_kbps": 2 * rin})
    return pd.DataFrame(rows)


def setup_by_path_figure(df: pd.DataFrame, run_dir: Any = None) -> Any:
    """Bars: median time to first media (ms) per transport and path class; dots: milestones."""
    t = setup_by_path(df)
    if not len(t):
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.8 + 1.2 * len(t), 3.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    colors = {"webrtc": "#1f77b4", "websocket": "#d62728"}
    for i, r in t.iterrows():
        ax.bar(i, r["first_media_ms"], color=colors.get(r["transport"], "gray"), alpha=0.7)
        ax.annotate(f"{r['first_media_ms']:.0f} ms (n={r['cells']})", (i, r["first_media_ms"]), ha="center",
                    va="bottom", fontsize=7)
        for name, _ in SETUP_MILESTONES:
            v = r.get(f"{name}_ms")
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                ax.plot(i, v, "k_", ms=14)
    ax.set_xticks(range(len(t)), [f"{r['transport']}\n{r['path']}" for _, r in t.iterrows()], fontsize=8)
    ax.set_ylabel("ms since the call started")
    ax.set_title("Set-up to first media by path (ticks: ICE/DTLS or TCP/TLS/upgrade done)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.15)
    return fig


def relay_bitrate_figure(df: pd.DataFrame, run_dir: Any = None) -> Any:
    """Bars per Opus bitrate: what enters the relay per talker and per two-way call (kbit/s), with
    the sender's wire rate and the article's 64 kbit/s as references."""
    t = relay_by_bitrate(df)
    if not len(t):
        return None
    from matplotlib.figure import Figure

    g = t.groupby("bitrate_kbps")[["relay_in_kbps", "two_way_call_kbps", "wire_kbps_up"]].median()
    fig = Figure(figsize=(6.0, 3.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(g))
    ax.bar(x - 0.2, g["relay_in_kbps"], 0.4, label="into the relay, one talker", color="#1f77b4")
    ax.bar(x + 0.2, g["two_way_call_kbps"], 0.4, label="per two-way call (2 talkers)", color="#ff7f0e")
    ax.plot(x - 0.2, g["wire_kbps_up"], "k_", ms=18, label="sender's wire rate (header model)")
    ax.axhline(64, color="gray", ls="--", lw=1, label="the article's 64 kbit/s")
    ax.set_xticks(x, [f"Opus {b:g}k" for b in g.index])
    ax.set_ylabel("kbit/s")
    ax.set_title("What a TURN relay carries (coturn's counters)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig
