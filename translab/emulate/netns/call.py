"""A live call on the namespace backend: the caller in LAN ``a``, the callee (WebRTC) in LAN ``b``
or the WebSocket server in ``pub`` (198.18.0.3:443, like a cloud voice endpoint), each behind its
own NAT and firewall, with coturn in ``pub`` for STUN/TURN. The profile's link models sit on the
caller's access link (``up`` on a's up-link, ``down`` on its down-link), seeded like the simulator.

The call itself (trace, figures, artefacts) is :class:`translab.call.netns.NetnsEngine`; this module
is the lab side. The transports are the live helper's own (:func:`translab.transport.webrtc.webrtc_call`,
:func:`translab.transport.websocket.websocket_call`), unchanged: their sockets are steered into the
namespaces by :mod:`translab.emulate.netns.aio`. Real kernel UDP and TCP carry every packet, so the
WebSocket stream meets real retransmissions and head-of-line blocking.

ICE options: ``none`` (host candidates only), ``stun``, ``turn-udp``, ``turn-tcp``, ``turns-443``
(TURN over TLS on 443), each optionally ``relay_only`` (the caller's iceTransportPolicy="relay").
Recorded in the summary (``netns_*``): connected, selected candidate pair types, ICE/DTLS setup
times (from the transport's own milestones), relay bytes from coturn, forwarder counts.
"""

from __future__ import annotations

import asyncio

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from translab.config import FIREWALLS, ICE_OPTIONS, NAT_CHOICES, NETNS_FIELDS, NetnsConfig
from translab.emulate.netns.aio import NsBinding, bound, netns_sockets

__all__ = ["ICE_OPTIONS", "NAT_CHOICES", "NetnsOptions", "NetnsPath", "peer_factory", "WS_SERVER", "add_netns_arguments", "call_in_lab",
           "ice_servers", "lab_config_for", "options_from_args"]

WS_SERVER = ("198.18.0.3", 443)

@dataclass(frozen=True)
class NetnsOptions(NetnsConfig):
    """A call's :class:`translab.config.NetnsConfig` plus the timeouts of the run (s)."""

    connect_timeout_s: float = 10.0
    drain_s: float = 1.0

    @classmethod
    def of(cls, netns: NetnsConfig, **timeouts: Any) -> "NetnsOptions":
        fields: dict[str, Any] = {f: getattr(netns, f) for f in NETNS_FIELDS}
        return cls(**fields, **timeouts)

class NetnsPath:
    """The namespace lab as a :class:`translab.transport.path.NetworkPath`: no scheduler (the sender
    paces itself), a connector that opens the client's TCP connection inside LAN ``a``; WebRTC peers
    are placed by the peer factory (:func:`peer_factory`), so ``attach_peer`` has nothing to do."""

    scheduler = None
    # The in-process emulator aligns its TCP model with the media clock; real kernel TCP needs no
    # alignment, so this is reported as False.
    tcp_media_aligned = False

    def attach_peer(self, pc: Any, egress: str, ingress: str | None = None) -> None:
        return None

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.t0 = float("nan")

    async def tcp_relay(self, target: tuple[str, int]) -> "_NetnsConnector":
        return _NetnsConnector(self.lab, target)

    def set_media_origin(self, t0: float) -> None:
        self.t0 = t0

class _NetnsConnector:
    def __init__(self, lab: Any, target: tuple[str, int]) -> None:
        self.lab, self.target = lab, target

    async def connect(self, timeout_s: float) -> tuple[Any, float]:
        import socket

        from translab.emulate.scheduler import now

        s = self.lab.socket("a", socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(s, self.target), timeout_s)
        except BaseException:
            s.close()
            raise
        return s, now()

def ice_servers(coturn: Any, option: str) -> list[Any]:
    """aiortc RTCIceServer list for an ICE option, with fresh TURN REST credentials."""
    from aiortc import RTCIceServer

    if option == "none" or coturn is None:
        return []
    urls = coturn.ice_urls(option)
    if option == "stun":
        return [RTCIceServer(urls=urls)]
    user, pw = coturn.credentials()
    return [RTCIceServer(urls=urls, username=user, credential=pw)]

def _selected_pair(pc: Any) -> dict[str, Any]:
    """Types and addresses of the nominated ICE pair of a peer (before it closes)."""
    try:
        conn = pc.getTransceivers()[0].sender.transport.transport._connection
        pair = conn._nominated.get(1)
    except (IndexError, AttributeError):
        return {}
    if pair is None:
        return {}
    lc, rc = pair.local_candidate, pair.remote_candidate
    return {"local_type": lc.type, "remote_type": rc.type, "local": f"{lc.host}:{lc.port}",
            "remote": f"{rc.host}:{rc.port}", "local_candidates": len(conn.local_candidates),
            "remote_candidates": len(conn.remote_candidates)}

