"""`translab probe`: synthetic calls to one or more endpoints at a fixed interval, exported as
Prometheus metrics (see translab.lab.probe and translab.metrics.prometheus)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``probe`` subcommand to ``sub``."""
    p = sub.add_parser("probe", help="synthetic call probes to endpoints, exported as Prometheus metrics",
                       description="Every --every, make one real call to each --target through the "
                       "emulated --profile (WebRTC offer URL or WebSocket URL, as `translab call --target`) "
                       "and export set-up time, first audio out, turn latency, loss, jitter, RTT, quality "
                       "and failures by reason at http://METRICS_HOST:METRICS_PORT/metrics "
                       "(metric names translab_probe_*). Ctrl-C stops.")
    p.add_argument("--target", action="append", required=True, metavar="URL",
                   help="endpoint to probe (repeatable): ws[s]://HOST:PORT/PATH[#FRAMING] or "
                   "http[s]://HOST:PORT/PATH[#whip] (WebRTC offer URL, or WHIP endpoint)")
    p.add_argument("--every", default="60s", metavar="DURATION",
                   help="interval between probes of one target, e.g. 60s, 5m (default %(default)s)")
    p.add_argument("--for", dest="for_", default=None, metavar="DURATION",
                   help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--metrics-port", type=int, default=9464, help="Prometheus port (default %(default)s; 0: any)")
    p.add_argument("--metrics-host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--profile", default="clean-lan", help="network profile of the probe calls (default %(default)s)")
    p.add_argument("--duration", type=float, default=3.0, metavar="S",
                   help="seconds of the clip each probe sends (default %(default)s)")
    p.add_argument("--clip", default=None, help="clip name or WAV path (default: first clip)")
    p.add_argument("--framing", default=None, choices=("binary", "realtime-json", "twilio-json"),
                   help="framing of WebSocket targets without a #FRAMING fragment (default binary)")
    p.add_argument("--seed", type=int, default=7, help="seed of the first probe; probe k uses seed+k")
    p.add_argument("--listen", type=float, default=1.5, metavar="S",
                   help="after the clip, send S seconds of silence while listening (default %(default)s)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="give up connecting after S seconds (at most half the interval; default %(default)s)")
    p.add_argument("--out", default=None, metavar="DIR", help="append every probe's summary to DIR/probes.jsonl")
    p.add_argument("--quiet", action="store_true", help="no line per probe on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Probe until --for has passed or Ctrl-C; exit 0 (failed probes are metrics, not errors)."""
    from translab.config import CallConfig
    from translab.errors import ConfigError, check_range
    from translab.lab.probe import ProbeConfig, parse_duration, run_probes
    from translab.link.profiles import load_profile
    from translab.metrics.prometheus import CallMetrics
    from translab.transport.external import parse_target

    targets = tuple(parse_target(u) for u in args.target)
    if len(set(t.url for t in targets)) != len(targets):
        raise ConfigError("--target", args.target, "distinct URLs")
    check_range("--metrics-port", args.metrics_port, 0, 65535)
    check_range("--duration", args.duration, 0.5, 600, "s")
    load_profile(args.profile)  # a wrong name fails here, before anything listens
    call = CallConfig(profile=args.profile, duration_s=args.duration, clip=args.clip, seed=args.seed,
                      framing=args.framing, transport="websocket" if args.framing else "webrtc", metrics=())
    cfg = ProbeConfig(targets=targets, every_s=parse_duration(args.every, "--every"),
                      for_s=None if args.for_ is None else parse_duration(args.for_, "--for"), call=call,
                      connect_timeout_s=args.connect_timeout, listen_s=args.listen,
                      out_dir=Path(args.out) if args.out else None)
    cfg.check()
    metrics = CallMetrics("translab_probe")
    server = metrics.serve(args.metrics_port, args.metrics_host)
    print(f"probe: metrics at http://{args.metrics_host}:{server.server_port}/metrics; "
          f"{len(targets)} target(s) every {cfg.every_s:g} s over {args.profile}", flush=True)

    def show(url: str, s: dict) -> None:
        if args.quiet:
            return
        if s.get("status") == "ok":
            fa = s.get("first_audio_out_ms")
            print(f"probe {s.get('probe')}: {url} ok, set-up {s.get('connect_ms') or 0:.0f} ms, first audio out "
                  + ("-" if fa is None else f"{fa:.0f} ms"), flush=True)
        else:
            print(f"probe {s.get('probe')}: {url} FAILED {s.get('failure')}: {s.get('reason')}", flush=True)

    try:
        n = asyncio.run(run_probes(cfg, metrics, on_result=show))
        print(f"probe: {n} probes done", file=sys.stderr)
    except KeyboardInterrupt:
        print("probe: stopped", file=sys.stderr)
    finally:
        server.shutdown()
    return 0
