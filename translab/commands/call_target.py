"""`translab call --target URL`: call an external endpoint (translab.call.external.ExternalEngine)
instead of translab's own receiver. Kept apart from commands/call.py: that module calls
:func:`add_arguments` and, when ``--target`` is given, :func:`run`."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from translab.jsonio import dumps


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of an external call (added to `translab call`)."""
    g = p.add_argument_group("external endpoint (--target)")
    g.add_argument("--target", default=None, metavar="URL",
                   help="call this endpoint instead of translab's own receiver: ws[s]://HOST:PORT/PATH "
                   "(WebSocket; framing from --framing or the URL's #fragment, e.g. #twilio-json) or "
                   "http[s]://HOST:PORT/PATH (WebRTC offer URL taking POST {sdp, type}, e.g. pipecat's "
                   "/api/offer; add #whip for a WHIP endpoint, RFC 9725); the transport follows the URL")
    g.add_argument("--listen", type=float, default=1.5, metavar="S",
                   help="with --target: after the clip, send S seconds of silence while listening (default %(default)s)")


def _ms(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f} ms"


def run(args: argparse.Namespace) -> int:
    """Run `translab call --target`; exit 0 when the endpoint's audio came back, 1 otherwise."""
    from translab.call.engine import run_call
    from translab.call.external import REPLY_FILE, ExternalEngine, parse_target
    from translab.commands.simulate import config_from_args
    from translab.errors import ConfigError, check_range

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
    engine = ExternalEngine(target, listen_s=args.listen, connect_timeout_s=args.connect_timeout, pcap=args.pcap,
                            realtime=args.realtime)
    cfg = config_from_args(args, **extra)
    engine.prepare(cfg)  # a config the target cannot take fails here, before dialling
    if not args.quiet:
        print(f"call: {target.transport} to {target.url} over {cfg.profile} (seed {cfg.seed}), connecting ...",
              file=sys.stderr, flush=True)
    result = run_call(cfg, engine, args.out)
    s = result.summary
    if args.json:
        print(dumps(s, indent=2, sort_keys=True))
        return 0 if s["status"] == "ok" else 1
    if s["status"] != "ok":
        print(f"call failed ({s.get('failure')}): {s['reason']}")
    else:
        print(f"{s['transport']} to {s['target']} over {s['profile']}: set-up {_ms(s.get('connect_ms'))}, "
              f"first audio out {_ms(s.get('first_audio_out_ms'))}, turn latency {_ms(s.get('turn_latency_ms'))}")
        print(f"  uplink at the endpoint: loss {100 * s['loss_rate']:.1f} %, network delay p95 "
              f"{_ms(s.get('net_delay_p95_ms'))}, mouth-to-ear p50 {_ms(s.get('m2e_p50_ms'))} (playout {s['playout']})")
        plcmos = s.get("reply_plcmos")
        print(f"  reply: {s['reply_audio_s']:.2f} s of audio ({s['reply_underruns']} gaps, "
              f"{s['reply_underrun_ms']:.0f} ms, if played on arrival), loss {100 * s['reply_loss_rate']:.1f} %, "
              f"jitter {_ms(s.get('reply_jitter_ms'))}, rtt {_ms(s.get('rtt_ms'))}, PLCMOS "
              + ("-" if plcmos is None or math.isnan(plcmos) else f"{plcmos:.2f}"))
        setup = sorted(((k[6:-3], v) for k, v in s.items() if k.startswith("setup_") and k.endswith("_ms")
                        and v is not None and not math.isnan(v)), key=lambda x: x[1])
        print("  setup (ms since dial): " + ", ".join(f"{k} {v:.0f}" for k, v in setup))
    print(f"wrote {args.out}/summary.json" + (f" and {REPLY_FILE}" if (args.out and s.get("reply_audio_s")) else "")
          + f" ({result.wall_s:.1f} s)", file=sys.stderr)
    return 0 if s["status"] == "ok" else 1
