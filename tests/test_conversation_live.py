"""Live conversations through the in-process emulator against their simulations (real time: each
test is one call of about 15 s; kept few for the CI budget)."""

import math

import numpy as np
import pytest

from translab.conversation.model import ThinkTime
from translab.conversation.simulate import ConversationConfig, converse

pytestmark = [pytest.mark.live, pytest.mark.slow]

PARTS = ["uplink_ms", "vad_ms", "think_ms", "downlink_ms"]
STALL_MS = 50.0
FRAME_MS = 20.0
"""A live call during which the host descheduled the event loop for longer than this is run again (at
most twice): one stall shifts every later turn on aiortc-based edges (their receiver never catches
up), which says something about the host, not about the model being checked."""


def _live(cfg):
    from translab.conversation.live import live_converse

    for _ in range(3):
        live = live_converse(cfg, realtime=True)
        if (live.figures.get("host_stall_max_ms") or 0.0) <= STALL_MS:
            break
    return live


def test_live_direct_ws_through_the_emulator_agrees_with_its_simulation_and_stops_on_barge_in():
    # broadband access (15 ms each way, jitter, 0.1 % loss) on both TCP directions, the same seeded
    # draws as the simulation; fixed think time; turn 2 barges into the reply to turn 1. A loaded
    # host delays single turns (event-loop stalls of 100-800 ms were seen with load 4-6 on two
    # cores); SCHED_RR (when allowed) and the p50 over three turns absorb that; rerun before concluding.
    cfg = ConversationConfig(turns=3, bargein_every=2, seed=1, think=ThinkTime(315, 0))
    live, sim = _live(cfg), converse(cfg)
    assert live.summary["mode"] == "live" and set(live.summary) == set(sim.summary)
    assert list(live.turns.columns) == list(sim.turns.columns)
    assert live.summary["turns_answered"] == 3
    # the criterion: turn-latency p50 within 20 ms of the simulation's
    assert abs(live.summary["turn_latency_p50_ms"] - sim.summary["turn_latency_p50_ms"]) < 20, _show(live, sim)
    # the budget, split at the real send and arrival times logged on one clock, adds up exactly
    t = live.turns
    assert np.allclose(t[PARTS].sum(axis=1), t["turn_latency_ms"], atol=1e-6)
    assert (t[PARTS] > 0).all().all()
    # the think time is the server's: its fixed 315 ms, less Silero's scoring of the deciding
    # append (the decision leaves after it; think runs from the append's arrival), plus wake-up lateness
    assert np.median(t["think_ms"]) == pytest.approx(315, abs=25)
    # barge-in: the model saw the caller start (burst pacing had sent the whole reply already, so
    # nothing was left to cancel there), the client flushed its buffer and truncated the item
    b = t.iloc[2]
    assert b["interrupts"] and math.isfinite(b["bargein_stop_ms"])
    assert 0 < b["bargein_stop_ms"] < 300 and abs(b["bargein_stop_ms"] - sim.turns.iloc[2]["bargein_stop_ms"]) < 60
    replied = live.model.turns
    assert live.figures["truncates_sent"] == live.figures["truncates_accepted"] == 1
    cut = next(r for r in replied if math.isfinite(r.truncated_ms))
    # what the client told the model it had played = what the analysis says it played (floor, ms)
    assert cut.truncated_ms == math.floor(t.iloc[1]["truncate_audio_end_ms"])
    assert 0 < cut.truncated_ms < cut.sent_ms


