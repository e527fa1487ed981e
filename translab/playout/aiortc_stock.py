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

:func:`sink_play_times` is that sink on its own: live calls put aiortc's real delivery times
through it, so a live ``aiortc-stock`` call and this model report the same quantity (play time on
the sink, not the moment ``track.recv()`` returned: after an underrun the sink never catches up,
so its latency is the worst delivery delay so far, well above the delivery delay's median).

On a clean path with 1 ms one-way delay this gives 4 frames of buffering: play time minus capture
time of the last sample is 81 ms at 20 ms frames; after one lost packet it is 281 ms for the rest
of the call (REFERENCE section 3).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from translab.playout.aiortc_jitter_buffer import AiortcJitterBuffer
from translab.playout.receiver import EPS_S, PlayoutResult, Receiver

CAPACITY = 16
PREFETCH = 4


def sink_play_times(release_s: np.ndarray, frame_s: float, origin_s: float | None = None) -> np.ndarray:
    """Play time (s) of each frame handed to a steady sink at ``release_s`` (s, in order): the sink
    starts at the first release and plays one frame of ``frame_s`` seconds per tick; a frame not
    yet released at its tick waits for the next tick at or after its release (silence meanwhile).
    ``origin_s``: the sink's clock ticks at origin + k x frame_s instead (a free-running clock,
    e.g. a carrier's), starting at the first tick at or after the first release."""
    rel = np.asarray(release_s, dtype=np.float64)
    out = np.empty_like(rel)
    t = float(rel[0]) if rel.size else 0.0
    if origin_s is not None and rel.size:
        t = origin_s + np.ceil((t - origin_s) / frame_s - 1e-6) * frame_s
    for i, e in enumerate(rel.tolist()):
        if e > t + EPS_S:
            t += np.ceil((e - t) / frame_s - 1e-6) * frame_s
        out[i] = t
        t += frame_s
    return out


def release_order(arrival: np.ndarray, seq: np.ndarray) -> tuple[list[tuple[float, int]], list[int]]:
    """aiortc's jitter buffer on packets arriving at ``arrival`` (s, NaN: lost) with RTP sequence
    numbers ``seq``, one per slot: the frames it releases, in order, as (release time s, slot),
    and the sequence numbers it dropped (flushed or late)."""
    got = np.flatnonzero(~np.isnan(arrival))
    order = got[np.argsort(arrival[got], kind="stable")]
    jb = AiortcJitterBuffer(CAPACITY, PREFETCH)
    by_seq: dict[int, int] = {}
    released: list[tuple[float, int]] = []  # (release time s, slot)
    for k in order.tolist():
        u = int(seq[k]) & 0xFFFF
        by_seq[u] = k
        r = jb.add(u)
        if r is not None:
            released.append((float(arrival[k]), by_seq[r]))
    return released, list(jb.dropped)


def play_aiortc_stock(trace: pd.DataFrame, *, conceal: str, policy: str) -> PlayoutResult:
    """Play ``trace`` as aiortc 1.16's RTCRtpReceiver + a steady sink would."""
    rx = Receiver(trace, conceal, use_concealer=False)
    s = rx.slots
    got = np.flatnonzero(~np.isnan(s.arrival))
    released, dropped_seqs = release_order(s.arrival, s.seq)
    played = {k for _, k in released}
    dropped = set(dropped_seqs)
    rx.discarded = {int(k) for k in got.tolist() if int(s.seq[k]) & 0xFFFF in dropped and int(k) not in played}
    # packets still waiting in the buffer when the trace ends are neither played nor discarded
    left = int(got.size - len(played) - len(rx.discarded))
    target_s = PREFETCH * rx.frame_s
    if released:
        rx.start(released[0][0])
        play_s = sink_play_times(np.array([e for e, _ in released]), rx.frame_s)
        for (_, k), t_play in zip(released, play_s.tolist()):
            ticks = int(round((t_play - rx.t) / rx.frame_s))
            if ticks > 0:
                rx.emit(np.zeros(ticks * rx.frame_n), "stall", k, with_m2e=False)
            rx.play_decoded(k, rx.decode(k), target_s)
    return rx.result(policy, "none", {"aiortcFlushedPackets": len(rx.discarded), "aiortcLeftInBufferAtEnd": left})
