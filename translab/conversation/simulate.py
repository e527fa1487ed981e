"""Simulated voice-agent conversations: a scripted caller, the model stand-in, and the legs between
them on the lab's link models and receivers, in simulated time.

Topologies (the article's names), each leg with its own profile (``profile``: the caller's access
leg; ``dc_profile``: the datacenter legs, default ``colocated``):

* ``direct-ws``: caller --WebSocket (realtime-json, PCM16 24 kHz)-- model. The caller's client
  plays each reply from a buffer fed by whatever arrives (elastic: starts on the first delta, stalls
  when empty) and flushes it on ``speech_started``.
* ``webrtc-gateway``: caller --WebRTC (Opus 48 kHz, adaptive jitter buffer at the gateway)-- gateway
  --WebSocket (realtime-json, 24 kHz)-- model. The gateway plays the caller's stream out of its
  jitter buffer, resamples it to 24 kHz and forwards it in 20 ms appends; it paces replies into
  Opus frames in real time (an elastic buffer: silence when empty; each 20 ms frame read
  ``EDGE_LEAD_S`` before it is sent, its encode budget) and, on ``speech_started``,
  stops sending the reply (flush). The caller's own receiver is an adaptive jitter buffer.
* ``twilio``: caller --PSTN-like leg (G.711 mu-law 8 kHz, 20 ms, the carrier's adaptive jitter
  buffer)-- Twilio --WebSocket (twilio-json)-- bridge --WebSocket (realtime-json with
  ``audio/pcmu`` both ways, as Twilio bridges configure it)-- model. Twilio plays the media it is
  sent in real time from its buffer; the bridge sends ``clear`` on ``speech_started``.

``edge_playout`` = ``aiortc-stock`` (what the live edges are, translab.conversation.gateway and
.twilio): the caller's RTP leg ends in aiortc's own receiver (capacity 16, prefetch 4, no
concealment); the gateway forwards each frame the moment aiortc releases it (so its appends follow
aiortc's release times and order), the carrier plays them on its own 20 ms clock (the call grid).

Per turn (all times on the call clock) the turn latency is split into parts that add up exactly::

    turn_latency = heard - end          end: the caller's speech ends (script)
      uplink   = arrived - end          arrived: the model has the audio holding that instant
      vad      = decided - arrived      decided: the model sends speech_stopped
      think    = first_sent - decided   first_sent: the first reply delta leaves the model
      downlink = heard - first_sent     heard: the reply's first sample plays at the caller's ear

``vad`` = the VAD's hangover (Silero still scores the first chunk or two after speech as speech:
``vad_tail_ms``) + silence_duration_ms rounded up to 32 ms chunks + waiting for the append that
completes the deciding chunk.

Barge-in: ``bargein_stop_ms`` = caller onset -> the agent's audio stops at the caller's ear;
``agent_after_ms`` = agent audio played from packets at the ear between the onset and that stop
(less than ``bargein_stop_ms`` when the stop falls in a gap). Underruns: runs of not-played audio
(stalls, concealment) inside the agent's speech at the ear, including the edge's own stalls.

The caller's truncate (``conversation.item.truncate``) is computed (what the listener's side had
played at the flush) and checked against what the model sent, but not fed back to the model: the
uplink is simulated before the model runs (the script is open loop, see translab.conversation.script).
A live conversation (translab.conversation.live) sends it, and is analysed by :func:`analyse`
with the legs' live arrival traces in place of these simulated ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from translab import trace as trace_mod
from translab.config import CallConfig
from translab.conversation import protocol as p
from translab.conversation.legs import (
    EDGE_LEAD_S, clocked_sink, gaps, leg_rng, play_time_of, played_ms, release_position, released_frames, rtp_leg, timeline,
    ws_leg,
)
from translab.conversation.marks import MarkBook
from translab.conversation.model import Emitted, ModelParams, RealtimeModel, ReplyPacing, ThinkTime, TurnRecord
from translab.conversation.script import Script, build_script
from translab.errors import ConfigError, check_choice, check_range
from translab.link.profiles import load_profile
from translab.media.audio import resample
from translab.media.stream import encode_stream
from translab.media.vad import VadParams
from translab.playout import PlayoutResult, play
from translab.playout.stats import PLAYED_KINDS

TOPOLOGIES = ("direct-ws", "webrtc-gateway", "twilio")
WER_PAD_S = (0.15, 0.25)
"""Audio recognised per turn: from this long before the turn's start to this long after its end (s)."""
EDGE_PLAYOUTS = ("adaptive", "aiortc-stock")
"""The jitter buffer where the caller's RTP leg ends (the webrtc-gateway, twilio's carrier):
translab's NetEq-like one, or aiortc 1.16's own receiver (what an edge built on aiortc plays
from: ``track.recv()``; the live edges are)."""
DEFAULT_ACCESS = {"direct-ws": "broadband", "webrtc-gateway": "broadband", "twilio": "pstn-bridge"}


