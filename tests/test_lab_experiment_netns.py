"""Experiment files with netns cells: the ``backend`` key and the netns options (as in
``translab call --backend netns``), their validation and validity rules, data/experiments/nat.toml,
unchanged hashes for in-process cells, and one real netns cell through the runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from translab.errors import ConfigError
from translab.lab import experiment as ex
from translab.lab.runner import cell_hash, run_experiment
from translab.lab.store import load_results



def _exp(grid: dict, **defaults) -> ex.Experiment:
    return ex.from_dict({"name": "t", "description": "d", "metrics": [], "defaults": defaults, "grid": [grid]})


def test_choices_agree_with_the_netns_backend() -> None:
    # the allowed values are declared once (translab.config); the backend implements exactly those
    from translab.config import FIREWALLS, NAT_CHOICES, NETNS_FIELDS
    from translab.emulate.netns.call import ICE_OPTIONS
    from translab.emulate.netns.firewall import FIREWALL_PROFILES
    from translab.lab.cells import RUNNER_KEYS
    from translab.link.nat import PRESETS

    assert ex.NAT_CHOICES == NAT_CHOICES == ("none", *PRESETS) and ex.FIREWALLS == tuple(FIREWALL_PROFILES) == FIREWALLS
    assert ex.ICE_OPTIONS == ICE_OPTIONS and ex.NETNS_KEYS == NETNS_FIELDS
    assert set(RUNNER_KEYS) == {"mode", "backend", "peer", "target", *NETNS_FIELDS}


def test_nat_experiment_expands_to_netns_live_cells() -> None:
    e = ex.load_experiment("nat")
    cells = e.cells()
    assert 10 <= len(cells) <= 20  # a small matrix
    assert all(c["backend"] == "netns" and c["mode"] == "live" for c in cells)
    ws = [c for c in cells if c["transport"] == "websocket"]
    assert {c["firewall"] for c in ws} == {"open", "udp-blocked", "only-443"}
    assert all(c["ice"] == "none" and c["callee_nat"] == "none" for c in ws)
    relay = [c for c in cells if c["ice"] == "turn-udp"]
    assert sorted(c["bitrate"] for c in relay) == [12000, 24000, 64000]


def test_netns_keys_are_validated() -> None:
    with pytest.raises(ConfigError, match="caller_nat"):
        _exp({"caller_nat": ["moderate"]}, backend="netns")
    with pytest.raises(ConfigError, match="backend"):
        _exp({"transport": ["webrtc"]}, backend="docker")
    with pytest.raises(ConfigError, match="ice"):
        _exp({"ice": ["turn"]}, backend="netns")
    with pytest.raises(ConfigError, match="relay_only"):
        _exp({"relay_only": ["yes"]}, backend="netns")


def test_rules_for_netns_cells() -> None:
    # a netns cell is live; relay_only without TURN is dropped; WebSocket ignores the callee side
    x = ex.expand(_exp({"transport": ["webrtc", "websocket"], "ice": ["stun", "turn-tcp"],
                        "relay_only": [False, True], "callee_nat": ["none", "symmetric"]},
                       backend="netns", mode="simulate"))
    assert all(c["mode"] == "live" for c in x.cells)
    assert not any(c["relay_only"] and c["ice"] == "stun" for c in x.cells)
    assert len([c for c in x.cells if c["transport"] == "websocket"]) == 1
    assert len([c for c in x.cells if c["transport"] == "webrtc"]) == 6
    assert x.dropped["netns"] == 2 * 2 and x.dropped["duplicate"] == 5


def test_in_process_cells_carry_no_netns_keys_and_keep_their_hashes() -> None:
    plain = _exp({"transport": ["webrtc"], "seed": [1]}).cells()
    with_keys = _exp({"transport": ["webrtc"], "seed": [1], "caller_nat": ["none", "symmetric"]},
                     backend="inprocess").cells()
    assert len(with_keys) == 1  # netns keys mean nothing in-process: merged
    assert with_keys == plain
    assert "backend" not in plain[0] and "caller_nat" not in plain[0]
    assert cell_hash(with_keys[0], "c") == cell_hash(plain[0], "c")


def test_exclude_can_name_the_backend() -> None:
    e = ex.from_dict({"name": "t", "description": "d", "metrics": [],
                      "grid": [{"transport": ["webrtc"], "backend": ["inprocess", "netns"], "mode": ["live"]}],
                      "exclude": [{"backend": "inprocess"}]})
    assert [c["backend"] for c in e.cells()] == ["netns"]


@pytest.mark.netns
@pytest.mark.coturn
@pytest.mark.live
def test_one_netns_cell_runs_through_the_runner(tmp_path: Path) -> None:
    e = _exp({"transport": ["webrtc"]}, backend="netns", caller_nat="symmetric", callee_nat="symmetric",
             ice="turn-udp", profile="clean-lan", duration_s=1.0, seed=2)
    out = run_experiment(e, tmp_path, executor="serial", progress=False)
    assert out.n_cells == 1 and out.n_failed == 0, out.failed
    r = load_results(tmp_path).iloc[0]
    assert r["status"] == "ok" and r["mode"] == "live" and r["backend"] == "netns"
    assert r["caller_nat"] == "symmetric" and r["ice"] == "turn-udp"
    assert r["netns_connected"] and "relay" in r["netns_pair"] and r["netns_relay_bytes"] > 0
    h = r["cell_hash"]
    assert (tmp_path / "cells" / h / "trace.parquet").exists()
