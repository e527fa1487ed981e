"""Datagrams through a link model in real time: the emulator's UDP half.

A :class:`DatagramLink` is one direction of an emulated path. :meth:`DatagramLink.submit` stamps a
datagram with the emulator clock, asks the direction's link model (a :class:`translab.link.LinkChain`
or anything with its ``apply(send_s, size, rng)``) what becomes of it (lost, delayed, duplicated) and
schedules each surviving copy's delivery at its absolute arrival time on a
:class:`~translab.emulate.scheduler.DeadlineScheduler`. The link model is called with one packet at a
time in send order, which the link contract guarantees gives the same result as the simulator's
batch call with the same rng stream. No impairment logic lives here.

Media and control: RTP media packets draw from the direction's *media* model and rng (the same
stream the simulator uses for the same seed), so a live call and its simulation see the same loss
and delay draws per media packet. STUN, DTLS and RTCP cross a second instance of the same profile's
model with its own rng (``control``), so they are impaired alike without shifting the media draws.
Pass the same model twice (``control=None``) to make every datagram share one model instead.
Retransmissions (RTP with the negotiated RTX payload type, :meth:`DatagramLink.route_retransmissions`)
cross the media model too (its queue and loss state) but draw their variates from side streams, as
in the simulator, so the original packets' draws stay those of the call without retransmissions.

:func:`attach_ice` puts a peer's aioice sockets behind the links: outgoing datagrams (``egress``) are
held until their arrival time and then really sent; incoming ones (``ingress``, for a peer whose
other end is outside the process) are handed to aioice at their arrival time. Both peers of an
in-process call use ``egress`` only (the caller's egress is "up", the callee's "down").

Launch times (:func:`launch_at`): a sender may name the moment a datagram is to enter the link, as
Linux's ``SO_TXTIME`` with the ETF qdisc lets a media server name each packet's transmit time. A
datagram handed over early is held until then and enters the link model at exactly that time; one
handed over late enters at once, and its lateness is kept (``DatagramLink.late_launches_s``), so a
host stall stays visible. Live protected calls use it to put every datagram on the wire at the time
the simulator sends it (translab.protection.timing).

Units: times in seconds, sizes in bytes. Wire size of a datagram = payload + 8 (UDP) + 20 (IPv4) or
40 (IPv6).
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from translab.emulate.pcap import PcapWriter
from translab.emulate.scheduler import DeadlineScheduler, now
from translab.link.base import LinkModel
from translab.metrics.bandwidth import HeaderModel

__all__ = ["LinkModel", "DirectionCounters", "DatagramLink", "classify_datagram", "attach_ice",
           "launch_at", "launch_time", "UDP_IPV4_OVERHEAD", "UDP_IPV6_OVERHEAD"]

#: IP + UDP header bytes by IP version (translab.metrics.bandwidth.HeaderModel, the one header model)
UDP_IPV4_OVERHEAD = HeaderModel(ip_version=4).udp_header_bytes
UDP_IPV6_OVERHEAD = HeaderModel(ip_version=6).udp_header_bytes


#: the launch time (monotonic s) asked for the datagrams sent in the current context (None: at once)
_LAUNCH_AT: ContextVar[float | None] = ContextVar("translab_launch_at", default=None)


@contextmanager
def launch_at(t: float | None) -> Iterator[None]:
    """Datagrams sent through an emulated link inside this block (in this task, and in tasks and
    callbacks it starts) enter the link at ``t`` (monotonic s): held until then when handed over
    early, at once (counted late) when after it; ``t`` None: at once (see the module docstring)."""
    token = _LAUNCH_AT.set(t)
    try:
        yield
    finally:
        _LAUNCH_AT.reset(token)


def launch_time() -> float:
    """When a datagram sent now enters the link (monotonic s): the launch time asked for by the
    enclosing :func:`launch_at`, or now when none was asked or it has passed."""
    t, at = now(), _LAUNCH_AT.get()
    return t if at is None or at < t else at


def classify_datagram(data: bytes) -> str:
    """RFC 7983 demultiplexing of a WebRTC datagram: "stun", "dtls", "rtp", "rtcp" or "other"."""
    if not data:
        return "other"
    b = data[0]
    if b < 4:
        return "stun"
    if 20 <= b <= 63:
        return "dtls"
    if 128 <= b <= 191:
        if len(data) > 1 and 192 <= data[1] <= 223:
            return "rtcp"
        return "rtp"
    return "other"


@dataclass
class DirectionCounters:
    """What one direction carried. ``*_bytes`` are wire bytes (IP + UDP/TCP headers included)."""

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_delivered: int = 0
    bytes_delivered: int = 0
    packets_lost: int = 0
    packets_duplicated: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "packets_sent": self.packets_sent, "bytes_sent": self.bytes_sent,
            "packets_delivered": self.packets_delivered, "bytes_delivered": self.bytes_delivered,
            "packets_lost": self.packets_lost, "packets_duplicated": self.packets_duplicated,
            "packets_by_kind": dict(self.by_kind),
        }


class DatagramLink:
    """One direction of the emulated UDP path.

    ``media`` / ``media_rng``: the model and rng media (RTP) datagrams draw from; ``control`` /
    ``control_rng``: for everything else (defaults to the media ones: one shared model).
    ``t0`` is the emulator clock time (monotonic s) that the link models see as 0 s.
    ``classify`` maps a datagram to a kind; kinds in ``media_kinds`` use the media model.
    """

    def __init__(self, name: str, scheduler: DeadlineScheduler, media: LinkModel,
                 media_rng: np.random.Generator, *, control: LinkModel | None = None,
                 control_rng: np.random.Generator | None = None, t0: float | None = None,
                 ip_overhead: int = UDP_IPV4_OVERHEAD, pcap: PcapWriter | None = None,
                 classify: Callable[[bytes], str] = classify_datagram,
                 media_kinds: tuple[str, ...] = ("rtp",)) -> None:
        self.name = name
        self.scheduler = scheduler
        self.media, self.media_rng = media, media_rng
        self.control = control if control is not None else media
        self.control_rng = control_rng if control_rng is not None else media_rng
        self.t0 = now() if t0 is None else t0
        #: the clock origin media datagrams are timed from (the call clock's 0 s); set by the call
        #: before media starts so time-dependent models see the same times as in simulation
        self.media_t0 = self.t0
        self.ip_overhead = ip_overhead
        self.pcap = pcap
        self.classify = classify
        self.media_kinds = media_kinds
        self.counters = DirectionCounters()
        self._wall_offset = time.time() - now()
        #: per media datagram: (send_s, arrival_s or NaN) on the link clock, for diagnostics
        self.media_log: list[tuple[float, float]] = []
        #: when set to a dict: (ssrc, rtp seq) -> monotonic s each RTP datagram entered the link
        #: (its SRTP header is in the clear); used by ``translab serve`` for outside callers
        self.rtp_entry: dict[tuple[int, int], float] | None = None
        #: RTP payload type of retransmissions (RFC 4588) and the side streams they draw from
        self.rtx_pt: int | None = None
        self.rtx_streams: list[np.random.Generator] | None = None
        #: when set (:meth:`route_rtcp`): the model and generator RTCP datagrams cross instead of the control's
        self.rtcp_route: tuple[Any, np.random.Generator] | None = None
        #: when set: called with each delivered copy and its arrival time (monotonic s, as the link
        #: model gave it, before the scheduler's release lateness) just before it is handed on: the
        #: time a capture at the far end of the emulated wire stamps (translab.transport.webrtc.WireTimes)
        self.on_release: Callable[[bytes, float], None] | None = None
        #: when set: called with each datagram and the time it entered the link (monotonic s: its
        #: launch time when it was held for one, else the moment it was submitted)
        self.on_enter: Callable[[bytes, float], None] | None = None
        #: how late (s) each datagram handed over after its launch time was (it entered at once)
        self.late_launches_s: list[float] = []
        #: datagrams held for their launch time
        self.held = 0

    def route_retransmissions(self, payload_type: int, rng: np.random.Generator) -> None:
        """RTP datagrams with ``payload_type`` (in the clear in SRTP) are kind "rtx": they cross the
        media model with variates from ``media.side_streams(rng)`` (the media model must be a
        :class:`translab.link.chain.LinkChain`)."""
        self.rtx_pt = int(payload_type)
        self.rtx_streams = self.media.side_streams(rng)  # type: ignore[attr-defined]

    def route_rtcp(self, model: Any, rng: np.random.Generator) -> None:
        """RTCP datagrams (kind "rtcp", when it is not a media kind) cross ``model`` with ``rng``
        instead of the control model (translab.protection.rtcp: reports with their own draws on the
        call clock, as the simulator's); STUN and DTLS keep the control model."""
        self.rtcp_route = (model, rng)

    def submit(self, data: bytes, deliver: Callable[[bytes], None],
               addrs: tuple[tuple[str, int], tuple[str, int]] | None = None,
               kind: str | None = None, at: float | None = None) -> int | None:
        """Send ``data`` across the link; ``deliver(data)`` runs at each copy's arrival time.
        ``addrs`` = (src, dst) for the pcap; ``kind`` overrides :func:`classify_datagram` (a kind not
        in ``media_kinds`` crosses the control model); ``at``: its launch time (monotonic s; see the
        module docstring). Returns the copies scheduled (0 = lost), None when held for ``at``."""
        t = now()
        if at is not None:
            if at > t:
                self.held += 1
                self.scheduler.at(at, functools.partial(self._launch, data, deliver, addrs, kind, at))
                return None
            self.late_launches_s.append(t - at)
        return self._enter(data, deliver, addrs, kind, t)

    def _launch(self, data: bytes, deliver: Callable[[bytes], None],
                addrs: tuple[tuple[str, int], tuple[str, int]] | None, kind: str | None, at: float) -> None:
        """A held datagram's launch time has come."""
        self._enter(data, deliver, addrs, kind, at)

    def _enter(self, data: bytes, deliver: Callable[[bytes], None],
               addrs: tuple[tuple[str, int], tuple[str, int]] | None, kind: str | None, t: float) -> int:
        """``data`` enters the link at ``t`` (monotonic s)."""
        if self.on_enter is not None:
            self.on_enter(data, t)
        kind = kind or self.classify(data)
        side = None
        if kind == "rtp" and self.rtx_pt is not None and len(data) > 1 and (data[1] & 0x7F) == self.rtx_pt:
            kind, side = "rtx", self.rtx_streams
        is_media = kind in self.media_kinds or side is not None
        origin = self.media_t0 if is_media else self.t0
        send_s = t - origin
        overhead = self.ip_overhead
        if addrs is not None and ":" in addrs[1][0]:  # an IPv6 destination
            overhead = UDP_IPV6_OVERHEAD
        wire = len(data) + overhead
        c = self.counters
        c.packets_sent += 1
        c.bytes_sent += wire
        c.by_kind[kind] = c.by_kind.get(kind, 0) + 1
        if is_media:
            model, rng = self.media, self.media_rng
        elif kind == "rtcp" and self.rtcp_route is not None:
            model, rng = self.rtcp_route
        else:
            model, rng = self.control, self.control_rng
        if side is not None:
            arrival = np.asarray(self.media.apply_one(send_s, wire, rng, streams=side),  # type: ignore[attr-defined]
                                 dtype=np.float64)
        else:
            _, arrival = model.apply(np.array([send_s], dtype=np.float64),
                                     np.array([wire], dtype=np.int64), rng)
        n = len(arrival)
        if is_media and side is None:
            self.media_log.append((send_s, float(arrival[0]) if n else float("nan")))
            if self.rtp_entry is not None and len(data) >= 12:
                seq, ssrc = int.from_bytes(data[2:4], "big"), int.from_bytes(data[8:12], "big")
                self.rtp_entry.setdefault((ssrc, seq), t)
        if n == 0:
            c.packets_lost += 1
            return 0
        c.packets_duplicated += n - 1
        for a in arrival:
            due = origin + float(a)
            self.scheduler.at(due, functools.partial(self._release, data, deliver, addrs, wire, due))
        return n

    def _release(self, data: bytes, deliver: Callable[[bytes], None],
                 addrs: tuple[tuple[str, int], tuple[str, int]] | None, wire: int, due: float) -> None:
        self.counters.packets_delivered += 1
        self.counters.bytes_delivered += wire
        if self.pcap is not None and addrs is not None:
            self.pcap.udp(now() + self._wall_offset, addrs[0], addrs[1], data)
        if self.on_release is not None:
            self.on_release(data, due)
        deliver(data)


class _EgressTransport:
    """Stands in for an aioice socket's asyncio DatagramTransport: ``sendto`` goes through the link
    and reaches the real transport at the arrival time; everything else is the real transport's."""

    def __init__(self, real: Any, link: DatagramLink) -> None:
        self._real = real
        self._link = link
        self._local = real.get_extra_info("sockname")

    def sendto(self, data: bytes, addr: Any = None) -> None:
        real = self._real
        local = (self._local[0], self._local[1]) if self._local else ("0.0.0.0", 0)
        dst = (addr[0], addr[1]) if addr else ("0.0.0.0", 0)

        def deliver(d: bytes) -> None:
            if not real.is_closing():
                real.sendto(d, addr)

        self._link.submit(bytes(data), deliver, (local, dst), at=_LAUNCH_AT.get())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def attach_ice(ice_connection: Any, *, egress: DatagramLink | None = None,
               ingress: DatagramLink | None = None) -> int:
    """Put every socket of an aioice ``Connection`` (after candidate gathering) behind the links.

    Returns the number of sockets wrapped. Call it after ``setLocalDescription`` (aiortc gathers
    there) and before connectivity checks start (``setRemoteDescription`` on the other side of the
    same peer), so the first STUN check already crosses the link.
    """
    n = 0
    for proto in list(getattr(ice_connection, "_protocols", [])):
        if getattr(proto, "_translab_wrapped", False):
            continue
        if egress is not None:
            proto.transport = _EgressTransport(proto.transport, egress)
        if ingress is not None:
            original = proto.datagram_received
            sock = proto.transport.get_extra_info("sockname")
            local = (sock[0], sock[1]) if sock else ("0.0.0.0", 0)

            def received(data: bytes, addr: Any, _orig: Callable = original, _local: tuple = local,
                         _proto: Any = proto) -> None:
                ingress.submit(bytes(data), lambda d: _orig(d, addr), ((addr[0], addr[1]), _local))

            proto.datagram_received = received
        proto._translab_wrapped = True
        n += 1
    return n


def ice_connections_of(pc: Any) -> list[Any]:
    """The aioice Connection objects behind an aiortc RTCPeerConnection (one with BUNDLE)."""
    out: list[Any] = []
    for t in pc.getTransceivers():
        for side in (t.sender, t.receiver):
            dtls = getattr(side, "transport", None)
            ice = getattr(dtls, "transport", None)
            gatherer = getattr(ice, "iceGatherer", None)
            conn = getattr(gatherer, "_connection", None)
            if conn is not None and all(conn is not c for c in out):
                out.append(conn)
    return out
