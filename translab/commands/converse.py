"""`translab converse`: a simulated voice-agent conversation through one of the article's topologies
(see translab.conversation.simulate)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from translab.conversation.model import PACINGS, ReplyPacing, ThinkTime
from translab.conversation.simulate import DEFAULT_ACCESS, EDGE_PLAYOUTS, TOPOLOGIES, ConversationConfig
from translab.jsonio import dumps, write_json


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``converse`` subcommand to ``sub``."""
    d, think, pace = ConversationConfig(), ThinkTime(), ReplyPacing()
    p = sub.add_parser(
        "converse", help="simulate a voice-agent conversation: turn latency budget, barge-in, underruns, WER",
        description="Simulate a conversation between a scripted caller and a realtime-model stand-in "
        "(Silero server VAD, seeded think time, streamed replies) through a topology; per turn the "
        "latency from the end of the caller's speech to the agent's first audio at the caller's ear, "
        "split into uplink, VAD, think and downlink. Simulated by default; --live runs it in real time.")
    p.add_argument("--topology", choices=TOPOLOGIES, default=d.topology,
                   help="direct-ws: WebSocket to the model; webrtc-gateway: WebRTC to a gateway, WebSocket "
                   "to the model; twilio: PSTN leg, Twilio, WebSocket bridge (default %(default)s)")
    p.add_argument("--profile", default=None,
                   help="the caller's access leg: profile name or TOML file (default: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_ACCESS.items()) + ")")
    p.add_argument("--dc-profile", default=d.dc_profile,
                   help="every datacenter leg (gateway, Twilio, bridge to model) (default %(default)s)")
    p.add_argument("--turns", type=int, default=d.turns, help="caller turns (default %(default)s)")
    p.add_argument("--barge-in", type=int, default=d.bargein_every, metavar="K",
                   help="the caller interrupts the reply to every K-th turn (0: never; default %(default)s)")
    p.add_argument("--flush", action=argparse.BooleanOptionalAction, default=d.flush,
                   help="the listener's side flushes buffered reply audio on barge-in (default on)")
    p.add_argument("--think-ms", type=float, default=think.median_ms,
                   help="median think time, model + TTS to first audio (ms, default %(default)s)")
    p.add_argument("--think-sigma", type=float, default=think.sigma,
                   help="log-sd of the lognormal think time (0: fixed; default %(default)s)")
    p.add_argument("--pacing", choices=PACINGS, default=pace.mode,
                   help="burst: TTS faster than real time; realtime: just-in-time (default %(default)s)")
    p.add_argument("--chunk-ms", type=float, default=pace.chunk_ms, help="audio per reply delta (ms)")
    p.add_argument("--tts-speed", type=float, default=pace.speed, help="burst: x real time (default %(default)s)")
    p.add_argument("--lead-ms", type=float, default=pace.lead_ms,
                   help="burst: how far ahead of real time the model may send (ms; default inf)")
    p.add_argument("--silence-ms", type=float, default=d.vad.silence_duration_ms,
                   help="server VAD silence_duration_ms (default %(default)s)")
    p.add_argument("--vad-threshold", type=float, default=d.vad.threshold, help="server VAD threshold")
    p.add_argument("--wer", action=argparse.BooleanOptionalAction, default=False,
                   help="recognise what the model received (PocketSphinx; needs translab[asr]; slow)")
    p.add_argument("--metrics", default="none",
                   help="quality of both directions, comma-separated: plcmos,stoi,estoi,pesq_wb,pesq_nb, or none "
                   "(up_*: what the model received; down_plcmos: the agent at the caller's ear; default none)")
    p.add_argument("--live", action="store_true",
                   help="run live in real time: real websockets and aiortc through the in-process network emulator "
                   "on the same profiles and seeded draws (every topology); the same columns as a simulated run")
    p.add_argument("--realtime", action="store_true",
                   help="--live: run under SCHED_RR (root or CAP_SYS_NICE) so other busy processes cannot delay "
                   "the call by a scheduler time slice")
    p.add_argument("--edge-playout", choices=EDGE_PLAYOUTS, default=None,
                   help="the jitter buffer where the caller's RTP leg ends (webrtc-gateway, twilio's carrier) "
                   "(default: adaptive simulated; aiortc-stock live, since the live edges play aiortc's own track)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (default %(default)s)")
    p.add_argument("--out", default=None, help="write turns.csv and summary.json here")
    p.add_argument("--json", action="store_true", help="print one JSON object: the summary and the turns")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ConversationConfig:
    from translab.media.vad import VadParams

    d = ConversationConfig()
    return ConversationConfig(
        topology=args.topology, profile=args.profile, dc_profile=args.dc_profile, turns=args.turns,
        bargein_every=args.barge_in, flush=args.flush, think=ThinkTime(args.think_ms, args.think_sigma),
        pacing=ReplyPacing(args.pacing, args.chunk_ms, args.tts_speed, args.lead_ms),
        vad=VadParams(args.vad_threshold, d.vad.prefix_padding_ms, args.silence_ms),
        wer=args.wer, seed=args.seed,
        edge_playout=args.edge_playout or ("aiortc-stock" if args.live else d.edge_playout),
        metrics=() if args.metrics.strip() in ("", "none") else tuple(m.strip() for m in args.metrics.split(",")),
    )


