"""The comparison report: one self-contained HTML file (figures as base64 PNG data: URIs, inline CSS,
no scripts, no external resources) built from a run directory written by ``translab run``.

Sections: the question and the grid; the headline table per transport and profile; the figures of
notebooks 02-04; a NAT and firewall section when the run has netns cells (outcome table and
heatmap, set-up time by candidate type, relay overhead and relay kbit/s per bitrate, see
translab.report.nat); the claims table with verdicts; failed cells; provenance (versions, machine,
experiment file and hash, times).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from translab.errors import ConfigError
from translab.lab.store import MANIFEST_FILE, RESULTS_FILE, ResultStore, load_results
from translab.report import claims as claims_mod
from translab.report import figures as figs

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .5em;
text-align:right;vertical-align:top}th{background:#f4f4f4}td.l,th.l{text-align:left}
.supported{background:#d9f2d9}.refuted{background:#f8d7d7}.depends{background:#fff3c4}
.not-measured{background:#e8e8e8}figure{margin:1em 0}figcaption{font-size:.88em;color:#555}
img{max-width:100%;height:auto;border:1px solid #eee}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;
font-size:.8em}.muted{color:#666;font-size:.88em}
"""

HEADLINE_COLUMNS: list[tuple[str, str, str]] = [
    # (column in the table, source column, format)
    ("cells", "", "d"),
    ("m2e p50 (ms)", "m2e_p50_ms", ".0f"),
    ("m2e p95 (ms)", "m2e_p95_ms", ".0f"),
    ("m2e p99 (ms)", "m2e_p99_ms", ".0f"),
    ("p95 range over seeds (ms)", "", ""),
    ("delivery p99 (ms)", "net_delay_p99_ms", ".0f"),
    ("set-up (ms, live)", "setup_ms", ".0f"),
    ("loss (%)", "loss_pct", ".2f"),
    ("late (%)", "late_pct", ".2f"),
    ("concealed (%)", "concealed_pct", ".2f"),
    ("PLCMOS", "plcmos", ".2f"),
    ("wire kbit/s (up)", "wire_kbps_up", ".0f"),
    ("E-model MOS", "emodel_mos", ".2f"),
]


def headline_table(df: pd.DataFrame) -> pd.DataFrame:
    """Median per transport and profile of the headline figures (units in the column names), over the
    like-for-like cells only (:func:`translab.report.claims.like_for_like`: adaptive playout, 20 ms
    frames, default concealment), so both transports' groups have the same receiver mix. ``cells``
    is the number of cells in the group (n); the p95 range over seeds is min-max of the per-seed
    medians."""
    d = claims_mod.like_for_like(claims_mod.ok_rows(df)).copy()
    if not len(d):
        return pd.DataFrame()
    d["setup_ms"] = claims_mod.setup_ms(d)
    for src, dst in (("loss_rate", "loss_pct"), ("late_rate", "late_pct"), ("concealed_ratio", "concealed_pct")):
        d[dst] = 100 * pd.to_numeric(d[src], errors="coerce") if src in d.columns else math.nan
    d["profile_name"] = d["profile"].map(claims_mod.profile_name)
    rows = []
    for (tr, prof), g in d.groupby(["transport", "profile_name"]):
        r: dict[str, Any] = {"transport": tr, "profile": prof, "cells": len(g)}
        for name, src, _ in HEADLINE_COLUMNS[1:]:
            if not src:
                continue
            r[name] = pd.to_numeric(g[src], errors="coerce").median() if src in g.columns else math.nan
        lo, hi = claims_mod.seed_range(g, "m2e_p95_ms")
        r["p95 range over seeds (ms)"] = (f"{lo:.0f}-{hi:.0f}" if not math.isnan(lo) else "–")
        rows.append(r)
    cols = ["transport", "profile"] + [name for name, _, _ in HEADLINE_COLUMNS]
    return pd.DataFrame(rows)[cols]


