"""`translab serve`: outside callers (an aiortc peer posting its offer over HTTP, a websockets
client) are answered through the emulator and each finished call is analysed and written."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from translab.call.served import ServeConfig, TranslabServer, rtp_trace_rows, ws_trace_rows

pytestmark = pytest.mark.live


async def _http(addr: tuple[str, int], method: str, path: str, body: bytes = b"",
                ctype: str = "application/sdp") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def test_rtp_trace_rows_marks_gaps_as_lost_and_unwraps() -> None:
    rx = [(65534, 4294967000, 1.00, b"a"), (65535, 4294967000 + 960, 1.02, b"b"),
          (1, 4294967000 + 2880, 1.06, b"d"), (1, 4294967000 + 2880, 1.07, b"d")]
    cols, frame_ms = rtp_trace_rows(rx, {}, None)
    assert frame_ms == 20.0
    assert list(cols["media_ts"]) == [0, 960, 1920, 2880]
    assert np.isnan(cols["arrival_s"][2]) and cols["payload"][2] == b""
    assert list(cols["duplicates"]) == [0, 0, 0, 1]
    assert np.nanmin(cols["arrival_s"] - cols["capture_s"]) == pytest.approx(0.0)


def test_ws_trace_rows_counts_samples() -> None:
    cols = ws_trace_rows([(5.0, 640, 640), (5.02, 640, 640)], [b"\0" * 640] * 2, 2, 16000, 20)
    assert list(cols["frame_samples"]) == [320, 320] and list(cols["media_ts"]) == [0, 320]


def test_serve_answers_webrtc_and_websocket_callers(tmp_path) -> None:
    from aiortc import RTCSessionDescription
    from websockets.asyncio.client import connect

    from translab.config import CallConfig
    from translab.media.stream import encode_stream
    from translab.transport.webrtc import advertised_opus, make_packet_track, new_peer, opus_fmtp

    cfg = ServeConfig(http_port=0, ws_port=0, profile="clean-lan", out_dir=tmp_path, inactivity_s=0.5)

    async def main() -> tuple[list, list]:
        server = TranslabServer(cfg)
        addr = await server.start()
        codes = [(await _http(addr["http"], "GET", "/nope"))[0],
                 (await _http(addr["http"], "POST", "/offer", b"hello"))[0],
                 (await _http(addr["http"], "GET", "/offer"))[0]]
        # a WebRTC caller outside the server: its own peer, offer over HTTP
        ccfg = CallConfig(transport="webrtc").resolved()
        t = np.arange(int(48000 * 1.5)) / 48000
        stream = encode_stream((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), ccfg)
        loop = asyncio.get_running_loop()
        start = loop.create_future()
        pc = new_peer()
        with advertised_opus(opus_fmtp(ccfg)):
            pc.addTransceiver(make_packet_track(stream.payload, stream.media_ts, stream.capture_s, 48000, start),
                              direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
        body = json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}).encode()
        status, answer = await _http(addr["http"], "POST", "/offer", body, "application/json")
        assert status == 200, answer
        await pc.setRemoteDescription(RTCSessionDescription(**json.loads(answer)))
        for _ in range(100):
            if pc.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        start.set_result(loop.time() + 0.02)
        # a WebSocket caller at the same time
        async with connect(f"ws://{addr['ws'][0]}:{addr['ws'][1]}/?framing=binary&codec=pcm16&rate=16000&frame_ms=20",
                           compression=None) as ws:
            for _ in range(50):
                await ws.send(b"\0" * 640)
                await asyncio.sleep(0.02)
        await asyncio.sleep(stream.capture_s[-1] + 0.2)
        await pc.close()
        for _ in range(60):
            if len(server.finished) >= 2:
                break
            await asyncio.sleep(0.1)
        finished = list(server.finished)
        await server.close()
        return codes, finished

    codes, finished = asyncio.run(main())
    assert codes == [404, 400, 405]
    by = {f["transport"]: f for f in finished}
    assert by["websocket"]["status"] == "ok" and by["websocket"]["packets_sent"] == 50
    assert by["webrtc"]["status"] == "ok" and by["webrtc"]["packets_sent"] >= len(range(70))
    s = json.loads((tmp_path / by["webrtc"]["call"] / "summary.json").read_text())
    assert s["mode"] == "live" and s["clock"] == "receiver-estimated"
    # an outside caller's audio is no clip: clip "external", its speech unknown (not a failed analysis)
    assert s["clip"] == "external" and s["clip_speech_share"] is None and s["impair_events"] == 0
    assert (tmp_path / by["websocket"]["call"] / "trace.parquet").exists()


def test_serve_echoes_a_webrtc_callers_audio_back(tmp_path) -> None:
    """``reply="echo"``: the caller's own audio comes back on the same connection (aiortc decodes and
    re-encodes it), so a caller's receiver has something to play."""
    from aiortc import RTCSessionDescription

    from translab.config import CallConfig
    from translab.media.stream import encode_stream
    from translab.transport.webrtc import advertised_opus, make_packet_track, new_peer, opus_fmtp

    cfg = ServeConfig(http_port=0, ws_port=0, profile="clean-lan", out_dir=tmp_path, inactivity_s=0.5, reply="echo")

    async def main() -> tuple[int, float, str]:
        server = TranslabServer(cfg)
        addr = await server.start()
        ccfg = CallConfig(transport="webrtc").resolved()
        t = np.arange(int(48000 * 1.5)) / 48000
        stream = encode_stream((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), ccfg)
        loop = asyncio.get_running_loop()
        start = loop.create_future()
        pc = new_peer()
        frames: list[np.ndarray] = []

        @pc.on("track")
        def _track(track) -> None:  # noqa: ANN001
            async def pull() -> None:
                try:
                    while True:
                        frames.append((await track.recv()).to_ndarray().astype(np.float32))
                except Exception:  # noqa: BLE001 - the track ends when the call does
                    pass

            loop.create_task(pull())

        with advertised_opus(opus_fmtp(ccfg)):
            pc.addTransceiver(make_packet_track(stream.payload, stream.media_ts, stream.capture_s, 48000, start),
                              direction="sendrecv")
            await pc.setLocalDescription(await pc.createOffer())
        body = json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}).encode()
        status, answer = await _http(addr["http"], "POST", "/offer", body, "application/json")
        assert status == 200, answer
        sdp = json.loads(answer)["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        for _ in range(100):
            if pc.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        start.set_result(loop.time() + 0.02)
        await asyncio.sleep(stream.capture_s[-1] + 0.5)
        await pc.close()
        await server.close()
        level = float(np.abs(np.concatenate(frames)).max()) if frames else 0.0
        return len(frames), level, sdp

    n, level, sdp = asyncio.run(main())
    assert "a=sendrecv" in sdp
    assert n > 20 and level > 1000  # 20 ms frames of the 300 Hz tone, not silence (int16 scale)


def test_cli_serve_reply_options(tmp_path) -> None:
    import subprocess
    import sys

    base = [sys.executable, "-m", "translab.cli", "serve", "--http-port", "0", "--ws-port", "0", "--out", str(tmp_path)]
    r = subprocess.run(base + ["--reply-clip", "x"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--reply-clip" in r.stderr
    r = subprocess.run(base + ["--reply", "clip", "--for", "0.5"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "caller page at http://127.0.0.1:" in r.stdout and "reply clip" in r.stdout
