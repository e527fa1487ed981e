"""The claims of a published vendor article on WebRTC vs WebSocket for voice AI, and the lab's own
recommendation per network profile, tested on a results table (one summary row per cell, as written
by ``translab run``).

Every comparison is **paired and like for like**: two exact configurations (:class:`Setting`), on one
profile, over the seed x clip units both ran; the difference ``a - b`` is the mean of the per-pair
differences with a 95 % BCa bootstrap interval over the pairs (:mod:`translab.metrics.statistics`).
A single figure (e.g. the share of concealed audio) is the mean over cells with its interval.

Each ``claim_*`` function returns a :class:`Verdict` made of :class:`Test` parts; each part names its
metric, its interval, its threshold and the cells it used. A part is ``supported`` or ``refuted``
only when its whole interval is past the threshold, else ``inconclusive``. A claim is supported when
every part is, refuted when some part is refuted and none supported, ``depends`` when parts go both
ways (the detail names which), inconclusive otherwise, and ``not measured in this run`` when the run
lacks the cells (the detail says which). ``figure`` names the report figure that shows the numbers
(a key of :data:`translab.report.figures.FIGURES`). Notebooks and the HTML report call these functions.

Conventions: only rows with ``status == "ok"`` count; latencies are mouth-to-ear in ms incl. the codec
lookahead; "clean" profiles are those in :data:`CLEAN_PROFILES`, every other profile is impaired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from translab.call.row import setup_ms  # the result row knows its set-up columns
from translab.metrics import statistics as st

SUPPORTED, REFUTED, DEPENDS, NOT_MEASURED = "supported", "refuted", "depends", "not measured in this run"
INCONCLUSIVE = st.INCONCLUSIVE
VERDICTS = (SUPPORTED, REFUTED, DEPENDS, INCONCLUSIVE, NOT_MEASURED)

#: Profiles that stand for a controlled network with a co-located endpoint.
CLEAN_PROFILES = ("clean-lan", "colocated")

#: Thresholds of the claims (each verdict states the one it used): latencies differing by at most
#: MATCH_MS "match"; a MOS-scale difference up to NEAR_MOS is "nearly as good"; a concealment method
#: "helps" when it adds more than BETTER_MOS; a delivery-delay spread (p99 - p50) up to SPREAD_MS is
#: "deterministic".
MATCH_MS = 2.0
NEAR_MOS = 0.2
BETTER_MOS = 0.1
SPREAD_MS = 20.0
#: Live calls per transport and profile needed before a set-up figure is judged.
MIN_SETUP_CALLS = 10


# --------------------------------------------------------------------------------------------------
# helpers


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of finished cells (status ok); all rows when there is no status column."""
    if "status" in df.columns:
        return df[df["status"] == "ok"]
    return df


def is_clean(profile: Any) -> bool:
    """True for the clean/co-located profiles (a profile path counts by its file name)."""
    name = str(profile).rsplit("/", 1)[-1].removesuffix(".toml")
    return name in CLEAN_PROFILES


