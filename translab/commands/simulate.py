"""`translab simulate`: one offline call, faster than real time (see translab.simulate)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from translab.jsonio import dumps
from translab.config import (ABR_FEEDBACKS, CODECS, CONCEALMENTS, DEFAULT_METRICS, IP_VERSIONS, METRICS, PLAYOUTS, TRANSPORTS,
                             WS_FRAMINGS, CallConfig, check_playout, parse_bitrate)


def _bitrate_arg(text: str) -> int:
    """argparse type for --bitrate: parse_bitrate, its ConfigError shown as argparse's message."""
    try:
        return parse_bitrate(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _playout_arg(text: str) -> str:
    """argparse type for --playout: CallConfig's check, its ConfigError shown as argparse's message."""
    try:
        return check_playout(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def add_call_options(p: argparse.ArgumentParser) -> None:
    """The options that define a call; shared by `simulate` and `call`."""
    d = CallConfig()
    p.add_argument("--transport", choices=TRANSPORTS, default=d.transport,
                   help="webrtc: RTP datagrams; websocket: messages on one TCP stream (default %(default)s)")
    p.add_argument("--codec", choices=CODECS, default=None,
                   help="default: opus for webrtc; for websocket pcm16, or pcmu with twilio-json")
    p.add_argument("--bitrate", type=_bitrate_arg, default=d.bitrate,
                   help="Opus target bit rate, e.g. 24k (default 24k)")
    p.add_argument("--frame-ms", type=float, default=d.frame_ms, help="frame duration in ms (default 20)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="codec sample rate in Hz (default: opus 48000, pcm16 24000, pcmu 8000)")
    p.add_argument("--fec", action=argparse.BooleanOptionalAction, default=d.fec,
                   help="Opus in-band FEC (default on)")
    p.add_argument("--expected-loss-pct", type=int, default=d.expected_loss_pct,
                   help="Opus expected packet loss %% for FEC (default %(default)s)")
    p.add_argument("--dtx", action=argparse.BooleanOptionalAction, default=d.dtx, help="Opus DTX (default off)")
    p.add_argument("--complexity", type=int, default=d.complexity, help="Opus complexity 0-10 (default 9)")
    p.add_argument("--framing", choices=WS_FRAMINGS, default=None,
                   help="WebSocket framing (default binary; realtime-json is pcm16 24 kHz, twilio-json pcmu 8 kHz 20 ms)")
    p.add_argument("--profile", default=d.profile,
                   help="network profile name (see `translab profiles`) or a TOML file (default %(default)s)")
    p.add_argument("--playout", default=d.playout, type=_playout_arg,
                   help=", ".join(PLAYOUTS) + " (default %(default)s)")
    p.add_argument("--conceal", choices=CONCEALMENTS, default=None,
                   help="default: opus-fec (opus with FEC), opus-plc (opus), pcm-plc (PCM)")
    p.add_argument("--clip", default=None, help="clip name from data/clips or a WAV path (default: first clip)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the link models (default %(default)s)")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help="comma-separated: " + ",".join(METRICS) + ", or 'none' (default %(default)s)")
    p.add_argument("--ip-version", type=int, choices=IP_VERSIONS, default=d.ip_version)
    p.add_argument("--nack", action=argparse.BooleanOptionalAction, default=d.nack,
                   help="WebRTC: audio NACK + RTX retransmissions (simulated calls and in-process live calls; default off)")
    p.add_argument("--red", type=int, choices=(0, 1, 2), default=d.red,
                   help="WebRTC: RED with 1 or 2 redundant frames per packet (simulated and in-process live calls; default 0, off)")
    p.add_argument("--fec-loss", choices=("fixed", "measured"), default=d.fec_loss,
                   help="WebRTC: Opus FEC expected loss fixed (--expected-loss-pct) or measured from the receiver's "
                   "reports, as libwebrtc does (simulated and in-process live calls; default fixed)")
    p.add_argument("--abr", action=argparse.BooleanOptionalAction, default=d.abr,
                   help="WebRTC: adaptive bitrate / FEC controller on the sender (simulated and in-process live calls; live needs --abr-feedback rr; default off)")
    p.add_argument("--abr-feedback", choices=ABR_FEEDBACKS, default=d.abr_feedback,
                   help="what drives --abr: twcc (transport-cc-like feedback every 100 ms for the delay-based "
                   "estimate + RTCP receiver reports every 5 s) or rr (RTCP receiver reports only, on aiortc's seeded 0.5-1.5 s "
                   "schedule: what a live aiortc sender sees; default %(default)s)")
    p.add_argument("--tls", action=argparse.BooleanOptionalAction, default=d.tls,
                   help="WebSocket over TLS (wss) in the header model (default on)")


def config_from_args(args: argparse.Namespace, **extra: Any) -> CallConfig:
    """Build a CallConfig from parsed call options."""
    names = {f.name for f in fields(CallConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    metrics = args.metrics.strip()
    values["metrics"] = () if metrics in ("", "none") else tuple(m.strip() for m in metrics.split(","))
    values.update(extra)
    return CallConfig(**values)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``simulate`` subcommand to ``sub``."""
    p = sub.add_parser("simulate", help="simulate one call offline and write trace, audio, summary",
                       description="Simulate one call (faster than real time): writes trace.parquet, "
                       "output.wav and summary.json to --out.")
    add_call_options(p)
    p.add_argument("--out", default="results/simulate", help="output directory (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the call described by ``args``; write the artefacts to ``--out``; exit code 0."""
    from translab.call import SimulatedEngine, run_call

    cfg = config_from_args(args)
    from translab.commands import checks

    cfg.resolved()
    checks.out_dir("--out", args.out)  # before the call: a bad --out is a one-line error, not a traceback after it
    result = run_call(cfg, SimulatedEngine(), args.out)
    s = result.summary
    if args.json:
        print(dumps(s, indent=2, sort_keys=True))  # strict JSON: NaN -> null
    else:
        print(format_summary(s))
        print(f"wrote {args.out}/trace.parquet, output.wav, summary.json ({result.wall_s:.2f} s)")
    return 0


def format_summary(s: dict[str, Any]) -> str:
    """A few lines a person reads: the call and its headline figures."""
    def f(key: str, fmt: str = "{:.1f}") -> str:
        v = s.get(key)
        return "n/a" if v is None or v != v else fmt.format(v)

    # R's scale depends on the band (G.107 nb up to 93.2, G.107.1 wb 129, G.107.2 swb 148)
    from translab.metrics.emodel import scale_name

    band = f", {scale_name(s['emodel_band'])}" if s.get("emodel_band") else ""
    return (
        f"{s['transport']} {s['codec']} {s['frame_ms']:g} ms over {s['profile']} "
        f"(playout {s['playout']}, conceal {s['conceal']}, seed {s['seed']})\n"
        f"  mouth-to-ear p50/p95/p99: {f('m2e_p50_ms')} / {f('m2e_p95_ms')} / {f('m2e_p99_ms')} ms\n"
        f"  loss {f('loss_rate', '{:.2%}')}, late {f('late_rate', '{:.2%}')}, "
        f"concealed {f('concealed_ratio', '{:.2%}')}, interruptions {s.get('interruptions')}\n"
        f"  payload {f('payload_kbps_up')} kbit/s, wire {f('wire_kbps_up')} kbit/s\n"
        f"  PLCMOS {f('plcmos', '{:.2f}')}, PESQ-WB {f('pesq_wb', '{:.2f}')}, STOI {f('stoi', '{:.3f}')}, "
        f"E-model MOS {f('emodel_mos', '{:.2f}')} (R {f('emodel_r')}{band})"
    )
