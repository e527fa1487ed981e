"""The runner: resume, failure rows, atomic cells, Ctrl-C, Dask equals local, the CLI exit code.

Mechanics tests run cells with :func:`runner_cells.runner_cell` (tests/runner_cells.py: a row of the
cell's keys plus ``value = 2 * seed``, no figures); where the engine is cheap enough (Dask vs local, a
cell that really fails) they run the real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from translab.lab import experiment as ex
from translab.lab.runner import run_experiment
from translab.lab.store import load_results

from runner_cells import SLEEP_ENV, runner_cell  # tests/runner_cells.py (pytest puts tests/ on sys.path)

VOLATILE = ["run_wall_s", "finished_at"]
ROOT = Path(__file__).resolve().parent.parent
#: the same cell function for the CLI, which runs with ROOT as its working directory (on sys.path)
CLI_CELL = "tests.runner_cells:runner_cell"


def runner_exp(seeds: list[int]) -> ex.Experiment:
    return ex.from_dict({"name": "runner", "description": "runner test",
                         "grid": [{"transport": ["webrtc", "websocket"], "seed": seeds}]})


def test_run_resume_and_failure_rows(tmp_path: Path) -> None:
    exp = runner_exp([1, 2, 666])
    out = run_experiment(exp, tmp_path, run_cell=runner_cell, progress=False, code="test")
    assert (out.n_cells, out.n_run, out.n_failed) == (6, 6, 2)
    df = load_results(tmp_path)
    assert len(df) == 6 and set(df["status"]) == {"ok", "failed"}
    failed = df[df["status"] == "failed"]
    assert (failed["seed"] == 666).all() and failed["error"].str.contains("fails on purpose").all()
    good = df[df["status"] == "ok"]
    assert (good["value"] == 2 * good["seed"]).all()  # each row came from its own cell
    for h in df["cell_hash"]:
        assert (tmp_path / "cells" / h / "row.json").exists()
    for h in failed["cell_hash"]:
        assert "RuntimeError" in (tmp_path / "cells" / h / "error.txt").read_text()
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["experiment"]["content_hash"] == exp.content_hash and man["counts"]["failed"] == 2
    assert {"python", "libopus", "aiortc", "websockets", "av", "git_commit"} <= set(man["versions"])
    assert man["seeds"] == [1, 2, 666] and man["started_at"] and man["ended_at"]

    again = run_experiment(exp, tmp_path, run_cell=runner_cell, progress=False, code="test")
    assert (again.n_skipped, again.n_run, again.n_failed) == (4, 2, 2)  # failed cells are retried
    assert len(load_results(tmp_path)) == 6
    # a new code version is a new set of cells
    other = run_experiment(exp, tmp_path, run_cell=runner_cell, progress=False, code="test2")
    assert other.n_skipped == 0 and other.n_run == 6


def test_worker_crash_becomes_failed_row_and_run_goes_on(tmp_path: Path) -> None:
    exp = runner_exp([1, 2, 3, 667])  # seed 667: the worker process dies
    out = run_experiment(exp, tmp_path, run_cell=runner_cell, progress=False, code="t", workers=2)
    assert (out.n_cells, out.n_failed) == (8, 2)
    df = load_results(tmp_path)
    crashed = df[df["status"] == "failed"]
    assert (crashed["seed"] == 667).all() and crashed["error"].str.contains("WorkerCrash").all()
    assert (df[df["seed"] != 667]["status"] == "ok").all()
    assert not list((tmp_path / "cells").glob(".tmp-*"))


def test_leftover_temp_dirs_are_cleaned(tmp_path: Path) -> None:
    (tmp_path / "cells" / ".tmp-deadbeef-1-0").mkdir(parents=True)
    run_experiment(runner_exp([1]), tmp_path, run_cell=runner_cell, progress=False, code="t", executor="serial")
    assert not list((tmp_path / "cells").glob(".tmp-*"))


def test_dask_local_cluster_gives_same_rows(tmp_path: Path) -> None:
    """The real engine (4 short simulated calls, no quality metrics) through a LocalCluster started
    by the runner gives the same rows as the local process pool."""
    pytest.importorskip("distributed")
    exp = ex.from_dict({"name": "dask-vs-local", "description": "runner test", "metrics": [],
                        "defaults": {"clip": "slt-weather", "duration_s": 2.0},
                        "grid": [{"transport": ["webrtc", "websocket"], "profile": "4g-handoff",
                                  "seed": [1, 2]}]})
    a = run_experiment(exp, tmp_path / "local", progress=False, code="t")
    b = run_experiment(exp, tmp_path / "dask", executor="dask", workers=2, progress=False, code="t",
                       dask_processes=False)
    assert a.n_failed == b.n_failed == 0
    pd.testing.assert_frame_equal(a.results.drop(columns=VOLATILE), b.results.drop(columns=VOLATILE))
    assert a.results["m2e_p95_ms"].notna().all()  # rows of calls, not empty shells


def _write_exp(path: Path, seeds: list[int]) -> Path:
    path.write_text('name = "runner"\ndescription = "cli test"\n[[grid]]\ntransport = ["webrtc", "websocket"]\n'
                    f"seed = {seeds}\n")
    return path


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # pinned code version: other work in the tree between two runs must not change the cell hashes
    # cwd=ROOT: `python -m` puts the working directory on sys.path, so tests.runner_cells imports
    return subprocess.Popen([sys.executable, "-m", "translab.cli", *args], text=True, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TRANSLAB_CODE_VERSION": "test", **(env or {})})


def test_cli_exit_code_and_ctrl_c_loses_nothing(tmp_path: Path) -> None:
    f = _write_exp(tmp_path / "e.toml", list(range(1, 9)))  # 16 cells
    out = tmp_path / "out"
    args = ["run", str(f), "--out", str(out), "--cell-function", CLI_CELL, "--no-progress"]
    proc = _cli(args, {SLEEP_ENV: "0.4"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = [d for d in (out / "cells").glob("*") if (d / "row.json").exists()] if out.exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    done = {d.name for d in (out / "cells").glob("*") if (d / "row.json").exists()}
    assert 3 <= len(done) < 16
    saved = set(load_results(out)["cell_hash"])
    assert saved == done  # every finished cell is in results.parquet, nothing half-written
    assert json.loads((out / "manifest.json").read_text())["interrupted"] is True

    proc = _cli(args)
    so, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"{len(done)} already done" in so and "0 failed" in so
    df = load_results(out)
    assert len(df) == 16 and (df["value"] == 2 * df["seed"]).all()


def test_cli_exit_code_1_when_a_real_cell_fails(tmp_path: Path) -> None:
    """The real engine: a clip that exists but is not a WAV file passes the experiment check (a path
    to a .wav) and fails when the call loads it; the run goes on, exits 1 and names the cause."""
    bad = tmp_path / "not-audio.wav"
    bad.write_bytes(b"this is not a RIFF file")
    g = tmp_path / "f.toml"
    g.write_text('name = "runner"\ndescription = "cli test"\nmetrics = []\n[defaults]\nduration_s = 1.0\n'
                 f'[[grid]]\ntransport = "websocket"\nclip = ["slt-weather", "{bad}"]\n')
    proc = _cli(["run", str(g), "--out", str(tmp_path / "out2"), "--no-progress"])
    so, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "2 cells, 2 run" in so and "1 failed" in so
    assert "not-audio.wav" in err and "Traceback" not in err
    df = load_results(tmp_path / "out2")
    assert df.loc[df["status"] == "ok", "m2e_p50_ms"].notna().all()


def test_cli_bad_file_is_one_line_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('name = "x"\ndescription = ""\n[[grid]]\ntransport = ["carrier-pigeon"]\n')
    proc = _cli(["run", str(f), "--out", str(tmp_path / "o")])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "bad.toml" in err and "grid[0].transport" in err and "webrtc, websocket" in err
    assert "Traceback" not in err


def test_cli_dry_run_lists_cells_and_runs_nothing(tmp_path: Path) -> None:
    f = _write_exp(tmp_path / "e.toml", [1, 2])
    proc = _cli(["run", str(f), "--out", str(tmp_path / "o"), "--dry-run"])
    so, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "runner: 4 cells (4 simulated, 0 live)" in so and "transport: webrtc, websocket" in so
    assert not (tmp_path / "o").exists()


def test_code_version_is_content_based(monkeypatch: pytest.MonkeyPatch) -> None:
    from translab.lab.runner import code_version

    monkeypatch.delenv("TRANSLAB_CODE_VERSION", raising=False)
    a = code_version()
    assert a == code_version() and a.startswith("0.") and "+src." in a
    monkeypatch.setenv("TRANSLAB_CODE_VERSION", "pinned")
    assert code_version() == "pinned"


def test_progress_bar_shows_count_and_eta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 5: `translab run` shows a progress bar with an ETA (tqdm on stderr: done/total and
    [elapsed<remaining])."""
    import re

    run_experiment(runner_exp([1, 2]), tmp_path, run_cell=runner_cell, progress=True, code="t", executor="serial")
    err = capsys.readouterr().err
    assert "runner:" in err and "4/4" in err, err
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", err), err  # elapsed<ETA