def _clean(v: Any) -> Any:
    """JSON-safe: NaN and inf become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


def run(args: argparse.Namespace) -> int:
    from translab.commands import checks
    from translab.conversation.simulate import converse

    cfg = config_from_args(args)
    if args.out:
        checks.out_dir("--out", args.out)
    if args.live:
        from translab.conversation.live import live_converse

        result = live_converse(cfg, realtime=args.realtime)
    else:
        result = converse(cfg)
    summary = {k: _clean(v) for k, v in result.summary.items()}
    turns = [{k: _clean(v) for k, v in row.items()} for row in result.turns.to_dict(orient="records")]
    if args.out:
        out = Path(args.out)
        result.turns.to_csv(out / "turns.csv", index=False)
        extra = {"figures": {k: _clean(v) for k, v in result.figures.items()}} if result.figures else {}
        write_json(out / "summary.json", {"summary": summary, "config": _config_json(cfg), **extra})
    if args.json:
        print(dumps({"summary": summary, "turns": turns}))
        return 0
    s = summary
    print(f"{s['topology']} over {s['profile']} (datacenter legs {s['dc_profile']}), seed {s['seed']}, {s['mode']}: "
          f"{s['turns_answered']}/{s['turns']} turns answered")
    print(f"  turn latency p50/p95: {_fmt(s['turn_latency_p50_ms'])} / {_fmt(s['turn_latency_p95_ms'])} ms")
    print(f"  budget p50: uplink {_fmt(s['uplink_p50_ms'])}, VAD {_fmt(s['vad_p50_ms'])}, "
          f"think {_fmt(s['think_p50_ms'])}, downlink {_fmt(s['downlink_p50_ms'])} ms")
    print(f"  barge-ins {s['bargeins']}: agent stops after p50/p95 {_fmt(s['bargein_stop_p50_ms'])} / "
          f"{_fmt(s['bargein_stop_p95_ms'])} ms")
    print(f"  underruns inside agent speech: {s['underruns']} ({_fmt(s['underrun_ms'])} ms)")
    if cfg.wer:
        print(f"  WER on what the model received {_fmt(s['wer'], '{:.2f}')} (clean: {_fmt(s['wer_clean'], '{:.2f}')})")
    if result.figures:
        f = result.figures
        print(f"  host: {f.get('host_stalls', 0)} event-loop stalls while the script ran (max {_fmt(f.get('host_stall_max_ms'))} ms), "
              f"emulator release lateness p99 {_fmt(f.get('emu_release_late_p99_ms'), '{:.1f}')} ms")
    if args.out:
        print(f"wrote {args.out}/turns.csv, summary.json ({result.wall_s:.1f} s)")
    return 0


def _fmt(v: Any, fmt: str = "{:.0f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _config_json(cfg: ConversationConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    return {k: _clean(v) if not isinstance(v, dict) else {kk: _clean(vv) for kk, vv in v.items()} for k, v in d.items()}
