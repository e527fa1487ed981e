"""The HTML report: self-contained, every section present, renders in headless Chromium with every
image loaded and no script error. Built from a toy run (no engine) so it is fast and deterministic."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from translab.cli import main as cli_main
from translab.errors import ConfigError
from translab.lab import experiment as ex
from translab.lab.cells import toy_cell
from translab.lab.runner import run_experiment
from translab.report.html import build_html, headline_table, write_report
from translab.lab.store import load_results

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy run covering every figure: both transports, clean + impaired profiles, Opus bitrates,
    PCM framings, concealment and playout variants, live cells, one failed cell."""
    out = tmp_path_factory.mktemp("run")
    exp = ex.from_dict({
        "name": "toy-report", "description": "report test", "question": "Which transport, when?",
        "grid": [
            {"transport": "webrtc", "bitrate": [12000, 24000, 32000, 64000],
             "profile": ["clean-lan", "4g-handoff"], "seed": [1, 2]},
            {"transport": "websocket", "framing": ["binary", "realtime-json", "twilio-json"],
             "sample_rate": [16000, 24000], "profile": ["clean-lan", "4g-handoff"], "seed": [1, 2]},
            {"transport": "webrtc", "fec": False, "conceal": ["opus-plc", "zero"], "profile": "4g-handoff"},
            {"transport": "websocket", "conceal": ["pcm-plc", "zero"], "profile": "4g-handoff",
             "playout": ["adaptive", "elastic", "fixed:60"]},
            {"transport": ["webrtc", "websocket"], "mode": "live", "profile": "clean-lan", "duration_s": 2.0},
            {"transport": "webrtc", "seed": 666},
        ]})
    res = run_experiment(exp, out, run_cell=toy_cell, progress=False, code="t", executor="serial")
    assert res.n_failed == 1
    return out


def test_report_sections_and_self_contained(toy_run: Path, tmp_path: Path) -> None:
    path = write_report(toy_run, tmp_path / "r.html")
    text = path.read_text()
    for anchor in ("question", "grid", "headline", "figures", "claims", "failed", "provenance"):
        assert f"id='{anchor}'" in text, anchor
    assert "Which transport, when?" in text
    # no external resources: every src/href is a data: URI or an in-page anchor
    refs = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", text)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [r[:40] for r in refs if not r.startswith(("data:", "#"))]
    assert "<script" not in text and "http://" not in text and "https://" not in text
    imgs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert len(imgs) >= 7  # every figure of notebooks 2-4 has data in this run
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    for verdict in ("supported", "refuted", "not measured in this run"):
        assert f"<b>{verdict}</b>" in text
    assert "toy failure for seed 666" in text  # the failed cell is listed


def test_headline_table(toy_run: Path) -> None:
    head = headline_table(load_results(toy_run))
    assert set(head["transport"]) == {"webrtc", "websocket"}
    assert set(head["profile"]) == {"clean-lan", "4g-handoff"}
    live_ws = head[(head["transport"] == "websocket") & (head["profile"] == "clean-lan")]
    assert live_ws["set-up (ms, live)"].notna().all()
    ws_bad = head[(head["transport"] == "websocket") & (head["profile"] == "4g-handoff")].iloc[0]
    rtc_bad = head[(head["transport"] == "webrtc") & (head["profile"] == "4g-handoff")].iloc[0]
    assert ws_bad["loss (%)"] == 0 and rtc_bad["loss (%)"] > 0


def test_report_cli_and_bad_dir(toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.html"
    assert cli_main(["report", str(toy_run), "-o", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out and out.exists()
    with pytest.raises(ConfigError, match="translab run"):
        build_html(tmp_path / "nothing-here")
    assert cli_main(["report", str(tmp_path / "nothing-here")]) == 2


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
def test_report_renders_in_headless_chromium(toy_run: Path, tmp_path: Path) -> None:
    text = build_html(toy_run)
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
    assert check["images"] >= 7 and check["broken"] == 0, check
    assert check["errors"] == [], check
    assert check["height"] > 2000  # the report shows (is laid out), not a blank page
