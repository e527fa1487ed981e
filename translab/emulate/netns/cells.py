"""Experiment-runner cell function for the namespace backend.

``netns_cell(cell, out_dir)`` runs a cell (CallConfig fields, plus optional :data:`NETNS_FIELDS`)
as a live call on the namespace backend and writes the same artefacts as a live cell. Usable today
as ``translab run FILE --cell-function translab.emulate.netns.cells:netns_cell`` (every cell on the
netns backend with the defaults below), and by the default cell function for cells with
``backend = "netns"`` (experiment files carry the keys of :data:`NETNS_FIELDS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Cell keys of the namespace backend and their defaults (see NetnsOptions).
NETNS_FIELDS: dict[str, Any] = {"caller_nat": "none", "callee_nat": "none", "firewall": "open",
                                "callee_firewall": "open", "ice": "none", "relay_only": False}


def netns_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """One cell as a live call on the namespace backend; returns the summary row (raises
    NetnsUnavailable without root, which the runner records as the cell's error)."""
    from translab.emulate.netns.call import NetnsOptions, netns_call
    from translab.lab.cells import _save_frames, call_config, network_delay, run_outside_event_loop

    # 5 s to connect, as `translab nat-matrix`: a cell that cannot connect (an expected outcome of
    # the NAT matrix) should not hold the run up longer
    opts = NetnsOptions(**{k: cell.get(k, v) for k, v in NETNS_FIELDS.items()}, connect_timeout_s=5.0)
    base = {k: v for k, v in cell.items() if k not in NETNS_FIELDS}
    result = run_outside_event_loop(lambda: netns_call(call_config(base), opts, out_dir=out_dir))
    _save_frames(result, Path(out_dir))
    return {**result.summary, **network_delay(result.trace)}
