"""The pure NAT model: RFC 4787 mapping and filtering per behaviour, port preservation,
lifetime expiry, hairpinning, presets, packet translation."""

from __future__ import annotations

import numpy as np
import pytest

from translab.errors import ConfigError
from translab.link import nat_packet as pk
from translab.link.nat import AD, APD, EI, Nat, NatConfig, preset
from translab.link.nat_packet import FiveTuple

PUB = "198.19.1.1"
IN = "10.1.0.2"
S1, S2 = "198.18.0.1", "198.18.0.2"


def nat(**kw) -> Nat:
    return Nat(NatConfig(**kw), PUB, np.random.default_rng(1))


def out(n: Nat, dst: str, dport: int, sport: int = 5000, t: float = 0.0, proto: int = 17) -> FiveTuple:
    r = n.outbound(FiveTuple(proto, IN, sport, dst, dport), t)
    assert r is not None
    return r


@pytest.mark.parametrize(
    "mapping, same_ip_other_port, other_ip",
    [(EI, True, True), (AD, True, False), (APD, False, False)],
)
def test_mapping_behaviour(mapping, same_ip_other_port, other_ip) -> None:
    n = nat(mapping=mapping)
    a = out(n, S1, 3478)
    assert a.src_ip == PUB
    assert (out(n, S1, 3479).src_port == a.src_port) is same_ip_other_port
    assert (out(n, S2, 3478).src_port == a.src_port) is other_ip
    # Same destination again always reuses its mapping.
    assert out(n, S1, 3478).src_port == a.src_port


@pytest.mark.parametrize(
    "filtering, from_same, from_same_ip_other_port, from_other_ip",
    [(EI, True, True, True), (AD, True, True, False), (APD, True, False, False)],
)
def test_filtering_behaviour(filtering, from_same, from_same_ip_other_port, from_other_ip) -> None:
    n = nat(filtering=filtering)
    a = out(n, S1, 3478)

    def inb(src, sport):
        return n.inbound(FiveTuple(17, src, sport, PUB, a.src_port), 1.0)

    assert (inb(S1, 3478) is not None) is from_same
    assert (inb(S1, 3479) is not None) is from_same_ip_other_port
    assert (inb(S2, 3478) is not None) is from_other_ip
    r = inb(S1, 3478)
    assert r == FiveTuple(17, S1, 3478, IN, 5000)


def test_inbound_without_mapping_is_dropped() -> None:
    n = nat(filtering=EI)
    assert n.inbound(FiveTuple(17, S1, 3478, PUB, 5000), 0.0) is None
    assert n.inbound(FiveTuple(17, S1, 3478, "198.19.9.9", 5000), 0.0) is None
    assert n.dropped_inbound == 2


def test_port_preservation_on_and_off() -> None:
    assert out(nat(port_preservation=True), S1, 1).src_port == 5000
    n = nat(port_preservation=False, port_range=(40000, 40100))
    ports = {out(n, S1, 1, sport=5000 + i).src_port for i in range(50)}
    assert all(40000 <= p <= 40100 for p in ports) and len(ports) == 50


def test_port_collision_gets_another_port() -> None:
    n = nat(mapping=APD, port_preservation=True)
    a, b = out(n, S1, 1), out(n, S2, 1)
    assert a.src_port == 5000 and b.src_port != 5000
    # A second internal host with the same port cannot take the preserved port either.
    c = n.outbound(FiveTuple(17, "10.1.0.3", 5000, S1, 1), 0.0)
    assert c is not None and c.src_port not in (5000, b.src_port)


def test_udp_and_tcp_mappings_are_separate() -> None:
    n = nat()
    assert out(n, S1, 1, proto=17).src_port == out(n, S1, 1, proto=6).src_port == 5000
    assert len(n.mappings()) == 2


def test_mapping_lifetime_expiry_and_refresh() -> None:
    n = nat(udp_lifetime_s=30.0, filtering=EI, port_preservation=False)
    a = out(n, S1, 1, t=0.0)
    assert n.inbound(FiveTuple(17, S1, 1, PUB, a.src_port), 29.0) is not None
    # Inbound does not refresh by default: expired at 30+ s after the last outbound.
    assert n.inbound(FiveTuple(17, S1, 1, PUB, a.src_port), 30.5) is None
    b = out(n, S1, 1, t=31.0)  # a new mapping
    assert out(n, S1, 1, t=60.0).src_port == b.src_port  # refreshed at 31 -> alive at 60
    assert n.expire(61.0 + 30.0) == 1 and n.mappings() == []