@dataclass(frozen=True)
class ConversationConfig:
    """One simulated conversation. Times in ms unless named _s."""

    topology: str = "direct-ws"
    profile: str | None = None  # caller's access leg (None: broadband; pstn-bridge for twilio)
    dc_profile: str = "colocated"  # every datacenter leg (gateway/Twilio/bridge to model)
    turns: int = 4
    bargein_every: int = 0  # the caller interrupts the reply to every k-th turn (0: never)
    caller_clips: tuple[str, ...] = ("slt-weather", "awb-directions")
    agent_clip: str = "rms-order"
    think: ThinkTime = ThinkTime()
    pacing: ReplyPacing = ReplyPacing()
    vad: VadParams = VadParams()
    frame_ms: float = 20.0  # the caller's uplink frames
    flush: bool = True  # barge-in handling on the listener's side (flush / clear / stop sending)
    edge_playout: str = "adaptive"  # the jitter buffer where the caller's RTP leg ends (gateway, carrier); live: aiortc-stock
    wer: bool = False  # recognise what the model received (needs translab[asr])
    metrics: tuple[str, ...] = ()  # quality of both directions (translab.metrics.quality names)
    seed: int = 7

    def resolved(self) -> "ConversationConfig":
        check_choice("topology", self.topology, TOPOLOGIES)
        check_range("turns", self.turns, 1, 200)
        check_range("bargein_every", self.bargein_every, 0, 200)
        check_range("seed", self.seed, 0, 2**63 - 1)
        check_choice("frame_ms", self.frame_ms, (10, 20, 40, 60) if self.topology != "twilio" else (20,))
        check_choice("edge_playout", self.edge_playout, EDGE_PLAYOUTS)
        prof = self.profile or DEFAULT_ACCESS[self.topology]
        load_profile(prof)
        load_profile(self.dc_profile)
        from translab.config import METRICS

        for m in self.metrics:
            check_choice("metrics", m, METRICS)
        if not self.caller_clips:
            raise ConfigError("caller_clips", "()", "at least one clip name")
        return ConversationConfig(**{**_fields(self), "profile": prof})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["caller_clips"] = list(self.caller_clips)
        return d


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, values not copied (unlike dataclasses.asdict)."""
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}


@dataclass
class TurnResult:
    """One caller turn's figures (ms; NaN where it does not apply)."""

    turn: int
    start_s: float
    end_s: float
    text: str
    turn_latency_ms: float = math.nan
    uplink_ms: float = math.nan
    vad_ms: float = math.nan
    think_ms: float = math.nan
    downlink_ms: float = math.nan
    vad_tail_ms: float = math.nan  # the VAD's audio_end_ms minus the true end in the model's input
    interrupts: bool = False  # this turn was scripted to barge into the previous reply
    bargein_stop_ms: float = math.nan
    agent_after_ms: float = math.nan
    truncate_audio_end_ms: float = math.nan
    reply_ms: float = math.nan
    reply_heard_ms: float = math.nan
    underruns: int = 0
    underrun_ms: float = 0.0
    wer: float = math.nan
    wer_clean: float = math.nan
    heard_text: str = ""


@dataclass
class ConversationResult:
    """The per-turn table, the call's summary row, and what the model received."""

    turns: pd.DataFrame
    summary: dict[str, Any]
    model: RealtimeModel
    emitted: list[Emitted]
    wall_s: float = math.nan
    figures: dict[str, Any] = field(default_factory=dict)  # a live engine's own figures (emulator, host)
    live: Any = None  # a live run's raw logs (translab.conversation.live.LiveRun)
    bridge_truncates: list[tuple[float, p.ItemTruncate]] = field(default_factory=list)  # twilio's bridge: (s, truncate)


# --- uplink ---------------------------------------------------------------------------------------


@dataclass
class Uplink:
    """The model's input: appends with their arrival times, and the map from the caller's clock to
    the model's input buffer (``position``: s of the buffer holding caller instant m) and to the time
    that audio reached the model (``arrival_at``)."""

    appends: list[tuple[float, bytes]]
    input_format: p.AudioFormat
    frame_s: float
    position: Any  # Callable[[float], float]
    caller_leg: Any = None  # RtpLeg of the caller's access leg, if any

    def arrival_at(self, position_s: float) -> float:
        j = max(0, int(math.ceil(position_s / self.frame_s - 1e-9)) - 1)
        return self.appends[min(j, len(self.appends) - 1)][0] if j < len(self.appends) else math.nan


