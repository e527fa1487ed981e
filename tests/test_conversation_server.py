"""The stand-in on a real loopback WebSocket: VAD events, a paced reply, barge-in and errors."""

import asyncio
import math

import numpy as np
import pytest

from translab.conversation import protocol as p
from translab.conversation.model import ModelParams, ReplyPacing, ThinkTime
from translab.conversation.script import sentences
from translab.conversation.server import ModelServer
from translab.media.audio import to_int16

pytestmark = pytest.mark.live


async def _collect(ws, until, timeout=5.0):
    out = []
    loop = asyncio.get_running_loop()
    while True:
        msg = await asyncio.wait_for(ws.recv(), timeout)
        out.append((loop.time(), p.decode_realtime(msg)))
        if until(out[-1][1]):
            return out


async def test_a_spoken_turn_gets_vad_events_and_a_paced_reply_over_a_real_websocket():
    from websockets.asyncio.client import connect

    speech = sentences("awb-directions", 24000)[0][0]
    reply = np.zeros(24000, np.float32)  # 1 s
    params = ModelParams(think=ThinkTime(150, 0), pacing=ReplyPacing("realtime", chunk_ms=100))
    async with ModelServer([reply], params) as server, connect(server.url, max_size=2**22) as ws:
        await ws.send(p.encode(p.SessionUpdate()))
        await ws.send('{"type":"input_audio_buffer.append","audio":"***"}')  # malformed: error, session goes on
        err = p.decode_realtime(await asyncio.wait_for(ws.recv(), 5))
        assert isinstance(err, p.ErrorEvent) and err.param == "audio"
        audio = np.concatenate([np.zeros(7200, np.float32), speech, np.zeros(24000, np.float32)])
        pcm = to_int16(audio).astype("<i2").tobytes()
        receiving = asyncio.create_task(_collect(ws, lambda e: isinstance(e, p.ResponseDone), timeout=10))
        for i in range(0, len(pcm), 9600):  # 200 ms appends in real time, as a microphone gives them
            await ws.send(p.encode(p.InputAudioAppend(pcm[i:i + 9600])))
            await asyncio.sleep(0.2)
        events = await receiving
    kinds = [type(e).__name__ for _, e in events]
    assert kinds[:4] == ["SpeechStarted", "SpeechStopped", "Committed", "ResponseCreated"]
    deltas = [(t, e) for t, e in events if isinstance(e, p.AudioDelta)]
    assert len(deltas) == 10 and events[-1][1].status == "completed"
    created_t = next(t for t, e in events if isinstance(e, p.ResponseCreated))
    # the think time and the real-time pacing are the model's, on the wall clock. The think time
    # runs from the append's arrival, and response.created leaves after Silero has scored that append
    # (six chunks, ~7 ms each here), so the gap seen here is the think time minus that processing;
    # a loaded machine can only make things later, so the upper bounds are loose.
    assert 0.150 - 0.1 <= deltas[0][0] - created_t < 1.0
    assert 0.9 - 0.02 <= deltas[-1][0] - deltas[0][0] < 2.0
    assert server.models[0].turns[0].think_ms == 150
    stopped = next(e for _, e in events if isinstance(e, p.SpeechStopped))
    true_end_ms = 1000 * (7200 + len(speech)) / 24000
    assert -32 <= stopped.audio_end_ms - true_end_ms <= 96  # Silero's hangover: up to three chunks
    assert math.isfinite(server.models[0].turns[0].first_audio_s)
