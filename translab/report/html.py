"""The comparison report: one self-contained HTML file (figures as base64 PNG and audio as FLAC data:
URIs, inline CSS, no scripts, no external resources) built from a run directory written by
``translab run``.

Sections, answer first: the question; the recommendation per profile (translab.report.claims.
recommendations: paired comparisons with 95 % intervals); how the intervals are computed; the
article's claims with their verdicts, metrics, intervals and cells; the headline (one exact
configuration per row, mean [interval], E-model only when every row shares one scale); listening
pairs (like for like, same seed and clip); metric repeatability; the experiment's grid; the figures
of notebooks 02-04; a NAT and firewall section when the run has netns cells (see
translab.report.nat); a loss-protection section when it has protection cells (cost/gain per profile
and option, translab.lab.protection); a conversation section when it has conversation cells; failed cells; provenance (versions, machine, experiment file and hash, times).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from translab.errors import ConfigError
from translab.lab.store import MANIFEST_FILE, RESULTS_FILE, ResultStore, load_results
from translab.report import claims as claims_mod
from translab.metrics import statistics as st
from translab.report import figures as figs

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .5em;
text-align:right;vertical-align:top}th{background:#f4f4f4}td.l,th.l{text-align:left}
.supported{background:#d9f2d9}.refuted{background:#f8d7d7}.depends{background:#fff3c4}
.not-measured{background:#e8e8e8}.inconclusive{background:#fff3c4}
.ci{color:#666;font-size:.85em}code.hashes{font-size:.75em;word-break:break-all}ul{margin:.2em 0;padding-left:1.2em}
li.supported,li.refuted,li.inconclusive{background:none}li.supported::marker{color:#2a8a2a}li.refuted::marker{color:#c33}figure{margin:1em 0}figcaption{font-size:.88em;color:#555}
img{max-width:100%;height:auto;border:1px solid #eee}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;
font-size:.8em}.muted{color:#666;font-size:.88em}.warning{background:#fff3cd;border:1px solid #e0b000;padding:.5em}
"""

#: The headline's figures: (column, source column, unit, decimals). Each cell of the table is the mean
#: over the configuration's cells with its 95 % interval (translab.metrics.statistics).
HEADLINE_FIGURES: list[tuple[str, str, str, int]] = [
    ("m2e p50", "m2e_p50_ms", "ms", 0),
    ("m2e p95", "m2e_p95_ms", "ms", 0),
    ("m2e p99", "m2e_p99_ms", "ms", 0),
    ("delivery p99", "net_delay_p99_ms", "ms", 0),
    ("concealed", "concealed_pct", "%", 2),
    ("PLCMOS", "plcmos", "", 2),
    ("wire up", "wire_kbps_up", "kbit/s", 1),
]


