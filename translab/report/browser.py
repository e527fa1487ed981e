"""What a real browser changes versus aiortc (data/experiments/browser.toml): live WebRTC calls whose
caller is headless Chromium (``peer = "chromium"``, translab.call.browser) or aiortc (translab's own
caller), on the same profiles, seeds and clip.

* :func:`negotiation_table`: per caller, what was negotiated and sent: the offer's and the answer's
  Opus fmtp (bitrate cap, ``useinbandfec``, ``usedtx``, ``ptime``), whether the offer carries audio
  NACK (``a=rtcp-fb:<opus> nack``) and RED (``red/48000``) and whether translab's answer keeps them,
  the frame length actually sent and the payload bit rate (kbit/s);
* :func:`paired_table`: per profile, each figure of :data:`PAIRED` as chromium - aiortc (same seed and
  clip; :func:`translab.report.claims.compare`, a mean paired difference with its 95 % interval),
  beside each side's mean: payload kbit/s, ICE + DTLS set-up after the answer (ms), the signalling
  round (offer to answer, ms), loss, the Opus FEC packets translab received and the effective loss
  (frames neither received nor recovered from FEC), and what translab heard (PLCMOS, PESQ-WB, STOI
  against the clip);
* :func:`neteq_table`: per profile, on the Chromium cells' reply leg (translab -> browser), what the
  browser's NetEq played against translab's adaptive playout of the same arrivals (browser - model,
  paired within each call): the quality heard and NetEq's vs the model's mean buffer delay and
  concealed share.

The set-up milestones differ by caller: aiortc's offer/answer crosses the emulated TCP path (an
HTTPS POST), the browser's goes straight to translab's signalling port on loopback; ICE and DTLS
cross the emulated UDP path in both. So the comparable part is ICE + DTLS after the answer
(``setup_ice_dtls_ms``); the signalling round is shown for each, not compared as like for like.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from translab.metrics import statistics as st
from translab.report import claims

CHROMIUM = claims.setting("Chromium", transport="webrtc", mode="live", peer="chromium")
AIORTC = claims.setting("aiortc", transport="webrtc", mode="live", peer="aiortc")

#: (label, column, unit, decimals) compared chromium - aiortc
PAIRED = (
    ("payload kbit/s", "payload_kbps_up", "kbit/s", 1),
    ("ICE + DTLS after answer (ms)", "setup_ice_dtls_ms", "ms", 0),
    ("offer -> answer (ms)", "setup_signalling_ms", "ms", 0),
    ("loss (%)", "loss_pct", "%", 2),
    ("Opus FEC packets received", "rx_fecPacketsReceived", "", 0),
    ("effective loss (%)", "effective_loss_pct", "%", 2),
    ("PLCMOS", "plcmos", "", 2),
    ("PESQ-WB", "pesq_wb", "", 2),
    ("STOI", "stoi", "", 3),
)
#: (label, browser column, model column, unit, decimals): the reply leg, NetEq vs translab's model
NETEQ = (
    ("PLCMOS heard", "down_browser_plcmos", "down_model_plcmos", "", 2),
    ("PESQ-WB heard", "down_browser_pesq_wb", "down_model_pesq_wb", "", 2),
    ("STOI heard", "down_browser_stoi", "down_model_stoi", "", 3),
    ("mean buffer delay (ms)", "down_neteq_mean_buffer_delay_ms", "down_model_mean_buffer_delay_ms", "ms", 1),
    ("concealed (%)", "down_neteq_concealed_pct", "down_model_concealed_pct", "%", 2),
)


def _num(d: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(d[col], errors="coerce") if col in d.columns else pd.Series(np.nan, index=d.index)


def browser_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The ok live WebRTC rows of a run with Chromium cells, ``peer`` filled in (``aiortc`` where the
    row has none) and the derived columns: ``setup_ice_dtls_ms`` (answer to DTLS connected, ms),
    ``setup_signalling_ms`` (offer ready to answer, ms), ``loss_pct``, ``effective_loss_pct`` and, on Chromium rows,
    ``down_*_concealed_pct`` (%). Empty without Chromium cells."""
    d = claims.ok_rows(df)
    if not len(d) or "peer" not in d.columns or not (d["peer"] == "chromium").any():
        return d.iloc[0:0]
    d = d[(d.get("mode") == "live") & (d.get("transport") == "webrtc")].copy()
    d["peer"] = d["peer"].where(d["peer"].notna(), "aiortc").astype(str)
    chrome = (d["peer"] == "chromium").to_numpy()
    d["setup_ice_dtls_ms"] = np.where(chrome, _num(d, "setup_connected_ms") - _num(d, "setup_answer_ms"),
                                      _num(d, "setup_dtls_connected_ms") - _num(d, "setup_answer_received_ms"))
    d["setup_signalling_ms"] = np.where(chrome, _num(d, "setup_answer_ms") - _num(d, "setup_offer_ready_ms"),
                                        _num(d, "setup_answer_received_ms") - _num(d, "setup_offer_ready_ms"))
    d["loss_pct"] = 100.0 * _num(d, "loss_rate")
    d["effective_loss_pct"] = 100.0 * _num(d, "effective_loss_rate")
    for side in ("neteq", "model"):
        d[f"down_{side}_concealed_pct"] = 100.0 * _num(d, f"down_{side}_concealed_share")
    return d


