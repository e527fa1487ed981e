"""Receiver statistics with the W3C webrtc-stats (RTCInboundRtpStreamStats) names.

Units follow the W3C definitions: times in seconds, counts in packets or samples (per channel).
Besides the W3C counters the receiver reports NetEq's ``interruptionCount`` /
``totalInterruptionDuration`` and, for policies that stall instead of concealing (``elastic``,
``aiortc-stock``), ``stallCount`` / ``totalStallDuration``.

Counting rules (where the W3C text leaves a choice, the choice made here):

- ``packetsReceived``: distinct packets that arrived (duplicates are not counted twice).
- ``packetsLost``: RFC 3550 cumulative loss: packets expected (from the first to the highest
  sequence number received) minus packets received.
- ``packetsDiscarded``: packets that arrived but were never played because they came too late for
  their playout slot (or, in ``aiortc-stock``, were flushed from its buffer).
- ``jitter``: RFC 3550 section 6.4.1 interarrival jitter in seconds, over packets in arrival order.
- ``jitterBufferDelay``: sum over emitted decoded samples of (playout time - arrival time), s.
- ``jitterBufferTargetDelay``: sum over emitted decoded samples of the target delay at that time, s.
- ``jitterBufferEmittedCount``: decoded (incl. FEC-recovered) samples emitted.
- ``totalSamplesReceived``: every sample the receiver produced (decoded, FEC, concealed, inserted);
  stall silence is not produced by the receiver and is not counted.
- ``concealedSamples`` / ``silentConcealedSamples``: samples of concealment blocks; the silent
  ones are those of blocks whose RMS is below ``SILENT_RMS``.
- ``concealmentEvents``: runs of consecutive concealment blocks.
- ``fecPacketsReceived``: packets that arrived carrying in-band FEC (Opus LBRR);
  ``fecPacketsDiscarded``: those whose FEC data was not used to recover a frame.
- ``stallCount`` / ``totalStallDuration`` (s): runs of stall blocks (the output device plays
  silence because the receiver has nothing to give and does not conceal) and their total length.
- ``interruptionCount`` / ``totalInterruptionDuration`` (s): runs of concealment lasting 150 ms or
  more, as NetEq counts them.
- ``stallInterruptionCount`` / ``totalStallInterruptionDuration`` (s): the same for stall runs, so
  policies that stall instead of concealing can be compared on audible gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import lfilter

#: Block RMS (full scale = 1.0) below which concealed audio counts as silent (about -60 dBFS).
SILENT_RMS = 1e-3
#: A concealment (or stall) run at least this long is an interruption (NetEq: 150 ms).
INTERRUPTION_MIN_S = 0.150

CONCEAL_KINDS = frozenset({"plc", "zero", "repeat", "pcm-plc"})
PLAYED_KINDS = frozenset({"decoded", "fec"})


def rfc3550_jitter(arrival_s: np.ndarray, media_ts: np.ndarray, sample_rate: int) -> float:
    """RFC 3550 interarrival jitter (s) after the last packet, packets taken in arrival order.

    ``arrival_s``: arrival times (s), NaN for lost packets (ignored); ``media_ts``: RTP timestamps in
    samples at ``sample_rate`` (Hz). J += (|D| - J) / 16 for each consecutive pair.
    """
    ok = ~np.isnan(arrival_s)
    a = np.asarray(arrival_s, dtype=float)[ok]
    s = np.asarray(media_ts, dtype=float)[ok] / float(sample_rate)
    if a.size < 2:
        return 0.0
    order = np.argsort(a, kind="stable")
    a, s = a[order], s[order]
    d = np.abs(np.diff(a) - np.diff(s))
    j = lfilter([1.0 / 16.0], [1.0, -15.0 / 16.0], d)
    return float(j[-1])


@dataclass
class ReceiverStats:
    """Counters a receiver accumulates while it plays (see the module docstring for units)."""

    sample_rate: int
    packetsReceived: int = 0
    packetsLost: int = 0
    packetsDiscarded: int = 0
    jitter: float = 0.0
    jitterBufferDelay: float = 0.0
    jitterBufferTargetDelay: float = 0.0
    jitterBufferMinimumDelay: float = 0.0
    jitterBufferEmittedCount: int = 0
    totalSamplesReceived: int = 0
    concealedSamples: int = 0
    silentConcealedSamples: int = 0
    concealmentEvents: int = 0
    insertedSamplesForDeceleration: int = 0
    removedSamplesForAcceleration: int = 0
    fecPacketsReceived: int = 0
    fecPacketsDiscarded: int = 0
    interruptionCount: int = 0
    totalInterruptionDuration: float = 0.0
    stallInterruptionCount: int = 0
    totalStallInterruptionDuration: float = 0.0
    stallCount: int = 0
    totalStallDuration: float = 0.0
    totalAudioEnergy: float = 0.0
    totalSamplesDuration: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # run tracking (private)
    _in_conceal_run: bool = False
    _in_stall_run: bool = False
    _conceal_run_s: float = 0.0
    _stall_run_s: float = 0.0

    def block(self, kind: str, x: np.ndarray) -> None:
        """Account one output block of ``kind`` holding samples ``x`` (float, full scale 1.0)."""
        n = int(x.size)
        dur = n / self.sample_rate
        if kind in CONCEAL_KINDS:
            if not self._in_conceal_run:
                self.concealmentEvents += 1
                self._in_conceal_run = True
            self.concealedSamples += n
            if n and float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) < SILENT_RMS:
                self.silentConcealedSamples += n
        else:
            self._in_conceal_run = False
        if kind in CONCEAL_KINDS:
            self._conceal_run_s += dur
        else:
            self._close_conceal_run()
        if kind == "stall":
            self._stall_run_s += dur
        else:
            self._close_stall_run()
        if kind == "stall":
            if not self._in_stall_run:
                self.stallCount += 1
                self._in_stall_run = True
            self.totalStallDuration += dur
        else:
            self._in_stall_run = False
            self.totalSamplesReceived += n
        if n:
            self.totalAudioEnergy += float(np.dot(x.astype(np.float64), x)) / self.sample_rate
            self.totalSamplesDuration += dur

    def _close_conceal_run(self) -> None:
        if self._conceal_run_s >= INTERRUPTION_MIN_S - 1e-9:
            self.interruptionCount += 1
            self.totalInterruptionDuration += self._conceal_run_s
        self._conceal_run_s = 0.0

    def _close_stall_run(self) -> None:
        if self._stall_run_s >= INTERRUPTION_MIN_S - 1e-9:
            self.stallInterruptionCount += 1
            self.totalStallInterruptionDuration += self._stall_run_s
        self._stall_run_s = 0.0

    def emitted(self, n_samples: int, buffer_delay_s: float, target_delay_s: float) -> None:
        """Account ``n_samples`` decoded samples leaving the buffer after ``buffer_delay_s`` (s)
        with the target delay ``target_delay_s`` (s) in force."""
        self.jitterBufferEmittedCount += n_samples
        self.jitterBufferDelay += n_samples * buffer_delay_s
        self.jitterBufferTargetDelay += n_samples * target_delay_s

    def finish(self) -> dict[str, Any]:
        """Close open runs and return the counters as a flat dict (W3C names + extras)."""
        self._close_conceal_run()
        self._close_stall_run()
        out = {
            k: v for k, v in self.__dict__.items() if not k.startswith("_") and k not in ("extra", "sample_rate")
        }
        out.update(self.extra)
        return out
