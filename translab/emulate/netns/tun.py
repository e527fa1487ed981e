"""Open TUN devices (layer 3, no packet-information header) and hand out their file descriptors."""

from __future__ import annotations

import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    """Create TUN device ``name`` (at most 15 characters) and return its non-blocking fd.

    The device lives as long as the fd is open (not persistent): if the process holding it dies,
    the kernel removes the device.
    """
    if not 0 < len(name) <= 15:
        raise ValueError(f"interface name {name!r} must be 1 to 15 characters")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
    except OSError:
        os.close(fd)
        raise
    return fd
