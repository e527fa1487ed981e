"""``elastic``: what a naive streaming client does. It never conceals: it plays each frame as soon
as it is there and the previous one has finished; when the next frame is not there the output
stalls (the device plays silence, a ``stall`` block) and resumes when it arrives. Latency only
grows: every stall pushes all later frames later.

Rules:

- Playout starts when the first packet arrives (no pre-buffering); the first slot is slot 0.
- Loss (possible only on a lossy transport; a TCP/WebSocket trace never has one): slot k is given up
  at ``max(t, first later arrival) + loss_wait_s`` where t is when it was due, i.e. once a later
  packet is in hand the client waits ``loss_wait_s`` (default 60 ms) for k to turn up
  (reordering), then skips it: its audio is simply missing (no concealment block), and it counts
  as lost (late arrivals after that are discarded).
- Slots with no packet sent at all (Opus DTX) are filled with a ``zero`` block at once when the
  packet after them is in hand, since the sequence numbers show nothing is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from translab.playout.receiver import PlayoutResult, Receiver

#: How long (s) elastic playout waits for a missing packet once a later one has arrived.
LOSS_WAIT_S = 0.060


def play_elastic(
    trace: pd.DataFrame, *, conceal: str, policy: str, loss_wait_s: float | None = None
) -> PlayoutResult:
    """Play ``trace`` elastically. ``loss_wait_s`` (s): how long to wait for a missing packet once a
    later one has arrived (default :data:`LOSS_WAIT_S`). ``conceal`` is checked but never used."""
    rx = Receiver(trace, conceal)
    s = rx.slots
    wait = LOSS_WAIT_S if loss_wait_s is None else float(loss_wait_s)
    if not np.isfinite(s.first_arrival):
        return rx.result(policy, conceal)
    rx.start(s.first_arrival)
    started = False
    skipped = 0
    k = 0
    while k < s.n:
        t = rx.t
        a = float(s.arrival[k])
        later = float(s.later_min[k])
        if not s.present[k]:
            # nothing was sent for this slot (DTX): silence once the next packet is here
            resume = max(t, later)
            if started:
                rx.stall(resume, k)
            else:
                rx.start(resume)
            rx.emit(np.zeros(rx.frame_n), "zero", k, with_m2e=False)
            k += 1
            continue
        give_up = max(t, later) + wait if np.isfinite(later) else np.inf
        if a == a and a <= give_up:
            if a > t:
                if started:
                    rx.stall(a, k)
                else:
                    rx.start(a)
            started = True
            rx.play_decoded(k, rx.decode(k), 0.0)
        else:
            if not np.isfinite(give_up):
                break  # lost, and nothing after it: the call is over
            if started:
                rx.stall(give_up, k)
            else:
                rx.start(give_up)
            if a == a:
                rx.discarded.add(k)
            skipped += 1
        k += 1
    return rx.result(policy, conceal, {"skippedFrames": skipped, "lossWaitMs": wait * 1000.0})
