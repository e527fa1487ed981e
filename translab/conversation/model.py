"""The realtime-model stand-in: what a hosted speech-to-speech model does on the wire, without AI.

A pure state machine (time passed in, a seeded ``numpy.random.Generator``, no sockets, no clock):
client events go in with the time they reached the model, server events come out with the time the
model sends them. The simulator and the thin WebSocket server (:mod:`.server`) drive the same object.

What it does, as the OpenAI Realtime API documents it:

* **Turn detection** with ``server_vad``: the input audio (PCM16 24 kHz, or G.711 mu-law 8 kHz) is
  resampled to 16 kHz and scored by Silero VAD v6 in 32 ms chunks (:mod:`translab.media.vad`, the
  lead's detector); :class:`~translab.media.vad.ServerVad` turns the probabilities into
  ``speech_started`` / ``speech_stopped`` with the session's threshold, prefix_padding_ms and
  silence_duration_ms. A chunk is scored when its last sample has arrived, so a decision is sent at
  the arrival time of the append that completed the deciding chunk.
* **A response** per detected turn (``create_response``): ``committed`` and ``response.created`` at
  the stop decision, then after a *think time* (model + TTS time to first audio, drawn from
  :class:`ThinkTime`) the reply's audio in ``response.output_audio.delta`` chunks paced by
  :class:`ReplyPacing`, then ``response.output_audio.done`` and ``response.done``.
* **Barge-in** (``interrupt_response``): speech starting while a response is still being generated
  cancels it: no further deltas, ``output_audio.done`` and ``response.done`` with status
  ``cancelled``. ``conversation.item.truncate`` records how much of an item the user heard; an
  ``audio_end_ms`` beyond the audio sent is an ``error`` event, as the API answers.

Replies are pre-rendered speech (float audio at the output rate), used in turn order, cycling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from translab.conversation import protocol as p
from translab.errors import ConfigError, check_choice, check_range
from translab.media.audio import to_int16
from translab.media.g711 import ulaw_decode, ulaw_encode
from translab.media.vad import CHUNK_SAMPLES, VAD_RATE, ServerVad, SileroModel, VadParams

PACINGS = ("burst", "realtime")


@dataclass(frozen=True)
class ThinkTime:
    """Time from the end-of-turn decision to the first reply audio leaving the model (ms):
    lognormal with median ``median_ms`` and log-sd ``sigma`` (``sigma`` 0: always the median).

    Defaults from OpenAI's GPT-4o announcement ("Hello GPT-4o", 13 May 2024: it "can respond to audio
    inputs in as little as 232 milliseconds, with an average of 320 milliseconds"): a lognormal with
    mean 320 ms and 5th percentile 232 ms has median 315 ms and sigma 0.19. Whether OpenAI's figure
    includes their own end-pointing is not stated; here it is only the model's share, the VAD's is
    measured separately. (REFERENCE.md §9: about 0.5 s voice-to-voice was shown with co-located models.)
    """

    median_ms: float = 315.0
    sigma: float = 0.19

    def __post_init__(self) -> None:
        check_range("think_median_ms", self.median_ms, 0.0, 60_000.0, "ms")
        check_range("think_sigma", self.sigma, 0.0, 3.0)

    def draw_ms(self, rng: np.random.Generator) -> float:
        """One think time (ms). Always draws one variate, so the stream does not depend on sigma."""
        z = float(rng.standard_normal())
        return self.median_ms * math.exp(self.sigma * z)


@dataclass(frozen=True)
class ReplyPacing:
    """How reply audio leaves the model: ``chunk_ms`` of audio per delta (ms).

    ``burst`` (hosted TTS): the TTS makes audio ``speed`` times faster than real time and the model
    sends each chunk as soon as it is made, but stays at most ``lead_ms`` ahead of real time (inf:
    no limit). ``realtime``: chunk k leaves exactly when it is due to play (k x chunk_ms after the
    first): the just-in-time pacer behind the 100-350 ms gaps users report over WebSocket
    (pipecat #3315). Defaults are assumptions, not measured vendor figures.
    """

    mode: str = "burst"
    chunk_ms: float = 100.0
    speed: float = 4.0
    lead_ms: float = math.inf

    def __post_init__(self) -> None:
        check_choice("pacing", self.mode, PACINGS)
        check_range("chunk_ms", self.chunk_ms, 10.0, 1000.0, "ms")
        check_range("tts_speed", self.speed, 1.0, 1000.0, "x real time")
        if not (self.lead_ms >= 0):
            raise ConfigError("lead_ms", self.lead_ms, "a number >= 0 ms (inf: no limit)")

    def offsets_s(self, n_chunks: int) -> np.ndarray:
        """Send time of each chunk after the first (s)."""
        due = np.arange(n_chunks) * self.chunk_ms / 1000.0
        if self.mode == "realtime":
            return due
        made = due / self.speed
        out: np.ndarray = np.maximum(made, due - self.lead_ms / 1000.0)
        return out


@dataclass(frozen=True)
class ModelParams:
    """Everything the stand-in's behaviour depends on, besides the session (set by session.update)."""

    think: ThinkTime = ThinkTime()
    pacing: ReplyPacing = ReplyPacing()
    beta_delta_name: bool = False  # emit response.audio.delta instead of response.output_audio.delta


@dataclass(frozen=True)
class Emitted:
    """A server event and the time the model sends it (s, call clock)."""

    at_s: float
    event: p.RealtimeEvent


@dataclass
class TurnRecord:
    """What the model did for one detected user turn (times in s on the call clock; audio in ms of
    the input buffer). ``cancelled``: barge-in stopped the reply; ``sent_ms``: reply audio sent."""

    item_id: str
    audio_start_ms: float
    started_at_s: float
    audio_end_ms: float = math.nan
    stopped_at_s: float = math.nan
    decided_ms: float = math.nan
    response_id: str = ""
    reply_item_id: str = ""
    think_ms: float = math.nan
    first_audio_s: float = math.nan
    last_audio_s: float = math.nan
    reply_ms: float = 0.0
    sent_ms: float = 0.0
    cancelled: bool = False
    cancelled_at_s: float = math.nan
    truncated_ms: float = math.nan


class StreamResampler:
    """Integer-ratio polyphase resampler that keeps its filter state between blocks, so a stream
    resampled block by block equals the whole stream resampled at once (Kaiser FIR; group delay
    ``delay_s``)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        g = math.gcd(from_rate, to_rate)
        self.up, self.down = to_rate // g, from_rate // g
        taps = 20 * max(self.up, self.down) + 1
        from scipy.signal import firwin  # scipy is heavy: imported when a resampler is made

        self.h = firwin(taps, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self.zi = np.zeros(taps - 1)
        self.phase = 0  # index (in the upsampled stream) of the next output sample
        self.delay_s = (taps - 1) / 2 / (from_rate * self.up)

    def process(self, x: np.ndarray) -> np.ndarray:
        if self.up == 1 and self.down == 1:
            return np.asarray(x, dtype=np.float64)
        u = np.zeros(len(x) * self.up)
        u[:: self.up] = x
        from scipy.signal import lfilter

        y, self.zi = lfilter(self.h, 1.0, u, zi=self.zi)
        out: np.ndarray = y[self.phase :: self.down]
        self.phase = (self.phase - len(u)) % self.down
        return out


def _decode_input(fmt: p.AudioFormat, audio: bytes) -> np.ndarray:
    """Input audio bytes -> float samples at the format's rate."""
    if fmt.type == "audio/pcmu":
        return ulaw_decode(audio).astype(np.float64) / 32768.0
    if fmt.type == "audio/pcm":
        return np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    raise ConfigError("input format", fmt.type, "audio/pcm, audio/pcmu")


def encode_output(fmt: p.AudioFormat, audio: np.ndarray) -> bytes:
    """Float samples at the output format's rate -> the delta's bytes."""
    x = to_int16(np.asarray(audio, dtype=np.float32))
    if fmt.type == "audio/pcmu":
        return ulaw_encode(x)
    return x.astype("<i2").tobytes()


class RealtimeModel:
    """The stand-in (see the module docstring). ``replies``: float audio at 24 kHz, one per turn
    (cycled). ``rng``: seeded generator for think times. ``probability``: a chunk scorer (512 samples
    at 16 kHz -> speech probability); default a fresh Silero model.

    Drive it with :meth:`receive` (a client event that arrived at ``now_s``) and :meth:`due` (server
    events whose send time has come); :meth:`next_due_s` says when to call :meth:`due` next.
    Times must not go backwards.
    """

    def __init__(
        self,
        replies: Sequence[np.ndarray],
        rng: np.random.Generator,
        params: ModelParams = ModelParams(),
        probability: Callable[[np.ndarray], float] | None = None,
    ) -> None:
        if not replies:
            raise ConfigError("replies", "none", "at least one reply clip")
        self.replies = [np.asarray(r, dtype=np.float32) for r in replies]
        self.rng = rng
        self.params = params
        self.session = p.SessionUpdate()
        self._score = probability or SileroModel().probability
        self._n_events = 0
        self._pending: list[Emitted] = []  # scheduled deltas and their done events, in time order
        self._active: TurnRecord | None = None  # the turn whose response is still being sent
        self._responses: dict[str, TurnRecord] = {}
        self.turns: list[TurnRecord] = []
        self.truncations: list[tuple[float, p.ItemTruncate]] = []
        self.received_audio: list[np.ndarray] = []  # input audio as received (float at the input rate)
        self._configure(self.session)

    # --- session ----------------------------------------------------------------------------------
    def _configure(self, s: p.SessionUpdate) -> None:
        self.session = s
        td = s.turn_detection
        self.vad = ServerVad(VadParams(td.threshold, td.prefix_padding_ms, td.silence_duration_ms)) if td else None
        self._resampler = StreamResampler(s.input_format.rate, VAD_RATE)
        self._vad_buf = np.zeros(0)
        self._fed_ms = 0.0

    @property
    def input_rate(self) -> int:
        return self.session.input_format.rate

    def _id(self) -> str:
        self._n_events += 1
        return f"event_{self._n_events}"

    # --- driving ----------------------------------------------------------------------------------
    def next_due_s(self) -> float | None:
        """When the next scheduled event leaves (s), or None."""
        return self._pending[0].at_s if self._pending else None

    def due(self, now_s: float) -> list[Emitted]:
        """Scheduled events with a send time up to ``now_s``, in order (their event ids are given and
        the reply audio counted as sent now)."""
        n = 0
        while n < len(self._pending) and self._pending[n].at_s <= now_s + 1e-12:
            n += 1
        out, self._pending = self._pending[:n], self._pending[n:]
        return [self._release(e) for e in out]

    def _release(self, e: Emitted) -> Emitted:
        ev = replace(e.event, event_id=self._id())  # type: ignore[arg-type]  # scheduled: deltas and done events
        turn = self._responses.get(getattr(ev, "response_id", ""))
        if turn is not None and isinstance(ev, p.AudioDelta):
            fmt = self.session.output_format
            turn.sent_ms += 1000.0 * len(ev.delta) / (1 if fmt.type == "audio/pcmu" else 2) / fmt.rate
            turn.last_audio_s = e.at_s
        if isinstance(ev, p.ResponseDone) and self._active is turn:
            self._active = None
        return Emitted(e.at_s, ev)

    def receive(self, event: p.RealtimeEvent, now_s: float) -> list[Emitted]:
        """Handle one client event that reached the model at ``now_s`` (s); the events it sends now."""
        if isinstance(event, p.SessionUpdate):
            self._configure(event)
            return []
        if isinstance(event, p.InputAudioAppend):
            return self._append(event.audio, now_s)
        if isinstance(event, p.ItemTruncate):
            return self._truncate(event, now_s)
        return [Emitted(now_s, p.ErrorEvent(self._id(), f"{type(event).TYPE} is not a client event", param="type"))]

    # --- input audio and turn detection -----------------------------------------------------------
    def _append(self, audio: bytes, now_s: float) -> list[Emitted]:
        x = _decode_input(self.session.input_format, audio)
        self.received_audio.append(x.astype(np.float32))
        if self.vad is None:
            return []
        self._vad_buf = np.concatenate([self._vad_buf, self._resampler.process(x)])
        out: list[Emitted] = []
        while len(self._vad_buf) >= CHUNK_SAMPLES:
            chunk, self._vad_buf = self._vad_buf[:CHUNK_SAMPLES], self._vad_buf[CHUNK_SAMPLES:]
            for ev in self.vad.feed(self._score(chunk.astype(np.float32))):
                out += self._on_vad(ev.kind, ev.audio_ms, ev.decided_ms, now_s)
        return out

    def _on_vad(self, kind: str, audio_ms: float, decided_ms: float, now_s: float) -> list[Emitted]:
        td = self.session.turn_detection
        assert td is not None
        if kind == "speech_started":
            item = f"item_u{len(self.turns) + 1}"
            self.turns.append(TurnRecord(item_id=item, audio_start_ms=audio_ms, started_at_s=now_s))
            out = [Emitted(now_s, p.SpeechStarted(self._id(), int(round(audio_ms)), item))]
            if td.interrupt_response:
                out += self._cancel(now_s)
            return out
        turn = self.turns[-1]
        turn.audio_end_ms, turn.stopped_at_s, turn.decided_ms = audio_ms, now_s, decided_ms
        prev = self.turns[-2].reply_item_id or self.turns[-2].item_id if len(self.turns) > 1 else None
        out = [
            Emitted(now_s, p.SpeechStopped(self._id(), int(round(audio_ms)), turn.item_id)),
            Emitted(now_s, p.Committed(self._id(), turn.item_id, prev)),
        ]
        if td.create_response:
            out += self._respond(turn, now_s)
        return out

    # --- responses --------------------------------------------------------------------------------
    def _respond(self, turn: TurnRecord, now_s: float) -> list[Emitted]:
        n = len([t for t in self.turns if t.response_id])
        turn.response_id, turn.reply_item_id = f"resp_{n + 1}", f"item_a{n + 1}"
        reply = self.replies[n % len(self.replies)]
        fmt = self.session.output_format
        rate = fmt.rate
        if rate != 24000:  # replies are rendered at 24 kHz
            from translab.media.audio import resample

            reply = resample(reply, 24000, rate)
        pace = self.params.pacing
        per = int(round(pace.chunk_ms * rate / 1000))
        n_chunks = max(1, -(-len(reply) // per))
        reply = np.concatenate([reply, np.zeros(n_chunks * per - len(reply), dtype=np.float32)])  # whole chunks
        think_ms = self.params.think.draw_ms(self.rng)
        first = now_s + think_ms / 1000.0
        turn.think_ms, turn.first_audio_s, turn.reply_ms = think_ms, first, 1000.0 * len(reply) / rate
        offsets = first + pace.offsets_s(n_chunks)
        for k, t in enumerate(offsets):
            delta = encode_output(fmt, reply[k * per:(k + 1) * per])
            self._pending.append(Emitted(float(t), p.AudioDelta(
                "", turn.response_id, turn.reply_item_id, delta, beta=self.params.beta_delta_name)))
        end = float(offsets[-1])
        self._pending.append(Emitted(end, p.AudioDone("", turn.response_id, turn.reply_item_id)))
        self._pending.append(Emitted(end, p.ResponseDone("", turn.response_id, "completed")))
        self._pending.sort(key=lambda e: e.at_s)  # stable: a turn's events keep their order
        self._active = self._responses[turn.response_id] = turn
        return [Emitted(now_s, p.ResponseCreated(self._id(), turn.response_id))]

    def _cancel(self, now_s: float) -> list[Emitted]:
        """Barge-in: drop the active response's unsent audio; done + cancelled now."""
        turn = self._active
        if turn is None:
            return []
        self._pending = [e for e in self._pending if getattr(e.event, "response_id", None) != turn.response_id]
        self._active = None
        turn.cancelled, turn.cancelled_at_s = True, now_s
        return [
            Emitted(now_s, p.AudioDone(self._id(), turn.response_id, turn.reply_item_id)),
            Emitted(now_s, p.ResponseDone(self._id(), turn.response_id, "cancelled")),
        ]

    def _truncate(self, ev: p.ItemTruncate, now_s: float) -> list[Emitted]:
        turn = next((t for t in self.turns if t.reply_item_id == ev.item_id), None)
        if turn is None:
            return [Emitted(now_s, p.ErrorEvent(self._id(), f"item {ev.item_id!r} not found", param="item_id"))]
        if ev.audio_end_ms > turn.sent_ms + 1e-6:
            return [Emitted(now_s, p.ErrorEvent(
                self._id(), f"audio_end_ms {ev.audio_end_ms} is beyond the {turn.sent_ms:.0f} ms of audio sent",
                param="audio_end_ms"))]
        turn.truncated_ms = float(ev.audio_end_ms)
        self.truncations.append((now_s, ev))
        return []
