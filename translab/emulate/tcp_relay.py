"""A TCP relay on loopback whose byte stream crosses the TCP delivery model in real time: the
emulator's WebSocket half.

A client connects to the relay; the relay connects to the target (the WebSocket server) and pumps
bytes both ways. Bytes read from one side enter the direction's streaming TCP delivery model
(``send(t_s, nbytes, rng)``) and are written to the other side only when the model says they have
been delivered in order (``poll(now_s)``), so a lost segment holds back everything behind it until
its retransmission arrives (head-of-line blocking), exactly as the model computes. The relay only
moves bytes and timestamps; every impairment decision is the model's.

Back-pressure: a direction stops reading its source while more than ``high_water`` bytes wait
(inside the model or in the destination's socket buffer), so a peer that stops reading makes the
other end's writes block instead of making the relay buffer without bound.

:meth:`TcpRelay.connect` opens a client socket to the relay and waits one emulated handshake (SYN
over the uplink's control model, SYN-ACK back over the downlink's, 1 s then doubling retransmission
timeouts on loss, as Linux), so "TCP connected" includes the emulated round trip.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Awaitable, Callable, Protocol

import numpy as np

from translab.emulate.pcap import PcapWriter, TcpFlowWriter
from translab.emulate.scheduler import DeadlineScheduler, now
from translab.metrics.bandwidth import HeaderModel

__all__ = ["StreamModel", "TcpPipeCounters", "TcpRelay"]

#: kernel socket buffer (bytes) the relay asks for on its own sockets (Linux doubles it)
RELAY_SOCKET_BUFFER = 128 * 1024

#: TCP/IPv4 header bytes per segment (20 IP + 20 TCP + 12 timestamp option)
#: IP + TCP (+ timestamps option) header bytes per segment (translab.metrics.bandwidth.HeaderModel)
TCP_IPV4_HEADER = HeaderModel(ip_version=4).tcp_header_bytes
TCP_IPV6_HEADER = HeaderModel(ip_version=6).tcp_header_bytes


class StreamModel(Protocol):
    """The streaming half of :class:`translab.link.tcp.TcpDeliveryModel`."""

    def send(self, t_s: float, nbytes: int, rng: np.random.Generator | None = None,
             rng_rev: np.random.Generator | None = None) -> Any:
        """The application writes ``nbytes`` bytes at ``t_s`` (s)."""
        ...

    def poll(self, now_s: float) -> list[tuple[float, int]]:
        """Bytes delivered in order to the receiving application by ``now_s`` (s): (time s, bytes)."""
        ...

    def next_event_s(self) -> float | None:
        """Time (s) of the model's next delivery or timer, None when idle."""
        ...


class TcpPipeCounters:
    """Bytes and segments one direction carried (app bytes; wire estimates add TCP/IP headers)."""

    def __init__(self) -> None:
        self.app_bytes_in = 0
        self.app_bytes_out = 0
        self.writes = 0
        self.max_buffered = 0

    def as_dict(self) -> dict[str, int]:
        return {"app_bytes_in": self.app_bytes_in, "app_bytes_out": self.app_bytes_out,
                "writes": self.writes, "max_buffered_bytes": self.max_buffered}