def profile_name(profile: Any) -> str:
    """Short display name of a profile (a path shows as its file stem)."""
    return str(profile).rsplit("/", 1)[-1].removesuffix(".toml")


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(np.nan, index=df.index, dtype=float)


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def fmt(x: float, unit: str = "", nd: int = 1) -> str:
    """A number for prose ("n/a" for NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{nd}f}{(' ' + unit) if unit else ''}"


# --------------------------------------------------------------------------------------------------
# exact configurations and paired comparisons


@dataclass(frozen=True)
class Setting:
    """One exact configuration: result columns and the value each must have (simulated cells unless
    ``mode`` says otherwise). ``label`` is what tables print."""

    label: str
    values: tuple[tuple[str, Any], ...]

    def with_(self, label: str, **changes: Any) -> "Setting":
        """A copy with some values changed."""
        d = dict(self.values)
        d.update(changes)
        return Setting(label, tuple(d.items()))

    def rows(self, df: pd.DataFrame, profile: str | None = None) -> pd.DataFrame:
        """The ok rows of this configuration (on ``profile`` when given). A column the table lacks
        does not filter (hand-made tables); conversation rows (a ``topology``) match only settings
        that name a topology."""
        d = ok_rows(df)
        m = pd.Series(True, index=d.index)
        vals = dict(self.values)
        vals.setdefault("mode", "simulate")
        for k, v in vals.items():
            if k not in d.columns:
                continue
            col = d[k]
            if isinstance(v, bool):
                m &= col.fillna(False).astype(bool) == v
            elif isinstance(v, (int, float)):
                m &= _num(col) == v
            else:
                m &= col.astype(str) == str(v)
        if profile is not None and "profile" in d.columns:
            m &= d["profile"].map(profile_name) == profile
        if "topology" not in vals and "topology" in d.columns:  # a one-way setting: no conversation rows
            m &= d["topology"].isna() | (d["topology"].astype(object).map(str) == "None")
        return d[m.to_numpy(dtype=bool)]

    def describe(self) -> str:
        """``transport=webrtc, codec=opus, ...``: the exact values."""
        return ", ".join(f"{k}={v}" for k, v in self.values)


def setting(label: str, **values: Any) -> Setting:
    """A :class:`Setting` from keyword values."""
    return Setting(label, tuple(values.items()))


_RX = dict(frame_ms=20, playout="adaptive")
#: The settings the default experiment runs on every profile (data/experiments/default.toml).
WEBRTC = setting("WebRTC Opus 24k FEC", transport="webrtc", codec="opus", bitrate_bps=24000, fec=True,
                 conceal="opus-fec", **_RX)
WS_BINARY = setting("WebSocket PCM16 24k binary", transport="websocket", codec="pcm16", sample_rate=24000,
                    framing="binary", conceal="pcm-plc", **_RX)
WS_JSON = WS_BINARY.with_("WebSocket PCM16 24k realtime-json", framing="realtime-json")
OPUS_PLC = WEBRTC.with_("WebRTC Opus 24k no FEC (PLC)", fec=False, conceal="opus-plc")
OPUS_ZERO = WEBRTC.with_("WebRTC Opus 24k no FEC, zero-fill", fec=False, conceal="zero")
WEBRTC_FIXED = WEBRTC.with_("WebRTC Opus 24k FEC, fixed 60 ms", playout="fixed:60")
WS_FIXED = WS_BINARY.with_("WebSocket PCM16 binary, fixed 60 ms, PCM PLC", playout="fixed:60")
WS_FIXED_ZERO = WS_BINARY.with_("WebSocket PCM16 binary, fixed 60 ms, zero-fill", playout="fixed:60", conceal="zero")


def opus_no_fec(kbps: int) -> Setting:
    """WebRTC Opus at ``kbps`` kbit/s, FEC off, decoder PLC (the bitrate question's cells)."""
    return OPUS_PLC.with_(f"Opus {kbps}k no FEC", bitrate_bps=kbps * 1000)


#: The headline's rows, per profile: one exact configuration each.
HEADLINE_SETTINGS = (WEBRTC, WS_BINARY, WS_JSON)

#: Kept for notebooks: the like-for-like filter in words (the headline's receiver).
LIKE_FOR_LIKE = ("adaptive playout, 20 ms frames, default concealment (Opus: in-band FEC on with "
                 "opus-fec; PCM: pcm-plc)")
#: The bitrate question's cells in words.
BITRATE_CELLS = "simulated WebRTC Opus, FEC off, opus-plc, adaptive playout, 20 ms frames, clean profile"


def _default_conceal(row_codec: Any, row_fec: Any) -> str:
    if row_codec == "opus":
        return "opus-fec" if bool(row_fec) else "opus-plc"
    return "pcm-plc"


def like_for_like(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with the default receiver (see :data:`LIKE_FOR_LIKE`). Used by notebooks to browse; the
    claims compare exact :class:`Setting` pairs instead."""
    m = pd.Series(True, index=df.index)
    if "playout" in df.columns:
        m &= df["playout"].fillna("adaptive") == "adaptive"
    if "frame_ms" in df.columns:
        m &= pd.to_numeric(df["frame_ms"], errors="coerce").fillna(20) == 20
    codec = _col(df, "codec")
    if "fec" in df.columns:
        m &= ~((codec == "opus") & ~df["fec"].fillna(True).astype(bool))
    if "conceal" in df.columns:
        want = [_default_conceal(c, True) for c in codec]
        m &= df["conceal"].isna() | (df["conceal"].to_numpy() == np.array(want, dtype=object))
    return df[m.to_numpy(dtype=bool)]


def _units(rows: pd.DataFrame) -> pd.Series:
    """The unit of each row: ``seed/clip`` (the pairing key)."""
    # str() per value, not astype(str): pandas 3 keeps NaN as missing under astype(str), and a conversation
    # row has no clip (its unit is the seed and the script)
    return pd.Series([f"{a}/{b}" for a, b in zip(_col(rows, "seed"), _col(rows, "clip"))], index=rows.index,
                     dtype=object)


def _hashes(rows: pd.DataFrame) -> list[str]:
    return [str(h) for h in _col(rows, "cell_hash").dropna()]


@dataclass
class Comparison:
    """``a - b`` of one metric on one profile over the seed x clip units both settings ran: the
    paired mean difference with its interval, each side's mean with its interval, and the cells."""

    metric: str
    unit: str
    profile: str
    a: Setting
    b: Setting
    diff: st.Estimate
    a_est: st.Estimate
    b_est: st.Estimate
    cells: list[str]

    @property
    def n(self) -> int:
        """Number of pairs."""
        return self.diff.n


def compare(df: pd.DataFrame, a: Setting, b: Setting, metric: str, profile: str, unit: str = "",
            stat: str = "mean") -> Comparison:
    """Pair the cells of ``a`` and ``b`` on ``profile`` by seed and clip and compare ``metric``
    (``stat`` of the per-pair differences and of each side: mean, median or p<q>)."""
    ra, rb = a.rows(df, profile), b.rows(df, profile)
    va = pd.Series(_num(_col(ra, metric)).to_numpy(), index=_units(ra).to_numpy())
    vb = pd.Series(_num(_col(rb, metric)).to_numpy(), index=_units(rb).to_numpy())
    va, vb = va[~va.index.duplicated()], vb[~vb.index.duplicated()]
    common = va.index.intersection(vb.index)
    xa, xb = va[common].to_numpy(), vb[common].to_numpy()
    keep = ~(np.isnan(xa) | np.isnan(xb))
    used = set(common[keep])
    cells = _hashes(ra[_units(ra).isin(used)]) + _hashes(rb[_units(rb).isin(used)])
    return Comparison(metric, unit, profile, a, b, st.paired(xa[keep], xb[keep], stat),
                      st.estimate(xa[keep], stat), st.estimate(xb[keep], stat), cells)


def figure_of(df: pd.DataFrame, a: Setting, metric: str, profile: str, stat: str = "mean") -> tuple[st.Estimate, list[str]]:
    """``stat`` of ``metric`` over the cells of ``a`` on ``profile`` with its interval, and the cells."""
    r = a.rows(df, profile)
    v = _num(_col(r, metric))
    return st.estimate(v.to_numpy(), stat), _hashes(r[v.notna()])


@dataclass
class Test:
    """One part of a claim: an estimate (with its interval) judged against a threshold. ``config``
    says which cells (exact settings, profile, n); ``cells`` lists their hashes."""

    name: str
    metric: str
    estimate: st.Estimate
    threshold: float
    side: str  # the claim holds when the estimate is "above" / "below" the threshold, or "within" +-it
    unit: str
    config: str
    cells: list[str]
    verdict: str = ""

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = st.judge(self.estimate, self.threshold, self.side)

    def text(self) -> str:
        """``"name: metric 0.32 [0.21, 0.44] (n=20), claim above 0.1 -> supported"``."""
        need = {"above": ">", "below": "<", "within": "within +-"}[self.side]
        return (f"{self.name}: {self.metric} {self.estimate.text(self.unit, 2 if abs(self.threshold) < 5 else 1, True)}"
                f", needs {need}{'' if self.side == 'within' else ' '}{self.threshold:g}{(' ' + self.unit) if self.unit else ''}"
                f" -> {self.verdict}")


def paired_test(name: str, c: Comparison, threshold: float, side: str) -> Test:
    """A :class:`Test` of a paired comparison ``a - b``."""
    return Test(name, f"{c.metric} ({c.a.label} - {c.b.label})", c.diff, threshold, side, c.unit,
                f"{c.profile}: {c.a.label} vs {c.b.label}, {c.n} seed x clip pairs", c.cells)


@dataclass
class Verdict:
    """A claim's verdict with its parts (each with metric, interval and cells), a detail in words,
    the figure that shows it, and the evidence (numbers with units in the key)."""

    key: str
    claim: str
    verdict: str
    detail: str
    figure: str
    evidence: dict[str, Any] = field(default_factory=dict)
    tests: list[Test] = field(default_factory=list)

    @property
    def metrics(self) -> list[str]:
        """The metrics the verdict used."""
        return list(dict.fromkeys(t.metric.split(" (")[0] for t in self.tests))

    @property
    def cells(self) -> list[str]:
        """Hashes of every cell the verdict used."""
        return list(dict.fromkeys(h for t in self.tests for h in t.cells))


def combine(tests: list[Test]) -> str:
    """A claim's verdict from its parts (see the module docstring)."""
    v = [t.verdict for t in tests]
    if not v:
        return NOT_MEASURED
    if all(x == SUPPORTED for x in v):
        return SUPPORTED
    if SUPPORTED in v and REFUTED in v:
        return DEPENDS
    if REFUTED in v:
        return REFUTED
    return INCONCLUSIVE


def _detail(tests: list[Test], lead: str = "") -> str:
    return (lead + " " if lead else "") + "; ".join(t.text() for t in tests) + "."


def _profiles(df: pd.DataFrame, *settings: Setting) -> list[str]:
    """Profiles on which every one of ``settings`` has cells (clean ones first)."""
    d = ok_rows(df)
    if "profile" not in d.columns:
        return []
    names = sorted(set(d["profile"].map(profile_name)), key=lambda p: (not is_clean(p), p))
    return [p for p in names if all(len(s.rows(d, p)) for s in settings)]


def _need(key: str, text: str, figure: str, *settings: Setting) -> Verdict:
    return Verdict(key, text, NOT_MEASURED, "needs cells of " + "; ".join(f"{s.label} ({s.describe()})"
                                                                        for s in settings) + " on one profile.",
                   figure)


# --------------------------------------------------------------------------------------------------
# the claims


def claim_pcm_frame_bytes(df: pd.DataFrame) -> Verdict:
    """A 100 ms frame of 24 kHz mono PCM16 is exactly 4800 bytes."""
    text = "A 100 ms frame of 24 kHz mono PCM16 is exactly 4800 bytes."
    from translab.media.pcm import frame_bytes

    computed = int(frame_bytes(24000, 100))
    d = ok_rows(df)
    sel = d[(_col(d, "codec") == "pcm16") & (_num(_col(d, "sample_rate")) == 24000)]
    per100 = _num(_col(sel, "payload_kbps_up")) * 1000 / 8 * 0.100  # payload bytes per 100 ms of audio
    est = st.estimate(per100.dropna().to_numpy())
    ev = {"computed_bytes": computed, "measured_bytes_per_100ms": est.value}
    if computed != 4800:
        return Verdict("pcm_frame_bytes", text, REFUTED, f"translab.media.pcm computes {computed} B.", "bandwidth", ev)
    if est.n == 0:
        return Verdict("pcm_frame_bytes", text, NOT_MEASURED, "24000 samples/s x 0.1 s x 2 B = 4800 B by "
                       "arithmetic; no PCM16 24 kHz cells in this run to measure it.", "bandwidth", ev)
    dev = st.estimate(np.abs(per100.dropna().to_numpy() - 4800))
    t = Test("payload per 100 ms of PCM16 24 kHz cells", "|payload bytes per 100 ms - 4800|", dev, 48.0, "below",
             "B", f"all PCM16 24 kHz cells, n={est.n}", _hashes(sel[per100.notna()]))
    return Verdict("pcm_frame_bytes", text, t.verdict,
                   f"24000 x 0.1 x 2 = 4800 B; the PCM16 24 kHz cells carry {est.text('B', 0)} of payload per "
                   f"100 ms. " + _detail([t]), "bandwidth", ev, [t])


#: The set-up cells: live calls, one configuration per transport (data/experiments/setup.toml).
SETUP_WS = setting("WebSocket live", transport="websocket", mode="live")
SETUP_RTC = setting("WebRTC live", transport="webrtc", mode="live")


def setup_rows(df: pd.DataFrame, profile: str | None = None) -> pd.DataFrame:
    """Ok live rows whose set-up is like for like, with their set-up to first media received in a
    ``setup_ms`` column (:func:`translab.call.row.setup_ms`): every WebSocket call (TCP + TLS +
    upgrade over the emulated path) and the WebRTC calls whose offer/answer crossed the emulated TCP
    path (they have ``setup_answer_received_ms``; rows from before that, or from the netns backend,
    which still exchanges them in-process, do not count)."""
    d = ok_rows(df)
    if not len(d) or "transport" not in d.columns:
        return d.iloc[0:0].assign(setup_ms=pd.Series(dtype=float))
    s = setup_ms(d)
    m = s.notna() & (_col(d, "mode") == "live")
    m &= (d["transport"] == "websocket") | _num(_col(d, "setup_answer_received_ms")).notna()
    if profile is not None:
        m &= d["profile"].map(profile_name) == profile
    return d[m.to_numpy(dtype=bool)].assign(setup_ms=s[m])


def setup_profiles(df: pd.DataFrame) -> list[str]:
    """Profiles with at least :data:`MIN_SETUP_CALLS` like-for-like live calls of each transport
    (clean ones first)."""
    live = setup_rows(df)
    if not len(live):
        return []
    counts = live.groupby([live["profile"].map(profile_name), "transport"]).size()
    names = sorted({p for p, _ in counts.index}, key=lambda p: (not is_clean(p), p))
    return [p for p in names
            if min(counts.get((p, "websocket"), 0), counts.get((p, "webrtc"), 0)) >= MIN_SETUP_CALLS]


def setup_comparison(df: pd.DataFrame, profile: str) -> Comparison:
    """Set-up to first media received (ms) on ``profile``, WebSocket - WebRTC: the median of the
    per-pair differences (live calls paired by seed and clip, which share the emulated link's
    draws) with its 95 % interval, and each transport's median with its interval. Medians, because
    one lost SYN or ICE check adds a whole retransmission timeout to a call."""
    return compare(setup_rows(df, profile), SETUP_WS, SETUP_RTC, "setup_ms", profile, "ms", stat="median")


def setup_test(df: pd.DataFrame, profile: str) -> Test:
    """Set-up to first media, WebSocket - WebRTC (ms, median of paired differences), from live calls
    on ``profile``: WebSocket sets up faster when the interval is below 0. Judged only with at least
    :data:`MIN_SETUP_CALLS` pairs whose WebRTC offer/answer crossed the emulated link (see
    :func:`setup_rows`), else inconclusive with the count."""
    c = setup_comparison(df, profile)
    t = paired_test(f"{profile} set-up (live calls)", c, 0.0, "below")
    if c.n < MIN_SETUP_CALLS:
        live = setup_rows(df, profile)
        n_ws, n_rtc = int((live["transport"] == "websocket").sum()), int((live["transport"] == "webrtc").sum())
        t.verdict = INCONCLUSIVE
        t.name += (f": not measured ({n_ws} WebSocket and {n_rtc} WebRTC calls, {c.n} pairs; needs >= "
                   f"{MIN_SETUP_CALLS} pairs with WebRTC's signalling over the emulated link, e.g. from "
                   "data/experiments/setup.toml)")
        t.cells = _hashes(live)
    return t


def setup_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per profile with enough set-up cells (:func:`setup_profiles`): each transport's median set-up
    to first media (ms) with its 95 % interval, the paired median difference WebSocket - WebRTC with
    its interval, and n (pairs)."""
    rows = []
    for p in setup_profiles(df):
        c = setup_comparison(df, p)
        rows.append({"profile": p, "n": c.n,
                     "websocket_ms": c.a_est.value, "websocket_lo": c.a_est.lo, "websocket_hi": c.a_est.hi,
                     "webrtc_ms": c.b_est.value, "webrtc_lo": c.b_est.lo, "webrtc_hi": c.b_est.hi,
                     "diff_ms": c.diff.value, "diff_lo": c.diff.lo, "diff_hi": c.diff.hi})
    return pd.DataFrame(rows)


def claim_clean_latency(df: pd.DataFrame) -> Verdict:
    """On clean networks with a co-located endpoint, WebSocket matches or beats WebRTC on latency,
    since it pays no ICE negotiation tax.

    Two parts on each clean profile: steady-state mouth-to-ear p50, WebSocket - WebRTC (paired, must
    be below +:data:`MATCH_MS`), and set-up (:func:`setup_test`)."""
    text = ("On clean networks with a co-located endpoint, WebSocket matches or beats WebRTC on latency, "
            "since it pays no ICE negotiation tax.")
    profs = [p for p in _profiles(df, WS_BINARY, WEBRTC) if is_clean(p)]
    set_up = [p for p in setup_profiles(df) if is_clean(p)]  # e.g. a run of data/experiments/setup.toml
    if not profs and not set_up:
        return _need("clean_latency", text, "latency_cdf", WS_BINARY, WEBRTC)
    tests: list[Test] = []
    ev: dict[str, Any] = {}
    for p in sorted(set(profs) | set(set_up), key=(profs + set_up).index):
        if p in profs:
            c = compare(df, WS_BINARY, WEBRTC, "m2e_p50_ms", p, "ms")
            tests.append(paired_test(f"{p} steady state", c, MATCH_MS, "below"))
            la = compare(df, WEBRTC, WS_BINARY, "budget_lookahead_ms", p, "ms").diff.value
            ev[p] = {"p50_diff_ms": c.diff.value, "lo": c.diff.lo, "hi": c.diff.hi, "n": c.n, "lookahead_gap_ms": la}
        tests.append(setup_test(df, p))
        su = setup_comparison(df, p)
        ev.setdefault(p, {}).update({"setup_diff_ms": su.diff.value, "setup_lo": su.diff.lo,
                                     "setup_hi": su.diff.hi, "setup_n": su.n})
    lead = ("Mouth-to-ear p50 incl. Opus's 6.5 ms codec lookahead, paired by seed and clip; set-up = dial to "
            "first media received, median of paired differences (WebRTC's offer/answer as an HTTPS POST "
            "over the emulated TCP path, ICE gathered before the offer).")
    return Verdict("clean_latency", text, combine(tests), _detail(tests, lead),
                   "latency_cdf" if profs else "setup_time", ev, tests)


def claim_bad_networks(df: pd.DataFrame) -> Verdict:
    """WebRTC wins on bad networks (jitter, loss, mobile handoffs); WebSocket wins on controlled ones.

    Judged on mouth-to-ear p95 per profile, WebSocket - WebRTC paired by seed and clip: on an impaired
    profile WebRTC wins when the difference is above +:data:`MATCH_MS`; on a clean one WebSocket wins
    when it is below -:data:`MATCH_MS`. PLCMOS differences are quoted beside it."""
    text = "WebRTC wins on bad networks (jitter, loss, mobile handoffs); WebSocket wins on controlled ones."
    profs = _profiles(df, WS_BINARY, WEBRTC)
    if not any(not is_clean(p) for p in profs):
        return _need("bad_networks", text, "latency_cdf", WS_BINARY, WEBRTC)
    tests, notes, ev = [], [], {}
    for p in profs:
        c = compare(df, WS_BINARY, WEBRTC, "m2e_p95_ms", p, "ms")
        q = compare(df, WEBRTC, WS_BINARY, "plcmos", p)
        if is_clean(p):
            tests.append(paired_test(f"{p}: WebSocket lower", c, -MATCH_MS, "below"))
        else:
            tests.append(paired_test(f"{p}: WebRTC lower", c, MATCH_MS, "above"))
        notes.append(f"{p} PLCMOS WebRTC - WebSocket {q.diff.text(signed=True)}")
        ev[p] = {"p95_ws_minus_webrtc_ms": c.diff.value, "plcmos_webrtc_minus_ws": q.diff.value, "n": c.n}
    return Verdict("bad_networks", text, combine(tests),
                   _detail(tests, "Mouth-to-ear p95 (ms), paired by seed and clip.") + " Quality beside it: "
                   + "; ".join(notes) + ".", "latency_cdf", ev, tests)


def claim_plc(df: pd.DataFrame) -> Verdict:
    """Opus PLC interpolates missing audio; WebSocket pipelines must implement PLC themselves or
    accept gaps.

    On each impaired profile: PLCMOS of Opus PLC - zero-fill (FEC off on both, paired) above
    :data:`BETTER_MOS`; the WebSocket default's concealed share (mean % of output samples) above 0
    (gaps exist); and PCM PLC - zero-fill over WebSocket with a fixed 60 ms buffer (the application's
    own PLC) above :data:`BETTER_MOS`."""
    text = ("Opus PLC interpolates missing audio; WebSocket pipelines must implement PLC themselves or "
            "accept gaps.")
    profs = [p for p in _profiles(df, OPUS_PLC, OPUS_ZERO) if not is_clean(p)]
    if not profs:
        return _need("plc", text, "quality_loss", OPUS_PLC, OPUS_ZERO)
    tests: list[Test] = []
    ev: dict[str, Any] = {}
    for p in profs:
        c = compare(df, OPUS_PLC, OPUS_ZERO, "plcmos", p)
        tests.append(paired_test(f"{p}: Opus PLC helps", c, BETTER_MOS, "above"))
        ev[p] = {"opus_plc_minus_zero": c.diff.value, "n": c.n}
        if len(WS_BINARY.rows(df, p)):
            r = WS_BINARY.rows(df, p)
            est = st.estimate(100 * _num(_col(r, "concealed_ratio")).dropna().to_numpy())
            tests.append(Test(f"{p}: WebSocket has gaps", "concealed audio (% of output)", est, 0.0, "above", "%",
                              f"{p}: {WS_BINARY.label}, n={est.n}", _hashes(r)))
        if len(WS_FIXED.rows(df, p)) and len(WS_FIXED_ZERO.rows(df, p)):
            c2 = compare(df, WS_FIXED, WS_FIXED_ZERO, "plcmos", p)
            tests.append(paired_test(f"{p}: app PCM PLC helps", c2, BETTER_MOS, "above"))
    return Verdict("plc", text, combine(tests), _detail(tests, "PLCMOS v2, paired by seed and clip."),
                   "quality_loss", ev, tests)


def claim_opus_24k(df: pd.DataFrame) -> Verdict:
    """Opus at 24 kbit/s sounds nearly as good as 64 kbit/s and uses a quarter of the bandwidth.

    On a clean profile with FEC off (the codec alone; FEC would spend bits on redundancy): PESQ-WB
    (full reference) 64k - 24k below :data:`NEAR_MOS`; uplink wire kbit/s 24k / 64k below 0.30."""
    text = "Opus at 24 kbit/s sounds nearly as good as 64 kbit/s and uses a quarter of the bandwidth."
    o24, o64 = opus_no_fec(24), opus_no_fec(64)
    profs = [p for p in _profiles(df, o24, o64) if is_clean(p)] or _profiles(df, o24, o64)
    if not profs:
        return _need("opus_24k", text, "quality_bitrate", o24, o64)
    p = profs[0]
    q = compare(df, o64, o24, "pesq_wb", p)
    tq = paired_test(f"{p}: 24k nearly as good", q, NEAR_MOS, "below")
    w = compare(df, o24, o64, "wire_kbps_up", p, "kbit/s")
    ra, rb = o24.rows(df, p), o64.rows(df, p)
    ratio = pd.Series(_num(_col(ra, "wire_kbps_up")).to_numpy(), index=_units(ra)).groupby(level=0).first() / \
        pd.Series(_num(_col(rb, "wire_kbps_up")).to_numpy(), index=_units(rb)).groupby(level=0).first()
    ratio = ratio.dropna()
    tw = Test(f"{p}: a quarter of the bandwidth", "wire kbit/s up, 24k / 64k", st.estimate(ratio.to_numpy()), 0.30,
              "below", "", f"{p}: {o24.label} vs {o64.label}, {len(ratio)} pairs", w.cells)
    tests = [tq, tw]
    ev = {"pesq_wb_64k_minus_24k": q.diff.value, "wire_ratio": tw.estimate.value,
          "wire_kbps_24k": w.a_est.value, "wire_kbps_64k": w.b_est.value, "n": q.n, "quality_metric": "pesq_wb"}
    return Verdict("opus_24k", text, combine(tests),
                   _detail(tests, f"FEC off, decoder PLC, adaptive playout, 20 ms, on {p}; PESQ-WB (full "
                           f"reference). Wire {w.a_est.text('kbit/s', 1)} at 24k vs {w.b_est.text('kbit/s', 1)} at "
                           f"64k: packet headers do not shrink with the bitrate, and 24/64 is 3/8 even in payload."),
                   "quality_bitrate", ev, tests)


def claim_ws_deterministic(df: pd.DataFrame) -> Verdict:
    """WebSocket gives deterministic latency (no adaptive decisions).

    Judged per profile on the transport's own delivery delay spread (arrival - send, p99 - p50 per
    cell; mean over the cells of the WebSocket default) below :data:`SPREAD_MS`. TCP retransmissions
    are quoted per cell (mean with its interval), not summed over cells."""
    text = "WebSocket gives deterministic latency (no adaptive decisions)."
    profs = _profiles(df, WS_BINARY)
    d = ok_rows(df)
    if not profs or "net_delay_p99_ms" not in d.columns:
        return _need("ws_deterministic", text, "latency_cdf", WS_BINARY)
    tests, notes, ev = [], [], {}
    for p in profs:
        r = WS_BINARY.rows(df, p)
        spread = (_num(_col(r, "net_delay_p99_ms")) - _num(_col(r, "net_delay_p50_ms"))).dropna()
        est = st.estimate(spread.to_numpy())
        tests.append(Test(f"{p}", "delivery delay p99 - p50 per cell", est, SPREAD_MS, "below", "ms",
                          f"{p}: {WS_BINARY.label}, n={est.n}", _hashes(r.loc[spread.index])))
        rt = st.estimate(_num(_col(r, "tcp_retransmissions")).dropna().to_numpy())
        notes.append(f"{p} {rt.text(nd=1)} TCP retransmissions per call")
        ev[p] = {"spread_ms": est.value, "retransmissions_per_call": rt.value}
    return Verdict("ws_deterministic", text, combine(tests),
                   _detail(tests, "WebSocket delivery delay (arrival - send, TCP retransmissions and head-of-line "
                           "waits included).") + " " + "; ".join(notes) + ". TCP's retransmission timer and "
                   "congestion control are adaptive decisions too; a fixed playout buffer hides the variation "
                   "only by discarding or concealing what comes late.", "latency_cdf", ev, tests)


#: "about 64 kbit/s": a measured per-call relay rate within this range counts as about 64 kbit/s.
TURN_ABOUT_KBPS = (48.0, 80.0)


def claim_turn_64k(df: pd.DataFrame) -> Verdict:
    """A TURN relay carries about 64 kbit/s per Opus call."""
    text = "A TURN relay carries about 64 kbit/s per Opus call."
    d = ok_rows(df)
    from translab.report.nat import relay_by_bitrate

    rb = relay_by_bitrate(d)
    if len(rb):
        lo, hi = TURN_ABOUT_KBPS
        rin = rb.groupby("bitrate_kbps")["relay_in_kbps"].median()  # over pair types
        per_call = {float(br): 2 * float(v) for br, v in rin.items()}
        near = [br for br, v in per_call.items() if lo <= v <= hi]
        ev = {f"relay_in_kbps_at_{int(br)}k": float(v) for br, v in rin.items()}
        ev.update({f"two_way_call_kbps_at_{int(br)}k": float(v) for br, v in per_call.items()})
        listing = ", ".join(f"{br:g}k -> {r:.0f} kbit/s in ({2 * r:.0f} per two-way call)" for br, r in rin.items())
        detail = (f"Measured through coturn on the netns backend ({int(rb['cells'].sum())} relayed calls): one "
                  f"talker's Opus stream enters the relay at {listing}; the relay sends as much out again. "
                  f"Counted as coturn does (TURN-framed SRTP/SRTCP, no IP/UDP headers), so the rate "
                  f"follows the bitrate plus a fixed per-packet overhead.")
        if len(near) == len(per_call):
            verdict = SUPPORTED
        elif not near:
            verdict = REFUTED
            detail += f" No measured bitrate gives {lo:.0f}-{hi:.0f} kbit/s per call."
        else:
            verdict = DEPENDS
            detail += (f" About 64 kbit/s per call ({lo:.0f}-{hi:.0f}) holds at "
                       + ", ".join(f"{br:g}k" for br in near) + " only: it depends on the bitrate.")
        return Verdict("turn_64k", text, verdict, detail, "bandwidth", ev)
    opus = d[(_col(d, "codec") == "opus") & (_col(d, "transport") == "webrtc")]
    est = ""
    ev = {}
    if len(opus) and "wire_kbps_up" in opus.columns:
        by = opus.groupby(pd.to_numeric(opus["bitrate_bps"], errors="coerce"))["wire_kbps_up"].median()
        ev = {f"wire_kbps_up_at_{int(k)}": float(v) for k, v in by.items() if not math.isnan(k)}
        est = (" Estimate from the simulated wire rates (one direction, before TURN's own 4 B ChannelData or "
               "36 B Send-indication overhead): " + ", ".join(f"{int(k) // 1000}k -> {v:.0f} kbit/s"
                                                             for k, v in by.items() if not math.isnan(k))
               + "; a relay forwards both directions, so a call is about twice that.")
    return Verdict("turn_64k", text, NOT_MEASURED,
                   "no TURN relay cells in this run (relay byte counts need the netns lab: "
                   "data/experiments/nat.toml)." + est, "bandwidth", ev)


# --------------------------------------------------------------------------------------------------
# loss protection: the adaptive-bitrate claim (cells of data/experiments/protection.toml)

#: Profiles whose capacity falls below the codec's rate: where adaptive bitrate must show its worth.
ABR_PROFILES = ("capacity-drop",)


def protection_pairs(df: pd.DataFrame, option: str, metric: str, profile: str,
                     scale: float = 1.0) -> tuple[st.Estimate, list[str]]:
    """``option - none`` of ``metric`` (x ``scale``) over the seed x clip pairs on ``profile`` that
    share every other setting (translab.lab.protection.PAIR_KEYS), with the cells of both sides."""
    from translab.lab.protection import PAIR_KEYS, calls_from_results

    calls = calls_from_results(df)
    if not len(calls):
        return st.paired([], []), []
    c = calls[calls["profile"] == profile]
    key = [*PAIR_KEYS, "seed", "clip"]
    a = c[c["option"] == option].drop_duplicates(key).set_index(key)
    b = c[c["option"] == "none"].drop_duplicates(key).set_index(key)
    common = a.index.intersection(b.index)
    xa, xb = a.loc[common, metric].to_numpy(float) * scale, b.loc[common, metric].to_numpy(float) * scale
    keep = ~(np.isnan(xa) | np.isnan(xb))
    used = common[keep]
    cells = [str(h) for h in list(a.loc[used, "cell_hash"]) + list(b.loc[used, "cell_hash"])]
    return st.paired(xa[keep], xb[keep]), cells


def claim_adaptive_bitrate(df: pd.DataFrame) -> Verdict:
    """WebRTC owns NAT traversal, jitter resilience, and adaptive bitrate (the adaptive-bitrate part).

    From the protection cells (ABR vs no protection, same seed, clip and start bitrate): on a profile
    whose capacity drops below the codec's rate (:data:`ABR_PROFILES`) ABR must lower the effective
    loss (percentage points) and the mouth-to-ear p95 (both intervals below 0); on the other profiles
    it must do no harm (PLCMOS ABR - none above -:data:`BETTER_MOS`). NAT traversal and jitter
    resilience have their own verdicts (NAT section, the bad-networks claim)."""
    text = "WebRTC owns NAT traversal, jitter resilience, and adaptive bitrate (the adaptive-bitrate part)."
    from translab.lab.protection import calls_from_results

    calls = calls_from_results(df)
    profs = sorted(set(calls[calls["option"] == "abr"]["profile"]) & set(calls[calls["option"] == "none"]["profile"])) \
        if len(calls) else []
    if not profs:
        return Verdict("adaptive_bitrate", text, NOT_MEASURED, "needs WebRTC cells with abr = true and without "
                       "protection on the same seeds x clips (data/experiments/protection.toml).", "")
    tests: list[Test] = []
    ev: dict[str, Any] = {}
    for p in profs:
        if p in ABR_PROFILES:
            loss, cl = protection_pairs(df, "abr", "effective_loss_rate", p, 100.0)
            tests.append(Test(f"{p}: ABR lowers the effective loss", "effective_loss_rate (ABR - none)", loss, 0.0,
                              "below", "pp", f"{p}: ABR vs no protection, {loss.n} seed x clip pairs", cl))
            delay, cd = protection_pairs(df, "abr", "m2e_p95_ms", p)
            tests.append(Test(f"{p}: ABR lowers the delay", "m2e_p95_ms (ABR - none)", delay, 0.0, "below", "ms",
                              f"{p}: ABR vs no protection, {delay.n} seed x clip pairs", cd))
            ev[p] = {"effective_loss_pp_diff": loss.value, "m2e_p95_ms_diff": delay.value, "n": loss.n}
        else:
            q, cq = protection_pairs(df, "abr", "plcmos", p)
            tests.append(Test(f"{p}: ABR does no harm", "plcmos (ABR - none)", q, -BETTER_MOS, "above", "",
                              f"{p}: ABR vs no protection, {q.n} seed x clip pairs", cq))
            ev[p] = {"plcmos_diff": q.value, "n": q.n}
    if not any(p in ABR_PROFILES for p in profs):
        tests.append(Test("capacity drop: not measured (no ABR cells on " + ", ".join(ABR_PROFILES) + ")",
                          "effective_loss_rate (ABR - none)", st.paired([], []), 0.0, "below", "pp", "", []))
    return Verdict("adaptive_bitrate", text, combine(tests),
                   _detail(tests, "Simulated: translab's sender-side controller modelled on libwebrtc's audio "
                           "network adaptor (a GCC-style bandwidth estimate from transport-cc feedback and RTCP "
                           "receiver reports in; bitrate, FEC and its expected loss, 20 or 60 ms frames out); "
                           "paired by seed and clip.")
                   + " aiortc, the live WebRTC stack here, has no bandwidth estimation or ABR: 'WebRTC owns' "
                   "it in libwebrtc (browsers, native SDKs), not in every WebRTC stack.", "", ev, tests)


# --------------------------------------------------------------------------------------------------
# conversations: "WebSocket first" and "the cost of getting it wrong" (data/experiments/conversation.toml)

#: A difference in a voice agent's turn latency or barge-in stop time up to UX_MS counts as not
#: changing the caller's experience: human turn gaps vary by a few hundred ms around a ~200 ms mode
#: (Stivers et al. 2009, PNAS), and the turns measured here take about a second.
UX_MS = 100.0
#: Underruns (gaps inside agent speech) per conversation within this count are "the same".
UX_UNDERRUNS = 1.0
#: Word error rates (absolute) within this are "the same".
UX_WER = 0.05
#: What must be equal for two conversations to pair (besides the seed): the script and the model.
SCRIPT_KEYS = ("dc_profile", "turns", "bargein_every", "pacing", "think_ms")


def conversation_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The finished conversation rows (those with a ``topology``)."""
    d = ok_rows(df)
    if "topology" not in d.columns:
        return d.iloc[0:0]
    return d[d["topology"].notna() & (d["topology"].astype(str) != "None")]


def conversation_setting(df: pd.DataFrame, topology: str) -> Setting:
    """The exact conversation configuration of ``topology`` in this run: the topology and the script
    keys of the run's most common script (so pairs share the seed and the script)."""
    d = conversation_rows(df)
    keys = [k for k in SCRIPT_KEYS if k in d.columns]
    values: dict[str, Any] = {"topology": topology}
    if len(d) and keys:
        top = d[keys].astype(str).value_counts().index[0]
        first = d[(d[keys].astype(str) == pd.Series(top, index=keys)).all(axis=1)].iloc[0]
        values.update({k: (bool(first[k]) if isinstance(first[k], (bool, np.bool_)) else first[k]) for k in keys})
    return Setting(topology, tuple(values.items()))


def _conversation_profiles(df: pd.DataFrame, *settings: Setting) -> list[str]:
    return _profiles(conversation_rows(df), *settings)


def claim_websocket_first(df: pd.DataFrame) -> Verdict:
    """WebSocket first.

    From the conversation cells, per caller access profile: turn latency p50 and p95 of direct-ws
    minus webrtc-gateway (paired by seed and script) below +:data:`UX_MS` (WebSocket to the model is
    no worse for the caller than the WebRTC gateway)."""
    text = "WebSocket first."
    d = conversation_rows(df)
    ws, gw = conversation_setting(d, "direct-ws"), conversation_setting(d, "webrtc-gateway")
    profs = _conversation_profiles(d, ws, gw)
    if not profs:
        return _need("websocket_first", text, "", ws, gw)
    tests: list[Test] = []
    ev: dict[str, Any] = {}
    for p in profs:
        for m in ("turn_latency_p50_ms", "turn_latency_p95_ms"):
            c = compare(d, ws, gw, m, p, "ms")
            tests.append(paired_test(f"{p}: direct-ws no slower ({m.split('_')[2]})", c, UX_MS, "below"))
            ev.setdefault(p, {})[f"{m}_diff"] = c.diff.value
    return Verdict("websocket_first", text, combine(tests),
                   _detail(tests, f"Simulated conversations (4-turn scripts, Silero server VAD, the model "
                           f"stand-in), direct-ws - webrtc-gateway, paired by seed and script; no worse than "
                           f"+{UX_MS:g} ms counts."), "", ev, tests)


def claim_engineering_time(df: pd.DataFrame) -> Verdict:
    """The cost of getting it wrong is mostly engineering time, not user experience.

    From the conversation cells, per caller access profile, direct-ws against webrtc-gateway (paired
    by seed and script), each figure within a margin on both sides: turn
    latency p95 within +-:data:`UX_MS`, barge-in stop p50 within +-:data:`UX_MS`, underruns per
    conversation within +-:data:`UX_UNDERRUNS`, and WER within +-:data:`UX_WER` when measured (each an
    equivalence: supported when its whole interval is inside the margin, refuted when wholly outside)."""
    text = "The cost of getting it wrong is mostly engineering time, not user experience."
    d = conversation_rows(df)
    ws, gw = conversation_setting(d, "direct-ws"), conversation_setting(d, "webrtc-gateway")
    profs = _conversation_profiles(d, ws, gw)
    if not profs:
        return _need("engineering_time", text, "", ws, gw)
    tests: list[Test] = []
    ev: dict[str, Any] = {}
    figures = [("turn_latency_p95_ms", "ms", UX_MS), ("bargein_stop_p50_ms", "ms", UX_MS),
               ("underruns", "", UX_UNDERRUNS), ("wer", "", UX_WER)]
    for p in profs:
        for m, unit, margin in figures:
            c = compare(d, ws, gw, m, p, unit)
            if c.n == 0:
                continue
            tests.append(paired_test(f"{p}: {m} the same", c, margin, "within"))
            ev.setdefault(p, {})[f"{m}_diff"] = c.diff.value
    return Verdict("engineering_time", text, combine(tests),
                   _detail(tests, "Simulated conversations, direct-ws - webrtc-gateway, paired by seed and script; "
                           "the caller's experience is the same when every difference's interval is inside its "
                           "margin."), "", ev, tests)


#: Every claim, in the article's order.
CLAIMS: tuple[Callable[[pd.DataFrame], Verdict], ...] = (
    claim_pcm_frame_bytes, claim_clean_latency, claim_bad_networks, claim_plc, claim_opus_24k,
    claim_ws_deterministic, claim_turn_64k, claim_adaptive_bitrate, claim_websocket_first,
    claim_engineering_time,
)


def evaluate(df: pd.DataFrame) -> list[Verdict]:
    """Every claim's verdict on ``df`` (a claim that crashes is reported, not raised)."""
    out = []
    for fn in CLAIMS:
        try:
            out.append(fn(df))
        except Exception as err:  # a claim must never take the report down
            out.append(Verdict(fn.__name__.removeprefix("claim_"), (fn.__doc__ or "").strip().splitlines()[0],
                               NOT_MEASURED, f"could not be evaluated: {type(err).__name__}: {err}", ""))
    return out


def claims_table(df: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as a table: claim, verdict, metrics, detail (every part with its interval), number
    of cells used, figure."""
    return pd.DataFrame([{"claim": v.claim, "verdict": v.verdict, "metrics": ", ".join(v.metrics),
                          "detail": v.detail, "cells": len(v.cells), "figure": v.figure}
                         for v in evaluate(df)])


# --------------------------------------------------------------------------------------------------
# the answer: what a voice agent should use on each profile


@dataclass(frozen=True)
class Criterion:
    """A metric a decision weighs: ``better`` is "higher" or "lower"; differences within ``delta``
    (in the metric's unit; for ``relative`` criteria a fraction of b's mean) count as equal."""

    metric: str
    label: str
    unit: str
    better: str
    delta: float
    relative: bool = False


P95 = Criterion("m2e_p95_ms", "mouth-to-ear p95", "ms", "lower", 5.0)
PLCMOS = Criterion("plcmos", "PLCMOS", "", "higher", BETTER_MOS)
PESQ = Criterion("pesq_wb", "PESQ-WB", "", "higher", BETTER_MOS)
WIRE = Criterion("wire_kbps_up", "wire kbit/s up", "kbit/s", "lower", 0.10, relative=True)


@dataclass(frozen=True)
class Decision:
    """A choice between two settings, weighed on criteria; ``profiles`` "all", "clean" or "impaired"."""

    name: str
    a: Setting
    b: Setting
    criteria: tuple[Criterion, ...]
    profiles: str = "all"


DECISIONS: tuple[Decision, ...] = (
    Decision("transport", WEBRTC, WS_BINARY, (P95, PLCMOS)),
    Decision("framing (WebSocket)", WS_BINARY, WS_JSON, (P95, WIRE)),
    Decision("jitter buffer (WebRTC)", WEBRTC, WEBRTC_FIXED, (P95, PLCMOS), "impaired"),
    Decision("jitter buffer (WebSocket)", WS_BINARY, WS_FIXED, (P95, PLCMOS), "impaired"),
    Decision("Opus FEC", WEBRTC, OPUS_PLC, (PLCMOS, WIRE)),
    Decision("Opus bitrate", opus_no_fec(24), opus_no_fec(64), (PESQ, WIRE), "clean"),
)


@dataclass
class Recommendation:
    """One decision on one profile: the recommended option (a label, "either" or "inconclusive"),
    why, and each criterion's paired comparison (a - b) with its outcome ("a", "b", "equal" or
    "inconclusive")."""

    profile: str
    decision: str
    a: Setting
    b: Setting
    choice: str
    why: str
    comparisons: list[tuple[Criterion, Comparison, str]]

    @property
    def cells(self) -> list[str]:
        """Hashes of the cells used."""
        return list(dict.fromkeys(h for _, c, _ in self.comparisons for h in c.cells))


def _outcome(cr: Criterion, c: Comparison) -> str:
    e = c.diff
    if not e.has_interval:
        return "inconclusive"
    delta = cr.delta * abs(c.b_est.value) if cr.relative else cr.delta
    sign = 1.0 if cr.better == "higher" else -1.0
    lo, hi = sorted((sign * e.lo, sign * e.hi))  # in "a better" units
    if lo > delta:
        return "a"
    if hi < -delta:
        return "b"
    if -delta <= lo and hi <= delta:
        return "equal"
    return "inconclusive"


def recommend(df: pd.DataFrame, decision: Decision, profile: str) -> Recommendation | None:
    """The recommendation of ``decision`` on ``profile`` (None when the run lacks either side).

    Rule: an option is recommended when it is better (its whole interval past the criterion's
    ``delta``) on at least one criterion and worse on none; better on one and worse on another is a
    trade-off, named; equal on every criterion is "either"; otherwise inconclusive."""
    if not len(decision.a.rows(df, profile)) or not len(decision.b.rows(df, profile)):
        return None
    comps = [(cr, c := compare(df, decision.a, decision.b, cr.metric, profile, cr.unit), _outcome(cr, c))
             for cr in decision.criteria]
    outs = [o for _, _, o in comps]
    wins_a = [cr.label for cr, _, o in comps if o == "a"]
    wins_b = [cr.label for cr, _, o in comps if o == "b"]
    if wins_a and not wins_b:
        choice, why = decision.a.label, "better on " + ", ".join(wins_a)
    elif wins_b and not wins_a:
        choice, why = decision.b.label, "better on " + ", ".join(wins_b)
    elif wins_a and wins_b:
        choice = "trade-off"
        why = f"{decision.a.label} better on {', '.join(wins_a)}; {decision.b.label} better on {', '.join(wins_b)}"
    elif all(o == "equal" for o in outs):
        choice, why = "either", "equal within " + ", ".join(
            f"{cr.label} +-{cr.delta:g}{'x' if cr.relative else (' ' + cr.unit if cr.unit else '')}" for cr in decision.criteria)
    else:
        choice, why = "inconclusive", "no interval clears its threshold on " + ", ".join(
            cr.label for cr, _, o in comps if o == "inconclusive")
    if choice not in ("trade-off", "either", "inconclusive") and "inconclusive" in outs:
        why += "; " + ", ".join(cr.label for cr, _, o in comps if o == "inconclusive") + " inconclusive"
    return Recommendation(profile, decision.name, decision.a, decision.b, choice, why, comps)


def recommendations(df: pd.DataFrame) -> list[Recommendation]:
    """Every decision of :data:`DECISIONS` on every profile the run has cells for."""
    d = ok_rows(df)
    if "profile" not in d.columns or not len(d):
        return []
    profs = sorted(set(d["profile"].map(profile_name)), key=lambda p: (not is_clean(p), p))
    out = []
    for p in profs:
        for dec in DECISIONS:
            if (dec.profiles == "clean" and not is_clean(p)) or (dec.profiles == "impaired" and is_clean(p)):
                continue
            r = recommend(df, dec, p)
            if r is not None:
                out.append(r)
    return out
