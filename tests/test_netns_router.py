"""Pure parts of the namespace lab: firewall profiles, routing with NAT and firewall, names."""

from __future__ import annotations

import numpy as np
import pytest

from translab.emulate.netns.firewall import Firewall
from translab.emulate.netns.names import LabNames
from translab.emulate.netns.router import Router, Side
from translab.errors import ConfigError
from translab.link import nat_packet as pk
from translab.link.nat import Nat, preset
from translab.link.nat_packet import FiveTuple

SRV = "198.18.0.1"


def test_firewall_profiles() -> None:
    udp = FiveTuple(17, "10.1.0.2", 5000, SRV, 3478)
    tcp = FiveTuple(6, "10.1.0.2", 40000, SRV, 3478)
    tls = FiveTuple(6, "10.1.0.2", 40001, SRV, 443)
    expect = {"open": (True, True, True), "udp-blocked": (False, True, True), "only-443": (False, False, True)}
    for profile, allowed in expect.items():
        fw = Firewall(profile)
        assert (fw.outbound(udp), fw.outbound(tcp), fw.outbound(tls)) == allowed
        # Replies to allowed flows come in; unsolicited inbound only when open.
        assert fw.inbound(tls.reversed())
        assert fw.inbound(FiveTuple(17, SRV, 9, "10.1.0.2", 5000)) is (profile == "open")
    with pytest.raises(ConfigError):
        Firewall("strict")


def test_names() -> None:
    n = LabNames("abc123")
    assert n.netns("pub") == "tl-abc123-pub" and len(n.tun("pub")) <= 15
    with pytest.raises(ValueError):
        LabNames("../etc")


def _router(nat_a=None, nat_b=None, fw_a="open") -> Router:
    rng = np.random.default_rng(0)
    return Router({
        "a": Side("a", Nat(preset(nat_a), "198.19.1.1", rng) if nat_a else None, Firewall(fw_a)),
        "b": Side("b", Nat(preset(nat_b), "198.19.2.1", rng) if nat_b else None),
    })


def test_route_lan_to_server_and_back_through_nat() -> None:
    r = _router("port-restricted-cone")
    out = r.route("a", pk.build_udp("10.1.0.2", 5000, SRV, 3478, b"x"), 0.0)
    assert out is not None and out.out == "pub" and out.hops == [("a", "up")]
    assert pk.five_tuple(out.packet) == FiveTuple(17, "198.19.1.1", 5000, SRV, 3478)
    back = r.route("pub", pk.build_udp(SRV, 3478, "198.19.1.1", 5000, b"y"), 0.1)
    assert back is not None and back.out == "a" and back.hops == [("a", "down")]
    assert pk.five_tuple(back.packet).dst_ip == "10.1.0.2"
    # Unsolicited from another port: filtered.
    assert r.route("pub", pk.build_udp(SRV, 3479, "198.19.1.1", 5000, b"y"), 0.1) is None
    assert r.drops == {"nat-in-a": 1}


def test_route_peer_to_peer_crosses_both_links() -> None:
    r = _router("full-cone", None)
    a_out = r.route("a", pk.build_udp("10.1.0.2", 5000, SRV, 3478, b"x"), 0.0)
    assert a_out is not None
    # b (no NAT, host = 198.19.2.1) sends to a's mapped address: full cone lets it in.
    res = r.route("b", pk.build_udp("198.19.2.1", 7000, "198.19.1.1", 5000, b"hi"), 0.1)
    assert res is not None and res.out == "a" and res.hops == [("b", "up"), ("a", "down")]
    assert pk.l4_checksum_ok(res.packet)


def test_route_firewall_blocks_udp() -> None:
    r = _router(None, fw_a="udp-blocked")
    assert r.route("a", pk.build_udp("198.19.1.1", 5000, SRV, 3478, b"x"), 0.0) is None
    assert r.route("a", pk.build_tcp("198.19.1.1", 40000, SRV, 3478, flags=pk.TCP_SYN), 0.0) is not None
    assert r.drops == {"firewall-out-a": 1}


def test_route_hairpin_and_garbage() -> None:
    r = _router("full-cone")
    r.route("a", pk.build_udp("10.1.0.5", 6000, SRV, 3478, b"x"), 0.0)
    res = r.route("a", pk.build_udp("10.1.0.2", 5000, "198.19.1.1", 6000, b"x"), 0.0)
    assert res is not None and res.out == "a" and res.hops == [("a", "up"), ("a", "down")]
    assert r.route("a", b"\x60" + bytes(39), 0.0) is None  # IPv6
    assert r.route("pub", pk.build_udp(SRV, 1, "203.0.113.9", 2, b""), 0.0) is None
    assert r.drops["not-ipv4"] == 1 and r.drops["no-route"] == 1


def test_without_root_backend_says_so_in_one_line(monkeypatch, capsys) -> None:
    from translab.cli import main
    from translab.emulate.netns import system
    from translab.emulate.netns.lab import Lab

    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    reason = system.unavailable_reason()
    assert reason is not None and "root" in reason and "\n" not in reason
    with pytest.raises(system.NetnsUnavailable, match="needs root"):
        Lab().start()
    assert main(["netns", "cleanup"]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "needs root" in out
