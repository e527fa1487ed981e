"""Firewall profiles on a LAN edge, as a pure stateful rule set (no clock, no sockets).

Profiles:

- ``open``: everything passes (the NAT, if any, still filters inbound).
- ``udp-blocked``: outbound TCP only; inbound only replies to flows started from inside.
- ``only-443``: outbound TCP to port 443 only; inbound only replies to flows started from inside.

Flows are remembered from the first allowed outbound packet on (no expiry: a call is short).
Tuples are in LAN terms: outbound packets before NAT, inbound packets after NAT.
"""

from __future__ import annotations

from translab.config import FIREWALLS
from translab.errors import check_choice
from translab.link.nat_packet import PROTO_TCP, FiveTuple

FIREWALL_PROFILES: tuple[str, ...] = FIREWALLS  # declared with the other allowed values


def outbound_allowed(profile: str, ft: FiveTuple) -> bool:
    """Whether ``profile`` lets an outbound packet of flow ``ft`` (from the LAN) through."""
    if profile == "open":
        return True
    if profile == "udp-blocked":
        return ft.proto == PROTO_TCP
    if profile == "only-443":
        return ft.proto == PROTO_TCP and ft.dst_port == 443
    raise ValueError(profile)


class Firewall:
    """A stateful firewall of one profile; counts what it dropped per direction."""

    def __init__(self, profile: str = "open") -> None:
        check_choice("firewall", profile, FIREWALL_PROFILES)
        self.profile = profile
        self._flows: set[FiveTuple] = set()
        self.dropped_outbound = 0
        self.dropped_inbound = 0

    def outbound(self, ft: FiveTuple | None) -> bool:
        """Decide on a packet leaving the LAN (``ft`` None: not UDP/TCP, passes only if open)."""
        ok = self.profile == "open" if ft is None else outbound_allowed(self.profile, ft)
        if ok and ft is not None and self.profile != "open":
            self._flows.add(ft)
        if not ok:
            self.dropped_outbound += 1
        return ok

    def inbound(self, ft: FiveTuple | None) -> bool:
        """Decide on a packet entering the LAN: replies to remembered flows only (unless open)."""
        ok = self.profile == "open" or (ft is not None and ft.reversed() in self._flows)
        if not ok:
            self.dropped_inbound += 1
        return ok
