"""The in-process live emulator: one object that owns a call's emulated network.

``LiveEmulator(profile, seed)`` builds, per direction ("up" = caller to callee, "down"), the
profile's link chain and seeded rng (:func:`translab.link.profiles.direction_rngs`, the streams the
simulator uses), a :class:`~translab.emulate.datagram.DatagramLink` for UDP (WebRTC) and, on demand,
a :class:`~translab.emulate.tcp_relay.TcpRelay` whose byte stream crosses
:class:`translab.link.tcp.TcpDeliveryModel` (WebSocket). Releases run on one
:class:`~translab.emulate.scheduler.DeadlineScheduler`; an optional pcap records what was forwarded.

It is a thin adapter: no impairment logic of its own. It needs no root: it wraps aioice's sockets
(WebRTC) and relays TCP on loopback (WebSocket).

Use inside a running event loop::

    emu = LiveEmulator("4g", seed=7, pcap="call.pcap")
    await emu.start()
    ...
    emu.attach_peer(caller_pc, egress="up")
    emu.attach_peer(callee_pc, egress="down")
    ...
    report = emu.report(); await emu.close()
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from translab.emulate.datagram import (
    UDP_IPV4_OVERHEAD, UDP_IPV6_OVERHEAD, DatagramLink, LinkModel, attach_ice, ice_connections_of,
)
from translab.emulate.pcap import PcapWriter
from translab.emulate.scheduler import DeadlineScheduler, now
from translab.emulate.tcp_relay import TcpRelay

__all__ = ["LiveEmulator", "DIRECTIONS", "release_error_stats"]

DIRECTIONS: tuple[str, str] = ("up", "down")

#: Linux initial SYN retransmission timeout (s), doubled per retry
SYN_RTO_S = 1.0


def release_error_stats(log: list[tuple[float, float]]) -> dict[str, float]:
    """Release lateness (actual - intended) in ms: p50, p99, max, and how many released."""
    if not log:
        return {"release_late_p50_ms": math.nan, "release_late_p99_ms": math.nan,
                "release_late_max_ms": math.nan, "releases": 0}
    a = np.asarray(log, dtype=float)
    late = (a[:, 1] - a[:, 0]) * 1e3
    return {
        "release_late_p50_ms": float(np.percentile(late, 50)),
        "release_late_p99_ms": float(np.percentile(late, 99)),
        "release_late_max_ms": float(late.max()),
        "releases": int(len(late)),
    }


class LiveEmulator:
    """A call's emulated network (see the module docstring).

    ``profile``: a profile name or path (``translab.link.profiles.load_profile``), a loaded Profile,
    or ``None`` together with ``chain_factory``. ``chain_factory(direction)`` returns a fresh link
    model for "up" or "down" (overrides the profile; used by the benchmark and tests).
    ``control``: "separate" (STUN/DTLS/RTCP use their own model instance and rng, so media draws
    match the simulator's) or "shared" (one model per direction for every datagram).
    ``pcap``: a path to write forwarded packets to. ``ip_version``: 4 or 6 (header sizes).
    ``rngs``: the media generators per direction (default :meth:`media_rngs`' streams of ``seed``).
    """

    def __init__(self, profile: Any = None, seed: int = 0, *,
                 chain_factory: Callable[[str], LinkModel] | None = None,
                 control: str = "separate", pcap: str | Path | None = None, ip_version: int = 4,
                 mss: int = 1448, rngs: dict[str, np.random.Generator] | None = None) -> None:
        from translab.errors import check_choice

        check_choice("control", control, ("separate", "shared"))
        check_choice("ip_version", ip_version, (4, 6))
        if chain_factory is None:
            if profile is None:
                raise ValueError("LiveEmulator needs a profile or a chain_factory")
            from translab.link.profiles import load_profile

            prof = load_profile(profile) if isinstance(profile, (str, Path)) else profile
            self.profile_name = getattr(prof, "name", str(profile))
            chain_factory = prof.chain
        else:
            self.profile_name = str(profile) if profile is not None else "custom"
        self.chain_factory = chain_factory
        self.seed = int(seed)
        self.control = control
        self.ip_version = ip_version
        self.mss = mss
        self._rngs = rngs
        self.pcap_path = Path(pcap) if pcap is not None else None
        self.pcap: PcapWriter | None = None
        self.scheduler: DeadlineScheduler | None = None
        self.udp: dict[str, DatagramLink] = {}
        self.relays: list[TcpRelay] = []
        self._tcp_conn_index = 0
        self._tcp_media_started = False
        self.t0: float = math.nan
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    # -- rngs ----------------------------------------------------------------------------------
    def media_rngs(self) -> dict[str, np.random.Generator]:
        """The per-direction generators the simulator uses for the same seed (``rngs`` given to the
        constructor: those, for callers whose simulation draws from other streams)."""
        if self._rngs is not None:
            return dict(self._rngs)
        try:
            from translab.link.profiles import direction_rngs
        except ImportError:  # link room not installed: the documented definition
            ss = np.random.SeedSequence(self.seed).spawn(2)
            return {"up": np.random.default_rng(ss[0]), "down": np.random.default_rng(ss[1])}
        return direction_rngs(self.seed)

    def control_rng(self, direction: str, stream: int = 0) -> np.random.Generator:
        """A generator for control traffic (independent of the media streams)."""
        return np.random.default_rng([self.seed, 0xC0, DIRECTIONS.index(direction), stream])

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> "LiveEmulator":
        """Create the scheduler, the UDP links and the pcap (inside the running loop)."""
        if self._started:
            return self
        self.scheduler = DeadlineScheduler(asyncio.get_running_loop())
        self.timer = self.scheduler.mechanism
        self.t0 = now()
        if self.pcap_path is not None:
            self.pcap = PcapWriter(self.pcap_path)
        rngs = self.media_rngs()
        overhead = UDP_IPV4_OVERHEAD if self.ip_version == 4 else UDP_IPV6_OVERHEAD
        for d in DIRECTIONS:
            media = self.chain_factory(d)
            separate = self.control == "separate"
            self.udp[d] = DatagramLink(
                d, self.scheduler, media, rngs[d],
                control=self.chain_factory(d) if separate else None,
                control_rng=self.control_rng(d) if separate else None,
                t0=self.t0, ip_overhead=overhead, pcap=self.pcap,
            )
        self._started = True
        return self

    def set_media_origin(self, t0: float) -> None:
        """The media phase starts: media datagrams are timed from ``t0`` (monotonic s, the call
        clock's zero), and the newest relayed TCP connection's uplink continues on a fresh TCP model
        timed from ``t0`` drawing from the simulator's generators (data "up", ACKs "down"). So a
        live call's media sees the draws and times its simulation sees, whatever the set-up
        (STUN, DTLS, TLS, HTTP upgrade) consumed."""
        for link in self.udp.values():
            link.media_t0 = t0
        if self.relays and not self._tcp_media_started:
            rngs = self.media_rngs()
            self._tcp_media_started = self.relays[-1].start_media(
                t0, self._tcp_model("up"), (rngs["up"], rngs["down"]))

    async def close(self) -> None:
        """Close relays, drop pending releases, close the pcap (idempotent)."""
        for relay in self.relays:  # kept (closed) so that report() still has their counters
            await relay.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.scheduler is not None:
            self._release_log = list(self.scheduler.log)
            self.scheduler.close()
        if self.pcap is not None:
            self.pcap.close()
        self._started = False

    async def __aenter__(self) -> "LiveEmulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- WebRTC --------------------------------------------------------------------------------
    def attach_peer(self, pc: Any, *, egress: str | None = None, ingress: str | None = None) -> int:
        """Put an aiortc RTCPeerConnection's sockets behind the links: its outgoing datagrams cross
        the ``egress`` direction, its incoming ones (when the other peer is not in this process)
        the ``ingress`` direction. Call after ``setLocalDescription``. Returns sockets wrapped."""
        self._need_started()
        n = 0
        for conn in ice_connections_of(pc):
            n += attach_ice(conn, egress=self.udp[egress] if egress else None,
                            ingress=self.udp[ingress] if ingress else None)
        return n

    def route_retransmissions(self, payload_type: int) -> None:
        """Uplink RTP with ``payload_type`` (RTX, RFC 4588) draws from the side streams of
        :func:`translab.link.profiles.retransmission_rng` (as the simulator's retransmissions do);
        see :meth:`DatagramLink.route_retransmissions`."""
        from translab.link.profiles import retransmission_rng

        self._need_started()
        self.udp["up"].route_retransmissions(payload_type, retransmission_rng(self.seed))

    # -- WebSocket -----------------------------------------------------------------------------
    def _tcp_model(self, direction: str) -> Any:
        from translab.link.tcp import TcpDeliveryModel

        other = "down" if direction == "up" else "up"
        hdr = 52 if self.ip_version == 4 else 72
        return TcpDeliveryModel(self.chain_factory(direction), self.chain_factory(other),
                                mss=self.mss, header_bytes=hdr, ack_bytes=hdr)

    def _tcp_models(self) -> tuple[Any, tuple[Any, Any], Any, tuple[Any, Any]]:
        """Models for a new relayed connection's set-up phase (TLS, HTTP upgrade), on control
        generators; :meth:`set_media_origin` moves the call's uplink onto the simulator's."""
        k = self._tcp_conn_index
        self._tcp_conn_index += 1
        up_rngs = (self.control_rng("up", 2 * k + 1), self.control_rng("down", 2 * k + 1))
        down_rngs = (self.control_rng("down", 2 * k + 2), self.control_rng("up", 2 * k + 2))
        return self._tcp_model("up"), up_rngs, self._tcp_model("down"), down_rngs

    async def tcp_relay(self, target: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0),
                        *, high_water: int = 256 * 1024, record: bool = False) -> TcpRelay:
        """Start a relay to ``target``; connect clients to ``relay.address`` (or ``relay.connect()``
        for an emulated handshake). ``record``: log the uplink's deliveries
        (:meth:`TcpRelay.uplink_deliveries`)."""
        self._need_started()
        assert self.scheduler is not None
        relay = TcpRelay(self.scheduler, target, self._tcp_models, listen=listen, t0=self.t0,
                         high_water=high_water, pcap=self.pcap, handshake=self._handshake,
                         ip_version=self.ip_version, record=record)
        await relay.start()
        self.relays.append(relay)
        return relay

    async def _handshake(self) -> float:
        """An emulated TCP three-way handshake: SYN over the uplink control model, SYN-ACK over the
        downlink's, retried after 1, 2, 4... s on loss. Returns its duration (s)."""
        start = now()
        rto = SYN_RTO_S
        loop = asyncio.get_running_loop()
        size = 60 if self.ip_version == 4 else 80
        while True:
            done: asyncio.Future[None] = loop.create_future()

            def synack_arrived(_: bytes, fut: asyncio.Future[None] = done) -> None:
                if not fut.done():
                    fut.set_result(None)

            def synack(_: bytes, arrived: Callable[[bytes], None] = synack_arrived) -> None:  # this attempt's
                self.udp["down"].submit(b"\x00" * (size - self.udp["down"].ip_overhead), arrived,
                                        kind="tcp-handshake")

            self.udp["up"].submit(b"\x00" * (size - self.udp["up"].ip_overhead), synack,
                                  kind="tcp-handshake")
            try:
                await asyncio.wait_for(asyncio.shield(done), rto)
                return now() - start
            except asyncio.TimeoutError:
                rto *= 2

    # -- figures -------------------------------------------------------------------------------
    @property
    def tcp_media_aligned(self) -> bool:
        """The TCP relay's model started its media clock with the call's (see set_media_origin)."""
        return bool(self._tcp_media_started)

    def report(self) -> dict[str, Any]:
        """Wire counts per direction and release accuracy, as flat ``emu_*`` keys."""
        out: dict[str, Any] = {"emu_profile": self.profile_name, "emu_seed": self.seed,
                               "emu_control": self.control}
        if self.scheduler is not None:
            out["emu_timer"] = self.timer
            log = self.scheduler.log if not self.scheduler.closed else getattr(self, "_release_log", [])
        else:
            log = getattr(self, "_release_log", [])
        out.update({f"emu_{k}": v for k, v in release_error_stats(log).items()})
        for d, link in self.udp.items():
            c = link.counters.as_dict()
            if c["packets_sent"]:
                kinds = c.pop("packets_by_kind")
                out.update({f"emu_udp_{d}_{k}": v for k, v in c.items()})
                out.update({f"emu_udp_{d}_packets_{k}": v for k, v in kinds.items()})
        for relay in self.relays:
            for d, c in relay.counters().items():
                for k, v in c.items():
                    key = f"emu_tcp_{d}_{k}"
                    out[key] = out.get(key, 0) + v if not k.startswith("max") else max(out.get(key, 0), v)
        if self.pcap is not None:
            out["emu_pcap_packets"] = self.pcap.packets
        return out

    def _need_started(self) -> None:
        if not self._started:
            raise RuntimeError("LiveEmulator.start() has not been awaited")
