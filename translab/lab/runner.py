"""The resumable runner: run every cell of an experiment into a result store.

* Simulated cells run in parallel: a local process pool (``executor="local"``, 2 workers by default),
  a Dask cluster (``executor="dask"``, an existing scheduler address or a LocalCluster started here),
  or in this process (``executor="serial"``, handy in notebooks). Live cells always run afterwards, one
  at a time, in this process: they measure time, and concurrent CPU load would distort them.
* Each cell is identified by :func:`cell_hash` (its config + the code version). A rerun into the same
  directory skips cells whose stored row has status "ok" and runs the missing and failed ones.
* A cell is written the moment it finishes (atomic rename, see :mod:`translab.lab.store`); Ctrl-C
  cancels pending cells, lets running ones finish (a second Ctrl-C abandons them), writes
  results.parquet and the manifest, and re-raises KeyboardInterrupt.
* A cell that raises becomes a row with ``status="failed"`` and ``error``; the run goes on.
* SIGTERM ends a run as Ctrl-C does. Pool workers die with the main process whatever ends it (SIGKILL
  included: PR_SET_PDEATHSIG and a watchdog on multiprocessing's parent sentinel), so no worker
  outlives a run.
* The local pool's workers are spawned (fresh interpreters), never forked: a fork copies the parent's
  native state but not its threads, and libraries with thread pools (the Silero VAD's ggml runtime
  uses GNU OpenMP) hang in a forked child once the parent has used them. The cost is each worker
  importing translab: about 1.7 s of CPU per worker, once per run (the default experiment: 3-7 s more
  CPU than forked workers, of 60-240 s). As with any spawned process, a script that runs an
  experiment needs ``if __name__ == "__main__":``, and the cell function must be importable (a
  module-level function, not one defined in a notebook); both are checked with a clear error.
  Dask's LocalCluster spawns its worker processes too (distributed's default start method).
* One run at a time per directory: ``DIR/.lock`` (see :class:`translab.lab.store.RunLock`); a second
  run is refused with one line, the lock of a dead run is taken over. A run starts by rewriting
  results.parquet from the finished cells, so a run killed between two writes loses nothing.

Worker processes and Dask workers write the cell's artefacts themselves, so with a remote Dask cluster
the run directory must be on a file system the workers share.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as _dt
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

import translab
from translab.errors import ConfigError, TranslabError
from translab import provenance
from translab.lab.experiment import Expansion, Experiment, expand
from translab.lab.store import ResultStore, RunLock, flatten

CellFunction = Callable[[dict[str, Any], Path], dict[str, Any]]
EXECUTORS = ("local", "dask", "serial")

#: Row keys owned by the runner (a summary cannot overwrite them).
RUNNER_COLUMNS = ("cell_hash", "status", "error", "mode", "experiment", "run_wall_s", "finished_at",
                  "code_version")


def code_version() -> str:
    """The code version in every cell hash: translab's version + a hash of what determines a cell's
    result: the package's Python sources and the shipped profiles and clips (contents, not git state,
    so an unrelated edit elsewhere in the work tree, or a commit of the same code, keeps finished
    cells). The environment variable ``TRANSLAB_CODE_VERSION`` overrides it (to keep results across a
    change you know to be cosmetic, or in tests). The git commit is recorded in the manifest."""
    override = os.environ.get("TRANSLAB_CODE_VERSION")
    if override:
        return override
    return f"{translab.__version__}+src.{_source_hash()}"


def _source_hash() -> str:
    from translab.paths import CLIPS_DIR, PROFILES_DIR

    pkg = Path(translab.__file__).resolve().parent
    files = sorted(pkg.rglob("*.py")) + sorted(PROFILES_DIR.glob("*.toml")) + sorted(CLIPS_DIR.glob("*.wav"))
    h = hashlib.sha256()
    for f in files:
        if "__pycache__" in f.parts:
            continue
        h.update(str(f.relative_to(f.parents[1])).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def cell_hash(cell: dict[str, Any], code: str) -> str:
    """16 hex digits identifying a cell's config under a code version."""
    return provenance.config_hash({"cell": cell, "code": code})


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def make_row(cell: dict[str, Any], h: str, summary: dict[str, Any], status: str, error: str,
             wall_s: float, experiment: str, code: str) -> dict[str, Any]:
    """One result row: the cell's config, overlaid by the summary, plus the runner's columns."""
    row: dict[str, Any] = flatten({k: v for k, v in cell.items() if k != "metrics"})
    row["bitrate_bps"] = row.get("bitrate")
    row.update(flatten(summary))
    if summary.get("status") == "failed" and status == "ok":  # a live call that ended with a reason
        status, error = "failed", str(summary.get("reason") or "call failed")
    row.update({
        "cell_hash": h, "status": status, "error": error, "mode": cell.get("mode", "simulate"),
        "experiment": experiment, "run_wall_s": round(wall_s, 4), "finished_at": _now(),
        "code_version": code,
    })
    return row


