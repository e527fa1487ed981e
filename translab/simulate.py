"""One offline call, faster than real time (the simulated engine through :func:`translab.call.run_call`).

Kept as the simulated call's short name; the call layer is :mod:`translab.call`."""

from __future__ import annotations

from pathlib import Path

from translab.call.analysis import codec_only_key, codec_only_scores, frame_fates
from translab.call.artefacts import write_artefacts
from translab.call.engine import run_call
from translab.call.prepare import load_reference, prepare_call, trace_attrs
from translab.call.record import CallResult
from translab.call.simulated import SimulatedEngine
from translab.config import CallConfig

#: the cached codec-only quality (name kept for the benchmarks and tests)
_codec_only_scores = codec_only_scores

__all__ = ["CallResult", "codec_only_key", "frame_fates", "load_reference", "prepare_call", "simulate",
           "trace_attrs", "write_artefacts"]


def simulate(cfg: CallConfig | None = None, out_dir: str | Path | None = None) -> CallResult:
    """Simulate one call (uplink: caller to callee) and return its CallResult; with ``out_dir``, also
    write the artefacts there. Same config and seed give byte-identical output."""
    return run_call(cfg, SimulatedEngine(), out_dir)
