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


@pytest.mark.parametrize("topology", ["webrtc-gateway", "twilio"])
def test_live_rtp_topology_agrees_with_its_simulation_and_the_edge_stops_on_barge_in(topology):
    # webrtc-gateway: caller (aiortc, translab's Opus) -- broadband UDP -- aiortc gateway -- colocated
    # TCP -- model. twilio: caller -- PSTN-like PCMU RTP on pstn-bridge (UDP) -- carrier/Twilio edge
    # (aiortc) -- twilio-json -- bridge -- realtime-json audio/pcmu -- model; both WebSockets on
    # colocated. The simulation models each edge as aiortc's receiver (aiortc-stock), with the same
    # draws on every leg (the same packets are lost on the caller's leg live and simulated).
    cfg = ConversationConfig(topology=topology, edge_playout="aiortc-stock", turns=3, bargein_every=2, seed=1,
                             think=ThinkTime(315, 0))
    live, sim = _live(cfg), converse(cfg)
    run = live.live
    assert len(run.up_leg.trace) == len(_sim_up_lost(cfg))
    assert list(run.up_leg.trace["arrival_s"].isna()) == list(_sim_up_lost(cfg))
    assert live.summary["turns_answered"] == 3
    t = live.turns
    assert np.allclose(t[PARTS].sum(axis=1), t["turn_latency_ms"], atol=1e-6)
    # the criterion, and each part's p50 too: the gateway forwards frames in aiortc's release
    # order, the carrier's sink ticks on the call grid, so the model hears the same audio as
    # simulated and Silero decides on the same chunks. Both RTP legs' packets enter the emulated
    # path on the simulation's send grid and their arrival is the emulator's delivery (the wire:
    # translab.conversation.rtp_wire), so the caller's jitter buffer sees the simulated arrivals
    # to within the emulator's release accuracy; the model runs in its own process (its Silero
    # scoring no longer delays the call's event loop)
    for part in PARTS:
        assert abs(t[part].median() - sim.turns[part].median()) < 20, part + _show(live, sim)
    assert abs(live.summary["turn_latency_p50_ms"] - sim.summary["turn_latency_p50_ms"]) < 20, _show(live, sim)
    # every packet was launched on its grid time and its delivery noted on the wire
    assert live.figures["rtp_up_wire_unmatched"] == live.figures["rtp_down_wire_unmatched"] == 0, live.figures
    # the edge's real handling of aiortc's frames = the aiortc-stock model's on the same arrivals
    # (within the decode and task wake-up: a host stall delays aiortc's delivery, the model only
    # sees the arrival)
    assert live.figures["edge_vs_model_p50_ms"] < 5, live.figures
    # barge-in: the edge stopped sending the reply (gateway) or Twilio flushed it on the bridge's
    # clear; the caller's jitter buffer drains what it holds
    b = t.iloc[2]
    assert b["interrupts"] and abs(b["bargein_stop_ms"] - sim.turns.iloc[2]["bargein_stop_ms"]) < 60, _show(live, sim)
    if topology == "webrtc-gateway":
        assert live.figures["truncates_sent"] == live.figures["truncates_accepted"] == 1
    else:
        # the bridge answers every speech_started with a clear (a no-op when Twilio holds nothing)
        assert run.up_leg.trace.attrs["codec"] == "pcmu"
        clears = [type(e.event).__name__ for e in run.bridge.forwarded].count("TwilioClear")
        assert clears == sum(type(e).__name__ == "SpeechStarted" for _, e in run.bridge.received) == 3
        # marks: one after each media message; Twilio echoed them in order (with its sequence
        # numbers) once the audio before each had played; the bridge truncated the interrupted
        # reply at the last echoed mark's audio position, and the model took it
        kinds = [type(e.event).__name__ for e in run.bridge.forwarded if type(e.event).__name__ != "ResponseCreated"]
        assert kinds.count("TwilioMark") == kinds.count("AudioDelta") > 0
        assert all(a == "AudioDelta" for a, b in zip(kinds, kinds[1:]) if b == "TwilioMark")
        sent = [e.event.name for e in run.bridge.forwarded if type(e.event).__name__ == "TwilioMark"]
        echoed = [m.name for _, m in run.bridge.echoes]
        assert echoed == run.twilio.echoed and echoed == [n for n in sent if n in set(echoed)]
        assert [m.sequence_number for _, m in run.bridge.echoes] == list(range(1, len(echoed) + 1))
        assert len(run.bridge.truncates) == 1 == live.figures["truncates_sent"] == live.figures["truncates_accepted"]
        at, trunc = run.bridge.truncates[0]
        # the clear dropped the interrupted reply's pending marks: Twilio never echoed them
        assert any(n.startswith(trunc.item_id + "-") and n not in set(echoed) for n in sent)
        heard = [m for t, m in run.bridge.echoes if t <= at and m.name.startswith(trunc.item_id + "-")]
        positions = {n: ms for n, (_, ms) in _mark_positions(run).items()}
        assert trunc.audio_end_ms == (int(positions[heard[-1].name]) if heard else 0)
        # the simulation's bridge, on the simulated echoes: the same reply, within one 100 ms chunk
        (_, strunc), = sim.bridge_truncates
        assert strunc.item_id == trunc.item_id and abs(strunc.audio_end_ms - trunc.audio_end_ms) <= 100, (trunc, strunc)


def _mark_positions(run):
    """Each mark the bridge sent: (item, audio position in ms after the media before it)."""
    from translab.conversation.marks import MarkBook

    book = MarkBook(8000)
    for e in run.bridge.forwarded:
        if type(e.event).__name__ == "AudioDelta":
            book.after_media(e.event)
    return book.names


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
