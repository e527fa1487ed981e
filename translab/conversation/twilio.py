"""A live twilio conversation: the caller is an aiortc peer on a PSTN-like leg (G.711 mu-law, 20 ms,
PCMU RTP through the emulator's UDP links on the access profile, pstn-bridge by default); the
carrier / Twilio edge is an aiortc answerer in the same process that plays the caller's audio
from aiortc's own receiver (the carrier's jitter buffer) into a steady sink on its own 20 ms clock
(ticking on the call grid: the PSTN is clocked) and streams it as
Twilio Media Streams ``media`` messages (twilio-json, 20 ms) over a WebSocket (datacenter profile)
to a bridge; the bridge forwards each as a realtime-json ``input_audio_buffer.append`` (session
``audio/pcmu`` both ways, as Twilio bridges configure it) over another WebSocket (datacenter
profile) to :class:`~translab.conversation.server.ModelServer`. Replies come back the same way:
the bridge turns each delta into a ``media`` message and ``speech_started`` into ``clear``; the
Twilio edge plays media from an elastic buffer (flushed by ``clear``) into PCMU RTP to the caller,
whose RTP arrivals translab's adaptive jitter buffer plays after the call. RTP times are the wire's,
as for the gateway (translab.conversation.rtp_wire); the model runs in its own process.

The simulation of the same config with ``edge_playout = "aiortc-stock"`` models every step, with
the same generators on every leg (pstn, caller-down, twilio-ws, bridge-ws).
"""

from __future__ import annotations

import asyncio
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from translab.conversation import protocol as p
from translab.conversation.gateway import (
    FRAME_S, Edge, EdgeLog, SinkTimeline, caller_leg_track, connect_edge, edge_wire, end_call, make_edge_track,
    reply_stream, sink_vs_model,
)
from translab.conversation.legs import RtpLeg, clocked_sink, leg_rng, ws_model
from translab.conversation.marks import MarkBook
from translab.conversation.model import Emitted, ModelParams
from translab.conversation.script import Script
from translab.conversation.server import Session
from translab.conversation.server_process import ModelProcess
from translab.emulate.scheduler import now
from translab.media.audio import to_int16
from translab.media.framing import encode_message
from translab.media.g711 import ulaw_decode, ulaw_encode
from translab.media.stream import encode_stream

PCMU = p.AudioFormat("audio/pcmu", 8000)


@dataclass
class BridgeLog:
    """What the bridge did: the model's events with their arrival (s), and what it sent Twilio
    (send s, the model event it came from: an AudioDelta for a media message, TwilioMark (one after
    each media message, translab.conversation.marks), TwilioClear; a ResponseCreated marks where a
    response begins and is not sent), the marks Twilio echoed and the truncates sent to the model."""

    received: list[tuple[float, p.RealtimeEvent]] = field(default_factory=list)
    forwarded: list[Emitted] = field(default_factory=list)
    echoes: list[tuple[float, p.TwilioMark]] = field(default_factory=list)  # marks Twilio echoed (arrival s)
    truncates: list[tuple[float, p.ItemTruncate]] = field(default_factory=list)  # sent to the model (send s)


@dataclass
class TwilioRun:
    """The raw outcome of a live twilio conversation."""

    script: Script
    session: Session
    bridge: BridgeLog
    twilio: EdgeLog
    up_leg: RtpLeg
    down_leg: RtpLeg
    figures: dict[str, Any]

    def downlink_events(self) -> list[tuple[Emitted, float]]:
        """What reached the Twilio edge, as the simulation lists it: (the bridge's event at its send
        time, its arrival at Twilio; a response's start marker at the bridge's time)."""
        arrivals = iter(t for t, _ in self.twilio.received)
        return [(e, e.at_s if isinstance(e.event, p.ResponseCreated) else next(arrivals, math.nan))
                for e in self.bridge.forwarded]


def _relay(emu: Any, target: tuple[str, int], dc: str, seed: int, name: str) -> Any:
    from translab.emulate.tcp_relay import TcpRelay

    def setup_models() -> Any:
        u, d = ws_model(dc, "up", seed, name + ":setup"), ws_model(dc, "down", seed, name + ":setup")
        return u[0], u[1], d[0], d[1]

    return TcpRelay(emu.scheduler, target, setup_models, t0=emu.t0)


