"""The HTML report, built from a real run: a small simulated experiment run with the engine (both
transports, a clean and an impaired profile, Opus 12k/64k, PCM binary and realtime-json, two playout
policies, concealment variants; 3 s calls, PLCMOS and STOI) plus one cell that really fails (a clip that
is not a WAV file). Self-contained, every section present, the headline and the claims are the run's own
numbers, and it renders in headless Chromium with every image loaded and no script error. Set-up needs
live calls: the simulated report says it was not measured; a separate live test (two 2 s live calls)
checks the set-up figures and column."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from translab.cli import main as cli_main
from translab.errors import ConfigError
from translab.lab import experiment as ex
from translab.lab.runner import run_experiment
from translab.report import claims as C
from translab.report import figures as figs
from translab.report.html import build_html, headline_table, write_report
from translab.lab.store import load_results

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
SETUP_FIGURES = ("setup_time", "setup_breakdown")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real simulated run with data for every figure except the live-only set-up ones, and one
    failed cell. About 13 calls of 3 s on 2 local workers: a few seconds."""
    out = tmp_path_factory.mktemp("run")
    not_wav = out.parent / "not-a-wav.wav"
    not_wav.write_bytes(b"this is not RIFF audio")  # exists (passes the experiment check), unreadable
    exp = ex.from_dict({
        "name": "report-test", "description": "report test", "question": "Which transport, when?",
        "metrics": ["plcmos", "stoi"], "defaults": {"clip": "slt-weather", "duration_s": 3.0, "seed": 1},
        "grid": [
            {"transport": "webrtc", "bitrate": [12000, 64000], "profile": ["clean-lan", "4g-handoff"]},
            {"transport": "websocket", "framing": ["binary", "realtime-json"],
             "profile": ["clean-lan", "4g-handoff"]},
            {"transport": "webrtc", "fec": False, "conceal": ["opus-plc", "zero"], "profile": "4g-handoff"},
            {"transport": "websocket", "conceal": ["pcm-plc", "zero"], "profile": "4g-handoff",
             "playout": ["adaptive", "elastic"]},
            {"transport": "webrtc", "clip": str(not_wav)},
        ]})
    res = run_experiment(exp, out, progress=False, code="t", executor="local", workers=2)
    assert res.n_failed == 1, res.failed
    return out


def test_report_sections_and_self_contained(real_run: Path, tmp_path: Path) -> None:
    path = write_report(real_run, tmp_path / "r.html")
    text = path.read_text()
    for anchor in ("question", "grid", "headline", "figures", "claims", "failed", "provenance"):
        assert f"id='{anchor}'" in text, anchor
    assert "Which transport, when?" in text
    # no external resources: every src/href is a data: URI or an in-page anchor
    refs = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", text)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [r[:40] for r in refs if not r.startswith(("data:", "#"))]
    assert "<script" not in text and "http://" not in text and "https://" not in text
    imgs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    # every figure but the live-only set-up ones has data in this run; those say why they are missing
    assert len(imgs) == len(figs.FIGURES) - len(SETUP_FIGURES)
    for key in figs.FIGURES:
        shown = f"<figure id='fig-{key}'>" in text
        assert shown == (key not in SETUP_FIGURES), key
    for key in SETUP_FIGURES:
        assert re.search(rf"<h3 id='fig-{key}'>[^<]*</h3><p class='muted'>Not shown: ", text), key
    # the grid's numeric values read as numbers: ascending, no stray ".0" (frame_ms 20, not 20.0)
    grid = text[text.index("id='grid'"):text.index("id='headline'")]
    assert not re.search(r"\b\d+\.0\b", grid), grid
    for row in re.findall(r"<th class='l'>(?:frame_ms|sample_rate|seed)</th><td class='l'>([^<]*)</td>", grid):
        nums = [float(x) for x in row.split(", ")]
        assert nums == sorted(nums), row
    # the failed cell is listed with its real cause
    failed = text[text.index("id='failed'"):text.index("id='provenance'")]
    assert "not-a-wav.wav" in html.unescape(failed) and "WAV" in failed


def test_claims_section_shows_the_runs_own_verdicts(real_run: Path) -> None:
    df = load_results(real_run)
    text = build_html(real_run)
    section = text[text.index("id='claims'"):]
    shown = re.findall(r"<td class='l [^']*'><b>([^<]+)</b></td><td class='l'>([^<]*)</td>", section)
    verdicts = C.evaluate(df)
    assert verdicts
    assert [(html.unescape(v), html.unescape(d)) for v, d in shown] == [(v.verdict, v.detail) for v in verdicts]
    assert {v.verdict for v in verdicts} <= {C.SUPPORTED, C.REFUTED, C.DEPENDS, C.NOT_MEASURED}
    # no live cells: the clean-latency claim hangs on the set-up this run did not measure
    clean = next(v for v in verdicts if v.key == "clean_latency")
    assert clean.verdict == C.DEPENDS and "set-up, which this run did not measure" in html.unescape(section)
    assert any(v.verdict == C.NOT_MEASURED for v in verdicts)  # no TURN relay cells either


