"""The WebSocket path: a websockets server that records audio messages as they arrive, and a client
that sends like a microphone (paced in real time on absolute deadlines).

Framings come from :mod:`translab.media.framing` (binary PCM16 / mu-law / Opus, realtime-json,
twilio-json); permessage-deflate is off unless asked; TLS uses a certificate made for the run
(:mod:`translab.transport.tls`).

The server survives bad clients and keeps serving the others:

========================================  =====================================================
client does                               server answers
========================================  =====================================================
message larger than ``max_message_bytes``  close 1009 (websockets' ``max_size``)
binary not a whole number of samples       close 1007 with the reason
text frame where binary expected (or       close 1003 with the reason
binary where JSON expected)
invalid JSON, bad base64, odd pcm16        close 1007 with the reason
unknown event type (realtime-json)         ``{"type":"error",...}`` event, connection stays open
unknown event (twilio-json)                close 1003 with the reason
wrong audio format (realtime-json          realtime: error event; twilio: close 1003
``session.update``, twilio ``start``)
stops reading while echo is on             echo queue bounded (oldest dropped, counted) and
                                           websockets' ``write_limit`` makes sends wait: memory
                                           stays bounded
========================================  =====================================================

Times are monotonic seconds (``translab.emulate.scheduler.now``); the LegRecord holds the call
clock and setup milestones in ms.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

from translab.config import CODECS, DEFAULT_RATES, FRAMING_CODECS
from translab.emulate.scheduler import now
from translab.errors import ConfigError, check_choice
from translab.media.framing import (
    CLOSE_UNSUPPORTED_DATA, FRAMINGS, FramingError, check_framing, decode_message,
)
from translab.transport.record import LegRecord

__all__ = ["StreamSpec", "ServerCall", "VoiceServer", "websocket_call", "DEFAULT_MAX_MESSAGE_BYTES"]

#: default largest accepted message (bytes): 100 ms of PCM16 48 kHz base64 in JSON fits easily
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

_REALTIME_IGNORED = ("input_audio_buffer.commit", "input_audio_buffer.clear", "response.create")
_TWILIO_IGNORED = ("connected", "stop", "mark", "dtmf")


@dataclass(frozen=True)
class StreamSpec:
    """What the server expects on a connection: framing, codec, sample rate (Hz), frame (ms)."""

    framing: str = "binary"
    codec: str = "pcm16"
    sample_rate: int = 16000
    frame_ms: float = 20.0

    def __post_init__(self) -> None:
        check_choice("framing", self.framing, FRAMINGS)
        check_choice("codec", self.codec, CODECS)
        if self.framing != "binary" or self.codec != "opus":
            if not (self.framing == "binary" and self.codec == "opus"):
                check_framing(self.framing, self.codec, self.sample_rate, self.frame_ms)

    @property
    def sample_bytes(self) -> int:
        """Bytes per sample a binary message must be a multiple of (0: no check, Opus)."""
        return {"pcm16": 2, "pcmu": 1, "opus": 0}[self.codec]

    @classmethod
    def from_path(cls, path: str) -> "StreamSpec":
        """From a request path's query, e.g. ``/ws?framing=binary&codec=pcm16&rate=16000&frame_ms=20``
        (defaults per framing as CallConfig's: realtime-json = pcm16 24 kHz, twilio-json = pcmu 8 kHz
        20 ms; binary: pcm16 at 16 kHz, serve's own default)."""
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).items()}
        framing = q.get("framing", "binary")
        check_choice("framing", framing, FRAMINGS)
        codec = FRAMING_CODECS.get(framing, "pcm16")
        rate = 16000 if framing == "binary" else DEFAULT_RATES[codec]
        try:
            return cls(framing=framing, codec=q.get("codec", codec),
                       sample_rate=int(q.get("rate", rate)), frame_ms=float(q.get("frame_ms", 20)))
        except ValueError as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError("query", path, "rate and frame_ms as numbers") from None


@dataclass
class ServerCall:
    """One connection as the server saw it. ``arrivals``: per audio message (monotonic s, payload
    bytes, message bytes); ``payloads``: the decoded codec payloads; ``errors``: error events sent;
    ``close_code`` / ``close_reason``: how it ended; ``echo_dropped``: echoes dropped because the
    client did not read."""

    id: int
    path: str = ""
    spec: StreamSpec | None = None
    opened_s: float = 0.0
    arrivals: list[tuple[float, int, int]] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    echo_dropped: int = 0
    echoed: int = 0
    closed_s: float | None = None