#: Beside the headline table: what the E-model column is and is not.
EMODEL_CAVEAT = ("E-model MOS is a planning estimate (ITU-T G.107 family) from delay and loss, and its scale "
                 "differs by codec: Opus is rated on the G.107.2 fullband/super-wideband scale with published "
                 "Ie/Bpl values, PCM16 on the G.107.1 wideband scale, mu-law (twilio-json) on the narrowband "
                 "G.107 scale. The columns are not directly comparable across codecs, and the E-model can "
                 "disagree with PLCMOS, which listens to the audio; no claim ranks the transports on it alone.")


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any, f: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    try:
        return format(v, f)
    except (TypeError, ValueError):
        return _e(v)


def _table(df: pd.DataFrame, formats: dict[str, str] | None = None, left: tuple[str, ...] = ()) -> str:
    formats = formats or {}
    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in df.columns)
    body = []
    for _, r in df.iterrows():
        tds = "".join(f'<td class="{"l" if c in left else ""}">{_fmt(r[c], formats.get(c, ""))}</td>'
                      for c in df.columns)
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _durations(df: pd.DataFrame) -> str:
    """The grid's duration settings: the explicit ``duration_s`` values of the cells' configs, and
    "whole clip" for cells without one (their summary's duration_s is the clip's length, which is
    not a setting). Without configs, the summary values."""
    if "config" not in df.columns:
        vals = sorted(pd.to_numeric(df.get("duration_s", pd.Series(dtype=float)), errors="coerce").dropna().unique())
        return ", ".join(f"{v:g}" for v in vals)
    counts: dict[float | None, int] = {}
    for c in df["config"].dropna():
        try:
            v = json.loads(c).get("duration_s") if isinstance(c, str) else None
        except ValueError:
            v = None
        key = None if v is None else float(v)
        counts[key] = counts.get(key, 0) + 1
    out = [f"{v:g} ({counts[v]} cells)" for v in sorted(k for k in counts if k is not None)]
    if None in counts:
        out.append(f"whole clip ({counts[None]} cells)")
    return ", ".join(out)


def _grid_section(manifest: dict[str, Any], df: pd.DataFrame) -> str:
    varying = []
    skip = {"cell_hash", "metrics"}
    keys = ["mode", "backend", "caller_nat", "callee_nat", "firewall", "ice", "relay_only", "transport", "codec", "bitrate", "frame_ms", "sample_rate", "fec", "dtx", "framing",
            "profile", "playout", "conceal", "clip", "seed", "duration_s"]
    for k in keys:
        if k == "duration_s":
            shown = _durations(df)
            if shown:
                varying.append(f"<tr><th class='l'>{_e(k)}</th><td class='l'>{_e(shown)}</td></tr>")
            continue
        if k in df.columns and k not in skip:
            vals = [v for v in pd.unique(df[k].dropna())]
            if vals:
                # numbers in ascending order and without a stray ".0" (frame_ms 10, 20, 60, 100)
                if all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in vals):
                    vals = [f"{v:g}" for v in sorted(vals)]
                shown = ", ".join(_e(claims_mod.profile_name(v) if k == "profile" else v) for v in vals)
                varying.append(f"<tr><th class='l'>{_e(k)}</th><td class='l'>{shown}</td></tr>")
    grid = manifest.get("grid", {})
    dropped = grid.get("dropped_or_merged", {})
    rules = ""
    if dropped:
        from translab.lab.experiment import describe_rules

        docs = dict(describe_rules())
        docs.update({"exclude": "matched an [[exclude]] table", "duplicate": "same cell as an earlier one"})
        rules = "<p class='muted'>Grid expansion: " + "; ".join(
            f"<b>{_e(k)}</b> {v} ({_e(docs.get(k, ''))})" for k, v in dropped.items()) + ".</p>"
    return (f"<p>{grid.get('cells', len(df))} cells from a product of {grid.get('product_size', '?')} "
            f"combinations. Values in this run:</p><table>{''.join(varying)}</table>{rules}")


