"""Cell functions: what the runner calls for one cell of an experiment.

A cell function takes ``(cell, out_dir)``, where ``cell`` is a dict of CallConfig fields plus ``mode``
and ``metrics``, writes the cell's artefacts into ``out_dir`` (an empty directory) and returns the
summary row (a flat dict). It raises on failure; the runner turns that into a failed row. Cell functions
must be importable module-level functions so worker processes (local or Dask) can unpickle them.

* :func:`run_cell` (the default) dispatches on ``mode`` and ``backend``: :func:`simulate_cell`,
  :func:`live_cell`, or (``backend = "netns"``) :func:`translab.emulate.netns.cells.netns_cell`.

Every figure in a summary row comes from a call that was run (simulated or live); there is no stand-in
engine here. ``translab run --cell-function MODULE:FUNC`` runs cells with another function of the same
shape (e.g. ``translab.emulate.netns.cells:netns_cell``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

#: Keys of a cell that are not CallConfig fields (the netns keys: translab.lab.experiment.NETNS_KEYS).
RUNNER_KEYS = ("mode", "backend", "caller_nat", "callee_nat", "firewall", "callee_firewall", "ice",
               "relay_only")


def call_config(cell: dict[str, Any]) -> Any:
    """The :class:`translab.config.CallConfig` of a cell (runner keys removed)."""
    from translab.config import CallConfig

    return CallConfig.from_dict({k: v for k, v in cell.items() if k not in RUNNER_KEYS})


def _save_frames(result: Any, out_dir: Path) -> None:
    """Keep the playout frames log (m2e per played block) for latency CDFs in figures."""
    frames = getattr(getattr(result, "playout", None), "frames", None)
    if frames is not None:
        cols = [c for c in ("play_s", "media_ts", "samples", "kind", "m2e_ms") if c in frames.columns]
        frames[cols].to_parquet(out_dir / "frames.parquet", index=False)


def network_delay(trace: Any) -> dict[str, float]:
    """Transport-level delay of a call's received packets, arrival - send (ms): p50, p95, p99, max.
    For WebSocket this includes TCP retransmission and head-of-line waits; playout is not included."""
    import numpy as np

    d = (trace["arrival_s"].to_numpy(dtype=float) - trace["send_s"].to_numpy(dtype=float)) * 1000.0
    d = d[~np.isnan(d)]
    if not d.size:
        return {}
    p50, p95, p99 = np.percentile(d, [50, 95, 99])
    return {"net_delay_p50_ms": float(p50), "net_delay_p95_ms": float(p95), "net_delay_p99_ms": float(p99),
            "net_delay_max_ms": float(d.max())}


def simulate_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Simulate one call (translab.simulate) and write trace.parquet, output.wav, summary.json and
    frames.parquet into ``out_dir``."""
    from translab.simulate import simulate

    result = simulate(call_config(cell), out_dir=out_dir)
    _save_frames(result, Path(out_dir))
    return {**result.summary, **network_delay(result.trace)}


def live_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Run one live call in real time (translab.live) and write the same artefacts as a simulated
    cell. Live calls are never run in parallel by the runner."""
    from translab.live import live_call

    result = run_outside_event_loop(lambda: live_call(call_config(cell), out_dir=out_dir))
    _save_frames(result, Path(out_dir))
    return {**result.summary, **network_delay(result.trace)}


def run_outside_event_loop(fn: Callable[[], Any]) -> Any:
    """``fn()``, in a helper thread when this thread already runs an asyncio loop (Jupyter), because
    a live call starts its own loop with ``asyncio.run``."""
    import asyncio
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="translab-live") as ex:
        return ex.submit(fn).result()


def run_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The default cell function: simulate or live by ``cell["mode"]``; netns by ``cell["backend"]``."""
    if cell.get("backend", "inprocess") == "netns":
        from translab.emulate.netns.cells import netns_cell

        return netns_cell(cell, out_dir)
    if cell.get("mode", "simulate") == "live":
        return live_cell(cell, out_dir)
    return simulate_cell(cell, out_dir)