def execute_cell(fn: CellFunction, cell: dict[str, Any], h: str, root: str, experiment: str,
                 code: str) -> dict[str, Any]:
    """Run one cell into a temporary directory, then move it into place. Never raises for a cell
    failure (returns a failed row, with the traceback in ``error.txt``); KeyboardInterrupt propagates
    and leaves only a temporary directory behind."""
    store = ResultStore(root)
    tmp = store.temp_dir(h)
    t0 = time.perf_counter()
    try:
        summary = fn(dict(cell), tmp)
        status, error = "ok", ""
    except Exception as err:  # a failing cell must not stop the run
        summary, status = {}, "failed"
        error = f"{type(err).__name__}: {err}"
        (tmp / "error.txt").write_text(traceback.format_exc())
    row = make_row(cell, h, summary, status, error, time.perf_counter() - t0, experiment, code)
    store.commit(tmp, h, row)
    return row


def _worker_init(runner_pid: int) -> None:
    """Pool worker set-up: Ctrl-C is the runner's business (it cancels pending cells and lets running
    ones finish); the worker dies with the runner (process ``runner_pid``), whatever ends it.

    Two mechanisms, both independent of who the worker's parent process is: the kernel sends SIGKILL
    when the process that started the worker dies (PR_SET_PDEATHSIG; the runner, under spawn), and a
    watchdog thread waits on multiprocessing's parent sentinel, a pipe whose other end only the
    runner holds: it reads end-of-file the moment the runner is gone (no polling, no pid reuse), and
    also covers a runner that died before the prctl took effect and systems without prctl."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the runner's run-time handler
    try:
        from translab.emulate.netns.system import set_pdeathsig

        set_pdeathsig(signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux
        pass
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid != runner_pid or parent.sentinel is None:
        os._exit(1)  # not started by the runner's pool: nothing to tie this worker's life to
    sentinel = parent.sentinel
    if mp_wait([sentinel], timeout=0):  # the runner died while this worker was starting
        os._exit(1)

    def watchdog() -> None:
        mp_wait([sentinel])
        os._exit(1)

    threading.Thread(target=watchdog, name="translab-runner-watchdog", daemon=True).start()


@dataclass
class RunOutcome:
    """What a run did: the full results table (all finished cells of the experiment) and counts."""

    results: pd.DataFrame
    out_dir: Path
    n_cells: int
    n_run: int
    n_skipped: int
    n_failed: int
    elapsed_s: float
    interrupted: bool = False
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every cell of the experiment has status ok."""
        return self.n_failed == 0 and not self.interrupted


RowSink = Callable[[dict[str, Any]], None]


def _run_local(fn: CellFunction, jobs: list[tuple[dict[str, Any], str]], root: str, name: str,
               code: str, workers: int, sink: RowSink) -> None:
    """Run ``jobs`` on a local process pool. A worker that dies (segfault, ``os._exit``, OOM kill)
    breaks the pool: the cells that were in progress (they left a temporary directory) are then run
    again one at a time, each in its own worker; one that kills its worker alone is recorded as a
    failed row, and the pool restarts for what is left."""
    store = ResultStore(root)
    finished: set[str] = set()

    def track(row: dict[str, Any]) -> None:
        finished.add(row["cell_hash"])
        sink(row)

    remaining = list(jobs)
    while remaining:
        n_before = len(finished)
        if not _pool_pass(fn, remaining, root, name, code, workers, track):
            return
        in_progress = {p.name.split("-")[1] for p in store.cells_dir.glob(".tmp-*")}
        if not in_progress and len(finished) == n_before:  # retrying would fail the same way, forever
            raise TranslabError(
                "executor: the local pool's worker processes ended before running any cell (see the "
                "error above); a script that runs an experiment must do it under "
                "`if __name__ == \"__main__\":`, as worker processes import the main module")
        store.prepare()  # remove the dead workers' temporary directories
        for cell, h in remaining:
            if h in in_progress and h not in finished:
                if _pool_pass(fn, [(cell, h)], root, name, code, 1, track):  # alone, it still crashes
                    store.prepare()
                    row = make_row(cell, h, {}, "failed", "WorkerCrash: the worker process died running "
                                   "this cell (segfault, os._exit or out of memory)", 0.0, name, code)
                    store.commit(store.temp_dir(h), h, row)
                    track(row)
        remaining = [(c, h) for c, h in remaining if h not in finished]


