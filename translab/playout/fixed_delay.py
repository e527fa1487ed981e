"""``fixed:<ms>``: a static jitter buffer. Slot k plays at its capture time (last sample) + target.

The play clock starts at the first slot's capture time + target and runs without ever stretching,
so every frame's mouth-to-ear latency (first sample captured to first sample played) is
``frame + target``. A packet that has not arrived when its slot starts playing is too late: it is
counted in ``packetsDiscarded`` (if it arrives at all) and its slot is concealed.
"""

from __future__ import annotations

import pandas as pd

from translab.playout.receiver import PlayoutResult, Receiver


def play_fixed(trace: pd.DataFrame, *, target_ms: float, conceal: str, policy: str) -> PlayoutResult:
    """Play ``trace`` with a fixed playout delay of ``target_ms`` (ms) after capture."""
    rx = Receiver(trace, conceal)
    s = rx.slots
    target_s = target_ms / 1000.0
    rx.start(s.cap_start[0] + rx.frame_s + target_s)
    for k in range(s.n):
        if s.arrived(k, rx.t):
            rx.play_decoded(k, rx.decode(k), target_s)
        else:
            rx.conceal_slot(k, rx.frame_n, target_s)
    rx.stats.jitterBufferMinimumDelay = rx.stats.jitterBufferTargetDelay
    return rx.result(policy, conceal, {"targetDelayMs": target_ms})
