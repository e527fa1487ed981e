"""A cell function for testing the runner's mechanics (resume, failure rows, Ctrl-C, worker crash).

It measures nothing and pretends to measure nothing: its row is the cell's own keys plus
``value = 2 * seed``, so a test can check that the right cell produced the right row, and nothing in it
looks like a result of a call. Results of calls come only from the engine
(:func:`translab.lab.cells.run_cell`); tests that need figures run the engine.

Behaviour keyed on the seed, so a test's grid says which cells misbehave:

* seed 666: raises ``RuntimeError`` (a failing cell);
* seed 667: the process dies with ``os._exit(3)`` (a crashed worker; never use it with the serial
  executor, it would end the test process).

``TRANSLAB_TEST_CELL_SLEEP_S`` (environment, seconds, default 0) makes every cell sleep first, so a test
can interrupt a run while cells are in flight.

Importable as ``runner_cells`` inside pytest (pytest puts tests/ on sys.path) and as
``tests.runner_cells`` from the repository root (``python -m translab.cli ...`` run with the root as its
working directory has the root on sys.path).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

SLEEP_ENV = "TRANSLAB_TEST_CELL_SLEEP_S"
FAIL_SEED = 666
CRASH_SEED = 667


def runner_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The cell's keys (metrics aside) plus ``value = 2 * seed``; fails on seed 666, kills its process
    on seed 667, sleeps ``TRANSLAB_TEST_CELL_SLEEP_S`` seconds first. Writes nothing into ``out_dir``."""
    sleep_s = float(os.environ.get(SLEEP_ENV, "0") or 0)
    if sleep_s:
        time.sleep(sleep_s)
    seed = int(cell.get("seed") or 0)
    if seed == FAIL_SEED:
        raise RuntimeError(f"runner test cell fails on purpose for seed {FAIL_SEED}")
    if seed == CRASH_SEED:
        os._exit(3)
    return {**{k: v for k, v in cell.items() if k != "metrics"}, "value": 2 * seed}


def timed_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Like :func:`runner_cell` but sleeps 0.3 s and reports when it ran (``start_s``/``end_s``, wall
    clock) and in which process, so a test can see which cells overlapped."""
    start = time.time()
    time.sleep(0.3)
    return {**runner_cell(cell, out_dir), "start_s": start, "end_s": time.time(), "pid": os.getpid()}


def watchdog_only_worker(runner_pid: int) -> None:
    """A pool worker's set-up (:func:`translab.lab.runner._worker_init`) with the kernel's parent-death
    signal then switched off, so only the runner watchdog can end it; says ``ready`` and waits."""
    import sys

    from translab.emulate.netns.system import set_pdeathsig
    from translab.lab.runner import _worker_init

    _worker_init(runner_pid)
    set_pdeathsig(0)
    print("ready", flush=True)
    sys.stdout.close()
    time.sleep(600)
