"""Cost of a simulated conversation per caller turn, on each topology (no WER), and of the
recogniser per second of audio when translab[asr] is installed."""

from __future__ import annotations

from translab.bench import time_s
from translab.conversation.simulate import TOPOLOGIES, ConversationConfig, converse


def run() -> dict:
    """Best-of-2 wall time (s) of a 4-turn conversation with one barge-in per topology, per turn,
    and per second of conversation (the script's duration)."""
    out: dict[str, float] = {}
    turns = 4
    for topology in TOPOLOGIES:
        cfg = ConversationConfig(topology=topology, turns=turns, bargein_every=2, seed=1)
        duration = converse(cfg).summary["duration_s"]  # also warms Silero, the clip cache, libopus
        wall = time_s(lambda: converse(cfg), 2, stat="best")
        out[f"{topology}_per_turn_s"] = round(wall / turns, 4)
        out[f"{topology}_realtime_factor"] = round(duration / wall, 1)
    try:
        from translab.media.clips import load_clip
        from translab.metrics.asr import AsrUnavailable, recognise

        clip = load_clip("slt-weather", 16000)
        recognise(clip[:16000], 16000)
        out["asr_s_per_audio_s"] = round(time_s(lambda: recognise(clip, 16000), 1) / (len(clip) / 16000), 3)
    except AsrUnavailable:  # the optional extra is not installed
        out["asr_s_per_audio_s"] = float("nan")
    out["target_per_turn_s"] = 1.0
    return out
