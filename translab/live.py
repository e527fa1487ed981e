"""One live call through the in-process emulator (the live engine through
:func:`translab.call.run_call`). Kept as the live call's short name; see :mod:`translab.call.live`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from translab.call.analysis import analyse
from translab.call.engine import run_call
from translab.call.live import LiveEngine
from translab.call.record import CallResult
from translab.config import CallConfig
from translab.emulate.realtime import LIVE_GIL_SWITCH_S, RT_PRIORITY, LoopLagMonitor, realtime_mode

__all__ = ["live_call", "live_call_async", "LIVE_GIL_SWITCH_S", "RT_PRIORITY", "LoopLagMonitor",
           "realtime_mode"]


async def live_call_async(cfg: CallConfig, **kwargs: Any) -> CallResult:
    """A live call in the running event loop (keyword arguments: :class:`LiveEngine`'s fields)."""
    engine = LiveEngine(**kwargs)
    call = engine.prepare(cfg)
    return analyse(call, await engine.run_async(call), engine.mode, engine.name)


def live_call(cfg: CallConfig, out_dir: str | Path | None = None, **kwargs: Any) -> CallResult:
    """Run one live call (blocking; real time) and return its CallResult (``mode == "live"``).
    Keyword arguments: :class:`translab.call.live.LiveEngine`'s fields. With ``out_dir``, writes the
    artefacts there."""
    return run_call(cfg, LiveEngine(**kwargs), out_dir)
