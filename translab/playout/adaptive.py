"""``adaptive``: a NetEq-style jitter buffer.

The target delay comes from :class:`~translab.playout.delay_manager.DelayManager` (95th percentile of
relative packet delay with forgetting, 20 ms buckets, clamped to [min, max]). The wanted playout
offset of a slot (play time minus capture time of its first sample) is the smallest transit time
seen in the last 2 s (arrival minus capture start, which includes the frame itself) plus the target.

Per slot, at play time t:

- the packet is here: decode it; if the current offset exceeds the wanted one by more than
  ``HYSTERESIS_S``, *accelerate* (silence: drop up to the excess; voiced speech: drop one pitch
  period, cross-faded); if it falls short by more than that, *decelerate* (silence: insert up to
  the shortfall as an ``inserted`` block; voiced speech: repeat one pitch period). Every sample
  removed or added is counted (``removedSamplesForAcceleration``, ``insertedSamplesForDeceleration``).
- the packet is not here but a later one is (or none was sent: DTX): the slot is given up and
  concealed (Opus FEC first when ``opus-fec``; Opus PLC after DTX is comfort noise), the packet is
  discarded if it comes later;
- nothing is here: *expand*: play one frame of concealment without consuming the slot (the offset
  grows by a frame, as NetEq's expand does), and look again.

Playout starts at the first arrival plus the start delay (80 ms, NetEq's ``kStartDelayMs``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from translab.playout.delay_manager import DelayManagerConfig, target_timeline
from translab.playout.receiver import PlayoutResult, Receiver
from translab.playout.time_stretch import accelerate, decelerate, is_silent

HYSTERESIS_S = 0.010


def play_adaptive(
    trace: pd.DataFrame, *, conceal: str, policy: str, config: DelayManagerConfig | None = None
) -> PlayoutResult:
    """Play ``trace`` with the adaptive (NetEq-like) policy; ``config`` tunes the delay manager."""
    rx = Receiver(trace, conceal)
    s = rx.slots
    cfg = config or DelayManagerConfig()
    cfg.check()
    if not np.isfinite(s.first_arrival):
        return rx.result(policy, conceal)
    ev_t, tgt_ms, min_tr = target_timeline(s.arrival, s.cap_start, cfg)
    rx.start(s.first_arrival + cfg.start_delay_ms / 1000.0)
    targets: list[float] = []
    k = 0
    rate = rx.rate
    while k < s.n:
        t = rx.t
        i = int(np.searchsorted(ev_t, t + 1e-6, side="right")) - 1
        target_s = (tgt_ms[i] if i >= 0 else cfg.start_delay_ms) / 1000.0
        want = (min_tr[i] if i >= 0 else float(s.first_arrival - s.cap_start[0])) + target_s
        targets.append(target_s)
        if s.arrived(k, t):
            x = rx.decode(k)
            err = (t - s.cap_start[k]) - want
            if err > HYSTERESIS_S:
                y, removed = accelerate(x, rate, int(err * rate))
                rx.stats.removedSamplesForAcceleration += removed
                rx.play_decoded(k, y, target_s)
            elif err < -HYSTERESIS_S:
                if is_silent(x):
                    y, inserted = decelerate(x, rate, min(int(-err * rate), rx.frame_n))
                    rx.stats.insertedSamplesForDeceleration += inserted
                    rx.play_decoded(k, x, target_s)
                    if inserted:
                        rx.emit(y[x.size :], "inserted", k, with_m2e=False)
                else:
                    y, inserted = decelerate(x, rate, int(-err * rate))
                    rx.stats.insertedSamplesForDeceleration += inserted
                    rx.play_decoded(k, y, target_s)
            else:
                rx.play_decoded(k, x, target_s)
            k += 1
        elif not s.present[k] or s.later_min[k] <= t + 1e-6:
            # given up: a later packet is here, or nothing was sent for this slot (DTX, which the
            # receiver knows from the sequence numbers): conceal it in its own time
            rx.conceal_slot(k, rx.frame_n, target_s)
            k += 1
        elif not np.isfinite(s.arrival[k]) and not np.isfinite(s.later_min[k]):
            break  # lost and nothing follows: the call is over
        else:
            rx.conceal_slot(k, rx.frame_n, target_s, consume=False)
    mean_target_ms = 1000.0 * float(np.mean(targets)) if targets else float("nan")
    return rx.result(policy, conceal, {"meanTargetDelayMs": mean_target_ms})