class _Pipe:
    """One direction of one relayed connection: src bytes -> model -> dst."""

    def __init__(self, name: str, model: StreamModel,
                 rngs: tuple[np.random.Generator, np.random.Generator | None], scheduler: DeadlineScheduler, t0: float, high_water: int,
                 on_delivered: Callable[[bytes], None] | None = None) -> None:
        self.name = name
        self.model = model
        self.rng, self.rng_rev = rngs
        self.scheduler = scheduler
        self.t0 = t0
        self.high_water = high_water
        self.on_delivered = on_delivered
        self.buf = bytearray()
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.src_eof = False
        self.paused = False
        self.closed = False
        self._armed: float | None = None
        self.counters = TcpPipeCounters()
        #: when a list: (monotonic s, app bytes delivered so far) after every delivery (see
        #: :meth:`TcpRelay.uplink_deliveries`)
        self.delivered: list[tuple[float, int]] | None = None

    def feed(self, data: bytes) -> None:
        if self.closed or not data:
            return
        t = now() - self.t0
        self.buf += data
        self.counters.app_bytes_in += len(data)
        self.counters.writes += 1
        self.counters.max_buffered = max(self.counters.max_buffered, len(self.buf))
        self.model.send(t, len(data), self.rng, self.rng_rev)
        self._arm()
        self._flow_control()

    def switch_model(self, model: StreamModel, rngs: tuple[Any, Any], t0: float) -> bool:
        """Continue the stream on a fresh ``model`` timed from ``t0`` (monotonic s). Only when
        nothing is in flight (every byte written so far delivered), so no byte can overtake
        another; returns whether it switched. The old model's pending ACKs and timers are dropped
        (they no longer affect delivery)."""
        if self.buf or self.closed:
            return False
        self.model = model
        self.rng, self.rng_rev = rngs
        self.t0 = t0
        self._armed = None
        return True

    def _arm(self) -> None:
        nxt = self.model.next_event_s()
        if nxt is None or self.closed:
            self._armed = None
            return
        deadline = self.t0 + float(nxt)
        if self._armed is not None and self._armed <= deadline:
            return
        self._armed = deadline
        self.scheduler.at(deadline, self._pump)

    def _pump(self) -> None:
        self._armed = None
        if self.closed:
            return
        delivered = self.model.poll(now() - self.t0)
        n = sum(int(b) for _, b in delivered)
        if n:
            chunk = bytes(self.buf[:n])
            del self.buf[:n]
            self.counters.app_bytes_out += n
            if self.dst is not None and not self.dst.is_closing():
                self.dst.write(chunk)
            if self.on_delivered is not None:
                self.on_delivered(chunk)
            if self.delivered is not None:
                self.delivered.append((now(), self.counters.app_bytes_out))
        self._arm()
        self._flow_control()
        if self.src_eof and not self.buf and self.dst is not None and not self.dst.is_closing():
            try:
                self.dst.write_eof() if self.dst.can_write_eof() else self.dst.close()
            except (OSError, RuntimeError):
                self.dst.close()

    def _flow_control(self) -> None:
        if self.src is None or self.src.is_closing():
            return
        dst_buffered = self.dst.get_write_buffer_size() if self.dst is not None else 0
        pending = len(self.buf) + dst_buffered
        if not self.paused and pending > self.high_water:
            self.src.pause_reading()
            self.paused = True
        elif self.paused and pending <= self.high_water // 2:
            self.src.resume_reading()
            self.paused = False

    def close(self) -> None:
        self.closed = True
        self.buf.clear()


