"""`translab call --target URL`: call an external endpoint (see translab.call.external) instead of
translab's own receiver. Kept apart from commands/call.py: that module calls :func:`add_arguments`
and, when ``--target`` is given, :func:`run`."""

from __future__ import annotations

import argparse
import sys
from translab.jsonio import dumps


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of an external call (added to `translab call`)."""
    g = p.add_argument_group("external endpoint (--target)")
    g.add_argument("--target", default=None, metavar="URL",
                   help="call this endpoint instead of translab's own receiver: ws[s]://HOST:PORT/PATH "
                   "(WebSocket; framing from --framing or the URL's #fragment, e.g. #twilio-json) or "
                   "http[s]://HOST:PORT/PATH (WebRTC offer URL taking POST {sdp, type}, e.g. pipecat's "
                   "/api/offer); the transport follows the URL")
    g.add_argument("--listen", type=float, default=1.5, metavar="S",
                   help="with --target: after the clip, send S seconds of silence while listening (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Run `translab call --target`; exit 0 when the endpoint's audio came back, 1 otherwise."""
    from translab.commands.simulate import config_from_args
    from translab.errors import ConfigError, check_range
    from translab.call.external import external_call, parse_target, target_config

    target = parse_target(args.target)  # one clear error before anything else
    if args.backend != "inprocess":
        raise ConfigError("--backend", args.backend, "inprocess with --target")
    for flag, on in (("--echo", args.echo), ("--deflate", args.deflate)):
        if on:
            raise ConfigError(flag, True, "not with --target (the endpoint decides what it sends back)")
    check_range("--listen", args.listen, 0.0, 60.0, "s")
    check_range("--connect-timeout", args.connect_timeout, 0.5, 300, "s")
    extra = {}
    if args.duration is not None:
        check_range("--duration", args.duration, 0.1, 3600, "s")
        extra["duration_s"] = args.duration
    cfg = target_config(config_from_args(args, **extra), target)
    cfg.resolved()
    if not args.quiet:
        print(f"call: {target.transport} to {target.url} over {cfg.profile} (seed {cfg.seed}), connecting ...",
              file=sys.stderr, flush=True)
    result = external_call(cfg, target, args.out, connect_timeout_s=args.connect_timeout,
                           listen_s=args.listen, pcap=args.pcap, quality="plcmos" in cfg.metrics,
                           realtime=args.realtime)
    s = result.summary
    if args.json:
        print(dumps(s, indent=2, sort_keys=True))
        return 0 if s["status"] == "ok" else 1
    if s["status"] != "ok":
        print(f"call failed ({s['failure']}): {s['reason']}")
    else:
        def ms(k: str) -> str:
            v = s.get(k)
            return "-" if v is None else f"{v:.0f} ms"

        print(f"{s['transport']} to {s['target']} over {s['profile']}: set-up {ms('setup_ms')}, "
              f"first audio out {ms('first_audio_out_ms')}, turn latency {ms('turn_latency_ms')}")
        pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"  # noqa: E731
        print(f"  received {s['rx_audio_s']:.2f} s of audio ({s['rx_underruns']} gaps, {s['rx_underrun_ms']:.0f} ms, "
              f"if played on arrival); loss up {pct(s['loss_up'])} down "
              f"{pct(s['loss_down'])}, jitter {ms('jitter_ms')}, rtt {ms('rtt_ms')}, PLCMOS "
              + ("-" if s.get("quality_plcmos") is None else f"{s['quality_plcmos']:.2f}"))
        setup = sorted(((k[6:-3], v) for k, v in s.items() if k.startswith("setup_") and k.endswith("_ms")
                        and k != "setup_ms" and v is not None), key=lambda x: x[1])
        print("  setup (ms since dial): " + ", ".join(f"{k} {v:.0f}" for k, v in setup))
    print(f"wrote {args.out}/summary.json" + (" and received.wav" if len(result.audio) else "")
          + f" ({result.wall_s:.1f} s)", file=sys.stderr)
    return 0 if s["status"] == "ok" else 1
