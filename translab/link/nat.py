"""A NAT with RFC 4787 behaviours, as a pure model (time and RNG passed in, no sockets).

Behaviours (RFC 4787 section 4):

- mapping: which outbound flows share one external (public) port.
  ``endpoint-independent`` -- one per internal ip:port; ``address-dependent`` -- one per internal
  ip:port and remote ip; ``address-and-port-dependent`` -- one per internal ip:port and remote ip:port.
- filtering: which inbound packets to a mapped external port get through.
  ``endpoint-independent`` -- any; ``address-dependent`` -- only from a remote ip the mapping has
  sent to; ``address-and-port-dependent`` -- only from a remote ip:port it has sent to.
- port preservation: the external port equals the internal port when that port is free.
- mapping lifetime (seconds): a mapping unused by outbound packets for longer expires (UDP and TCP
  have separate lifetimes; inbound packets refresh only if ``inbound_refreshes``).
- hairpinning: a packet from inside to the NAT's own public address is translated back inside,
  with the sender's external address and port as its source (RFC 4787 REQ-9).

Classic names (REFERENCE section 5): ``full-cone`` (EI mapping, EI filtering), ``restricted-cone``
(EI, address-dependent), ``port-restricted-cone`` (EI, address-and-port-dependent), ``symmetric``
(address-and-port-dependent mapping and filtering, no port preservation).

Only UDP and TCP are translated; other protocols (ICMP) and non-first fragments are dropped.
Invariants: an external port belongs to at most one live mapping per protocol; a packet is
translated either completely (addresses, ports, both checksums) or dropped (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from translab.config import TURN_ICE
from translab.errors import ConfigError, check_choice, check_range
from translab.link import nat_packet as pk
from translab.link.nat_packet import FiveTuple

EI = "endpoint-independent"
AD = "address-dependent"
APD = "address-and-port-dependent"
BEHAVIOURS: tuple[str, ...] = (EI, AD, APD)


@dataclass(frozen=True)
class NatConfig:
    """Behaviour of one NAT. Times in seconds; ports as integers.

    ``port_range`` is the inclusive range external ports are drawn from when a port cannot be
    preserved (and always, without port preservation).
    """

    mapping: str = EI
    filtering: str = APD
    port_preservation: bool = True
    udp_lifetime_s: float = 120.0  # RFC 4787 REQ-5: at least 2 min
    tcp_lifetime_s: float = 7440.0  # RFC 5382 REQ-5: at least 2 h 4 min when established
    hairpinning: bool = True
    inbound_refreshes: bool = False
    port_range: tuple[int, int] = (49152, 65535)

    def __post_init__(self) -> None:
        check_choice("nat.mapping", self.mapping, BEHAVIOURS)
        check_choice("nat.filtering", self.filtering, BEHAVIOURS)
        check_range("nat.udp_lifetime_s", self.udp_lifetime_s, 0.001, 86400.0, "s")
        check_range("nat.tcp_lifetime_s", self.tcp_lifetime_s, 0.001, 86400.0, "s")
        lo, hi = self.port_range
        if not (1 <= lo <= hi <= 65535):
            raise ConfigError("nat.port_range", self.port_range, "1 <= lo <= hi <= 65535")


PRESETS: dict[str, NatConfig] = {
    "full-cone": NatConfig(mapping=EI, filtering=EI),
    "restricted-cone": NatConfig(mapping=EI, filtering=AD),
    "port-restricted-cone": NatConfig(mapping=EI, filtering=APD),
    "symmetric": NatConfig(mapping=APD, filtering=APD, port_preservation=False),
}


def preset(name: str, **overrides: object) -> NatConfig:
    """The :class:`NatConfig` of a classic NAT name, with optional field overrides
    (e.g. ``preset("full-cone", hairpinning=False)``)."""
    check_choice("nat", name, tuple(PRESETS))
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]


#: what a mapping is keyed by: (proto, internal ip, internal port), plus the remote ip (address-
#: dependent mapping) or remote ip and port (address-and-port-dependent)
MappingKey = tuple[int | str, ...]


@dataclass
class NatMapping:
    """One mapping: internal endpoint <-> external port, and the remote endpoints it has sent to."""

    proto: int
    internal_ip: str
    internal_port: int
    external_port: int
    key: MappingKey
    created_s: float
    last_used_s: float
    permissions: set[tuple[str, int]] = field(default_factory=set)


Verdict = Literal["out", "hairpin", "in"]


class Nat:
    """A NAT between a private side and the public address ``public_ip``.

    ``outbound(ft, now_s)`` / ``inbound(ft, now_s)`` decide on 5-tuples; ``translate_outbound`` /
    ``translate_inbound`` apply the decision to packet bytes. ``rng`` draws external ports.
    """

    def __init__(self, config: NatConfig, public_ip: str, rng: np.random.Generator) -> None:
        self.config = config
        self.public_ip = public_ip
        self.rng = rng
        self._by_key: dict[MappingKey, NatMapping] = {}
        self._by_port: dict[tuple[int, int], NatMapping] = {}
        self.dropped_inbound = 0
        self.dropped_outbound = 0

    # -- bookkeeping --------------------------------------------------------------------------
    def _lifetime(self, proto: int) -> float:
        return self.config.tcp_lifetime_s if proto == pk.PROTO_TCP else self.config.udp_lifetime_s

    def _alive(self, m: NatMapping, now_s: float) -> bool:
        return now_s - m.last_used_s <= self._lifetime(m.proto)

    def _remove(self, m: NatMapping) -> None:
        self._by_key.pop(m.key, None)
        self._by_port.pop((m.proto, m.external_port), None)

    def expire(self, now_s: float) -> int:
        """Drop every mapping idle for longer than its lifetime; returns how many went."""
        dead = [m for m in self._by_key.values() if not self._alive(m, now_s)]
        for m in dead:
            self._remove(m)
        return len(dead)

    def mappings(self) -> list[NatMapping]:
        """Current mappings (live or not yet expired by :meth:`expire`)."""
        return list(self._by_key.values())

    def _key(self, ft: FiveTuple) -> MappingKey:
        base = (ft.proto, ft.src_ip, ft.src_port)
        if self.config.mapping == EI:
            return base
        if self.config.mapping == AD:
            return base + (ft.dst_ip,)
        return base + (ft.dst_ip, ft.dst_port)

    def _port_free(self, proto: int, port: int, now_s: float) -> bool:
        m = self._by_port.get((proto, port))
        if m is None:
            return True
        if not self._alive(m, now_s):
            self._remove(m)
            return True
        return False

    def _allocate_port(self, proto: int, internal_port: int, now_s: float) -> int | None:
        lo, hi = self.config.port_range
        if self.config.port_preservation and self._port_free(proto, internal_port, now_s):
            return internal_port
        for _ in range(64):
            p = int(self.rng.integers(lo, hi + 1))
            if self._port_free(proto, p, now_s):
                return p
        for p in range(lo, hi + 1):
            if self._port_free(proto, p, now_s):
                return p
        return None

    # -- decisions on 5-tuples ----------------------------------------------------------------
    def outbound(self, ft: FiveTuple, now_s: float) -> FiveTuple | None:
        """Translate an outbound flow tuple (source becomes public_ip:external_port), creating or
        refreshing its mapping and permission. None when no external port is left."""
        key = self._key(ft)
        m = self._by_key.get(key)
        if m is not None and not self._alive(m, now_s):
            self._remove(m)
            m = None
        if m is None:
            port = self._allocate_port(ft.proto, ft.src_port, now_s)
            if port is None:
                self.dropped_outbound += 1
                return None
            m = NatMapping(ft.proto, ft.src_ip, ft.src_port, port, key, now_s, now_s)
            self._by_key[key] = m
            self._by_port[(ft.proto, port)] = m
        m.last_used_s = now_s
        m.permissions.add((ft.dst_ip, ft.dst_port))
        return FiveTuple(ft.proto, self.public_ip, m.external_port, ft.dst_ip, ft.dst_port)

    def _filter_allows(self, m: NatMapping, src_ip: str, src_port: int) -> bool:
        f = self.config.filtering
        if f == EI:
            return True
        if f == AD:
            return any(ip == src_ip for ip, _ in m.permissions)
        return (src_ip, src_port) in m.permissions

    def inbound(self, ft: FiveTuple, now_s: float) -> FiveTuple | None:
        """Translate an inbound tuple addressed to public_ip:external_port back to the internal
        endpoint, or None when there is no live mapping or the filtering rejects the source."""
        if ft.dst_ip != self.public_ip:
            self.dropped_inbound += 1
            return None
        m = self._by_port.get((ft.proto, ft.dst_port))
        if m is None or not self._alive(m, now_s):
            if m is not None:
                self._remove(m)
            self.dropped_inbound += 1
            return None
        if not self._filter_allows(m, ft.src_ip, ft.src_port):
            self.dropped_inbound += 1
            return None
        if self.config.inbound_refreshes:
            m.last_used_s = now_s
        return FiveTuple(ft.proto, ft.src_ip, ft.src_port, m.internal_ip, m.internal_port)

    # -- packets ------------------------------------------------------------------------------
    def translate_outbound(self, pkt: bytes, now_s: float) -> tuple[bytes, Verdict] | None:
        """Translate a packet leaving the private side.

        Returns ``(packet, "out")`` to send on the public side, ``(packet, "hairpin")`` to
        deliver back inside (destination was our own public address and hairpinning is on), or
        None (dropped: not UDP/TCP, no port left, hairpinning off, or hairpin filtered).
        """
        ft = pk.five_tuple(pkt)
        if ft is None:
            self.dropped_outbound += 1
            return None
        new = self.outbound(ft, now_s)
        if new is None:
            return None
        out = pk.rewrite(pkt, src_ip=new.src_ip, src_port=new.src_port)
        if new.dst_ip != self.public_ip:
            return out, "out"
        if not self.config.hairpinning:
            self.dropped_outbound += 1
            return None
        back = self.translate_inbound(out, now_s)
        return None if back is None else (back, "hairpin")

    def translate_inbound(self, pkt: bytes, now_s: float) -> bytes | None:
        """Translate a packet arriving from the public side, or None when it is dropped."""
        ft = pk.five_tuple(pkt)
        if ft is None:
            self.dropped_inbound += 1
            return None
        new = self.inbound(ft, now_s)
        if new is None:
            return None
        return pk.rewrite(pkt, dst_ip=new.dst_ip, dst_port=new.dst_port)


# --------------------------------------------------------------------------------------------------
# The NAT outcome model: which calls should connect (pure; checked by the netns lab's matrix)

TURN_OPTIONS: tuple[str, ...] = TURN_ICE
_HARD = {"port-restricted-cone", "symmetric"}


@dataclass(frozen=True)
class Cell:
    """One cell of the NAT/firewall/ICE matrix (fields as :class:`translab.config.NetnsConfig`)."""

    transport: str
    caller_nat: str
    callee_nat: str
    firewall: str
    ice: str
    relay_only: bool = False

    @property
    def key(self) -> str:
        ro = "+relay" if self.relay_only else ""
        return f"{self.transport}|{self.caller_nat}|{self.callee_nat}|{self.firewall}|{self.ice}{ro}"


def expected_connected(c: Cell) -> bool:
    """Whether the call should connect, from the NAT and firewall facts (REFERENCE section 5).

    WebSocket (wss to 198.18.0.3:443, an outbound TCP connection) connects behind every NAT and
    firewall profile here. WebRTC: a firewall that blocks UDP leaves only TURN over TCP (port 3478,
    not with only-443) or TURN over TLS on 443; with UDP allowed, TURN always connects; without
    TURN, host candidates connect when at least one side has a public address; with STUN, every
    pair connects except symmetric to port-restricted cone or symmetric (either way round).
    """
    if c.transport == "websocket":
        return True
    udp_ok = c.firewall == "open"
    if not udp_ok:
        return c.ice == "turns-443" or (c.ice == "turn-tcp" and c.firewall == "udp-blocked")
    if c.ice in TURN_OPTIONS:
        return True
    if c.caller_nat == "none" or c.callee_nat == "none":
        return True
    if c.ice == "none":
        return False
    a, b = c.caller_nat, c.callee_nat
    return not ((a == "symmetric" and b in _HARD) or (b == "symmetric" and a in _HARD))
