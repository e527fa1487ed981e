"""A minimal pipecat voice pipeline to call with ``translab call --target`` / ``translab probe``:
an echo bot (no AI services) behind pipecat's own transports.

* WebRTC: pipecat's ``SmallWebRTCTransport``; ``POST http://HOST:PORT/api/offer`` with JSON
  ``{"sdp", "type", "pc_id"?, "restart_pc"?}`` (the shape pipecat's SmallWebRTC request handler
  takes), answered with ``{"sdp", "type", "pc_id"}``.
* WebSocket: pipecat's ``WebsocketServerTransport`` with its ``TwilioFrameSerializer`` (Twilio
  Media Streams JSON, mu-law 8 kHz) at ``ws://HOST:WS_PORT/``.

``--mode echo`` (default): every audio frame the bot receives goes straight back out
(``InputAudioRawFrame`` -> ``OutputAudioRawFrame``), paced by pipecat's output transport.
``--mode parrot``: pipecat's Silero VAD finds the end of the caller's turn (``--stop-secs`` of
silence) and the bot then plays the caller's utterance back, so a turn latency can be measured. Needs ``pip install
'pipecat-ai[webrtc,websocket]'`` (translab's ``pipecat`` extra). Prints one line
``ready http=PORT ws=PORT`` on stdout when both listen; stops on SIGTERM / Ctrl-C.

    python examples/pipecat_echo_bot.py --http-port 7860 --ws-port 8765
    translab call --target http://127.0.0.1:7860/api/offer --profile 4g
    translab call --target ws://127.0.0.1:8765/ --framing twilio-json --profile 4g
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


def _echo_processor() -> object:
    from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

    class Echo(FrameProcessor):
        """Turns every input audio frame into an output audio frame; passes the rest on."""

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                await self.push_frame(OutputAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate,
                                                          num_channels=frame.num_channels), direction)
            else:
                await self.push_frame(frame, direction)

    return Echo()


def _parrot_processors(stop_secs: float) -> list[object]:
    """pipecat's Silero VAD (the model ships in pipecat's wheel) and a processor that, when the
    VAD says the caller stopped speaking, plays the caller's utterance back: a real turn, so the
    caller can measure turn latency (end of its speech until the reply)."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.frames.frames import (
        Frame, InputAudioRawFrame, OutputAudioRawFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame,
    )
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

    class Parrot(FrameProcessor):
        """Records input audio from speech start to speech stop, then sends it back."""

        def __init__(self) -> None:
            super().__init__()
            self.speaking = False
            self.utterance: list[InputAudioRawFrame] = []

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, VADUserStartedSpeakingFrame):
                self.speaking, self.utterance = True, []
            elif isinstance(frame, VADUserStoppedSpeakingFrame):
                self.speaking = False
                for f in self.utterance:
                    await self.push_frame(OutputAudioRawFrame(audio=f.audio, sample_rate=f.sample_rate,
                                                              num_channels=f.num_channels))
                self.utterance = []
            elif isinstance(frame, InputAudioRawFrame):
                if self.speaking:
                    self.utterance.append(frame)
                return
            await self.push_frame(frame, direction)

    vad = VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=stop_secs)))
    return [vad, Parrot()]


async def _run_pipeline(transport: object, rate: int, mode: str = "echo", stop_secs: float = 0.5) -> None:
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import PipelineRunner
    from pipecat.pipeline.task import PipelineParams, PipelineTask

    middle = [_echo_processor()] if mode == "echo" else _parrot_processors(stop_secs)
    pipeline = Pipeline([transport.input(), *middle, transport.output()])  # type: ignore[attr-defined]
    task = PipelineTask(pipeline, params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate),
                        idle_timeout_secs=None)
    await PipelineRunner(handle_sigint=False).run(task)


async def main(host: str, http_port: int, ws_port: int, rate: int, mode: str = "echo",
               stop_secs: float = 0.5) -> None:
    from aiohttp import web
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.transports.base_transport import TransportParams
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
    from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
    from pipecat.transports.websocket.server import WebsocketServerParams, WebsocketServerTransport

    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: object) -> None:
        t = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or body.get("type") != "offer" or "sdp" not in body:
            return web.json_response({"error": "body must be {sdp, type: offer}"}, status=400)
        conn = SmallWebRTCConnection(ice_servers=[])
        await conn.initialize(sdp=body["sdp"], type=body["type"])
        transport = SmallWebRTCTransport(
            webrtc_connection=conn,
            params=TransportParams(audio_in_enabled=True, audio_out_enabled=True))

        @transport.event_handler("on_client_disconnected")
        async def _gone(_t: object, _c: object) -> None:
            await conn.disconnect()

        spawn(_run_pipeline(transport, rate, mode, stop_secs))
        return web.json_response(conn.get_answer())

    app = web.Application()
    app.router.add_post("/api/offer", offer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, http_port)
    await site.start()
    bound_http = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    serializer = TwilioFrameSerializer(stream_sid="MZ00000000000000000000000000000000",
                                       params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    ws = WebsocketServerTransport(
        params=WebsocketServerParams(audio_in_enabled=True, audio_out_enabled=True,
                                     add_wav_header=False, serializer=serializer, allowed_origins=[]),
        host=host, port=ws_port)
    ready = asyncio.Event()

    @ws.event_handler("on_websocket_ready")
    async def _ready(_t: object) -> None:
        ready.set()

    spawn(_run_pipeline(ws, rate, mode, stop_secs))
    await asyncio.wait_for(ready.wait(), 30)
    print(f"ready http={bound_http} ws={ws_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await runner.cleanup()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, default=7860, help="SmallWebRTC offers (0: any free port)")
    ap.add_argument("--ws-port", type=int, default=8765, help="Twilio-framed WebSocket")
    ap.add_argument("--rate", type=int, default=16000, help="pipeline sample rate (Hz)")
    ap.add_argument("--mode", choices=("echo", "parrot"), default="echo",
                    help="echo: every frame straight back; parrot: the caller's utterance played back "
                    "once pipecat's Silero VAD says it ended (a turn)")
    ap.add_argument("--stop-secs", type=float, default=0.5, help="parrot: VAD silence that ends a turn (s)")
    a = ap.parse_args()
    try:
        asyncio.run(main(a.host, a.http_port, a.ws_port, a.rate, a.mode, a.stop_secs))
    except KeyboardInterrupt:
        sys.exit(0)
