"""A live webrtc-gateway conversation: the caller is an aiortc peer sending translab's own Opus
packets through the emulator's UDP links (access profile); the gateway is an aiortc answerer in the
same process that reads the caller's audio from aiortc's own receiver (``track.recv()``: aiortc's
jitter buffer and libopus decoder) and forwards each frame as it comes, resampled to 24 kHz, as a
realtime-json append (as gateways built on aiortc do) over a WebSocket through a TCP relay on the datacenter profile to
:class:`~translab.conversation.server.ModelServer`; it plays the model's reply deltas into an
elastic buffer (each starts when it arrives or when the one before it ends), encodes that in 20 ms
Opus frames in real time and sends them back; on ``speech_started`` it stops sending the reply
(flush) and truncates it at what it had sent. The caller logs RTP arrivals; translab's adaptive
jitter buffer plays them after the call (the arrival-trace seam). Both RTP legs' times are the
wire's (translab.conversation.rtp_wire): each packet launched on the simulation's send grid (the
caller's capture times; the gateway's 20 ms ticks, its frame read EDGE_LEAD_S before), its arrival
the emulator's delivery to the receiving socket. The model runs in its own process
(translab.conversation.server_process).

The simulation of the same config with ``edge_playout = "aiortc-stock"`` models every step:
aiortc's receiver + sink at the gateway, the elastic reply buffer, the Opus leg back. Both legs'
media draw the simulation's generators (caller-rtp, caller-down, gateway-ws).
"""

from __future__ import annotations

import asyncio
import fractions
import math
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import numpy as np

from translab.call.live import leg_trace
from translab.config import CallConfig
from translab.conversation import protocol as p
from translab.conversation.legs import EDGE_LEAD_S, RtpLeg, leg_rng, released_frames, ws_model
from translab.conversation.model import ModelParams, StreamResampler, encode_output
from translab.conversation.rtp_wire import RtpWire
from translab.conversation.script import Script
from translab.conversation.server import Session
from translab.conversation.server_process import ModelProcess
from translab.emulate.scheduler import now
from translab.media.audio import to_int16
from translab.media.stream import SenderStream, encode_stream
from translab.playout import play
from translab.transport.record import LegRecord

FRAME_S = 0.020
EDGE_RATE = 24000


@dataclass
class Segment:
    """Reply audio placed on an edge's output timeline: from ``start_s`` (call clock), float32 at
    the edge's rate, cut at ``cut_s`` (a flush)."""

    start_s: float
    audio: np.ndarray
    cut_s: float = math.inf


@dataclass
class EdgeLog:
    """What an edge (the gateway, Twilio) did: events with their arrival (s), truncates sent, the
    sink's play time of each frame aiortc delivered (s), and the packets it sent with their audio."""

    received: list[tuple[float, Any]] = field(default_factory=list)
    truncates: list[tuple[float, p.ItemTruncate]] = field(default_factory=list)
    sink: list[tuple[float, float, int]] = field(default_factory=list)  # (release s, play s, pts)
    payloads: list[bytes] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)  # what each packet carried, at the sender's rate
    echoed: list[str] = field(default_factory=list)  # Twilio: the marks it echoed, in order