def test_inbound_refresh_option() -> None:
    n = nat(udp_lifetime_s=10.0, filtering=EI, inbound_refreshes=True)
    a = out(n, S1, 1, t=0.0)
    for t in (8.0, 16.0, 24.0):
        assert n.inbound(FiveTuple(17, S1, 1, PUB, a.src_port), t) is not None


def test_tcp_lifetime_is_separate() -> None:
    n = nat(udp_lifetime_s=1.0, tcp_lifetime_s=100.0, filtering=EI)
    a = out(n, S1, 443, proto=6)
    assert n.inbound(FiveTuple(6, S1, 443, PUB, a.src_port), 50.0) is not None


def _udp(src, sport, dst, dport, payload=b"voice"):
    return pk.build_udp(src, sport, dst, dport, payload)


def test_translate_packets_round_trip_checksums() -> None:
    n = Nat(preset("port-restricted-cone"), PUB, np.random.default_rng(0))
    res = n.translate_outbound(_udp(IN, 5000, S1, 3478), 0.0)
    assert res is not None
    o, verdict = res
    assert verdict == "out" and pk.ip_checksum_ok(o) and pk.l4_checksum_ok(o)
    assert pk.five_tuple(o) == FiveTuple(17, PUB, 5000, S1, 3478)
    back = n.translate_inbound(_udp(S1, 3478, PUB, 5000), 0.1)
    assert back is not None and pk.l4_checksum_ok(back)
    assert pk.five_tuple(back) == FiveTuple(17, S1, 3478, IN, 5000)
    assert n.translate_inbound(_udp(S2, 3478, PUB, 5000), 0.1) is None
    tcp = pk.build_tcp(IN, 40000, S1, 443, b"GET", flags=pk.TCP_SYN)
    o2 = n.translate_outbound(tcp, 0.2)
    assert o2 is not None and pk.l4_checksum_ok(o2[0]) and pk.five_tuple(o2[0]).src_ip == PUB
    icmp = pk.build_ipv4(1, IN, S1, b"\x08\0\xf7\xff\0\0\0\0")
    assert n.translate_outbound(icmp, 0.3) is None


@pytest.mark.parametrize("hairpin", [True, False])
def test_hairpinning(hairpin: bool) -> None:
    n = Nat(preset("full-cone", hairpinning=hairpin), PUB, np.random.default_rng(0))
    # Host B (10.1.0.3:6000) has a mapping (it talked to the STUN server).
    n.translate_outbound(_udp("10.1.0.3", 6000, S1, 3478), 0.0)
    # Host A sends to B's public address.
    res = n.translate_outbound(_udp(IN, 5000, PUB, 6000), 0.1)
    if not hairpin:
        assert res is None
        return
    assert res is not None
    pkt, verdict = res
    assert verdict == "hairpin"
    # Delivered to B with A's *external* address as source (RFC 4787 REQ-9).
    assert pk.five_tuple(pkt) == FiveTuple(17, PUB, 5000, "10.1.0.3", 6000)
    assert pk.ip_checksum_ok(pkt) and pk.l4_checksum_ok(pkt)


def test_symmetric_preset_changes_port_per_destination() -> None:
    n = Nat(preset("symmetric"), PUB, np.random.default_rng(3))
    ports = {out(n, S1, 3478).src_port, out(n, S1, 3479).src_port, out(n, S2, 3478).src_port}
    assert len(ports) == 3 and 5000 not in ports


def test_same_seed_same_ports() -> None:
    def run(seed):
        n = Nat(preset("symmetric"), PUB, np.random.default_rng(seed))
        return [out(n, S1, 1000 + i).src_port for i in range(20)]

    assert run(5) == run(5) and run(5) != run(6)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="nat.mapping"):
        NatConfig(mapping="cone")
    with pytest.raises(ConfigError, match="nat"):
        preset("moderate")
    with pytest.raises(ConfigError, match="port_range"):
        NatConfig(port_range=(70000, 1))


def test_port_exhaustion_drops() -> None:
    n = nat(port_preservation=False, port_range=(40000, 40001), mapping=APD)
    assert out(n, S1, 1).src_port != out(n, S1, 2).src_port
    assert n.outbound(FiveTuple(17, IN, 5000, S1, 3), 0.0) is None
    assert n.dropped_outbound == 1