def test_live_cells_run_one_at_a_time_and_never_beside_simulated_ones(tmp_path: Path) -> None:
    """Issue 5: simulated cells in parallel, live cells one at a time (they measure time; concurrent
    CPU load would distort them)."""
    from runner_cells import timed_cell

    exp = ex.from_dict({"name": "modes", "description": "live vs simulated scheduling",
                        "grid": [{"transport": ["webrtc", "websocket"], "seed": [1, 2], "mode": ["simulate"]},
                                 {"transport": ["webrtc", "websocket"], "seed": [3, 4], "mode": ["live"]}]})
    run_experiment(exp, tmp_path, run_cell=timed_cell, progress=False, code="test", workers=2)
    df = load_results(tmp_path).sort_values("start_s")
    live, sim = df[df["mode"] == "live"], df[df["mode"] == "simulate"]
    assert len(live) == 4 and len(sim) == 4

    def overlap(a: pd.Series, b: pd.Series) -> bool:
        return a["start_s"] < b["end_s"] and b["start_s"] < a["end_s"]

    rows = list(live.iterrows())
    assert not any(overlap(a, b) for i, (_, a) in enumerate(rows) for _, b in rows[i + 1:])
    assert not any(overlap(a, b) for _, a in live.iterrows() for _, b in sim.iterrows())
    # and the simulated cells did run in parallel (2 workers), so the test can tell the difference
    srows = list(sim.iterrows())
    assert any(overlap(a, b) for i, (_, a) in enumerate(srows) for _, b in srows[i + 1:])


