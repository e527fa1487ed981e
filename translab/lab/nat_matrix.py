"""The NAT traversal outcome matrix: short live calls for caller NAT x callee NAT x caller firewall
x ICE option (x relay-only), for both transports, on the namespace backend; a tidy table (one row
per cell, written as each cell finishes, finished cells skipped on rerun), the outcome the RFC 4787
reasoning predicts for each cell (:func:`expected_connected`, pure), and a heatmap.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from translab.config import FIREWALLS as FIREWALL_PROFILES
from translab.config import ICE_OPTIONS, NAT_CHOICES
from translab.emulate.netns.call import NetnsOptions
from translab.link.nat import TURN_OPTIONS, Cell, expected_connected
from translab.jsonio import dumps

__all__ = ["Cell", "TURN_OPTIONS", "default_cells", "expected_connected", "heatmap", "heatmap_figure",
           "outcome_label", "run_cell", "run_matrix"]

def default_cells(quick: bool = False) -> list[Cell]:
    """The matrix run by default: WebRTC over every NAT pair with none/stun/turn-udp on an open
    firewall, the blocked-UDP firewalls with every ICE option, relay-only checks, and WebSocket
    behind every NAT and firewall. ``quick``: a 14-cell subset that still shows each pattern."""
    nats = NAT_CHOICES
    if quick:
        pairs = [("none", "none"), ("full-cone", "full-cone"), ("symmetric", "restricted-cone"),
                 ("symmetric", "port-restricted-cone"), ("symmetric", "symmetric")]
        cells = [Cell("webrtc", a, b, "open", "stun") for a, b in pairs]
        cells += [Cell("webrtc", "symmetric", "symmetric", "open", "turn-udp")]
        cells += [Cell("webrtc", "port-restricted-cone", "none", fw, ice)
                  for fw in ("udp-blocked", "only-443") for ice in ("turn-tcp", "turns-443")]
        cells += [Cell("websocket", "symmetric", "none", fw, "none") for fw in FIREWALL_PROFILES]
        return cells
    cells = [Cell("webrtc", a, b, "open", ice) for ice in ("none", "stun", "turn-udp")
             for a, b in itertools.product(nats, nats)]
    cells += [Cell("webrtc", "port-restricted-cone", "port-restricted-cone", fw, ice)
              for fw in ("udp-blocked", "only-443") for ice in ICE_OPTIONS]
    cells += [Cell("webrtc", a, b, "open", "turn-udp", True) for a, b in (("none", "none"), ("symmetric", "symmetric"))]
    cells += [Cell("webrtc", "symmetric", "symmetric", fw, "turns-443", True) for fw in FIREWALL_PROFILES]
    cells += [Cell("websocket", a, "none", fw, "none") for a in nats for fw in FIREWALL_PROFILES]
    return cells


ROW_KEYS = ("status", "reason", "netns_connected", "netns_pair", "netns_pair_local_type",
            "netns_pair_remote_type", "setup_ice_connected_ms", "setup_dtls_connected_ms",
            "setup_tcp_connected_ms", "setup_tls_done_ms", "setup_upgrade_done_ms", "setup_first_rtp_received_ms",
            "netns_relay_bytes", "netns_relay_packets", "netns_bytes_to_pub", "netns_bytes_to_a", "netns_bytes_to_b",
            "m2e_p50_ms", "loss_rate", "netns_one_way_p50_ms", "netns_relay_kbps", "netns_drops")


def run_cell(cell: Cell, base_cfg: Any, connect_timeout_s: float = 5.0) -> dict[str, Any]:
    """Run one cell; a row (never raises for a call that fails to connect)."""
    from translab.call import run_call
    from translab.call.netns import NetnsEngine

    cfg = dataclasses.replace(base_cfg, transport=cell.transport,
                              tls=True if cell.transport == "websocket" else base_cfg.tls)
    opts = NetnsOptions(caller_nat=cell.caller_nat, callee_nat=cell.callee_nat, firewall=cell.firewall,
                        ice=cell.ice, relay_only=cell.relay_only, connect_timeout_s=connect_timeout_s,
                        drain_s=0.3)
    row: dict[str, Any] = {"key": cell.key, **dataclasses.asdict(cell), "expected_connected": expected_connected(cell)}
    try:
        res = run_call(cfg, NetnsEngine(opts))
        s = res.summary
        row.update({k: s.get(k) for k in ROW_KEYS})
        row["wall_s"] = getattr(res, "wall_s", math.nan)
    except Exception as err:  # a broken cell becomes a row with its error; the sweep goes on
        row.update(status="error", reason=f"{type(err).__name__}: {err}", netns_connected=False)
    row["connected"] = bool(row.get("netns_connected"))
    row["matches_expectation"] = row["connected"] == row["expected_connected"]
    return row


def run_matrix(cells: Iterable[Cell], out_dir: str | Path, base_cfg: Any,
               progress: Callable[[int, int, dict[str, Any]], None] | None = None,
               connect_timeout_s: float = 5.0) -> pd.DataFrame:
    """Run ``cells``, appending each row to ``out_dir/matrix.jsonl`` as it finishes (cells already
    there are skipped), then write ``matrix.csv`` and ``matrix.png``; returns the table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "matrix.jsonl"
    done = {json.loads(line)["key"] for line in log.read_text().splitlines() if line.strip()} if log.exists() else set()
    cells = list(cells)
    for i, cell in enumerate(cells):
        if cell.key in done:
            continue
        row = run_cell(cell, base_cfg, connect_timeout_s)
        with open(log, "a") as fh:
            fh.write(dumps(row) + "\n")
        if progress:
            progress(i + 1, len(cells), row)
    keys = {c.key for c in cells}
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    df = pd.DataFrame([r for r in rows if r["key"] in keys]).drop_duplicates("key", keep="last")
    if len(df) and "status" in df and (df["status"] == "error").all():  # nothing measured: no finished-looking table
        return df
    df.to_csv(out / "matrix.csv", index=False)
    if len(df):
        heatmap(df, out / "matrix.png")
    return df