def peer_factory(bindings: list[NsBinding], servers: list[Any], relay_only: bool,
                 selected: list[dict[str, Any]]) -> Callable[[], Any]:
    """A ``webrtc_call`` peer factory whose peers (caller first, then callee) gather inside their
    namespaces: each peer's ``setLocalDescription`` (where aioice opens its sockets) runs under
    :func:`translab.emulate.netns.aio.bound`, and ``close`` records the nominated pair first."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    order = iter(range(len(bindings)))

    def factory() -> Any:
        i = next(order)
        policy = RTCIceTransportPolicy.RELAY if (relay_only and i == 0) else RTCIceTransportPolicy.ALL
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        sld, close = pc.setLocalDescription, pc.close

        async def set_local(desc: Any = None) -> Any:
            with bound(bindings[i]):
                return await sld(desc)

        async def closing() -> None:
            if pc.connectionState == "connected" and len(selected) <= i:
                selected.append(_selected_pair(pc))
            await close()

        pc.setLocalDescription = set_local  # type: ignore[method-assign,assignment]
        pc.close = closing  # type: ignore[method-assign]
        return pc

    return factory


def lab_config_for(cfg: Any, opts: NetnsOptions, pcap: str | Path | None = None) -> Any:
    """The :class:`LabConfig` of a call: NATs and firewalls per side, the profile on a's link."""
    from translab.emulate.netns.lab import LabConfig

    return LabConfig(
        sides=("a", "b"),
        nat={"a": opts.caller_nat, "b": opts.callee_nat},
        firewall={"a": opts.firewall, "b": opts.callee_firewall},
        links={"profile": cfg.profile, "side": "a"} if cfg.profile else None,
        seed=int(cfg.seed), pcap=pcap,
        server_ips=("198.18.0.1", "198.18.0.2", WS_SERVER[0]),
    )

async def call_in_lab(lab: Any, coturn: Any, cfg: Any, stream: Any, opts: NetnsOptions,
                      progress: Callable[[float], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Run one leg in a running lab; returns (LegRecord, netns extras)."""
    loop = asyncio.get_running_loop()
    extra: dict[str, Any] = {}
    cafile = str(coturn.dir / "turn-cert.pem") if coturn is not None else None
    with netns_sockets(loop):
        if cfg.transport == "webrtc":
            from translab.transport.webrtc import webrtc_call

            bindings = [NsBinding(lab.netns("a"), lab.host_ip("a"), cafile),
                        NsBinding(lab.netns("b"), lab.host_ip("b"), cafile)]
            selected: list[dict[str, Any]] = []
            factory = peer_factory(bindings, ice_servers(coturn, opts.ice), opts.relay_only, selected)
            rec = await webrtc_call(stream, cfg, None, connect_timeout_s=opts.connect_timeout_s,
                                    drain_s=opts.drain_s, progress=progress, peer_factory=factory)
            if selected:
                for k, v in selected[0].items():
                    extra[f"netns_pair_{k}"] = v
                extra["netns_pair"] = f"{selected[0].get('local_type')}-{selected[0].get('remote_type')}"
        else:
            from translab.transport.websocket import websocket_call

            with bound(NsBinding(lab.netns("pub"), WS_SERVER[0], None, listen=WS_SERVER)):
                rec = await websocket_call(stream, cfg, NetnsPath(lab), connect_timeout_s=opts.connect_timeout_s,
                                           drain_s=opts.drain_s, progress=progress)
    return rec, extra

def add_netns_arguments(p: Any) -> None:
    """Add the namespace backend's options to an argparse parser (for `translab call`,
    `translab nat-matrix`): --caller-nat, --callee-nat, --firewall, --callee-firewall, --ice,
    --relay-only."""
    p.add_argument("--caller-nat", default="none", choices=NAT_CHOICES, help="NAT in front of the caller")
    p.add_argument("--callee-nat", default="none", choices=NAT_CHOICES, help="NAT in front of the callee")
    p.add_argument("--firewall", default="open", choices=FIREWALLS, help="caller's LAN firewall")
    p.add_argument("--callee-firewall", default="open", choices=FIREWALLS)
    p.add_argument("--ice", default="none", choices=ICE_OPTIONS, help="ICE servers (coturn in the lab)")
    p.add_argument("--relay-only", action="store_true", help="caller uses relay candidates only")

def options_from_args(args: Any, connect_timeout_s: float = 10.0) -> NetnsOptions:
    """NetnsOptions from arguments added by :func:`add_netns_arguments`."""
    return NetnsOptions.of(NetnsConfig(**{k: getattr(args, k) for k in NETNS_FIELDS}),
                           connect_timeout_s=connect_timeout_s)
