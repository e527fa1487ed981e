"""IPv4 / UDP / TCP packet parsing and address rewriting, as pure functions on bytes.

Used by the NAT model (:mod:`translab.link.nat`) and the namespace forwarder. Only what a NAT
needs: read the 5-tuple, rewrite source or destination address and port, keep the IPv4 header
checksum and the UDP/TCP checksum right (RFC 1624 incremental update, so a packet whose checksum
was wrong stays wrong, as on a real NAT). Offsets and lengths are in bytes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

# TCP flag bits (byte 13 of the TCP header).
TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10


class PacketError(ValueError):
    """The bytes are not an IPv4 packet this module can handle (too short, wrong version...)."""


@dataclass(frozen=True)
class FiveTuple:
    """The flow identity of a UDP or TCP packet: protocol number, source and destination IPv4
    addresses (dotted strings) and ports."""

    proto: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int

    def reversed(self) -> "FiveTuple":
        """The tuple of a reply packet (source and destination swapped)."""
        return FiveTuple(self.proto, self.dst_ip, self.dst_port, self.src_ip, self.src_port)


def ip_to_bytes(ip: str) -> bytes:
    """Dotted IPv4 string to 4 bytes."""
    return ipaddress.IPv4Address(ip).packed


def bytes_to_ip(b: bytes) -> str:
    """4 bytes to a dotted IPv4 string."""
    return str(ipaddress.IPv4Address(bytes(b)))


def ones_complement_sum(data: bytes, initial: int = 0) -> int:
    """16-bit ones' complement sum of ``data`` (odd length padded with a zero byte), folded."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = initial + sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 Internet checksum (the complement of the ones' complement sum)."""
    return (~ones_complement_sum(data, initial)) & 0xFFFF


def header_length(pkt: bytes) -> int:
    """IPv4 header length in bytes. Raises :class:`PacketError` on a non-IPv4 or short packet."""
    if len(pkt) < 20:
        raise PacketError(f"packet of {len(pkt)} bytes is shorter than an IPv4 header")
    if pkt[0] >> 4 != 4:
        raise PacketError(f"IP version {pkt[0] >> 4} is not 4")
    ihl = (pkt[0] & 0x0F) * 4
    if ihl < 20 or len(pkt) < ihl:
        raise PacketError(f"bad IPv4 header length {ihl}")
    return ihl


def protocol(pkt: bytes) -> int:
    """IP protocol number (6 TCP, 17 UDP, 1 ICMP...)."""
    header_length(pkt)
    return pkt[9]


def is_first_fragment_or_whole(pkt: bytes) -> bool:
    """True unless this is a non-first IPv4 fragment (which carries no L4 header)."""
    frag: int = struct.unpack_from("!H", pkt, 6)[0]
    return (frag & 0x1FFF) == 0


def five_tuple(pkt: bytes) -> FiveTuple | None:
    """The :class:`FiveTuple` of a UDP or TCP IPv4 packet, or None for other protocols and for
    non-first fragments."""
    ihl = header_length(pkt)
    proto = pkt[9]
    if proto not in (PROTO_TCP, PROTO_UDP) or not is_first_fragment_or_whole(pkt):
        return None
    if len(pkt) < ihl + 4:
        raise PacketError("truncated transport header")
    sport, dport = struct.unpack_from("!HH", pkt, ihl)
    return FiveTuple(proto, bytes_to_ip(pkt[12:16]), sport, bytes_to_ip(pkt[16:20]), dport)


def tcp_flags(pkt: bytes) -> int:
    """TCP flags byte of a TCP packet (0 for anything else)."""
    ihl = header_length(pkt)
    if pkt[9] != PROTO_TCP or len(pkt) < ihl + 14:
        return 0
    return pkt[ihl + 13]


def _l4_checksum_offset(proto: int) -> int:
    return 16 if proto == PROTO_TCP else 6


def _csum_update(old_csum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over 16-bit words of ``old``/``new`` (even length)."""
    total = (~old_csum) & 0xFFFF
    for (o,), (n,) in zip(struct.iter_unpack("!H", old), struct.iter_unpack("!H", new)):
        total += ((~o) & 0xFFFF) + n
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def rewrite(
    pkt: bytes,
    *,
    src_ip: str | None = None,
    src_port: int | None = None,
    dst_ip: str | None = None,
    dst_port: int | None = None,
) -> bytes:
    """A copy of IPv4 packet ``pkt`` with the given source/destination address and port replaced.

    The IPv4 header checksum and (for UDP/TCP) the transport checksum, which covers the
    pseudo-header, are updated incrementally (RFC 1624). A UDP checksum of 0 (none, IPv4 only)
    stays 0; a computed UDP checksum of 0 is sent as 0xFFFF (RFC 768). Ports are only rewritten
    on UDP/TCP packets that carry a transport header; asking for a port on another packet raises
    :class:`PacketError`.
    """
    ihl = header_length(pkt)
    out = bytearray(pkt)
    proto = out[9]
    has_l4 = proto in (PROTO_TCP, PROTO_UDP) and is_first_fragment_or_whole(pkt)
    if (src_port is not None or dst_port is not None) and not has_l4:
        raise PacketError(f"cannot rewrite ports of protocol {proto} / fragment")
    l4_off = ihl + _l4_checksum_offset(proto) if has_l4 else -1
    if has_l4 and len(out) < l4_off + 2:
        raise PacketError("truncated transport header")
    l4_csum = struct.unpack_from("!H", out, l4_off)[0] if has_l4 else 0
    udp_no_csum = has_l4 and proto == PROTO_UDP and l4_csum == 0
    ip_csum = struct.unpack_from("!H", out, 10)[0]

    for off, new_ip in ((12, src_ip), (16, dst_ip)):
        if new_ip is None:
            continue
        old = bytes(out[off : off + 4])
        new = ip_to_bytes(new_ip)
        ip_csum = _csum_update(ip_csum, old, new)
        if has_l4:
            l4_csum = _csum_update(l4_csum, old, new)
        out[off : off + 4] = new
    for off, new_port in ((ihl, src_port), (ihl + 2, dst_port)):
        if new_port is None:
            continue
        if not 0 <= new_port <= 0xFFFF:
            raise PacketError(f"port {new_port} out of range")
        old = bytes(out[off : off + 2])
        new = struct.pack("!H", new_port)
        l4_csum = _csum_update(l4_csum, old, new)
        out[off : off + 2] = new

    struct.pack_into("!H", out, 10, ip_csum)
    if has_l4 and not udp_no_csum:
        if proto == PROTO_UDP and l4_csum == 0:
            l4_csum = 0xFFFF
        struct.pack_into("!H", out, l4_off, l4_csum)
    return bytes(out)


