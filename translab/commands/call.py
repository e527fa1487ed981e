"""`translab call`: one live call over a real transport. ``--backend inprocess`` (default) runs it
through the in-process emulator (see translab.live); ``--backend netns`` runs it on real kernel
stacks in network namespaces behind NATs, a firewall and coturn (see translab.emulate.netns.call;
needs root). Same options as `translab simulate`, plus --duration, --pcap, --connect-timeout and
--echo (in-process) or the netns options; writes the same artefacts with ``mode = live``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from translab.commands.simulate import add_call_options, config_from_args, format_summary
from translab.config import BACKENDS, NETNS_FIELDS, PEERS
from translab.jsonio import dumps


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("call", help="make one live call (real aiortc / websockets, emulated link)",
                       description="Make one live call in real time: the clip is sent over a real "
                       "aiortc peer connection or websockets connection whose every packet crosses "
                       "the profile's link models (in-process, no root). Writes trace.parquet, "
                       "output.wav and summary.json (mode=live) to --out.")
    add_call_options(p)
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="send only the first S seconds of the clip (default: whole clip)")
    p.add_argument("--pcap", default=None, metavar="FILE",
                   help="write every forwarded packet to FILE (pcap, opens in Wireshark/tshark)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="give up when not connected after S seconds (default %(default)s)")
    p.add_argument("--echo", action="store_true",
                   help="WebSocket: the server echoes audio back; round trips go into the summary")
    p.add_argument("--deflate", action="store_true",
                   help="WebSocket: offer permessage-deflate (off by default; the header model then "
                   "overstates wire kbit/s and the emulator's emu_tcp_* counts are the true wire bytes)")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True,
                   help="run the call under SCHED_RR when permitted, so other busy processes cannot "
                   "delay the emulator by a time slice (default on)")
    p.add_argument("--out", default="results/call", help="output directory (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--peer", default="aiortc", choices=PEERS,
                   help="the other end: aiortc (translab on both ends, default) or chromium (headless "
                   "system Chromium calls translab: its Opus, its NetEq; both directions cross the "
                   "emulator; see translab.call.browser)")
    p.add_argument("--backend", default="inprocess", choices=BACKENDS,
                   help="inprocess: link models in this process, no root (default); netns: real "
                   "kernel UDP/TCP in network namespaces with NATs, firewalls and coturn (root)")
    from translab.emulate.netns.call import add_netns_arguments

    g = p.add_argument_group("netns backend (--backend netns)")
    add_netns_arguments(g)
    from translab.commands import call_target  # hook: `call --target URL` (issue 14)

    call_target.add_arguments(p)
    p.set_defaults(func=run)


_NETNS_ONLY = tuple(NETNS_FIELDS)


def run(args: argparse.Namespace) -> int:
    from translab.call import run_call
    from translab.errors import check_range

    if args.target is not None:  # hook: an external endpoint instead of translab's receiver (issue 14)
        from translab.commands.call_target import run as run_target

        return run_target(args)
    extra = {}
    if args.duration is not None:
        check_range("--duration", args.duration, 0.1, 3600, "s")
        extra["duration_s"] = args.duration
    check_range("--connect-timeout", args.connect_timeout, 0.5, 300, "s")
    cfg = config_from_args(args, **extra)
    cfg.resolved()  # a wrong option is one line before anything else is printed
    if (args.deflate or args.echo) and cfg.transport != "websocket":
        from translab.errors import ConfigError

        raise ConfigError("--deflate" if args.deflate else "--echo", True, "only with --transport websocket")
    if args.peer == "chromium":  # hook (issue 12): the browser peer has its own engine
        from translab.commands.call_browser import run as run_browser

        return run_browser(args, cfg)
    if args.backend == "netns":
        from translab.emulate.netns.system import unavailable_reason

        reason = unavailable_reason()
        if reason:
            print(f"translab call --backend netns: {reason}", file=sys.stderr)
            return 2
        if args.echo or args.deflate:
            from translab.errors import ConfigError

            flag = "--echo" if args.echo else "--deflate"
            raise ConfigError(flag, True, "only with --backend inprocess")
    else:
        from translab.config import NetnsConfig

        default = NetnsConfig()
        changed = [k for k in _NETNS_ONLY if getattr(args, k) != getattr(default, k)]
        if changed:
            from translab.errors import ConfigError

            raise ConfigError("--" + changed[0].replace("_", "-"), getattr(args, changed[0]),
                              "only with --backend netns")

    from translab.commands import checks

    checks.out_dir("--out", args.out)  # before the call: its result must not be lost to a bad path
    if args.pcap:
        checks.out_file("--pcap", args.pcap)

    def progress(frac: float) -> None:
        if not args.quiet:
            print(f"\rcall: {frac:4.0%} sent", end="", file=sys.stderr, flush=True)

    if not args.quiet:
        print(f"call: {cfg.transport} over {cfg.profile} (seed {cfg.seed}, backend {args.backend}), "
              "connecting ...", file=sys.stderr, flush=True)
    engine: Any
    if args.backend == "netns":
        from translab.call.netns import NetnsEngine
        from translab.emulate.netns.call import options_from_args

        opts = options_from_args(args, connect_timeout_s=args.connect_timeout)
        engine = NetnsEngine(opts, pcap=args.pcap, progress=progress)
    else:
        from translab.call.live import LiveEngine

        engine = LiveEngine(pcap=args.pcap, connect_timeout_s=args.connect_timeout, progress=progress,
                            echo=args.echo, realtime=args.realtime, deflate=args.deflate)
    result = run_call(cfg, engine, args.out)
    if not args.quiet:
        print("", file=sys.stderr)
    s = result.summary
    if args.json:
        print(dumps(s, indent=2, sort_keys=True))  # strict JSON: NaN -> null
    elif s.get("status") != "ok":
        print(f"call failed: {s.get('reason')}")
    else:
        print(format_summary(s))
        setup = [(k[6:-3], v) for k, v in s.items() if k.startswith("setup_") and k.endswith("_ms")]
        print("  setup (ms since start): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(setup, key=lambda x: x[1])))
        if args.backend == "netns":
            print(f"  netns: {s.get('netns_caller_nat')} -> {s.get('netns_callee_nat')}, firewall "
                  f"{s.get('netns_firewall')}, ice {s.get('netns_ice')}; pair {s.get('netns_pair', '-')}, "
                  f"one-way p50 {s.get('netns_one_way_p50_ms', float('nan')):.2f} ms, "
                  f"relay {s.get('netns_relay_kbps', 0) or 0:.1f} kbit/s")
        else:
            print(f"  emulator: release lateness p99 {s.get('emu_release_late_p99_ms', float('nan')):.2f} ms "
                  f"({s.get('emu_timer')})")
    # with --json, stdout is exactly one JSON object: the note goes to stderr
    print(f"wrote {args.out}/summary.json" + (f" and {args.pcap}" if args.pcap else "")
          + f" ({result.wall_s:.1f} s)", file=sys.stderr if args.json else sys.stdout)
    return 0 if s.get("status") == "ok" else 1
