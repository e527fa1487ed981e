"""The engine interface and the one call path, :func:`run_call`.

An engine is whatever moves a prepared call's packets (a simulator, real transports through the
in-process emulator, real kernel stacks in network namespaces, a remote caller received by
``translab serve``, later a browser or an external endpoint) and reports what it saw as a
:class:`translab.call.record.CallRecord`. Everything after that -- playout, metrics, the result row,
the artefacts -- is the same code for every engine (:mod:`translab.call.analysis`,
:mod:`translab.call.artefacts`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from translab.call.analysis import analyse
from translab.call.artefacts import write_artefacts
from translab.call.prepare import PreparedCall, prepare_call
from translab.call.record import CallRecord, CallResult
from translab.config import CallConfig
from translab.call.live_protection import refuse_live


@runtime_checkable
class Engine(Protocol):
    """Turns a prepared call into a call record.

    ``name`` names the engine in errors; ``mode`` goes into the row ("simulate" or "live").
    ``prepare`` builds what the engine starts from (:func:`translab.call.prepare.prepare_call` for
    engines that send the clip themselves); ``run`` makes the call (blocking; a live engine runs its
    own event loop, see :func:`translab.call.live.run_outside_event_loop`) and must not raise for a
    call that merely failed (it returns a record with ``status="failed"`` and a ``reason``)."""

    name: str
    mode: str

    def prepare(self, cfg: CallConfig) -> PreparedCall: ...

    def run(self, call: PreparedCall, out_dir: Path | None) -> CallRecord: ...


class ClipEngine:
    """Base for engines whose caller sends the config's clip: ``prepare`` is
    :func:`translab.call.prepare.prepare_call`."""

    name = "clip"
    mode = "simulate"
    #: protection options (translab.protection) a live engine carries; the others are refused by name
    live_protection: tuple[str, ...] = ()

    def prepare(self, cfg: CallConfig) -> PreparedCall:
        call = prepare_call(cfg)
        if self.mode == "live":
            refuse_live(call.cfg, self.name, self.live_protection)
        return call


def run_call(config: CallConfig | None, engine: Engine, out_dir: str | Path | None = None) -> CallResult:
    """Make one call with ``engine`` and analyse it; with ``out_dir``, write its artefacts there
    (trace.parquet, output.wav, frames.parquet, summary.json). ``config`` None: CallConfig()."""
    t0 = time.perf_counter()
    call = engine.prepare(config or CallConfig())
    record = engine.run(call, Path(out_dir) if out_dir is not None else None)
    return _finish(call, record, engine, out_dir, t0)


class AsyncEngine(Engine, Protocol):
    """An engine that can also make its call inside a running event loop (several calls at once in
    one loop, as the prober does): ``run_async`` is ``run`` as a coroutine."""

    async def run_async(self, call: PreparedCall, out_dir: Path | None = None) -> CallRecord: ...


async def run_call_async(config: CallConfig | None, engine: AsyncEngine,
                         out_dir: str | Path | None = None) -> CallResult:
    """:func:`run_call` in the running event loop: the call with ``engine.run_async``, then the same
    analysis and artefacts, in a worker thread so other calls in the loop keep their timing."""
    import asyncio

    t0 = time.perf_counter()
    call = engine.prepare(config or CallConfig())
    record = await engine.run_async(call, Path(out_dir) if out_dir is not None else None)
    return await asyncio.to_thread(_finish, call, record, engine, out_dir, t0)


def _finish(call: PreparedCall, record: CallRecord, engine: Engine, out_dir: str | Path | None,
            t0: float) -> CallResult:
    """The one analysis of ``record`` and, with ``out_dir``, its artefacts; ``t0``: perf_counter s
    when the call began (for ``wall_s``)."""
    result = analyse(call, record, engine.mode, engine.name)
    result.wall_s = time.perf_counter() - t0
    if out_dir is not None:
        write_artefacts(result, out_dir)
    return result
