"""A live call on the namespace backend: the caller in LAN ``a``, the callee (WebRTC) in LAN ``b``
or the WebSocket server in ``pub`` (198.18.0.3:443, like a cloud voice endpoint), each behind its
own NAT and firewall, with coturn in ``pub`` for STUN/TURN. The profile's link models sit on the
caller's access link (``up`` on a's up-link, ``down`` on its down-link), seeded like the simulator.

The transports are the live helper's own (:func:`translab.transport.webrtc.webrtc_call`,
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
import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from translab.emulate.netns.aio import NsBinding, bound, netns_sockets, run_ending_on_sigterm
from translab.emulate.netns.firewall import FIREWALL_PROFILES
from translab.errors import check_choice
from translab.link.nat import PRESETS

ICE_OPTIONS: tuple[str, ...] = ("none", "stun", "turn-udp", "turn-tcp", "turns-443")
NAT_CHOICES: tuple[str, ...] = ("none",) + tuple(PRESETS)
WS_SERVER = ("198.18.0.3", 443)


@dataclass(frozen=True)
class NetnsOptions:
    """Where the call runs: NAT presets per side (``none`` = public address), the caller's and the
    callee's firewall profile, ICE option, relay-only, and timeouts (s)."""

    caller_nat: str = "none"
    callee_nat: str = "none"
    firewall: str = "open"
    callee_firewall: str = "open"
    ice: str = "none"
    relay_only: bool = False
    connect_timeout_s: float = 10.0
    drain_s: float = 1.0

    def __post_init__(self) -> None:
        check_choice("caller_nat", self.caller_nat, NAT_CHOICES)
        check_choice("callee_nat", self.callee_nat, NAT_CHOICES)
        check_choice("firewall", self.firewall, FIREWALL_PROFILES)
        check_choice("callee_firewall", self.callee_firewall, FIREWALL_PROFILES)
        check_choice("ice", self.ice, ICE_OPTIONS)
        if self.relay_only and self.ice not in ("turn-udp", "turn-tcp", "turns-443"):
            from translab.errors import ConfigError

            raise ConfigError("relay_only", True, "only with a TURN ice option (turn-udp, turn-tcp, turns-443)")


class _NetnsEmu:
    """What websocket_call needs of an emulator, for the namespace backend: no scheduler (the
    sender paces itself), a "relay" that opens the client's TCP connection inside LAN ``a``."""

    scheduler = None
    # The in-process emulator aligns its TCP model with the media clock; real kernel TCP needs no
    # alignment, so this is reported as False.
    _tcp_media_started = False

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


