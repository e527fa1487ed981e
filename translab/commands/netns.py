"""The namespace backend's commands: `translab netns call` (one live call behind NATs and a
firewall), `translab netns cleanup` (remove what a crashed run left behind), `translab netns check`
(can the backend run here), and `translab nat-matrix` (the NAT traversal outcome matrix)."""

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

    found = (leftovers(args.prefix, include_live=args.all) if args.dry_run
             else cleanup(args.prefix, include_live=args.all))
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


def _call(args: argparse.Namespace) -> int:
    import sys

    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"translab netns call: {reason}")
        return 1
    from translab.commands.simulate import config_from_args, format_summary
    from translab.emulate.netns.call import netns_call, options_from_args
    from translab.errors import check_range

    extra = {}
    if args.duration is not None:
        check_range("--duration", args.duration, 0.1, 3600, "s")
        extra["duration_s"] = args.duration
    cfg = config_from_args(args, **extra)
    opts = options_from_args(args, connect_timeout_s=args.connect_timeout)

    def progress(frac: float) -> None:
        print(f"\rcall: {frac:4.0%} sent", end="", file=sys.stderr, flush=True)

    result = netns_call(cfg, opts, out_dir=args.out, pcap=args.pcap, progress=progress)
    print("", file=sys.stderr)
    s = result.summary
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True, default=str))
    elif s.get("status") != "ok":
        print(f"call failed: {s.get('reason')}")
    else:
        print(format_summary(s))
        print(f"  netns: pair {s.get('netns_pair', '-')}, one-way p50 {s.get('netns_one_way_p50_ms', float('nan')):.2f} ms, "
              f"relay {s.get('netns_relay_kbps', 0) or 0:.1f} kbit/s, drops {s.get('netns_drops')}")
    print(f"wrote {args.out}/summary.json" + (f" and {args.pcap}" if args.pcap else ""))
    return 0 if s.get("status") == "ok" else 1


def _nat_matrix(args: argparse.Namespace) -> int:
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"translab nat-matrix: {reason}")
        return 1
    from translab.config import CallConfig
    from translab.emulate.netns.matrix import default_cells, run_matrix

    cells = default_cells(quick=args.quick)
    if args.transport != "both":
        cells = [c for c in cells if c.transport == args.transport]
    base = CallConfig(profile=args.profile, duration_s=args.duration, metrics=(), seed=args.seed)

    def progress(i: int, n: int, row: dict) -> None:
        ok = "connected" if row["connected"] else "failed"
        flag = "" if row["matches_expectation"] else "  (differs from expectation)"
        print(f"[{i}/{n}] {row['key']}: {ok} {row.get('netns_pair') or ''}{flag}", flush=True)

    df = run_matrix(cells, args.out, base, progress, connect_timeout_s=args.connect_timeout)
    cols = ["transport", "caller_nat", "callee_nat", "firewall", "ice", "relay_only", "connected",
            "netns_pair", "setup_dtls_connected_ms", "netns_relay_bytes", "matches_expectation"]
    print(df[[c for c in cols if c in df]].to_string(index=False))
    print(f"table: {args.out}/matrix.csv  heatmap: {args.out}/matrix.png")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("netns", help="namespace backend: one call behind NATs, cleanup, check")
    s = p.add_subparsers(dest="netns_command", metavar="ACTION")
    c = s.add_parser("cleanup", help="remove namespaces, devices and processes of crashed runs")
    c.add_argument("--prefix", default="tl-", help="name prefix to remove (default: all runs, tl-)")
    c.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    c.add_argument("--all", action="store_true",
                   help="also remove runs still in use (their forwarder is alive); default: leftovers only")
    c.add_argument("--json", action="store_true", help="also print the lists as JSON")
    s.add_parser("check", help="say whether the netns backend can run here")
    from translab.commands.simulate import add_call_options
    from translab.emulate.netns.call import add_netns_arguments

    c2 = s.add_parser("call", help="one live call on the namespace backend (NATs, firewall, coturn)",
                      description="Like `translab call`, but the caller, the callee (WebRTC) or the "
                      "WebSocket server (198.18.0.3:443) sit in network namespaces behind NATs and a "
                      "firewall; real kernel UDP/TCP; coturn for STUN/TURN. Needs root.")
    add_call_options(c2)
    add_netns_arguments(c2)
    c2.add_argument("--duration", type=float, default=None, metavar="S", help="first S seconds of the clip")
    c2.add_argument("--pcap", default=None, metavar="FILE", help="pcap of every forwarded packet")
    c2.add_argument("--connect-timeout", type=float, default=10.0, metavar="S")
    c2.add_argument("--out", default="results/netns-call", help="output directory (default %(default)s)")
    c2.add_argument("--json", action="store_true", help="print the summary as JSON")

    def dispatch(args: argparse.Namespace) -> int:
        if args.netns_command == "cleanup":
            return _cleanup(args)
        if args.netns_command == "check":
            return _check(args)
        if args.netns_command == "call":
            return _call(args)
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
