"""Live conversations as experiment cells (issue 11): ``mode = "live"`` on a conversation cell, the
``edge_playout`` key, the live row beside its simulation, and the report's live-vs-simulated
agreement table recomputed from the checked-in data/measured/conversation_live.parquet."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from translab.call.row import column
from translab.errors import ConfigError
from translab.lab import experiment as ex
from translab.lab.runner import run_experiment
from translab.lab.store import load_results
from translab.report import conversation as conv


def _exp(**grid: object) -> ex.Experiment:
    return ex.from_dict({"name": "c", "description": "d", "grid": [grid]})


def test_live_conversation_cells_are_kept_and_their_rtp_edges_are_aiortc() -> None:
    x = ex.expand(_exp(topology=["direct-ws", "webrtc-gateway", "twilio"], mode=["simulate", "live"],
                       profile="4g", seed=[1, 2]))
    assert len(x.cells) == 12 and x.dropped == {}
    by = {(c["topology"], c["mode"], c["seed"]): c for c in x.cells}
    # live RTP edges are aiortc's receiver; simulated ones keep the default (adaptive: key not stored)
    assert by[("webrtc-gateway", "live", 1)]["edge_playout"] == "aiortc-stock"
    assert by[("twilio", "live", 2)]["edge_playout"] == "aiortc-stock"
    assert "edge_playout" not in by[("webrtc-gateway", "simulate", 1)]
    assert "edge_playout" not in by[("direct-ws", "live", 1)]  # no RTP edge on direct-ws
    # a simulated cell keeps the identity it had before live cells and edge_playout existed
    old = ex.expand(_exp(topology="twilio", profile="4g", seed=1)).cells[0]
    assert by[("twilio", "simulate", 1)] == old
    assert set(old) == {"profile", "seed", "mode", "metrics", *ex.CONVERSATION_KEYS}


def test_edge_playout_pairs_simulated_cells_with_live_ones_and_contradictions_are_dropped() -> None:
    x = ex.expand(_exp(topology=["direct-ws", "webrtc-gateway"], mode=["simulate", "live"],
                       edge_playout=["adaptive", "aiortc-stock"], seed=1))
    # direct-ws: edge_playout means nothing (2 x 2 -> 2, merged); live gateway with adaptive: dropped
    assert x.dropped == {"duplicate": 2, "conversation": 1}
    gw = {(c["mode"], c.get("edge_playout")) for c in x.cells if c["topology"] == "webrtc-gateway"}
    assert gw == {("live", "aiortc-stock"), ("simulate", None), ("simulate", "aiortc-stock")}
    # a simulated aiortc-stock cell and the live one differ only in mode: they pair
    sim = next(c for c in x.cells if c["topology"] == "webrtc-gateway" and c.get("edge_playout") and c["mode"] == "simulate")
    live = next(c for c in x.cells if c["topology"] == "webrtc-gateway" and c["mode"] == "live")
    assert {k for k in sim if sim[k] != live[k]} == {"mode"}
    # netns conversation cells are still dropped; one-way cells never carry edge_playout
    y = ex.expand(ex.from_dict({"name": "c", "description": "d", "defaults": {"edge_playout": "aiortc-stock"},
                                "grid": [{"topology": "direct-ws", "backend": "netns"},
                                         {"transport": "webrtc", "profile": "4g"}]}))
    assert y.dropped == {"conversation": 1} and len(y.cells) == 1 and "edge_playout" not in y.cells[0]


def test_bad_conversation_values_name_the_field_the_value_and_what_is_allowed() -> None:
    with pytest.raises(ConfigError) as err:
        _exp(topology="direct-ws", edge_playout="neteq")
    msg = str(err.value)
    assert "edge_playout" in msg and "neteq" in msg and "adaptive, aiortc-stock" in msg
    with pytest.raises(ConfigError) as err:
        _exp(topology="twilio", mode="recorded")
    msg = str(err.value)
    assert "mode" in msg and "recorded" in msg and "simulate, live" in msg
    # every conversation cell of a file dropped (netns): one clear error for the grid
    with pytest.raises(ConfigError, match="at least one valid cell"):
        ex.from_dict({"name": "c", "description": "d", "grid": [{"topology": "twilio", "backend": "netns"}]})


def test_the_shipped_live_experiment_pairs_every_live_cell_with_a_simulated_one() -> None:
    cells = ex.expand(ex.load_experiment("conversation_live")).cells
    live = [c for c in cells if c["mode"] == "live"]
    assert len(live) == 24 and len(cells) == 48
    assert {(c["topology"], c["profile"], c["seed"]) for c in live} == {
        (t, p, s) for t in conv.TOPOLOGIES for p in ("broadband", "4g") for s in (1, 2, 3, 4)}
    for c in live:
        twin = {**c, "mode": "simulate"}
        assert twin in cells, c
        assert c["turns"] == 3 and c["bargein_every"] == 2


@pytest.mark.live
def test_a_live_conversation_cell_runs_beside_its_simulation(tmp_path: Path) -> None:
    e = ex.from_dict({"name": "c", "description": "d",
                      "grid": [{"topology": "direct-ws", "profile": "broadband", "turns": 2, "bargein_every": 2,
                                "seed": 3, "mode": ["simulate", "live"]}]})
    res = run_experiment(e, tmp_path, progress=False, code="t", executor="serial")
    assert res.n_failed == 0, res.failed
    df = load_results(tmp_path)
    sim, live = (df[df["mode"] == m].iloc[0] for m in ("simulate", "live"))
    assert live["status"] == "ok" and live["turns_answered"] == 2
    # the live row's own simulation is the simulated cell of the same seed (deterministic)
    assert live["sim_turn_latency_p50_ms"] == pytest.approx(sim["turn_latency_p50_ms"], abs=1e-9)
    assert live["live_minus_sim_p50_ms"] == pytest.approx(live["turn_latency_p50_ms"] - sim["turn_latency_p50_ms"])
    assert live["turn_latency_p50_ms"] != sim["turn_latency_p50_ms"]  # measured, not copied
    assert abs(live["live_minus_sim_p50_ms"]) < 100  # the same conversation (the 20 ms check is h11rtp's)
    assert live["host_stalls"] >= 0 and live["emu_releases"] > 0 and "rt_scheduling" in df.columns
    undeclared = [k for k in df.columns if column(k) is None and k not in (
        "cell_hash", "error", "experiment", "run_wall_s", "finished_at", "code_version", "think_ms")]
    assert not undeclared, undeclared


# --------------------------------------------------------------------------------------------------
# the report's agreement table, recomputed from the checked-in parquet


@pytest.fixture(scope="module")
def measured() -> pd.DataFrame:
    if not conv.MEASURED.exists():
        pytest.fail(f"{conv.MEASURED} is checked in (data/measured/README.md)")
    return conv.measured_rows()


def test_the_checked_in_measurement_is_the_experiment(measured: pd.DataFrame) -> None:
    assert (measured["status"] == "ok").all() and set(measured["experiment"]) == {"conversation_live"}
    cells = ex.expand(ex.load_experiment("conversation_live")).cells
    assert len(measured) == len(cells)
    live = measured[measured["mode"] == "live"]
    sim = measured[measured["mode"] == "simulate"].set_index(["topology", "profile", "seed"])
    # every live row's own simulation is the simulated row of the same cell and seed
    for _, r in live.iterrows():
        assert r["sim_turn_latency_p50_ms"] == pytest.approx(sim.loc[(r["topology"], r["profile"], r["seed"]),
                                                                     "turn_latency_p50_ms"], abs=1e-6)


def test_agreement_table_recomputed_from_the_parquet(measured: pd.DataFrame) -> None:
    t = conv.agreement_table(measured).set_index("topology")
    assert list(t.index) == list(conv.TOPOLOGIES)
    # independently: pair live and simulated rows by topology, profile and seed
    key = ["topology", "profile", "seed"]
    pairs = measured[measured["mode"] == "live"].merge(measured[measured["mode"] == "simulate"], on=key,
                                                       suffixes=("_live", "_sim"))
    for topo, g in pairs.groupby("topology"):
        d = (g["turn_latency_p50_ms_live"] - g["turn_latency_p50_ms_sim"]).to_numpy(dtype=float)
        d = d[np.isfinite(d)]
        r = t.loc[topo]
        assert r["n"] == len(d) == 8
        assert r["live - sim (ms)"].value == pytest.approx(d.mean())
        assert r["live - sim (ms)"].lo <= d.mean() <= r["live - sim (ms)"].hi
        assert r["live - sim (ms)"].hi - r["live - sim (ms)"].lo <= 4 * d.std() + 1e-9  # an interval of the mean
        assert r["within 20 ms"].value == pytest.approx(np.mean(np.abs(d) <= 20.0))
        assert r["max |live - sim| (ms)"] == pytest.approx(np.abs(d).max())
        assert r["live p50 (ms)"] == pytest.approx(g["turn_latency_p50_ms_live"].mean())
        assert r["profiles"] == "4g, broadband"
    words = conv.agreement_words(t.reset_index())
    for topo in conv.TOPOLOGIES:
        k = round(t.loc[topo, "within 20 ms"].value * 8)
        assert f"{topo}: live - simulated turn-latency p50" in words and f"{k} of 8 calls within 20 ms" in words


def test_the_report_shows_the_checked_in_agreement_without_live_cells(measured: pd.DataFrame) -> None:
    from translab.report.html import conversation_agreement, conversation_table

    sim_only = measured[measured["mode"] == "simulate"]
    text = html.unescape(conversation_agreement(sim_only))
    assert "checked-in measurement data/measured/conversation_live.parquet" in text
    assert "<figure id='fig-conversation-live'>" in text and "within 20 ms" in text
    assert conv.agreement_words(conv.agreement_table(measured)) in text
    # a run with its own live conversations shows those (same rows here, but "this run")
    assert "From this run" in html.unescape(conversation_agreement(measured))
    # the conversation table splits simulated and live rows of a topology
    ct = conversation_table(measured)
    assert set(ct["mode"]) == {"simulate", "live"} and (ct["n"] == 4).all() and len(ct) == 12
    assert "mode" not in conversation_table(sim_only).columns


def test_translab_run_refuses_a_bad_edge_playout_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from translab.cli import main

    f = tmp_path / "bad.toml"
    f.write_text('name = "c"\ndescription = "d"\n[[grid]]\ntopology = "twilio"\nmode = "live"\n'
                 'edge_playout = ["aiortc-stock", "neteq"]\n')
    assert main(["run", str(f), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "edge_playout" in err and "neteq" in err and "adaptive, aiortc-stock" in err
    assert not (tmp_path / "out").exists()