async def run_twilio(cfg: Any, script: Script, tail_s: float) -> TwilioRun:
    """The live twilio conversation of ``cfg`` (a resolved ConversationConfig)."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    from translab.conversation.simulate import _ws_call
    from translab.emulate.emulator import LiveEmulator
    from translab.emulate.realtime import LoopLagMonitor
    from translab.transport.webrtc import _sleep_until, new_peer

    seed, access, dc = cfg.seed, str(cfg.profile), cfg.dc_profile
    call = _ws_call(8000, "pcmu", "twilio-json", 20)
    up_stream = encode_stream(script.caller_audio(8000), call)
    emu = LiveEmulator(access, seed, rngs={"up": leg_rng(seed, "pstn"), "down": leg_rng(seed, "caller-down")})
    await emu.start()
    assert emu.scheduler is not None
    sched = emu.scheduler
    monitor = LoopLagMonitor()
    tw, br, edge = EdgeLog(), BridgeLog(), Edge(8000)
    loop = asyncio.get_running_loop()
    start: asyncio.Future[float] = loop.create_future()
    n_media = int(math.ceil((script.duration_s + 1.0) / FRAME_S))
    n_reply = int(math.ceil((script.duration_s + tail_s) / FRAME_S))
    caller, carrier = new_peer(), new_peer()
    figures: dict[str, Any] = {}
    tasks: list[asyncio.Task[Any]] = []
    td = p.TurnDetection(cfg.vad.threshold, int(cfg.vad.prefix_padding_ms), int(cfg.vad.silence_duration_ms))
    bridge_ready: asyncio.Future[None] = loop.create_future()
    relays: list[Any] = []

    async def bridge(twilio_ws: Any) -> None:
        """One Twilio media stream <-> one realtime session with the model."""
        model_ws = await connect(f"ws://localhost:{relays[1].address[1]}/", max_size=2**22, ping_interval=None,
                                 compression=None)
        await model_ws.send(p.encode(p.SessionUpdate(PCMU, PCMU, td)))
        bridge_ready.set_result(None)
        book = MarkBook(PCMU.rate)

        async def from_model() -> None:
            async for msg in model_ws:
                t = now() - t0_box[0]
                ev = p.decode_realtime(msg)
                br.received.append((t, ev))
                if isinstance(ev, p.AudioDelta):
                    br.forwarded.append(Emitted(now() - t0_box[0], ev))
                    await twilio_ws.send(p.encode(p.TwilioMedia(ev.delta)))
                    mark = book.after_media(ev)
                    br.forwarded.append(Emitted(now() - t0_box[0], mark))  # type: ignore[arg-type]
                    await twilio_ws.send(p.encode(mark))
                elif isinstance(ev, p.SpeechStarted) and cfg.flush:
                    br.forwarded.append(Emitted(now() - t0_box[0], p.TwilioClear()))  # type: ignore[arg-type]
                    await twilio_ws.send(p.encode(p.TwilioClear()))
                    trunc = book.truncate()
                    if trunc is not None:
                        br.truncates.append((now() - t0_box[0], trunc))
                        await model_ws.send(p.encode(trunc))
                elif isinstance(ev, p.ResponseCreated):
                    br.forwarded.append(Emitted(t, ev))

        task = asyncio.create_task(from_model())
        try:
            async for msg in twilio_ws:
                ev = p.decode_twilio(msg)
                if isinstance(ev, p.TwilioMedia):
                    await model_ws.send(p.encode(p.InputAudioAppend(ev.payload)))
                elif isinstance(ev, p.TwilioMark):
                    br.echoes.append((now() - t0_box[0], ev))
                    book.echoed(ev)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await model_ws.close()

    t0_box = [math.nan]
    try:
        async with ModelProcess([r[0] for r in script.replies], ModelParams(cfg.think, cfg.pacing), seed) as server, \
                serve(bridge, "127.0.0.1", 0, max_size=2**22, ping_interval=None, compression=None) as bridge_server:
            bport = bridge_server.sockets[0].getsockname()[1]
            relays[:] = [_relay(emu, ("127.0.0.1", bport), dc, seed, "twilio-ws"),
                         _relay(emu, (server.host, server.port), dc, seed, "bridge-ws")]
            for r in relays:
                await r.start()
            ws = await connect(f"ws://localhost:{relays[0].address[1]}/", max_size=2**22, ping_interval=None,
                               compression=None)
            await ws.send(p.encode(p.TwilioConnected()))
            await ws.send(p.encode(p.TwilioStart()))
            # the PSTN leg: PCMU RTP through the emulator's UDP links
            caller_track, up_wire = caller_leg_track(up_stream, start, emu.scheduler)

            def encode(x: np.ndarray) -> tuple[bytes, np.ndarray]:
                pcm = to_int16(x)
                return ulaw_encode(pcm), pcm.astype(np.float32) / 32768.0

            reply_track = make_edge_track(edge, tw, start, emu.scheduler, encode, 160, 8000, n_reply)
            link = await connect_edge(caller, carrier, caller_track, reply_track, emu, up_wire,
                                      edge_wire(n_reply, start), codec="pcmu")
            await asyncio.wait_for(asyncio.shield(bridge_ready), 10.0)
            await server.wait_received()
            await asyncio.sleep(0.1)
            for _ in range(100):  # both datacenter WebSockets' media phase on the simulation's models
                t0 = now() + 0.05
                ok = True
                for r, name in zip(relays, ("twilio-ws", "bridge-ws")):
                    u, d = ws_model(dc, "up", seed, name), ws_model(dc, "down", seed, name)
                    ok = ok and r.start_media(t0, u[0], u[1], "up") and r.start_media(t0, d[0], d[1], "down")
                if ok:
                    break
                await asyncio.sleep(0.02)
            else:
                raise RuntimeError("a datacenter relay kept set-up bytes in flight for 2 s")
            t0_box[0] = t0
            emu.set_media_origin(t0)
            server.set_origin(t0)
            monitor.since_s, monitor.until_s = t0, t0 + script.duration_s  # stalls that can move a turn
            start.set_result(t0)
            sink = SinkTimeline(8000, tw, origin_s=0.0)  # the carrier's clock: the call grid

            async def forward() -> None:  # Twilio streams the carrier's sink in 20 ms media messages
                for k in range(n_media):
                    await _sleep_until(t0 + (k + 1) * FRAME_S, emu.scheduler)
                    payload = ulaw_encode(to_int16(sink.take(k)))
                    await ws.send(encode_message("twilio-json", payload, k, k * 20))

            echo_tasks: set[asyncio.Task[Any]] = set()

            def echo(name: str, of_gen: int) -> None:  # the audio before the mark has played
                if of_gen == gen[0]:  # not dropped by a clear since
                    tw.echoed.append(name)
                    mark = p.TwilioMark(name, sequence_number=len(tw.echoed))
                    task = asyncio.ensure_future(ws.send(p.encode(mark)))
                    echo_tasks.add(task)
                    task.add_done_callback(echo_tasks.discard)

            gen = [0]

            async def from_bridge() -> None:  # media into the elastic buffer, clear flushes it
                async for msg in ws:
                    t = now() - t0
                    ev = p.decode_twilio(msg)
                    tw.received.append((t, ev))
                    if isinstance(ev, p.TwilioMedia):
                        edge.add(t, f"stream{gen[0]}", ulaw_decode(ev.payload).astype(np.float32) / 32768.0)
                    elif isinstance(ev, p.TwilioMark):
                        at = edge.queued_end_s(f"stream{gen[0]}", t)
                        sched.at(t0 + at, functools.partial(echo, ev.name, gen[0]))
                    elif isinstance(ev, p.TwilioClear):
                        edge.interrupt(t)
                        gen[0] += 1

            tasks = [asyncio.create_task(sink.consume(link.remote, t0)), asyncio.create_task(forward()),
                     asyncio.create_task(from_bridge())]
            await end_call(link, tasks, ws, t0 + script.duration_s + tail_s, emu.scheduler, figures)
            up_leg = link.leg("up", call, up_stream, t0, cfg.edge_playout)
            down_leg = link.leg("down", call, reply_stream(tw, call), t0, "adaptive")
            figures.update(sink_vs_model(clocked_sink(up_leg)[0], [ps for _, ps, _ in tw.sink]))
            for r in relays:
                await r.close()
    finally:
        for tk in tasks:
            tk.cancel()
        figures.update(await monitor.stop())
        await asyncio.gather(caller.close(), carrier.close(), return_exceptions=True)
        await emu.close()
    figures.update(emu.report())
    session = server.sessions[0]  # sent back when the model process stopped
    return TwilioRun(script, session, br, tw, up_leg, down_leg, figures)