class Edge:
    """An edge's reply timeline at ``rate`` Hz: each stream's chunks placed elastically (a chunk
    starts when it arrives or when the one before it ends), all cut at an interrupt."""

    def __init__(self, rate: int = EDGE_RATE) -> None:
        self.rate = rate
        self.segments: dict[str, list[Segment]] = {}

    def add(self, t: float, key: str, x: np.ndarray) -> None:
        """Chunk ``x`` (float32) of stream ``key`` arrived at ``t`` (s)."""
        segs = self.segments.setdefault(key, [])
        start = max(t, segs[-1].start_s + len(segs[-1].audio) / self.rate) if segs else t
        segs.append(Segment(start, x, segs[0].cut_s if segs else math.inf))

    def interrupt(self, t: float) -> None:
        """Stop every stream so far at ``t`` (s): nothing of them plays from then on."""
        for segs in self.segments.values():
            for s in segs:
                s.cut_s = min(s.cut_s, t)

    def on_event(self, t: float, ev: p.RealtimeEvent) -> None:
        """The gateway: a realtime event from the model arrived at ``t``."""
        if isinstance(ev, p.AudioDelta):
            self.add(t, ev.response_id, np.frombuffer(ev.delta, dtype="<i2").astype(np.float32) / 32768.0)
        elif isinstance(ev, p.SpeechStarted):
            self.interrupt(t)

    def queued_end_s(self, key: str, t: float) -> float:
        """When the audio of stream ``key`` queued so far has played (s; ``t`` if it has)."""
        segs = self.segments.get(key)
        if not segs:
            return t
        last = segs[-1]
        return max(t, min(last.start_s + len(last.audio) / self.rate, last.cut_s))

    def render(self, a_s: float, n: int) -> np.ndarray:
        """``n`` samples at the edge's rate from ``a_s`` (s)."""
        out = np.zeros(n, dtype=np.float32)
        i0 = int(round(a_s * self.rate))
        for segs in self.segments.values():
            for s in segs:
                j0 = int(round(s.start_s * self.rate))
                stop = min(j0 + len(s.audio), int(round(s.cut_s * self.rate)) if math.isfinite(s.cut_s) else 1 << 60)
                lo, hi = max(i0, j0), min(i0 + n, stop)
                if hi > lo:
                    out[lo - i0:hi - i0] += s.audio[lo - j0:hi - j0]
        return out


class SinkTimeline:
    """A steady sink fed by aiortc's ``track.recv()`` frames (the aiortc-stock model's sink: one
    frame per 20 ms tick from the first delivery, or on ticks at ``origin_s`` + k x 20 ms, waiting
    for a late frame), on the call clock at ``rate`` Hz; :meth:`take` cuts it in 20 ms pieces."""

    def __init__(self, rate: int, log: EdgeLog, origin_s: float | None = None) -> None:
        self.rate, self.log, self.origin_s = rate, log, origin_s
        self.frames: list[tuple[float, np.ndarray]] = []
        self.releases: list[float] = []
        self._i = 0

    def add(self, r: float, pts: int, x: np.ndarray) -> None:
        """A frame (float32 at ``rate``) delivered at ``r`` (s)."""
        from translab.playout.aiortc_stock import sink_play_times

        self.releases.append(r)
        play_s = float(sink_play_times(np.array(self.releases), FRAME_S, self.origin_s)[-1])
        self.log.sink.append((r, play_s, pts))
        self.frames.append((play_s, x))

    def take(self, k: int) -> np.ndarray:
        """The sink's output from k x 20 ms to (k+1) x 20 ms."""
        n = int(round(FRAME_S * self.rate))
        buf = np.zeros(n, dtype=np.float32)
        j0 = k * n
        for ps, x in self.frames[self._i:]:
            s0 = int(round(ps * self.rate))
            lo, hi = max(j0, s0), min(j0 + n, s0 + len(x))
            if hi > lo:
                buf[lo - j0:hi - j0] += x[lo - s0:hi - s0]
        while self._i < len(self.frames) and int(round(self.frames[self._i][0] * self.rate)) + len(self.frames[self._i][1]) <= j0 + n:
            self._i += 1
        return buf

    async def consume(self, remote: list[Any], t0: float,
                      on_frame: Callable[[np.ndarray], Awaitable[None]] | None = None) -> None:
        """Read aiortc's remote track (``remote[0]`` once it exists) until it ends; ``on_frame``
        (each frame's audio, at once) for an application that forwards frames as they come."""
        from aiortc.mediastreams import MediaStreamError

        while not remote:
            await asyncio.sleep(0.01)
        try:
            while True:
                frame = await remote[0].recv()
                r = now() - t0
                x = frame.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                ch = len(frame.layout.channels)
                x = x.reshape(-1, ch).mean(axis=1) if ch > 1 else x
                self.add(r, int(frame.pts or 0), x)
                if on_frame is not None:
                    await on_frame(x)
        except MediaStreamError:
            pass


