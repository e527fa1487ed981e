"""Did the impairment land on speech: the overlap columns on a constructed case and on a real call."""

from __future__ import annotations

import numpy as np
import pytest

from translab.config import CallConfig
from translab.link.profiles import load_profile, scheduled_windows
from translab.media.clips import clip_activity
from translab.media.vad import SpeechSegment, speech_overlap_ms
from translab.metrics.impairment import COLUMNS, speech_overlap
from translab.playout.synthetic import packet_trace, voiced
from translab.simulate import simulate

RATE = 16000


def test_overlap_columns_on_a_constructed_case() -> None:
    # 3 s of 20 ms packets, each sent when its last sample is captured (send lag = one frame);
    # speech at 0.9-1.1 s and 1.25-2.0 s of the clip; an outage over send times 1.02-1.32 s hits
    # the audio captured at 1.00-1.30 s: 100 ms + 50 ms of it speech
    lost = list(range(50, 65))  # the packets sent in the window: media 1000-1300 ms
    tr = packet_trace(voiced(3.0, RATE), RATE, delay_s=0.03, lost=lost)
    segs = [SpeechSegment(900.0, 1100.0), SpeechSegment(1250.0, 2000.0)]
    c = speech_overlap(tr, [(1.02, 1.32), (7.0, 7.3)], segs)  # the second window is after the call
    assert set(c) == set(COLUMNS)
    assert c["impair_events"] == 1
    assert c["impair_ms"] == pytest.approx(300.0)
    assert c["impair_speech_ms"] == pytest.approx(150.0)
    assert c["impair_speech_share"] == pytest.approx(0.5)
    # lost packets with at least half their 20 ms in speech: 1000-1100 (5) and 1240-1300 (3)
    assert c["lost_packets"] == 15
    assert c["lost_speech_share"] == pytest.approx(8 / 15)
    assert c["clip_speech_share"] == pytest.approx(950.0 / 3000.0)


def test_no_event_no_loss_gives_nan_shares() -> None:
    tr = packet_trace(voiced(1.0, RATE), RATE, delay_s=0.03)
    c = speech_overlap(tr, [], [SpeechSegment(0.0, 500.0)])
    assert c["impair_events"] == 0 and c["impair_ms"] == 0 and c["lost_packets"] == 0
    assert c["impair_speech_share"] is None and c["lost_speech_share"] is None  # JSON null, not NaN


def test_result_row_records_where_the_handoff_fell() -> None:
    s = simulate(CallConfig(transport="webrtc", profile="4g-handoff", clip="slt-weather", seed=2, metrics=())).summary
    (a, b), = scheduled_windows(load_profile("4g-handoff"), 2, 10.1)
    lag = 0.02  # simulated packets leave when their frame is complete
    expected = speech_overlap_ms(clip_activity("slt-weather"), 1000 * (a - lag), 1000 * (b - lag))
    assert s["impair_events"] == 1 and s["impair_ms"] == pytest.approx(300.0)
    assert s["impair_speech_ms"] == pytest.approx(expected)
    assert s["lost_packets"] >= 15 and 0.0 <= s["lost_speech_share"] <= 1.0
    assert 0.6 < s["clip_speech_share"] < 0.8
    assert s["frames_unplayed"] >= 0


def test_handoffs_fall_on_speech_in_some_seeds_and_in_pauses_in_others() -> None:
    segs = clip_activity("slt-weather")
    p = load_profile("4g-handoff")
    shares = []
    for seed in range(1, 21):
        (a, b), = scheduled_windows(p, seed, 10.0)
        shares.append(speech_overlap_ms(segs, 1000 * (a - 0.02), 1000 * (b - 0.02)) / 300.0)
    shares_arr = np.array(shares)
    assert (shares_arr > 0.99).sum() >= 5 and (shares_arr < 0.01).sum() >= 2
