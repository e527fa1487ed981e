"""A very small HTTP/1.1 signalling endpoint on asyncio streams (aiortc ships no aiohttp).

* ``POST /offer`` with an SDP offer as the body (``Content-Type: application/sdp``) or as JSON
  ``{"type": "offer", "sdp": "..."}``; the answer comes back in the same form.
* ``GET /`` : a short text saying how to call; ``GET /calls``: JSON list of calls so far.

One request per connection (``Connection: close``); bodies above ``max_body_bytes`` get 413; a
request that does not arrive within ``timeout_s`` is dropped. Errors from the offer handler that
are ``ValueError`` (a bad SDP) become 400 with the message.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

__all__ = ["SignallingServer"]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 413: "Payload Too Large", 500: "Internal Server Error"}


class SignallingServer:
    """HTTP signalling: ``on_offer(sdp) -> answer_sdp``; ``info() -> dict`` for ``GET /calls``."""

    def __init__(self, on_offer: Callable[[str], Awaitable[str]], *, host: str = "127.0.0.1",
                 port: int = 0, info: Callable[[], Any] | None = None, help_text: str = "",
                 max_body_bytes: int = 64 * 1024, timeout_s: float = 10.0) -> None:
        self.on_offer = on_offer
        self.host, self.port = host, port
        self.info = info
        self.help_text = help_text
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound (host, port) (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        return self.address

    async def close(self) -> None:
        """Stop listening and cancel the requests in progress (idempotent)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            status, ctype, body = await asyncio.wait_for(self._request(reader), self.timeout_s)
        except asyncio.TimeoutError:
            status, ctype, body = 408, "text/plain", b"request timeout\n"
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            status, ctype, body = 400, "text/plain", b"malformed request\n"
        try:
            head = (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nAccess-Control-Allow-Origin: *\r\n"
                    f"Connection: close\r\n\r\n")
            writer.write(head.encode("ascii") + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _request(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > self.max_body_bytes:
            return 413, "text/plain", f"body over {self.max_body_bytes} bytes\n".encode()
        body = await reader.readexactly(length) if length else b""
        path = path.split("?", 1)[0]
        if method == "OPTIONS":
            return 200, "text/plain", b""
        if path == "/" and method == "GET":
            return 200, "text/plain; charset=utf-8", self.help_text.encode()
        if path == "/calls" and method == "GET":
            return 200, "application/json", json.dumps(self.info() if self.info else [], default=str).encode()
        if path != "/offer":
            return 404, "text/plain", b"not found\n"
        if method != "POST":
            return 405, "text/plain", b"POST an SDP offer\n"
        ctype = headers.get("content-type", "application/sdp").split(";")[0].strip()
        text = body.decode("utf-8", "replace")
        as_json = ctype == "application/json"
        if as_json:
            try:
                msg = json.loads(text)
                sdp = msg["sdp"]
                if msg.get("type", "offer") != "offer":
                    return 400, "text/plain", b"type must be offer\n"
            except (json.JSONDecodeError, KeyError, TypeError):
                return 400, "text/plain", b'JSON body must be {"type":"offer","sdp":"..."}\n'
        else:
            sdp = text
        if "v=0" not in sdp:
            return 400, "text/plain", b"body is not an SDP offer\n"
        try:
            answer = await self.on_offer(sdp)
        except ValueError as err:
            return 400, "text/plain", f"bad offer: {err}\n".encode()
        if as_json:
            return 200, "application/json", json.dumps({"type": "answer", "sdp": answer}).encode()
        return 200, "application/sdp", answer.encode()
