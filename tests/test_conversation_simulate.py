"""Simulated conversations: the turn budget, checks against independent facts, barge-in on each
path, underruns, determinism, WER on a known transcript."""

import math

import numpy as np
import pandas as pd
import pytest

from translab import trace as trace_mod
from translab.conversation.legs import gaps
from translab.conversation.model import ReplyPacing
from translab.conversation.simulate import TOPOLOGIES, ConversationConfig, converse
from translab.errors import ConfigError
from translab.playout import play

PARTS = ["uplink_ms", "vad_ms", "think_ms", "downlink_ms"]


@pytest.fixture(scope="module", params=TOPOLOGIES)
def bargein_call(request):
    return converse(ConversationConfig(topology=request.param, turns=3, bargein_every=1, seed=3))


def test_budget_parts_add_up_to_the_measured_turn_latency(bargein_call):
    t = bargein_call.turns
    assert t["turn_latency_ms"].notna().all()
    assert np.allclose(t[PARTS].sum(axis=1), t["turn_latency_ms"], atol=1e-6)
    assert (t[PARTS] > 0).all().all()
    # think time is the seeded draw the model made
    assert t["think_ms"].tolist() == pytest.approx([m.think_ms for m in bargein_call.model.turns[:3]])


def test_barge_in_stops_the_agent_on_each_path(bargein_call):
    t = bargein_call.turns
    cut = t[t["interrupts"]]
    assert len(cut) == 2 and cut["bargein_stop_ms"].notna().all()
    # onset -> VAD start (a chunk or two) -> event back -> flush; then what is in flight plays out
    assert (cut["bargein_stop_ms"] > 30).all() and (cut["bargein_stop_ms"] < 450).all()
    # agent audio heard after the onset: at most the time it kept playing (less if it had gaps)
    assert (cut["agent_after_ms"] <= cut["bargein_stop_ms"] + 1e-6).all() and (cut["agent_after_ms"] > 0).all()
    # the interrupted replies were cut short and their truncate point is what was played there
    prev = t.loc[cut.index - 1]
    assert (prev["reply_heard_ms"] < prev["reply_ms"] - 300).all()
    assert (prev["truncate_audio_end_ms"] == prev["reply_heard_ms"]).all()
    # burst pacing: the model had sent the whole reply before the caller spoke, so there was nothing
    # left to cancel there; the listener's side had to flush (and the truncate is within what was sent)
    for m, heard in zip(bargein_call.model.turns[:2], prev["truncate_audio_end_ms"]):
        assert not m.cancelled and heard <= m.sent_ms == m.reply_ms


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_without_flush_the_buffered_reply_keeps_playing(topology):
    flushed = converse(ConversationConfig(topology=topology, turns=2, bargein_every=1, seed=3))
    kept = converse(ConversationConfig(topology=topology, turns=2, bargein_every=1, seed=3, flush=False))
    a, b = flushed.turns.loc[1, "bargein_stop_ms"], kept.turns.loc[1, "bargein_stop_ms"]
    # the model stopped generating, but burst pacing had already sent the whole 2.5 s reply
    assert b > a + 800
    assert kept.turns.loc[0, "reply_heard_ms"] == pytest.approx(kept.turns.loc[0, "reply_ms"])


def test_clean_access_and_colocated_datacenter_give_a_transport_share_of_tens_of_ms():
    r = converse(ConversationConfig(topology="direct-ws", profile="clean-lan", turns=3, seed=4))
    t = r.turns
    # uplink: the 20 ms frame holding the speech end is sent when its last sample is captured and
    # crosses 0.25 ms of LAN: independent of the model and playout
    frame_end = np.ceil(t["end_s"] / 0.020 - 1e-9) * 0.020
    assert (t["uplink_ms"] - 1000 * (frame_end - t["end_s"])).between(0.2, 1.0).all()
    # downlink: burst-paced deltas are played on arrival: the LAN's 0.25 ms plus serialisation
    assert t["downlink_ms"].between(0.2, 2.0).all()
    assert (t["uplink_ms"] + t["downlink_ms"]).max() < 30
    # VAD end-pointing on a clean path: after Silero's own hangover (the last chunk it scores as
    # speech ends within a chunk before to three after the true end), silence_duration_ms rounded up
    # to 32 ms chunks (512 ms), give or take the 20 ms appends in which both the speech end and the
    # deciding chunk reach the model
    assert t["vad_tail_ms"].between(-32, 96).all()
    assert (t["vad_ms"] - t["vad_tail_ms"]).between(512 - 20 - 1, 512 + 20 + 1).all()


@pytest.mark.parametrize("topology", ["webrtc-gateway", "twilio"])
def test_jitter_buffers_on_the_path_add_their_delay_on_a_clean_access_leg(topology):
    r = converse(ConversationConfig(topology=topology, profile="clean-lan", turns=2, seed=4))
    t = r.turns
    # an adaptive jitter buffer in each direction (gateway/carrier up, caller down): tens of ms each
    assert t["uplink_ms"].between(20, 150).all() and t["downlink_ms"].between(20, 150).all()


def test_just_in_time_pacing_over_a_jittery_access_leg_underruns_and_a_lead_does_not():
    jit = converse(ConversationConfig(topology="direct-ws", profile="4g", turns=3, seed=2,
                                      pacing=ReplyPacing("realtime")))
    lead = converse(ConversationConfig(topology="direct-ws", profile="4g", turns=3, seed=2,
                                       pacing=ReplyPacing("burst")))
    assert jit.summary["underruns"] > 0 and jit.summary["underrun_ms"] > 20
    assert lead.summary["underruns"] == 0


