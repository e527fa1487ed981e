"""`translab profiles` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("profiles", help="(not yet implemented)")
    p.set_defaults(func=lambda args: 0)
