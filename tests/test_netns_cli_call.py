"""`translab call --backend netns`: the namespace backend through the main call command (short live
calls, 1 s of audio), its one-line refusal without root, and netns options refused in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.live

TRANSLAB = [sys.executable, "-m", "translab.cli"]


def test_without_root_the_backend_says_so_in_one_line(monkeypatch, tmp_path: Path, capsys) -> None:
    import translab.emulate.netns.system as system
    from translab.cli import main

    monkeypatch.setattr(system, "unavailable_reason",
                        lambda: "the netns backend needs root (network namespaces and TUN devices)")
    rc = main(["call", "--backend", "netns", "--metrics", "none", "--quiet", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "needs root" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_netns_options_need_the_netns_backend(tmp_path: Path, capsys) -> None:
    from translab.cli import main

    rc = main(["call", "--caller-nat", "symmetric", "--metrics", "none", "--quiet", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "--backend netns" in capsys.readouterr().err


def _cli(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "out"
    r = subprocess.run(TRANSLAB + ["call", "--backend", "netns", "--profile", "clean-lan", "--duration", "1",
                                   "--metrics", "none", "--connect-timeout", "5", "--json", "--quiet",
                                   "--out", str(out), *args], capture_output=True, text=True, timeout=60)
    s = json.loads(r.stdout[: r.stdout.rindex("}") + 1])
    assert (out / "summary.json").exists()
    return {"rc": r.returncode, **s}


@pytest.mark.netns
@pytest.mark.coturn
def test_cli_webrtc_symmetric_nats_connect_through_turn(tmp_path: Path) -> None:
    s = _cli(tmp_path, "--transport", "webrtc", "--caller-nat", "symmetric", "--callee-nat", "symmetric",
             "--ice", "turn-udp")
    assert s["rc"] == 0 and s["status"] == "ok", s.get("reason")
    assert s["mode"] == "live" and s["backend"] == "netns"
    assert s["netns_caller_nat"] == "symmetric" and s["netns_ice"] == "turn-udp"
    assert "relay" in s["netns_pair"] and s["netns_relay_bytes"] > 0


@pytest.mark.netns
def test_cli_websocket_behind_only_443_connects_on_kernel_tcp(tmp_path: Path) -> None:
    s = _cli(tmp_path, "--transport", "websocket", "--caller-nat", "port-restricted-cone", "--firewall", "only-443")
    assert s["rc"] == 0 and s["status"] == "ok", s.get("reason")
    assert s["backend"] == "netns" and s["netns_firewall"] == "only-443"
    assert s["kernel_tcp_out_segs"] > 0  # the client's own kernel TCP carried the stream


@pytest.mark.netns
@pytest.mark.coturn
def test_cli_webrtc_host_only_behind_symmetric_nats_fails_with_exit_1(tmp_path: Path) -> None:
    s = _cli(tmp_path, "--transport", "webrtc", "--caller-nat", "symmetric", "--callee-nat", "symmetric",
             "--connect-timeout", "3")
    assert s["rc"] == 1 and s["status"] != "ok"
    assert s["netns_connected"] is False