_ABBREV = {"host": "H", "srflx": "S", "prflx": "P", "relay": "R"}


def outcome_label(row: pd.Series) -> str:
    """Short cell text: the selected pair as local-remote initials (H host, S srflx, P prflx,
    R relay) for WebRTC, "wss" for WebSocket, or "x" when the call did not connect."""
    if not row.get("connected"):
        return "x"
    if row.get("transport") == "websocket":
        return "wss"
    pair = str(row.get("netns_pair") or "")
    return "-".join(_ABBREV.get(p, p) for p in pair.split("-")) if pair else "ok"


def heatmap_figure(df: pd.DataFrame) -> Any:
    """One panel per (transport, firewall, ice, relay-only) group: caller NAT rows x callee NAT
    columns, green = connected, red = failed, dashed outline = differs from the expectation;
    text = selected candidate pair types. A matplotlib Figure (built without pyplot). ``df`` needs
    transport, firewall, ice, relay_only, caller_nat, callee_nat, connected, matches_expectation
    and netns_pair."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    groups = list(df.groupby(["transport", "firewall", "ice", "relay_only"], sort=False))
    ncol = min(4, len(groups))
    nrow = math.ceil(len(groups) / ncol)
    fig = Figure(figsize=(4.2 * ncol, 3.6 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    for ax, ((tr, fw, ice, ro), g) in zip(axes.flat, groups):
        rows = [n for n in NAT_CHOICES if n in set(g["caller_nat"])]
        cols = [n for n in NAT_CHOICES if n in set(g["callee_nat"])]
        img = np.full((len(rows), len(cols)), np.nan)
        for _, r in g.iterrows():
            i, j = rows.index(r["caller_nat"]), cols.index(r["callee_nat"])
            img[i, j] = 1.0 if r["connected"] else 0.0
            ax.text(j, i, outcome_label(r), ha="center", va="center", fontsize=7)
            if not r["matches_expectation"]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5, ec="black", ls="--"))
        ax.imshow(img, cmap="RdYlGn", vmin=0, vmax=1, alpha=0.6)
        ax.set_xticks(range(len(cols)), [c.replace("-cone", "") for c in cols], rotation=30, fontsize=7)
        ax.set_yticks(range(len(rows)), [r.replace("-cone", "") for r in rows], fontsize=7)
        ax.set_title(f"{tr} fw={fw} ice={ice}{' relay-only' if ro else ''}", fontsize=8)
        ax.set_xlabel("callee NAT", fontsize=7)
        ax.set_ylabel("caller NAT", fontsize=7)
    fig.suptitle("connected (green) or not (red); pair = caller-callee candidate types "
                 "(H host, S srflx, P prflx, R relay); dashed = differs from expectation", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def heatmap(df: pd.DataFrame, path: str | Path) -> None:
    """:func:`heatmap_figure` saved to ``path`` (PNG)."""
    heatmap_figure(df).savefig(path, dpi=110)
