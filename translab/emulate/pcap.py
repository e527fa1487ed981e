"""A pcap writer for what the live emulator forwarded: UDP datagrams and TCP segments with
synthetic IPv4 (or IPv6, for IPv6 addresses) headers (link type RAW, 101), readable by Wireshark and tshark.

UDP datagrams are written as they were (STUN, DTLS, SRTP, RTCP payloads; Wireshark's heuristics
decode them when told ``-d udp.port==N,rtp`` or with "try heuristic sub-dissectors"). The WebSocket
path's byte stream is written as TCP segments synthesised per direction with running sequence and
acknowledgement numbers (SYN / SYN-ACK / ACK opening the stream), because the emulator sees the
application's bytes, not the kernel's segments.

Times are wall-clock seconds (``time.time()`` epoch). Checksums (IPv4 header, UDP, TCP) are
computed so that tshark's validation, when enabled, passes.
"""

from __future__ import annotations

import ipaddress
import struct
import threading
from pathlib import Path
from typing import BinaryIO

__all__ = ["PcapWriter", "LINKTYPE_RAW", "TcpFlowWriter"]

LINKTYPE_RAW = 101
_MAX_SNAP = 262144
_PROTO_TCP = 6
_PROTO_UDP = 17

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_PSH = 0x08
TCP_ACK = 0x10


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def _ip4(addr: str) -> bytes:
    try:
        return ipaddress.IPv4Address(addr).packed
    except ValueError:  # a host name: map into 198.18.0.0/15 (benchmarking range)
        return ipaddress.IPv4Address("198.18.0.1").packed


def _is_v6(addr: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(addr.split("%")[0]), ipaddress.IPv6Address)
    except ValueError:
        return False


class PcapWriter:
    """Writes IPv4 packets to a classic pcap file (microsecond timestamps). Thread-safe; use as a
    context manager or call :meth:`close`. ``packets`` counts records written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: BinaryIO | None = open(self.path, "wb")
        self._fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, _MAX_SNAP, LINKTYPE_RAW))
        self._lock = threading.Lock()
        self._ip_id = 0
        self.packets = 0

    def _ipv4(self, proto: int, src: str, dst: str, payload_len: int) -> tuple[bytes, bytes, bytes]:
        if _is_v6(src) and _is_v6(dst):
            s6 = ipaddress.IPv6Address(src.split("%")[0]).packed
            d6 = ipaddress.IPv6Address(dst.split("%")[0]).packed
            hdr6 = struct.pack("!IHBB16s16s", 6 << 28, payload_len, proto, 64, s6, d6)
            return hdr6, s6, d6
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        s, d = _ip4(src), _ip4(dst)
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, self._ip_id, 0x4000, 64, proto, 0, s, d)
        hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
        return hdr, s, d

    def _record(self, t_s: float, packet: bytes) -> None:
        with self._lock:
            if self._fh is None:
                return
            sec = int(t_s)
            usec = int(round((t_s - sec) * 1e6))
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            n = min(len(packet), _MAX_SNAP)
            self._fh.write(struct.pack("<IIII", sec, usec, n, len(packet)))
            self._fh.write(packet[:n])
            self.packets += 1

    def udp(self, t_s: float, src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> None:
        """One UDP datagram from ``src`` (host, port) to ``dst`` at wall time ``t_s`` (s)."""
        ulen = 8 + len(payload)
        ip, s, d = self._ipv4(_PROTO_UDP, src[0], dst[0], ulen)
        udp = struct.pack("!HHHH", src[1], dst[1], ulen, 0) + payload
        pseudo = s + d + (struct.pack("!BBH", 0, _PROTO_UDP, ulen) if len(s) == 4
                          else struct.pack("!IxxxB", ulen, _PROTO_UDP))
        csum = _checksum(pseudo + udp) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
        self._record(t_s, ip + udp)

    def tcp(self, t_s: float, src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int,
            flags: int, payload: bytes = b"", window: int = 65535) -> None:
        """One TCP segment (20-byte header, no options) at wall time ``t_s`` (s)."""
        tlen = 20 + len(payload)
        ip, s, d = self._ipv4(_PROTO_TCP, src[0], dst[0], tlen)
        tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, window, 0, 0) + payload
        pseudo = s + d + (struct.pack("!BBH", 0, _PROTO_TCP, tlen) if len(s) == 4
                          else struct.pack("!IxxxB", tlen, _PROTO_TCP))
        tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
        self._record(t_s, ip + tcp)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TcpFlowWriter:
    """Synthesises one TCP connection's segments into a :class:`PcapWriter`: a handshake, then data
    in each direction with running seq/ack numbers, a pure ACK for each delivery, and FINs."""

    MSS = 1448

    def __init__(self, pcap: PcapWriter, client: tuple[str, int], server: tuple[str, int]) -> None:
        self.pcap = pcap
        self.ends = {"up": (client, server), "down": (server, client)}
        self.next_seq = {"up": 1000, "down": 5000}
        self.started = False

    def open(self, t_s: float) -> None:
        """SYN, SYN-ACK, ACK at ``t_s`` (s)."""
        c, s = self.ends["up"]
        up, dn = self.next_seq["up"], self.next_seq["down"]
        self.pcap.tcp(t_s, c, s, up - 1, 0, TCP_SYN)
        self.pcap.tcp(t_s, s, c, dn - 1, up, TCP_SYN | TCP_ACK)
        self.pcap.tcp(t_s, c, s, up, dn, TCP_ACK)
        self.started = True

    def data(self, t_s: float, direction: str, payload: bytes) -> None:
        """Bytes delivered in ``direction`` ("up" client to server, "down") at ``t_s``, cut into
        MSS-sized segments, followed by the receiver's ACK."""
        if not self.started:
            self.open(t_s)
        src, dst = self.ends[direction]
        other = "down" if direction == "up" else "up"
        for i in range(0, len(payload), self.MSS):
            chunk = payload[i:i + self.MSS]
            self.pcap.tcp(t_s, src, dst, self.next_seq[direction], self.next_seq[other],
                          TCP_ACK | TCP_PSH, chunk)
            self.next_seq[direction] += len(chunk)
        self.pcap.tcp(t_s, dst, src, self.next_seq[other], self.next_seq[direction], TCP_ACK)

    def close(self, t_s: float) -> None:
        """FIN from the client, FIN-ACK from the server, final ACK."""
        if not self.started:
            return
        c, s = self.ends["up"]
        self.pcap.tcp(t_s, c, s, self.next_seq["up"], self.next_seq["down"], TCP_FIN | TCP_ACK)
        self.pcap.tcp(t_s, s, c, self.next_seq["down"], self.next_seq["up"] + 1, TCP_FIN | TCP_ACK)
        self.pcap.tcp(t_s, c, s, self.next_seq["up"] + 1, self.next_seq["down"] + 1, TCP_ACK)
        self.started = False
