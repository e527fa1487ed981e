"""`translab bench`: run the benchmarks and print their figures as JSON (speed targets live here,
never in tests)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import translab.bench
from translab.jsonio import dumps


def available() -> list[str]:
    """Names of the benchmark modules in translab/bench/ (each has ``run() -> dict``)."""
    return sorted(m.name for m in pkgutil.iter_modules(translab.bench.__path__))


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``bench`` subcommand to ``sub``."""
    p = sub.add_parser("bench", help="run benchmarks and print JSON figures",
                       description="Run benchmarks (codec, link models, simulate, emulators ...) and "
                       "print one JSON object keyed by benchmark name.")
    p.add_argument("--only", default="", help="comma-separated benchmark names (default: all); "
                   "available: " + ", ".join(available()))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmarks and print one JSON object (figures keyed by benchmark)."""
    from translab.errors import ConfigError
    from translab.provenance import machine, versions

    names = available()
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or names
    for n in chosen:
        if n not in names:
            raise ConfigError("--only", n, ", ".join(names))
    out: dict[str, object] = {"versions": versions(), "machine": machine()}
    for n in chosen:
        t0 = time.perf_counter()
        print(f"bench: {n} ...", file=sys.stderr, flush=True)
        out[n] = importlib.import_module(f"translab.bench.{n}").run()
        print(f"bench: {n} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(dumps(out, indent=2))
    return 0