def test_headline_table(real_run: Path) -> None:
    df = load_results(real_run)
    ok = df[df["status"] == "ok"]
    head = headline_table(df)
    assert set(head["transport"]) == {"webrtc", "websocket"}
    assert set(head["profile"]) == {"clean-lan", "4g-handoff"}
    # like for like: the elastic, zero-fill and no-FEC variants stay out of the headline groups
    lfl = C.like_for_like(ok)
    assert head["cells"].sum() == len(lfl) < len(ok)
    assert set(lfl["playout"]) == {"adaptive"} and set(lfl["conceal"]) == {"opus-fec", "pcm-plc"}
    assert lfl["fec"][lfl["codec"] == "opus"].all()
    assert (head["p95 range over seeds (ms)"] != "").all()
    assert head["set-up (ms, live)"].isna().all()  # simulated cells have no set-up
    for _, r in head.iterrows():
        g = lfl[(lfl["transport"] == r["transport"]) & (lfl["profile"] == r["profile"])]
        assert r["m2e p95 (ms)"] == pytest.approx(g["m2e_p95_ms"].median())
        assert r["loss (%)"] == pytest.approx(100 * g["loss_rate"].median())
        assert r["PLCMOS"] == pytest.approx(g["plcmos"].median())
        assert not math.isnan(r["wire kbit/s (up)"]) and 0 < r["PLCMOS"] <= 5
    ws = head[head["transport"] == "websocket"]
    assert (ws["loss (%)"] == 0).all()  # TCP: late, never lost
    assert ok["stoi"].between(0, 1).all()


def test_headline_states_its_filter_and_the_emodel_caveat(real_run: Path) -> None:
    text = html.unescape(build_html(real_run))
    section = text[text.index("id='headline'"):text.index("id='figures'")]
    assert C.LIKE_FOR_LIKE in section and "E-model caveat" in section
    assert "G.107.2" in section and "PLCMOS" in section


def test_grid_shows_explicit_durations_and_provenance_when_cells_were_computed(real_run: Path) -> None:
    text = html.unescape(build_html(real_run))
    grid = text[text.index("id='grid'"):text.index("id='headline'")]
    # duration_s 3 was set for every cell; the clip lengths the summaries carry are not settings
    assert re.search(r"duration_s</th><td class='l'>3 \(\d+ cells\)</td>", grid), grid
    prov = text[text.index("id='provenance'"):]
    m = re.search(r"cells computed</th><td class='l'>(\d+) cells finished between (\S+ \S+) and (\S+ \S+) UTC", prov)
    assert m and int(m.group(1)) == len(load_results(real_run)), prov[:600]


def test_report_cli_and_bad_dir(real_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.html"
    assert cli_main(["report", str(real_run), "-o", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out and out.exists()
    with pytest.raises(ConfigError, match="translab run"):
        build_html(tmp_path / "nothing-here")
    assert cli_main(["report", str(tmp_path / "nothing-here")]) == 2


@pytest.mark.live
def test_live_cells_give_setup_figures(tmp_path: Path) -> None:
    """Two short live calls (one per transport, 2 s): the set-up figures and column have data."""
    exp = ex.from_dict({"name": "report-live", "description": "report test", "metrics": [],
                        "defaults": {"clip": "slt-weather", "duration_s": 2.0},
                        "grid": [{"transport": ["webrtc", "websocket"], "mode": "live", "profile": "clean-lan"}]})
    res = run_experiment(exp, tmp_path, progress=False, code="t")
    assert res.n_failed == 0, res.failed
    head = headline_table(load_results(tmp_path))
    assert len(head) == 2 and (head["set-up (ms, live)"] > 0).all()
    text = build_html(tmp_path)
    for key in SETUP_FIGURES:
        assert f"<figure id='fig-{key}'>" in text, key


CHECKER = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); }, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  var d = document.createElement('pre'); d.id = 'translab-check';
  d.textContent = JSON.stringify({images: imgs.length, broken: bad, errors: window.__errors,
                                  height: document.body.scrollHeight});
  document.body.appendChild(d);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(real_run: Path, tmp_path: Path) -> None:
    text = build_html(real_run)
    # the checker goes first in <head> so it sees every error the report's own content could raise
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("<head>", "<head>" + CHECKER, 1))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
           probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    m = re.search(r'<pre id="translab-check">(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stderr[-2000:]
    check = json.loads(m.group(1).replace("&quot;", '"'))
    assert check["images"] == len(figs.FIGURES) - len(SETUP_FIGURES) and check["broken"] == 0, check
    assert check["errors"] == [], check
    assert check["height"] > 2000  # the report shows (is laid out), not a blank page
