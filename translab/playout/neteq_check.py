"""translab's playout model checked against a real NetEq (Chromium's) on the same arrival trace.

A browser peer call (translab.call.browser) sends translab's Opus packets to Chromium through the
emulator; the emulator's delivery log gives the arrival trace of the packets the browser received,
and the browser reports NetEq's W3C ``inbound-rtp`` counters over time. Both receivers played the
same packets arriving at the same times, so their figures can be compared directly:

* ``concealed_share``: concealedSamples / totalSamplesReceived (fraction);
* ``mean_buffer_delay_ms``: 1000 * jitterBufferDelay / jitterBufferEmittedCount (ms);
* ``mean_target_delay_ms``: 1000 * jitterBufferTargetDelay / jitterBufferEmittedCount (ms): what the
  delay manager aimed at, so a delay gap splits into "aimed elsewhere" and "kept the level elsewhere";
* ``jitter_ms``: RFC 3550 interarrival jitter (ms). Not a receiver decision: where NetEq's differs
  from the trace's, the browser saw other arrival times than the emulator released (the browser's
  own network and audio threads on a loaded host), which bounds how exact the comparison can be;
* ``accel_samples`` / ``decel_samples``: removedSamplesForAcceleration /
  insertedSamplesForDeceleration (samples at 48 kHz);
* ``concealment_events``: concealmentEvents.

The browser's counters run for the whole life of its track: after the last packet NetEq keeps
producing concealment ("expand") until the call is hung up, which translab's model, playing from the
first to the last packet, does not. :func:`neteq_window` therefore cuts the browser's counters at the
end of the media: the first snapshot at which every packet has been decoded
(``jitterBufferEmittedCount`` reached its final value), minus the tail concealment estimated from
the previous snapshot (in the tail every output sample is concealment, and the samples played
since the previous snapshot are known). Before the first packet NetEq counts nothing.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

__all__ = ["FIGURES", "neteq_window", "model_figures", "figures", "gaps"]

#: compared figures and their units
FIGURES = {
    "concealed_share": "fraction",
    "mean_buffer_delay_ms": "ms",
    "mean_target_delay_ms": "ms",
    "jitter_ms": "ms",
    "accel_samples": "samples",
    "decel_samples": "samples",
    "concealment_events": "count",
}

_COUNTERS = ("concealedSamples", "silentConcealedSamples", "concealmentEvents", "totalSamplesReceived",
             "jitterBufferDelay", "jitterBufferEmittedCount", "jitterBufferTargetDelay",
             "jitterBufferMinimumDelay", "insertedSamplesForDeceleration", "removedSamplesForAcceleration",
             "jitter", "packetsReceived", "packetsLost", "packetsDiscarded", "fecPacketsReceived", "fecPacketsDiscarded")


def _num(d: Mapping[str, Any], key: str) -> float:
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) else 0.0


def neteq_window(snapshots: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """NetEq's counters over the media (first packet to last packet decoded), from successive
    ``inbound-rtp`` snapshots (dicts with the W3C names, oldest first). Returns the counters of
    :data:`_COUNTERS` plus ``tail_concealed_samples`` (removed) and ``window_snapshot`` (index)."""
    snaps = [s for s in snapshots if s]
    if not snaps:
        return {}
    final_emitted = _num(snaps[-1], "jitterBufferEmittedCount")
    e = next(i for i, s in enumerate(snaps) if _num(s, "jitterBufferEmittedCount") >= final_emitted)
    end = snaps[e]
    out = {k: _num(end, k) for k in _COUNTERS}
    tail = 0.0
    if e > 0:
        prev = snaps[e - 1]

        def played(s: Mapping[str, Any]) -> float:
            return _num(s, "totalSamplesReceived") - _num(s, "concealedSamples")

        # output after the last decoded sample = all concealment; T_end ~ prev total + what was
        # still played (decoded or stretched) between the two snapshots
        t_end = _num(prev, "totalSamplesReceived") + max(0.0, played(end) - played(prev))
        tail = max(0.0, _num(end, "totalSamplesReceived") - t_end)
        if tail > 0 and _num(end, "concealmentEvents") > _num(prev, "concealmentEvents"):
            out["concealmentEvents"] -= 1
    out["concealedSamples"] -= tail
    out["silentConcealedSamples"] = max(0.0, out["silentConcealedSamples"] - tail)
    out["totalSamplesReceived"] -= tail
    out["tail_concealed_samples"] = tail
    out["window_snapshot"] = float(e)
    return out


def figures(counters: Mapping[str, Any]) -> dict[str, float]:
    """The compared figures (:data:`FIGURES`) from W3C receiver counters (NetEq's or translab's)."""
    total = _num(counters, "totalSamplesReceived")
    emitted = _num(counters, "jitterBufferEmittedCount")
    return {
        "concealed_share": _num(counters, "concealedSamples") / total if total else math.nan,
        "mean_buffer_delay_ms": 1e3 * _num(counters, "jitterBufferDelay") / emitted if emitted else math.nan,
        "mean_target_delay_ms": 1e3 * _num(counters, "jitterBufferTargetDelay") / emitted if emitted else math.nan,
        "jitter_ms": 1e3 * _num(counters, "jitter"),
        "accel_samples": _num(counters, "removedSamplesForAcceleration"),
        "decel_samples": _num(counters, "insertedSamplesForDeceleration"),
        "concealment_events": _num(counters, "concealmentEvents"),
    }


def model_figures(stats: Mapping[str, Any]) -> dict[str, float]:
    """:func:`figures` of translab's receiver stats (``PlayoutResult.stats`` or ``rx_*`` keys)."""
    plain = {k[3:] if k.startswith("rx_") else k: v for k, v in stats.items()}
    return figures(plain)


def gaps(model: Mapping[str, float], neteq: Mapping[str, float]) -> dict[str, float]:
    """Per figure: ``<name>_gap`` = model - NetEq (the figure's unit) and, where NetEq's value is
    not 0, ``<name>_gap_pct`` = 100 * (model - NetEq) / NetEq."""
    out: dict[str, float] = {}
    for k in FIGURES:
        m, n = float(model.get(k, math.nan)), float(neteq.get(k, math.nan))
        out[f"{k}_gap"] = m - n
        out[f"{k}_gap_pct"] = 100.0 * (m - n) / n if n and not math.isnan(n) else math.nan
    return out