def _run_line(manifest: dict[str, Any]) -> str:
    """"123 cells: 120 run, 3 already done, 0 failed, in 125 s" from the manifest."""
    c = manifest.get("counts", {})
    try:
        t0 = _dt.datetime.fromisoformat(manifest["started_at"])
        t1 = _dt.datetime.fromisoformat(manifest["ended_at"])
        took = f", in {(t1 - t0).total_seconds():.0f} s"
    except (KeyError, TypeError, ValueError):
        took = ""
    interrupted = " (interrupted)" if manifest.get("interrupted") else ""
    return (f"{c.get('cells', '?')} cells: {c.get('run', '?')} run, {c.get('skipped', '?')} already done, "
            f"{c.get('failed', '?')} failed{took}{interrupted}")


def _computed_line(df: pd.DataFrame) -> str:
    """When the results were computed: first and last ``finished_at`` of the rows (a resumed run's
    manifest only knows its own invocation, which may have computed nothing), with the code versions
    the rows carry."""
    if "finished_at" not in df.columns:
        return "unknown (no finished_at column)"
    t = pd.to_datetime(df["finished_at"], errors="coerce", utc=True).dropna()
    if not len(t):
        return "unknown"
    line = f"{len(t)} cells finished between {t.min():%Y-%m-%d %H:%M:%S} and {t.max():%Y-%m-%d %H:%M:%S} UTC"
    if "code_version" in df.columns:
        versions = sorted(str(v) for v in df["code_version"].dropna().unique())
        if versions:
            line += f" (code version{'s' if len(versions) > 1 else ''} {', '.join(versions)})"
    return line