def test_local_pool_refuses_a_cell_function_its_workers_cannot_import(tmp_path: Path) -> None:
    """The pool's workers start fresh (spawn) and find the cell function by module and name: a
    function defined inside another one is refused up front, in one line naming it."""
    from translab.errors import ConfigError

    def local_cell(cell: dict, out_dir: Path) -> dict:  # type: ignore[type-arg]
        return runner_cell(cell, out_dir)

    with pytest.raises(ConfigError, match=r"run_cell: '.*local_cell' is not allowed .*executor 'serial'"):
        run_experiment(runner_exp([1, 2]), tmp_path, run_cell=local_cell, progress=False, code="t")
    assert not (tmp_path / "cells").exists()  # refused before anything ran
    res = run_experiment(runner_exp([1, 2]), tmp_path, run_cell=local_cell, progress=False, code="t",
                         executor="serial")
    assert res.n_run == 4 and res.n_failed == 0


UNGUARDED_SCRIPT = """
import sys
from pathlib import Path

from translab.bench.lab import noop_cell
from translab.lab import experiment as ex
from translab.lab.runner import run_experiment

exp = ex.from_dict({"name": "unguarded", "description": "runner test", "grid": [{"seed": [1, 2, 3]}]})
run_experiment(exp, Path(sys.argv[1]), run_cell=noop_cell, workers=2, progress=False, code="t")
"""


def test_script_without_main_guard_gets_one_clear_error_not_an_endless_retry(tmp_path: Path) -> None:
    """Spawned workers import the main module: a script that runs an experiment at top level runs it
    again in each worker, which dies before taking a cell. The run stops with an error that says what
    to do, instead of restarting the pool forever."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("translab.errors.TranslabError: executor: the local pool's worker processes "
                           "ended before running any cell"), r.stderr
    assert 'if __name__ == "__main__":' in last
