"""Where a packet read from one TUN port goes: the pure routing core of the namespace lab.

Ports: ``pub`` (the public side, 198.18.0.0/16, where servers such as coturn live) and up to two
LAN sides ``a`` (the caller) and ``b`` (the callee). Side ``s`` owns the public address
``198.19.<n>.1`` (n = 1 for a, 2 for b). Behind a NAT its host is ``10.<n>.0.2``; without a NAT the
host *is* the public address.

A packet leaving side ``s`` passes its firewall (outbound), its NAT (outbound) and the link model
``(s, "up")``; a packet entering side ``t`` passes ``t``'s NAT (inbound), its firewall (inbound)
and the link model ``(t, "down")``. So a call from a to b crosses a's up-link and b's down-link,
as on the Internet. No time or randomness is read here except through the NAT (time passed in).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from translab.emulate.netns.firewall import Firewall
from translab.link import nat_packet as pk
from translab.link.nat import Nat

PUBLIC_NET = ipaddress.IPv4Network("198.18.0.0/16")  # servers (the lab's "Internet" hosts)
SIDE_INDEX = {"a": 1, "b": 2}
SERVER_IPS: tuple[str, ...] = ("198.18.0.1", "198.18.0.2")  # primary + alternate (RFC 5780)

Hop = tuple[str, str]  # (side, "up" | "down"): a link model to traverse


def side_public_ip(side: str) -> str:
    """The public (198.19.x.1) address of LAN side ``side``."""
    return f"198.19.{SIDE_INDEX[side]}.1"


def side_host_ip(side: str, natted: bool) -> str:
    """The address of the host in side ``side``'s namespace."""
    return f"10.{SIDE_INDEX[side]}.0.2" if natted else side_public_ip(side)


@dataclass
class Side:
    """One LAN side: its NAT (None: the host has a public address) and its firewall."""

    name: str
    nat: Nat | None = None
    firewall: Firewall = field(default_factory=Firewall)

    @property
    def public_ip(self) -> str:
        return side_public_ip(self.name)

    @property
    def host_ip(self) -> str:
        return side_host_ip(self.name, self.nat is not None)


@dataclass
class Route:
    """A routing decision: write ``packet`` to port ``out`` after crossing link models ``hops``."""

    out: str
    packet: bytes
    hops: list[Hop]


class Router:
    """Routes packets between ``pub`` and the LAN sides; counts drops by reason."""

    def __init__(self, sides: dict[str, Side]) -> None:
        self.sides = sides
        self.drops: dict[str, int] = {}

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def route(self, port: str, pkt: bytes, now_s: float) -> Route | None:
        """Decide what happens to ``pkt`` read from ``port`` at ``now_s`` (seconds)."""
        try:
            ft = pk.five_tuple(pkt)
        except pk.PacketError:
            self._drop("not-ipv4")
            return None
        hops: list[Hop] = []
        if port in self.sides:
            side = self.sides[port]
            if not side.firewall.outbound(ft):
                self._drop(f"firewall-out-{port}")
                return None
            if side.nat is not None:
                res = side.nat.translate_outbound(pkt, now_s)
                if res is None:
                    self._drop(f"nat-out-{port}")
                    return None
                pkt, verdict = res
                if verdict == "hairpin":
                    return Route(port, pkt, [(port, "up"), (port, "down")])
            hops.append((port, "up"))
        dst = pk.bytes_to_ip(pkt[16:20])
        if ipaddress.IPv4Address(dst) in PUBLIC_NET:
            if port == "pub":
                self._drop("pub-to-pub")
                return None
            return Route("pub", pkt, hops)
        for name, side in self.sides.items():
            if dst != side.public_ip or name == port:
                continue
            if side.nat is not None:
                back = side.nat.translate_inbound(pkt, now_s)
                if back is None:
                    self._drop(f"nat-in-{name}")
                    return None
                pkt = back
            if not side.firewall.inbound(pk.five_tuple(pkt)):
                self._drop(f"firewall-in-{name}")
                return None
            return Route(name, pkt, hops + [(name, "down")])
        self._drop("no-route")
        return None