def make_edge_track(edge: Edge, log: EdgeLog, start: "asyncio.Future[float]", scheduler: Any,
                    encode: Callable[[np.ndarray], tuple[bytes, np.ndarray]], frame_samples: int,
                    rtp_rate: int, n_frames: int) -> Any:
    """An edge's outgoing track: at t0 + (k+1) x 20 ms - EDGE_LEAD_S it reads frame k (20 ms of
    ``edge`` up to that moment: from k x 20 ms - EDGE_LEAD_S) and makes it a packet with ``encode``
    (edge audio -> payload, the audio it carries), which the edge's pacer
    (translab.conversation.rtp_wire) launches at t0 + (k+1) x 20 ms; ``frame_samples`` per packet
    at ``rtp_rate`` (the pts step)."""
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    from translab.transport.webrtc import _sleep_until

    tb = fractions.Fraction(1, rtp_rate)
    n_edge = int(round(FRAME_S * edge.rate))

    class _EdgeTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.k = 0

        async def recv(self) -> Any:
            if self.readyState != "live":
                raise MediaStreamError
            t0 = await start
            k = self.k
            if k >= n_frames:
                self.stop()
                raise MediaStreamError
            await _sleep_until(t0 + (k + 1) * FRAME_S - EDGE_LEAD_S, scheduler)
            self.k += 1
            payload, sent = encode(edge.render(k * FRAME_S - EDGE_LEAD_S, n_edge))
            log.payloads.append(payload)
            log.audio.append(sent)
            pkt = av.Packet(payload)
            pkt.pts = k * frame_samples
            pkt.time_base = tb
            return pkt

    return _EdgeTrack()


def opus_encode(call: CallConfig) -> Callable[[np.ndarray], tuple[bytes, np.ndarray]]:
    """24 kHz edge audio -> 48 kHz (streaming resampler) -> an Opus packet with ``call``'s settings
    (as translab.media.stream encodes; no DTX: the edge sends every frame)."""
    from translab.media.opus import OpusEncoder

    enc = OpusEncoder(sample_rate=48000, channels=1, frame_ms=20, bitrate=call.bitrate,
                      complexity=call.complexity, application="voip", fec=call.fec,
                      packet_loss_perc=call.expected_loss_pct if call.fec else 0, dtx=False)
    up = StreamResampler(EDGE_RATE, 48000)

    def encode(x: np.ndarray) -> tuple[bytes, np.ndarray]:
        pcm = to_int16(up.process(x).astype(np.float32))
        return enc.encode(pcm), pcm.astype(np.float32) / 32768.0

    return encode


def reply_stream(log: EdgeLog, call: CallConfig) -> SenderStream:
    """The packets an edge really sent, as a SenderStream (one 20 ms frame each, ``call``'s codec
    and rate)."""
    rate = int(call.sample_rate or 48000)
    n, per = len(log.payloads), int(round(FRAME_S * rate))
    media_ts = np.arange(n, dtype=np.int64) * per
    if call.codec == "opus":
        from translab.media.opus import packet_has_fec

        fec = np.array([packet_has_fec(x) for x in log.payloads], dtype=bool)
    else:
        fec = np.zeros(n, dtype=bool)
    return SenderStream(seq=np.arange(n, dtype=np.int64), media_ts=media_ts,
                        frame_samples=np.full(n, per, dtype=np.int64), capture_s=(media_ts + per) / rate,
                        payload=list(log.payloads), message=list(log.payloads), fec=fec,
                        reference=np.concatenate(log.audio) if log.audio else np.zeros(0, np.float32),
                        sample_rate=rate, lookahead_ms=0.0, dtx_skipped=0)


def sink_vs_model(model_s: np.ndarray, live_s: list[float]) -> dict[str, float]:
    """How far an edge's real handling of aiortc's frames (``live_s``: delivery or sink play times,
    s, in order) is from the same times modelled on the live arrival trace (``model_s``): p50 and
    max over frames (ms)."""
    n = min(len(live_s), len(model_s))
    d = np.abs(np.asarray(live_s[:n], dtype=float) - np.asarray(model_s, dtype=float)[:n])
    return {"edge_vs_model_p50_ms": 1000 * float(np.median(d)) if n else math.nan,
            "edge_vs_model_max_ms": 1000 * float(d.max()) if n else math.nan}