def headline_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per profile and exact configuration (:data:`translab.report.claims.HEADLINE_SETTINGS`):
    ``n`` cells (seed x clip units) and, per figure of :data:`HEADLINE_FIGURES`, the mean over the
    cells with its 95 % interval (a :class:`translab.metrics.statistics.Estimate`). The E-model column
    is there only when every row is on one E-model scale (``emodel_band``), with the scale named."""
    d = claims_mod.ok_rows(df).copy()
    if not len(d) or "profile" not in d.columns:
        return pd.DataFrame()
    d["concealed_pct"] = 100 * pd.to_numeric(d["concealed_ratio"], errors="coerce") if "concealed_ratio" in d else math.nan
    profiles = sorted(set(d["profile"].map(claims_mod.profile_name)), key=lambda p: (not claims_mod.is_clean(p), p))
    rows = []
    bands: set[str] = set()
    for prof in profiles:
        for s in claims_mod.HEADLINE_SETTINGS:
            g = s.rows(d, prof)
            if not len(g):
                continue
            r: dict[str, Any] = {"profile": prof, "configuration": s.label, "n": len(g)}
            for name, src, _, _ in HEADLINE_FIGURES:
                r[name] = st.estimate(pd.to_numeric(g[src], errors="coerce").to_numpy()) if src in g else None
            if "emodel_mos" in g.columns:
                r["_emodel"] = st.estimate(pd.to_numeric(g["emodel_mos"], errors="coerce").to_numpy())
                bands.update(str(b) for b in g.get("emodel_band", pd.Series(dtype=str)).dropna().unique())
            rows.append(r)
    out = pd.DataFrame(rows)
    if "_emodel" in out.columns:
        if len(bands) == 1:
            out[f"E-model MOS ({emodel_scale(next(iter(bands)))})"] = out["_emodel"]
        out = out.drop(columns="_emodel")
    out.attrs["emodel_bands"] = sorted(bands)
    return out


def emodel_scale(band: str) -> str:
    """The E-model scale of an ``emodel_band`` value, in words (:func:`translab.metrics.emodel.scale_name`)."""
    from translab.metrics.emodel import scale_name

    return scale_name(band)


#: Beside the headline table: what the E-model is and is not.
EMODEL_CAVEAT = ("E-model MOS is a planning estimate (ITU-T G.107 family) from delay and loss, and its scale "
                 "differs by codec: Opus is rated on the G.107.2 super-wideband scale with published "
                 "Ie/Bpl values, PCM16 on the G.107.1 wideband scale, mu-law (twilio-json) on the narrowband "
                 "G.107 scale. Figures on different scales are not comparable, so the headline shows the "
                 "E-model only when every row shares one scale; no claim ranks the transports on it.")


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any, f: str) -> str:
    if isinstance(v, st.Estimate):
        if math.isnan(v.value):
            return "–"
        nd = int(f[1]) if len(f) > 1 and f[0] == "." and f[1].isdigit() else 2
        ci = (f"<br><span class='ci'>[{v.lo:.{nd}f}, {v.hi:.{nd}f}]</span>" if v.has_interval else "")
        return f"{v.value:.{nd}f}{ci}"
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
    keys = ["mode", "backend", "topology", "caller_nat", "callee_nat", "firewall", "ice", "relay_only", "transport", "codec", "bitrate", "frame_ms", "sample_rate", "fec", "dtx", "framing",
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


def _figure(make: Callable[[], Any], title: str, caption: str, anchor: str) -> str:
    """The figure ``make()`` draws as :func:`_img`; "" when it draws none (None), a muted note when it
    fails (a figure must never take the report down)."""
    try:
        fig = make()
    except Exception as err:  # noqa: BLE001
        return f"<p class='muted'>Figure not shown: {_e(type(err).__name__)}: {_e(err)}.</p>"
    return "" if fig is None else _img(fig, title, caption, anchor)


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
        except Exception as err:  # noqa: BLE001 (a figure must never take the report down)
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


STATS_NOTE = (f"Every interval is a 95 % confidence interval: {st.METHOD} (translab.metrics.statistics). "
              "A comparison pairs two exact configurations on the same seed and clip and bootstraps the mean "
              "of the per-pair differences over the seed x clip pairs; a single figure bootstraps the mean "
              "over its cells. A verdict is supported or refuted only when the whole interval is past the "
              "claim's threshold, otherwise it is inconclusive.")


def _verdict_cls(v: str) -> str:
    return {claims_mod.NOT_MEASURED: "not-measured", claims_mod.INCONCLUSIVE: "inconclusive"}.get(v, v)


def _cells_details(hashes: list[str], what: str) -> str:
    if not hashes:
        return "–"
    return (f"<details><summary>{len(hashes)} {_e(what)}</summary><code class='hashes'>"
            f"{_e(' '.join(hashes))}</code></details>")


def answer_section(df: pd.DataFrame) -> str:
    """The recommendation table: per profile and decision, the option to use, why, and the deciding
    paired differences with their intervals."""
    recs = claims_mod.recommendations(df)
    if not recs:
        return "<p>No decision could be compared in this run (it lacks the paired configurations).</p>"
    rows = []
    for r in recs:
        nums = []
        for cr, c, out in r.comparisons:
            who = {"a": "favours " + r.a.label, "b": "favours " + r.b.label}.get(out, out)
            nums.append(f"{_e(cr.label)}: {_e(c.diff.text(cr.unit, 2 if cr.unit in ('', 'kbit/s') else 1, True))}"
                        f" <span class='muted'>({_e(who)})</span>")
        cls = "inconclusive" if r.choice in ("inconclusive", "trade-off") else "supported"
        rows.append(f"<tr><td class='l'>{_e(r.profile)}</td><td class='l'>{_e(r.decision)}</td>"
                    f"<td class='l'>{_e(r.a.label)} <i>vs</i> {_e(r.b.label)}</td>"
                    f"<td class='l {cls}'><b>{_e(r.choice)}</b><br><span class='muted'>{_e(r.why)}</span></td>"
                    f"<td class='l'>{'<br>'.join(nums)}</td><td class='l'>{_cells_details(r.cells, 'cells')}</td></tr>")
    return ("<p>Per network profile, each choice a voice agent makes, decided by paired comparisons of two exact "
            "configurations (same seed and clip on both sides). Differences are <i>first option - second "
            "option</i>, mean over the seed x clip pairs with the 95 % interval; an option is recommended "
            "when it is better beyond the threshold (p95 5 ms, PLCMOS/PESQ 0.1, wire 10 %) on some figure and "
            "worse on none.</p><table><thead><tr><th class='l'>profile</th><th class='l'>decision</th>"
            "<th class='l'>options</th><th class='l'>use</th><th class='l'>deciding numbers (first - second)</th>"
            "<th class='l'>cells</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def setup_section(df: pd.DataFrame) -> str:
    """Call set-up per profile (:func:`translab.report.claims.setup_table`): each transport's median
    dial-to-first-media with its interval and the paired difference; or why it is not measured."""
    tab = claims_mod.setup_table(df)
    if tab.empty:
        return ("<p class='muted'>Set-up time is not measured in this run: it needs at least "
                f"{claims_mod.MIN_SETUP_CALLS} live calls per transport and profile with WebRTC's offer/answer "
                "crossing the emulated link (run <code>data/experiments/setup.toml</code>).</p>")

    def ci(v: float, lo: float, hi: float, signed: bool = False) -> str:
        f = "{:+.0f}" if signed else "{:.0f}"
        return f"{f.format(v)} [{f.format(lo)}, {f.format(hi)}]"

    rows = "".join(
        f"<tr><td class='l'>{_e(r.profile)}</td><td>{ci(r.websocket_ms, r.websocket_lo, r.websocket_hi)}</td>"
        f"<td>{ci(r.webrtc_ms, r.webrtc_lo, r.webrtc_hi)}</td><td>{ci(r.diff_ms, r.diff_lo, r.diff_hi, True)}</td>"
        f"<td>{int(r.n)}</td></tr>" for r in tab.itertuples())
    return ("<p>Call set-up: dial to the first audio packet received (ms), median over live calls with its 95 % "
            "interval. WebSocket: TCP + TLS + HTTP upgrade over the emulated path; WebRTC: the offer as an HTTPS "
            "POST over the same path (ICE gathered before it is sent), the answer back, then ICE and DTLS over "
            "UDP. The difference is the median of per-seed differences (same link draws on both sides).</p>"
            "<table><thead><tr><th class='l'>profile</th><th>WebSocket</th><th>WebRTC</th>"
            "<th>WebSocket - WebRTC</th><th>n pairs</th></tr></thead><tbody>" + rows + "</tbody></table>")


def _detail_around_parts(v: claims_mod.Verdict) -> str:
    """A verdict's detail without its parts' text (the parts are listed below it): what comes before
    and after them."""
    if not v.tests:
        return _e(v.detail)
    joined = "; ".join(t.text() for t in v.tests)
    before, _, after = v.detail.partition(joined)
    return _e(before.strip()) + (f" <span class='muted'>{_e(after.strip(' .'))}.</span>" if after.strip(" .") else "")


def claims_section(df: pd.DataFrame) -> str:
    """The article's claims: verdict, metric, every part with its interval, the cells used, figure."""
    rows = []
    for v in claims_mod.evaluate(df):
        link = (f"<a href='#fig-{_e(v.figure)}'>{_e(figs.FIGURES[v.figure][1])}</a>"
                if v.figure in figs.FIGURES else "")
        parts = ("<ul>" + "".join(f"<li class='{_verdict_cls(t.verdict)}'>{_e(t.text())}<br><span class='muted'>"
                                  f"cells: {_e(t.config)}</span></li>" for t in v.tests) + "</ul>") if v.tests else ""
        rows.append(f"<tr><td class='l'>{_e(v.claim)}</td><td class='l {_verdict_cls(v.verdict)}'><b>{_e(v.verdict)}"
                    f"</b></td><td class='l'>{_e(', '.join(v.metrics)) or '–'}</td>"
                    f"<td class='l'>{_detail_around_parts(v)}{parts}</td>"
                    f"<td class='l'>{_cells_details(v.cells, 'cells')}</td><td class='l'>{link}</td></tr>")
    return ("<p class='muted'>From a published vendor article on WebRTC vs WebSocket for voice AI; each verdict is "
            "computed from this run's results (translab.report.claims). A claim with several parts is supported "
            "when every part is, refuted when a part is refuted and none supported, <i>depends</i> when parts go "
            "both ways.</p><table><thead><tr><th class='l'>claim</th><th class='l'>verdict</th><th class='l'>metric"
            "</th><th class='l'>parts (interval, threshold, cells)</th><th class='l'>cells</th>"
            "<th class='l'>figure</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def headline_section(df: pd.DataFrame) -> str:
    """The headline table (one exact configuration per row) with its notes."""
    head = headline_table(df)
    if not len(head):
        return "<p>No finished cells of the headline configurations.</p>"
    bands = head.attrs.get("emodel_bands", [])
    em = ("" if len(bands) <= 1 else
          f"<p class='muted'><b>E-model left out:</b> these rows are on different E-model scales "
          f"({', '.join(emodel_scale(b) for b in bands)}), so their MOS values are not comparable. {EMODEL_CAVEAT}</p>")
    fmts = {name: f".{nd}f" for name, _, _, nd in HEADLINE_FIGURES}
    cols = {name: f"{name} ({unit})" if unit else name for name, _, unit, _ in HEADLINE_FIGURES}
    return ("<p>One exact configuration per row (adaptive playout, 20 ms frames, each codec's default concealment; "
            "the configuration names the rest); n = cells (seed x clip). Each figure: mean over the cells "
            "[95 % interval].</p>" + _table(head.rename(columns=cols), {cols.get(k, k): v for k, v in fmts.items()}
                                            | {c: ".2f" for c in head.columns if c.startswith("E-model")},
                                            left=("profile", "configuration")) + em
            + "<p class='muted'>m2e: mouth-to-ear latency of played audio incl. codec lookahead; delivery: packet "
              "arrival - send (the transport alone); concealed: share of output samples produced by concealment; "
              "wire: uplink bytes on the wire under the stated header model incl. control traffic.</p>")


#: Metrics whose repeatability the report measures.
REPEAT_METRICS = ("plcmos", "pesq_wb", "stoi")


def repeatability_table(df: pd.DataFrame, run_dir: str | Path | None = None) -> pd.DataFrame:
    """Metric repeatability on the clean profiles: per headline configuration, the largest spread
    (max - min over seeds, within one clip) of each metric, and how many clips' output WAVs were
    byte-identical across seeds (identical audio must score identically; a spread with differing
    audio is the pipeline's own variation, e.g. a jitter buffer stretching)."""
    import hashlib

    d = claims_mod.ok_rows(df)
    rows = []
    for prof in sorted({claims_mod.profile_name(p) for p in d.get("profile", []) if claims_mod.is_clean(p)}):
        for s in claims_mod.HEADLINE_SETTINGS:
            g = s.rows(d, prof)
            if len(g) < 2:
                continue
            r: dict[str, Any] = {"profile": prof, "configuration": s.label, "n": len(g),
                                 "clips": int(g["clip"].nunique()) if "clip" in g else 0}
            for m in REPEAT_METRICS:
                if m in g.columns:
                    r[f"{m} spread"] = st.repeatability(pd.to_numeric(g[m], errors="coerce").to_numpy(),
                                                        list(g["clip"]))[0]
            if run_dir is not None and "cell_hash" in g.columns:
                same = 0
                for _, cg in g.groupby("clip"):
                    digests = set()
                    for h in cg["cell_hash"]:
                        w = Path(run_dir) / "cells" / str(h) / "output.wav"
                        digests.add(hashlib.sha256(w.read_bytes()).hexdigest() if w.exists() else str(h))
                    same += len(digests) == 1
                r["clips with identical audio over seeds"] = same
            rows.append(r)
    return pd.DataFrame(rows)


def repeatability_section(df: pd.DataFrame, run_dir: str | Path | None) -> str:
    """The repeatability table with its explanation."""
    t = repeatability_table(df, run_dir)
    if not len(t):
        return "<p class='muted'>Not measured: needs several seeds of one configuration on a clean profile.</p>"
    return ("<p>On a clean, lossless link every seed should give the same output audio, and the same audio "
            "the same score: the spread (max - min over seeds within one clip, the worst clip) is the metric's "
            "noise floor in this pipeline. A verdict's threshold below this spread could not be trusted.</p>"
            + _table(t, {c: ".3f" for c in t.columns if c.endswith("spread")}, left=("profile", "configuration")))


def listen_section(df: pd.DataFrame, run_dir: str | Path) -> str:
    """Audio players: a like-for-like pair per profile (FLAC data URIs, so the report stays one file)."""
    from translab.report.listen import flac_data_uri, listening_pairs

    pairs = listening_pairs(df, run_dir)
    if not pairs:
        return "<p class='muted'>No output audio of a like-for-like pair in this run.</p>"
    out = ["<p>Each pair: the same clip and seed through two configurations on one profile (the seed x clip "
           "whose PLCMOS difference is the median one, not the most dramatic). Embedded as lossless FLAC at "
           "24 kHz; the files are <code>cells/&lt;hash&gt;/output.wav</code>.</p><table><thead><tr>"
           "<th class='l'>profile</th><th class='l'>clip, seed</th><th class='l'>first</th><th class='l'>second</th>"
           "</tr></thead><tbody>"]
    for p in pairs:
        def player(label: str, h: str, q: float, wav: Path) -> str:
            return (f"{_e(label)} <span class='muted'>(PLCMOS {q:.2f}, cell {_e(h)})</span><br>"
                    f"<audio controls preload='none' src='{flac_data_uri(wav)}'></audio>")
        out.append(f"<tr><td class='l'>{_e(p.profile)}</td><td class='l'>{_e(p.clip)}, seed {p.seed}</td>"
                   f"<td class='l'>{player(p.a.label, p.a_hash, p.a_plcmos, p.a_wav)}</td>"
                   f"<td class='l'>{player(p.b.label, p.b_hash, p.b_plcmos, p.b_wav)}</td></tr>")
    return "".join(out) + "</tbody></table>"


def missing_cells(manifest: dict[str, Any], df: pd.DataFrame) -> int:
    """How many cells of the run's grid (the manifest's cell hashes) have no row in ``df``."""
    hashes = manifest.get("cell_hashes") or []
    have = set(df["cell_hash"]) if "cell_hash" in df.columns else set()
    return sum(1 for h in hashes if h not in have)


def incomplete_text(missing: int, manifest: dict[str, Any]) -> str:
    """The "run incomplete" sentence of the report and of `translab report`'s warning."""
    total = len(manifest.get("cell_hashes") or [])
    return (f"{missing} of the grid's {total} cells have not finished; the figures and verdicts below use "
            f"the {total - missing} that have. Rerun `translab run` with the same --out to finish them.")


#: The protection table's figures: (heading, column of translab.lab.protection.FIGURES, scale, decimals).
PROTECTION_FIGURES: list[tuple[str, str, float, int]] = [
    ("wire up (kbit/s)", "wire_kbps_up", 1.0, 1),
    ("feedback down (kbit/s)", "feedback_kbps_down", 1.0, 2),
    ("added delay mean (ms)", "m2e_mean_ms", 1.0, 1),
    ("added delay p95 (ms)", "m2e_p95_ms", 1.0, 1),
    ("effective loss (pp)", "effective_loss_rate", 100.0, 2),
    ("PLCMOS gain", "plcmos", 1.0, 2),
    ("PESQ-WB gain", "pesq_wb", 1.0, 2),
    ("STOI gain", "stoi", 1.0, 3),
]


def protection_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per profile, start bitrate and protection option: n seed x clip pairs, the baseline's mean wire
    kbit/s and effective loss (%), and every figure of :data:`PROTECTION_FIGURES` as option - none
    (an :class:`translab.metrics.statistics.Estimate`: mean paired difference with its 95 % interval);
    empty without protection cells."""
    from translab.lab.protection import PAIR_KEYS, calls_from_results, summarise_pairs

    calls = calls_from_results(df)
    if not len(calls):
        return pd.DataFrame()
    summ = summarise_pairs(calls, keys=PAIR_KEYS)
    rows = []
    for _, r in summ.iterrows():
        n = int(r["n"])
        out: dict[str, Any] = {"profile": r["profile"], "option": r["option"],
                               "bitrate (kbit/s)": _kbps(r["bitrate_bps"]), "n": n,
                               "none: wire (kbit/s)": r["wire_kbps_up_base"],
                               "none: effective loss (%)": 100 * r["effective_loss_rate_base"]}
        for name, f, scale, _ in PROTECTION_FIGURES:
            out[name] = st.Estimate(scale * r[f"{f}_diff"], scale * r[f"{f}_lo"], scale * r[f"{f}_hi"], n,
                                    "mean difference")
        rows.append(out)
    return pd.DataFrame(rows)


def _kbps(bps: Any) -> str:
    try:
        return f"{float(bps) / 1000:g}"
    except (TypeError, ValueError):
        return str(bps)


def protection_section(df: pd.DataFrame) -> str:
    """The "Loss protection" section (empty string when the run has no protection cells)."""
    t = protection_table(df)
    if not len(t):
        return ""
    fmts = {name: f".{nd}f" for name, _, _, nd in PROTECTION_FIGURES} | {
        "none: wire (kbit/s)": ".1f", "none: effective loss (%)": ".2f"}
    return ("<h2 id='protection'>Loss protection</h2><p>What each protection option on the WebRTC path costs and "
            "buys, against the same sender without it (Opus in-band FEC at 10 % expected loss, adaptive "
            "playout, FEC then PLC): each figure is <i>option - none</i>, the mean over seed x clip pairs "
            "(same seed, clip and start bitrate on both sides) with its 95 % interval. <b>nack</b>: the receiver "
            "asks for lost packets (RFC 4585 generic NACK) and the sender retransmits them on an RTX stream "
            "(RFC 4588), useful while the round trip fits in the jitter buffer; <b>red1/red2</b>: each packet "
            "also carries the previous one or two frames (RFC 2198, Chrome's red/48000); <b>abr</b>: a "
            "sender-side controller modelled on libwebrtc's audio network adaptor sets bitrate, FEC and its "
            "expected loss from a GCC-style bandwidth estimate (delay-based from transport-cc feedback every "
            "100 ms, loss-based from RTCP receiver reports every 5 s, the first at 2.5 s) and the reported "
            "loss, and switches between 20 and 60 ms packets (less header overhead when the estimate is low). "
            "Simulated only: aiortc's live audio path has none of them.</p>"
            + _table(t, fmts, left=("profile", "option"))
            + "<p class='muted'>wire: uplink bytes on the wire incl. retransmissions, redundancy and RTCP; "
              "feedback: NACKs and reports towards the sender; added delay: mouth-to-ear (mean, p95) of "
              "played frames; effective loss: frames never heard (lost and not recovered by FEC, RTX or "
              "RED), in percentage points; gains: quality of the played audio against the clip.</p>")


def conversation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per caller access profile and topology (and mode, a column when the run has live conversations):
    n conversations and, each the mean over them with its
    95 % interval, turn latency p50/p95, the mean budget parts (ms), barge-in stop p50/p95 (ms),
    underruns per conversation, and WER on what the model heard beside the recogniser's clean
    baseline; empty without conversation cells."""
    d = claims_mod.conversation_rows(df)
    if not len(d):
        return pd.DataFrame()
    modes = [m for m in ("simulate", "live") if m in set(d.get("mode", pd.Series(["simulate"])))]
    cols = [("turn latency p50 (ms)", "turn_latency_p50_ms"), ("turn latency p95 (ms)", "turn_latency_p95_ms"),
            ("uplink (ms)", "uplink_mean_ms"), ("VAD (ms)", "vad_mean_ms"), ("think (ms)", "think_mean_ms"),
            ("downlink (ms)", "downlink_mean_ms"), ("barge-in stop p50 (ms)", "bargein_stop_p50_ms"),
            ("barge-in stop p95 (ms)", "bargein_stop_p95_ms"), ("underruns", "underruns"),
            ("WER", "wer"), ("WER clean", "wer_clean")]
    profs = sorted(set(d["profile"].map(claims_mod.profile_name)), key=lambda p: (not claims_mod.is_clean(p), p))
    rows = []
    for p in profs:
        for topo in ("direct-ws", "webrtc-gateway", "twilio"):
            for mode in modes:
                g = d[(d["topology"] == topo) & (d["profile"].map(claims_mod.profile_name) == p)]
                g = g[g["mode"] == mode] if "mode" in g.columns else g
                if not len(g):
                    continue
                r: dict[str, Any] = {"profile": p, "topology": topo, **({"mode": mode} if "live" in modes else {}),
                                     "n": len(g)}
                for name, c in cols:
                    r[name] = st.estimate(pd.to_numeric(g[c], errors="coerce").to_numpy()) if c in g else None
                rows.append(r)
    return pd.DataFrame(rows)


def conversation_section(df: pd.DataFrame, run_dir: str | Path | None = None) -> str:
    """The "Conversation" section (empty string when the run has no conversation cells)."""
    t = conversation_table(df)
    if not len(t):
        return ""
    fmts = {c: (".2f" if c.startswith("WER") or c == "underruns" else ".0f") for c in t.columns}
    live = "mode" in t.columns
    parts = ["<h2 id='conversation'>Conversation</h2><p>" + ("Simulated and live" if live else "Simulated")
             + " voice-agent conversations "
             "(translab.conversation): a scripted caller, the realtime-model stand-in (Silero server VAD, seeded "
             "think time, streamed replies) and the topology's legs; the caller's access network is the profile, "
             "datacenter legs co-located. Turn latency: end of the caller's speech to the agent's first audio at "
             "the caller's ear, split into uplink, VAD end-pointing, think and downlink (the mean parts add up to "
             "the mean turn latency). Each figure: mean over the conversations [95 % interval]; WER beside the "
             "same recogniser on the clean caller audio.</p>"
             + _table(t, fmts, left=("profile", "topology", "mode"))]
    def conversation_fig() -> Any:  # the simulated conversations (the live ones, when the run has only those)
        sim = claims_mod.conversation_rows(df)
        sim = sim[sim["mode"] == "simulate"] if live and (sim["mode"] == "simulate").any() else sim
        return figs.conversation_figure(sim, run_dir)

    parts.append(_figure(conversation_fig, "Turn latency, budget and barge-in per topology",
                         "Left: every answered turn's latency (box: quartiles, whiskers 1.5 IQR). Middle: mean "
                         "budget per turn, stacked. Right: caller onset to the agent's audio stopping at the "
                         "caller's ear, per barge-in.", "fig-conversation"))
    parts.append(conversation_agreement(df))
    parts.append("<p class='muted'>The claims \"WebSocket first\" and \"the cost of getting it wrong is mostly "
                 "engineering time\" are judged from these cells in the claims table (paired by seed and "
                 "script).</p>")
    return "".join(parts)


def conversation_agreement(df: pd.DataFrame) -> str:
    """Live against simulated conversations (translab.report.conversation): the run's own live
    conversation cells, else the checked-in data/measured/conversation_live.parquet; empty when
    neither is at hand."""
    from translab.report import conversation as conv

    rows, checked_in = conv.section_rows(df)
    t = conv.agreement_table(rows)
    if not len(t):
        return ""
    source = ("the checked-in measurement data/measured/conversation_live.parquet (this run has no live "
              "conversations; how it was measured: data/measured/README.md)" if checked_in else "this run")
    fmts = {"live p50 (ms)": ".0f", "sim p50 (ms)": ".0f", "live - sim (ms)": ".1f", "within 20 ms": ".2f",
            "max |live - sim| (ms)": ".0f"}
    parts = [f"<h3 id='conversation-live'>Live against simulated</h3><p>From {_e(source)}: each live "
             "conversation (real websockets and aiortc through the in-process emulator, in real time) beside the "
             "simulation of the same cell (profile, seed, script, think-time draws). The issue asks for "
             f"turn-latency p50 within {conv.AGREE_MS:g} ms. Per topology: the mean of live - simulated p50 over "
             "the calls with its 95 % interval (paired by seed), the share of calls within "
             f"{conv.AGREE_MS:g} ms with its interval, and calls during which the host stalled the event loop "
             "(&gt; 20 ms).</p>", _table(t, fmts, left=("topology", "profiles", "verdict")),
             f"<p>{_e(conv.agreement_words(t))}</p>"]
    parts.append(_figure(lambda: conv.agreement_figure(rows), "Live - simulated turn-latency p50 per call",
                         f"Each point one live conversation minus its simulation (marker: the caller's access "
                         f"profile; black edge: the host did not stall the event loop during it); shaded: within "
                         f"+-{conv.AGREE_MS:g} ms; black: the topology's mean with its 95 % interval.",
                         "fig-conversation-live"))
    return "".join(parts)


def browser_section(df: pd.DataFrame) -> str:
    """The "A real browser" section (translab.report.browser; empty string without Chromium cells)."""
    from translab.report import browser as br

    neg = br.negotiation_table(df)
    if not len(neg):
        return ""
    parts = ["<h2 id='browser'>A real browser: Chromium versus aiortc as the caller</h2><p>The same live WebRTC "
             "call with headless Chromium (libwebrtc: its Opus encoder, ICE and DTLS; the clip as its fake "
             "microphone) or aiortc as the caller; translab answers (as <code>translab serve</code>) and both "
             "cross the same emulated link. What each offered, what translab's answer kept, and what the "
             "encoder then sent:</p>"
             + _table(neg, {"frame sent (ms)": ".1f", "payload sent (kbit/s)": ".1f"}, left=tuple(neg.columns))]
    pt = br.paired_table(df)
    if len(pt):
        cells = pt.assign(**{k: [br.estimate_text(e, int(nd), signed=(k == "chromium - aiortc"))
                                 for e, nd in zip(pt[k], pt["decimals"])]
                             for k in ("chromium", "aiortc", "chromium - aiortc")})
        parts.append("<p>Paired by seed and clip on each profile: each caller's mean [95 % interval] and the mean "
                     "of the per-pair differences <i>Chromium - aiortc</i> [95 % interval]. Payload: what translab "
                     "received; set-up: ICE + DTLS from the answer to connected (both over the emulated UDP path; "
                     "the offer/answer round is shown but is not like for like: aiortc's crosses the emulated TCP "
                     "path, the browser's goes to translab's signalling port on loopback); quality: what "
                     "translab's adaptive playout made of each caller's audio, against the clip.</p>"
                     + _table(cells[["profile", "figure", "n", "chromium", "aiortc", "chromium - aiortc"]],
                              left=("profile", "figure")))
    parts.append(_figure(lambda: br.paired_figure(df), "Chromium - aiortc as the caller",
                         "Left: paired differences of the quality translab heard (PLCMOS, PESQ-WB, STOI; above "
                         "0: Chromium's audio scored higher). Right: ICE + DTLS after the answer per caller "
                         "(ms). Bars: 95 % intervals over the seeds.", "fig-browser"))
    nt = br.neteq_table(df)
    if len(nt):
        cells = nt.assign(**{k: [br.estimate_text(e, int(nd), signed=(k == "browser - model"))
                                 for e, nd in zip(nt[k], nt["decimals"])]
                             for k in ("browser (NetEq)", "translab model", "browser - model")})
        parts.append("<p>The other direction, on the Chromium cells: translab sends the clip to the browser, whose "
                     "NetEq plays it (recorded from an AudioWorklet); translab's adaptive playout plays the same "
                     "packets at the same arrival times (the emulator's delivery log). Browser - model is paired "
                     "within each call.</p>"
                     + _table(cells[["profile", "figure", "n", "browser (NetEq)", "translab model", "browser - model"]],
                              left=("profile", "figure")))
    return "".join(parts)


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
    missing = missing_cells(manifest, df)
    if missing:
        parts.append(f"<p class='warning'><b>Run incomplete:</b> {_e(incomplete_text(missing, manifest))}</p>")
    parts.append(f"<p id='question'><b>{_e(exp.get('question') or exp.get('description') or '')}</b></p>")
    parts.append("<h2 id='answer'>The answer: what to use on each network</h2>" + answer_section(df))
    parts.append("<h3 id='setup'>Call set-up</h3>" + setup_section(df))
    parts.append(f"<p class='muted' id='statistics'>{_e(STATS_NOTE)}</p>")
    parts.append("<h2 id='claims'>The article's claims</h2>" + claims_section(df))
    parts.append("<h2 id='headline'>Headline: per profile and configuration</h2>" + headline_section(df))
    parts.append("<h2 id='listen'>Listen</h2>" + listen_section(df, run))
    parts.append("<h2 id='repeatability'>Metric repeatability</h2>" + repeatability_section(df, run))
    if exp.get("description") and exp.get("description") != exp.get("question"):
        parts.append(f"<h2 id='grid'>The experiment</h2><p>{_e(exp['description'])}</p>" + _grid_section(manifest, df))
    else:
        parts.append("<h2 id='grid'>The experiment</h2>" + _grid_section(manifest, df))

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
    parts.append(protection_section(df))
    parts.append(conversation_section(df, run))
    parts.append(browser_section(df))

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
