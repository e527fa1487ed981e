"""`translab netns`: the namespace backend's housekeeping (`translab netns cleanup` removes what a
crashed run left behind; `translab netns check` says whether the backend can run here)."""

from __future__ import annotations

import argparse
import json


def _cleanup(args: argparse.Namespace) -> int:
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"translab netns: {reason}")
        return 1
    from translab.emulate.netns.cleanup import cleanup, leftovers

    found = leftovers(args.prefix) if args.dry_run else cleanup(args.prefix)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb}: {len(found['netns'])} namespaces, {len(found['devices'])} devices, "
          f"{len(found['pids'])} processes")
    if args.json:
        print(json.dumps(found))
    return 0


def _check(args: argparse.Namespace) -> int:
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    print(reason or "netns backend available")
    return 1 if reason else 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("netns", help="namespace backend housekeeping (cleanup, check)")
    s = p.add_subparsers(dest="netns_command", metavar="ACTION")
    c = s.add_parser("cleanup", help="remove namespaces, devices and processes of crashed runs")
    c.add_argument("--prefix", default="tl-", help="name prefix to remove (default: all runs, tl-)")
    c.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    c.add_argument("--json", action="store_true", help="also print the lists as JSON")
    s.add_parser("check", help="say whether the netns backend can run here")

    def dispatch(args: argparse.Namespace) -> int:
        if args.netns_command == "cleanup":
            return _cleanup(args)
        if args.netns_command == "check":
            return _check(args)
        p.print_help()
        return 2

    p.set_defaults(func=dispatch)