def _ws_call(rate: int, codec: str, framing: str, frame_ms: float) -> CallConfig:
    return CallConfig(transport="websocket", codec=codec, sample_rate=rate, frame_ms=frame_ms, framing=framing,
                      metrics=()).resolved()


def _uplink(cfg: ConversationConfig, script: Script) -> Uplink:
    seed, access, dc = cfg.seed, str(cfg.profile), cfg.dc_profile
    if cfg.topology == "direct-ws":
        stream = encode_stream(script.caller_audio(24000), _ws_call(24000, "pcm16", "realtime-json", cfg.frame_ms))
        arr = ws_leg(stream.capture_s, stream.message_bytes, access, "up", True, seed, "caller-ws")
        return Uplink(list(zip(arr.tolist(), stream.payload)), p.AudioFormat(), cfg.frame_ms / 1000, lambda m: m)
    if cfg.topology == "webrtc-gateway":
        leg = rtp_leg(script.caller_audio(48000), CallConfig(transport="webrtc", frame_ms=cfg.frame_ms, metrics=()),
                      access, "up", seed, "caller-rtp", playout=cfg.edge_playout)
        if cfg.edge_playout == "aiortc-stock":  # an aiortc gateway forwards each frame aiortc hands it, at once
            rel, slots, audio = released_frames(leg)
            stream = encode_stream(resample(audio, 48000, 24000), _ws_call(24000, "pcm16", "realtime-json", cfg.frame_ms))
            n = min(len(rel), len(stream.payload))
            arr = ws_leg(np.array(rel[:n]), stream.message_bytes[:n], dc, "up", True, seed, "gateway-ws")
            return Uplink(list(zip(arr.tolist(), stream.payload[:n])), p.AudioFormat(), cfg.frame_ms / 1000,
                          release_position(slots, cfg.frame_ms / 1000), leg)
        out = resample(timeline(leg.playout, script.duration_s + 1.0), 48000, 24000)
        stream = encode_stream(out, _ws_call(24000, "pcm16", "realtime-json", 20))
        arr = ws_leg(stream.capture_s, stream.message_bytes, dc, "up", True, seed, "gateway-ws")
        return Uplink(list(zip(arr.tolist(), stream.payload)), p.AudioFormat(), 0.020,
                      lambda m: play_time_of(leg.playout.frames, 48000, leg.frame_n, m), leg)
    leg = rtp_leg(script.caller_audio(8000), _ws_call(8000, "pcmu", "twilio-json", 20), access, "up", seed, "pstn",
                  playout=cfg.edge_playout)
    if cfg.edge_playout == "aiortc-stock":  # the carrier's clock ticks on its own (the call grid), not from the first frame
        play_s, slots, sink = clocked_sink(leg)
        n_out = int(np.ceil((script.duration_s + 1.0) * 8000))
        out = np.concatenate([sink, np.zeros(max(0, n_out - len(sink)), np.float32)])[:n_out]
        position = release_position(slots, 0.020, play_s)
    else:
        out = timeline(leg.playout, script.duration_s + 1.0)
        position = lambda m: play_time_of(leg.playout.frames, 8000, leg.frame_n, m)  # noqa: E731
    stream = encode_stream(out, _ws_call(8000, "pcmu", "twilio-json", 20))
    a1 = ws_leg(stream.capture_s, stream.message_bytes, dc, "up", True, seed, "twilio-ws")
    sizes = np.array([len(p.encode(p.InputAudioAppend(x))) for x in stream.payload])
    a2 = ws_leg(a1, sizes, dc, "up", True, seed, "bridge-ws")
    return Uplink(list(zip(a2.tolist(), stream.payload)), p.AudioFormat("audio/pcmu", 8000), 0.020, position, leg)


def run_model(cfg: ConversationConfig, script: Script, up: Uplink) -> tuple[RealtimeModel, list[Emitted]]:
    """Feed the uplink's appends to a fresh stand-in in arrival order; every event it sends."""
    model = RealtimeModel([r[0] for r in script.replies], leg_rng(cfg.seed, "think"),
                          ModelParams(think=cfg.think, pacing=cfg.pacing))
    td = p.TurnDetection(cfg.vad.threshold, int(cfg.vad.prefix_padding_ms), int(cfg.vad.silence_duration_ms))
    out = model.receive(p.SessionUpdate(up.input_format, up.input_format, td), 0.0)
    for t, payload in up.appends:
        out += model.due(t)
        out += model.receive(p.InputAudioAppend(payload), t)
    out += model.due(math.inf)
    return model, out


