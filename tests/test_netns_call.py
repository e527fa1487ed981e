"""Live calls on the namespace backend: the live helper's WebRTC and WebSocket transports on real
kernel stacks behind NATs and firewalls, with coturn. Short calls (1 s of audio)."""

from __future__ import annotations

import pytest

from translab.errors import ConfigError

pytestmark = pytest.mark.live


def test_options_are_validated() -> None:
    from translab.emulate.netns.call import NetnsOptions

    with pytest.raises(ConfigError, match="caller_nat"):
        NetnsOptions(caller_nat="moderate")
    with pytest.raises(ConfigError, match="relay_only"):
        NetnsOptions(ice="stun", relay_only=True)


def _call(transport: str, **opts):
    from translab.config import CallConfig
    from translab.call.netns import NetnsOptions, netns_call

    kw = {"tls": True} if transport == "websocket" else {}
    cfg = CallConfig(transport=transport, profile="clean-lan", duration_s=1.0, metrics=(), seed=3, **kw)
    return netns_call(cfg, NetnsOptions(connect_timeout_s=4.0, drain_s=0.5, **opts))


@pytest.mark.netns
@pytest.mark.coturn
def test_webrtc_symmetric_to_restricted_cone_connects_with_stun() -> None:
    r = _call("webrtc", caller_nat="symmetric", callee_nat="restricted-cone", ice="stun")
    s = r.summary
    assert s["status"] == "ok", s.get("reason")
    assert s["backend"] == "netns" and s["netns_connected"]
    # The callee's srflx is reachable from the caller's new symmetric mapping (restricted cone lets
    # in the caller's IP); the callee learns the caller as peer-reflexive or reaches its srflx.
    assert s["netns_pair"] in ("host-srflx", "host-prflx", "srflx-srflx", "srflx-prflx")
    assert s["loss_rate"] == 0.0
    assert s["setup_ice_connected_ms"] < s["setup_dtls_connected_ms"]
    assert r.trace["arrival_s"].notna().all()


@pytest.mark.netns
@pytest.mark.coturn
def test_webrtc_symmetric_to_symmetric_fails_without_relay_and_leaves_nothing() -> None:
    from translab.emulate.netns.cleanup import leftovers

    r = _call("webrtc", caller_nat="symmetric", callee_nat="symmetric", ice="stun")
    assert r.summary["status"] == "failed" and not r.summary["netns_connected"]
    assert "not connected" in r.summary["reason"]
    assert leftovers(r.summary["netns_prefix"]) == {"netns": [], "devices": [], "pids": []}


@pytest.mark.netns
def test_websocket_wss_443_through_only_443_firewall_and_symmetric_nat() -> None:
    r = _call("websocket", caller_nat="symmetric", firewall="only-443")
    s = r.summary
    assert s["status"] == "ok", s.get("reason")
    assert s["loss_rate"] == 0.0 and s["netns_bytes_to_pub"] > 0


@pytest.mark.netns
def test_cli_netns_call_writes_artefacts(tmp_path, capsys) -> None:
    import json

    from translab.cli import main

    out = tmp_path / "call"
    rc = main(["call", "--backend", "netns", "--quiet", "--transport", "websocket", "--profile", "clean-lan", "--duration", "1",
               "--caller-nat", "port-restricted-cone", "--firewall", "udp-blocked", "--out", str(out),
               "--pcap", str(tmp_path / "c.pcap"), "--metrics", "stoi"])
    assert rc == 0, capsys.readouterr()
    s = json.loads((out / "summary.json").read_text())
    assert s["backend"] == "netns" and s["status"] == "ok" and s["mode"] == "live"
    assert (out / "trace.parquet").exists() and (tmp_path / "c.pcap").stat().st_size > 24


@pytest.mark.netns
def test_runner_cell_function(tmp_path) -> None:
    from translab.lab.cells import netns_cell

    row = netns_cell({"transport": "websocket", "profile": "clean-lan", "duration_s": 1.0, "metrics": ["stoi"],
                      "mode": "live", "caller_nat": "symmetric", "firewall": "only-443"}, tmp_path)
    assert row["status"] == "ok" and row["netns_caller_nat"] == "symmetric" and row["netns_firewall"] == "only-443"
    assert {"trace.parquet", "summary.json", "frames.parquet"} <= {p.name for p in tmp_path.iterdir()}
