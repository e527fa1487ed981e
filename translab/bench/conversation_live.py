"""A live conversation through the in-process emulator against its simulation (same profile, seed,
script and fixed think time) on each topology: turn-latency p50 of each, their difference, the live
budget's parts, and how loaded the host was (event-loop stalls). About 20 s of real time for
direct-ws and 30 s each for webrtc-gateway and twilio (aiortc set-up, the carrier's and gateway's
jitter buffers)."""

from __future__ import annotations

import time

from translab.conversation.live import LIVE_TOPOLOGIES, live_converse
from translab.conversation.model import ThinkTime
from translab.conversation.simulate import ConversationConfig, converse

PARTS = ("turn_latency_p50_ms", "uplink_p50_ms", "vad_p50_ms", "think_p50_ms", "downlink_p50_ms",
         "bargein_stop_p50_ms")


def run() -> dict:
    """Figures (ms, keys prefixed by the topology) of one 3-turn live conversation with one barge-in
    per topology, seed 1, on the topology's default access leg (broadband; twilio: pstn-bridge), the
    RTP edges aiortc's own receiver live and simulated (``edge_playout`` aiortc-stock); ``wall_s``: the
    real time it took (live call and simulation)."""
    out: dict[str, float] = {}
    for topology in LIVE_TOPOLOGIES:
        t0 = time.perf_counter()
        cfg = ConversationConfig(topology=topology, turns=3, bargein_every=2, seed=1, think=ThinkTime(315, 0),
                                 edge_playout="adaptive" if topology == "direct-ws" else "aiortc-stock")
        live, sim = live_converse(cfg, realtime=True), converse(cfg)
        pre = f"{topology}_"
        for k in PARTS:
            out[f"{pre}live_{k}"] = round(float(live.summary[k]), 1)
            out[f"{pre}sim_{k}"] = round(float(sim.summary[k]), 1)
        out[f"{pre}live_minus_sim_p50_ms"] = round(float(live.summary["turn_latency_p50_ms"])
                                                   - float(sim.summary["turn_latency_p50_ms"]), 1)
        out[f"{pre}host_stalls"] = float(live.figures.get("host_stalls", 0))
        out[f"{pre}host_stall_max_ms"] = round(float(live.figures.get("host_stall_max_ms", 0.0)), 1)
        out[f"{pre}call_s"] = round(float(live.summary["duration_s"]), 1)
        out[f"{pre}wall_s"] = round(time.perf_counter() - t0, 1)
    out["target_abs_diff_ms"] = 20.0
    return out