@contextlib.contextmanager
def _peers_in_namespaces(bindings: list[NsBinding], servers: list[Any], relay_only: bool,
                         selected: list[dict[str, Any]]) -> Iterator[None]:
    """Make webrtc_call's peers (caller first, then callee) gather inside their namespaces."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    import translab.transport.webrtc as webrtc

    order = iter(range(len(bindings)))
    orig = webrtc.new_peer

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

        pc.setLocalDescription = set_local  # type: ignore[method-assign]
        pc.close = closing  # type: ignore[method-assign]
        return pc

    webrtc.new_peer = factory
    try:
        yield
    finally:
        webrtc.new_peer = orig


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
            with _peers_in_namespaces(bindings, ice_servers(coturn, opts.ice), opts.relay_only, selected):
                rec = await webrtc_call(stream, cfg, None, connect_timeout_s=opts.connect_timeout_s,
                                        drain_s=opts.drain_s, progress=progress)
            if selected:
                for k, v in selected[0].items():
                    extra[f"netns_pair_{k}"] = v
                extra["netns_pair"] = f"{selected[0].get('local_type')}-{selected[0].get('remote_type')}"
        else:
            from translab.transport.websocket import websocket_call

            with bound(NsBinding(lab.netns("pub"), WS_SERVER[0], None, listen=WS_SERVER)):
                rec = await websocket_call(stream, cfg, _NetnsEmu(lab), connect_timeout_s=opts.connect_timeout_s,
                                           drain_s=opts.drain_s, progress=progress)
    return rec, extra


def netns_call(cfg: Any, opts: NetnsOptions | None = None, *, out_dir: str | Path | None = None,
               pcap: str | Path | None = None, progress: Callable[[float], None] | None = None,
               run_dir: str | Path | None = None) -> Any:
    """One live call on the namespace backend (blocking, real time); a CallResult whose summary has
    ``mode == "live"``, ``backend == "netns"`` and the ``netns_*`` figures. Raises
    :class:`translab.emulate.netns.system.NetnsUnavailable` (one line) without root."""
    from translab.emulate.coturn import Coturn
    from translab.emulate.netns.lab import Lab
    from translab import live
    from translab.live import _failed_summary, _stock_figures, build_live_trace
    from translab.simulate import CallResult, prepare_call, summarise, write_artefacts

    opts = opts or NetnsOptions()
    t_wall = time.perf_counter()
    cfg, _, stream = prepare_call(cfg)
    from translab.protection.sim import refuse_live

    refuse_live(cfg)  # NACK / RED / ABR exist in simulated calls only
    extra: dict[str, Any] = {"backend": "netns", "netns_caller_nat": opts.caller_nat,
                             "netns_callee_nat": opts.callee_nat, "netns_firewall": opts.firewall,
                             "netns_ice": opts.ice, "netns_relay_only": opts.relay_only,
                             "dtx_skipped": stream.dtx_skipped}
    if run_dir is None and out_dir is not None:
        run_dir = Path(out_dir) / "netns"  # forwarder stats and coturn's config and log, kept with the call
    own_tmp = run_dir is None
    with Lab(lab_config_for(cfg, opts, pcap), run_dir=run_dir) as lab:
        coturn = Coturn(lab).start() if (opts.ice != "none" and cfg.transport == "webrtc") else None
        try:
            with _realtime(live):
                rec, more = run_ending_on_sigterm(call_in_lab(lab, coturn, cfg, stream, opts, progress))
        finally:
            usage = coturn.stop() if coturn is not None else {}
        if cfg.transport == "websocket":  # how the client's kernel TCP repaired losses
            from translab.emulate.netns.kernel_stats import tcp_counters

            extra.update({f"kernel_tcp_{k}": v for k, v in tcp_counters(lab, "a").items()})
    extra.update(more)
    extra["netns_connected"] = rec.status == "ok"
    if usage:
        extra["netns_relay_sessions"] = usage["sessions"]
        extra["netns_relay_bytes"] = usage["received_bytes"] + usage["sent_bytes"]
        extra["netns_relay_packets"] = usage["received_packets"] + usage["sent_packets"]
        extra["netns_relay_from_clients_bytes"] = usage["received_bytes"]
        extra["netns_relay_to_clients_bytes"] = usage["sent_bytes"]
        extra["netns_relay_peer_bytes"] = usage.get("peer_received_bytes", 0) + usage.get("peer_sent_bytes", 0)
    st = lab.stats
    for port, n in st.get("bytes_out", {}).items():
        extra[f"netns_bytes_to_{port}"] = n
    for port, n in st.get("packets_out", {}).items():
        extra[f"netns_packets_to_{port}"] = n
    extra["netns_link_lost"] = st.get("link_lost", 0)
    extra["netns_drops"] = json.dumps(st.get("drops", {}), sort_keys=True)
    extra["netns_release_late_p99_ms"] = st.get("release_late_p99_ms", math.nan)
    extra["netns_run_dir"] = str(lab.run_dir)
    extra["netns_prefix"] = lab.names.prefix
    if own_tmp and rec.status == "ok":  # nothing to look into: don't litter /tmp (failed runs keep logs)
        import shutil

        shutil.rmtree(lab.run_dir, ignore_errors=True)
        extra["netns_run_dir"] = ""
    extra.update(rec.extra)
    extra.update(_stock_figures(rec, float(stream.lookahead_ms)))
    trace = build_live_trace(cfg, stream, rec)
    owd = ((trace["arrival_s"] - trace["send_s"]) * 1e3).dropna()
    if len(owd):  # one-way delay of media packets (ms): relay cells minus direct cells = relay cost
        extra["netns_one_way_p50_ms"] = float(owd.median())
        extra["netns_one_way_p95_ms"] = float(owd.quantile(0.95))
    if usage and rec.status == "ok" and len(stream.capture_s):
        media_s = float(stream.capture_s[-1] - stream.capture_s[0]) + float(cfg.frame_ms) / 1e3
        extra["netns_relay_kbps"] = extra["netns_relay_bytes"] * 8 / media_s / 1e3
        # what entered the relay from the call's clients (one talker's stream here, the audio is
        # one-way, plus RTCP), kbit/s: TURN ChannelData/Send payloads as coturn counts them
        extra["netns_relay_in_kbps"] = extra["netns_relay_from_clients_bytes"] * 8 / media_s / 1e3
    if rec.status != "ok":
        result = CallResult(summary=_failed_summary(cfg, rec, extra), trace=trace,
                            audio=np.zeros(0, dtype=np.float32), playout=None)
    else:
        summary, out = summarise(cfg, trace, stream.reference, mode="live", extra=extra)
        summary.update({f"setup_{k}_ms": v for k, v in rec.setup_ms.items()})
        result = CallResult(summary=summary, trace=trace, audio=out.audio, playout=out)
    result.wall_s = time.perf_counter() - t_wall
    if out_dir is not None:
        from translab.live import _write_failed

        (write_artefacts if rec.status == "ok" else _write_failed)(result, out_dir)
    return result


def _realtime(live: Any) -> Any:
    """The live module's real-time mode (short GIL switch interval) under whichever name it has."""
    for name in ("realtime_mode", "fast_gil_switch"):
        if hasattr(live, name):
            return getattr(live, name)()
    return contextlib.nullcontext()


def add_netns_arguments(p: Any) -> None:
    """Add the namespace backend's options to an argparse parser (for `translab call`,
    `translab nat-matrix`): --caller-nat, --callee-nat, --firewall, --callee-firewall, --ice,
    --relay-only."""
    p.add_argument("--caller-nat", default="none", choices=NAT_CHOICES, help="NAT in front of the caller")
    p.add_argument("--callee-nat", default="none", choices=NAT_CHOICES, help="NAT in front of the callee")
    p.add_argument("--firewall", default="open", choices=FIREWALL_PROFILES, help="caller's LAN firewall")
    p.add_argument("--callee-firewall", default="open", choices=FIREWALL_PROFILES)
    p.add_argument("--ice", default="none", choices=ICE_OPTIONS, help="ICE servers (coturn in the lab)")
    p.add_argument("--relay-only", action="store_true", help="caller uses relay candidates only")


def options_from_args(args: Any, connect_timeout_s: float = 10.0) -> NetnsOptions:
    """NetnsOptions from arguments added by :func:`add_netns_arguments`."""
    return NetnsOptions(caller_nat=args.caller_nat, callee_nat=args.callee_nat, firewall=args.firewall,
                        callee_firewall=args.callee_firewall, ice=args.ice, relay_only=args.relay_only,
                        connect_timeout_s=connect_timeout_s)
