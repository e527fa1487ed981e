"""Benchmarks of the live emulator: how accurately it adds a configured delay and what it costs;
and live calls against their simulation (same profile, same seed).

Probe datagrams (64 bytes carrying their send time) go at ``rate_pps`` in each direction between two
UDP sockets on loopback, through a :class:`translab.emulate.LiveEmulator` whose links are a constant
delay (:class:`translab.link.delay.Delay`). For each probe, added-delay error = (receive time - send
time) - configured delay, in ms; it includes the emulator's release lateness, the loopback hop and
the receiving loop's wake-up. CPU cost = process CPU time / wall time during the run (the probe
generator and receiver are included, so it is an upper bound for the emulator itself).
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import numpy as np

from translab.emulate.emulator import LiveEmulator


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.sent: list[float] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        t = time.monotonic()
        (sent,) = struct.unpack_from("!d", data)
        self.delays.append(t - sent)
        self.sent.append(sent)


async def measure(delay_ms: float = 40.0, rate_pps: float = 50.0, duration_s: float = 10.0,
                  use_timerfd: bool = True, realtime: bool = True) -> dict[str, Any]:
    """Run the probe experiment; returns figures (ms, percent, counts). ``realtime``: under
    SCHED_RR as a live call with ``realtime=True`` (when permitted)."""
    from translab.live import RT_PRIORITY, realtime_mode

    with realtime_mode(rt_priority=RT_PRIORITY if realtime else None) as rt:
        out = await _measure(delay_ms, rate_pps, duration_s, use_timerfd)
    out.update(rt)
    return out


async def _measure(delay_ms: float, rate_pps: float, duration_s: float, use_timerfd: bool
                   ) -> dict[str, Any]:
    from translab.link.delay import Delay

    loop = asyncio.get_running_loop()
    emu = LiveEmulator("constant-delay", seed=0, chain_factory=lambda d: Delay(base_s=delay_ms / 1e3))
    await emu.start()
    if not use_timerfd:  # the plain loop.call_at mechanism, for comparison
        assert emu.scheduler is not None
        emu.scheduler.close()
        from translab.emulate.scheduler import DeadlineScheduler

        emu.scheduler = DeadlineScheduler(loop, use_timerfd=False)
        emu.timer = emu.scheduler.mechanism
        for link in emu.udp.values():
            link.scheduler = emu.scheduler
    ends = []
    for _ in range(2):
        tr, pr = await loop.create_datagram_endpoint(_Receiver, local_addr=("127.0.0.1", 0))
        ends.append((tr, pr))
    (ta, pa), (tb, pb) = ends
    addr_a, addr_b = ta.get_extra_info("sockname"), tb.get_extra_info("sockname")
    from translab.live import LoopLagMonitor

    monitor = LoopLagMonitor()
    period = 1.0 / rate_pps
    n = int(duration_s * rate_pps)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start = loop.time() + 0.05
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i * period - loop.time()))
        for link, tr, dst in ((emu.udp["up"], ta, addr_b), (emu.udp["down"], tb, addr_a)):
            msg = struct.pack("!d", time.monotonic()) + b"\0" * 56
            def forward(d: bytes, tr: Any = tr, dst: Any = dst) -> None:
                tr.sendto(d, dst)

            link.submit(msg, forward)
    await asyncio.sleep(delay_ms / 1e3 + 0.1)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    report = emu.report()
    stalls = list(monitor.stalls)
    host = await monitor.stop()
    mech = report.get("emu_timer")
    await emu.close()
    ta.close()
    tb.close()
    out: dict[str, Any] = {"timer": mech, "delay_ms": delay_ms, "rate_pps_each_way": rate_pps,
                           "duration_s": duration_s}
    for name, pr in (("up", pb), ("down", pa)):
        err = (np.asarray(pr.delays) - delay_ms / 1e3) * 1e3
        out[f"{name}_probes_received"] = int(len(err))
        out[f"{name}_error_p50_ms"] = float(np.percentile(err, 50)) if len(err) else float("nan")
        out[f"{name}_error_p99_ms"] = float(np.percentile(err, 99)) if len(err) else float("nan")
        out[f"{name}_error_max_ms"] = float(np.max(np.abs(err))) if len(err) else float("nan")
    both = np.concatenate([np.asarray(pb.delays), np.asarray(pa.delays)]) * 1e3 - delay_ms
    out["error_p50_ms"] = float(np.percentile(both, 50))
    out["error_p99_ms"] = float(np.percentile(both, 99))
    out["error_abs_p99_ms"] = float(np.percentile(np.abs(both), 99))
    # the host (a shared VM) sometimes deschedules the whole process; probes in flight then are late
    # for reasons outside the emulator. Reported separately, never instead of the figures above.
    out.update(host)
    sent = np.concatenate([np.asarray(pb.sent), np.asarray(pa.sent)])
    hit = np.zeros(len(sent), dtype=bool)
    for t_stall, lag in stalls:  # stall window: [t_stall, t_stall + 10 ms + lag]
        hit |= (sent + delay_ms / 1e3 + 0.005 >= t_stall) & (sent <= t_stall + 0.01 + lag)
    if (~hit).any():
        out["error_p99_ms_outside_host_stalls"] = float(np.percentile(both[~hit], 99))
    out["probes_in_host_stalls"] = int(hit.sum())
    out.update({k.replace("emu_", ""): v for k, v in report.items() if k.startswith("emu_release")})
    out["cpu_percent_of_one_core"] = 100.0 * cpu / wall
    import os

    out["load_avg_1min"] = os.getloadavg()[0]
    return out


LIVE_SIM_KEYS = ("loss_rate", "m2e_p50_ms", "m2e_p95_ms", "budget_network_ms", "late_rate",
                 "concealed_ratio")


def long_clip(min_s: float) -> str:
    """A WAV of at least ``min_s`` seconds: the shipped clips one after another (written once to
    the temporary directory; 48 kHz mono)."""
    import tempfile
    from pathlib import Path

    from translab.media.audio import write_wav
    from translab.media.clips import list_clips, load_clip

    path = Path(tempfile.gettempdir()) / f"translab-bench-speech-{int(min_s)}s.wav"
    if not path.exists():
        parts: list[np.ndarray] = []
        while sum(len(p) for p in parts) < min_s * 48000:
            parts.extend(load_clip(c, 48000) for c in list_clips())
        write_wav(path, np.concatenate(parts), 48000)
    return str(path)


def playout_sensitivity(trace: Any, policy: str, conceal: str, n: int = 20, lo_ms: float = 0.3,
                        hi_ms: float = 1.5, seed: int = 0) -> tuple[float, float]:
    """(min, max) mouth-to-ear p50 (ms) of ``trace`` played with ``policy`` after adding ``n`` draws
    of uniform ``lo_ms``..``hi_ms`` extra delay per packet: the sub-millisecond timing a live path
    adds over the simulation (loopback, SRTP/TLS, the relay; live network delay is 0.5-1 ms above
    the simulated one). An adaptive jitter buffer's decisions are thresholds, so that much noise can
    move its median by more than a frame (hotel-wifi seed 5, WebSocket: 138 to 154 ms); a live
    call is compared with the simulation's own spread, not a single replay."""
    from translab.metrics.latency import mouth_to_ear
    from translab.playout import play

    rng = np.random.default_rng(seed)
    lookahead = float(trace.attrs.get("lookahead_ms") or 0.0)
    out = []
    for _ in range(n):
        t = trace.copy()
        t.attrs = dict(trace.attrs)
        t["arrival_s"] = t["arrival_s"] + rng.uniform(lo_ms, hi_ms, len(t)) / 1e3
        out.append(mouth_to_ear(play(t, policy=policy, conceal=conceal).frames, lookahead)["m2e_p50_ms"])
    return float(min(out)), float(max(out))