# --- downlink -------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One response as the listener's side of the last WebSocket hop saw and played it (call clock).
    ``start_s``/``stop_s``: first and last agent sample played there (``stop_s`` cut by a flush);
    ``flush_s``: when the interrupt (speech_started or clear) arrived there (inf: never)."""

    response_id: str
    playout: PlayoutResult | None
    start_s: float
    stop_s: float
    flush_s: float
    played_ms: float  # reply audio played there until stop_s
    gaps: tuple[int, float]


def _reply_trace(deltas: list[tuple[float, float, bytes]], fmt: p.AudioFormat, chunk_ms: float) -> pd.DataFrame:
    """A response's deltas (sent, arrived, audio) as an arrival trace for a receiver."""
    n = len(deltas)
    codec = "pcmu" if fmt.type == "audio/pcmu" else "pcm16"
    per = int(round(chunk_ms * fmt.rate / 1000))
    sent = np.array([d[0] for d in deltas])
    cap = sent[0] + (np.arange(n) + 1) * chunk_ms / 1000
    rows = {
        "seq": np.arange(n), "media_ts": np.arange(n) * per, "frame_samples": np.full(n, per),
        "capture_s": cap, "send_s": sent, "arrival_s": np.array([d[1] for d in deltas]),
        "payload_bytes": [len(d[2]) for d in deltas], "message_bytes": [len(d[2]) for d in deltas],
        "wire_bytes": [len(d[2]) for d in deltas], "transport": ["websocket"] * n, "direction": ["down"] * n,
        "fec": np.zeros(n, dtype=bool), "duplicates": np.zeros(n, dtype=np.int64), "payload": [d[2] for d in deltas],
    }
    return trace_mod.make_trace(rows, {"codec": codec, "sample_rate": fmt.rate, "channels": 1, "frame_ms": chunk_ms})


def _replies(events: list[tuple[Emitted, float]], fmt: p.AudioFormat, chunk_ms: float, flush: bool) -> list[Reply]:
    """Each response played from an elastic buffer at the last WebSocket hop, flushed on the first
    interrupt that arrives after it was created."""
    out: list[Reply] = []
    created = [(e.at_s, e.event.response_id) for e, _ in events if isinstance(e.event, p.ResponseCreated)]
    interrupts = [(e.at_s, a) for e, a in events if isinstance(e.event, (p.SpeechStarted, p.TwilioClear))]
    for at, rid in created:
        deltas = [(e.at_s, a, e.event.delta) for e, a in events
                  if isinstance(e.event, p.AudioDelta) and e.event.response_id == rid]
        flush_s = next((a for t, a in interrupts if t > at), math.inf) if flush else math.inf
        if not deltas:
            out.append(Reply(rid, None, math.nan, math.nan, flush_s, 0.0, (0, 0.0)))
            continue
        res = play(_reply_trace(deltas, fmt, chunk_ms), policy="elastic", conceal="zero")
        fr = res.frames
        dec = fr[fr["kind"].isin(PLAYED_KINDS)]
        start = float(dec["play_s"].iloc[0])
        end = float(dec["play_s"].iloc[-1] + dec["samples"].iloc[-1] / fmt.rate)
        stop = min(end, flush_s) if flush_s > start else start
        played = float(np.clip((stop - dec["play_s"].to_numpy()) * fmt.rate, 0, dec["samples"].to_numpy()).sum())
        out.append(Reply(rid, res, start, stop, flush_s, 1000.0 * played / fmt.rate, gaps(fr, fmt.rate, start, stop)))
    return out


@dataclass
class Downlink:
    """What the caller heard of each response: ``heard_s`` / ``stop_s`` at the ear and the gaps there
    (the edge's own stalls included)."""

    replies: dict[str, Reply]
    heard_s: dict[str, float]
    stop_s: dict[str, float]
    gaps: dict[str, tuple[int, float]]
    caller_leg: Any = None
    bridge_truncates: list[tuple[float, p.ItemTruncate]] = field(default_factory=list)  # twilio: (sent s, truncate)


def client_downlink(events: list[tuple[Emitted, float]], fmt: p.AudioFormat, chunk_ms: float, flush: bool) -> Downlink:
    """What a WebSocket caller heard: the model's events (sent, arrived at the caller) played from
    the client's elastic buffer, flushed on ``speech_started`` (direct-ws, simulated or live)."""
    reps = _replies(events, fmt, chunk_ms, flush)
    return Downlink({r.response_id: r for r in reps}, {r.response_id: r.start_s for r in reps},
                    {r.response_id: r.stop_s for r in reps}, {r.response_id: r.gaps for r in reps})