def build_ipv4(
    proto: int,
    src_ip: str,
    dst_ip: str,
    l4: bytes,
    *,
    ttl: int = 64,
    ident: int = 0,
) -> bytes:
    """An IPv4 packet (20-byte header, DF set) around transport bytes ``l4``, header checksum filled.

    ``l4`` must already carry its own checksum; see :func:`build_udp` / :func:`build_tcp`.
    """
    total = 20 + len(l4)
    hdr = bytearray(
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, ttl, proto, 0,
                    ip_to_bytes(src_ip), ip_to_bytes(dst_ip))
    )
    struct.pack_into("!H", hdr, 10, internet_checksum(bytes(hdr)))
    return bytes(hdr) + l4


def _pseudo_header(src_ip: str, dst_ip: str, proto: int, length: int) -> bytes:
    return ip_to_bytes(src_ip) + ip_to_bytes(dst_ip) + struct.pack("!BBH", 0, proto, length)


def build_udp(src_ip: str, src_port: int, dst_ip: str, dst_port: int, payload: bytes) -> bytes:
    """A complete IPv4/UDP packet with correct checksums (for tests and probes)."""
    length = 8 + len(payload)
    udp = bytearray(struct.pack("!HHHH", src_port, dst_port, length, 0) + payload)
    csum = internet_checksum(_pseudo_header(src_ip, dst_ip, PROTO_UDP, length) + bytes(udp))
    struct.pack_into("!H", udp, 6, csum or 0xFFFF)
    return build_ipv4(PROTO_UDP, src_ip, dst_ip, bytes(udp))


def build_tcp(
    src_ip: str,
    src_port: int,
    dst_ip: str,
    dst_port: int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = TCP_ACK,
    window: int = 65535,
) -> bytes:
    """A complete IPv4/TCP packet (20-byte TCP header, no options) with correct checksums."""
    tcp = bytearray(struct.pack("!HHIIBBHHH", src_port, dst_port, seq, ack, 5 << 4, flags,
                                window, 0, 0) + payload)
    csum = internet_checksum(_pseudo_header(src_ip, dst_ip, PROTO_TCP, len(tcp)) + bytes(tcp))
    struct.pack_into("!H", tcp, 16, csum)
    return build_ipv4(PROTO_TCP, src_ip, dst_ip, bytes(tcp))


def l4_checksum_ok(pkt: bytes) -> bool:
    """True if the UDP/TCP checksum of ``pkt`` verifies (a UDP checksum of 0 counts as OK)."""
    ihl = header_length(pkt)
    proto = pkt[9]
    total_len = struct.unpack_from("!H", pkt, 2)[0]
    seg = bytes(pkt[ihl:total_len])
    if proto == PROTO_UDP and struct.unpack_from("!H", seg, 6)[0] == 0:
        return True
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, proto, len(seg))
    return ones_complement_sum(pseudo + seg) == 0xFFFF


def ip_checksum_ok(pkt: bytes) -> bool:
    """True if the IPv4 header checksum verifies."""
    ihl = header_length(pkt)
    return ones_complement_sum(bytes(pkt[:ihl])) == 0xFFFF
