"""A live direct-ws conversation over real loopback WebSockets (no network emulator yet): the
scripted caller streams its microphone in real time to :class:`~translab.conversation.server.ModelServer`
and plays replies as they arrive; the same reply analysis as the simulation turns what the caller
received into per-turn latencies. A first step towards live conversations through the emulator:
the access leg here is the loopback interface itself.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pandas as pd

from translab.conversation import protocol as p
from translab.conversation.model import Emitted, ModelParams
from translab.conversation.script import build_script
from translab.conversation.server import ModelServer
from translab.conversation.simulate import ConversationConfig, _replies, expected_first_audio_s
from translab.errors import ConfigError
from translab.media.audio import to_int16

FRAME_S = 0.020


async def _run(cfg: ConversationConfig) -> tuple[list[tuple[float, Any]], Any, ModelServer]:
    from websockets.asyncio.client import connect

    script = build_script(cfg.turns, cfg.caller_clips, cfg.agent_clip, bargein_every=cfg.bargein_every,
                          expected_first_audio_s=expected_first_audio_s(cfg))
    pcm = to_int16(script.caller_audio(24000)).astype("<i2").tobytes()
    n = int(FRAME_S * 24000) * 2
    received: list[tuple[float, Any]] = []
    td = p.TurnDetection(cfg.vad.threshold, int(cfg.vad.prefix_padding_ms), int(cfg.vad.silence_duration_ms))
    async with ModelServer([r[0] for r in script.replies], ModelParams(cfg.think, cfg.pacing), cfg.seed) as server:
        async with connect(server.url, max_size=2**22) as ws:
            loop = asyncio.get_running_loop()
            t0 = loop.time()

            async def receive() -> None:
                async for msg in ws:
                    received.append((loop.time() - t0, p.decode_realtime(msg)))

            task = asyncio.create_task(receive())
            await ws.send(p.encode(p.SessionUpdate(turn_detection=td)))
            for k in range(len(pcm) // n):
                await asyncio.sleep(max(0.0, t0 + (k + 1) * FRAME_S - loop.time()))
                await ws.send(p.encode(p.InputAudioAppend(pcm[k * n:(k + 1) * n])))
            await asyncio.sleep(1.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return received, script, server


def live_direct_ws(cfg: ConversationConfig) -> pd.DataFrame:
    """Run ``cfg`` (topology direct-ws) live over loopback in real time; per caller turn its end
    (caller clock, s), when its reply's first sample played at the caller (s) and the latency (ms).
    Barge-in is not scripted here (``bargein_every`` must be 0)."""
    if cfg.topology != "direct-ws" or cfg.bargein_every:
        raise ConfigError("live", f"{cfg.topology}, barge-in {cfg.bargein_every}",
                          "direct-ws without barge-in (the only live conversation built so far)")
    received, script, _ = asyncio.run(_run(cfg))
    events = [(Emitted(t, ev), t) for t, ev in received]  # send times unknown here: arrival stands in
    replies = _replies(events, p.AudioFormat(), cfg.pacing.chunk_ms, cfg.flush)
    rows = []
    for turn, rep in zip(script.turns, replies + [None] * len(script.turns)):
        heard = rep.start_s if rep is not None else math.nan
        rows.append({"turn": turn.index, "end_s": turn.end_s, "heard_s": heard,
                     "turn_latency_ms": 1000 * (heard - turn.end_s)})
    return pd.DataFrame(rows)


def agreement(cfg: ConversationConfig) -> dict[str, float]:
    """Live (loopback) against simulated (``clean-lan``) turn latency for the same script and a fixed
    think time: p50 of each and of the per-turn difference (ms)."""
    from dataclasses import replace

    from translab.conversation.simulate import converse

    live = live_direct_ws(cfg)
    sim = converse(replace(cfg, profile="clean-lan")).turns
    diff = live["turn_latency_ms"].to_numpy() - sim["turn_latency_ms"].to_numpy()
    return {"live_p50_ms": float(np.nanmedian(live["turn_latency_ms"])),
            "sim_p50_ms": float(np.nanmedian(sim["turn_latency_ms"])),
            "diff_p50_ms": float(np.nanmedian(diff)), "turns": float(np.isfinite(diff).sum())}
