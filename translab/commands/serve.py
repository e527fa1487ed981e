"""`translab serve`: the receiving side on its own (WebSocket endpoint + WebRTC answerer behind HTTP
signalling, both behind the live emulator), for callers outside translab. See
translab.call.served."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``serve`` subcommand to ``sub``."""
    p = sub.add_parser("serve", help="receive live calls from outside clients (WebSocket, WebRTC)",
                       description="Serve a WebSocket endpoint and a WebRTC answerer (POST an SDP offer "
                       "to http://HOST:HTTP_PORT/offer, or WHIP at /whip) behind the live emulator; every finished call "
                       "gets OUT/<transport>-<n>/ with trace, audio and summary. Ctrl-C stops.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--http-port", type=int, default=8080, help="signalling port (default %(default)s)")
    p.add_argument("--ws-port", type=int, default=8765, help="WebSocket port (default %(default)s)")
    p.add_argument("--profile", default="clean-lan", help="network profile (default %(default)s)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--playout", default="adaptive", help="playout policy for the analysis")
    p.add_argument("--tls", action="store_true", help="wss with a certificate made for the run")
    p.add_argument("--echo", action="store_true", help="echo WebSocket audio back")
    p.add_argument("--reply", default="none", choices=("none", "echo", "clip"),
                   help="what the WebRTC answerer sends back, so a browser's receiver plays something: "
                   "none, echo (the caller's audio) or clip (--reply-clip encoded by translab); "
                   "default %(default)s")
    p.add_argument("--reply-clip", default=None, metavar="CLIP",
                   help="clip name or WAV path for --reply clip (default: the first clip)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages from ORIGIN (scheme://host[:port]) call /offer; loopback origins are "
                   "always allowed, others refused (repeatable; never *)")
    p.add_argument("--pcap", default=None, metavar="FILE", help="write forwarded packets to FILE")
    p.add_argument("--out", default="results/serve", help="output directory (default %(default)s)")
    p.add_argument("--for", dest="for_s", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="export Prometheus metrics of received calls (translab_serve_*) at "
                   "http://HOST:PORT/metrics (prometheus_client's own server; default off)")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    """Every option checked before anything listens: values from the call schema (CallConfig), ports,
    host, --for, and the output paths."""
    from translab.commands import checks
    from translab.config import check_playout
    from translab.errors import ConfigError, check_range

    check_playout(args.playout)  # CallConfig's rules (not resolved(): it imports scipy, seconds under load)
    check_range("seed", args.seed, 0, 2**63 - 1)
    if args.for_s is not None and not args.for_s > 0:
        raise ConfigError("--for", args.for_s, "a positive number of seconds (leave it out to serve until Ctrl-C)")
    ports = {"--http-port": checks.port("--http-port", args.http_port),
             "--ws-port": checks.port("--ws-port", args.ws_port)}
    if args.http_port and args.http_port == args.ws_port:
        raise ConfigError("--ws-port", args.ws_port, "a port other than --http-port")
    checks.bindable(args.host, ports)
    checks.out_dir("--out", args.out)
    if args.pcap:
        checks.out_file("--pcap", args.pcap)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or ``--for`` seconds); exit code 0."""
    from translab.link.profiles import load_profile
    from translab.call.served import ServeConfig, TranslabServer
    from translab.transport.signalling import check_origin

    load_profile(args.profile)  # a wrong name fails here, before anything listens
    _check_args(args)
    origins = tuple(check_origin(o) for o in args.allow_origin)
    stream, fmtp = None, None
    if args.reply == "clip":
        from translab.config import CallConfig
        from translab.call.prepare import prepare_call
        from translab.transport.webrtc import opus_fmtp

        reply = prepare_call(CallConfig(transport="webrtc", clip=args.reply_clip, profile=args.profile,
                                        seed=args.seed))
        stream, fmtp = reply.stream, opus_fmtp(reply.cfg)
    elif args.reply_clip is not None:
        from translab.errors import ConfigError

        raise ConfigError("--reply-clip", args.reply_clip, "only with --reply clip")
    cfg = ServeConfig(host=args.host, http_port=args.http_port, ws_port=args.ws_port,
                      profile=args.profile, seed=args.seed, playout=args.playout, out_dir=Path(args.out),
                      pcap=Path(args.pcap) if args.pcap else None, tls=args.tls, echo=args.echo,
                      reply=args.reply, reply_stream=stream, reply_fmtp=fmtp, allow_origins=origins)

    exporter = None
    if args.metrics_port is not None:  # hook: Prometheus metrics of served calls (issue 14)
        from translab.commands.serve_metrics import ServeExporter

        exporter = ServeExporter(args.metrics_port, args.host, cfg.profile)

    async def main() -> None:
        server = TranslabServer(cfg)
        try:
            try:
                addr = await server.start()
            except OSError as err:  # taken between the check and the bind
                from translab.errors import ConfigError

                raise ConfigError("--host/--http-port/--ws-port", f"{cfg.host} {cfg.http_port}/{cfg.ws_port}",
                                  f"addresses and ports that can be bound ({err.strerror})") from None
            scheme = "wss" if cfg.tls else "ws"
            print(f"serve: caller page at http://{addr['http'][0]}:{addr['http'][1]}/ (WebRTC offers to "
                  f"/offer, WHIP at /whip; reply {cfg.reply})", flush=True)
            print(f"serve: WebSocket at {scheme}://{addr['ws'][0]}:{addr['ws'][1]}/?framing=binary&codec=pcm16"
                  f"&rate=16000&frame_ms=20", flush=True)
            print(f"serve: profile {cfg.profile}, seed {cfg.seed}; results in {cfg.out_dir}/ (Ctrl-C stops)",
                  flush=True)
            seen = 0
            t = 0.0
            while args.for_s is None or t < args.for_s:
                await asyncio.sleep(0.5)
                t += 0.5
                for s in server.finished[seen:]:
                    print(f"serve: call {s.get('call')} finished: {s}", flush=True)
                    if exporter is not None:  # hook: Prometheus metrics of served calls (issue 14)
                        exporter.observe_call(s, cfg.out_dir, addr)
                seen = len(server.finished)
        finally:
            await server.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("serve: stopped", file=sys.stderr)
    finally:
        if exporter is not None:
            exporter.close()
    return 0