def test_underruns_count_a_constructed_stall():
    # five 100 ms chunks of PCM16; the fourth arrives 250 ms after it is due: one stall of 250 ms
    n, per, rate = 5, 2400, 24000
    arrival = np.array([0.0, 0.0, 0.0, 0.55, 0.55])
    rows = {
        "seq": np.arange(n), "media_ts": np.arange(n) * per, "frame_samples": np.full(n, per),
        "capture_s": (np.arange(n) + 1) * 0.1, "send_s": np.zeros(n), "arrival_s": arrival,
        "payload_bytes": np.full(n, 2 * per), "message_bytes": np.full(n, 2 * per), "wire_bytes": np.full(n, 2 * per),
        "transport": ["websocket"] * n, "direction": ["down"] * n, "fec": np.zeros(n, bool),
        "duplicates": np.zeros(n, np.int64), "payload": [np.full(per, 1000, "<i2").tobytes()] * n,
    }
    tr = trace_mod.make_trace(rows, {"codec": "pcm16", "sample_rate": rate, "channels": 1, "frame_ms": 100.0})
    out = play(tr, policy="elastic", conceal="zero")
    assert gaps(out.frames, rate, 0.0, 0.75) == (1, pytest.approx(250.0))
    assert gaps(out.frames, rate, 0.0, 0.3) == (0, 0.0)  # before the stall


def test_same_seed_same_conversation_and_another_seed_differs():
    a = converse(ConversationConfig(topology="webrtc-gateway", profile="4g", turns=2, seed=9))
    b = converse(ConversationConfig(topology="webrtc-gateway", profile="4g", turns=2, seed=9))
    c = converse(ConversationConfig(topology="webrtc-gateway", profile="4g", turns=2, seed=10))
    pd.testing.assert_frame_equal(a.turns, b.turns)
    assert not a.turns["turn_latency_ms"].equals(c.turns["turn_latency_ms"])


@pytest.mark.parametrize("kwargs, field", [
    ({"topology": "carrier-pigeon"}, "topology"), ({"profile": "moon"}, "moon"), ({"dc_profile": "mars"}, "mars"),
    ({"turns": 0}, "turns"), ({"topology": "twilio", "frame_ms": 40}, "frame_ms"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        converse(ConversationConfig(**kwargs))


def test_wer_on_a_clean_path_is_the_recognisers_own_baseline():
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("jiwer")
    r = converse(ConversationConfig(topology="direct-ws", profile="clean-lan", turns=2, seed=1, wer=True))
    t = r.turns
    # TCP loses nothing: the model received the caller's PCM bit for bit, so the recogniser hears
    # exactly what it hears on the clean signal
    assert (t["wer"] == t["wer_clean"]).all()
    assert t["heard_text"].str.len().gt(0).all()
    assert t.loc[0, "heard_text"].startswith("good morning")
    assert not math.isnan(r.summary["wer"])


def test_play_time_of_maps_a_media_instant_through_a_jitter_buffer():
    # a static 40 ms buffer on a perfect 20 ms PCM16 stream: media instant m plays at m + 20 ms + 40 ms;
    # a lost frame maps to the next played frame's start
    from translab.conversation.legs import play_time_of, timeline

    n, per, rate = 10, 320, 16000
    arrival = (np.arange(n) + 1) * 0.02
    arrival[4] = np.nan
    rows = {
        "seq": np.arange(n), "media_ts": np.arange(n) * per, "frame_samples": np.full(n, per),
        "capture_s": (np.arange(n) + 1) * 0.02, "send_s": (np.arange(n) + 1) * 0.02, "arrival_s": arrival,
        "payload_bytes": np.full(n, 2 * per), "message_bytes": np.full(n, 2 * per), "wire_bytes": np.full(n, 2 * per),
        "transport": ["webrtc"] * n, "direction": ["up"] * n, "fec": np.zeros(n, bool),
        "duplicates": np.zeros(n, np.int64), "payload": [np.full(per, 1000, "<i2").tobytes()] * n,
    }
    tr = trace_mod.make_trace(rows, {"codec": "pcm16", "sample_rate": rate, "channels": 1, "frame_ms": 20.0})
    out = play(tr, policy="fixed:40", conceal="zero")
    assert play_time_of(out.frames, rate, per, 0.0305) == pytest.approx(0.0905)
    assert play_time_of(out.frames, rate, per, 0.085) == pytest.approx(0.100 + 0.060)  # frame 4 lost -> frame 5
    assert math.isnan(play_time_of(out.frames, rate, per, 0.5))
    line = timeline(out, 0.4, until_s=0.1)
    assert line[: int(0.06 * rate)].max() == 0 and line[int(0.07 * rate)] > 0 and line[int(0.1 * rate):].max() == 0


def test_quality_of_both_directions_uses_the_labs_metrics():
    r = converse(ConversationConfig(topology="direct-ws", profile="clean-lan", turns=2, seed=1, metrics=("stoi",)))
    # bit-exact uplink: no lag, STOI 1
    assert r.summary["up_align_lag_ms"] == 0 and r.summary["up_stoi"] == pytest.approx(1.0, abs=1e-6)
    g = converse(ConversationConfig(topology="webrtc-gateway", profile="clean-lan", turns=2, seed=1,
                                    metrics=("stoi", "plcmos")))
    # through Opus and the gateway's jitter buffer: the lag is the buffer's, STOI just under 1
    assert 40 <= g.summary["up_align_lag_ms"] <= 100 and 0.95 < g.summary["up_stoi"] < 1.0
    assert 3.0 < g.summary["down_plcmos"] <= 5.0
