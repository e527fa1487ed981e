"""The shipped speech material: every clip has a card (source, licence, measured bandwidth, Silero VAD
activity) that matches the file beside it, and the set covers voices, languages, pauses and bands."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from translab.media import clips
from translab.media.audio import load_wav, write_wav
from translab.media.vad import speech_segments
from translab.paths import CLIPS_DIR


def test_material_covers_voices_languages_pauses_and_full_band() -> None:
    names = clips.list_clips()
    assert len(names) >= 6
    cards = [clips.clip_card(n) for n in names]
    assert len({c["language"].split("-")[0] for c in cards}) >= 2
    assert len({c["speaker"] for c in cards}) >= 6
    assert any(c["kind"] == "human recording" for c in cards)
    full = [c for c in cards if c["sample_rate"] == 48000 and (c["bandwidth"]["above_8k_db"] or -99) > -30]
    assert full, "a 48 kHz clip with energy above 8 kHz"
    gaps = []
    for n in names:
        segs = clips.clip_activity(n)
        gaps += [b.start_ms - a.end_ms for a, b in zip(segs, segs[1:])]
    assert min(gaps) < 400 and max(gaps) > 1000, "short and long pauses"


@pytest.mark.parametrize("name", clips.list_clips())
def test_card_describes_the_file_beside_it(name: str) -> None:
    card = clips.clip_card(name)
    path = CLIPS_DIR / f"{name}.wav"
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), "rerun data/clips/make_cards.py"
    assert card["licence"] and card["source"]
    x, rate = load_wav(path)
    assert card["sample_rate"] == rate
    assert card["bandwidth"] == clips.measure_bandwidth(x, rate)
    segs = clips.clip_activity(name)
    assert segs and all(0 <= s.start_ms < s.end_ms <= 1000 * len(x) / rate + 32 for s in segs)
    assert all(a.end_ms < b.start_ms for a, b in zip(segs, segs[1:]))


def test_stored_activity_is_what_the_vad_finds() -> None:
    x, rate = load_wav(CLIPS_DIR / "slt-weather.wav")
    assert [(s.start_ms, s.end_ms) for s in speech_segments(x, rate)] == [
        (s.start_ms, s.end_ms) for s in clips.clip_activity("slt-weather")
    ]


def test_activity_of_a_users_wav_is_measured(tmp_path) -> None:
    x, rate = load_wav(CLIPS_DIR / "rms-order.wav")
    p = write_wav(tmp_path / "mine.wav", x, rate)
    card = clips.clip_card(p)
    assert "licence" not in card
    assert [(s.start_ms, s.end_ms) for s in clips.clip_activity(p)] == [
        (s.start_ms, s.end_ms) for s in clips.clip_activity("rms-order")
    ]


def test_bandwidth_of_constructed_signals() -> None:
    rate = 48000
    t = np.arange(rate) / rate
    low = np.sin(2 * np.pi * 1000 * t)
    bw = clips.measure_bandwidth(low, rate)
    assert bw["above_8k_db"] < -60 and bw["edge_40db_hz"] < 1100
    both = low + np.sin(2 * np.pi * 10000 * t)  # half the energy above 8 kHz: -3 dB
    assert clips.measure_bandwidth(both, rate)["above_8k_db"] == pytest.approx(-3.0, abs=0.2)
    assert clips.measure_bandwidth(low[:16000], 16000)["above_8k_db"] is None
