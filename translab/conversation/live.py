"""Live voice-agent conversations: real websockets (and aiortc: translab.conversation.gateway,
translab.conversation.twilio) through the in-process live emulator, in real time, analysed by
exactly the code that analyses a simulated one (:func:`translab.conversation.simulate.analyse`).

``direct-ws``: the scripted caller streams its microphone (realtime-json appends, PCM16 24 kHz, one
per ``frame_ms`` on absolute deadlines) through a TCP relay whose two directions run the access
profile's TCP delivery model (:mod:`translab.emulate.tcp_relay`) to
:class:`~translab.conversation.server.ModelServer`, which runs in a process of its own
(:mod:`translab.conversation.server_process`: its Silero scoring holds the GIL for 4-7 ms a chunk,
which on the call's event loop delayed every other party). From the call clock's zero both directions cross
the models a simulation of the same config computes with (:func:`translab.conversation.legs.ws_model`:
same chains, same seeded generators); set-up (TCP handshake, HTTP upgrade, ``session.update``)
crosses the emulator's own set-up models first.

The caller plays each reply from its client buffer (the same elastic playout as the simulation, on
the arrival times it logged) and on ``speech_started`` flushes it and sends
``conversation.item.truncate`` with ``audio_end_ms`` = the reply audio it had played by then.

One clock: the server's logs run on the caller's call clock (``ModelProcess.set_origin``), so a turn's
budget splits at real times: ``arrived`` (the append holding the caller's end reached the server),
``decided`` (speech_stopped left the server, after Silero scored the chunk), ``first_sent`` (the
reply's first delta left it), ``heard`` (its first sample played from the caller's buffer).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, TypeVar

from translab.call.live import run_outside_event_loop
from translab.conversation import protocol as p
from translab.conversation.legs import clocked_sink, release_position, released_frames, ws_model
from translab.conversation.model import Emitted, ModelParams, TurnRecord
from translab.conversation.script import Script, build_script
from translab.conversation.server import Session
from translab.conversation.server_process import ModelProcess
from translab.conversation.simulate import (
    ConversationConfig, ConversationResult, Uplink, _replies, _ws_call, analyse, client_downlink, edge_downlink,
    expected_first_audio_s, truncate_for,
)
from translab.emulate.scheduler import now
from translab.errors import ConfigError
from translab.media.stream import encode_stream

LIVE_TOPOLOGIES = ("direct-ws", "webrtc-gateway", "twilio")
START_DELAY_S = 0.05
"""From the media models' switch to the call clock's zero (s)."""
TAIL_S = 1.0
"""After the script's last frame, how long the caller keeps listening (s); then up to
``DRAIN_S`` more while a response is still open."""
DRAIN_S = 5.0


@dataclass
class CallerLog:
    """What the live caller saw: each server event with its arrival (s, call clock), and the
    truncates it sent (sent s, event)."""

    received: list[tuple[float, p.RealtimeEvent]] = field(default_factory=list)
    truncates: list[tuple[float, p.ItemTruncate]] = field(default_factory=list)


@dataclass
class LiveRun:
    """The raw outcome of a live conversation before analysis."""

    script: Script
    session: Session
    caller: CallerLog
    figures: dict[str, Any]


def as_sent(turns: list[TurnRecord], sent: list[Emitted]) -> list[TurnRecord]:
    """The model's turns with ``stopped_at_s`` / ``first_audio_s`` moved to when speech_stopped and
    the reply's first delta really left the server (``sent``: its log), as the budget splits there."""
    stopped = {e.event.item_id: e.at_s for e in reversed(sent) if isinstance(e.event, p.SpeechStopped)}
    first = {e.event.response_id: e.at_s for e in reversed(sent) if isinstance(e.event, p.AudioDelta)}
    return [replace(t, stopped_at_s=stopped.get(t.item_id, t.stopped_at_s),
                    first_audio_s=first.get(t.response_id, t.first_audio_s)) for t in turns]


