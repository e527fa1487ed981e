"""The seam between a transport and the network it runs over: what ``webrtc_call`` and
``websocket_call`` need of a network path. The in-process emulator
(:class:`translab.emulate.emulator.LiveEmulator`) and the namespace lab
(:class:`translab.emulate.netns.call.NetnsPath`) implement it; ``None`` means loopback without
emulation. Peers are made by a factory passed to ``webrtc_call`` (``peer_factory``), so a backend
that must configure them (ICE servers, relay-only, namespace binding) does so without patching the
transport module."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TcpConnector(Protocol):
    """Opens the client's TCP connection to a WebSocket server across the path."""

    async def connect(self, timeout_s: float) -> tuple[Any, float]:
        """A connected socket and when the connection was established (monotonic s)."""
        ...


@runtime_checkable
class NetworkPath(Protocol):
    """``scheduler``: the deadline scheduler the sender paces by (None: the sender paces itself with
    the event loop); ``tcp_media_aligned``: the path's TCP model started its media clock with the
    call's (reported as ``emu_tcp_media_aligned``)."""

    scheduler: Any

    @property
    def tcp_media_aligned(self) -> bool: ...

    def attach_peer(self, pc: Any, egress: str, ingress: str | None = None) -> None:
        """Send ``pc``'s datagrams through the ``egress`` direction ("up"/"down")."""
        ...

    async def tcp_relay(self, target: tuple[str, int]) -> TcpConnector:
        """A connector whose connection to ``target`` (host, port) crosses the path."""
        ...

    def set_media_origin(self, t0: float) -> None:
        """The call clock's zero (monotonic s): the first sample's capture."""
        ...