def live_leg(call: CallConfig, stream: SenderStream, send_tap: Any, recv_tap: Any, t0: float,
             playout: str, wire: RtpWire) -> RtpLeg:
    """An RTP leg of a live call: its arrival trace (from the taps, with the send and arrival times
    of ``wire``: launch into and delivery from the emulated path) played by ``playout``."""
    import copy

    from translab.transport.webrtc import _fill

    rec = LegRecord()
    rec.t0 = t0
    send, recv = copy.copy(send_tap), copy.copy(recv_tap)  # the taps' logs, with the wire's times
    send.sent = wire.sends(send_tap.sent)
    recv.received, _ = wire.arrivals(recv_tap.received)
    _fill(rec, stream, send, recv, None)
    trace = leg_trace(call, stream, rec)
    out = play(trace, policy=playout, conceal=str(call.conceal))
    return RtpLeg(stream, trace, out, int(stream.frame_samples[0]))


@dataclass
class GatewayRun:
    """The raw outcome of a live gateway conversation."""

    script: Script
    session: Session
    gateway: EdgeLog
    up_leg: RtpLeg
    down_leg: RtpLeg
    figures: dict[str, Any]


@dataclass
class EdgeLink:
    """The caller's and an edge's aiortc peers, connected through the emulator: the edge's remote
    tracks (filled when the caller's arrives), the send and receive taps and the wire of each
    direction ("up": caller to edge)."""

    remote: list[Any]
    up_send: Any
    down_send: Any
    up_recv: Any
    down_recv: Any
    up_wire: RtpWire
    down_wire: RtpWire

    def leg(self, direction: str, call: CallConfig, stream: SenderStream, t0: float, playout: str) -> RtpLeg:
        """The ``direction`` ("up", "down") leg's arrival trace of ``stream``, played by ``playout``."""
        if direction == "up":
            return live_leg(call, stream, self.up_send, self.up_recv, t0, playout, self.up_wire)
        return live_leg(call, stream, self.down_send, self.down_recv, t0, playout, self.down_wire)

    def counts(self) -> dict[str, int]:
        """RTP packets each tap saw; per direction, those launched after their launch time (late:
        they left at once) and those received without a delivery noted on the wire (0 expected)."""
        out = {"rtp_up_sent": len(self.up_send.sent), "rtp_up_received": len(self.up_recv.received),
               "rtp_down_sent": len(self.down_send.sent), "rtp_down_received": len(self.down_recv.received)}
        for d, wire, recv in (("up", self.up_wire, self.up_recv), ("down", self.down_wire, self.down_recv)):
            out[f"rtp_{d}_launched_late"] = wire.late
            out[f"rtp_{d}_wire_unmatched"] = wire.arrivals(recv.received)[1]
        return out


async def connect_edge(caller: Any, edge: Any, caller_track: Any, reply_track: Any, emu: Any,
                       up_wire: RtpWire, down_wire: RtpWire, codec: str | None = None) -> EdgeLink:
    """Connect the caller's aiortc peer to an edge's (gateway, carrier) in process: the caller offers
    one sendrecv audio transceiver with ``caller_track`` (``codec``: a mime subtype to prefer, e.g.
    "pcmu"; None: aiortc's order), the edge answers with ``reply_track``, and each peer's datagrams
    leave through the emulator (caller "up", edge "down"), launched and stamped by ``up_wire`` /
    ``down_wire``. Waits (at most 10 s) until ICE and DTLS are up."""
    from aiortc import RTCRtpSender, RTCSessionDescription

    from translab.transport.webrtc import RtpReceiveTap, RtpSendTap, watch_connection

    loop = asyncio.get_running_loop()
    remote: list[Any] = []
    edge.on("track", lambda tr: remote.append(tr))
    connected: asyncio.Future[None] = loop.create_future()
    connected.add_done_callback(lambda f: f.cancelled() or f.exception())
    watch_connection(caller, lambda _: None, connected)
    transceiver = caller.addTransceiver(caller_track, direction="sendrecv")
    if codec is not None:
        transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs
                                         if c.mimeType.lower() == f"audio/{codec}"])
    await caller.setLocalDescription(await caller.createOffer())
    up_wire.stamp(caller)
    emu.attach_peer(caller, egress="up")
    up_wire.pace(caller)
    await edge.setRemoteDescription(caller.localDescription)
    edge.addTrack(reply_track)
    await edge.setLocalDescription(await edge.createAnswer())
    down_wire.stamp(edge)
    emu.attach_peer(edge, egress="down")
    down_wire.pace(edge)
    await caller.setRemoteDescription(RTCSessionDescription(edge.localDescription.sdp, "answer"))
    link = EdgeLink(remote, RtpSendTap(caller.getSenders()[0].transport), RtpSendTap(edge.getSenders()[0].transport),
                    RtpReceiveTap(edge.getReceivers()[0]), RtpReceiveTap(caller.getReceivers()[0]), up_wire, down_wire)
    await asyncio.wait_for(asyncio.shield(connected), 10.0)
    return link


