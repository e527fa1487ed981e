"""Cell functions: what the runner calls for one cell of an experiment.

A cell function takes ``(cell, out_dir)``, where ``cell`` is a dict of CallConfig fields plus ``mode``
and ``metrics`` (and the netns keys), writes the cell's artefacts into ``out_dir`` (an empty
directory) and returns the summary row (a flat dict). It raises on failure; the runner turns that into
a failed row. Cell functions must be importable module-level functions so worker processes (local or
Dask) can unpickle them.

* :func:`run_cell` (the default) picks the engine from ``mode`` and ``backend``
  (:func:`engine_for`) and runs the call with :func:`translab.call.run_call`.
* A cell with a ``topology`` is a voice-agent conversation (:func:`conversation_cell`), simulated or
  (``mode = "live"``) live through the in-process emulator beside its simulation.
* :func:`netns_cell` runs every cell on the namespace backend (``translab run --cell-function
  translab.lab.cells:netns_cell``).

Every figure in a summary row comes from a call that was run (simulated or live); there is no stand-in
engine here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from translab.call import Engine, run_call
from translab.config import NETNS_FIELDS, CallConfig

#: Keys of a cell that are not CallConfig fields.
RUNNER_KEYS = ("mode", "backend", "peer", "target", *NETNS_FIELDS)
#: Where a conversation cell writes its per-turn table (one row per caller turn, ms).
TURNS_FILE = "turns.parquet"


def call_config(cell: dict[str, Any]) -> CallConfig:
    """The :class:`translab.config.CallConfig` of a cell (runner keys removed)."""
    return CallConfig.from_dict({k: v for k, v in cell.items() if k not in RUNNER_KEYS})


def engine_for(cell: dict[str, Any]) -> Engine:
    """The engine of a cell: an external endpoint (``target = URL``), a headless Chromium caller
    (``peer = "chromium"``), netns
    (``backend = "netns"``), live (``mode = "live"``) or simulated.
    Cells on the netns backend get 5 s to connect, as `translab nat-matrix`: a cell that cannot connect
    (an expected outcome of the NAT matrix) should not hold the run up longer."""
    if cell.get("target") is not None:
        from translab.call.external import ExternalEngine

        return ExternalEngine(cell["target"])
    if cell.get("peer", "aiortc") == "chromium":
        from translab.call.browser import BrowserEngine

        return BrowserEngine()
    if cell.get("backend", "inprocess") == "netns":
        from translab.call.netns import NetnsEngine
        from translab.emulate.netns.call import NetnsOptions

        opts = NetnsOptions(**{k: cell.get(k, v) for k, v in NETNS_FIELDS.items()}, connect_timeout_s=5.0)
        return NetnsEngine(opts)
    if cell.get("mode", "simulate") == "live":
        from translab.call.live import LiveEngine

        return LiveEngine()
    from translab.call.simulated import SimulatedEngine

    return SimulatedEngine()


def run_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The default cell function: the cell's call with its engine (see :func:`engine_for`); writes
    trace.parquet, output.wav, frames.parquet and summary.json into ``out_dir``. Live calls are never
    run in parallel by the runner. A conversation cell (``topology`` set) runs :func:`conversation_cell`."""
    if cell.get("topology") is not None:
        return conversation_cell(cell, out_dir)
    return run_call(call_config(cell), engine_for(cell), out_dir).summary


def conversation_config(cell: dict[str, Any]) -> Any:
    """The :class:`translab.conversation.simulate.ConversationConfig` of a conversation cell: its
    ``profile`` is the caller's access leg, ``dc_profile`` the datacenter legs; ``think_ms`` the
    median think time (log-sd as the stand-in's default); ``edge_playout`` the RTP edge's jitter
    buffer (absent: adaptive simulated, aiortc-stock live, as `translab converse`); the cell's
    ``metrics`` the quality of both directions."""
    from translab.conversation.model import ReplyPacing, ThinkTime
    from translab.conversation.simulate import ConversationConfig

    live = cell.get("mode", "simulate") == "live"
    return ConversationConfig(
        topology=cell["topology"], profile=cell.get("profile"), dc_profile=cell.get("dc_profile", "colocated"),
        turns=int(cell.get("turns", 4)), bargein_every=int(cell.get("bargein_every", 0)),
        wer=bool(cell.get("wer", False)), seed=int(cell.get("seed", 7)),
        think=ThinkTime(median_ms=float(cell.get("think_ms", ThinkTime().median_ms))),
        pacing=ReplyPacing(mode=cell.get("pacing", "burst")), metrics=tuple(cell.get("metrics") or ()),
        edge_playout=cell.get("edge_playout") or ("aiortc-stock" if live else "adaptive"))


#: Figures of a live conversation's engine kept in its row (declared in translab.call.row's transport
#: group): the emulator's counters (``emu_*``), the host's event-loop stalls while the script ran
#: (``host_*``) and whether it ran under SCHED_RR.
LIVE_FIGURE_PREFIXES = ("emu_", "host_", "rt_scheduling")


def conversation_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """One conversation: simulated (translab.conversation.simulate.converse) or, with ``mode =
    "live"``, live in real time through the in-process emulator
    (translab.conversation.live.live_converse, under SCHED_RR where the process may) and then the
    simulation of the same config (same profile, seed, script and think-time draws): its
    ``sim_turn_latency_p50_ms`` and ``live_minus_sim_p50_ms`` (ms) join the live row, with the
    engine's figures (:data:`LIVE_FIGURE_PREFIXES`). Writes the per-turn table (:data:`TURNS_FILE`)
    and summary.json into ``out_dir``; returns the summary row (columns of the ``conversation`` group
    of translab.call.row)."""
    from translab.conversation.simulate import converse
    from translab.jsonio import write_json

    cfg = conversation_config(cell)
    if cell.get("mode", "simulate") == "live":
        from translab.conversation.live import live_converse

        res = live_converse(cfg, realtime=True)
        sim_p50 = float(converse(cfg).summary["turn_latency_p50_ms"])
        extra = {k: v for k, v in res.figures.items() if k.startswith(LIVE_FIGURE_PREFIXES)}
        extra.update(sim_turn_latency_p50_ms=sim_p50,
                     live_minus_sim_p50_ms=float(res.summary["turn_latency_p50_ms"]) - sim_p50)
    else:
        res, extra = converse(cfg), {}
    turns = res.turns.drop(columns=["heard_text"], errors="ignore")
    turns.to_parquet(Path(out_dir) / TURNS_FILE, index=False)
    summary = {**res.summary, **extra, "conversation_wall_s": res.wall_s}
    write_json(Path(out_dir) / "summary.json", summary)
    return summary


def netns_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """One cell as a live call on the namespace backend (raises NetnsUnavailable without root, which
    the runner records as the cell's error)."""
    return run_cell({**cell, "backend": "netns"}, out_dir)


# the names cells used before the call layer
simulate_cell = live_cell = run_cell