async def _direct_ws(cfg: ConversationConfig, script: Script) -> LiveRun:
    from websockets.asyncio.client import connect

    from translab.emulate.emulator import LiveEmulator
    from translab.emulate.realtime import LoopLagMonitor
    from translab.transport.webrtc import _sleep_until

    access = str(cfg.profile)
    stream = encode_stream(script.caller_audio(24000), _ws_call(24000, "pcm16", "realtime-json", cfg.frame_ms))
    fmt, log = p.AudioFormat(), CallerLog()
    td = p.TurnDetection(cfg.vad.threshold, int(cfg.vad.prefix_padding_ms), int(cfg.vad.silence_duration_ms))
    emu = LiveEmulator(access, cfg.seed)
    await emu.start()
    assert emu.scheduler is not None
    monitor = LoopLagMonitor()
    figures: dict[str, Any] = {}
    try:
        async with ModelProcess([r[0] for r in script.replies], ModelParams(cfg.think, cfg.pacing), cfg.seed) as server:
            relay = await emu.tcp_relay((server.host, server.port))
            sock, _ = await relay.connect()
            async with connect(f"ws://localhost:{server.port}/", sock=sock, max_size=2**22,
                               ping_interval=None, compression=None) as ws:
                await ws.send(p.encode(p.SessionUpdate(turn_detection=td)))
                await server.wait_received()
                t0 = math.nan
                for _ in range(100):  # switch when the set-up bytes are all delivered
                    t0 = now() + START_DELAY_S
                    up, down = ws_model(access, "up", cfg.seed, "caller-ws"), ws_model(access, "down", cfg.seed, "caller-ws")
                    if relay.start_media(t0, up[0], up[1], "up"):
                        if relay.start_media(t0, down[0], down[1], "down"):
                            break
                    await asyncio.sleep(0.02)
                else:
                    raise RuntimeError("the relay kept set-up bytes in flight for 2 s")
                server.set_origin(t0)
                monitor.since_s, monitor.until_s = t0, t0 + script.duration_s  # stalls that can move a turn

                async def receive() -> None:
                    async for msg in ws:
                        t = now() - t0
                        ev = p.decode_realtime(msg)
                        log.received.append((t, ev))
                        if isinstance(ev, p.SpeechStarted) and cfg.flush:
                            trunc = truncate_for(log.received, t, fmt, cfg.pacing.chunk_ms)
                            if trunc is not None:
                                log.truncates.append((now() - t0, trunc))
                                await ws.send(p.encode(trunc))

                reader = asyncio.create_task(receive())
                for k in range(len(stream.seq)):
                    await _sleep_until(t0 + float(stream.capture_s[k]), emu.scheduler)
                    await ws.send(stream.message[k])
                await asyncio.sleep(TAIL_S)
                deadline = now() + DRAIN_S
                while now() < deadline and _open_responses(log):
                    await asyncio.sleep(0.05)
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
    finally:
        figures.update(await monitor.stop())
        await emu.close()
    figures.update(emu.report())
    session = server.sessions[0]  # sent back when the model process stopped
    return LiveRun(script, session, log, figures)


def _open_responses(log: CallerLog) -> bool:
    created = sum(isinstance(e, p.ResponseCreated) for _, e in log.received)
    return created > sum(isinstance(e, p.ResponseDone) for _, e in log.received)


T = TypeVar("T")


def _in_realtime(fn: Callable[[], T], rt: bool) -> T:
    from translab.emulate.realtime import RT_PRIORITY, realtime_mode

    def inner() -> T:
        with realtime_mode(rt_priority=RT_PRIORITY if rt else None) as state:
            out = fn()
        getattr(out, "figures").update(state)
        return out

    return run_outside_event_loop(inner)