def caller_leg_track(stream: SenderStream, start: "asyncio.Future[float]", scheduler: Any) -> tuple[Any, RtpWire]:
    """The caller's track of translab's own packets (``stream``, encoded before the call), handed to
    aiortc EDGE_LEAD_S before each capture time, and the uplink's wire that launches each at its
    capture time (the simulation's send time)."""
    from translab.transport.webrtc import make_packet_track

    capture = stream.capture_s.astype(float)
    track = make_packet_track(stream.payload, stream.media_ts, capture - EDGE_LEAD_S, int(stream.sample_rate),
                              start, scheduler)
    return track, RtpWire(capture, start)


def edge_wire(n_frames: int, start: "asyncio.Future[float]") -> RtpWire:
    """The downlink's wire: an edge's k-th packet launches at (k+1) x 20 ms (make_edge_track)."""
    return RtpWire((np.arange(n_frames) + 1) * FRAME_S, start)


async def end_call(link: EdgeLink, tasks: list["asyncio.Task[Any]"], ws: Any, end: float, scheduler: Any,
                   figures: dict[str, Any]) -> None:
    """The end of a live edge conversation: wait until ``end`` (monotonic s) and 0.3 s more for the
    last packets, note the taps' counts in ``figures``, stop ``tasks`` and close ``ws``."""
    from translab.transport.webrtc import _sleep_until

    await _sleep_until(end, scheduler)
    await asyncio.sleep(0.3)
    figures.update(link.counts())
    for tk in tasks:
        tk.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await ws.close()


