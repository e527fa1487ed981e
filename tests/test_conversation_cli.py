"""`translab converse`: one JSON object on stdout, artefacts, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "translab.cli", "converse", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_json_is_exactly_one_object_with_the_summary_and_each_turn(tmp_path):
    proc = _run("--topology", "webrtc-gateway", "--turns", "2", "--barge-in", "1", "--seed", "3",
                "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)  # the whole stdout parses: nothing else was printed
    assert set(d) == {"summary", "turns"}
    s = d["summary"]
    assert s["topology"] == "webrtc-gateway" and s["profile"] == "broadband" and s["seed"] == 3
    assert len(d["turns"]) == 2 and d["turns"][1]["interrupts"] is True
    assert s["turn_latency_p50_ms"] > 0 and s["bargein_stop_p50_ms"] > 0
    assert s["wer"] is None  # not asked for: null, never NaN
    assert (tmp_path / "turns.csv").is_file()
    assert json.loads((tmp_path / "summary.json").read_text())["summary"] == s


@pytest.mark.parametrize("args, message", [
    (["--topology", "pstn"], "argument --topology: invalid choice: 'pstn'"),
    (["--profile", "moon"], "profile: 'moon' is not allowed"),
    (["--pacing", "burst", "--tts-speed", "0.5"], "tts_speed: 0.5 is not allowed"),
    (["--turns", "0"], "turns: 0 is not allowed"),
    (["--live", "--edge-playout", "adaptive", "--topology", "twilio"], "edge_playout: 'adaptive' is not allowed"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = _run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("translab converse: error: ") and message in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.live
@pytest.mark.slow
def test_live_json_has_the_simulated_runs_columns():
    # one short turn live through the emulator (~8 s), against the same command simulated
    live = _run("--live", "--turns", "1", "--think-sigma", "0", "--json")
    sim = _run("--turns", "1", "--think-sigma", "0", "--json")
    assert live.returncode == 0 and sim.returncode == 0, live.stderr + sim.stderr
    a, b = json.loads(live.stdout), json.loads(sim.stdout)
    assert set(a) == set(b) == {"summary", "turns"}
    assert set(a["summary"]) == set(b["summary"]) and a["summary"]["mode"] == "live"
    assert [set(r) for r in a["turns"]] == [set(r) for r in b["turns"]]
    assert a["summary"]["turns_answered"] == 1