class _End(asyncio.Protocol):
    """One socket of a relayed connection; data read goes into ``out`` (the pipe away from it)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.out: _Pipe | None = None
        self.inp: _Pipe | None = None
        self.on_lost: Callable[[], None] | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # the relay must not add megabytes of kernel buffering to the path
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, RELAY_SOCKET_BUFFER)
                except OSError:
                    pass
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        if self.out is None:
            self.early.append(data)
        else:
            self.out.feed(data)

    def eof_received(self) -> bool:
        if self.out is not None:
            self.out.src_eof = True
            self.out._pump()
        return True  # keep our write side open until the other direction finishes

    def resume_writing(self) -> None:
        if self.inp is not None:
            self.inp._flow_control()

    def pause_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.on_lost is not None:
            self.on_lost()


class TcpRelay:
    """Relays TCP connections from ``listen`` to ``target`` through per-direction stream models.

    ``make_models()`` returns ``(up_model, up_rngs, down_model, down_rngs)`` for each new connection
    ("up" = client to target; ``*_rngs`` = (data rng, ACK rng)). ``t0`` (monotonic s) is the models' time origin.
    """

    def __init__(self, scheduler: DeadlineScheduler, target: tuple[str, int],
                 make_models: Callable[[], tuple[StreamModel, tuple[Any, Any], StreamModel,
                                                 tuple[Any, Any]]],
                 *, listen: tuple[str, int] = ("127.0.0.1", 0), t0: float | None = None,
                 high_water: int = 256 * 1024, pcap: PcapWriter | None = None,
                 handshake: Callable[[], Awaitable[float]] | None = None,
                 ip_version: int = 4, record: bool = False) -> None:
        self.scheduler = scheduler
        self.target = target
        self.make_models = make_models
        self.listen = listen
        self.t0 = now() if t0 is None else t0
        self.high_water = high_water
        self.pcap = pcap
        self.handshake = handshake
        self.header_bytes = TCP_IPV4_HEADER if ip_version == 4 else TCP_IPV6_HEADER
        self.record = record
        self._server: asyncio.base_events.Server | None = None
        self._conns: list[tuple[_End, _End, _Pipe, _Pipe]] = []
        self._retired: dict[str, list[Any]] = {"up": [], "down": []}  # set-up models replaced by start_media
        self.address: tuple[str, int] | None = None
        self._wall_offset = time.time() - now()

    async def start(self) -> tuple[str, int]:
        """Start listening; returns the (host, port) clients should connect to."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept_factory, self.listen[0], self.listen[1])
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        return self.address

    def _accept_factory(self) -> _End:
        end = _End()
        asyncio.get_running_loop().create_task(self._open_upstream(end))
        return end

    async def _open_upstream(self, client: _End) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(_End, self.target[0], self.target[1])
        except OSError:
            if client.transport is not None:
                client.transport.abort()
            return
        up_model, up_rng, down_model, down_rng = self.make_models()
        flow = None
        if self.pcap is not None and client.transport is not None:
            peer = client.transport.get_extra_info("peername")
            flow = TcpFlowWriter(self.pcap, (peer[0], peer[1]), self.target)
        wall = self._wall_offset
        up = _Pipe("up", up_model, up_rng, self.scheduler, self.t0, self.high_water,
                   (lambda b: flow.data(now() + wall, "up", b)) if flow else None)
        down = _Pipe("down", down_model, down_rng, self.scheduler, self.t0, self.high_water,
                     (lambda b: flow.data(now() + wall, "down", b)) if flow else None)
        if self.record:
            up.delivered = []
        up.src, up.dst = client.transport, upstream.transport
        down.src, down.dst = upstream.transport, client.transport
        client.out, client.inp = up, down
        upstream.out, upstream.inp = down, up

        def lost() -> None:
            for p in (up, down):
                p.close()
            for e in (client, upstream):
                if e.transport is not None and not e.transport.is_closing():
                    e.transport.close()
            if flow is not None:
                flow.close(now() + wall)

        client.on_lost = lost
        upstream.on_lost = lost
        self._conns.append((client, upstream, up, down))
        for data in client.early:
            up.feed(data)
        client.early.clear()

    def start_media(self, t0: float, model: StreamModel, rngs: tuple[Any, Any], direction: str = "up") -> bool:
        """From now on, the newest connection's ``direction`` bytes ("up": client to target, "down":
        back) cross ``model`` timed from ``t0`` (the call clock's zero), with ``rngs`` = (data, ACK)
        generators: the media phase of a call then draws exactly what the simulator draws. Returns
        whether it switched (False: no connection yet, or setup bytes still in flight)."""
        if not self._conns:
            return False
        _, _, up, down = self._conns[-1]
        pipe = up if direction == "up" else down
        old = pipe.model
        if pipe.switch_model(model, rngs, t0):
            self._retired[direction].append(old)
            return True
        return False

    def uplink_deliveries(self) -> tuple[int, list[tuple[float, int]]]:
        """The newest connection's uplink (client to target) as the target received it: (bytes
        read from the client so far, [(monotonic s, bytes delivered to the target so far), one per
        delivery]). Needs ``record=True``; (0, []) before any connection."""
        if not self._conns:
            return 0, []
        up = self._conns[-1][2]
        return up.counters.app_bytes_in, list(up.delivered or [])

    def counters(self) -> dict[str, dict[str, int]]:
        """Per direction: app bytes in/out over all connections, plus wire estimates."""
        out: dict[str, dict[str, int]] = {}
        for name in ("up", "down"):
            pipes = [c[2] if name == "up" else c[3] for c in self._conns]
            d = {"app_bytes_in": 0, "app_bytes_out": 0, "max_buffered_bytes": 0}
            for p in pipes:
                c = p.counters.as_dict()
                d["app_bytes_in"] += c["app_bytes_in"]
                d["app_bytes_out"] += c["app_bytes_out"]
                d["max_buffered_bytes"] = max(d["max_buffered_bytes"], c["max_buffered_bytes"])
            d["connections"] = len(pipes)
            segs = retx = acks = timeouts = wire = ack_wire = 0
            models = [p.model for p in pipes] + self._retired[name]
            for m in models:
                res = getattr(m, "result", None)
                if res is None:
                    continue
                r = res()
                segs += r.segments_sent
                retx += r.retransmissions
                acks += r.acks
                timeouts += r.timeouts
                wire += r.segments_sent * int(getattr(m, "header_bytes", 52))
                ack_wire += r.acks * int(getattr(m, "ack_bytes", 52))
            wire += d["app_bytes_in"]
            d.update({"segments": segs, "retransmissions": retx, "acks": acks, "timeouts": timeouts,
                      "wire_bytes": wire, "ack_wire_bytes": ack_wire})
            out[name] = d
        return out

    async def connect(self, timeout_s: float = 10.0) -> tuple[socket.socket, float]:
        """A client socket connected through the relay after the emulated handshake; returns it and
        the time (monotonic s) the handshake completed. Raises ``ConnectionError`` on failure."""
        if self.address is None:
            raise RuntimeError("relay not started")
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, self.address), timeout_s)
            if self.handshake is not None:
                await asyncio.wait_for(self.handshake(), timeout_s)
        except BaseException:
            sock.close()
            raise
        return sock, now()

    async def close(self) -> None:
        """Stop listening and close every relayed connection."""
        if self._server is not None:
            self._server.close()
            for client, upstream, up, down in self._conns:
                for p in (up, down):
                    p.close()
                for e in (client, upstream):
                    if e.transport is not None:
                        e.transport.abort()
            await self._server.wait_closed()
            self._server = None
        await asyncio.sleep(0)