def test_live_webrtc_gateway_agrees_with_its_simulation_and_the_gateway_stops_on_barge_in():
    # caller (aiortc, translab's Opus) -- broadband UDP -- aiortc gateway -- colocated TCP -- model;
    # the simulation models the gateway as aiortc's receiver (aiortc-stock), the same draws on
    # every leg (the same packets are lost on the caller's leg live and simulated)
    cfg = ConversationConfig(topology="webrtc-gateway", edge_playout="aiortc-stock", turns=3, bargein_every=2,
                             seed=1, think=ThinkTime(315, 0))
    live, sim = _live(cfg), converse(cfg)
    g = live.live
    assert list(g.up_leg.trace["arrival_s"].isna()) == list(_sim_up_lost(cfg))
    assert live.summary["turns_answered"] == 3
    t = live.turns
    assert np.allclose(t[PARTS].sum(axis=1), t["turn_latency_ms"], atol=1e-6)
    # the criterion, and each part's p50 too: the gateway forwards frames in aiortc's release
    # order, so the model hears the same audio as simulated and Silero decides on the same chunks;
    # a host stall during a turn (100-200 ms seen under load 4-6) delays that turn alone
    for part in PARTS:  # the caller's jitter buffer (downlink) may sit one frame off, as below
        bar = 20 + (FRAME_MS if part == "downlink_ms" else 0)
        assert abs(t[part].median() - sim.turns[part].median()) < bar, part + _show(live, sim)
    # the total: the 20 ms, plus one 20 ms frame for the caller's adaptive jitter buffer, whose
    # target moves in whole frames: ms-level arrival differences sometimes set it one frame higher live
    # (seen in about 1 of 6 runs, with every part within 20 ms: e.g. twilio +23.6 ms, downlink +18.7)
    assert abs(live.summary["turn_latency_p50_ms"] - sim.summary["turn_latency_p50_ms"]) < 20 + FRAME_MS, _show(live, sim)
    # aiortc's real deliveries = the aiortc-stock model's releases on the same arrivals (within the
    # decode and task wake-up: a host stall delays aiortc's delivery, the model only sees the arrival)
    assert live.figures["edge_vs_model_p50_ms"] < 5, live.figures
    # barge-in: the gateway stopped sending the reply; the caller's jitter buffer drains what it holds
    b = t.iloc[2]
    assert b["interrupts"] and abs(b["bargein_stop_ms"] - sim.turns.iloc[2]["bargein_stop_ms"]) < 60, _show(live, sim)
    assert live.figures["truncates_sent"] == live.figures["truncates_accepted"] == 1


def _show(live, sim):
    """The live and simulated turns and the host's stalls, for a failure message."""
    cols = ["turn_latency_ms"] + PARTS + ["bargein_stop_ms"]
    return (f"\nlive\n{live.turns[cols].round(1)}\nsim\n{sim.turns[cols].round(1)}\n"
            f"stalls {live.figures.get('host_stalls')} max {live.figures.get('host_stall_max_ms')} ms")


def _sim_up_lost(cfg):
    from translab.conversation.script import build_script
    from translab.conversation.simulate import _uplink, expected_first_audio_s

    c = cfg.resolved()
    script = build_script(c.turns, c.caller_clips, c.agent_clip, bargein_every=c.bargein_every,
                          expected_first_audio_s=expected_first_audio_s(c))
    return _uplink(c, script).caller_leg.trace["arrival_s"].isna()


def test_live_twilio_agrees_with_its_simulation_and_clear_stops_the_agent():
    # caller -- PSTN-like PCMU RTP on pstn-bridge (UDP) -- carrier/Twilio edge (aiortc) -- twilio-json
    # -- bridge -- realtime-json audio/pcmu -- model; both WebSockets on colocated
    cfg = ConversationConfig(topology="twilio", edge_playout="aiortc-stock", turns=3, bargein_every=2, seed=1,
                             think=ThinkTime(315, 0))
    live, sim = _live(cfg), converse(cfg)
    tr = live.live
    # the bridge answers every speech_started with a clear (a no-op when Twilio holds nothing)
    clears = [type(e.event).__name__ for e in tr.bridge.forwarded].count("TwilioClear")
    assert clears == sum(type(e).__name__ == "SpeechStarted" for _, e in tr.bridge.received) == 3
    assert tr.up_leg.trace.attrs["codec"] == "pcmu" and len(tr.up_leg.trace) == len(_sim_up_lost(cfg))
    assert live.summary["turns_answered"] == 3
    t = live.turns
    assert np.allclose(t[PARTS].sum(axis=1), t["turn_latency_ms"], atol=1e-6)
    # as for the gateway: the total and each part within 20 ms on the p50; the carrier's sink clock
    # ticks on the call grid, so it places each frame where the model does
    for part in PARTS:  # the caller's jitter buffer (downlink) may sit one frame off, as below
        bar = 20 + (FRAME_MS if part == "downlink_ms" else 0)
        assert abs(t[part].median() - sim.turns[part].median()) < bar, part + _show(live, sim)
    # the total: the 20 ms, plus one 20 ms frame for the caller's adaptive jitter buffer, whose
    # target moves in whole frames: ms-level arrival differences sometimes set it one frame higher live
    # (seen in about 1 of 6 runs, with every part within 20 ms: e.g. twilio +23.6 ms, downlink +18.7)
    assert abs(live.summary["turn_latency_p50_ms"] - sim.summary["turn_latency_p50_ms"]) < 20 + FRAME_MS, _show(live, sim)
    assert live.figures["edge_vs_model_p50_ms"] < 5, live.figures
    b = t.iloc[2]
    assert b["interrupts"] and abs(b["bargein_stop_ms"] - sim.turns.iloc[2]["bargein_stop_ms"]) < 60, _show(live, sim)
