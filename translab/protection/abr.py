"""An adaptive bitrate / FEC controller for the Opus sender, modelled on libwebrtc's audio network
adaptor (``modules/audio_coding/audio_network_adaptor``) and fed by a send-side bandwidth estimate.

Inputs (:meth:`AudioNetworkAdaptor.on_feedback`): transport-wide-CC-style feedback (every ~100 ms: the
send and arrival times and sizes of the packets it acknowledges, giving the received rate and the
queuing delay; the RTT) and, less often, RTCP receiver reports (the loss fraction since the previous
report, over the packets it covers). Outputs (:class:`EncoderSettings`): bitrate, FEC on/off with the
expected loss handed to Opus (``OPUS_SET_PACKET_LOSS_PERC``) and a frame length.

The controllers run in this order on every input, as libwebrtc's ``ControllerManager`` does with a
config listing them so:

- :class:`FecController` (``fec_controller_plr_based.cc``): the reported loss fraction is smoothed by
  :class:`SmoothingFilter` (libwebrtc's ``SmoothingFilterImpl``, time constant ``time_constant_ms``,
  with its start-up phase in which the filter's memory grows from 1 ms to the time constant, so the
  first reports count at once); FEC turns on when (bandwidth, smoothed loss) is on or above the
  *enabling* threshold curve and off when strictly below the *disabling* curve (hysteresis). Curves
  as in libwebrtc's unit tests (libwebrtc ships no default config; the application passes one):
  enabling (17 kbit/s, 10 %) to (64 kbit/s, 5 %), disabling (15 kbit/s, 8 %) to (64 kbit/s, 1 %);
  left of a curve's low-bandwidth point is "below". The bandwidth is the wire-rate estimate
  (``target_audio_bitrate`` with overhead, as ANA gets it). So a smoothed loss of 9 % turns FEC on
  whenever the estimate is at or above 26.4 kbit/s on the wire (the enabling curve crosses 9 % there)
  and keeps it on down to 15 kbit/s (the disabling curve never rises above 8 %); at the 32 kbit/s
  Opus start (55.2 kbit/s on the wire) the enabling threshold is 5.9 % and the disabling one 2.3 %.
  Until the first loss report the initial state holds (SDP ``useinbandfec``). The expected loss
  handed to Opus is the smoothed loss (percent, capped at 20 % as ``AudioEncoderOpusImpl`` does); 0
  before the first report. "FEC on" is a request: libopus 1.6.1 adds LBRR only to active speech and
  only above a bitrate floor (measured, 20 ms voip: 24 kbit/s at 1-5 % expected loss, 18 kbit/s at
  6-12 %); like libwebrtc, the controller does not keep the bitrate above it. Note: the 2017-2019
  libwebrtc Opus encoder applied ANA's FEC decision and loss; the current
  ``AudioEncoderOpusImpl::ApplyAudioNetworkAdaptor`` applies only bitrate, frame length, DTX and
  channels (FEC stays as negotiated, its expected loss from the encoder's own 10 s filter): this
  controller follows the issue's spec (FEC on/off is an output).
- :class:`FrameLengthController` (``frame_length_controller.cc``): 20 -> 60 ms when the bandwidth is
  at or below 40 kbit/s and the (unsmoothed) loss at or below 4 %, or when the bandwidth barely
  covers the minimum bitrate + 5 kbit/s + the overhead at the current frame length; 60 -> 20 ms
  when the bandwidth is at or above 50 kbit/s or the loss at or above 5 %, unless the bandwidth does
  not cover that floor at 20 ms (libwebrtc's unit-test thresholds). Only the frame lengths the
  receiver accepts are chosen (``frame_lengths_ms``, libwebrtc's ``SetReceiverFrameLengthRange``
  from SDP minptime/maxptime): with one length the controller never changes it.
- :class:`BitrateController` (``bitrate_controller.cc``): the audio bitrate is the target rate of
  the bandwidth estimate minus the per-packet overhead rate at the frame length just decided
  (overhead bytes x 8 / frame length).

The bandwidth estimate (:class:`BandwidthEstimator`) is a simplified GCC (libwebrtc ``goog_cc``),
two estimates and their minimum as ``SendSideBandwidthEstimation`` takes it:

- loss-based (``SendSideBandwidthEstimation``, the classic one): it acts on the loss fraction of
  receiver reports (accumulated until they cover ``MIN_LOSS_PACKETS`` packets, libwebrtc's
  ``kLimitNumPackets``): below 2 % it grows 8 % per second; above 10 % it is cut by half the loss
  fraction, once per new loss report and at most once per 300 ms + RTT; in between it holds. At a
  steady random loss near 10 % the reports pass 10 % now and then and it never grows back: over
  minutes the classic estimate ratchets down. libwebrtc's newer ``LossBasedBweV2`` (a
  maximum-likelihood fit of the inherent loss) is not modelled.
- delay-based (:class:`TrendlineDetector` as GCC's ``TrendlineEstimator``, with its adaptive
  threshold; AIMD as ``AimdRateControl``): on over-use it drops to 0.85 x the received rate, at most
  once per RTT; otherwise multiplicative (8 %/s) or, once a link capacity is known, additive
  increase, capped at 1.5 x the received rate + 10 kbit/s. Simplified: the received rate over the
  last 500 ms of reported packets stands in for GCC's acknowledged-bitrate estimator; no probing,
  no ALR, no pacer, no congestion window, no network-state predictor.

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


class SmoothingFilter:
    """libwebrtc's ``SmoothingFilterImpl``: an exponential filter of a piecewise-constant input (each
    sample holds until the next), with time constant ``time_constant_ms`` (ms). For the first
    ``time_constant_ms`` after the first sample the filter's memory grows from 1 ms to the time
    constant (alpha(n) = exp(-g**n) with g = T**(-1/T), n ms since the first sample), so early
    reports count nearly at once instead of being dragged by the first one; ``time_constant_ms`` 0:
    the last sample."""

    def __init__(self, time_constant_ms: float) -> None:
        check_range("time_constant_ms", time_constant_ms, 0.0, 1e9, "ms")
        self.tau = float(time_constant_ms)
        self.state: float | None = None
        self._last_sample = 0.0
        self._t = 0.0
        self._init_end = 0.0

    def _advance(self, now_ms: float) -> None:
        """Extrapolate the state to ``now_ms`` with the last sample held."""
        assert self.state is not None
        now_ms = max(now_ms, self._t)
        if self.tau == 0:
            mult = 0.0
        elif self._t < self._init_end:
            # product of exp(-g**n) over the start-up phase: exp(-(g**a - g**b) / (1 - g)), with
            # g**x = exp(-x ln T / T); exact for the continuous-time form
            end = min(now_ms, self._init_end)
            ln_t = math.log(self.tau)
            ga = math.exp(-(self._t - self._init_end) * ln_t / self.tau)
            gb = math.exp(-(end - self._init_end) * ln_t / self.tau)
            one_minus_g = -math.expm1(-ln_t / self.tau)
            mult = math.exp(-(ga - gb) / (self.tau * one_minus_g)) if one_minus_g > 0 else 0.0
            self.state = mult * self.state + (1.0 - mult) * self._last_sample
            self._t = end
            if now_ms <= self._init_end:
                return
            mult = math.exp(-(now_ms - self._t) / self.tau)
        else:
            mult = math.exp(-(now_ms - self._t) / self.tau)
        self.state = mult * self.state + (1.0 - mult) * self._last_sample
        self._t = now_ms

    def add(self, x: float, now_ms: float) -> float:
        """Add one sample at ``now_ms``; returns the average at that time."""
        if self.state is None:
            self.state = self._last_sample = float(x)
            self._t, self._init_end = float(now_ms), float(now_ms) + self.tau
            return self.state
        self._advance(now_ms)
        self._last_sample = float(x)
        return self.state

    def average(self, now_ms: float) -> float | None:
        """The average at ``now_ms`` (None before the first sample)."""
        if self.state is None:
            return None
        self._advance(now_ms)
        return self.state


class FecController:
    """FEC on/off with hysteresis from the smoothed loss and the bandwidth (see the module docstring).
    Until both a bandwidth and a loss sample are known the initial state holds."""

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
        self.loss = SmoothingFilter(time_constant_ms)

    def update(self, loss_fraction: float | None, bandwidth_bps: float | None, now_ms: float) -> tuple[bool, float]:
        """Feed one loss sample (None: no new report) and the bandwidth; returns (FEC on, smoothed
        loss fraction; 0 before the first sample)."""
        if loss_fraction is not None:
            self.loss.add(loss_fraction, now_ms)
        loss = self.loss.average(now_ms)
        if bandwidth_bps is not None and loss is not None:
            if self.on:
                self.on = not self.disabling.below(bandwidth_bps, loss)
            else:
                self.on = not self.enabling.below(bandwidth_bps, loss)
        return self.on, 0.0 if loss is None else loss


@dataclass(frozen=True)
class BitrateController:
    """Audio bitrate = target rate minus the overhead rate of ``overhead_bytes`` per packet at the
    frame length in use."""

    min_bps: int = OPUS_MIN_BPS
    max_bps: int = OPUS_MAX_BPS

    def decide(self, target_bps: float, overhead_bytes: int, frame_ms: float) -> int:
        overhead_bps = overhead_bytes * 8 * 1000.0 / frame_ms
        return int(min(max(target_bps - overhead_bps, self.min_bps), self.max_bps))


class FrameLengthController:
    """20 <-> 60 ms frame length from bandwidth and loss (see the module docstring); only lengths in
    ``frame_lengths_ms`` (what the receiver accepts) are chosen."""

    def __init__(
        self,
        initial_ms: int = 20,
        up_bps: float = 40000,
        down_bps: float = 50000,
        up_max_loss: float = 0.04,
        down_min_loss: float = 0.05,
        min_encoder_bps: int = OPUS_MIN_BPS,
        margin_bps: int = 5000,
        frame_lengths_ms: tuple[int, ...] = (20, 60),
    ) -> None:
        if initial_ms not in (20, 60):
            raise ConfigError("frame_ms", initial_ms, "20 or 60 for the frame-length controller")
        self.frame_ms = initial_ms
        self.up_bps, self.down_bps = up_bps, down_bps
        self.up_max_loss, self.down_min_loss = up_max_loss, down_min_loss
        self.min_encoder_bps, self.margin_bps = min_encoder_bps, margin_bps
        self.lengths = tuple(frame_lengths_ms)

    def decide(self, bandwidth_bps: float, loss: float | None, overhead_bytes: int) -> int:
        """``loss``: the last reported loss fraction (None: none yet)."""

        def floor(frame_ms: float) -> float:
            return self.min_encoder_bps + self.margin_bps + overhead_bytes * 8 * 1000.0 / frame_ms

        if self.frame_ms == 20 and 60 in self.lengths:
            if bandwidth_bps <= floor(20) or (bandwidth_bps <= self.up_bps and loss is not None
                                              and loss <= self.up_max_loss):
                self.frame_ms = 60
        elif self.frame_ms == 60 and 20 in self.lengths:
            if bandwidth_bps > floor(20) and (bandwidth_bps >= self.down_bps
                                              or (loss is not None and loss >= self.down_min_loss)):
                self.frame_ms = 20
        return self.frame_ms


class TrendlineDetector:
    """GCC's delay-based over-use detector (libwebrtc ``InterArrivalDelta`` + ``TrendlineEstimator``).

    Packets are grouped as GCC does: a packet joins the current group when it was sent within 5 ms of
    the group's first packet, or when it arrived within 5 ms of the group's last one and earlier
    than its send gap would have it (a burst released by the network, e.g. Wi-Fi aggregation), while
    the group spans under 100 ms of arrivals; packets sent before the group's last one (reordered)
    are skipped. Per completed group: the delay variation (arrival gap - send gap between the groups'
    last packets, ms) is accumulated and
    smoothed (exponential, 0.9); the slope of the smoothed delay over the last ``window`` packets
    (least squares against arrival time), times min(packets seen, 60) x 4, is the modified trend. It
    signals over-use when it stays above the adaptive threshold for more than 10 ms of send time over
    at least two packets with the slope not falling, under-use below minus the threshold. The
    threshold (start 12.5, within 6-600) follows |modified trend| at rate 0.0087 per ms when it is
    above and 0.039 when below, and ignores excursions more than 15 above it. ``state`` is
    "normal", "overusing" or "underusing"."""

    def __init__(self, window: int = 20) -> None:
        self.window = int(window)
        self.state = "normal"
        self.threshold = 12.5
        self._n = 0
        self._acc = 0.0
        self._smoothed = 0.0
        self._hist: deque[tuple[float, float]] = deque(maxlen=self.window)
        self._group: list[float] | None = None  # [first send, last send, first arrival, last arrival] ms
        self._prev: tuple[float, float] | None = None  # (last send, last arrival) of the previous group
        self._first_arrival: float | None = None
        self._trend = 0.0
        self._over_ms = -1.0
        self._over_count = 0
        self._last_threshold_ms: float | None = None

    def packet(self, send_ms: float, arrival_ms: float) -> str:
        """Feed one packet (send and arrival time, ms), in arrival order; returns the state."""
        g = self._group
        if g is None:
            self._group = [send_ms, send_ms, arrival_ms, arrival_ms]
            return self.state
        if send_ms < g[1]:
            return self.state  # reordered
        arrival_gap, send_gap = arrival_ms - g[3], send_ms - g[1]
        if send_ms - g[0] <= 5.0 or (arrival_gap - send_gap < 0 and arrival_gap <= 5.0
                                     and arrival_ms - g[2] < 100.0):
            g[1], g[3] = max(g[1], send_ms), max(g[3], arrival_ms)
            return self.state
        self._group = [send_ms, send_ms, arrival_ms, arrival_ms]
        if self._prev is None:
            self._prev = (g[1], g[3])
            self._first_arrival = g[3]
            return self.state
        send_gap, arrival_gap = g[1] - self._prev[0], g[3] - self._prev[1]
        self._prev = (g[1], g[3])
        arrival_ms = g[3]
        self._n = min(self._n + 1, 1000)
        self._acc += arrival_gap - send_gap
        self._smoothed = 0.9 * self._smoothed + 0.1 * self._acc
        assert self._first_arrival is not None
        self._hist.append((arrival_ms - self._first_arrival, self._smoothed))
        trend = self._trend
        if len(self._hist) == self.window:
            x = np.array([h[0] for h in self._hist])
            y = np.array([h[1] for h in self._hist])
            den = float(((x - x.mean()) ** 2).sum())
            if den > 0:
                trend = float(((x - x.mean()) * (y - y.mean())).sum()) / den
        self._detect(trend, send_gap, arrival_ms)
        return self.state

    def _detect(self, trend: float, send_gap_ms: float, now_ms: float) -> None:
        if self._n < 2:
            self.state = "normal"
            return
        m = min(self._n, 60) * trend * 4.0
        if m > self.threshold:
            self._over_ms = send_gap_ms / 2 if self._over_ms < 0 else self._over_ms + send_gap_ms
            self._over_count += 1
            if self._over_ms > 10.0 and self._over_count > 1 and trend >= self._trend:
                self._over_ms, self._over_count = 0.0, 0
                self.state = "overusing"
        elif m < -self.threshold:
            self._over_ms, self._over_count = -1.0, 0
            self.state = "underusing"
        else:
            self._over_ms, self._over_count = -1.0, 0
            self.state = "normal"
        self._trend = trend
        last = now_ms if self._last_threshold_ms is None else self._last_threshold_ms
        self._last_threshold_ms = now_ms
        if abs(m) > self.threshold + 15.0:  # a spike (e.g. a capacity drop) does not move it
            return
        k = 0.039 if abs(m) < self.threshold else 0.0087
        self.threshold += k * (abs(m) - self.threshold) * min(now_ms - last, 100.0)
        self.threshold = min(max(self.threshold, 6.0), 600.0)


class LinkCapacity:
    """libwebrtc ``LinkCapacityEstimator``: the received rate at over-use, averaged (0.05) with a
    normalised variance; None until the first over-use, forgotten when the received rate passes
    its upper bound (estimate + 3 sigma)."""

    def __init__(self) -> None:
        self.kbps: float | None = None
        self._dev = 0.4

    def on_overuse(self, received_bps: float) -> None:
        x = received_bps / 1000.0
        if self.kbps is None:
            self.kbps = x
        else:
            self.kbps = 0.95 * self.kbps + 0.05 * x
        err = self.kbps - x
        self._dev = min(max(0.95 * self._dev + 0.05 * err * err / max(self.kbps, 1.0), 0.4), 2.5)

    def upper_bps(self) -> float:
        return math.inf if self.kbps is None else 1000.0 * (self.kbps + 3 * math.sqrt(self._dev * self.kbps))


class BandwidthEstimator:
    """A simplified GCC send-side estimate of the wire rate (bit/s): the minimum of a loss-based and
    a delay-based estimate (see the module docstring).

    Delay-based: :class:`TrendlineDetector` on every reported packet; on over-use the estimate drops
    to 0.85 x the received rate (``window_ms`` of reported packets), at most once per RTT (clamped to
    10-200 ms) unless the received rate fell below half the estimate; on under-use it holds; else it
    grows: 8 % per second (multiplicative) while no link capacity is known, else by one packet's
    bits per RTT + 100 ms (at least 4 kbit/s per second; ``AimdRateControl``'s near-max additive
    increase), never above 1.5 x the received rate + 10 kbit/s. ``bps`` is the estimate,
    ``delay_bps`` the delay-based one, ``loss`` the loss fraction of the last complete loss window."""

    def __init__(self, start_bps: float, min_bps: float = 10000, max_bps: float = 600000,
                 window_ms: float = 500.0) -> None:
        check_range("start_bps", start_bps, min_bps, max_bps, "bit/s")
        self.bps = float(start_bps)
        self.delay_bps = float(start_bps)
        self.min_bps, self.max_bps = float(min_bps), float(max_bps)
        self.window_ms = float(window_ms)
        self.detector = TrendlineDetector()
        self.capacity = LinkCapacity()
        self._last_delay_decrease_ms = -math.inf
        self._last_loss_decrease_ms = -math.inf
        self._last_ms: float | None = None
        self._recv: deque[tuple[float, int]] = deque()  # (arrival ms, wire bytes)
        self._last_size = 0
        self.overusing = False
        self.loss = 0.0  # loss fraction of the last complete loss window
        self._new_loss = False  # a loss window completed and has not been acted on
        self._lost = 0.0
        self._expected = 0

    def _received_bps(self, packets: "list[tuple[float, float, int]]", now_ms: float) -> float:
        """Feed (send ms, arrival ms, wire bytes) of reported packets to the detector; returns the
        received rate (bit/s) over the last ``window_ms``."""
        for send, arr, size in sorted(packets, key=lambda p: p[1]):
            self.detector.packet(send, arr)
            self._recv.append((arr, int(size)))
            self._last_size = int(size)
        while self._recv and self._recv[0][0] < now_ms - self.window_ms:
            self._recv.popleft()
        return sum(x[1] for x in self._recv) * 8 * 1000.0 / self.window_ms

    def _loss_signal(self, loss: float, expected: int) -> None:
        """Loss over at least ``MIN_LOSS_PACKETS`` packets (libwebrtc's ``kLimitNumPackets``): the
        fraction of the last complete window, accumulated over reports. ``loss`` may be negative
        (RFC 3550 A.3: packets counted missing in an earlier report arrived late), so late packets
        cancel out over the window."""
        self._lost += loss * expected
        self._expected += expected
        if self._expected >= MIN_LOSS_PACKETS:
            self.loss = max(self._lost, 0.0) / self._expected
            self._lost, self._expected = 0.0, 0
            self._new_loss = True

    def update(self, now_ms: float, loss: float | None, packets: "list[tuple[float, float, int]]",
               rtt_ms: float, expected: int | None = None) -> float:
        """One report (at ``now_ms`` on the sender's clock): the loss fraction over ``expected``
        packets (default: those reported; None: the report carries no loss, e.g. transport-cc
        feedback between receiver reports), the reported packets as (send ms, arrival ms, wire
        bytes) and the RTT (ms). Returns the new estimate (bit/s)."""
        if loss is not None:
            self._loss_signal(loss, len(packets) if expected is None else int(expected))
        dt_s = 0.0 if self._last_ms is None else max(now_ms - self._last_ms, 0.0) / 1000.0
        self._last_ms = now_ms
        if packets:
            received = self._received_bps(packets, now_ms)
            state = self.detector.state
            self.overusing = state == "overusing"
            if received > self.capacity.upper_bps():
                self.capacity = LinkCapacity()
            if self.overusing:
                interval = min(max(rtt_ms, 10.0), 200.0)
                if received > 0 and (now_ms - self._last_delay_decrease_ms >= interval
                                     or received < 0.5 * self.delay_bps):
                    self.capacity.on_overuse(received)
                    self.delay_bps = min(self.delay_bps, 0.85 * received)
                    self._last_delay_decrease_ms = now_ms
            elif state == "normal":
                if self.capacity.kbps is None:
                    grown = self.delay_bps * 1.08 ** min(dt_s, 1.0)
                else:
                    per_s = max(self._last_size * 8 * 1000.0 / (rtt_ms + 100.0), 4000.0)
                    grown = self.delay_bps + per_s * min(dt_s, 1.0)
                cap = 1.5 * received + 10000.0 if received > 0 else grown
                self.delay_bps = max(self.delay_bps, min(grown, cap))
            self.delay_bps = min(max(self.delay_bps, self.min_bps), self.max_bps)
        # loss-based (classic SendSideBandwidthEstimation), then capped by the delay-based estimate
        if self.loss < 0.02:
            self.bps *= 1.08 ** min(dt_s, 1.0)
        elif self.loss > 0.10 and self._new_loss and now_ms - self._last_loss_decrease_ms >= 300.0 + rtt_ms:
            self.bps *= 1.0 - 0.5 * self.loss
            self._last_loss_decrease_ms = now_ms
            self._new_loss = False
        self.bps = min(max(min(self.bps, self.delay_bps), self.min_bps), self.max_bps)
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
    """Bandwidth estimate + FEC, frame-length and bitrate controllers, applied on every report.

    ``max_bps``: the configured (SDP ``maxaveragebitrate``-like) Opus bitrate, also the start;
    ``overhead_bytes``: per-packet bytes on the wire besides the Opus payload (IP, UDP, RTP with
    extensions, SRTP tag); default: :func:`~translab.metrics.bandwidth.rtp_wire_bytes` of an empty
    payload under the default header model (58 B over IPv4); ``fec``: the initial FEC state (SDP
    ``useinbandfec``); ``frame_lengths_ms``: the frame lengths the receiver accepts (default 20 and
    60 ms; pass only the current one when the sender cannot change it)."""

    def __init__(self, max_bps: int, frame_ms: int = 20, overhead_bytes: int | None = None,
                 fec: bool = True, min_bps: int = OPUS_MIN_BPS,
                 frame_lengths_ms: tuple[int, ...] = (20, 60)) -> None:
        check_range("bitrate", max_bps, OPUS_MIN_BPS, OPUS_MAX_BPS, "bit/s")
        self.frame_ms = frame_ms
        self.overhead_bytes = rtp_wire_bytes(0) if overhead_bytes is None else int(overhead_bytes)
        wire = max_bps + self.overhead_bytes * 8 * 1000.0 / frame_ms
        self.bwe = BandwidthEstimator(wire, min_bps=min(10000.0, wire), max_bps=wire)
        self.bitrate = BitrateController(min_bps=min_bps, max_bps=max_bps)
        self.fec = FecController(initial_on=fec)
        self.frame_length = FrameLengthController(initial_ms=20 if frame_ms != 60 else 60,
                                                  frame_lengths_ms=frame_lengths_ms)
        self.last_loss: float | None = None  # the last reported loss fraction
        self.settings = EncoderSettings(max_bps, fec, 0, frame_ms)

    def on_feedback(self, now_ms: float, loss: float | None, packets: "list[tuple[float, float, int]]",
                    rtt_ms: float, expected: int | None = None) -> EncoderSettings:
        """Feed one report: the loss fraction over ``expected`` packets (None when the report carries
        no loss: transport-cc feedback between receiver reports), the reported packets as (send ms,
        arrival ms, wire bytes), RTT (ms). Returns the settings for the next frames."""
        bw = self.bwe.update(now_ms, loss, packets, rtt_ms, expected)
        if loss is not None:
            self.last_loss = max(loss, 0.0)
        fec_on, smoothed = self.fec.update(self.last_loss if loss is not None else None, bw, now_ms)
        frame = self.frame_length.decide(bw, self.last_loss, self.overhead_bytes)
        self.frame_ms = frame
        bitrate = self.bitrate.decide(bw, self.overhead_bytes, frame)
        perc = int(round(100 * min(smoothed, MAX_LOSS_FRACTION))) if fec_on else 0
        self.settings = EncoderSettings(bitrate, fec_on, perc, frame)
        return self.settings
