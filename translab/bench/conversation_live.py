"""A live direct-ws conversation through the in-process emulator against its simulation (same
profile, seed, script and fixed think time): turn-latency p50 of each, their difference, the live
budget's parts, and how loaded the host was (event-loop stalls). About 15 s of real time."""

from __future__ import annotations

from translab.conversation.live import live_converse
from translab.conversation.model import ThinkTime
from translab.conversation.simulate import ConversationConfig, converse


def run() -> dict:
    """Figures (ms) of one 3-turn live conversation with one barge-in on broadband, seed 1."""
    cfg = ConversationConfig(turns=3, bargein_every=2, seed=1, think=ThinkTime(315, 0))
    live, sim = live_converse(cfg, realtime=True), converse(cfg)
    out: dict[str, float] = {}
    for k in ("turn_latency_p50_ms", "uplink_p50_ms", "vad_p50_ms", "think_p50_ms", "downlink_p50_ms",
              "bargein_stop_p50_ms"):
        out[f"live_{k}"] = round(float(live.summary[k]), 1)
        out[f"sim_{k}"] = round(float(sim.summary[k]), 1)
    out["live_minus_sim_p50_ms"] = round(out["live_turn_latency_p50_ms"] - out["sim_turn_latency_p50_ms"], 1)
    out["target_abs_diff_ms"] = 20.0
    out["host_stalls"] = float(live.figures.get("host_stalls", 0))
    out["host_stall_max_ms"] = round(float(live.figures.get("host_stall_max_ms", 0.0)), 1)
    out["call_s"] = round(float(live.summary["duration_s"]), 1)
    return out