def truncate_for(received: list[tuple[float, p.RealtimeEvent]], t: float, fmt: p.AudioFormat,
                 chunk_ms: float) -> p.ItemTruncate | None:
    """On a ``speech_started`` that arrived at ``t`` (``received``: the model's events so far with
    their arrival, s): the truncate of the reply the listener's elastic buffer was playing then
    (what it had played, ms, by the same playout the analysis uses), or None when none was."""
    events = [(Emitted(a, e), a) for a, e in received]
    down = client_downlink(events, fmt, chunk_ms, True)
    for rid, rep in down.replies.items():
        if rep.flush_s == t and rep.start_s < t <= rep.stop_s + 1e-9 and rep.played_ms > 0:
            item = next(e.item_id for _, e in received if isinstance(e, p.AudioDelta) and e.response_id == rid)
            return p.ItemTruncate(item, int(math.floor(rep.played_ms)))
    return None


def _downlink(cfg: ConversationConfig, script: Script, emitted: list[Emitted], fmt: p.AudioFormat) -> Downlink:
    seed, access, dc = cfg.seed, str(cfg.profile), cfg.dc_profile
    send = np.array([e.at_s for e in emitted])
    sizes = np.array([len(p.encode(e.event)) for e in emitted])
    chunk = cfg.pacing.chunk_ms
    if cfg.topology == "direct-ws":
        arr = ws_leg(send, sizes, access, "down", False, seed, "caller-ws")
        return client_downlink(list(zip(emitted, arr.tolist())), fmt, chunk, cfg.flush)
    if cfg.topology == "webrtc-gateway":
        arr = ws_leg(send, sizes, dc, "down", False, seed, "gateway-ws")
        events = list(zip(emitted, arr.tolist()))
        edge_rate, call = 24000, CallConfig(transport="webrtc", frame_ms=20, metrics=()).resolved()
    else:
        a1 = ws_leg(send, sizes, dc, "down", False, seed, "bridge-ws")
        fwd: list[Emitted] = []  # what the bridge sends Twilio, when
        book = MarkBook(fmt.rate)
        for e, a in zip(emitted, a1.tolist()):
            if isinstance(e.event, p.AudioDelta):
                fwd.append(Emitted(a, e.event))  # forwarded as a media message (sized below)
                fwd.append(Emitted(a, book.after_media(e.event)))  # type: ignore[arg-type]
            elif isinstance(e.event, p.SpeechStarted) and cfg.flush:
                fwd.append(Emitted(a, p.TwilioClear()))  # type: ignore[arg-type]
            elif isinstance(e.event, p.ResponseCreated):
                fwd.append(Emitted(a, e.event))  # not sent; marks where a response begins
        wire = [e for e in fwd if not isinstance(e.event, p.ResponseCreated)]
        sz = np.array([len(p.encode(p.TwilioMedia(e.event.delta))) if isinstance(e.event, p.AudioDelta)
                       else len(p.encode(e.event)) for e in wire])
        a2 = iter(ws_leg(np.array([e.at_s for e in wire]), sz, dc, "down", False, seed, "twilio-ws").tolist())
        events = [(e, e.at_s if isinstance(e.event, p.ResponseCreated) else next(a2)) for e in fwd]
        edge_rate, call = 8000, _ws_call(8000, "pcmu", "twilio-json", 20)
    reps = _replies(events, fmt, chunk, cfg.flush)
    truncates = _bridge_truncates(cfg, emitted, a1.tolist(), events, reps, fmt) if cfg.topology == "twilio" else []
    length = max([script.duration_s] + [r.stop_s for r in reps if r.playout is not None]) + 1.0
    edge = np.zeros(int(np.ceil(length * edge_rate)), dtype=np.float32)
    for r in reps:
        if r.playout is not None:
            edge += timeline(r.playout, length, r.stop_s)[: len(edge)]
    # the edge reads its buffer EDGE_LEAD_S before each send tick: its stream is its timeline that late
    edge = np.concatenate([np.zeros(int(round(EDGE_LEAD_S * edge_rate)), np.float32), edge])
    sender_audio = resample(edge, 24000, 48000) if call.codec == "opus" else edge
    down = edge_downlink(reps, rtp_leg(sender_audio, call, access, "down", seed, "caller-down"))
    down.bridge_truncates = truncates
    return down


