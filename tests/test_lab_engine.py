"""The runner with the real engine: the shipped smoke experiment end to end (artefacts per cell,
summary columns, manifest, report), and Dask through a scheduler address giving the same rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from translab.lab.experiment import from_dict, load_experiment
from translab.lab.runner import run_experiment
from translab.report.html import write_report

VOLATILE = ["run_wall_s", "finished_at"]


def test_smoke_experiment_end_to_end(tmp_path: Path) -> None:
    exp = load_experiment("smoke")
    out = run_experiment(exp, tmp_path, workers=2, progress=False)
    assert out.n_failed == 0, out.failed
    df = out.results
    assert len(df) == len(exp.cells()) and set(df["transport"]) == {"webrtc", "websocket"}
    for col in ("m2e_p50_ms", "m2e_p95_ms", "m2e_p99_ms", "loss_rate", "late_rate", "concealed_ratio",
                "wire_kbps_up", "payload_kbps_up", "plcmos", "emodel_mos", "v_libopus", "config_hash"):
        assert df[col].notna().all(), col
    for h in df["cell_hash"]:
        cell = tmp_path / "cells" / h
        for f in ("trace.parquet", "output.wav", "summary.json", "frames.parquet", "row.json"):
            assert (cell / f).exists(), f
    ws = df[df["transport"] == "websocket"]
    assert (ws["loss_rate"] == 0).all()  # TCP: nothing lost, only late
    html = write_report(tmp_path).read_text()
    assert "data:image/png;base64," in html and "smoke" in html


def test_dask_scheduler_address_matches_local(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    exp = from_dict({"name": "dask", "description": "", "metrics": [],
                     "defaults": {"clip": "slt-weather", "duration_s": 2.0},
                     "grid": {"transport": ["webrtc", "websocket"], "profile": "4g-handoff", "seed": [1, 2]}})
    local = run_experiment(exp, tmp_path / "local", workers=2, progress=False, code="t")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        dask = run_experiment(exp, tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address,
                              progress=False, code="t")
    assert local.n_failed == dask.n_failed == 0
    pd.testing.assert_frame_equal(local.results.drop(columns=VOLATILE), dask.results.drop(columns=VOLATILE))
