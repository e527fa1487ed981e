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
                       "to http://HOST:HTTP_PORT/offer) behind the live emulator; every finished call "
                       "gets OUT/<transport>-<n>/ with trace, audio and summary. Ctrl-C stops.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--http-port", type=int, default=8080, help="signalling port (default %(default)s)")
    p.add_argument("--ws-port", type=int, default=8765, help="WebSocket port (default %(default)s)")
    p.add_argument("--profile", default="clean-lan", help="network profile (default %(default)s)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--playout", default="adaptive", help="playout policy for the analysis")
    p.add_argument("--tls", action="store_true", help="wss with a certificate made for the run")
    p.add_argument("--echo", action="store_true", help="echo WebSocket audio back")
    p.add_argument("--pcap", default=None, metavar="FILE", help="write forwarded packets to FILE")
    p.add_argument("--out", default="results/serve", help="output directory (default %(default)s)")
    p.add_argument("--for", dest="for_s", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or ``--for`` seconds); exit code 0."""
    from translab.link.profiles import load_profile
    from translab.call.served import ServeConfig, TranslabServer

    load_profile(args.profile)  # a wrong name fails here, before anything listens
    cfg = ServeConfig(host=args.host, http_port=args.http_port, ws_port=args.ws_port,
                      profile=args.profile, seed=args.seed, playout=args.playout, out_dir=Path(args.out),
                      pcap=Path(args.pcap) if args.pcap else None, tls=args.tls, echo=args.echo)

    async def main() -> None:
        server = TranslabServer(cfg)
        try:
            addr = await server.start()
            scheme = "wss" if cfg.tls else "ws"
            print(f"serve: WebRTC offers to http://{addr['http'][0]}:{addr['http'][1]}/offer", flush=True)
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
                seen = len(server.finished)
        finally:
            await server.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("serve: stopped", file=sys.stderr)
    return 0
