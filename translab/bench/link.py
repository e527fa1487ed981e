"""Link-model speed: packets per second through single models and a typical chain (batch and one
packet per call), and TCP-model segments per second. Target: a typical chain above 200,000
packets/s in batch mode."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from translab.link.capacity import CapacityQueue, TraceCapacity
from translab.link.chain import LinkChain
from translab.link.delay import Delay
from translab.link.duplication import Duplication
from translab.link.loss import BernoulliLoss, FourStateLoss, GilbertElliottLoss
from translab.link.outage import Outage
from translab.link.profiles import direction_rngs, load_profile
from translab.link.tcp import TcpDeliveryModel

TARGET_PACKETS_PER_S = 200_000


def typical_chain() -> LinkChain:
    """Every stage once: outage, duplication, drop-tail queue, bursty loss, Pareto-normal jitter
    without reordering (the 4g-handoff shape with duplication added)."""
    return LinkChain(
        [
            Outage(4.0, 0.3, 10.0),
            Duplication(0.001),
            CapacityQueue(5000, 28, queue_packets=200),
            GilbertElliottLoss.from_loss_burst(1.0, 2.0),
            Delay(0.035, 0.010, "paretonormal"),
        ]
    )


def _best_rate(make: Callable[[], object], n: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` packets/s of ``make().apply`` on ``n`` 20 ms packets of 160 bytes."""
    t = np.arange(n) * 0.02
    s = np.full(n, 160, dtype=np.int64)
    best = np.inf
    for r in range(repeat):
        model = make()
        rng = np.random.default_rng(r)
        t0 = time.perf_counter()
        model.apply(t, s, rng)  # type: ignore[attr-defined]
        best = min(best, time.perf_counter() - t0)
    return n / best


def run() -> dict:
    """Figures (units in key names)."""
    n = 200_000
    singles: dict[str, Callable[[], object]] = {
        "delay_normal": lambda: Delay(0.03, 0.01, "normal"),
        "delay_paretonormal_reorder": lambda: Delay(0.03, 0.01, "paretonormal", reorder=True),
        "loss_bernoulli": lambda: BernoulliLoss(0.02),
        "loss_gilbert_elliott": lambda: GilbertElliottLoss(0.01, 0.3, 0.9, 0.001),
        "loss_4state": lambda: FourStateLoss(0.01, 0.3, 0.1, 0.3, 0.002),
        "duplication": lambda: Duplication(0.01),
        "outage": lambda: Outage(1.0, 0.2, 5.0),
        "capacity_queue_droptail": lambda: CapacityQueue(64, 28, queue_packets=10),
        "capacity_mahimahi": lambda: TraceCapacity(np.arange(1, 101, dtype=float), queue_packets=50),
    }
    out: dict[str, object] = {}
    rate = _best_rate(typical_chain, n)
    out["chain_batch_packets_per_s"] = round(rate)
    out["chain_batch_us_per_packet"] = round(1e6 / rate, 3)
    for name, make in singles.items():
        out[f"{name}_batch_packets_per_s"] = round(_best_rate(make, n))

    # One packet per call, as a live emulator feeds it.
    k = 5000
    t = np.arange(k) * 0.02
    s = np.full(k, 160, dtype=np.int64)
    chain, rng = typical_chain(), np.random.default_rng(0)
    t0 = time.perf_counter()
    for i in range(k):
        chain.apply(t[i : i + 1], s[i : i + 1], rng)
    out["chain_one_at_a_time_packets_per_s"] = round(k / (time.perf_counter() - t0))

    # TCP delivery model: 60 s of 20 ms PCM16 16 kHz frames over the 4g profile.
    prof = load_profile("4g")
    rngs = direction_rngs(1)
    m = TcpDeliveryModel(prof.chain("up"), prof.chain("down"))
    ws = np.arange(3000) * 0.02
    wb = np.full(3000, 660)
    t0 = time.perf_counter()
    res = m.deliver(ws, wb, rngs["up"], rngs["down"])
    dt = time.perf_counter() - t0
    out["tcp_segments_per_s"] = round(res.segments_sent / dt)
    out["tcp_60s_call_4g_ms"] = round(dt * 1000, 1)
    out["target_chain_batch_packets_per_s"] = TARGET_PACKETS_PER_S
    out["meets_target"] = bool(out["chain_batch_packets_per_s"] > TARGET_PACKETS_PER_S)  # type: ignore[operator]
    return out