def _bridge_truncates(cfg: ConversationConfig, emitted: list[Emitted], at_bridge: list[float],
                      events: list[tuple[Emitted, float]], reps: list[Reply],
                      fmt: p.AudioFormat) -> list[tuple[float, p.ItemTruncate]]:
    """The twilio bridge's truncates (translab.conversation.marks): Twilio echoes each mark when the
    reply audio before it has played from its elastic buffer (not after a clear), the echo crosses
    the twilio-ws uplink (its own draws: the simulation's uplink ran before the model, open loop),
    and the bridge replays the model's events (``at_bridge``: their arrival, s) and the echoes in
    time order."""
    played = {r.response_id: r for r in reps}
    per = int(round(cfg.pacing.chunk_ms * fmt.rate / 1000))
    echo_at: list[tuple[float, p.TwilioMark]] = []
    index: dict[str, int] = {}
    for e, a in events:  # a: arrival at Twilio
        if isinstance(e.event, p.AudioDelta):
            rid = e.event.response_id
            j = index[rid] = index.get(rid, -1) + 1
        elif isinstance(e.event, p.TwilioMark):
            rep = played.get(rid)
            if rep is None or rep.playout is None:
                continue
            f = rep.playout.frames
            f = f[(f["media_ts"] == j * per) & f["kind"].isin(PLAYED_KINDS)]
            if f.empty:
                continue
            end = float((f["play_s"] + f["samples"] / fmt.rate).max())
            if end <= rep.stop_s + 1e-9:  # played before any clear
                echo_at.append((max(a, end), e.event))
    sizes = np.array([len(p.encode(p.TwilioMark(m.name, sequence_number=i + 1))) for i, (_, m) in enumerate(echo_at)])
    back = ws_leg(np.array([t for t, _ in echo_at]), sizes, cfg.dc_profile, "up", True, cfg.seed,
                  "twilio-ws:echo").tolist() if echo_at else []
    timeline: list[tuple[float, int, Any]] = [(a, 0, e.event) for e, a in zip(emitted, at_bridge)]
    timeline += [(b, 1, m) for b, (_, m) in zip(back, echo_at)]
    book, out = MarkBook(fmt.rate), []
    for t, _, ev in sorted(timeline, key=lambda x: (x[0], x[1])):
        if isinstance(ev, p.AudioDelta):
            book.after_media(ev)
        elif isinstance(ev, p.TwilioMark):
            book.echoed(ev)
        elif isinstance(ev, p.SpeechStarted) and cfg.flush:
            trunc = book.truncate()
            if trunc is not None:
                out.append((t, trunc))
    return out


def edge_downlink(reps: list[Reply], leg: Any) -> Downlink:
    """What the caller heard when an edge (gateway, Twilio) played the replies ``reps`` into an RTP
    leg to the caller (``leg``: its RtpLeg, simulated or live): each reply's first and last sample
    mapped through the caller's receiver (the edge's instant t is media instant t + EDGE_LEAD_S of
    its stream), and the gaps at the edge and at the ear."""
    rate = int(leg.playout.sample_rate)
    heard, stop, gp = {}, {}, {}
    for r in reps:
        if r.playout is None:
            heard[r.response_id] = stop[r.response_id] = math.nan
            gp[r.response_id] = (0, 0.0)
            continue
        h = play_time_of(leg.playout.frames, rate, leg.frame_n, r.start_s + EDGE_LEAD_S)
        s = play_time_of(leg.playout.frames, rate, leg.frame_n, r.stop_s + EDGE_LEAD_S - 1e-6)
        heard[r.response_id], stop[r.response_id] = h, s
        g_ear = gaps(leg.playout.frames, rate, h, s) if s > h else (0, 0.0)
        gp[r.response_id] = (r.gaps[0] + g_ear[0], r.gaps[1] + g_ear[1])
    return Downlink({r.response_id: r for r in reps}, heard, stop, gp, leg)


# --- the conversation -----------------------------------------------------------------------------


def _match_turns(script: Script, up: Uplink, turns: list[TurnRecord]) -> list[Any]:
    """For each scripted turn, the model's turn that ended it (the first stop decided after the
    caller's end reached the model, covering that turn's audio), or None."""
    out = []
    used: set[int] = set()
    for t in script.turns:
        pos_start, pos_end = up.position(t.start_s), up.position(t.end_s)
        arrived = up.arrival_at(pos_end)
        best = None
        for i, mt in enumerate(turns):
            if i in used or not math.isfinite(mt.stopped_at_s):
                continue
            if mt.audio_end_ms / 1000 >= pos_start and mt.stopped_at_s >= arrived - 1e-9:
                best = i
                break
        if best is not None:
            used.add(best)
        out.append(turns[best] if best is not None else None)
    return out


