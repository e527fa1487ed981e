"""Did the impairment land on speech? Overlap of scheduled events and lost packets with the clip's
speech activity (Silero VAD segments stored beside each clip, :func:`translab.media.clips.clip_activity`).

A scheduled event (an outage window ``[a, b)`` on the call clock, in seconds) hits the media the
sender was sending then: packets sent at t carry audio captured about one frame (plus any sender
lag) earlier. So the window is moved onto the clip's timeline by the trace's median send lag
(send time minus capture time of the packet's first sample) and intersected with the speech
segments. Columns (all per call, ``up`` direction, the one whose media is measured):

- ``impair_events``: scheduled windows that overlap the time the call was sending;
- ``impair_ms``: their total length inside the sending span (ms);
- ``impair_speech_ms``: how much of it fell on speech (ms of clip audio inside VAD segments);
- ``impair_speech_share``: ``impair_speech_ms / impair_ms`` (None without events: JSON null, NaN in
  a table);
- ``lost_packets``: packets the network lost (never arrived);
- ``lost_speech_share``: share of them whose audio was mostly speech (at least half the frame inside
  a VAD segment); None without losses;
- ``clip_speech_share``: the share of the sent audio that is speech, the baseline the two shares
  compare with (an impairment blind to speech lands on speech this often on average).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from translab.media.vad import SpeechSegment, speech_overlap_ms

COLUMNS = ("impair_events", "impair_ms", "impair_speech_ms", "impair_speech_share", "lost_packets",
           "lost_speech_share", "clip_speech_share")
#: the columns that need the clip's speech activity
SPEECH_COLUMNS = ("impair_speech_ms", "impair_speech_share", "lost_speech_share", "clip_speech_share")


def speech_overlap(
    trace: pd.DataFrame, windows_s: Sequence[tuple[float, float]], segments: Sequence[SpeechSegment]
) -> dict[str, Any]:
    """The columns above for one arrival ``trace`` (``media_ts``, ``frame_samples``, ``send_s``,
    ``arrival_s`` and ``attrs['sample_rate']``; media_ts 0 is the clip's first sample), scheduled
    ``windows_s`` (``(start_s, end_s)`` on the call clock) and the clip's speech ``segments`` (ms)."""
    rate = float(trace.attrs["sample_rate"])
    segs = list(segments)
    if len(trace) == 0:
        return {c: (0 if c in ("impair_events", "lost_packets") else None) for c in COLUMNS}
    start_ms = trace["media_ts"].to_numpy(dtype=float) * 1000.0 / rate
    frame_ms = trace["frame_samples"].to_numpy(dtype=float) * 1000.0 / rate
    send = trace["send_s"].to_numpy(dtype=float)
    lag_s = float(np.median(send - start_ms / 1000.0))  # send time - capture of the first sample
    span = (float(send.min()), float(send.max()))
    events = [(max(a, span[0]), min(b, span[1])) for a, b in windows_s if a <= span[1] and b > span[0]]
    impair_ms = sum(1000.0 * (b - a) for a, b in events)
    speech_ms = sum(speech_overlap_ms(segs, 1000.0 * (a - lag_s), 1000.0 * (b - lag_s)) for a, b in events)
    lost = np.isnan(trace["arrival_s"].to_numpy(dtype=float))
    in_speech = np.array([speech_overlap_ms(segs, s, s + f) >= f / 2 for s, f in zip(start_ms, frame_ms)], dtype=bool)
    sent_ms = float(start_ms.max() + frame_ms[start_ms.argmax()]) if start_ms.size else 0.0
    return {
        "impair_events": len(events),
        "impair_ms": impair_ms,
        "impair_speech_ms": speech_ms,
        "impair_speech_share": speech_ms / impair_ms if impair_ms > 0 else None,
        "lost_packets": int(lost.sum()),
        "lost_speech_share": float(in_speech[lost].mean()) if lost.any() else None,
        "clip_speech_share": speech_overlap_ms(segs, 0.0, sent_ms) / sent_ms if sent_ms > 0 else None,
    }


def impairment_summary(profile: str, seed: int, clip: str | None, trace: pd.DataFrame) -> dict[str, Any]:
    """:func:`speech_overlap` for a call on ``profile`` with ``seed`` sending ``clip``: the windows
    are the ones that call's uplink drew (:func:`translab.link.profiles.scheduled_windows`), the
    segments the clip's stored Silero VAD activity. ``clip`` None: the caller's audio is not a
    translab clip (a call served to an outside caller), so its speech is unknown and the speech
    columns are None."""
    from translab.link.profiles import load_profile, scheduled_windows
    from translab.media.clips import clip_activity

    until_s = float(np.nanmax(trace["send_s"].to_numpy(dtype=float))) if len(trace) else 0.0
    windows = scheduled_windows(load_profile(profile), int(seed), until_s + 1e-9, "up")
    if clip is None:
        return {**speech_overlap(trace, windows, []), **dict.fromkeys(SPEECH_COLUMNS)}
    return speech_overlap(trace, windows, clip_activity(clip))
