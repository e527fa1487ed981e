"""`translab profiles`: list the network profiles (name, description, source, parameters per direction)."""

from __future__ import annotations

import argparse
from typing import Any

from translab.jsonio import dumps
from translab.link.profiles import DIRECTIONS, Profile, list_profiles, load_profile


def _as_dict(p: Profile) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "source": p.source,
        "path": str(p.path) if p.path else None,
        "up": p.params["up"],
        "down": p.params["down"],
        "summary": {d: p.describe(d) for d in DIRECTIONS},
    }


def run(args: argparse.Namespace) -> int:
    """Print the profiles (all, or the named ones / files) as text or JSON."""
    profiles = [load_profile(n) for n in args.names] if args.names else list_profiles()
    if args.json:
        print(dumps([_as_dict(p) for p in profiles], indent=2))
        return 0
    for i, p in enumerate(profiles):
        if i:
            print()
        print(f"{p.name}: {p.description}")
        print(f"  source: {p.source}")
        for d in DIRECTIONS:
            print(f"  {d:>4}: {p.describe(d)}")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``profiles`` subcommand to ``sub``."""
    p = sub.add_parser(
        "profiles",
        help="list network profiles and their parameters",
        description="List the shipped network profiles (data/profiles/*.toml), or the named profiles "
        "or TOML files, with description, source and per-direction parameters.",
    )
    p.add_argument("names", nargs="*", metavar="PROFILE", help="profile names or TOML paths (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)