async def run_gateway(cfg: Any, script: Script, tail_s: float) -> GatewayRun:
    """The live webrtc-gateway conversation of ``cfg`` (a resolved ConversationConfig)."""
    from websockets.asyncio.client import connect

    from translab.conversation.simulate import truncate_for
    from translab.emulate.emulator import LiveEmulator
    from translab.emulate.realtime import LoopLagMonitor
    from translab.emulate.tcp_relay import TcpRelay
    from translab.transport.webrtc import advertised_opus, new_peer, opus_fmtp

    seed, access, dc = cfg.seed, str(cfg.profile), cfg.dc_profile
    call = CallConfig(transport="webrtc", frame_ms=cfg.frame_ms, metrics=()).resolved()
    down_call = CallConfig(transport="webrtc", frame_ms=20, metrics=()).resolved()
    up_stream = encode_stream(script.caller_audio(48000), call)
    emu = LiveEmulator(access, seed, rngs={"up": leg_rng(seed, "caller-rtp"), "down": leg_rng(seed, "caller-down")})
    await emu.start()
    assert emu.scheduler is not None
    monitor = LoopLagMonitor()
    log, edge = EdgeLog(), Edge()
    loop = asyncio.get_running_loop()
    start: asyncio.Future[float] = loop.create_future()
    n_reply = int(math.ceil((script.duration_s + tail_s) / FRAME_S))
    caller, gateway = new_peer(), new_peer()
    figures: dict[str, Any] = {}
    tasks: list[asyncio.Task[Any]] = []
    td = p.TurnDetection(cfg.vad.threshold, int(cfg.vad.prefix_padding_ms), int(cfg.vad.silence_duration_ms))
    try:
        async with ModelProcess([r[0] for r in script.replies], ModelParams(cfg.think, cfg.pacing), seed) as server:
            def setup_models() -> Any:
                u, d = ws_model(dc, "up", seed, "gateway-ws:setup"), ws_model(dc, "down", seed, "gateway-ws:setup")
                return u[0], u[1], d[0], d[1]

            relay = TcpRelay(emu.scheduler, (server.host, server.port), setup_models, t0=emu.t0)
            await relay.start()
            assert relay.address is not None
            ws = await connect(f"ws://localhost:{relay.address[1]}/", max_size=2**22, ping_interval=None,
                               compression=None)
            await ws.send(p.encode(p.SessionUpdate(turn_detection=td)))
            # WebRTC: offer/answer in process; media through the emulator's UDP links
            caller_track, up_wire = caller_leg_track(up_stream, start, emu.scheduler)
            reply_track = make_edge_track(edge, log, start, emu.scheduler, opus_encode(down_call), 960, 48000, n_reply)
            with advertised_opus(opus_fmtp(call)):
                link = await connect_edge(caller, gateway, caller_track, reply_track, emu, up_wire,
                                          edge_wire(n_reply, start))
            await server.wait_received()
            for _ in range(100):  # the datacenter WebSocket's media phase on the simulation's models
                t0 = now() + 0.05
                u, d = ws_model(dc, "up", seed, "gateway-ws"), ws_model(dc, "down", seed, "gateway-ws")
                if relay.start_media(t0, u[0], u[1], "up") and relay.start_media(t0, d[0], d[1], "down"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise RuntimeError("the datacenter relay kept set-up bytes in flight for 2 s")
            emu.set_media_origin(t0)
            server.set_origin(t0)
            monitor.since_s, monitor.until_s = t0, t0 + script.duration_s  # stalls that can move a turn
            start.set_result(t0)

            sink = SinkTimeline(48000, log)  # logs aiortc's deliveries (and what a steady sink would make of them)
            down = StreamResampler(48000, EDGE_RATE)

            async def forward(x: np.ndarray) -> None:  # each frame aiortc delivers, at once, at 24 kHz
                await ws.send(p.encode(p.InputAudioAppend(encode_output(p.AudioFormat(), down.process(x)))))

            async def replies() -> None:
                async for msg in ws:
                    t = now() - t0
                    ev = p.decode_realtime(msg)
                    log.received.append((t, ev))
                    edge.on_event(t, ev)
                    if isinstance(ev, p.SpeechStarted) and cfg.flush:
                        trunc = truncate_for(log.received, t, p.AudioFormat(), cfg.pacing.chunk_ms)
                        if trunc is not None:
                            log.truncates.append((now() - t0, trunc))
                            await ws.send(p.encode(trunc))

            tasks = [asyncio.create_task(sink.consume(link.remote, t0, forward)), asyncio.create_task(replies())]
            await end_call(link, tasks, ws, t0 + script.duration_s + tail_s, emu.scheduler, figures)
            up_leg = link.leg("up", call, up_stream, t0, cfg.edge_playout)
            down_leg = link.leg("down", down_call, reply_stream(log, down_call), t0, "adaptive")
            # aiortc's real deliveries against the aiortc-stock model's releases on the same arrivals
            figures.update(sink_vs_model(np.array(released_frames(up_leg)[0]), [r for r, _, _ in log.sink]))
            await relay.close()
    finally:
        for tk in tasks:
            tk.cancel()
        figures.update(await monitor.stop())
        await asyncio.gather(caller.close(), gateway.close(), return_exceptions=True)
        await emu.close()
    figures.update(emu.report())
    session = server.sessions[0]  # sent back when the model process stopped
    return GatewayRun(script, session, log, up_leg, down_leg, figures)


__all__ = ["Edge", "EdgeLog", "GatewayRun", "SinkTimeline", "live_leg", "make_edge_track", "opus_encode",
           "reply_stream", "run_gateway", "sink_vs_model"]
