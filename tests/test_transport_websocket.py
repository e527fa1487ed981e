"""The WebSocket server survives bad clients (close codes, error events, bounded buffering) and
keeps serving the others; StreamSpec parsing; TLS with a certificate made for the run."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from translab.errors import ConfigError
from translab.transport.tls import self_signed_contexts
from translab.transport.websocket import StreamSpec, VoiceServer


def _run(spec: StreamSpec | None, client: Callable[[str], Awaitable[Any]], **kw: Any) -> tuple[Any, VoiceServer]:
    async def main() -> tuple[Any, VoiceServer]:
        server = VoiceServer(spec=spec, **kw)
        host, port = await server.start()
        try:
            res = await asyncio.wait_for(client(f"ws://{host}:{port}/"), 10)
        finally:
            await server.close()
        return res, server

    return asyncio.run(main())


async def _send_then_close_code(uri: str, *messages: Any) -> tuple[int | None, str]:
    async with connect(uri, compression=None) as ws:
        for m in messages:
            await ws.send(m)
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


PCM = StreamSpec("binary", "pcm16", 16000, 20)
RT = StreamSpec("realtime-json", "pcm16", 24000, 20)
TW = StreamSpec("twilio-json", "pcmu", 8000, 20)


def test_good_binary_frames_are_recorded() -> None:
    async def client(uri: str) -> None:
        async with connect(uri, compression=None) as ws:
            for _ in range(5):
                await ws.send(b"\0" * 640)

    _, server = _run(PCM, client)
    call = server.calls[0]
    assert len(call.arrivals) == 5 and call.arrivals[0][1] == 640
    assert call.close_code == 1000


def test_frame_larger_than_limit_closes_1009() -> None:
    (code, _), _ = _run(PCM, lambda uri: _send_then_close_code(uri, b"\0" * 5000), max_message_bytes=4096)
    assert code == 1009


def test_binary_not_whole_samples_closes_1007_with_reason() -> None:
    (code, reason), _ = _run(PCM, lambda uri: _send_then_close_code(uri, b"\0" * 641))
    assert code == 1007 and "whole number" in reason


def test_text_frame_in_binary_framing_closes_1003() -> None:
    (code, reason), _ = _run(PCM, lambda uri: _send_then_close_code(uri, "hello"))
    assert code == 1003 and reason


def test_invalid_json_closes_1007() -> None:
    (code, reason), _ = _run(RT, lambda uri: _send_then_close_code(uri, "{not json"))
    assert code == 1007 and "invalid JSON" in reason


def test_unknown_realtime_event_gets_error_event_and_connection_stays_open() -> None:
    async def client(uri: str) -> tuple[dict, int]:
        async with connect(uri, compression=None) as ws:
            await ws.send(json.dumps({"type": "bogus.event"}))
            err = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}}))
            err2 = json.loads(await ws.recv())
            import base64

            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(b"\0" * 960).decode()}))
            await asyncio.sleep(0.05)
            return err, err2

    (err, err2), server = _run(RT, client)
    assert err["type"] == "error" and "bogus.event" in err["error"]["message"]
    assert err2["type"] == "error" and "wrong audio format" in err2["error"]["message"]
    assert len(server.calls[0].arrivals) == 1 and server.calls[0].arrivals[0][1] == 960


def test_twilio_unknown_event_and_wrong_format_close_1003() -> None:
    (code, reason), _ = _run(TW, lambda uri: _send_then_close_code(uri, json.dumps({"event": "nope"})))
    assert code == 1003 and "nope" in reason
    start = {"event": "start", "start": {"mediaFormat": {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}}}
    (code, reason), _ = _run(TW, lambda uri: _send_then_close_code(uri, json.dumps(start)))
    assert code == 1003 and "wrong audio format" in reason


def test_bad_client_does_not_disturb_others() -> None:
    async def client(uri: str) -> list[int | None]:
        async def good() -> None:
            async with connect(uri, compression=None) as ws:
                for _ in range(10):
                    await ws.send(b"\0" * 640)
                    await asyncio.sleep(0.005)

        res = await asyncio.gather(good(), _send_then_close_code(uri, b"\0" * 3), good())
        return [res[1][0]]

    codes, server = _run(PCM, client)
    assert codes == [1007]
    good = [c for c in server.calls if c.close_code == 1000]
    assert len(good) == 2 and all(len(c.arrivals) == 10 for c in good)


def test_client_that_stops_reading_cannot_grow_server_buffers() -> None:
    """Echo is on; the client sends 2000 x 4 kB and never reads. The server drops echoes beyond its
    bounded queue instead of buffering 8 MB."""

    async def client(uri: str) -> int:
        ws = await connect(uri, compression=None, max_queue=1)
        ws.transport.pause_reading()  # stop reading at the socket
        for _ in range(2000):
            await ws.send(b"\0" * 4000)
        await asyncio.sleep(0.3)
        ws.transport.abort()  # a graceful close would wait behind the unread echoes
        await asyncio.sleep(0.05)
        return 0

    _, server = _run(StreamSpec("binary", "pcm16", 16000, 125), client, echo=True, echo_queue=8,
                     write_limit=16 * 1024)
    call = server.calls[0]
    assert len(call.arrivals) == 2000
    assert call.echo_dropped > 1000
    assert call.echoed * 4000 < 4_000_000  # what went out is bounded by the socket buffers


def test_stream_spec_from_path() -> None:
    s = StreamSpec.from_path("/ws?framing=binary&codec=pcm16&rate=24000&frame_ms=100")
    assert (s.framing, s.codec, s.sample_rate, s.frame_ms, s.sample_bytes) == ("binary", "pcm16", 24000, 100.0, 2)
    assert StreamSpec.from_path("/?framing=twilio-json").codec == "pcmu"
    with pytest.raises(ConfigError):
        StreamSpec.from_path("/?framing=carrier-pigeon")
    with pytest.raises(ConfigError):
        StreamSpec.from_path("/?framing=realtime-json&rate=16000")


def test_tls_with_generated_certificate() -> None:
    server_ctx, client_ctx = self_signed_contexts()

    async def main() -> int:
        server = VoiceServer(spec=PCM, ssl_context=server_ctx)
        _, port = await server.start()
        async with connect(f"wss://localhost:{port}/", ssl=client_ctx, compression=None) as ws:
            await ws.send(b"\0" * 640)
            await asyncio.sleep(0.05)
        await server.close()
        return len(server.calls[0].arrivals)

    assert asyncio.run(main()) == 1