def _percentile(values: list[float], q: float) -> float:
    v = [x for x in values if math.isfinite(x)]
    return float(np.percentile(v, q)) if v else math.nan


def expected_first_audio_s(cfg: ConversationConfig) -> float:
    """What the open-loop script assumes for end of speech -> first agent audio (s): the VAD's
    silence + 100 ms, the median think time and 300 ms for the path."""
    return (cfg.vad.silence_duration_ms + 100 + cfg.think.median_ms) / 1000 + 0.3


def converse(cfg: ConversationConfig | None = None) -> ConversationResult:
    """Simulate one conversation; the same config (and seed) gives identical figures."""
    t0 = time.perf_counter()
    cfg = (cfg or ConversationConfig()).resolved()
    script = build_script(cfg.turns, cfg.caller_clips, cfg.agent_clip, bargein_every=cfg.bargein_every,
                          expected_first_audio_s=expected_first_audio_s(cfg))
    up = _uplink(cfg, script)
    model, emitted = run_model(cfg, script, up)
    down = _downlink(cfg, script, emitted, up.input_format)
    return analyse(cfg, script, up, model, model.turns, emitted, down, t0)


def analyse(cfg: ConversationConfig, script: Script, up: Uplink, model: RealtimeModel, turns: list[TurnRecord],
            emitted: list[Emitted], down: Downlink, t0: float, mode: str = "simulate") -> ConversationResult:
    """The per-turn table and the call's summary from what the legs carried, simulated or live
    (``turns``: the model's turns with ``stopped_at_s`` = when speech_stopped left the model and
    ``first_audio_s`` = when the reply's first delta did; ``t0``: perf_counter at the start)."""
    matched = _match_turns(script, up, turns)
    rows: list[TurnResult] = []
    for st, mt in zip(script.turns, matched):
        r = TurnResult(st.index, st.start_s, st.end_s, st.text, interrupts=st.interrupts)
        if mt is not None and mt.response_id:
            arrived = up.arrival_at(up.position(st.end_s))
            heard = down.heard_s.get(mt.response_id, math.nan)
            r.uplink_ms = 1000 * (arrived - st.end_s)
            r.vad_ms = 1000 * (mt.stopped_at_s - arrived)
            r.vad_tail_ms = mt.audio_end_ms - 1000 * up.position(st.end_s)
            r.think_ms = 1000 * (mt.first_audio_s - mt.stopped_at_s)
            r.downlink_ms = 1000 * (heard - mt.first_audio_s)
            r.turn_latency_ms = 1000 * (heard - st.end_s)
            rep = down.replies.get(mt.response_id)
            r.reply_ms = mt.reply_ms
            r.reply_heard_ms = rep.played_ms if rep else math.nan
            r.underruns, r.underrun_ms = down.gaps.get(mt.response_id, (0, 0.0))
        rows.append(r)
    # barge-in: turn i interrupts the reply to turn i-1
    for i, r in enumerate(rows):
        if not r.interrupts or i == 0 or matched[i - 1] is None:
            continue
        rid = matched[i - 1].response_id
        heard, stop = down.heard_s.get(rid, math.nan), down.stop_s.get(rid, math.nan)
        onset = r.start_s
        if math.isfinite(heard) and heard <= onset < stop + 1e-9:
            r.bargein_stop_ms = 1000 * (stop - onset)
            rep = down.replies[rid]
            ear = down.caller_leg.playout if down.caller_leg is not None else rep.playout
            assert ear is not None  # the reply was heard, so it was played
            r.agent_after_ms = played_ms(ear.frames, ear.sample_rate, onset, stop)
        rep = down.replies.get(rid)
        if rep is not None and math.isfinite(rep.flush_s):
            rows[i - 1].truncate_audio_end_ms = rep.played_ms
    if cfg.wer:
        _add_wer(cfg, script, up, model, rows)
    df = pd.DataFrame([asdict(r) for r in rows])
    summary = _summary(cfg, rows, model, script.duration_s)
    summary["mode"] = mode
    if cfg.metrics:
        summary.update(_quality(cfg, script, up, model, down))
    return ConversationResult(df, summary, model, emitted, time.perf_counter() - t0,
                              bridge_truncates=list(down.bridge_truncates))


