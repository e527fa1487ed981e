"""`translab run FILE --out DIR`: run (or resume) an experiment file into a result directory."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from translab.errors import ConfigError

if TYPE_CHECKING:
    from translab.lab.experiment import Experiment


def _cell_function(spec: str | None):  # type: ignore[no-untyped-def]
    """The cell function named by ``--cell-function MODULE:FUNC`` (None: the default engine)."""
    if not spec:
        return None
    mod, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(mod), name) if mod and name else None
    except (ImportError, AttributeError, ValueError):
        fn = None
    if not callable(fn):
        raise ConfigError("--cell-function", spec,
                          "MODULE:FUNC naming a function (cell, out_dir) -> summary dict, e.g. "
                          "translab.lab.cells:simulate_cell or translab.lab.cells:netns_cell")
    return fn


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser(
        "run", help="run an experiment file (resumable) into a results directory",
        description="Expand the experiment's grid and run every cell: simulated cells in parallel, live "
        "cells one at a time. Writes DIR/results.parquet, DIR/manifest.json and DIR/cells/<hash>/. "
        "A rerun into the same DIR skips finished cells. Exit code 1 when any cell failed.",
    )
    p.add_argument("file", help="experiment TOML file, or a name in data/experiments (e.g. default)")
    p.add_argument("--out", "-o", required=True, help="results directory (created; reused to resume)")
    p.add_argument("--executor", choices=("local", "dask", "serial"), default="local",
                   help="local process pool (default), a Dask cluster, or in this process")
    p.add_argument("--workers", type=int, default=2, help="parallel workers for simulated cells (default 2)")
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (with --executor dask; default: start a LocalCluster)")
    p.add_argument("--cell-function", default=None, metavar="MODULE:FUNC",
                   help="advanced: run cells with another function (cell, out_dir) -> summary dict, e.g. "
                   "translab.lab.cells:netns_cell (default: simulate or live by the cell's mode)")
    p.add_argument("--report", default=None, metavar="HTML",
                   help="also write the comparison report to this HTML file when the run ends")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="print the expanded grid (cells, values, what the validity rules dropped) and exit")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the experiment; print a one-line summary; 0 if every cell is ok, 1 otherwise."""
    from translab.lab.experiment import load_experiment
    from translab.lab.runner import run_experiment

    if args.scheduler and args.executor != "dask":
        raise ConfigError("--scheduler", args.scheduler, "only with --executor dask")
    from translab.commands import checks

    if args.workers < 1:
        raise ConfigError("--workers", args.workers, "1 or more")
    exp = load_experiment(args.file, check_size=not args.dry_run)
    if args.dry_run:
        return _dry_run(exp)
    checks.out_dir("--out", args.out)
    if args.report:
        checks.out_file("--report", args.report)
    out = run_experiment(exp, Path(args.out), executor=args.executor, workers=args.workers,
                         scheduler=args.scheduler, run_cell=_cell_function(args.cell_function),
                         progress=not args.no_progress)
    print(f"{exp.name}: {out.n_cells} cells, {out.n_run} run, {out.n_skipped} already done, "
          f"{out.n_failed} failed, {out.elapsed_s:.1f} s -> {out.out_dir / 'results.parquet'}")
    for row in out.failed[:10]:
        print(f"  failed {row.get('cell_hash')}: {row.get('error')}", file=sys.stderr)
    if args.report:
        from translab.report.html import write_report

        path = write_report(out.out_dir, Path(args.report))
        print(f"report: {path}")
    return 0 if out.n_failed == 0 else 1


def _dry_run(exp: "Experiment") -> int:
    from translab.lab.experiment import (
        MAX_GRID_COMBINATIONS,
        block_sizes,
        check_grid_size,
        describe_rules,
        expand,
        grid_summary,
    )

    sizes = block_sizes(exp)
    if sum(sizes) > MAX_GRID_COMBINATIONS:  # counted from the axes; no cell is materialised
        print(f"{exp.name}: {sum(sizes):,} combinations in {len(sizes)} block(s) "
              f"({', '.join(f'{n:,}' for n in sizes)}); over the limit of {MAX_GRID_COMBINATIONS:,}, "
              "so the cells were not expanded")
        for i, block in enumerate(exp.blocks):
            print(f"  grid[{i}]: " + " x ".join(f"{k} {len(v)}" for k, v in block.items()))
        check_grid_size(exp)  # raises: the one-line error, exit 2
    e = expand(exp)
    modes = {m: sum(1 for c in e.cells if c["mode"] == m) for m in ("simulate", "live")}
    print(f"{exp.name}: {len(e.cells)} cells ({modes['simulate']} simulated, {modes['live']} live) from "
          f"{e.product_size} combinations")
    for k, vals in grid_summary(exp).items():
        print(f"  {k}: {', '.join(map(str, vals))}")
    docs = dict(describe_rules())
    docs["exclude"] = "matched an [[exclude]] table"
    for k, n in e.dropped.items():
        if k == "duplicate":
            print(f"  {n} duplicate combinations merged (same cell after the validity rules)")
        else:
            print(f"  {n} dropped by {k}: {docs.get(k, '')}")
    return 0
