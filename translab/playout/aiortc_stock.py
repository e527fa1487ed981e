"""``aiortc-stock``: the receive path of aiortc 1.16, so its behaviour can be shown beside the others.

- Packets go, in arrival order, into :class:`~translab.playout.aiortc_jitter_buffer.AiortcJitterBuffer`
  (capacity 16, prefetch 4), which releases at most one frame per arriving packet, and only when the
  4 frames after it are there; a lost packet blocks it until 16 packets pile up, then it flushes the
  frames in front of the gap and keeps ~14 frames buffered for good (aiortc issue #543).
- Released frames are decoded at once, without PLC or FEC (aiortc has neither); a pts gap is the
  only trace of a loss. ``conceal`` is therefore not used.
- The sink (a sound device, say) plays them back to back on a steady clock of one frame per tick
  from the first release; when nothing is queued at a tick it plays a frame of silence (a ``stall``
  block): aiortc conceals nothing, the listener hears a gap.

On a clean path with 1 ms one-way delay this gives 4 frames of buffering: play time minus capture
time of the last sample is 81 ms at 20 ms frames; after one lost packet it is 281 ms for the rest
of the call (REFERENCE section 3).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from translab.playout.aiortc_jitter_buffer import AiortcJitterBuffer
from translab.playout.receiver import EPS_S, PlayoutResult, Receiver

CAPACITY = 16
PREFETCH = 4


def play_aiortc_stock(trace: pd.DataFrame, *, conceal: str, policy: str) -> PlayoutResult:
    """Play ``trace`` as aiortc 1.16's RTCRtpReceiver + a steady sink would."""
    rx = Receiver(trace, conceal, use_concealer=False)
    s = rx.slots
    got = np.flatnonzero(~np.isnan(s.arrival))
    order = got[np.argsort(s.arrival[got], kind="stable")]
    jb = AiortcJitterBuffer(CAPACITY, PREFETCH)
    by_seq: dict[int, int] = {}
    released: list[tuple[float, int]] = []  # (release time s, slot)
    for k in order.tolist():
        u = int(s.seq[k]) & 0xFFFF
        by_seq[u] = k
        r = jb.add(u)
        if r is not None:
            released.append((float(s.arrival[k]), by_seq[r]))
    played = {k for _, k in released}
    dropped = set(jb.dropped)
    rx.discarded = {int(k) for k in got.tolist() if int(s.seq[k]) & 0xFFFF in dropped and int(k) not in played}
    # packets still waiting in the buffer when the trace ends are neither played nor discarded
    left = int(got.size - len(played) - len(rx.discarded))
    target_s = PREFETCH * rx.frame_s
    if released:
        rx.start(released[0][0])
        queue = deque(released)
        while queue:
            t = rx.t
            e, k = queue[0]
            if e <= t + EPS_S:
                queue.popleft()
                rx.play_decoded(k, rx.decode(k), target_s)
            else:
                ticks = int(np.ceil((e - t) / rx.frame_s - 1e-6))
                rx.emit(np.zeros(ticks * rx.frame_n), "stall", k, with_m2e=False)
    return rx.result(policy, "none", {"aiortcFlushedPackets": len(rx.discarded), "aiortcLeftInBufferAtEnd": left})
