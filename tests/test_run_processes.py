"""Runs end cleanly (issue 15): no pool worker outlives the main process (SIGKILL or SIGTERM), one run
at a time per results directory (a dead run's lock is taken over), results.parquet catches up with the
finished cells of a killed run, and `translab report` says how many cells of the grid are missing.

Cells are :func:`runner_cells.runner_cell` (no figures; ``value = 2 * seed``), slowed down with
``TRANSLAB_TEST_CELL_SLEEP_S`` so the run can be killed while cells are in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from translab.errors import ConfigError
from translab.lab import experiment as ex
from translab.lab.runner import run_experiment
from translab.lab.store import RESULTS_FILE, ResultStore, load_results, sync_results

from runner_cells import SLEEP_ENV, runner_cell

ROOT = Path(__file__).resolve().parent.parent
CLI_CELL = "tests.runner_cells:runner_cell"


def _write_exp(tmp_path: Path, seeds: int) -> Path:
    f = tmp_path / "exp.toml"
    f.write_text('name = "procs"\ndescription = "process test"\n[[grid]]\ntransport = "webrtc"\n'
                 f"seed = {list(range(1, seeds + 1))}\n")
    return f


def _start_run(exp: Path, out: Path, sleep_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "translab.cli", "run", str(exp), "--out", str(out), "--no-progress",
         "--workers", "2", "--cell-function", CLI_CELL], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "TRANSLAB_CODE_VERSION": "test", SLEEP_ENV: str(sleep_s)})


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(pred, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def _wait_for_workers(p: subprocess.Popen[str], out: Path) -> list[int]:
    """Wait until cells are in flight (temporary cell directories exist); the pool workers' pids."""
    assert _wait_for(lambda: any((out / "cells").glob(".tmp-*")), 60), "no cell started"
    workers = _children(p.pid)
    assert len(workers) >= 2, f"expected 2 pool workers, found {workers}"
    return workers


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_process_of_the_run_survives_the_main_process(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "run"
    p = _start_run(_write_exp(tmp_path, 40), out, sleep_s=0.4)
    workers = _wait_for_workers(p, out)
    time.sleep(1.0)  # some cells finished
    p.send_signal(sig)
    # the workers held the parent's stdout/stderr: before the fix, reading them never saw end-of-file
    _, err = p.communicate(timeout=30)
    assert _wait_for(lambda: not any(_alive(w) for w in workers), 10), \
        f"workers still running after {signal.Signals(sig).name} of the main process: " \
        f"{[w for w in workers if _alive(w)]}"
    if sig == signal.SIGTERM:  # ends as Ctrl-C does: results written, no traceback
        assert p.returncode == 128 + signal.SIGTERM and "Traceback" not in err
        rows = [r for r in (out / "cells").glob("*/row.json")]
        assert len(load_results(out)) == len(rows) > 0


def test_results_catch_up_with_finished_cells_after_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "run"
    exp_file = _write_exp(tmp_path, 40)
    p = _start_run(exp_file, out, sleep_s=0.3)
    _wait_for_workers(p, out)
    time.sleep(1.5)
    p.kill()
    p.communicate(timeout=30)
    finished = {d.name for d in (out / "cells").iterdir() if (d / "row.json").exists()}
    assert finished
    # simulate the lag the issue saw (16 rows while 29 cells had finished): an older results table
    stale = load_results(out).iloc[:1] if (out / RESULTS_FILE).exists() else None
    if stale is not None:
        stale.to_parquet(out / RESULTS_FILE, index=False)
    r = subprocess.run([sys.executable, "-m", "translab.cli", "report", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert set(load_results(out)["cell_hash"]) == finished  # brought up to date from cells/
    missing = 40 - len(finished)
    assert f"run incomplete: {missing} of the grid's 40 cells have not finished" in r.stderr
    html = (out / "report.html").read_text()
    assert f"{missing} of the grid&#x27;s 40 cells have not finished" in html or \
        f"{missing} of the grid's 40 cells have not finished" in html
    # ... and on the next start: the table is rewritten from cells/ before any cell runs
    (out / RESULTS_FILE).write_bytes(b"PAR1\x00\x00")  # truncated
    exp = ex.load_experiment(exp_file)
    seen: list[int] = []

    def cell(c: dict, d: Path) -> dict:  # type: ignore[type-arg]
        if not seen:
            seen.append(len(load_results(out)))
        return runner_cell(c, d)

    run_experiment(exp, out, run_cell=cell, executor="serial", progress=False, code="test")
    assert seen == [len(finished)]
    assert len(load_results(out)) == 40


def test_second_run_on_same_out_is_refused_and_dead_runs_lock_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    exp_file = _write_exp(tmp_path, 40)
    p = _start_run(exp_file, out, sleep_s=1.5)  # 30 s of cells: still running while the others try
    _wait_for_workers(p, out)
    exp = ex.load_experiment(exp_file)
    with pytest.raises(ConfigError, match=rf"out_dir: .*held by pid {p.pid} since .*choose another --out"):
        run_experiment(exp, out, run_cell=runner_cell, executor="serial", progress=False, code="test")
    second = subprocess.run([sys.executable, "-m", "translab.cli", "run", str(exp_file), "--out", str(out),
                             "--no-progress", "--cell-function", CLI_CELL], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "TRANSLAB_CODE_VERSION": "test"})
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert f"held by pid {p.pid}" in second.stderr and "Traceback" not in second.stderr
    assert p.poll() is None, "the first run ended before the test could kill it"
    p.kill()
    p.communicate(timeout=30)
    assert (out / ".lock").exists()  # left behind by the killed run: a stale lock, taken over
    res = run_experiment(exp, out, run_cell=runner_cell, executor="serial", progress=False, code="test")
    assert res.n_failed == 0 and len(res.results) == 40


#: a process that runs the Silero VAD (its native runtime, ggml with GNU OpenMP, starts a thread pool),
#: then two conversation cells (which run the VAD themselves) on the local pool of two workers
VAD_THEN_POOL = """
import sys
from pathlib import Path

import numpy as np

from translab.lab import experiment as ex
from translab.lab.runner import run_experiment
from translab.media.vad import speech_probabilities

if __name__ == "__main__":
    probs = speech_probabilities(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    assert len(probs) == 32
    exp = ex.from_dict({"name": "vad-then-pool", "description": "runner test", "grid": [
        {"topology": ["direct-ws", "webrtc-gateway"], "profile": "clean-lan", "turns": 2, "bargein_every": 2,
         "seed": 4}]})
    res = run_experiment(exp, Path(sys.argv[1]), executor="local", workers=2, progress=False, code="test")
    df = res.results
    print(res.n_run, res.n_failed, ",".join(sorted(df["topology"])), ",".join(df["turns_answered"].astype(str)))
"""


def test_local_pool_runs_after_the_vad_ran_in_the_main_process(tmp_path: Path) -> None:
    """Forked from a process whose VAD had run, a worker hung in its first VAD call (GNU OpenMP's
    thread pool does not survive fork): the run never ended. The pool's workers now start fresh."""
    script = tmp_path / "vad_then_pool.py"
    script.write_text(VAD_THEN_POOL)
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                       text=True, timeout=240)  # a hang fails the test here instead of hanging it
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "0", "direct-ws,webrtc-gateway", "2,2"], r.stdout
    df = load_results(tmp_path / "run")
    assert (df["status"] == "ok").all() and (df["vad_turns"] == 2).all()
    assert not list((tmp_path / "run" / "cells").glob(".tmp-*"))


