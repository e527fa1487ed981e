"""The call layer's contracts: one row declaration (documented, current), engines fill only their
own groups, simulated and live rows of the same config share the computed columns, the README's
Python API runs as written, and the import graph has no cycles."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from translab.call import CallRecord, SimulatedEngine, prepare_call, run_call
from translab.call.analysis import analyse
from translab.call.row import COLUMNS, GROUPS, check_engine_figures, column, markdown, shared_columns
from translab.config import CallConfig
from translab.errors import TranslabError

ROOT = Path(__file__).resolve().parents[1]
CFG = CallConfig(transport="websocket", profile="4g-handoff", seed=3, duration_s=3.0, metrics=("stoi",))


def test_docs_column_list_is_current() -> None:
    # regenerate with: python -m translab.call.row > docs/columns.md
    assert (ROOT / "docs" / "columns.md").read_text() == markdown()


def test_every_column_of_a_simulated_row_is_declared() -> None:
    for cfg in (CFG, CallConfig(transport="webrtc", profile="hotel-wifi", duration_s=3.0, metrics=("stoi",))):
        row = run_call(cfg, SimulatedEngine()).summary
        undeclared = [k for k in row if column(k) is None]
        assert not undeclared
        assert {c.group for c in COLUMNS} == set(GROUPS)


def test_an_engine_cannot_overwrite_a_computed_column() -> None:
    check_engine_figures({"emu_releases": 3, "setup_ice_connected_ms": 1.0}, "x")
    with pytest.raises(TranslabError, match="m2e_p50_ms.*latency"):
        check_engine_figures({"m2e_p50_ms": 1.0}, "x")
    with pytest.raises(TranslabError, match="not declared"):
        check_engine_figures({"my_new_figure": 1.0}, "x")
    call = prepare_call(CFG)
    record = SimulatedEngine().run(call)
    record.figures["loss_rate"] = 0.0
    with pytest.raises(TranslabError, match="loss_rate"):
        analyse(call, record, "simulate")


def test_failed_record_gives_a_failed_row_without_figures() -> None:
    call = prepare_call(CFG)
    ok = SimulatedEngine().run(call)
    failed = CallRecord(trace=ok.trace, status="failed", reason="ICE failed", setup_ms={"ice_started": 1.0})
    res = analyse(call, failed, "live", "test")
    assert res.summary["status"] == "failed" and res.summary["reason"] == "ICE failed"
    assert res.summary["setup_ice_started_ms"] == 1.0 and "m2e_p50_ms" not in res.summary
    assert res.audio.size == 0 and res.playout is None


@pytest.mark.live
def test_simulated_and_live_rows_have_the_same_computed_columns() -> None:
    from translab.call.live import LiveEngine

    cfg = CallConfig(transport="websocket", profile="clean-lan", duration_s=1.5, metrics=("stoi",))
    sim = run_call(cfg, SimulatedEngine()).summary
    live = run_call(cfg, LiveEngine(drain_s=0.3)).summary
    assert live["status"] == "ok", live["reason"]
    assert shared_columns(sim) == shared_columns(live)
    assert all(column(k) is not None for k in live)
    # the engine-only groups differ: the live row has set-up milestones and emulator counters
    assert any(k.startswith("setup_") for k in live) and not any(k.startswith("setup_") for k in sim)


def test_run_call_writes_the_artefacts(tmp_path: Path) -> None:
    res = run_call(CFG, SimulatedEngine(), tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"trace.parquet", "output.wav", "frames.parquet", "summary.json"}
    assert isinstance(res.row(), pd.DataFrame) and len(res.row()) == 1
    assert np.isfinite(res.summary["net_delay_p50_ms"])


def test_readme_python_api_runs_as_written() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 6
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)
    assert len(env["row"]) == 1 and 0 <= float(env["row"]["stoi"].iloc[0]) <= 1
    grid = env["grid"]
    assert len(grid) == 4 and set(grid["transport"]) == {"webrtc", "websocket"}
    assert grid["m2e_p50_ms"].notna().all()


def test_no_import_cycles_in_translab() -> None:
    grimp = pytest.importorskip("grimp")
    g = grimp.build_graph("translab")
    cycles = [(m, i) for m in sorted(g.modules) for i in g.find_modules_directly_imported_by(m)
              if g.chain_exists(importer=i, imported=m)]
    assert not cycles


def test_peer_chromium_is_an_experiment_key_that_picks_the_browser_engine() -> None:
    """``peer`` in a grid: chromium cells are live WebRTC cells run by the BrowserEngine (WebSocket
    ones dropped); the default aiortc leaves no key behind (existing cells and their hashes unchanged)."""
    from translab.call.browser import BrowserEngine
    from translab.call.engine import Engine
    from translab.errors import ConfigError
    from translab.lab import experiment as ex
    from translab.lab.cells import engine_for

    e = ex.expand(ex.from_dict({"name": "t", "description": "",
                                "grid": {"peer": ["aiortc", "chromium"], "transport": ["webrtc", "websocket"]}}))
    chromium = [c for c in e.cells if c.get("peer") == "chromium"]
    others = [c for c in e.cells if "peer" not in c]
    assert len(chromium) == 1 and len(others) == 2 and len(e.cells) == 3
    assert chromium[0]["transport"] == "webrtc" and chromium[0]["mode"] == "live"
    assert e.dropped["peer"] == 1
    engine = engine_for(chromium[0])
    assert isinstance(engine, BrowserEngine) and isinstance(engine, Engine) and engine.mode == "live"
    assert isinstance(engine_for(others[0]), SimulatedEngine)
    with pytest.raises(ConfigError, match="firefox"):
        ex.from_dict({"name": "t", "description": "", "grid": {"peer": ["firefox"]}})


def test_browser_figures_are_declared_engine_columns() -> None:
    figures = {"peer": "chromium", "browser_out_packetsSent": 200, "down_neteq_concealed_share": 0.01,
               "down_model_mean_buffer_delay_ms": 60.0, "gap_concealed_share": 0.0, "neteq_concealmentEvents": 3}
    check_engine_figures(figures, "browser")
    assert {column(k).group for k in figures} == {"browser"}
    with pytest.raises(TranslabError, match="computed group"):
        check_engine_figures({"concealed_ratio": 0.0}, "browser")


def test_frame_fates_count_a_multi_frame_packet_once_per_frame() -> None:
    """A lost 60 ms packet in a 20 ms call is three unheard frames of audio, not one packet: the
    effective loss is a share of audio time (an adaptor switches frame lengths mid-call)."""
    from translab.call.analysis import frame_fates

    n = 960  # 20 ms at 48 kHz
    trace = pd.DataFrame({"seq": [0, 1, 2, 3], "media_ts": [0, n, 2 * n, 5 * n],
                          "frame_samples": [n, n, 3 * n, n]})
    kinds = ["decoded", "decoded", "plc", "plc", "plc", "decoded"]
    frames = pd.DataFrame({"kind": kinds, "media_ts": [k * n for k in range(6)]})
    unheard, concealed = frame_fates(trace, frames)
    assert unheard.tolist() == [False, False, True, True, True, False]
    assert concealed.tolist() == unheard.tolist()
    # one frame per packet: unchanged, one entry per packet
    single = trace.assign(frame_samples=n, media_ts=[0, n, 2 * n, 3 * n])
    u1, _ = frame_fates(single, frames.iloc[:4].assign(kind=["decoded", "decoded", "plc", "decoded"]))
    assert u1.tolist() == [False, False, True, False]
