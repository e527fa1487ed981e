"""Real-time conditions for a live call in this process: a short GIL switch interval, no cyclic
garbage collection, optionally SCHED_RR (:func:`realtime_mode`), and a monitor of how late the event
loop wakes up (:class:`LoopLagMonitor`)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from typing import Any, Iterator

#: GIL switch interval during a live call (s). aiortc decodes and encrypts in worker threads; at
#: Python's default 5 ms a worker holding the GIL delays the emulator's releases by up to 5 ms.
LIVE_GIL_SWITCH_S = 0.0002


#: SCHED_RR priority a live call asks for with ``realtime=True`` (PipeWire/JACK use similar ones)
RT_PRIORITY = 10


@contextlib.contextmanager
def realtime_mode(interval_s: float = LIVE_GIL_SWITCH_S, rt_priority: int | None = None
                  ) -> Iterator[dict[str, Any]]:
    """For the block: a short GIL switch interval (worker threads cannot hold the loop for 5 ms)
    and no cyclic garbage collection (a full collection with pandas/aiortc loaded pauses the loop
    for 20-100 ms, measured; reference counting still frees almost everything during a call). With
    ``rt_priority``, the calling thread (and threads it starts, e.g. aiortc's codec workers) also
    runs under SCHED_RR at that priority, so other busy processes on the machine cannot delay the
    emulator's releases by a scheduler time slice (needs root or CAP_SYS_NICE; silently skipped
    otherwise). Everything is restored afterwards. Yields ``{"rt_scheduling": bool}``."""
    import gc
    import os

    old = sys.getswitchinterval()
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    sys.setswitchinterval(interval_s)
    state: dict[str, Any] = {"rt_scheduling": False}
    old_policy: tuple[int, Any] | None = None
    if rt_priority is not None and hasattr(os, "sched_setscheduler"):
        try:
            old_policy = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(rt_priority))
            state["rt_scheduling"] = True
        except (PermissionError, OSError):
            old_policy = None
    try:
        yield state
    finally:
        if old_policy is not None:
            try:
                os.sched_setscheduler(0, old_policy[0], old_policy[1])
            except OSError:
                pass
        sys.setswitchinterval(old)
        gc.unfreeze()
        if was_enabled:
            gc.enable()
        gc.collect()


class LoopLagMonitor:
    """Measures how late the event loop wakes up (a 10 ms sleep that takes longer): on a shared or
    virtualised host the whole process is sometimes descheduled for ~100 ms, which delays sends
    and arrivals alike. ``stalls`` lists (monotonic s, lag s) of wake-ups later than
    ``threshold_s``; reported so live figures can be judged. Set ``since_s`` (monotonic s) when the
    measured phase starts (a call's media origin): stalls that ended before it (set-up: imports,
    model loading, ICE/DTLS) are then not reported; with ``until_s`` too, neither are stalls that
    began after it (tear-down, a tail after the measured part)."""

    def __init__(self, period_s: float = 0.01, threshold_s: float = 0.02) -> None:
        self.period_s, self.threshold_s = period_s, threshold_s
        self.since_s: float | None = None
        self.until_s: float | None = None
        self.stalls: list[tuple[float, float]] = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                t = loop.time()
                await asyncio.sleep(self.period_s)
                lag = loop.time() - t - self.period_s
                if lag > self.threshold_s:
                    self.stalls.append((t, lag))
        except asyncio.CancelledError:
            pass

    async def stop(self) -> dict[str, float]:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        since = -math.inf if self.since_s is None else self.since_s
        until = math.inf if self.until_s is None else self.until_s
        lags = [lag for t, lag in self.stalls if t + self.period_s + lag > since and t < until]
        return {"host_stalls": len(lags), "host_stall_max_ms": 1e3 * max(lags) if lags else 0.0,
                "host_stall_total_ms": 1e3 * sum(lags)}