WATCHDOG_RUNNER = """
import multiprocessing, os, sys, time

sys.path.insert(0, sys.argv[1])
from runner_cells import watchdog_only_worker

if __name__ == "__main__":
    w = multiprocessing.get_context("spawn").Process(target=watchdog_only_worker, args=(os.getpid(),))
    w.start()
    print(w.pid, flush=True)
    time.sleep(600)
"""


def test_worker_watchdog_alone_ends_the_worker_when_the_runner_is_killed(tmp_path: Path) -> None:
    """Without PR_SET_PDEATHSIG (switched off in the worker), the watchdog on the runner's parent
    sentinel still ends a spawned worker once the runner is SIGKILLed."""
    script = tmp_path / "runner.py"
    script.write_text(WATCHDOG_RUNNER)
    p = subprocess.Popen([sys.executable, str(script), str(ROOT / "tests")], stdout=subprocess.PIPE, text=True)
    worker = 0
    try:
        assert p.stdout is not None
        worker = int(p.stdout.readline())
        assert p.stdout.readline().strip() == "ready"  # set up, parent-death signal off
        time.sleep(1.0)
        assert _alive(worker)  # the watchdog does not end a worker whose runner lives
        p.kill()
        p.wait(timeout=30)
        assert _wait_for(lambda: not _alive(worker), 10), f"worker {worker} outlived its runner"
    finally:
        p.kill()
        p.wait(timeout=30)
        if worker and _alive(worker):  # the test failed: leave no sleeping worker behind
            os.kill(worker, signal.SIGKILL)


def test_sync_results_without_manifest_reports_unreadable_table(tmp_path: Path) -> None:
    (tmp_path / RESULTS_FILE).write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"results: .*cannot be read"):
        sync_results(tmp_path)
    assert ResultStore(tmp_path).read_manifest() == {}
    pd.DataFrame({"cell_hash": ["a"], "finished_at": ["t"]}).to_parquet(tmp_path / RESULTS_FILE)
    assert sync_results(tmp_path) == (1, 0)
