"""An adaptive bitrate / FEC controller for the Opus sender, modelled on libwebrtc's audio network
adaptor (``modules/audio_coding/audio_network_adaptor``) and fed by a send-side bandwidth estimate.

Inputs, once per feedback report from the receiver (:meth:`AudioNetworkAdaptor.on_feedback`): the
loss fraction over the report's interval (RTCP receiver-report style), the send and arrival times and
sizes of the packets it acknowledges (transport-wide CC style, giving the received rate and the
queuing delay) and the RTT. Outputs (:class:`EncoderSettings`): bitrate,
FEC on/off with the expected loss handed to Opus (``OPUS_SET_PACKET_LOSS_PERC``) and a frame length.

The controllers follow libwebrtc:

- :class:`BitrateController` (``bitrate_controller.cc``): the audio bitrate is the target rate of the
  bandwidth estimate minus the per-packet overhead rate (overhead bytes x 8 / frame length).
- :class:`FecController` (``fec_controller_plr_based.cc``): the loss fraction is smoothed
  (exponential, ``time_constant_ms``); FEC turns on when (bandwidth, smoothed loss) is on or above
  the *enabling* threshold curve and off when strictly below the *disabling* curve (hysteresis: the
  disabling curve lies below the enabling one). Curves as in libwebrtc's unit tests: enabling
  (17 kbit/s, 10 %) to (64 kbit/s, 5 %), disabling (15 kbit/s, 8 %) to (64 kbit/s, 1 %); left of a
  curve's low-bandwidth point is "below". The expected loss handed to Opus is the smoothed loss
  (percent, capped at 20 % as ``AudioEncoderOpusImpl`` does).
- :class:`FrameLengthController` (``frame_length_controller.cc``): 20 -> 60 ms when the bandwidth is
  at or below 40 kbit/s and the loss at or below 4 %, or when the bandwidth barely covers the
  minimum bitrate plus overhead; 60 -> 20 ms when the bandwidth is at or above 50 kbit/s or the loss
  at or above 5 % (libwebrtc's unit-test thresholds).

The bandwidth estimate (:class:`BandwidthEstimator`) is a simplified GCC (libwebrtc ``goog_cc``):
loss-based as ``SendSideBandwidthEstimation`` (loss < 2 %: grow 8 % per second; loss > 10 %: cut by
half the loss fraction, at most once per 300 ms + RTT) and delay-based in AIMD form: on over-use
(one-way delay rising steadily and standing above its minimum, see the class) the estimate drops to
0.85 x the received rate, at most once per 300 ms + RTT; growth is capped at 1.5 x the received
rate. GCC's trendline filter and adaptive threshold are replaced by a least-squares slope with fixed
thresholds: a simplification, stated.

Pure: no clock (times in ms as arguments), no randomness.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from translab.errors import ConfigError, check_range
from translab.metrics.bandwidth import rtp_wire_bytes

#: Opus bitrate limits in libwebrtc (bit/s).
OPUS_MIN_BPS = 6000
OPUS_MAX_BPS = 510000
#: Packets a loss fraction must cover before the loss-based estimate acts (libwebrtc kLimitNumPackets).
MIN_LOSS_PACKETS = 20
#: AudioEncoderOpusImpl caps the loss fraction it hands to Opus at 20 %.
MAX_LOSS_FRACTION = 0.20


@dataclass(frozen=True)
class ThresholdCurve:
    """libwebrtc's ``ThresholdCurve``: a line from (``low_bps``, ``low_loss``) to (``high_bps``,
    ``high_loss``), vertical to the left of the first point and horizontal right of the second."""

    low_bps: float
    low_loss: float
    high_bps: float
    high_loss: float

    def below(self, bps: float, loss: float) -> bool:
        """The point (bandwidth bit/s, loss fraction) is strictly below the curve."""
        if bps < self.low_bps:
            return True
        if bps == self.low_bps:
            return loss < self.low_loss
        if bps < self.high_bps:
            slope = (self.high_loss - self.low_loss) / (self.high_bps - self.low_bps)
            return loss < self.low_loss + slope * (bps - self.low_bps)
        return loss < self.high_loss


class ExpSmoother:
    """Exponential smoothing with a time constant (ms): ``avg += (1 - exp(-dt/tau)) (x - avg)``;
    the first sample sets the average."""

    def __init__(self, time_constant_ms: float) -> None:
        check_range("time_constant_ms", time_constant_ms, 0.0, 1e9, "ms")
        self.tau = float(time_constant_ms)
        self.value: float | None = None
        self._t: float | None = None

    def add(self, x: float, now_ms: float) -> float:
        if self.value is None or self._t is None or self.tau == 0:
            self.value = float(x)
        else:
            w = 1.0 - math.exp(-max(now_ms - self._t, 0.0) / self.tau)
            self.value += w * (float(x) - self.value)
        self._t = now_ms
        return self.value


class FecController:
    """FEC on/off with hysteresis from the smoothed loss and the bandwidth (see the module docstring)."""

    def __init__(
        self,
        initial_on: bool = True,
        enabling: ThresholdCurve = ThresholdCurve(17000, 0.10, 64000, 0.05),
        disabling: ThresholdCurve = ThresholdCurve(15000, 0.08, 64000, 0.01),
        time_constant_ms: float = 10000.0,
    ) -> None:
        self.on = bool(initial_on)
        self.enabling = enabling
        self.disabling = disabling
        self.loss = ExpSmoother(time_constant_ms)

    def update(self, loss_fraction: float, bandwidth_bps: float | None, now_ms: float) -> tuple[bool, float]:
        """Feed one loss sample; returns (FEC on, smoothed loss fraction)."""
        loss = self.loss.add(loss_fraction, now_ms)
        if bandwidth_bps is not None:
            if self.on:
                self.on = not self.disabling.below(bandwidth_bps, loss)
            else:
                self.on = not self.enabling.below(bandwidth_bps, loss)
        return self.on, loss


@dataclass(frozen=True)
class BitrateController:
    """Audio bitrate = target rate minus the overhead rate of ``overhead_bytes`` per packet."""

    min_bps: int = OPUS_MIN_BPS
    max_bps: int = OPUS_MAX_BPS

    def decide(self, target_bps: float, overhead_bytes: int, frame_ms: float) -> int:
        overhead_bps = overhead_bytes * 8 * 1000.0 / frame_ms
        return int(min(max(target_bps - overhead_bps, self.min_bps), self.max_bps))


class FrameLengthController:
    """20 <-> 60 ms frame length from bandwidth and loss (see the module docstring)."""

    def __init__(
        self,
        initial_ms: int = 20,
        up_bps: float = 40000,
        down_bps: float = 50000,
        up_max_loss: float = 0.04,
        down_min_loss: float = 0.05,
        min_encoder_bps: int = OPUS_MIN_BPS,
        margin_bps: int = 5000,
    ) -> None:
        if initial_ms not in (20, 60):
            raise ConfigError("frame_ms", initial_ms, "20 or 60 for the frame-length controller")
        self.frame_ms = initial_ms
        self.up_bps, self.down_bps = up_bps, down_bps
        self.up_max_loss, self.down_min_loss = up_max_loss, down_min_loss
        self.min_encoder_bps, self.margin_bps = min_encoder_bps, margin_bps

    def decide(self, bandwidth_bps: float, loss: float, overhead_bytes: int) -> int:
        def floor(frame_ms: float) -> float:
            return self.min_encoder_bps + self.margin_bps + overhead_bytes * 8 * 1000.0 / frame_ms

        if self.frame_ms == 20:
            if bandwidth_bps <= floor(20) or (bandwidth_bps <= self.up_bps and loss <= self.up_max_loss):
                self.frame_ms = 60
        elif bandwidth_bps > floor(20) and (bandwidth_bps >= self.down_bps or loss >= self.down_min_loss):
            self.frame_ms = 20
        return self.frame_ms


class BandwidthEstimator:
    """A simplified GCC send-side estimate of the wire rate (bit/s); see the module docstring.

    Over-use: the one-way delays of the packets reported in the last ``window_ms`` grow faster than
    ``overuse_slope`` (s of delay per s, least squares) *and* stand more than ``overuse_ms`` above
    the smallest one-way delay seen (queuing). The slope test is GCC's trendline idea (a queue that
    fills makes delay grow steadily; jitter does not), with a fixed threshold instead of GCC's
    adaptive one."""

    def __init__(self, start_bps: float, min_bps: float = 10000, max_bps: float = 600000,
                 overuse_ms: float = 30.0, overuse_slope: float = 0.1, window_ms: float = 1000.0) -> None:
        check_range("start_bps", start_bps, min_bps, max_bps, "bit/s")
        self.bps = float(start_bps)
        self.min_bps, self.max_bps = float(min_bps), float(max_bps)
        self.overuse_ms, self.overuse_slope, self.window_ms = float(overuse_ms), float(overuse_slope), float(window_ms)
        self._last_decrease_ms = -math.inf
        self._last_ms: float | None = None
        self._owd: deque[tuple[float, float, int]] = deque()  # (arrival ms, one-way delay ms, bytes)
        self._min_owd = math.inf
        self.overusing = False
        self.loss = 0.0  # loss fraction of the last complete loss window
        self._lost = 0.0
        self._expected = 0

    def _delay_signal(self, packets: "list[tuple[float, float, int]]", now_ms: float) -> tuple[float, float, float]:
        """Feed (send ms, arrival ms, wire bytes) of reported packets; returns (queuing delay ms,
        delay slope s/s, received rate bit/s over the last ``window_ms``)."""
        for send, arr, size in packets:
            owd = arr - send
            self._min_owd = min(self._min_owd, owd)
            self._owd.append((arr, owd, int(size)))
        while self._owd and self._owd[0][0] < now_ms - self.window_ms:
            self._owd.popleft()
        if not self._owd:
            return 0.0, 0.0, 0.0
        a = np.array([x[0] for x in self._owd])
        d = np.array([x[1] for x in self._owd])
        received_bps = sum(x[2] for x in self._owd) * 8 * 1000.0 / self.window_ms
        queue = float(d[-min(len(d), 5):].mean() - self._min_owd)
        if len(a) < 3 or np.ptp(a) <= 0:
            return queue, 0.0, received_bps
        return queue, float(np.polyfit(a, d, 1)[0]), received_bps

    def _loss_signal(self, loss: float, expected: int) -> float:
        """Loss over at least ``MIN_LOSS_PACKETS`` packets (libwebrtc's ``kLimitNumPackets``): the
        fraction of the last complete window, accumulated over reports. ``loss`` may be negative
        (RFC 3550 A.3: packets counted missing in an earlier report arrived late), so late packets
        cancel out over the window."""
        self._lost += loss * expected
        self._expected += expected
        if self._expected >= MIN_LOSS_PACKETS:
            self.loss = max(self._lost, 0.0) / self._expected
            self._lost, self._expected = 0.0, 0
        return self.loss

    def update(self, now_ms: float, loss: float, packets: "list[tuple[float, float, int]]",
               rtt_ms: float, expected: int | None = None) -> float:
        """One feedback report (at ``now_ms`` on the sender's clock): loss fraction over ``expected``
        packets (default: those reported), the reported packets as (send ms, arrival ms, wire
        bytes), and the RTT (ms). Returns the new estimate (bit/s)."""
        loss = self._loss_signal(loss, len(packets) if expected is None else int(expected))
        queue_ms, slope, received_bps = self._delay_signal(packets, now_ms)
        dt_s = 0.0 if self._last_ms is None else max(now_ms - self._last_ms, 0.0) / 1000.0
        self._last_ms = now_ms
        can_decrease = now_ms - self._last_decrease_ms >= 300.0 + rtt_ms
        self.overusing = queue_ms > self.overuse_ms and slope > self.overuse_slope
        if self.overusing:
            if can_decrease and received_bps > 0:
                self.bps = min(self.bps, 0.85 * received_bps)
                self._last_decrease_ms = now_ms
        elif loss > 0.10:
            if can_decrease:
                self.bps *= 1.0 - 0.5 * loss
                self._last_decrease_ms = now_ms
        elif loss < 0.02 and queue_ms <= self.overuse_ms:
            grown = self.bps * 1.08 ** min(dt_s, 1.0)
            cap = 1.5 * received_bps + 10000.0 if received_bps > 0 else grown
            self.bps = max(self.bps, min(grown, cap))
        self.bps = min(max(self.bps, self.min_bps), self.max_bps)
        return self.bps


def optimize_loss_rate(new: float, old: float) -> float:
    """libwebrtc ``AudioEncoderOpusImpl``'s ``OptimizePacketLossRate``: the loss fraction handed to
    Opus, rounded down to 0, 1, 5, 10 or 20 %, with margins (2, 1, 1 points at 20, 10, 5 %) so that
    reaching a level from below takes more loss than staying on it from above."""
    for level, margin in ((0.20, 0.02), (0.10, 0.01), (0.05, 0.01)):
        if new >= level + margin * (1 if level - old > 0 else -1):
            return level
    return 0.01 if new >= 0.01 else 0.0


class MeasuredLossFec:
    """Opus in-band FEC driven by measured loss, as libwebrtc's Opus sender does without the audio
    network adaptor: FEC stays on, and its expected loss (``OPUS_SET_PACKET_LOSS_PERC``) is the loss
    fraction from the receiver's reports smoothed by an exponential filter (time constant 10 s:
    ``ExpFilter`` alpha 0.9999 per ms) and passed through :func:`optimize_loss_rate`. Starts at 0 %."""

    def __init__(self, alpha_per_ms: float = 0.9999) -> None:
        self.alpha = float(alpha_per_ms)
        self.smoothed: float | None = None
        self.rate = 0.0
        self._t: float | None = None

    def on_loss(self, loss: float, now_ms: float) -> int:
        """Feed one loss fraction; returns the expected loss for Opus in percent."""
        loss = min(max(float(loss), 0.0), 1.0)
        if self.smoothed is None or self._t is None:
            self.smoothed = loss
        else:
            a = self.alpha ** max(now_ms - self._t, 0.0)
            self.smoothed = a * self.smoothed + (1.0 - a) * loss
        self._t = now_ms
        self.rate = optimize_loss_rate(self.smoothed, self.rate)
        return int(round(100 * self.rate))


@dataclass(frozen=True)
class EncoderSettings:
    """What the controller asks of the encoder: bitrate (bit/s), FEC, expected loss (%) for Opus,
    frame length (ms)."""

    bitrate_bps: int
    fec: bool
    loss_perc: int
    frame_ms: int


class AudioNetworkAdaptor:
    """Bandwidth estimate + bitrate, FEC and frame-length controllers, applied on every report.

    ``max_bps``: the configured (SDP ``maxaveragebitrate``-like) Opus bitrate, also the start;
    ``overhead_bytes``: per-packet bytes on the wire besides the Opus payload (IP, UDP, RTP with
    extensions, SRTP tag); default: :func:`~translab.metrics.bandwidth.rtp_wire_bytes` of an empty
    payload under the default header model (58 B over IPv4)."""

    def __init__(self, max_bps: int, frame_ms: int = 20, overhead_bytes: int | None = None,
                 fec: bool = True, min_bps: int = OPUS_MIN_BPS) -> None:
        check_range("bitrate", max_bps, OPUS_MIN_BPS, OPUS_MAX_BPS, "bit/s")
        self.frame_ms = frame_ms
        self.overhead_bytes = rtp_wire_bytes(0) if overhead_bytes is None else int(overhead_bytes)
        wire = max_bps + self.overhead_bytes * 8 * 1000.0 / frame_ms
        self.bwe = BandwidthEstimator(wire, min_bps=min(10000.0, wire), max_bps=wire)
        self.bitrate = BitrateController(min_bps=min_bps, max_bps=max_bps)
        self.fec = FecController(initial_on=fec)
        self.frame_length = FrameLengthController(initial_ms=20 if frame_ms != 60 else 60)
        self.settings = EncoderSettings(max_bps, fec, 0, frame_ms)

    def on_feedback(self, now_ms: float, loss: float, packets: "list[tuple[float, float, int]]",
                    rtt_ms: float, expected: int | None = None) -> EncoderSettings:
        """Feed one report: loss fraction over ``expected`` packets, the reported packets as (send
        ms, arrival ms, wire bytes), RTT (ms). Returns the settings for the next frames."""
        bw = self.bwe.update(now_ms, loss, packets, rtt_ms, expected)
        fec_on, smoothed = self.fec.update(max(loss, 0.0), bw, now_ms)
        bitrate = self.bitrate.decide(bw, self.overhead_bytes, self.frame_ms)
        frame = self.frame_length.decide(bw, smoothed, self.overhead_bytes)
        perc = int(round(100 * min(smoothed, MAX_LOSS_FRACTION))) if fec_on else 0
        self.settings = EncoderSettings(bitrate, fec_on, perc, frame)
        return self.settings