def live_vs_sim(transport: str, profile: str = "hotel-wifi", duration_s: float = 20.0, seed: int = 11,
                playout: str = "adaptive", realtime: bool = True, attempts: int = 3) -> dict[str, Any]:
    """:func:`live_vs_sim_once` up to ``attempts`` times until a live call ran without a host
    stall (the shared VM pausing the whole process ~100 ms, which an adaptive jitter buffer answers
    by growing for the rest of the call); returns that run (or the one with fewest stalls) plus
    every attempt's stall count and m2e difference, so nothing is hidden."""
    runs = []
    for _ in range(max(1, attempts)):
        r = live_vs_sim_once(transport, profile, duration_s, seed, playout, realtime)
        runs.append(r)
        if r.get("status") == "ok" and not r.get("host_stalls"):
            break
    best = min(runs, key=lambda r: (r.get("status") != "ok", r.get("host_stalls") or 0))
    best = dict(best)
    best["attempts"] = [{"host_stalls": r.get("host_stalls"), "m2e_p50_diff_ms": r.get("m2e_p50_diff_ms"),
                         "loss_diff_pp": r.get("loss_diff_pp")} for r in runs]
    return best


def live_vs_sim_once(transport: str, profile: str = "hotel-wifi", duration_s: float = 20.0, seed: int = 11,
                     playout: str = "adaptive", realtime: bool = True) -> dict[str, Any]:
    """One live call and its simulation (same config and seed) over ``duration_s`` of speech:
    headline figures side by side and their differences (live - sim; loss in percentage points,
    latency in ms), with the host stalls seen during the live call."""
    import os

    from translab.config import CallConfig
    from translab.live import live_call
    from translab.simulate import simulate

    cfg = CallConfig(transport=transport, profile=profile, duration_s=duration_s, seed=seed,
                     playout=playout, metrics=(), clip=long_clip(duration_s),
                     sample_rate=16000 if transport == "websocket" else None)
    load0 = os.getloadavg()[0]
    live = live_call(cfg, drain_s=1.0, realtime=realtime).summary
    sim_res = simulate(cfg)
    sim = sim_res.summary
    out: dict[str, Any] = {"profile": profile, "seed": seed, "duration_s": duration_s,
                           "playout": playout, "status": live.get("status"),
                           "reason": live.get("reason"), "load_avg_1min": load0}
    for k in LIVE_SIM_KEYS:
        out[f"live_{k}"], out[f"sim_{k}"] = live.get(k), sim.get(k)
    if live.get("status") == "ok":
        out["loss_diff_pp"] = 100.0 * (live["loss_rate"] - sim["loss_rate"])
        out["m2e_p50_diff_ms"] = live["m2e_p50_ms"] - sim["m2e_p50_ms"]
        lo, hi = playout_sensitivity(sim_res.trace, playout, sim["conceal"])
        out["sim_m2e_p50_band_ms"] = [lo, hi]  # the simulation under the live path's sub-ms timing noise
        out["network_p50_diff_ms"] = live["budget_network_ms"] - sim["budget_network_ms"]
        for k in ("emu_release_late_p99_ms", "host_stalls", "host_stall_max_ms", "send_late_p99_ms",
                  "rt_scheduling"):
            out[k] = live.get(k)
        out.update({k: v for k, v in live.items() if k.startswith("setup_")})
        if transport == "webrtc":
            out["stock_m2e_p50_ms"] = live.get("stock_m2e_p50_ms")
            out["rtc_inbound_jitter_s"] = live.get("rtc_callee_inbound_rtp_jitter_s")
    return out


