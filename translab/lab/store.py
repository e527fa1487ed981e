"""The result store of one run directory.

Layout::

    DIR/manifest.json            experiment text + hash, seeds, start/end times, machine, versions
    DIR/results.parquet          one summary row per cell of the experiment (rebuilt from cells/)
    DIR/cells/<hash>/row.json    the cell's summary row (status "ok" or "failed"); written LAST
    DIR/cells/<hash>/...         the cell's artefacts: trace.parquet, output WAV, frames.parquet, ...

A cell is produced in ``DIR/cells/.tmp-<hash>-<pid>-<n>/`` and renamed to ``DIR/cells/<hash>/`` in one
``os.replace`` once complete, so an interrupted run never leaves a half-written cell that looks done;
leftover ``.tmp-*`` directories are removed by the next run. ``results.parquet`` and
``manifest.json`` are written to a temporary file and renamed as well.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from translab.jsonio import dumps, to_json_value, write_json

ROW_FILE = "row.json"
RESULTS_FILE = "results.parquet"
MANIFEST_FILE = "manifest.json"
CELLS_DIR = "cells"

_counter = itertools.count()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write strict JSON to ``path`` via a temporary file and ``os.replace``."""
    write_json(path, data, indent=2)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with ``_`` joins (``{"setup": {"ice_s": 1}}`` -> ``setup_ice_s``); lists
    become JSON strings so every column is a scalar."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "_"))
        elif isinstance(v, (list, tuple, np.ndarray)):
            out[key] = dumps(v)
        else:
            out[key] = to_json_value(v)
    return out


class ResultStore:
    """A run directory (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / CELLS_DIR

    def prepare(self) -> None:
        """Create the directories and remove temporary leftovers of interrupted runs."""
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.cells_dir.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)

    def cell_dir(self, cell_hash: str) -> Path:
        """Final directory of a cell."""
        return self.cells_dir / cell_hash

    def temp_dir(self, cell_hash: str) -> Path:
        """A fresh temporary directory for producing a cell."""
        d = self.cells_dir / f".tmp-{cell_hash}-{os.getpid()}-{next(_counter)}"
        d.mkdir(parents=True, exist_ok=False)
        return d

    def commit(self, tmp: Path, cell_hash: str, row: dict[str, Any]) -> Path:
        """Write ``row`` into ``tmp`` and move ``tmp`` into place as the cell's directory."""
        write_json(tmp / ROW_FILE, row, indent=1)
        final = self.cell_dir(cell_hash)
        if final.exists():  # an earlier failed attempt: replace it
            old = final.with_name(f".tmp-old-{cell_hash}-{os.getpid()}-{next(_counter)}")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
        return final

    def read_row(self, cell_hash: str) -> dict[str, Any] | None:
        """The stored row of a cell, or None when the cell has not finished."""
        p = self.cell_dir(cell_hash) / ROW_FILE
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def is_done(self, cell_hash: str) -> bool:
        """True when the cell finished successfully (failed cells are run again)."""
        row = self.read_row(cell_hash)
        return row is not None and row.get("status") == "ok"

    def write_results(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Write ``rows`` (summary rows, in order) as results.parquet atomically; returns the table."""
        df = rows_to_frame(rows)
        tmp = self.root / f".{RESULTS_FILE}.{os.getpid()}.tmp"
        df.to_parquet(tmp, index=False)
        os.replace(tmp, self.root / RESULTS_FILE)
        return df

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write manifest.json atomically."""
        write_json_atomic(self.root / MANIFEST_FILE, manifest)

    def read_manifest(self) -> dict[str, Any]:
        """The run's manifest ({} when absent)."""
        try:
            return json.loads((self.root / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}


LOCK_FILE = ".lock"


class RunLock:
    """An exclusive lock on a run directory (``DIR/.lock``) held while a run writes into it, so a second
    run on the same directory is refused instead of doing the work twice.

    A POSIX record lock (``fcntl.lockf``): the kernel drops it when the holding process ends, however it
    ends (SIGKILL included), so the lock of a dead run is simply taken over; forked pool workers do not
    inherit it. The file records the holder's pid and start time for the refusal message. POSIX locks
    belong to a process: two runs on one directory from two threads of the same process are not told
    apart (run them one after the other).
    """

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ConfigError naming the directory and the process holding it."""
        import datetime as _dt
        import fcntl

        from translab.errors import ConfigError

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConfigError("out_dir", str(self.path.parent),
                              f"a results directory no other run is writing (held by {holder}; wait for "
                              "that run to end, or choose another --out)") from None
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {now}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing drops the POSIX lock
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def rows_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Summary rows -> DataFrame with stable column types (mixed object columns become strings)."""
    df = pd.DataFrame(rows)
    for col in df.columns:
        if df[col].dtype == object:
            vals = df[col].dropna()
            kinds = {type(v) for v in vals}
            if kinds and kinds <= {int, float}:
                df[col] = pd.to_numeric(df[col])
            elif kinds and not kinds <= {str} and not kinds <= {bool}:
                df[col] = df[col].map(lambda v: None if v is None else str(v))
    return df


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """Read ``DIR/results.parquet``; ConfigError (one line) when it is not a readable parquet file."""
    from translab.errors import ConfigError

    path = Path(run_dir) / RESULTS_FILE
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow's ArrowInvalid, OSError: truncated, garbage, unreadable
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError("results", str(path), "a parquet file written by `translab run` (this one cannot "
                          f"be read: {first[:160]}); rerun `translab run` with the same --out to rebuild "
                          "it from the finished cells") from None


def sync_results(run_dir: str | Path) -> tuple[int, int]:
    """Bring ``DIR/results.parquet`` up to date with the finished cells of the run's grid (the hashes in
    the manifest): rewritten from ``cells/*/row.json`` when it is missing, unreadable or lists other
    cells (after a run was killed between two writes). Returns (finished cells, cells in the grid);
    (rows in results.parquet, 0) when the manifest names no grid."""
    store = ResultStore(run_dir)
    hashes = store.read_manifest().get("cell_hashes")
    path = store.root / RESULTS_FILE
    if not isinstance(hashes, list):
        return (len(load_results(run_dir)) if path.exists() else 0), 0
    rows = [r for h in hashes if (r := store.read_row(h)) is not None]
    try:
        cur = pd.read_parquet(path, columns=["cell_hash", "finished_at"])
        current = list(zip(cur["cell_hash"], cur["finished_at"]))
    except Exception:  # missing, truncated, garbage
        current = None
    if rows and current != [(r.get("cell_hash"), r.get("finished_at")) for r in rows]:
        store.write_results(rows)
    return len(rows), len(hashes)