def live_converse(cfg: ConversationConfig, realtime: bool = False) -> ConversationResult:
    """Run ``cfg`` live in real time through the in-process emulator (see the module docstring and
    translab.conversation.gateway); the same columns as
    :func:`translab.conversation.simulate.converse`, ``mode`` "live", and the engine's figures
    (emulator counters, release lateness, event-loop stalls) in ``figures``. The call runs in
    :func:`translab.emulate.realtime.realtime_mode` (short GIL switch interval, no cyclic GC) as
    live one-way calls do; ``realtime``: also SCHED_RR (root or CAP_SYS_NICE), so other busy
    processes cannot delay it by a scheduler time slice."""
    cfg = cfg.resolved()
    if cfg.topology not in LIVE_TOPOLOGIES:
        raise ConfigError("topology", cfg.topology,
                          ", ".join(LIVE_TOPOLOGIES))
    if cfg.topology != "direct-ws" and cfg.edge_playout != "aiortc-stock":
        raise ConfigError("edge_playout", cfg.edge_playout,
                          f"aiortc-stock for a live {cfg.topology} (the live edge plays aiortc's own track)")
    t_start = time.perf_counter()
    script = build_script(cfg.turns, cfg.caller_clips, cfg.agent_clip, bargein_every=cfg.bargein_every,
                          expected_first_audio_s=expected_first_audio_s(cfg))
    fmt = p.AudioFormat()
    if cfg.topology == "twilio":
        from translab.conversation.twilio import PCMU, run_twilio

        tr = _in_realtime(lambda: asyncio.run(run_twilio(cfg, script, TAIL_S + 2.0)), realtime)
        session, received, figures, truncates = tr.session, tr.bridge.received, tr.figures, tr.bridge.truncates
        play_s, slots, _ = clocked_sink(tr.up_leg)  # the carrier's sink, modelled on the live arrivals
        position: Any = release_position(slots, 0.020, play_s)
        frame_s, caller_leg, fmt = 0.020, tr.up_leg, PCMU
    elif cfg.topology == "webrtc-gateway":
        from translab.conversation.gateway import run_gateway

        g = _in_realtime(lambda: asyncio.run(run_gateway(cfg, script, TAIL_S + 2.0)), realtime)
        session, received, figures, truncates = g.session, g.gateway.received, g.figures, g.gateway.truncates
        leg = g.up_leg  # the gateway forwarded frames in aiortc's release order, modelled on the live arrivals
        frame_s, caller_leg = cfg.frame_ms / 1000, leg
        position = release_position(released_frames(leg)[1], frame_s)
    else:
        run = _in_realtime(lambda: asyncio.run(_direct_ws(cfg, script)), realtime)
        session, received, figures, truncates = run.session, run.caller.received, run.figures, run.caller.truncates
        position, frame_s, caller_leg = (lambda m: m), cfg.frame_ms / 1000, None
    appends = [(t, e.audio) for t, e in session.received if isinstance(e, p.InputAudioAppend)]
    up = Uplink(appends, fmt, frame_s, position, caller_leg)
    sent = list(session.sent)
    # one TCP stream: the listener's k-th event is the server's k-th
    kinds = [type(e.event) for e in sent[:len(received)]]
    if kinds != [type(e) for _, e in received[:len(kinds)]]:
        raise RuntimeError("the events received do not match what the server sent")
    events = [(e, a) for e, (a, _) in zip(sent, received)]
    if cfg.topology == "twilio":
        down = edge_downlink(_replies(tr.downlink_events(), fmt, cfg.pacing.chunk_ms, cfg.flush), tr.down_leg)
        down.bridge_truncates = list(tr.bridge.truncates)
    elif cfg.topology == "webrtc-gateway":
        down = edge_downlink(_replies(events, fmt, cfg.pacing.chunk_ms, cfg.flush), g.down_leg)
    else:
        down = client_downlink(events, fmt, cfg.pacing.chunk_ms, cfg.flush)
    model = session.model
    res = analyse(cfg, script, up, model, as_sent(model.turns, sent), sent, down, t_start, mode="live")
    res.figures = {**figures, "appends_sent": int(len(appends)), "truncates_sent": len(truncates),
                   "truncates_accepted": len(model.truncations),
                   "errors_received": sum(isinstance(e, p.ErrorEvent) for _, e in received)}
    res.live = tr if cfg.topology == "twilio" else g if cfg.topology == "webrtc-gateway" else run
    return res

