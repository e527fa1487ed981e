"""The comparison report: one self-contained HTML file (figures as base64 PNG data: URIs, inline CSS,
no scripts, no external resources) built from a run directory written by ``translab run``.

Sections: the question and the grid; the headline table per transport and profile; the figures of
notebooks 02-04; the claims table with verdicts; failed cells; provenance (versions, machine,
experiment file and hash, times).
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
from pathlib import Path
from typing import Any

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
    """Median per transport and profile of the headline figures (units in the column names)."""
    d = claims_mod.ok_rows(df).copy()
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
            r[name] = pd.to_numeric(g[src], errors="coerce").median() if src in g.columns else math.nan
        rows.append(r)
    return pd.DataFrame(rows)


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


def _grid_section(manifest: dict[str, Any], df: pd.DataFrame) -> str:
    varying = []
    skip = {"cell_hash", "metrics"}
    keys = ["mode", "transport", "codec", "bitrate", "frame_ms", "sample_rate", "fec", "dtx", "framing",
            "profile", "playout", "conceal", "clip", "seed", "duration_s"]
    for k in keys:
        if k in df.columns and k not in skip:
            vals = [v for v in pd.unique(df[k].dropna())]
            if vals:
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
        parts.append(_table(head, fmts, left=("transport", "profile")))
        parts.append("<p class='muted'>Medians over the cells of each group. m2e: mouth-to-ear latency of "
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
            ("code version", manifest.get("code_version")), ("started", manifest.get("started_at")),
            ("ended", manifest.get("ended_at")), ("last run", _run_line(manifest)),
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
