"""Experiment cells for issues 11 and 13: the protection validity rule (WebSocket cells with NACK,
RED, ABR or measured FEC loss are dropped and counted), conversation cells (a `topology` key; one
row per conversation with declared columns and a per-turn table), and the shipped experiment files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from translab.call.row import column
from translab.errors import ConfigError
from translab.lab import experiment as ex
from translab.lab.cells import TURNS_FILE, run_cell
from translab.lab.runner import run_experiment
from translab.lab.store import load_results


def test_websocket_cells_with_protection_are_dropped_and_counted() -> None:
    e = ex.from_dict({"name": "p", "description": "d", "defaults": {"profile": "4g"},
                      "grid": [{"transport": ["webrtc", "websocket"], "nack": [False, True], "red": [0, 2],
                                "abr": [False, True]}]})
    x = ex.expand(e)
    ws = [c for c in x.cells if c["transport"] == "websocket"]
    assert len(ws) == 1 and not (ws[0]["nack"] or ws[0]["red"] or ws[0]["abr"])
    assert len([c for c in x.cells if c["transport"] == "webrtc"]) == 8
    assert x.dropped == {"protection-webrtc": 7}  # named, not the catch-all "callconfig"
    assert "protection-webrtc" in dict(ex.describe_rules())
    e2 = ex.from_dict({"name": "p", "description": "d",
                       "grid": [{"transport": "websocket", "fec_loss": ["fixed", "measured"]}]})
    assert ex.expand(e2).dropped == {"protection-webrtc": 1}


def test_conversation_cells_keep_their_keys_and_one_way_cells_do_not_change() -> None:
    e = ex.from_dict({"name": "c", "description": "d", "defaults": {"seed": [1, 2], "clip": ["slt-weather", "rms-order"]},
                      "grid": [{"topology": ["direct-ws", "twilio"], "profile": "4g", "turns": 3},
                               {"transport": "webrtc", "profile": "4g"},
                               {"topology": "direct-ws", "mode": "live"}]})
    x = ex.expand(e)
    conv = [c for c in x.cells if c.get("topology")]
    # the clip means nothing to a conversation (its script has its own clips): merged, one per seed
    # the live block: 2 seeds x 2 clips -> 2 live conversation cells (translab.conversation.live)
    assert len(conv) == 6 and x.dropped == {"duplicate": 6}
    assert sum(c["mode"] == "live" for c in conv) == 2
    assert set(conv[0]) == {"profile", "seed", "mode", "metrics", *ex.CONVERSATION_KEYS}
    assert conv[0]["turns"] == 3 and conv[0]["dc_profile"] == "colocated"
    one_way = [c for c in x.cells if not c.get("topology")]
    assert len(one_way) == 4 and not any(k in c for c in one_way for k in ex.CONVERSATION_KEYS)
    with pytest.raises(ConfigError, match="topology"):
        ex.from_dict({"name": "c", "description": "d", "grid": [{"topology": "carrier-pigeon"}]})
    with pytest.raises(ConfigError, match="turns"):
        ex.from_dict({"name": "c", "description": "d", "grid": [{"topology": "direct-ws", "turns": 0}]})


def test_shipped_experiment_files_expand() -> None:
    p = ex.expand(ex.load_experiment("protection"))
    opts = {(c["nack"], c["red"], c["abr"]) for c in p.cells}
    assert opts == {(False, 0, False), (True, 0, False), (False, 1, False), (False, 2, False), (False, 0, True)}
    assert {c["profile"] for c in p.cells} == {"4g", "hotel-wifi", "sfu-10pct-loss", "capacity-drop"}
    assert len({c["seed"] for c in p.cells}) >= 5 and len({c["clip"] for c in p.cells}) >= 3
    c = ex.expand(ex.load_experiment("conversation"))
    assert {(x["topology"], x["profile"]) for x in c.cells} == {
        (t, p) for t in ("direct-ws", "webrtc-gateway", "twilio") for p in ("clean-lan", "4g", "hotel-wifi")}
    assert len({x["seed"] for x in c.cells}) >= 5


def test_a_conversation_cell_gives_one_row_with_declared_columns(tmp_path: Path) -> None:
    e = ex.from_dict({"name": "c", "description": "d",
                      "grid": [{"topology": "webrtc-gateway", "profile": "clean-lan", "turns": 3,
                                "bargein_every": 2, "seed": 4}]})
    res = run_experiment(e, tmp_path, progress=False, code="t", executor="serial")
    assert res.n_failed == 0, res.failed
    df = load_results(tmp_path)
    assert len(df) == 1
    row = df.iloc[0]
    assert row["topology"] == "webrtc-gateway" and row["mode"] == "simulate" and row["status"] == "ok"
    undeclared = [k for k in df.columns if column(k) is None and k not in (
        "cell_hash", "error", "experiment", "run_wall_s", "finished_at", "code_version", "think_ms")]
    assert not undeclared, undeclared
    assert column("think_ms") is not None  # the cell key is declared (think_ family)
    turns = pd.read_parquet(tmp_path / "cells" / row["cell_hash"] / TURNS_FILE)
    assert len(turns) == 3 and row["turns"] == 3 and row["bargeins"] == 1
    # the row's figures are the per-turn table's: p50 over the turns, and the parts add up on the mean
    assert row["turn_latency_p50_ms"] == pytest.approx(turns["turn_latency_ms"].median())
    parts = sum(row[f"{p}_mean_ms"] for p in ("uplink", "vad", "think", "downlink"))
    assert parts == pytest.approx(row["turn_latency_mean_ms"], abs=1e-6)
    assert 300 < row["turn_latency_p50_ms"] < 3000
    # the same cell run directly gives the same figures (seeded)
    (tmp_path / "again").mkdir()
    again = run_cell(json.loads(json.dumps(e.cells()[0])), tmp_path / "again")
    assert again["turn_latency_p50_ms"] == pytest.approx(row["turn_latency_p50_ms"])
