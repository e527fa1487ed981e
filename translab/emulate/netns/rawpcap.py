"""A minimal classic-pcap writer for raw IPv4 packets (link type RAW, 101), microsecond stamps."""

from __future__ import annotations

import struct
from pathlib import Path

LINKTYPE_RAW = 101


class RawPcap:
    """Append real packets as forwarded; ``t_s`` is wall-clock epoch seconds."""

    def __init__(self, path: str | Path, snaplen: int = 65535) -> None:
        self.path = Path(path)
        self.snaplen = snaplen
        self._fh = open(self.path, "wb", buffering=1 << 16)
        self._fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))
        self.packets = 0

    def write(self, t_s: float, packet: bytes) -> None:
        sec = int(t_s)
        usec = min(int((t_s - sec) * 1e6), 999_999)
        n = min(len(packet), self.snaplen)
        self._fh.write(struct.pack("<IIII", sec, usec, n, len(packet)))
        self._fh.write(packet[:n])
        self.packets += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