def _img(fig: Any, title: str, caption: str, anchor: str) -> str:
    b64 = figs.to_png_base64(fig)
    return (f"<figure id='{anchor}'><h3>{_e(title)}</h3><img alt='{_e(title)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def nat_section(df: pd.DataFrame) -> str:
    """The NAT and firewall section (empty string when the run has no netns cells)."""
    from translab.report import nat

    if not nat.has_netns(df):
        return ""
    parts = ["<h2 id='nat'>NAT and firewall</h2><p>Cells run on the netns backend: real kernel UDP/TCP in "
             "network namespaces, each end behind its own NAT preset and firewall profile, coturn for STUN/TURN. "
             "The expectation comes from the RFC 4787 facts (translab.link.nat.expected_connected).</p>"]
    summ = nat.outcome_summary(df)
    differs = (" Differs from the expectation: " + ", ".join(_e(k) for k in summ["differs"]) + "."
               if summ["differs"] else " Every outcome matches the expectation.")
    parts.append(f"<p><b>{summ['connected']} of {summ['cells']} calls connected; {summ['matches']} of "
                 f"{summ['cells']} as expected.</b>{differs}</p>")
    t = nat.outcome_table(df)
    parts.append("<h3 id='nat-outcomes'>Outcomes</h3>" + _table(
        t.assign(connected=t["connected"].map({True: "yes", False: "no"}),
                 matches_expectation=t["matches_expectation"].map({True: "yes", False: "NO"})),
        {"bitrate_kbps": "g", "setup_ms": ".0f"},
        left=("transport", "caller_nat", "callee_nat", "firewall", "ice", "pair", "path")))
    errors: list[str] = []
    for fn, title, caption, anchor in (
            (nat.outcome_heatmap, "Outcome matrix",
             "Caller NAT (rows) x callee NAT (columns) per transport, firewall and ICE option: green connected, "
             "red not; text = selected pair (H host, S srflx, P prflx, R relay) or wss; dashed = differs from "
             "the expectation.", "fig-nat-heatmap"),
            (nat.setup_by_path_figure, "Set-up time by candidate type",
             "Median ms from call start to first media per transport and path (the most relayed candidate of "
             "the selected pair); ticks mark ICE/DTLS (WebRTC) or TCP/TLS/upgrade (WebSocket) completion.",
             "fig-nat-setup")):
        try:
            fig = fn(df)
        except Exception as err:  # a figure must never take the report down
            errors.append(f"{title}: {type(err).__name__}: {err}")
            continue
        if fig is not None:
            parts.append(_img(fig, title, caption, anchor))
    sp = nat.setup_by_path(df)
    if len(sp):
        parts.append("<h3 id='nat-setup'>Set-up milestones by path (ms, median)</h3>"
                     + _table(sp, {c: ".0f" for c in sp.columns if c.endswith("_ms")}, left=("transport", "path")))
    ro = nat.relay_overhead(df)
    if len(ro):
        parts.append("<h3 id='nat-relay'>Relay overhead</h3>" + _table(ro, {c: ".2f" for c in ro.columns if c.endswith("_ms")}
                                                                       | {c: ".1f" for c in ro.columns if c.endswith("_kbps")}, left=("transport",))
                     + "<p class='muted'>One-way media delay (packet arrival - send) of relayed against direct calls. "
                       "coturn sits one hop from both LANs here, so the relay adds its forwarding time, not the "
                       "detour a relay far from both ends would add.</p>")
    rb = nat.relay_by_bitrate(df)
    if len(rb):
        parts.append("<h3 id='nat-relay-bitrate'>What a TURN relay carries per call</h3>"
                     + _table(rb, {c: ".1f" for c in rb.columns if c.endswith("_kbps")} | {"bitrate_kbps": "g"})
                     + "<p class='muted'>From coturn's byte counters: relay_in = one talker's stream entering the "
                       "relay (TURN-framed SRTP/SRTCP, no IP/UDP headers); in_out = in + out; two_way_call = 2 x "
                       "relay_in (a conversation has two talkers). See the TURN claim below.</p>")
    if errors:
        parts.append("<p class='muted'>Not shown: " + _e("; ".join(errors)) + "</p>")
    return "\n".join(parts)


def build_html(run_dir: str | Path) -> str:
    """The report of ``run_dir`` as an HTML string."""
    run = Path(run_dir)
    if not (run / RESULTS_FILE).exists():
        raise ConfigError("dir", str(run), f"a directory written by `translab run` (with {RESULTS_FILE})")
    df = load_results(run)
    manifest = ResultStore(run).read_manifest()
    exp = manifest.get("experiment", {})
    ok = claims_mod.ok_rows(df)
    n_failed = int((df["status"] != "ok").sum()) if "status" in df.columns else 0

    parts: list[str] = []
    title = f"translab report: {exp.get('name', run.name)}"
    parts.append(f"<h1>{_e(title)}</h1>")
    parts.append(f"<p class='muted'>Generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC} from "
                 f"<code>{_e(run)}</code>. {len(df)} cells ({len(ok)} ok, {n_failed} failed).</p>")
    parts.append("<h2 id='question'>The question</h2>")
    parts.append(f"<p><b>{_e(exp.get('question') or exp.get('description') or '')}</b></p>")
    if exp.get("description") and exp.get("description") != exp.get("question"):
        parts.append(f"<p>{_e(exp['description'])}</p>")
    parts.append("<h2 id='grid'>The grid</h2>" + _grid_section(manifest, df))

    parts.append("<h2 id='headline'>Headline: per transport and profile</h2>")
    head = headline_table(df)
    if len(head):
        fmts = {name: f for name, _, f in HEADLINE_COLUMNS}
        parts.append(f"<p><b>Like for like:</b> only cells with {_e(claims_mod.LIKE_FOR_LIKE)} "
                     f"({len(claims_mod.like_for_like(ok))} of {len(ok)} finished cells; the playout, frame-size "
                     f"and concealment variants appear in the figures); cells = n per group.</p>")
        parts.append(_table(head, fmts, left=("transport", "profile")))
        parts.append(f"<p class='muted'><b>E-model caveat:</b> {_e(EMODEL_CAVEAT)}</p>")
        parts.append("<p class='muted'>Medians over the cells of each group; p95 range over seeds: min-max of the "
                     "per-seed median p95, a measure of the noise. m2e: mouth-to-ear latency of "
                     "played audio (stalls included); delivery: packet arrival - send (the transport alone, TCP "
                     "retransmissions and head-of-line waits included); late: arrived after its playout deadline; concealed: "
                     "share of output samples produced by concealment; wire: bytes on the wire under the "
                     "stated header model incl. control traffic.</p>")
    else:
        parts.append("<p>No finished cells.</p>")

    parts.append("<h2 id='figures'>Figures</h2>")
    errors: dict[str, str] = {}
    rendered = figs.render_all(df, run, errors)
    for key, (_, ftitle, caption) in figs.FIGURES.items():
        fig = rendered.get(key)
        if fig is None:
            why = errors.get(key, "no data for it in this run")
            parts.append(f"<h3 id='fig-{key}'>{_e(ftitle)}</h3><p class='muted'>Not shown: {_e(why)}.</p>")
            continue
        b64 = figs.to_png_base64(fig)
        parts.append(f"<figure id='fig-{key}'><h3>{_e(ftitle)}</h3><img alt='{_e(ftitle)}' "
                     f"src='data:image/png;base64,{b64}'><figcaption>{_e(caption)}</figcaption></figure>")

    parts.append(nat_section(df))

    parts.append("<h2 id='claims'>Claims</h2><p class='muted'>From a published vendor article on WebRTC vs "
                 "WebSocket for voice AI; each verdict is computed from this run's results "
                 "(translab.report.claims).</p>")
    rows = []
    for v in claims_mod.evaluate(df):
        cls = "not-measured" if v.verdict == claims_mod.NOT_MEASURED else v.verdict
        link = (f"<a href='#fig-{_e(v.figure)}'>{_e(figs.FIGURES[v.figure][1])}</a>"
                if v.figure in figs.FIGURES else "")
        rows.append(f"<tr><td class='l'>{_e(v.claim)}</td><td class='l {cls}'><b>{_e(v.verdict)}</b></td>"
                    f"<td class='l'>{_e(v.detail)}</td><td class='l'>{link}</td></tr>")
    parts.append("<table><thead><tr><th class='l'>claim</th><th class='l'>verdict</th><th class='l'>evidence"
                 "</th><th class='l'>figure</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")

    if n_failed:
        failed = df[df["status"] != "ok"]
        cols = [c for c in ("cell_hash", "mode", "transport", "codec", "profile", "seed", "error") if c in failed]
        parts.append("<h2 id='failed'>Failed cells</h2>" + _table(failed[cols], left=tuple(cols)))

    parts.append("<h2 id='provenance'>Provenance</h2>")
    prov = [("experiment file", exp.get("source")), ("content hash", exp.get("content_hash")),
            ("code version", manifest.get("code_version")),
            ("cells computed", _computed_line(df)),
            ("last invocation started", manifest.get("started_at")),
            ("last invocation ended", manifest.get("ended_at")), ("last invocation", _run_line(manifest)),
            ("executor", f"{manifest.get('executor')} ({manifest.get('workers')} workers)"),
            ("seeds", ", ".join(map(str, manifest.get("seeds", []))))]
    prov += [(f"version: {k}", v) for k, v in manifest.get("versions", {}).items()]
    prov += [(f"machine: {k}", v) for k, v in manifest.get("machine", {}).items()]
    parts.append("<table>" + "".join(f"<tr><th class='l'>{_e(k)}</th><td class='l'>{_e(v)}</td></tr>"
                                     for k, v in prov) + "</table>")
    if exp.get("text"):
        parts.append(f"<details><summary>Experiment file</summary><pre>{_e(exp['text'])}</pre></details>")
    parts.append("<p class='muted'>Per-cell traces, output audio and summaries: <code>cells/&lt;cell_hash&gt;/"
                 "</code> beside results.parquet.</p>")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default DIR/report.html) atomically; returns the path."""
    target = Path(out) if out else Path(run_dir) / "report.html"
    text = build_html(run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target.resolve()


__all__ = ["build_html", "headline_table", "write_report", "MANIFEST_FILE"]
