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
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROW_FILE = "row.json"
RESULTS_FILE = "results.parquet"
MANIFEST_FILE = "manifest.json"
CELLS_DIR = "cells"

_counter = itertools.count()


def _jsonable(v: Any) -> Any:
    """Convert NumPy scalars / arrays and non-finite floats to plain JSON values."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}.tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with ``_`` joins (``{"setup": {"ice_s": 1}}`` -> ``setup_ice_s``); lists
    become JSON strings so every column is a scalar."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "_"))
        elif isinstance(v, (list, tuple, np.ndarray)):
            out[key] = json.dumps(_jsonable(v))
        else:
            out[key] = _jsonable(v)
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
        (tmp / ROW_FILE).write_text(json.dumps(_jsonable(row), indent=1) + "\n", encoding="utf-8")
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
    """Read ``DIR/results.parquet``."""
    return pd.read_parquet(Path(run_dir) / RESULTS_FILE)
