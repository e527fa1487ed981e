"""The runner: resume, failure rows, atomic cells, Ctrl-C, Dask equals local, the CLI exit code."""

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
from translab.lab.cells import toy_cell
from translab.lab.runner import run_experiment
from translab.lab.store import load_results

VOLATILE = ["run_wall_s", "finished_at"]


def toy_exp(seeds: list[int]) -> ex.Experiment:
    return ex.from_dict({"name": "toy", "description": "runner test",
                         "grid": [{"transport": ["webrtc", "websocket"], "seed": seeds}]})


def test_run_resume_and_failure_rows(tmp_path: Path) -> None:
    exp = toy_exp([1, 2, 666])
    out = run_experiment(exp, tmp_path, run_cell=toy_cell, progress=False, code="test")
    assert (out.n_cells, out.n_run, out.n_failed) == (6, 6, 2)
    df = load_results(tmp_path)
    assert len(df) == 6 and set(df["status"]) == {"ok", "failed"}
    failed = df[df["status"] == "failed"]
    assert (failed["seed"] == 666).all() and failed["error"].str.contains("toy failure").all()
    for h in df["cell_hash"]:
        assert (tmp_path / "cells" / h / "row.json").exists()
    for h in failed["cell_hash"]:
        assert "RuntimeError" in (tmp_path / "cells" / h / "error.txt").read_text()
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["experiment"]["content_hash"] == exp.content_hash and man["counts"]["failed"] == 2
    assert {"python", "libopus", "aiortc", "websockets", "av", "git_commit"} <= set(man["versions"])
    assert man["seeds"] == [1, 2, 666] and man["started_at"] and man["ended_at"]

    again = run_experiment(exp, tmp_path, run_cell=toy_cell, progress=False, code="test")
    assert (again.n_skipped, again.n_run, again.n_failed) == (4, 2, 2)  # failed cells are retried
    assert len(load_results(tmp_path)) == 6
    # a new code version is a new set of cells
    other = run_experiment(exp, tmp_path, run_cell=toy_cell, progress=False, code="test2")
    assert other.n_skipped == 0 and other.n_run == 6


def test_worker_crash_becomes_failed_row_and_run_goes_on(tmp_path: Path) -> None:
    exp = toy_exp([1, 2, 3, 667])  # seed 667: the worker process dies
    out = run_experiment(exp, tmp_path, run_cell=toy_cell, progress=False, code="t", workers=2)
    assert (out.n_cells, out.n_failed) == (8, 2)
    df = load_results(tmp_path)
    crashed = df[df["status"] == "failed"]
    assert (crashed["seed"] == 667).all() and crashed["error"].str.contains("WorkerCrash").all()
    assert (df[df["seed"] != 667]["status"] == "ok").all()
    assert not list((tmp_path / "cells").glob(".tmp-*"))


def test_leftover_temp_dirs_are_cleaned(tmp_path: Path) -> None:
    (tmp_path / "cells" / ".tmp-deadbeef-1-0").mkdir(parents=True)
    run_experiment(toy_exp([1]), tmp_path, run_cell=toy_cell, progress=False, code="t", executor="serial")
    assert not list((tmp_path / "cells").glob(".tmp-*"))


def test_dask_local_cluster_gives_same_rows(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    exp = toy_exp([1, 2, 3])
    a = run_experiment(exp, tmp_path / "local", run_cell=toy_cell, progress=False, code="t")
    b = run_experiment(exp, tmp_path / "dask", executor="dask", workers=2, run_cell=toy_cell,
                       progress=False, code="t", dask_processes=False)
    assert a.n_failed == b.n_failed == 0
    pd.testing.assert_frame_equal(a.results.drop(columns=VOLATILE), b.results.drop(columns=VOLATILE))


def _write_exp(path: Path, seeds: list[int]) -> Path:
    path.write_text('name = "toy"\ndescription = "cli test"\n[[grid]]\ntransport = ["webrtc", "websocket"]\n'
                    f"seed = {seeds}\n")
    return path


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # pinned code version: other work in the tree between two runs must not change the cell hashes
    return subprocess.Popen([sys.executable, "-m", "translab.cli", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TRANSLAB_CODE_VERSION": "test", **(env or {})})


def test_cli_exit_code_and_ctrl_c_loses_nothing(tmp_path: Path) -> None:
    f = _write_exp(tmp_path / "e.toml", list(range(1, 9)))  # 16 cells
    out = tmp_path / "out"
    args = ["run", str(f), "--out", str(out), "--cell-function", "translab.lab.cells:toy_cell",
            "--no-progress"]
    proc = _cli(args, {"TRANSLAB_TOY_SLEEP_S": "0.4"})
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
    assert len(load_results(out)) == 16

    g = _write_exp(tmp_path / "f.toml", [1, 666])
    proc = _cli(["run", str(g), "--out", str(tmp_path / "out2"), "--cell-function",
                 "translab.lab.cells:toy_cell", "--no-progress"])
    so, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "toy failure" in err


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
    assert "toy: 4 cells (4 simulated, 0 live)" in so and "transport: webrtc, websocket" in so
    assert not (tmp_path / "o").exists()


def test_code_version_is_content_based(monkeypatch: pytest.MonkeyPatch) -> None:
    from translab.lab.runner import code_version

    monkeypatch.delenv("TRANSLAB_CODE_VERSION", raising=False)
    a = code_version()
    assert a == code_version() and a.startswith("0.") and "+src." in a
    monkeypatch.setenv("TRANSLAB_CODE_VERSION", "pinned")
    assert code_version() == "pinned"
