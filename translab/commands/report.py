"""`translab report DIR -o report.html`: the self-contained comparison report of a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``report`` subcommand."""
    p = sub.add_parser(
        "report", help="write the comparison report (one self-contained HTML file) of a run",
        description="Read DIR/results.parquet and DIR/manifest.json (from `translab run`) and write one "
        "HTML file with embedded figures: the question and grid, headline table, latency / quality / "
        "bandwidth figures, the claims table with verdicts, and provenance. Opens offline.",
    )
    p.add_argument("dir", help="a results directory written by `translab run`")
    p.add_argument("-o", "--output", default=None, help="HTML file (default: DIR/report.html)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Write the report and print its path."""
    import sys

    from translab.commands import checks
    from translab.lab.store import ResultStore, load_results, sync_results
    from translab.report.html import incomplete_text, missing_cells, write_report

    checks.in_dir("dir", args.dir)
    out = Path(args.output) if args.output else Path(args.dir) / "report.html"
    checks.out_file("--output", out)
    sync_results(args.dir)  # results.parquet caught up with the finished cells (a killed run lags)
    manifest = ResultStore(args.dir).read_manifest()
    missing = missing_cells(manifest, load_results(args.dir)) if (Path(args.dir) / "results.parquet").exists() else 0
    path = write_report(Path(args.dir), out)
    if missing:
        print(f"translab report: warning: run incomplete: {incomplete_text(missing, manifest)}", file=sys.stderr)
    print(path)
    return 0