def clean_lan_fixed40(duration_s: float = 5.0) -> dict[str, Any]:
    """Live WebRTC on clean-lan with fixed:40 playout: m2e p50 against frame + lookahead + 40 ms.
    fixed:<ms> plays each frame at its capture time + target, so the sum holds whenever every frame
    arrived in time: the late and concealed shares and the real path delay (network_p50_ms: aiortc,
    SRTP and the emulator) are what the live call measures."""
    from translab.config import CallConfig
    from translab.live import live_call

    cfg = CallConfig(transport="webrtc", profile="clean-lan", duration_s=duration_s, playout="fixed:40",
                     metrics=(), seed=1)
    s = live_call(cfg, drain_s=0.5, realtime=True).summary
    expected = cfg.frame_ms + s.get("budget_lookahead_ms", 0.0) + 40.0
    return {"m2e_p50_ms": s.get("m2e_p50_ms"), "expected_ms": expected,
            "diff_ms": (s.get("m2e_p50_ms") or float("nan")) - expected, "status": s.get("status"),
            "late_rate": s.get("late_rate"), "concealed_ratio": s.get("concealed_ratio"),
            "network_p50_ms": s.get("budget_network_ms")}


def run(duration_s: float = 10.0, live_s: float = 20.0) -> dict[str, Any]:
    """`translab bench` entry: the emulator's delay accuracy with timerfd releases, with plain
    ``loop.call_at`` for comparison (half the duration), live vs simulation for both transports on
    a lossy jittery profile (``live_s`` of speech each), and the clean-LAN fixed:40 check."""
    res = asyncio.run(measure(duration_s=duration_s))
    res["call_at_comparison"] = asyncio.run(measure(duration_s=duration_s / 2, use_timerfd=False))
    if live_s > 0:
        res["live_vs_sim_webrtc"] = live_vs_sim("webrtc", duration_s=live_s)
        res["live_vs_sim_websocket"] = live_vs_sim("websocket", duration_s=live_s)
        res["clean_lan_fixed40"] = clean_lan_fixed40()
    return res


if __name__ == "__main__":  # pragma: no cover
    from translab.jsonio import dumps

    print(dumps(run(), indent=2))
