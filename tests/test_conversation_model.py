"""The realtime-model stand-in as a pure state machine: VAD timing, think time, pacing, barge-in."""

import math

import numpy as np
import pytest

from translab.conversation import protocol as p
from translab.conversation.model import (ModelParams, RealtimeModel, ReplyPacing, StreamResampler, ThinkTime)
from translab.conversation.script import sentences
from translab.errors import ConfigError
from translab.media.audio import resample, to_int16
from translab.media.vad import CHUNK_MS

RATE = 24000
FRAME = 480  # 20 ms at 24 kHz


def _loud(chunk: np.ndarray) -> float:
    """A stand-in scorer for the state-machine tests: speech = energy (Silero is used below)."""
    return 0.9 if np.sqrt(np.mean(chunk ** 2)) > 0.01 else 0.0


def _feed(model, audio: np.ndarray, t0: float = 0.0, transit_s: float = 0.0):
    """Feed ``audio`` (float at 24 kHz) in 20 ms appends, each arriving when its last sample was
    captured plus ``transit_s``; returns every emitted event."""
    pcm = to_int16(audio).astype("<i2").tobytes()
    out = []
    for k in range(len(pcm) // (2 * FRAME)):
        t = t0 + (k + 1) * FRAME / RATE + transit_s
        out += model.due(t)
        out += model.receive(p.InputAudioAppend(pcm[k * 2 * FRAME:(k + 1) * 2 * FRAME]), t)
    return out


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def test_end_pointing_on_a_real_sentence_is_silence_duration_plus_chunk_granularity():
    # Silero on a real sentence with digital silence around it: speech_stopped is decided
    # silence_duration_ms (500, rounded up to 16 chunks = 512 ms) after the end of the last chunk
    # Silero still scores as speech; that chunk ends at most one chunk plus Silero's own tail after
    # the true end. Appends arrive in 20 ms frames, so the decision waits for the frame holding it.
    speech = sentences("awb-directions", RATE)[0][0]
    lead = 0.5
    audio = np.concatenate([_silence(lead), speech, _silence(1.5)])
    model = RealtimeModel([_silence(0.5)], np.random.default_rng(1))
    events = [e for e in _feed(model, audio) if isinstance(e.event, (p.SpeechStarted, p.SpeechStopped))]
    assert [type(e.event) for e in events] == [p.SpeechStarted, p.SpeechStopped]
    true_end = lead + len(speech) / RATE
    started, stopped = events
    # onset: the first chunk Silero scores as speech (a chunk or two into the sentence; flite keeps
    # 50 ms of near-silence at its start) minus the 300 ms prefix padding
    assert 0 <= started.event.audio_start_ms - (1000 * lead - 300) <= 3 * CHUNK_MS
    # the last speech chunk ends within a chunk of the true end (flite's last 50 ms are near-silent)
    assert abs(stopped.event.audio_end_ms / 1000 - true_end) <= CHUNK_MS / 1000
    end_pointing_ms = 1000 * (stopped.at_s - true_end)
    assert 512 - CHUNK_MS <= end_pointing_ms <= 512 + CHUNK_MS + 20


def test_a_turn_gets_committed_a_response_and_paced_audio_after_the_think_time():
    reply = _tone(1.0)
    model = RealtimeModel([reply], np.random.default_rng(3), ModelParams(
        think=ThinkTime(200, 0), pacing=ReplyPacing("burst", chunk_ms=100, speed=4, lead_ms=math.inf)), _loud)
    out = _feed(model, np.concatenate([_silence(0.3), _tone(1.0), _silence(1.5)]))
    out += model.due(math.inf)
    kinds = [type(e.event).__name__ for e in out]
    assert kinds[:5] == ["SpeechStarted", "SpeechStopped", "Committed", "ResponseCreated", "AudioDelta"]
    assert kinds[-2:] == ["AudioDone", "ResponseDone"]
    stop = next(e for e in out if isinstance(e.event, p.SpeechStopped))
    deltas = [e for e in out if isinstance(e.event, p.AudioDelta)]
    assert len(deltas) == 10 and all(len(d.event.delta) == 2 * 2400 for d in deltas)
    assert deltas[0].at_s - stop.at_s == pytest.approx(0.200)
    # four times faster than real time: 25 ms apart
    assert np.diff([d.at_s for d in deltas]) == pytest.approx(np.full(9, 0.025))
    audio = np.frombuffer(b"".join(d.event.delta for d in deltas), "<i2")
    assert np.array_equal(audio, to_int16(reply))  # the reply, unchanged
    assert out[-1].event.status == "completed"
    assert [e.event.event_id for e in out] == [f"event_{i}" for i in range(1, len(out) + 1)]


@pytest.mark.parametrize("pacing, expected", [
    (ReplyPacing("realtime", chunk_ms=100), [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]),
    (ReplyPacing("burst", chunk_ms=100, speed=1000, lead_ms=200), [0.0, 0.0001, 0.0002, 0.1, 0.2, 0.3]),
    (ReplyPacing("burst", chunk_ms=100, speed=2, lead_ms=math.inf), [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]),
])
def test_pacing_sends_chunks_just_in_time_or_ahead_by_at_most_the_lead(pacing, expected):
    assert pacing.offsets_s(6) == pytest.approx(expected)


def test_think_time_is_lognormal_around_the_published_figures():
    think = ThinkTime()
    rng = np.random.default_rng(5)
    x = np.array([think.draw_ms(rng) for _ in range(20000)])
    assert np.median(x) == pytest.approx(315, rel=0.02)
    assert x.mean() == pytest.approx(320, rel=0.02)  # GPT-4o: "an average of 320 milliseconds"
    assert np.percentile(x, 5) == pytest.approx(232, rel=0.03)  # "as little as 232 milliseconds"


def test_barge_in_cancels_the_reply_and_truncate_is_checked_against_what_was_sent():
    model = RealtimeModel([_tone(3.0)], np.random.default_rng(3), ModelParams(
        think=ThinkTime(100, 0), pacing=ReplyPacing("realtime", chunk_ms=100)), _loud)
    out = _feed(model, np.concatenate([_silence(0.3), _tone(1.0), _silence(1.5), _tone(1.0), _silence(1.0)]))
    out += model.due(math.inf)
    second_start = [e for e in out if isinstance(e.event, p.SpeechStarted)][1]
    deltas = [e for e in out if isinstance(e.event, p.AudioDelta) and e.event.response_id == "resp_1"]
    assert deltas and all(d.at_s <= second_start.at_s for d in deltas)
    assert any(isinstance(e.event, p.AudioDelta) and e.event.response_id == "resp_2" for e in out)  # next turn
    after = [type(e.event).__name__ for e in out if e.at_s == second_start.at_s]
    assert after[-3:] == ["SpeechStarted", "AudioDone", "ResponseDone"]
    done = next(e.event for e in out if isinstance(e.event, p.ResponseDone) and e.event.response_id == "resp_1")
    assert done.status == "cancelled"
    turn = model.turns[0]
    assert turn.cancelled and turn.sent_ms == pytest.approx(100 * len(deltas))
    t = second_start.at_s + 0.05
    assert model.receive(p.ItemTruncate(turn.reply_item_id, int(turn.sent_ms) - 50), t) == []
    assert model.turns[0].truncated_ms == turn.sent_ms - 50
    err = model.receive(p.ItemTruncate(turn.reply_item_id, int(turn.sent_ms) + 500), t)
    assert isinstance(err[0].event, p.ErrorEvent) and err[0].event.param == "audio_end_ms"
    err = model.receive(p.ItemTruncate("item_zz", 10), t)
    assert err[0].event.param == "item_id"


def test_without_interrupt_response_the_reply_plays_on():
    model = RealtimeModel([_tone(3.0)], np.random.default_rng(3), ModelParams(
        think=ThinkTime(100, 0), pacing=ReplyPacing("realtime", chunk_ms=100)), _loud)
    model.receive(p.SessionUpdate(turn_detection=p.TurnDetection(interrupt_response=False)), 0.0)
    out = _feed(model, np.concatenate([_silence(0.3), _tone(1.0), _silence(1.5), _tone(1.0), _silence(1.0)]))
    out += model.due(math.inf)
    assert sum(isinstance(e.event, p.AudioDelta) and e.event.response_id == "resp_1" for e in out) == 30


def test_mulaw_session_and_server_events_from_a_client_are_errors():
    model = RealtimeModel([_tone(0.5)], np.random.default_rng(3), probability=_loud)
    model.receive(p.SessionUpdate(p.AudioFormat("audio/pcmu", 8000), p.AudioFormat("audio/pcmu", 8000)), 0.0)
    from translab.media.g711 import ulaw_encode

    tone8 = resample(_tone(1.0), RATE, 8000)
    out = []
    x = np.concatenate([np.zeros(2400, np.float32), tone8, np.zeros(12000, np.float32)])
    for k in range(len(x) // 160):
        t = (k + 1) * 0.02
        out += model.due(t) + model.receive(p.InputAudioAppend(ulaw_encode(to_int16(x[k * 160:(k + 1) * 160]))), t)
    out += model.due(math.inf)
    deltas = [e.event for e in out if isinstance(e.event, p.AudioDelta)]
    assert deltas and len(deltas[0].delta) == 800  # 100 ms of 8 kHz mu-law
    err = model.receive(p.SpeechStarted("e", 0, "i"), 9.0)
    assert isinstance(err[0].event, p.ErrorEvent)


def test_same_seed_same_events():
    def run(seed):
        model = RealtimeModel([_tone(0.5)], np.random.default_rng(seed), probability=_loud)
        out = _feed(model, np.concatenate([_silence(0.3), _tone(1.0), _silence(1.5)])) + model.due(math.inf)
        return [(e.at_s, p.encode(e.event)) for e in out]

    assert run(4) == run(4)
    assert run(4) != run(5)  # the think time differs


def test_stream_resampler_matches_one_shot_filtering_block_by_block():
    x = np.random.default_rng(0).normal(0, 0.1, 24000)
    whole = StreamResampler(24000, 16000).process(x)
    rs = StreamResampler(24000, 16000)
    parts = np.concatenate([rs.process(x[i:i + 480]) for i in range(0, len(x), 480)])
    assert len(whole) == 16000 and np.allclose(parts, whole)
    # a 1 kHz tone keeps its level (passband) after the group delay
    t = np.arange(24000) / 24000
    y = StreamResampler(24000, 16000).process(np.sin(2 * np.pi * 1000 * t))
    assert np.sqrt(np.mean(y[1000:] ** 2)) == pytest.approx(np.sqrt(0.5), rel=0.02)


@pytest.mark.parametrize("kwargs, field", [
    ({"mode": "fast"}, "pacing"), ({"chunk_ms": 1}, "chunk_ms"), ({"speed": 0.5}, "tts_speed"),
    ({"lead_ms": -1}, "lead_ms"),
])
def test_bad_pacing_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        ReplyPacing(**kwargs)