def _mode(s: pd.Series) -> str:
    s = s.dropna().astype(str)
    s = s[s != ""]
    if not len(s):
        return ""
    counts = s.value_counts()
    top = str(counts.index[0])
    return top if len(counts) == 1 else f"{top} ({counts.iloc[0]} of {len(s)})"


def _fmtp_value(line: str, key: str) -> str:
    for part in line.split(" ", 1)[-1].split(";") if line else []:
        k, _, v = part.strip().partition("=")
        if k == key:
            return v
    return ""


def negotiation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per caller (Chromium, aiortc): the most common offer and answer Opus fmtp, the Opus fmtp
    values that decide what is sent (``maxaveragebitrate`` bit/s, ``useinbandfec``, ``usedtx``,
    ``ptime`` ms; "-" when the answer leaves them to the default), audio NACK and RED offered and
    kept in the answer (yes/no; unknown for aiortc, whose SDP the row keeps only as Opus fmtp), the
    frame length sent (ms) and the payload bit rate (kbit/s, mean over cells; Chromium: its own
    outbound-rtp bytesSent over the time it sent; aiortc: the trace's payload). Empty without
    Chromium cells."""
    d = browser_rows(df)
    if not len(d):
        return pd.DataFrame()
    rows = []
    for peer, prefix in (("chromium", "browser_"), ("aiortc", "sdp_")):
        g = d[d["peer"] == peer]
        if not len(g):
            continue
        offer = _mode(g.get(f"{prefix}offer_opus_fmtp", pd.Series(dtype=object)))
        answer = _mode(g.get(f"{prefix}answer_opus_fmtp", pd.Series(dtype=object)))
        ans_line = answer.split(" (", 1)[0]
        r: dict[str, Any] = {"caller": peer, "cells": len(g), "offer Opus fmtp": offer, "answer Opus fmtp": answer}
        for key in ("maxaveragebitrate", "useinbandfec", "usedtx", "ptime"):
            r[f"answer {key}"] = _fmtp_value(ans_line, key) or "-"
        if peer == "chromium":
            codecs = {side: _mode(g.get(f"browser_{side}_codecs", pd.Series(dtype=object))) for side in ("offer", "answer")}
            fb = {side: _mode(g.get(f"browser_{side}_opus_rtcp_fb", pd.Series(dtype=object))) for side in ("offer", "answer")}
            for side, name in (("offer", "offered"), ("answer", "in answer")):
                r[f"NACK {name}"] = "yes" if "nack" in fb[side].split(" (")[0].split(",") else "no"
                r[f"RED {name}"] = "yes" if "red/48000" in codecs[side].lower() else "no"
            r["offered codecs"] = codecs["offer"]
            r["Opus rtcp-fb offer / answer"] = f"{fb['offer'] or '-'} / {fb['answer'] or '-'}"
            r["frame sent (ms)"] = float(_num(g, "browser_out_ptime_ms").mean())
            r["payload sent (kbit/s)"] = float(_num(g, "browser_out_payload_kbps").mean())
        else:
            for what in ("NACK", "RED"):
                r[f"{what} offered"] = r[f"{what} in answer"] = "no (aiortc has none for audio)"
            r["frame sent (ms)"] = float(_num(g, "frame_ms").mean())
            r["payload sent (kbit/s)"] = float(_num(g, "payload_kbps_up").mean())
        rows.append(r)
    return pd.DataFrame(rows)


def _profiles(d: pd.DataFrame) -> list[str]:
    return sorted(set(d["profile"].map(claims.profile_name)), key=lambda p: (not claims.is_clean(p), p))


def paired_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per profile and figure of :data:`PAIRED`: n pairs (seed x clip), each caller's mean and the
    paired difference chromium - aiortc (:class:`translab.metrics.statistics.Estimate` each, 95 %
    intervals). Empty without Chromium cells."""
    d = browser_rows(df)
    if not len(d):
        return pd.DataFrame()
    rows = []
    for p in _profiles(d):
        for label, col, unit, nd in PAIRED:
            c = claims.compare(d, CHROMIUM, AIORTC, col, p, unit)
            rows.append({"profile": p, "figure": label, "unit": unit, "decimals": nd, "n": c.n,
                         "chromium": c.a_est, "aiortc": c.b_est, "chromium - aiortc": c.diff})
    return pd.DataFrame(rows)


def neteq_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per profile and figure of :data:`NETEQ`, on the Chromium cells' reply leg: n calls, the
    browser's (NetEq's) mean, translab's model's mean and browser - model paired within each call
    (Estimates with 95 % intervals). Empty without Chromium cells."""
    d = browser_rows(df)
    if not len(d):
        return pd.DataFrame()
    d = d[d["peer"] == "chromium"]
    rows = []
    for p in _profiles(d):
        g = d[d["profile"].map(claims.profile_name) == p]
        for label, bcol, mcol, unit, nd in NETEQ:
            b, m = _num(g, bcol).to_numpy(), _num(g, mcol).to_numpy()
            keep = ~(np.isnan(b) | np.isnan(m))
            rows.append({"profile": p, "figure": label, "unit": unit, "decimals": nd, "n": int(keep.sum()),
                         "browser (NetEq)": st.estimate(b[keep]), "translab model": st.estimate(m[keep]),
                         "browser - model": st.paired(b[keep], m[keep])})
    return pd.DataFrame(rows)


def estimate_text(e: Any, nd: int, signed: bool = False) -> str:
    """``"3.21 [3.10, 3.30]"`` for an Estimate (no n, no unit); "n/a" when it has no value."""
    if not isinstance(e, st.Estimate) or math.isnan(e.value):
        return "n/a"
    f = f"{{:+.{nd}f}}" if signed else f"{{:.{nd}f}}"
    return (f"{f.format(e.value)} [{f.format(e.lo)}, {f.format(e.hi)}]" if e.has_interval
            else f"{f.format(e.value)} [no interval]")


def paired_figure(df: pd.DataFrame) -> Any:
    """Per profile, the paired differences chromium - aiortc of PLCMOS, PESQ-WB and STOI (left) and of
    the ICE + DTLS set-up (ms, right), each with its 95 % interval; None without Chromium cells."""
    from matplotlib.figure import Figure

    t = paired_table(df)
    if not len(t):
        return None
    profs = list(dict.fromkeys(t["profile"]))
    fig = Figure(figsize=(10, 3.6), dpi=100, layout="constrained")
    ax_q, ax_s = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    quality = ("PLCMOS", "PESQ-WB", "STOI")
    width = 0.8 / len(quality)
    for j, name in enumerate(quality):
        xs, ys, lo, hi = [], [], [], []
        for i, p in enumerate(profs):
            e = t[(t["profile"] == p) & (t["figure"] == name)]["chromium - aiortc"].iloc[0]
            if math.isnan(e.value):
                continue
            xs.append(i + (j - 1) * width)
            ys.append(e.value)
            lo.append(e.value - e.lo if e.has_interval else 0.0)
            hi.append(e.hi - e.value if e.has_interval else 0.0)
        ax_q.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=4, label=name)
    ax_q.axhline(0.0, color="0.5", lw=0.8)
    ax_q.set_xticks(range(len(profs)), profs)
    ax_q.set_ylabel("Chromium - aiortc (score)")
    ax_q.set_title("Quality translab heard from each caller")
    ax_q.legend(fontsize=8)
    for i, p in enumerate(profs):
        r = t[(t["profile"] == p) & (t["figure"] == PAIRED[1][0])].iloc[0]
        for k, (side, color) in enumerate((("chromium", "tab:blue"), ("aiortc", "tab:orange"))):
            e = r[side]
            if math.isnan(e.value):
                continue
            err = [[e.value - e.lo], [e.hi - e.value]] if e.has_interval else None
            ax_s.errorbar([i + (k - 0.5) * 0.3], [e.value], yerr=err, fmt="s", color=color, capsize=4,
                          label=side if i == 0 else None)
    ax_s.set_xticks(range(len(profs)), profs)
    ax_s.set_xlim(-0.6, len(profs) - 0.4)
    ax_s.set_ylabel("ms")
    ax_s.set_title("ICE + DTLS after the answer")
    ax_s.legend(fontsize=8)
    return fig
