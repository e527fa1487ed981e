"""The namespace backend's commands: `translab netns cleanup` (remove what a crashed run left
behind), `translab netns check` (can the backend run here), and `translab nat-matrix` (the NAT
traversal outcome matrix). One call on this backend is `translab call --backend netns`."""

from __future__ import annotations

import argparse
import sys

from translab.jsonio import dumps


def _cleanup(args: argparse.Namespace) -> int:
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"translab netns: {reason}")
        return 1
    from translab.emulate.netns.cleanup import cleanup, leftovers

    found = (leftovers(args.prefix, include_live=args.all) if args.dry_run
             else cleanup(args.prefix, include_live=args.all))
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb}: {len(found['netns'])} namespaces, {len(found['devices'])} devices, "
          f"{len(found['pids'])} processes")
    if args.json:
        print(dumps(found))
    return 0


def _check(args: argparse.Namespace) -> int:
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    print(reason or "netns backend available")
    return 1 if reason else 0


def _nat_matrix(args: argparse.Namespace) -> int:
    from translab.commands import checks
    from translab.config import CallConfig
    from translab.emulate.netns.system import unavailable_reason
    from translab.errors import check_range

    base = CallConfig(profile=args.profile, duration_s=args.duration, metrics=(), seed=args.seed)
    base.resolved()  # a wrong value is refused here, once, not by each of the cells
    from translab.link.profiles import load_profile

    load_profile(args.profile)
    check_range("--connect-timeout", args.connect_timeout, 0.5, 300, "s")
    reason = unavailable_reason()
    if reason:
        print(f"translab nat-matrix: {reason}")
        return 1
    checks.out_dir("--out", args.out)
    from translab.lab.nat_matrix import default_cells, run_matrix

    cells = default_cells(quick=args.quick)
    if args.transport != "both":
        cells = [c for c in cells if c.transport == args.transport]

    def progress(i: int, n: int, row: dict) -> None:
        ok = "connected" if row["connected"] else "failed"
        flag = "" if row["matches_expectation"] else "  (differs from expectation)"
        print(f"[{i}/{n}] {row['key']}: {ok} {row.get('netns_pair') or ''}{flag}", flush=True)

    df = run_matrix(cells, args.out, base, progress, connect_timeout_s=args.connect_timeout)
    cols = ["transport", "caller_nat", "callee_nat", "firewall", "ice", "relay_only", "connected",
            "netns_pair", "setup_dtls_connected_ms", "netns_relay_bytes", "matches_expectation"]
    print(df[[c for c in cols if c in df]].to_string(index=False))
    errors = df[df["status"] == "error"] if "status" in df else df.iloc[:0]
    if len(df) and len(errors) == len(df):
        print(f"translab nat-matrix: every one of the {len(df)} cells failed with an error (first: "
              f"{errors['reason'].iloc[0]}); no matrix.csv or matrix.png written", file=sys.stderr)
        return 1
    print(f"table: {args.out}/matrix.csv  heatmap: {args.out}/matrix.png")
    return 1 if len(errors) else 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("netns", help="namespace backend: cleanup of crashed runs, check (calls: translab call --backend netns)")
    s = p.add_subparsers(dest="netns_command", metavar="ACTION")
    c = s.add_parser("cleanup", help="remove namespaces, devices and processes of crashed runs")
    c.add_argument("--prefix", default="tl-", help="name prefix to remove (default: all runs, tl-)")
    c.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    c.add_argument("--all", action="store_true",
                   help="also remove runs still in use (their forwarder is alive); default: leftovers only")
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

    m = sub.add_parser("nat-matrix", help="NAT x firewall x ICE outcome matrix on the netns backend",
                       description="Short live calls for caller NAT x callee NAT x firewall x ICE option, "
                       "both transports; writes matrix.jsonl (resumable), matrix.csv and matrix.png.")
    m.add_argument("--out", default="nat-matrix", help="output directory (default: nat-matrix)")
    m.add_argument("--quick", action="store_true", help="a 13-cell subset showing each pattern")
    m.add_argument("--transport", default="both", choices=("both", "webrtc", "websocket"))
    m.add_argument("--profile", default="clean-lan", help="link profile on the caller's access link")
    m.add_argument("--duration", type=float, default=1.0, help="seconds of audio per call")
    m.add_argument("--connect-timeout", type=float, default=5.0, help="seconds before a call counts as failed")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_nat_matrix)