class _Reject(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class VoiceServer:
    """A websockets server recording audio messages (see the module docstring for bad clients).

    ``spec``: the expected stream (None: read it from each request's query, see
    :meth:`StreamSpec.from_path`). ``echo``: send every audio message back unchanged (for round
    trips), through a queue of ``echo_queue`` messages that drops the oldest when the client does
    not read. ``write_limit`` (bytes): websockets' send buffer high-water mark.
    ``on_call_end(call)`` runs when a connection ends.
    """

    def __init__(self, *, spec: StreamSpec | None = None, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, echo: bool = False,
                 echo_queue: int = 32, write_limit: int = 32 * 1024, compression: str | None = None,
                 on_call_end: Callable[[ServerCall], None] | None = None,
                 on_message: Callable[[ServerCall], None] | None = None) -> None:
        self.spec = spec
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.max_message_bytes = int(max_message_bytes)
        self.echo = echo
        self.echo_queue = int(echo_queue)
        self.write_limit = int(write_limit)
        self.compression = compression
        self.on_call_end = on_call_end
        self.on_message = on_message
        self.calls: list[ServerCall] = []
        self._server: Any = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        """Listen; returns (host, port)."""
        from websockets.asyncio.server import serve

        self._server = await serve(
            self._handler, self.host, self.port, ssl=self.ssl_context,
            compression=self.compression, max_size=self.max_message_bytes, max_queue=16,
            write_limit=self.write_limit, ping_interval=None,
        )
        sock = next(iter(self._server.sockets)).getsockname()
        self.address = (sock[0], sock[1])
        return self.address

    async def close(self) -> None:
        """Stop listening and close every connection (idempotent)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "VoiceServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- per connection ---------------------------------------------------------------------------
    async def _handler(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        call = ServerCall(id=len(self.calls), path=ws.request.path, opened_s=now())
        self.calls.append(call)
        echo_q: asyncio.Queue[Any] | None = asyncio.Queue(self.echo_queue) if self.echo else None
        echo_task = asyncio.get_running_loop().create_task(self._echo(ws, echo_q, call)) if echo_q else None
        try:
            try:
                spec = self.spec or StreamSpec.from_path(ws.request.path)
            except ConfigError as err:
                raise _Reject(CLOSE_UNSUPPORTED_DATA, f"bad stream parameters: {err}") from None
            call.spec = spec
            async for msg in ws:
                t = now()
                if isinstance(msg, str) and spec.framing != "binary":
                    if await self._control(ws, spec, msg, call):
                        continue
                try:
                    payload = decode_message(spec.framing, msg, sample_bytes=spec.sample_bytes)
                except FramingError as err:
                    if spec.framing == "realtime-json" and err.close_code == CLOSE_UNSUPPORTED_DATA \
                            and isinstance(msg, str):
                        await self._error_event(ws, call, "unknown_event", err.reason)
                        continue
                    raise _Reject(err.close_code, err.reason) from None
                size = len(msg.encode("utf-8")) if isinstance(msg, str) else len(msg)
                call.arrivals.append((t, len(payload), size))
                call.payloads.append(payload)
                if self.on_message is not None:
                    self.on_message(call)
                if echo_q is not None:
                    if echo_q.full():
                        echo_q.get_nowait()
                        call.echo_dropped += 1
                    echo_q.put_nowait(msg)
        except _Reject as rej:
            await ws.close(rej.code, rej.reason[:120])
        except ConnectionClosed:
            pass
        finally:
            if echo_task is not None:
                echo_task.cancel()
                await asyncio.gather(echo_task, return_exceptions=True)
            call.close_code = ws.close_code
            call.close_reason = ws.close_reason or ""
            call.closed_s = now()
            if self.on_call_end is not None:
                self.on_call_end(call)

    async def _control(self, ws: Any, spec: StreamSpec, msg: str, call: ServerCall) -> bool:
        """Handle non-audio events; True when ``msg`` was one (and is done with)."""
        try:
            event = json.loads(msg)
        except json.JSONDecodeError:
            return False  # decode_message reports it
        if not isinstance(event, dict):
            return False
        if spec.framing == "realtime-json":
            kind = event.get("type")
            if kind == "session.update":
                session = event.get("session")
                if not isinstance(session, dict):
                    session = {}
                fmt = session.get("input_audio_format", "pcm16")
                if fmt != "pcm16":
                    await self._error_event(ws, call, "invalid_audio_format",
                                            f"wrong audio format {fmt!r}: this session takes pcm16 24 kHz")
                return True
            return kind in _REALTIME_IGNORED
        kind = event.get("event")
        if kind == "start":
            start = event.get("start")
            if not isinstance(start, dict):
                start = {}
            media_format = start.get("mediaFormat")
            if not isinstance(media_format, dict):
                media_format = {}
            enc, rate = media_format.get("encoding", "audio/x-mulaw"), media_format.get("sampleRate", 8000)
            if enc != "audio/x-mulaw" or int(rate) != 8000 or int(media_format.get("channels", 1)) != 1:
                raise _Reject(CLOSE_UNSUPPORTED_DATA,
                              f"wrong audio format {enc} {rate} Hz: expected audio/x-mulaw 8000 Hz mono")
            return True
        return kind in _TWILIO_IGNORED

    async def _error_event(self, ws: Any, call: ServerCall, code: str, message: str) -> None:
        call.errors.append(message)
        await ws.send(json.dumps({"type": "error", "error": {"type": "invalid_request_error",
                                                            "code": code, "message": message}}))

    async def _echo(self, ws: Any, q: asyncio.Queue[Any], call: ServerCall) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                msg = await q.get()
                await ws.send(msg)  # waits while the send buffer is above write_limit
                call.echoed += 1
        except (ConnectionClosed, asyncio.CancelledError):
            pass


async def _sleep_until(deadline: float, scheduler: Any) -> None:
    from translab.transport.webrtc import _sleep_until as sleep_until

    await sleep_until(deadline, scheduler)


class _SetupClock:
    """The call's set-up milestones: ms since the client dialled, into ``rec.setup_ms`` (first wins)."""

    def __init__(self, rec: LegRecord) -> None:
        self.rec = rec
        self.t_start = now()

    def mark(self, name: str, t: float | None = None) -> None:
        self.rec.setup_ms.setdefault(name, ((t if t is not None else now()) - self.t_start) * 1e3)


async def _dial(target: tuple[str, int], relay: Any, timeout_s: float) -> tuple[Any, float]:
    """TCP connect to ``target``, through the emulator's relay when there is one: (a non-blocking
    socket, monotonic s when TCP was connected). Raises OSError / asyncio.TimeoutError."""
    if relay is not None:
        sock, t_tcp = await relay.connect(timeout_s)
        return sock, t_tcp
    import socket as _socket

    sock = _socket.create_connection(target, timeout=timeout_s)
    sock.setblocking(False)
    return sock, now()


async def _upgrade(sock: Any, port: int, clock: _SetupClock, *, tls: bool, client_ctx: ssl.SSLContext | None,
                   deflate: bool, timeout_s: float) -> Any:
    """The TLS (if ``tls``) and WebSocket handshakes on a connected ``sock``; marks ``tls_done``
    when TLS completes. Returns the client connection; raises when refused or timed out."""
    from websockets.asyncio.client import ClientConnection, connect

    class _Conn(ClientConnection):
        def connection_made(self, transport: Any) -> None:
            if tls:
                clock.mark("tls_done")
            super().connection_made(transport)

    uri = f"{'wss' if tls else 'ws'}://localhost:{port}/"
    kwargs: dict[str, Any] = {"sock": sock, "compression": "deflate" if deflate else None,
                              "create_connection": _Conn,
                              "open_timeout": timeout_s, "max_size": None,
                              "ping_interval": None}
    if tls:
        kwargs.update(ssl=client_ctx, server_hostname="localhost")
    return await connect(uri, **kwargs)


async def _read_echoes(ws: Any, echo: bool, sent_at: list[float], echoes: list[float]) -> None:
    """The client's receive loop: reads every server message until the connection ends; with
    ``echo``, the n-th message back gives the n-th round trip (s since the n-th message was sent)."""
    try:
        async for _ in ws:
            if echo and len(echoes) < len(sent_at):
                echoes.append(now() - sent_at[len(echoes)])
    except Exception:
        pass


async def _send_paced(ws: Any, stream: Any, rec: LegRecord, clock: _SetupClock, sent_at: list[float],
                      scheduler: Any, progress: Callable[[float], None] | None) -> None:
    """The send loop: message k leaves at ``rec.t0 + stream.capture_s[k]`` (absolute deadlines, like
    a microphone); records ``rec.send_s`` and ``first_frame_sent``; ``progress`` at most once a second."""
    n = len(stream.seq)
    last_progress = now()
    for k in range(n):
        await _sleep_until(rec.t0 + float(stream.capture_s[k]), scheduler)
        t = now()
        sent_at.append(t)
        rec.send_s[k] = t - rec.t0
        if k == 0:
            clock.mark("first_frame_sent", t)
        await ws.send(stream.message[k])
        if progress is not None and t - last_progress >= 1.0:
            last_progress = t
            progress((k + 1) / n)


async def _drain(server: VoiceServer | None, n: int, drain_s: float, echo: bool) -> None:
    """Wait for the server to have all ``n`` messages (TCP delivers all; allow ``drain_s`` + 5 s for
    retransmissions), then a little more (``drain_s`` with echo, for the last echoes)."""
    deadline = now() + drain_s + 5.0
    while server is not None and server.calls and len(server.calls[0].arrivals) < n \
            and now() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(min(drain_s, 0.2) if not echo else drain_s)


def _fill_record(rec: LegRecord, clock: _SetupClock, call: ServerCall, n: int, first_rx: list[float],
                 echo: bool) -> None:
    """The server's view into the record: arrivals on the call clock, ``first_frame_received``, the
    message count (the leg fails when fewer than ``n`` arrived) and, with echo, echoes dropped."""
    for k, (t, _, _) in enumerate(call.arrivals[:n]):
        rec.arrivals[k] = [t - rec.t0]
    if first_rx:
        clock.mark("first_frame_received", first_rx[0])
    rec.extra["server_messages"] = len(call.arrivals)
    if len(call.arrivals) < n:
        rec.fail(f"server received {len(call.arrivals)} of {n} messages")
    if echo:
        rec.extra["echo_dropped"] = call.echo_dropped


async def websocket_call(stream: Any, cfg: Any, emu: Any, *, connect_timeout_s: float = 10.0,
                         drain_s: float = 1.0, progress: Callable[[float], None] | None = None,
                         echo: bool = False, start_delay_s: float = 0.05,
                         target: tuple[str, int] | None = None, deflate: bool = False) -> LegRecord:
    """One live WebSocket call leg: a client sends ``stream`` (a SenderStream whose messages are
    already framed) to a :class:`VoiceServer` in this process, through the emulator's TCP relay
    (``emu=None``: directly). ``target``: connect there instead of starting a server (for tests of
    refused connections). ``deflate``: offer permessage-deflate (RFC 7692; off by default, as the
    lab's header model assumes uncompressed messages: the emulator's wire counts are then the only
    true wire figures). Never raises for a network failure: the record says failed and why.

    Steps: start the server (and the emulator's relay), dial TCP, TLS + WebSocket upgrade, send
    paced while a reader collects echoes, drain, fill the record from what the server saw."""
    from translab.transport.tls import self_signed_contexts

    rec = LegRecord()
    tls = bool(getattr(cfg, "tls", False))
    server_ctx, client_ctx = self_signed_contexts() if tls else (None, None)
    spec = StreamSpec(framing=cfg.framing, codec=cfg.codec, sample_rate=int(cfg.sample_rate),
                      frame_ms=float(cfg.frame_ms))
    biggest = max((len(m.encode()) if isinstance(m, str) else len(m)) for m in stream.message) \
        if len(stream.message) else 0
    server: VoiceServer | None = None
    ws: Any = None
    reader: asyncio.Task[None] | None = None
    echoes: list[float] = []
    first_rx: list[float] = []

    def first_message(_: ServerCall) -> None:
        if not first_rx:
            first_rx.append(now())

    try:
        if target is None:
            server = VoiceServer(spec=spec, ssl_context=server_ctx, echo=echo,
                                 compression="deflate" if deflate else None,
                                 max_message_bytes=max(DEFAULT_MAX_MESSAGE_BYTES, 2 * biggest),
                                 on_message=first_message)
            target = await server.start()
        relay = await emu.tcp_relay(target) if emu is not None else None
        # the server's start-up (its self-signed certificate, listening socket, relay) happens once
        # per server, not per call: the call's set-up clock starts when the client dials
        clock = _SetupClock(rec)
        try:
            sock, t_tcp = await _dial(target, relay, connect_timeout_s)
        except (OSError, asyncio.TimeoutError) as err:
            return rec.fail(f"TCP connect to {target[0]}:{target[1]} failed: "
                            f"{type(err).__name__} {err}".strip())
        clock.mark("tcp_connected", t_tcp)
        try:
            ws = await _upgrade(sock, target[1], clock, tls=tls, client_ctx=client_ctx, deflate=deflate,
                                timeout_s=connect_timeout_s)
        except (OSError, asyncio.TimeoutError, Exception) as err:  # handshake refused or timed out
            sock.close()
            return rec.fail(f"WebSocket upgrade failed: {type(err).__name__} {err}".strip())
        clock.mark("upgrade_done")

        sent_at: list[float] = []
        reader = asyncio.get_running_loop().create_task(_read_echoes(ws, echo, sent_at, echoes))
        rec.t0 = now() + start_delay_s
        rec.extra["setup_t0_ms"] = (rec.t0 - clock.t_start) * 1e3
        if emu is not None:
            emu.set_media_origin(rec.t0)
            # True: the media bytes cross a TCP model timed and seeded exactly like simulate's
            rec.extra["emu_tcp_media_aligned"] = bool(emu.tcp_media_aligned)
        scheduler = emu.scheduler if emu is not None else None
        await _send_paced(ws, stream, rec, clock, sent_at, scheduler, progress)
        n = len(stream.seq)
        await _drain(server, n, drain_s, echo)
        if server is not None and server.calls:
            _fill_record(rec, clock, server.calls[0], n, first_rx, echo)
        rec.echo_rtt_s = list(echoes)
        return rec
    except asyncio.CancelledError:
        rec.fail("cancelled")
        raise
    finally:
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 2.0)
            except Exception:
                ws.transport.abort()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if server is not None:
            await server.close()
