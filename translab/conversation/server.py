"""The realtime-model stand-in on a real WebSocket (websockets' asyncio server, loopback by default):
a thin adapter that feeds :class:`~translab.conversation.model.RealtimeModel` the wall clock.

One model per connection; the call clock starts when the connection opens, or at ``origin_s`` (a
monotonic time, ``translab.emulate.scheduler.now``) once the caller has set it: a live conversation
sets it to its own call clock's zero, so the server's logs and the caller's share one clock. Each
connection's :class:`Session` logs every client event with the time it arrived and every server
event with the time it really left (after the VAD's scoring, after the pacer's wake-up): the times
a live turn's budget is split at. Client events are
decoded with :func:`~translab.conversation.protocol.decode_realtime` (a malformed one gets an
``error`` event back, as the API answers, and the session goes on); scheduled reply audio is sent
by a task that sleeps until the model's next send time, so pacing on the wire is the model's.
The model's time for an append is when it arrived; events it decides then leave after Silero has
scored it (about 7 ms per 32 ms chunk on the 2-core machine), so they are that much late on the
wire, while the think time and pacing still count from the arrival.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from translab.conversation import protocol as p
from translab.conversation.legs import leg_rng
from translab.conversation.model import Emitted, ModelParams, RealtimeModel


@dataclass
class Session:
    """One connection: its model, the client events with their arrival times and the server events
    with their real send times (s on the server's clock: see the module docstring)."""

    model: RealtimeModel
    received: list[tuple[float, p.RealtimeEvent]] = field(default_factory=list)
    sent: list[Emitted] = field(default_factory=list)


class ModelServer:
    """Serve the stand-in at ``ws://host:port/`` (port 0: any free port; see :attr:`port`).
    ``origin_s``: the clock's zero (monotonic s; None: each connection's opening)."""

    def __init__(self, replies: Sequence[np.ndarray], params: ModelParams = ModelParams(), seed: int = 7,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.replies, self.params, self.seed = list(replies), params, seed
        self.host, self.port = host, port
        self.sessions: list[Session] = []  # one per connection, for inspection after a call
        self.origin_s: float | None = None
        self._server: Any = None
        self._connections = 0

    @property
    def models(self) -> list[RealtimeModel]:
        """Each connection's model."""
        return [s.model for s in self.sessions]

    async def __aenter__(self) -> "ModelServer":
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, self.host, self.port, max_size=2**22)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    async def _handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        opened = loop.time()
        self._connections += 1
        # the first connection draws think times as the simulation does for the same seed (paired runs)
        name = "think" if self._connections == 1 else f"think:{self._connections}"
        model = RealtimeModel(self.replies, leg_rng(self.seed, name), self.params)
        session = Session(model)
        self.sessions.append(session)
        wake = asyncio.Event()

        def clock() -> float:
            return loop.time() - (opened if self.origin_s is None else self.origin_s)

        async def send(events: list[Emitted]) -> None:
            for e in events:
                session.sent.append(Emitted(clock(), e.event))
                await ws.send(p.encode(e.event))

        async def pacer() -> None:
            while True:
                due = model.next_due_s()
                timeout = None if due is None else max(0.0, due - clock())
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
                wake.clear()
                await send(model.due(clock()))

        task = asyncio.create_task(pacer())
        try:
            async for message in ws:
                now = clock()
                try:
                    event = p.decode_realtime(message)
                except p.ProtocolError as err:
                    await send([Emitted(now, p.ErrorEvent(f"event_err_{int(now * 1000)}", str(err), param=err.field))])
                    continue
                session.received.append((now, event))
                await send(model.due(now) + model.receive(event, now))
                wake.set()  # the model may have scheduled or cancelled reply audio
        except ConnectionClosed:
            pass
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
