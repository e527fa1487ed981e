"""Synthetic call probes (``translab probe``): every ``every_s`` seconds, one real call per target
(:class:`translab.call.external.ExternalEngine` through :func:`translab.call.engine.run_call_async`, the
in-process emulator with the probe's profile), its figures exported as Prometheus metrics (:class:`translab.metrics.prometheus.CallMetrics`,
prefix ``translab_probe``).

Invariants: targets are probed independently (one task each, started ``every_s / n`` apart so
their calls rarely overlap); a probe that fails, raises or hangs is counted as a failure with its
reason and the next one starts on time; a probe never outlives its interval (it is cancelled after
``every_s - margin`` s and counted as ``timeout``). Probe k of a run uses seed ``seed + k``, so
successive probes see different (reproducible) draws of the profile's impairments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from translab.config import CallConfig
from translab.errors import ConfigError, check_range
from translab.transport.external import FAILURES, Target

__all__ = ["ProbeConfig", "parse_duration", "run_probes", "MARGIN_S"]

#: a probe is cancelled this long (s) before its interval ends, so the next starts on time
MARGIN_S = 0.5

#: time (s) a probe call needs beyond its media (set-up, drain, PLCMOS of the audio back)
SETUP_ALLOWANCE_S = 2.0

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float, field_name: str) -> float:
    """``"60s"``, ``"3m"``, ``"1h"``, ``"500ms"`` or a plain number of seconds -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*", str(text))
    if not m:
        raise ConfigError(field_name, text, "a duration such as 60s, 3m, 1h, 500ms or a number of seconds")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass(frozen=True)
class ProbeConfig:
    """A probe run. Times in s. ``call``: the caller's call (profile, clip, duration_s, seed base);
    ``for_s``: stop after this long (None: until cancelled)."""

    targets: tuple[Target, ...]
    every_s: float = 60.0
    for_s: float | None = None
    call: CallConfig = field(default_factory=lambda: CallConfig(profile="clean-lan", duration_s=3.0, metrics=()))
    connect_timeout_s: float = 10.0
    listen_s: float = 1.5
    out_dir: Path | None = None

    def check(self) -> None:
        """Raise ConfigError for a run that cannot keep its promises (a probe must fit its interval)."""
        if not self.targets:
            raise ConfigError("--target", None, "at least one target URL")
        check_range("--every", self.every_s, 1.0, 86400, "s")
        if self.for_s is not None:
            check_range("--for", self.for_s, 0.1, 10 * 365 * 86400, "s")
        call_s = float(self.call.duration_s or 0) + self.listen_s + SETUP_ALLOWANCE_S
        if call_s > self.every_s - MARGIN_S:
            raise ConfigError("--every", f"{self.every_s:g} s", f"more than the probe call's "
                              f"{call_s:g} s (clip duration + listen + {SETUP_ALLOWANCE_S:g} s for set-up "
                              f"and analysis) + {MARGIN_S:g} s")


def _warm_up() -> None:
    """Load what the first probe would otherwise load inside its interval: the call path's modules
    (pandas, scipy, aiortc: seconds on a busy machine) and PLCMOS' model."""
    import importlib

    import numpy as np

    from translab.metrics.quality import plcmos

    for module in ("translab.call.analysis", "translab.call.external", "translab.emulate.emulator", "translab.transport.webrtc", "aiortc",
                   "websockets.asyncio.client", "translab.provenance"):
        importlib.import_module(module)
    from translab.provenance import versions

    versions()
    plcmos(np.zeros(16000, dtype=np.float32), 16000)


async def run_probes(cfg: ProbeConfig, metrics: Any, *, stop: asyncio.Event | None = None,
                     on_result: Callable[[str, dict[str, Any]], None] | None = None) -> int:
    """Probe every target every ``cfg.every_s`` s until ``cfg.for_s`` has passed or ``stop`` is
    set; feed ``metrics`` (a CallMetrics); ``on_result(url, summary)`` after each probe. Returns
    the number of probes made."""
    from translab.call.engine import run_call_async
    from translab.call.external import ExternalEngine

    cfg.check()
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(_warm_up)  # before the schedule: the first probe must not pay for it
    stop = stop or asyncio.Event()
    count = [0]
    log = None
    if cfg.out_dir is not None:
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        log = open(Path(cfg.out_dir) / "probes.jsonl", "a", encoding="utf-8")
    budget = cfg.every_s - MARGIN_S
    for t in cfg.targets:
        metrics.declare({"transport": t.transport, "target": t.url, "profile": cfg.call.profile}, FAILURES)
    connect_timeout = min(cfg.connect_timeout_s, budget / 2)

    start = loop.time()
    end = start + cfg.for_s if cfg.for_s is not None else float("inf")

    async def one(target: Target, k: int) -> dict[str, Any]:
        """Probe ``target`` once; the summary gains ``probe``, ``time`` and ``probe_wall_s``."""
        t = time.perf_counter()
        s = await attempt(target, k)
        s["probe_wall_s"] = time.perf_counter() - t
        return s

    async def attempt(target: Target, k: int) -> dict[str, Any]:
        call = dataclasses.replace(cfg.call, seed=int(cfg.call.seed) + k)
        base = {"target": target.url, "transport": target.transport, "profile": call.profile, "status": "failed",
                "probe": k, "time": time.time()}
        try:
            engine = ExternalEngine(target, listen_s=cfg.listen_s, connect_timeout_s=connect_timeout)
            result = await asyncio.wait_for(run_call_async(call, engine), budget)
            return {**result.summary, "probe": k, "time": base["time"]}
        except asyncio.TimeoutError:
            return {**base, "failure": "timeout", "reason": f"probe did not finish within {budget:g} s"}
        except Exception as err:  # a probe must never stop the others
            return {**base, "failure": "error", "reason": f"{type(err).__name__}: {err}"}

    async def per_target(i: int, target: Target) -> None:
        t = start + i * cfg.every_s / len(cfg.targets)
        while t < end and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, t - loop.time()))
                return
            except asyncio.TimeoutError:
                pass
            k = count[0]
            count[0] += 1
            s = await one(target, k)
            metrics.observe(s, target=target.url)
            if log is not None:
                log.write(json.dumps(s, sort_keys=True, default=str) + "\n")
                log.flush()
            if on_result is not None:
                on_result(target.url, s)
            t += cfg.every_s
            while t < loop.time():  # a late start skips the intervals it missed, never bunches up
                t += cfg.every_s

    try:
        await asyncio.gather(*(per_target(i, t) for i, t in enumerate(cfg.targets)))
    finally:
        if log is not None:
            log.close()
    return count[0]