def _check_importable(fn: CellFunction) -> None:
    """The local pool's workers are fresh processes (spawn): they find the cell function by module and
    name, so one defined in a notebook or a REPL, or inside another function, cannot run there."""
    module, qualname = getattr(fn, "__module__", ""), getattr(fn, "__qualname__", "")  # a partial has neither
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if "<" in qualname or (module == "__main__" and not main_file):
        raise ConfigError("run_cell", f"{module}.{qualname}",
                          "a module-level function importable from a module or script with executor "
                          "'local' (its worker processes start fresh); executor 'serial' runs any function")


def _pool_pass(fn: CellFunction, jobs: list[tuple[dict[str, Any], str]], root: str, name: str,
               code: str, workers: int, sink: RowSink) -> bool:
    """One pool over ``jobs``; False when every job finished, True when a worker died (retry)."""
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_worker_init, initargs=(os.getpid(),))
    futs: list[cf.Future[dict[str, Any]]] = []
    try:
        futs = [pool.submit(execute_cell, fn, cell, h, root, name, code) for cell, h in jobs]
        for fut in cf.as_completed(futs):
            try:
                row = fut.result()
            except cf.process.BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                return True
            sink(row)
    except BaseException:
        for f in futs:
            f.cancel()  # pending cells; running ones finish and are committed
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except (KeyboardInterrupt, SystemExit):  # a second Ctrl-C or SIGTERM: abandon the running cells
            for p in list((getattr(pool, "_processes", None) or {}).values()):
                p.terminate()
        raise
    pool.shutdown(wait=True)
    return False


def _run_dask(fn: CellFunction, jobs: list[tuple[dict[str, Any], str]], root: str, name: str,
              code: str, workers: int, scheduler: str | None, dask_processes: bool,
              sink: RowSink) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("executor", "dask", "local, serial (install the 'dask' extra for dask)") from None
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="10s")
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=dask_processes,
                               dashboard_address=None)
        client = Client(cluster)
    futs: list[Any] = []
    try:
        run_id = uuid.uuid4().hex[:8]  # unique keys: a long-lived cluster must not reuse an old result
        futs = [client.submit(execute_cell, fn, cell, h, root, name, code, key=f"cell-{h}-{run_id}")
                for cell, h in jobs]
        for fut in as_completed(futs):
            sink(fut.result())
    except BaseException:
        client.cancel(futs)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_serial(fn: CellFunction, jobs: list[tuple[dict[str, Any], str]], root: str, name: str,
                code: str, sink: RowSink) -> None:
    for cell, h in jobs:
        sink(execute_cell(fn, cell, h, root, name, code))


