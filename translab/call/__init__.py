"""The call layer: every way of making a call is an :class:`Engine` that turns a prepared call into a
:class:`CallRecord` (arrival trace + set-up milestones + the engine's own figures); one analysis turns
a record into a :class:`CallResult` whose summary is the result row declared in
:mod:`translab.call.row`; :func:`run_call` is the one path from a CallConfig to a result and its
artefacts, used by the CLI, experiment cells, ``translab serve``, the benchmarks and notebooks.

Engines: :class:`SimulatedEngine` (translab.call.simulated), :class:`LiveEngine` (translab.call.live,
the in-process emulator), :class:`NetnsEngine` (translab.call.netns, network namespaces; imported on
use), and served calls (translab.call.served). The live engines' modules import their transports
lazily, so ``import translab.call`` stays light.
"""

from translab.call.engine import ClipEngine, Engine, run_call
from translab.call.prepare import PreparedCall, prepare_call
from translab.call.record import CallRecord, CallResult, StockOutput
from translab.call.simulated import SimulatedEngine
from translab.config import CallConfig

__all__ = ["CallRecord", "CallResult", "ClipEngine", "Engine", "PreparedCall", "SimulatedEngine",
           "StockOutput", "prepare_call", "run_call", "simulate", "run_grid"]


def simulate(**config: object) -> CallResult:
    """One simulated call from CallConfig fields (``bitrate="24k"`` accepted): ``simulate(profile=
    "hotel-wifi").row()`` is its pandas row."""
    return run_call(CallConfig.from_dict(dict(config)), SimulatedEngine())


def run_grid(grid: dict[str, object], **defaults: object) -> "object":
    """Simulate every combination of ``grid`` (field -> list of values) over ``defaults``; a pandas
    DataFrame with one row per call."""
    import itertools

    import pandas as pd

    keys = list(grid)
    values = [v if isinstance(v, (list, tuple)) else [v] for v in grid.values()]
    rows = [simulate(**{**defaults, **dict(zip(keys, combo))}).summary
            for combo in itertools.product(*values)]
    return pd.DataFrame(rows)
