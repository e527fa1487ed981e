"""Packet parsing and rewriting: checksums verified against an independent computation."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translab.link import nat_packet as pk


def _indep_checksum(data: bytes) -> int:
    """Straightforward RFC 1071 checksum written separately from the module under test."""
    if len(data) & 1:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return 0xFFFF - s


def _indep_l4_ok(pkt: bytes) -> bool:
    ihl = (pkt[0] & 15) * 4
    tot = int.from_bytes(pkt[2:4], "big")
    seg = pkt[ihl:tot]
    proto = pkt[9]
    if proto == 17 and seg[6:8] == b"\0\0":
        return True
    pseudo = pkt[12:20] + bytes([0, proto]) + len(seg).to_bytes(2, "big")
    return _indep_checksum(pseudo + seg) == 0


def _indep_ip_ok(pkt: bytes) -> bool:
    ihl = (pkt[0] & 15) * 4
    return _indep_checksum(pkt[:ihl]) == 0


def test_rfc1071_example() -> None:
    # RFC 1071 section 3 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert pk.ones_complement_sum(data) == 0xDDF2
    assert pk.internet_checksum(data) == (~0xDDF2) & 0xFFFF


def test_built_packets_verify_independently() -> None:
    u = pk.build_udp("10.1.0.2", 5000, "198.18.0.1", 3478, b"hello world")
    t = pk.build_tcp("10.1.0.2", 40000, "198.18.0.1", 443, b"x" * 11, seq=7, flags=pk.TCP_SYN)
    for p in (u, t):
        assert _indep_ip_ok(p) and _indep_l4_ok(p)
    assert pk.five_tuple(u) == pk.FiveTuple(17, "10.1.0.2", 5000, "198.18.0.1", 3478)
    assert pk.tcp_flags(t) == pk.TCP_SYN


ips = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ports = st.integers(0, 65535)


@settings(max_examples=300, deadline=None)
@given(
    proto=st.sampled_from([17, 6]),
    a=ips, b=ips, sp=ports, dp=ports,
    payload=st.binary(max_size=41),
    new_src=st.none() | ips, new_dst=st.none() | ips,
    new_sp=st.none() | ports, new_dp=st.none() | ports,
)
def test_rewrite_keeps_checksums_valid(proto, a, b, sp, dp, payload, new_src, new_dst, new_sp, new_dp):
    p = pk.build_udp(a, sp, b, dp, payload) if proto == 17 else pk.build_tcp(a, sp, b, dp, payload)
    q = pk.rewrite(p, src_ip=new_src, dst_ip=new_dst, src_port=new_sp, dst_port=new_dp)
    assert _indep_ip_ok(q), "IPv4 header checksum broken"
    assert _indep_l4_ok(q), "UDP/TCP checksum broken"
    ft = pk.five_tuple(q)
    assert ft == pk.FiveTuple(proto, new_src or a, sp if new_sp is None else new_sp,
                              new_dst or b, dp if new_dp is None else new_dp)
    # Payload untouched; same as building the rewritten packet from scratch.
    assert q[-len(payload):] == payload if payload else True
    fresh = (pk.build_udp if proto == 17 else pk.build_tcp)(ft.src_ip, ft.src_port, ft.dst_ip, ft.dst_port, payload)
    assert q[10:12] == fresh[10:12]
    l4 = 26 if proto == 17 else 36
    # Incremental update equals a from-scratch computation (0x0000 and 0xFFFF are the same
    # ones' complement value).
    assert q[l4:l4 + 2] == fresh[l4:l4 + 2] or {q[l4:l4 + 2], fresh[l4:l4 + 2]} == {b"\0\0", b"\xff\xff"}


def test_udp_zero_checksum_stays_zero() -> None:
    p = bytearray(pk.build_udp("10.0.0.1", 1, "10.0.0.2", 2, b"abc"))
    p[26:28] = b"\0\0"
    q = pk.rewrite(bytes(p), src_ip="198.18.5.5", src_port=999)
    assert q[26:28] == b"\0\0"
    assert _indep_ip_ok(q)


def test_wrong_checksum_stays_wrong() -> None:
    p = bytearray(pk.build_udp("10.0.0.1", 1, "10.0.0.2", 2, b"abc"))
    p[-1] ^= 0xFF  # corrupt payload
    q = pk.rewrite(bytes(p), src_ip="198.18.5.5")
    assert not _indep_l4_ok(q)


def test_errors() -> None:
    with pytest.raises(pk.PacketError):
        pk.five_tuple(b"\x45" + b"\0" * 10)
    with pytest.raises(pk.PacketError):
        pk.five_tuple(b"\x60" + b"\0" * 39)  # IPv6
    icmp = pk.build_ipv4(pk.PROTO_ICMP, "10.0.0.1", "10.0.0.2", b"\x08\0\0\0\0\0\0\0")
    assert pk.five_tuple(icmp) is None
    with pytest.raises(pk.PacketError):
        pk.rewrite(icmp, src_port=5)
    q = pk.rewrite(icmp, src_ip="198.18.0.9")
    assert _indep_ip_ok(q) and pk.bytes_to_ip(q[12:16]) == "198.18.0.9"


def test_non_first_fragment_has_no_tuple() -> None:
    p = bytearray(pk.build_udp("10.0.0.1", 1, "10.0.0.2", 2, b"abcdefgh"))
    struct.pack_into("!H", p, 6, 0x0001)  # fragment offset 8 bytes
    assert pk.five_tuple(bytes(p)) is None