def run_experiment(
    exp: Experiment,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 2,
    scheduler: str | None = None,
    run_cell: CellFunction | None = None,
    progress: bool = True,
    code: str | None = None,
    dask_processes: bool = True,
) -> RunOutcome:
    """Run (or resume) ``exp`` into ``out_dir``; see the module docstring.

    ``run_cell`` defaults to :func:`translab.lab.cells.run_cell`; ``code`` (the code version in cell
    hashes) to :func:`code_version`. Raises KeyboardInterrupt after saving when interrupted.
    """
    if executor not in EXECUTORS:
        raise ConfigError("executor", executor, ", ".join(EXECUTORS))
    if workers < 1:
        raise ConfigError("workers", workers, "1 or more")
    if run_cell is None:
        from translab.lab.cells import run_cell as default_cell

        run_cell = default_cell
    if executor == "local" and workers > 1:
        _check_importable(run_cell)
    code = code or code_version()
    t0 = time.perf_counter()
    started = _now()
    expansion = expand(exp)
    hashes = [cell_hash(c, code) for c in expansion.cells]
    store = ResultStore(out_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    lock = RunLock(store.root)
    lock.acquire()  # a second run on the same directory is refused here
    try:
        with _sigterm_as_exit():
            return _run_locked(exp, store, expansion, hashes, executor, workers, scheduler, run_cell,
                               progress, code, dask_processes, t0, started)
    finally:
        lock.release()


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """While a run is going on in the main thread, SIGTERM ends it like Ctrl-C does (SystemExit
    unwinds: pending cells cancelled, results.parquet and the manifest written); workers then end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    prev = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, prev)


def _run_locked(exp: Experiment, store: ResultStore, expansion: Expansion, hashes: list[str], executor: str,
                workers: int, scheduler: str | None, run_cell: CellFunction, progress: bool, code: str,
                dask_processes: bool, t0: float, started: str) -> RunOutcome:
    cells = expansion.cells
    store.prepare()
    root = str(store.root)

    rows: dict[str, dict[str, Any]] = {}
    todo_sim: list[tuple[dict[str, Any], str]] = []
    todo_live: list[tuple[dict[str, Any], str]] = []
    finished: dict[str, dict[str, Any]] = {}
    for c, h in zip(cells, hashes):
        old = store.read_row(h)
        if old is not None:
            finished[h] = old
        if old is not None and old.get("status") == "ok":
            rows[h] = old
        else:
            (todo_live if c.get("mode") == "live" else todo_sim).append((c, h))
    n_skipped = len(rows)
    if finished:  # a killed run may have left results.parquet behind its finished cells: catch up now
        _write_results(store, hashes, finished)

    previous = store.read_manifest()
    manifest: dict[str, Any] = {
        "experiment": {"name": exp.name, "description": exp.description, "question": exp.question,
                       "source": exp.source, "content_hash": exp.content_hash, "text": exp.text,
                       "metrics": list(exp.metrics)},
        "grid": {"cells": len(cells), "product_size": expansion.product_size,
                 "dropped_or_merged": expansion.dropped},
        "seeds": sorted({c.get("seed") for c in cells}, key=str),
        "started_at": started,
        "ended_at": None,
        "executor": executor if todo_sim else "none",
        "workers": workers,
        "scheduler": scheduler,
        "code_version": code,
        "versions": provenance.versions(),
        "machine": provenance.machine(),
        "cell_hashes": hashes,
        "history": previous.get("history", []),
    }
    store.write_manifest(manifest)

    from tqdm import tqdm

    bar = tqdm(total=len(todo_sim) + len(todo_live), desc=exp.name, unit="cell", disable=not progress,
               dynamic_ncols=True)
    n_run = 0
    interrupted = False
    last_write = time.monotonic()

    def take(row: dict[str, Any]) -> None:
        nonlocal n_run, last_write
        rows[row["cell_hash"]] = row
        n_run += 1
        bar.update(1)
        nfail = sum(1 for r in rows.values() if r.get("status") != "ok")
        if nfail:
            bar.set_postfix(failed=nfail)
        if time.monotonic() - last_write > 5.0:
            _write_results(store, hashes, rows)
            last_write = time.monotonic()

    try:
        if todo_sim:
            if executor == "local" and workers > 1 and len(todo_sim) > 1:
                _run_local(run_cell, todo_sim, root, exp.name, code, workers, take)
            elif executor == "dask":
                _run_dask(run_cell, todo_sim, root, exp.name, code, workers, scheduler, dask_processes,
                          take)
            else:
                _run_serial(run_cell, todo_sim, root, exp.name, code, take)
        if todo_live:
            _run_serial(run_cell, todo_live, root, exp.name, code, take)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (see _sigterm_as_exit)
        interrupted = True
        raise
    finally:
        bar.close()
        for h in hashes:  # cells committed while shutting down, and old failed rows not retried
            if h not in rows and (r := store.read_row(h)) is not None:
                rows[h] = r
        df = _write_results(store, hashes, rows)
        failed = [r for r in rows.values() if r.get("status") != "ok"]
        manifest["ended_at"] = _now()
        manifest["interrupted"] = interrupted
        manifest["counts"] = {"cells": len(cells), "finished": len(rows), "run": n_run,
                              "skipped": n_skipped, "failed": len(failed)}
        manifest["history"] = manifest["history"] + [
            {"started_at": started, "ended_at": manifest["ended_at"], "run": n_run, "skipped": n_skipped,
             "failed": len(failed), "interrupted": interrupted, "code_version": code}]
        store.write_manifest(manifest)
    return RunOutcome(results=df, out_dir=store.root, n_cells=len(cells), n_run=n_run,
                      n_skipped=n_skipped, n_failed=len(failed), elapsed_s=time.perf_counter() - t0,
                      interrupted=interrupted, failed=failed)


def _write_results(store: ResultStore, hashes: list[str], rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    return store.write_results([rows[h] for h in hashes if h in rows])


def run_grid(
    grid: dict[str, Any] | list[dict[str, Any]],
    out_dir: str | Path | None = None,
    *,
    name: str = "notebook",
    metrics: tuple[str, ...] | list[str] = ("plcmos",),
    defaults: dict[str, Any] | None = None,
    executor: str = "serial",
    workers: int = 2,
    progress: bool = False,
) -> pd.DataFrame:
    """Run a grid given as Python data (one block or a list of blocks, as in an experiment file's
    ``[[grid]]``) and return its results table; the small-experiment entry point of the notebooks.

    ``out_dir`` defaults to a new temporary directory (its path is in ``df.attrs["run_dir"]``, for
    figures that read per-cell frames and for listening to ``cells/<hash>/output.wav``).
    """
    import tempfile

    from translab.lab.experiment import from_dict

    blocks = grid if isinstance(grid, list) else [grid]
    exp = from_dict({"name": name, "description": f"{name} (run_grid)", "metrics": list(metrics),
                     "defaults": defaults or {}, "grid": blocks})
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix=f"translab-{name}-"))
    res = run_experiment(exp, out, executor=executor, workers=workers, progress=progress)
    df = res.results
    df.attrs["run_dir"] = str(out)
    return df
