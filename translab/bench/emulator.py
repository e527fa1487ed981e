"""Benchmark: how accurately the live emulator adds a configured delay, and what it costs.

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

from translab.emulate.emulator import LiveEmulator, release_error_stats


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.delays: list[float] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        t = time.monotonic()
        (sent,) = struct.unpack_from("!d", data)
        self.delays.append(t - sent)


async def measure(delay_ms: float = 40.0, rate_pps: float = 50.0, duration_s: float = 10.0,
                  use_timerfd: bool = True) -> dict[str, Any]:
    """Run the probe experiment; returns figures (ms, percent, counts)."""
    from translab.link.delay import Delay

    loop = asyncio.get_running_loop()
    emu = LiveEmulator("constant-delay", seed=0, chain_factory=lambda d: Delay(base_s=delay_ms / 1e3))
    await emu.start()
    if not use_timerfd:  # the plain loop.call_at mechanism, for comparison
        assert emu.scheduler is not None
        emu.scheduler.close()
        from translab.emulate.scheduler import DeadlineScheduler

        emu.scheduler = DeadlineScheduler(loop, use_timerfd=False)
        for link in emu.udp.values():
            link.scheduler = emu.scheduler
    ends = []
    for _ in range(2):
        tr, pr = await loop.create_datagram_endpoint(_Receiver, local_addr=("127.0.0.1", 0))
        ends.append((tr, pr))
    (ta, pa), (tb, pb) = ends
    addr_a, addr_b = ta.get_extra_info("sockname"), tb.get_extra_info("sockname")
    period = 1.0 / rate_pps
    n = int(duration_s * rate_pps)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start = loop.time() + 0.05
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i * period - loop.time()))
        for link, tr, dst in ((emu.udp["up"], ta, addr_b), (emu.udp["down"], tb, addr_a)):
            msg = struct.pack("!d", time.monotonic()) + b"\0" * 56
            link.submit(msg, lambda d, tr=tr, dst=dst: tr.sendto(d, dst))
    await asyncio.sleep(delay_ms / 1e3 + 0.1)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    report = emu.report()
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
    out.update({k.replace("emu_", ""): v for k, v in report.items() if k.startswith("emu_release")})
    out["cpu_percent_of_one_core"] = 100.0 * cpu / wall
    return out


def run(duration_s: float = 10.0) -> dict[str, Any]:
    """`translab bench` entry: the emulator's delay accuracy with timerfd releases, and with plain
    ``loop.call_at`` for comparison (half the duration)."""
    res = asyncio.run(measure(duration_s=duration_s))
    res["call_at_comparison"] = asyncio.run(measure(duration_s=duration_s / 2, use_timerfd=False))
    return res


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(), indent=2))