def _add_wer(cfg: ConversationConfig, script: Script, up: Uplink, model: RealtimeModel, rows: list[TurnResult]) -> None:
    """Recognise each turn in what the model received and, as the baseline, in the caller's clean
    signal cut the same way (same window length, same rate), so only the path differs."""
    from translab.metrics.asr import recognise, wer

    rate = up.input_format.rate
    heard = np.concatenate(model.received_audio) if model.received_audio else np.zeros(0, np.float32)
    clean = script.caller_audio(rate)
    for st, r in zip(script.turns, rows):
        a, b = up.position(st.start_s) - WER_PAD_S[0], up.position(st.end_s) + WER_PAD_S[1]
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        r.heard_text = recognise(heard[max(0, int(a * rate)):int(b * rate)], rate)
        r.wer = wer(st.text, r.heard_text)
        n = int(b * rate) - max(0, int(a * rate))
        c0 = max(0, int((st.start_s - WER_PAD_S[0]) * rate))
        r.wer_clean = wer(st.text, recognise(clean[c0:c0 + n], rate))


def _quality(cfg: ConversationConfig, script: Script, up: Uplink, model: RealtimeModel,
             down: Downlink) -> dict[str, Any]:
    """Quality of both directions with the lab's metrics: ``up_<metric>``: what the model received
    against the caller's signal (intrusive metrics aligned as in one-way calls); ``down_plcmos``:
    PLCMOS (non-intrusive) of the agent's speech as played at the caller's ear, replies joined."""
    from translab.metrics.quality import quality

    rate = up.input_format.rate
    heard = np.concatenate(model.received_audio) if model.received_audio else np.zeros(0, np.float32)
    out: dict[str, Any] = {f"up_{k}": v for k, v in quality(script.caller_audio(rate), heard, rate,
                                                            metrics=cfg.metrics).items()}
    if "plcmos" in cfg.metrics:
        parts = []
        for rid, rep in down.replies.items():
            h, stop = down.heard_s.get(rid, math.nan), down.stop_s.get(rid, math.nan)
            res = down.caller_leg.playout if down.caller_leg is not None else rep.playout
            if res is None or not (math.isfinite(h) and math.isfinite(stop)) or stop <= h:
                continue
            a, b = int((h - res.start_s) * res.sample_rate), int((stop - res.start_s) * res.sample_rate)
            parts.append(res.audio[max(0, a):b])
            ear_rate = res.sample_rate
        if parts:
            out["down_plcmos"] = quality(np.zeros(1), np.concatenate(parts), ear_rate, metrics=("plcmos",))["plcmos"]
    return out


def _summary(cfg: ConversationConfig, rows: list[TurnResult], model: RealtimeModel, duration_s: float) -> dict[str, Any]:
    lat = [r.turn_latency_ms for r in rows]
    stops = [r.bargein_stop_ms for r in rows]
    s: dict[str, Any] = {
        "mode": "simulate",
        "topology": cfg.topology,
        "profile": cfg.profile,
        "dc_profile": cfg.dc_profile,
        "seed": cfg.seed,
        "duration_s": duration_s,
        "turns": len(rows),
        "turns_answered": int(sum(math.isfinite(x) for x in lat)),
        "vad_turns": len(model.turns),
        "turn_latency_p50_ms": _percentile(lat, 50),
        "turn_latency_p95_ms": _percentile(lat, 95),
    }
    for part in ("uplink", "vad", "think", "downlink"):
        s[f"{part}_p50_ms"] = _percentile([getattr(r, f"{part}_ms") for r in rows], 50)
    # means over the answered turns: the parts add up exactly to the mean turn latency
    answered = [r for r in rows if math.isfinite(r.turn_latency_ms)]
    s["turn_latency_mean_ms"] = float(np.mean([r.turn_latency_ms for r in answered])) if answered else math.nan
    for part in ("uplink", "vad", "think", "downlink"):
        s[f"{part}_mean_ms"] = float(np.mean([getattr(r, f"{part}_ms") for r in answered])) if answered else math.nan
    s.update({
        "bargeins": int(sum(r.interrupts for r in rows)),
        "bargein_stop_p50_ms": _percentile(stops, 50),
        "bargein_stop_p95_ms": _percentile(stops, 95),
        "agent_after_p50_ms": _percentile([r.agent_after_ms for r in rows], 50),
        "underruns": int(sum(r.underruns for r in rows)),
        "underrun_ms": float(sum(r.underrun_ms for r in rows)),
        "wer": float(np.nanmean([r.wer for r in rows])) if cfg.wer else math.nan,
        "wer_clean": float(np.nanmean([r.wer_clean for r in rows])) if cfg.wer else math.nan,
        "pacing": cfg.pacing.mode,
        "lead_ms": cfg.pacing.lead_ms,
        "think_median_ms": cfg.think.median_ms,
        "flush": cfg.flush,
    })
    return s
