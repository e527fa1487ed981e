"""Target delay estimation in the manner of libwebrtc NetEq's delay manager.

NetEq (``modules/audio_coding/neteq``: ``delay_manager.cc``, ``underrun_optimizer.cc``,
``histogram.cc``, ``relative_arrival_delay_tracker.cc`` / ``packet_arrival_history.cc``) works so:

1. For each arriving packet, its *relative arrival delay* is its transit time (arrival minus media
   time) minus the smallest transit time seen in the last 2 s: how much later it came than the
   fastest recent packet. NetEq times an arrival by its tick counter (``PacketArrived``:
   ``tick_timer_->ticks() * ms_per_tick``), i.e. floored to the 10 ms audio tick, so relative delays
   come in steps of the tick and are up to one tick larger than the exact ones (which moves the
   95th percentile a 20 ms bucket up when the exact delays sit near a bucket's edge); this module
   floors arrivals the same way (``arrival_tick_ms``; 0 for exact times). The ticks count from the
   call clock's 0, not from the first arrival as NetEq's count from its playout start: anchored at
   the first arrival, microseconds of jitter in that one packet move every tick boundary, and the
   same audio over a clean link no longer plays sample-identically across seeds (tried: PLCMOS
   4.06 to 4.41 over seeds 1-6 on slt-weather, against one value with the call-clock grid).
2. Every ``resample_interval`` (500 ms, timed in whole 10 ms ticks as NetEq's stopwatch counts them,
   so microseconds of jitter cannot move an update to another packet) the largest relative delay of that interval goes into a
   histogram of 20 ms buckets (100 buckets, 0 to 2 s). Adding a sample first multiplies every bucket
   by the forget factor f and then adds (1 - f) to the sample's bucket, so the histogram stays a
   probability distribution whose old history fades geometrically (f = 0.983 per update: a time
   constant of about 30 s at 2 updates/s). Right after a reset f starts at 0 and rises as
   ``1 - start_forget_weight / (n + 1)`` (a running mean) until it reaches f, so the first
   samples count fully.
3. The target delay is the upper edge of the bucket holding the 95th percentile:
   ``(1 + bucket) * 20 ms``; 80 ms until the first update.
4. The largest relative delay of the last 2 s (``PacketArrivalHistory::GetMaxDelayMs``) widens the
   band in which the decision logic leaves the playout delay alone (see :mod:`.adaptive`).

After one stall the target comes back down as the stall's histogram sample is forgotten: the k-th
sample after a reset enters with weight ``2 / k`` (the start ramp) and is then multiplied by the
forget factor of each later update, ``1 - 2 / j`` for the j-th, so after m updates it weighs
``2 (k - 1) / ((m - 1) m)`` (until the ramp reaches 0.983 at about 117 updates, ~58 s). The target
is back within one bucket (20 ms) of its pre-stall level once that weight is below ``1 - quantile``
(5 %): a stall 4 s into a call (k = 9) lifts the target for about 5 s (until m = 19); one after about
20 s (k > 40) enters below 5 % and does not lift the 95th percentile at all. NetEq behaves the
same with its defaults; a 10 s clip whose stall falls at 4-5 s therefore keeps the raised target
to its end.

Differences from NetEq: floating point instead of Q15/Q30 fixed point; NetEq's reorder optimizer and
its packet-count based buffer limits are not modelled; min/max clamps are explicit parameters.
This module is pure: times come in as arguments.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from translab.errors import check_range


@dataclass(frozen=True)
class DelayManagerConfig:
    """Parameters, NetEq defaults. Times in ms; quantile and forget factor as fractions."""

    quantile: float = 0.95
    forget_factor: float = 0.983
    start_forget_weight: float | None = 2.0
    resample_interval_ms: float | None = 500.0
    tick_ms: float = 10.0  # NetEq's TickTimer: the interval stopwatch counts whole 10 ms ticks
    arrival_tick_ms: float = 10.0  # arrivals timed by the same ticks (floored); 0: exact arrival times
    bucket_ms: float = 20.0
    num_buckets: int = 100
    history_ms: float = 2000.0
    start_delay_ms: float = 80.0
    min_target_ms: float = 20.0
    max_target_ms: float = 1000.0

    def check(self) -> None:
        """Raise ConfigError for a setting out of its range."""
        check_range("quantile", self.quantile, 0.5, 0.9999)
        check_range("forget_factor", self.forget_factor, 0.0, 0.99999)
        check_range("min_target_ms", self.min_target_ms, 0.0, 10000.0, "ms")
        check_range("arrival_tick_ms", self.arrival_tick_ms, 0.0, 100.0, "ms")
        check_range("max_target_ms", self.max_target_ms, self.min_target_ms, 10000.0, "ms")


def tick_time(t_s: float, tick_ms: float) -> float:
    """``t_s`` (s) floored to a whole ``tick_ms`` (ms; NetEq's clock is ``tick_timer->ticks() * 10 ms``);
    ``t_s`` itself when ``tick_ms`` is 0."""
    return float(np.floor(t_s * 1000.0 / tick_ms + 1e-9) * tick_ms / 1000.0) if tick_ms else t_s


class ForgettingHistogram:
    """NetEq's histogram: a probability vector with exponential forgetting of old samples."""

    def __init__(self, num_buckets: int, forget_factor: float, start_forget_weight: float | None) -> None:
        self.base_forget = float(forget_factor)
        self.start_weight = start_forget_weight
        self.buckets: np.ndarray = np.zeros(num_buckets)
        self.reset()

    def reset(self) -> None:
        """Exponentially decaying start distribution 0.5, 0.25, ...; fast adaptation at first."""
        self.buckets = 0.5 ** np.arange(1, self.buckets.size + 1)
        self.buckets /= self.buckets.sum()
        self.forget = 0.0
        self.count = 0

    def add(self, index: int) -> None:
        """Observe one sample in bucket ``index``."""
        self.buckets *= self.forget
        self.buckets[index] += 1.0 - self.forget
        self.count += 1
        if self.start_weight is not None:
            f = 1.0 - self.start_weight / (self.count + 1)
            self.forget = max(0.0, min(self.base_forget, f))
        else:
            self.forget += (self.base_forget - self.forget) / 4.0

    def quantile(self, q: float) -> int:
        """Smallest bucket index whose cumulative probability reaches ``q``."""
        c = np.cumsum(self.buckets)
        return min(int(np.searchsorted(c, q - 1e-12)), self.buckets.size - 1)


class DelayManager:
    """Feeds on packet arrivals (in arrival order) and gives the target delay in ms."""

    def __init__(self, config: DelayManagerConfig | None = None) -> None:
        self.cfg = config or DelayManagerConfig()
        self.cfg.check()
        self.hist = ForgettingHistogram(self.cfg.num_buckets, self.cfg.forget_factor, self.cfg.start_forget_weight)
        self._transits: deque[tuple[float, float]] = deque()  # (arrival_s, transit_s), increasing transit
        self._interval_start: int | None = None  # tick of the interval's first arrival
        self._interval_max_ms = 0.0
        self._rel: deque[tuple[float, float]] = deque()  # (arrival_s, rel_ms), decreasing rel_ms
        self.target_ms = self.clamp(self.cfg.start_delay_ms)
        self.min_transit_s = float("nan")
        self.max_rel_ms = 0.0

    def clamp(self, ms: float) -> float:
        """``ms`` (a target delay in ms) limited to [min_target_ms, max_target_ms]."""
        return float(min(max(ms, self.cfg.min_target_ms), self.cfg.max_target_ms))

    def update(self, arrival_s: float, media_s: float) -> float:
        """Register a packet that arrived at ``arrival_s`` (s) carrying media from ``media_s`` (s,
        capture time on the sender's clock). Returns the relative arrival delay (ms)."""
        arrival_s = tick_time(arrival_s, self.cfg.arrival_tick_ms)
        transit = arrival_s - media_s
        window = self.cfg.history_ms / 1000.0
        q = self._transits
        while q and q[0][0] < arrival_s - window:
            q.popleft()
        while q and q[-1][1] >= transit:
            q.pop()
        q.append((arrival_s, transit))
        self.min_transit_s = q[0][1]
        rel_ms = (transit - self.min_transit_s) * 1000.0
        r = self._rel
        while r and r[0][0] < arrival_s - window:
            r.popleft()
        while r and r[-1][1] <= rel_ms:
            r.pop()
        r.append((arrival_s, rel_ms))
        self.max_rel_ms = r[0][1]
        sample: float | None
        if self.cfg.resample_interval_ms:
            tick = int(np.floor(arrival_s * 1000.0 / self.cfg.tick_ms))
            if self._interval_start is None:
                self._interval_start = tick
            sample = None
            if (tick - self._interval_start) * self.cfg.tick_ms > self.cfg.resample_interval_ms:
                sample = self._interval_max_ms
                self._interval_start = tick
                self._interval_max_ms = 0.0
            self._interval_max_ms = max(self._interval_max_ms, rel_ms)
        else:
            sample = rel_ms
        if sample is not None:
            idx = int(sample // self.cfg.bucket_ms)
            if idx < self.cfg.num_buckets:
                self.hist.add(idx)
            b = self.hist.quantile(self.cfg.quantile)
            self.target_ms = self.clamp((1 + b) * self.cfg.bucket_ms)
        return rel_ms


class TargetTimeline(NamedTuple):
    """The delay manager's state after each packet arrival (arrays in arrival order)."""

    event_s: np.ndarray  #: arrival time of the packet (s), sorted
    target_ms: np.ndarray  #: target delay after it (ms)
    min_transit_s: np.ndarray  #: smallest transit time (arrival - media) of the last 2 s (s)
    max_rel_ms: np.ndarray  #: largest relative arrival delay of the last 2 s (ms)


def target_timeline(
    arrival_s: np.ndarray, media_s: np.ndarray, config: DelayManagerConfig | None = None
) -> TargetTimeline:
    """Run a :class:`DelayManager` over received packets (NaN arrivals are skipped).

    ``arrival_s``: arrival times (s); ``media_s``: capture time of each packet's media (s).
    """
    ok = ~np.isnan(arrival_s)
    a = np.asarray(arrival_s, dtype=float)[ok]
    m = np.asarray(media_s, dtype=float)[ok]
    order = np.argsort(a, kind="stable")
    dm = DelayManager(config)
    targets = np.empty(a.size)
    mins = np.empty(a.size)
    maxrel = np.empty(a.size)
    for i, k in enumerate(order):
        dm.update(float(a[k]), float(m[k]))
        targets[i] = dm.target_ms
        mins[i] = dm.min_transit_s
        maxrel[i] = dm.max_rel_ms
    return TargetTimeline(a[order], targets, mins, maxrel)
