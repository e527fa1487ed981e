"""HTTP signalling for WebRTC callers, on aiohttp.

* ``POST /offer`` with an SDP offer as the body (``Content-Type: application/sdp``) or as JSON
  ``{"type": "offer", "sdp": "..."}``; the answer comes back in the same form.
* ``GET /``: the caller page (an HTML page that calls this server from a browser), or a short text
  when no page is given; ``GET /help``: that text; ``GET /calls``: JSON list of calls so far.

Browsers and origins. A page served from another origin reaches ``/offer`` only through CORS: the
browser first sends a preflight ``OPTIONS /offer`` and then the ``POST``, both with an ``Origin``
header. Only origins on the allow-list are answered (the preflight with
``Access-Control-Allow-Origin: <that origin>`` plus the allowed methods and headers; never ``*``);
any request carrying an ``Origin`` that is not allowed is refused with 403, so an arbitrary web page
the user visits cannot start calls through the lab (a ``text/plain`` POST needs no preflight, hence
the check on every request, not only on preflights). Loopback origins (``localhost``, 127.0.0.0/8,
``[::1]``, any port, http or https) are allowed by default; more are added with ``allow_origins``.
Requests without an ``Origin`` (curl, aiortc, any non-browser client) are not affected.

Bodies above ``max_body_bytes`` get 413. An offer handler's ``ValueError`` (a bad SDP) becomes 400
with the message. ``ssl_context``: serve HTTPS.

WHIP (RFC 9725), when ``on_whip`` is given: ``POST /whip`` with an SDP offer
(``Content-Type: application/sdp``; anything else gets 415) is answered ``201 Created`` with the SDP
answer and ``Location: /whip/<session>``; ``DELETE`` of that URL ends the session (200; 404 for an
unknown one). Trickle ICE and ICE restarts (``PATCH``) are not supported (405).

The client side is :func:`post_offer` (one HTTP/1.1 ``POST`` of a JSON offer) and :func:`whip_offer` /
:func:`whip_delete`, over a socket the caller has already connected (through the emulator's TCP
relay, so the exchange crosses the link); all three use :func:`http_exchange`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urljoin, urlsplit

from translab.errors import ConfigError

__all__ = ["SignallingServer", "post_offer", "whip_offer", "whip_delete", "http_exchange", "check_origin", "is_loopback_origin", "CORS_ALLOW_METHODS",
           "CORS_ALLOW_HEADERS", "CORS_MAX_AGE_S"]

#: what a preflight for ``/offer`` is told it may send
CORS_ALLOW_METHODS = "POST, OPTIONS"
#: ... and a preflight for a WHIP session's URL (``/whip/<session>``)
WHIP_SESSION_METHODS = "DELETE, OPTIONS"
CORS_ALLOW_HEADERS = "Content-Type"
#: how long (s) a browser may cache a preflight answer
CORS_MAX_AGE_S = 600


def check_origin(value: str) -> str:
    """Validate an ``--allow-origin`` value and return it normalised (lower-case scheme and host,
    default port dropped): ``scheme://host[:port]`` with scheme http or https, no path, query or
    wildcard. Raises ConfigError naming ``--allow-origin``."""
    allowed = "an origin such as http://192.168.1.20:8080 (scheme://host[:port], http or https; never *)"
    if "*" in value:
        raise ConfigError("--allow-origin", value, allowed)
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ConfigError("--allow-origin", value, allowed) from None
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username or parts.password):
        raise ConfigError("--allow-origin", value, allowed)
    return _normalise(parts.scheme, parts.hostname, port)


def _normalise(scheme: str, host: str, port: int | None) -> str:
    default = {"http": 80, "https": 443}.get(scheme)
    host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _parse_origin(origin: str) -> str | None:
    """A browser's Origin header normalised, or None when it is not a http(s) origin ("null")."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return _normalise(parts.scheme, parts.hostname, port)


def is_loopback_origin(origin: str) -> bool:
    """True for http(s) origins on ``localhost`` or a loopback address (any port)."""
    norm = _parse_origin(origin)
    if norm is None:
        return False
    host = urlsplit(norm).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SignallingServer:
    """HTTP signalling: ``on_offer(sdp) -> answer_sdp``; ``info() -> list`` for ``GET /calls``;
    ``page``: HTML served at ``GET /``. ``allow_origins``: origins allowed besides loopback ones
    (see the module docstring). WHIP when ``on_whip(sdp) -> (answer_sdp, session)`` and
    ``on_whip_end(session) -> bool`` (False: no such session) are given."""

    def __init__(self, on_offer: Callable[[str], Awaitable[str]], *, host: str = "127.0.0.1",
                 port: int = 0, info: Callable[[], Any] | None = None, help_text: str = "",
                 page: str | None = None, allow_origins: Iterable[str] = (),
                 max_body_bytes: int = 64 * 1024, ssl_context: ssl.SSLContext | None = None,
                 on_whip: Callable[[str], Awaitable[tuple[str, str]]] | None = None,
                 on_whip_end: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self.on_offer = on_offer
        self.on_whip, self.on_whip_end = on_whip, on_whip_end
        self.ssl_context = ssl_context
        self.host, self.port = host, port
        self.info = info
        self.help_text = help_text
        self.page = page
        self.allow_origins = {check_origin(o) for o in allow_origins}
        self.max_body_bytes = max_body_bytes
        self._runner: Any = None
        self.address: tuple[str, int] | None = None

    def origin_allowed(self, origin: str) -> bool:
        """Whether a request with this ``Origin`` header is answered."""
        norm = _parse_origin(origin)
        return norm is not None and (norm in self.allow_origins or is_loopback_origin(origin))

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound (host, port) (port 0 picks a free one)."""
        from aiohttp import web

        app = web.Application(middlewares=[self._origin_middleware], client_max_size=self.max_body_bytes)
        app.router.add_get("/", self._index)
        app.router.add_get("/help", self._help)
        app.router.add_get("/calls", self._calls)
        app.router.add_route("*", "/offer", self._offer)
        if self.on_whip is not None:
            app.router.add_route("*", "/whip", self._whip)
            app.router.add_route("*", "/whip/{session}", self._whip_session)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        sock = self._runner.addresses[0]  # the bound (host, port[, ...]): port 0 picked one
        self.address = (str(sock[0]), int(sock[1]))
        return self.address

    async def close(self) -> None:
        """Stop listening and end the requests in progress (idempotent)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- handlers ------------------------------------------------------------------------------
    @property
    def _origin_middleware(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def middleware(request: Any, handler: Any) -> Any:
            origin = request.headers.get("Origin")
            if origin is None:
                return await handler(request)
            if not self.origin_allowed(origin):
                return web.Response(status=403, text=f"origin {origin} is not allowed; start translab serve "
                                    f"with --allow-origin {origin} to allow it\n")
            if request.method == "OPTIONS":
                if request.path != "/offer" and not request.path.startswith("/whip"):
                    return web.Response(status=404, text="not found\n")
                resp = web.Response(status=204)
                session = request.path.startswith("/whip/")
                resp.headers["Access-Control-Allow-Methods"] = WHIP_SESSION_METHODS if session else CORS_ALLOW_METHODS
                resp.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
                resp.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
            else:
                try:
                    resp = await handler(request)
                except web.HTTPException as exc:  # 404/405/413 raised by aiohttp: still CORS-readable
                    resp = web.Response(status=exc.status, text=exc.text or exc.reason)
                if "Location" in resp.headers:  # a WHIP session's URL, for the page's DELETE
                    resp.headers["Access-Control-Expose-Headers"] = "Location"
            resp.headers["Access-Control-Allow-Origin"] = _parse_origin(origin) or origin
            resp.headers["Vary"] = "Origin"
            return resp

        return middleware

    async def _index(self, request: Any) -> Any:
        from aiohttp import web

        if self.page is None:
            return await self._help(request)
        return web.Response(text=self.page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _help(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text=self.help_text, content_type="text/plain", charset="utf-8")

    async def _calls(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text=json.dumps(self.info() if self.info else [], default=str),
                            content_type="application/json")

    async def _offer(self, request: Any) -> Any:
        from aiohttp import web

        if request.method != "POST":
            return web.Response(status=405, text="POST an SDP offer\n", headers={"Allow": "POST, OPTIONS"})
        try:
            text = (await request.read()).decode("utf-8", "replace")
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text=f"body over {self.max_body_bytes} bytes\n")
        as_json = request.content_type == "application/json"
        if as_json:
            try:
                msg = json.loads(text)
                sdp = msg["sdp"]
                if msg.get("type", "offer") != "offer":
                    return web.Response(status=400, text="type must be offer\n")
            except (json.JSONDecodeError, KeyError, TypeError):
                return web.Response(status=400, text='JSON body must be {"type":"offer","sdp":"..."}\n')
        else:
            sdp = text
        if not isinstance(sdp, str) or "v=0" not in sdp:
            return web.Response(status=400, text="body is not an SDP offer\n")
        try:
            answer = await self.on_offer(sdp)
        except ValueError as err:
            return web.Response(status=400, text=f"bad offer: {err}\n")
        if as_json:
            return web.json_response({"type": "answer", "sdp": answer})
        return web.Response(text=answer, content_type="application/sdp")


    async def _whip(self, request: Any) -> Any:
        from aiohttp import web

        assert self.on_whip is not None
        if request.method != "POST":
            return web.Response(status=405, text="POST an SDP offer (application/sdp)\n",
                                headers={"Allow": "POST, OPTIONS"})
        if request.content_type != "application/sdp":
            return web.Response(status=415, text="WHIP offers are application/sdp\n")
        try:
            sdp = (await request.read()).decode("utf-8", "replace")
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text=f"body over {self.max_body_bytes} bytes\n")
        if "v=0" not in sdp:
            return web.Response(status=400, text="body is not an SDP offer\n")
        try:
            answer, session = await self.on_whip(sdp)
        except ValueError as err:
            return web.Response(status=400, text=f"bad offer: {err}\n")
        return web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": f"/whip/{session}"})

    async def _whip_session(self, request: Any) -> Any:
        from aiohttp import web

        assert self.on_whip_end is not None
        if request.method != "DELETE":  # PATCH (trickle ICE, ICE restart) is not supported
            return web.Response(status=405, text="DELETE ends the session\n", headers={"Allow": "DELETE, OPTIONS"})
        if not await self.on_whip_end(request.match_info["session"]):
            return web.Response(status=404, text="no such session\n")
        return web.Response(status=200)


async def http_exchange(sock: socket.socket, method: str, path: str, *, host: str, body: bytes = b"",
                        content_type: str | None = None, accept: str | None = None, timeout_s: float = 10.0,
                        ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                        on_connected: Callable[[], None] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request over the connected ``sock`` (``Connection: close``; TLS first when
    ``ssl_context`` is given, the certificate checked against ``server_hostname``): returns (status,
    headers with lower-case names, body). ``host`` is the Host header (``name`` or ``name:port``).
    ``on_connected()`` is called once the connection is ready for the request (after the TLS
    handshake when there is one). Raises ConnectionError for a malformed answer."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        sock=sock, ssl=ssl_context, server_hostname=server_hostname if ssl_context else None), timeout_s)
    if on_connected is not None:
        on_connected()
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if content_type:
        request += f"Content-Type: {content_type}\r\n"
    if accept:
        request += f"Accept: {accept}\r\n"
    writer.write((request + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("ascii") + body)
    await writer.drain()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if "content-length" in headers:
            data = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout_s)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int((await asyncio.wait_for(reader.readline(), timeout_s)).strip() or b"0", 16)
                if size == 0:
                    break
                data += await asyncio.wait_for(reader.readexactly(size + 2), timeout_s)
                data = data[:-2]
        else:
            data = await asyncio.wait_for(reader.read(), timeout_s)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as err:
        raise ConnectionError(f"malformed HTTP answer: {type(err).__name__}") from None
    finally:
        writer.close()
    return status, headers, data


def _http_error(status: int, data: bytes) -> ConnectionError:
    return ConnectionError(f"HTTP {status}: {data[:200].decode('utf-8', 'replace').strip()}")


async def post_offer(sock: socket.socket, offer: dict[str, str], *, host: str, path: str = "/offer",
                     timeout_s: float = 10.0, ssl_context: ssl.SSLContext | None = None,
                     server_hostname: str | None = None, on_connected: Callable[[], None] | None = None) -> dict[str, Any]:
    """POST ``offer`` (JSON ``{"sdp", "type"}``) with :func:`http_exchange` and return the JSON
    answer. Raises ConnectionError with the reason on any HTTP or JSON problem."""
    status, _, data = await http_exchange(
        sock, "POST", path, host=host, body=json.dumps(offer).encode(), content_type="application/json",
        accept="application/json", timeout_s=timeout_s, ssl_context=ssl_context, server_hostname=server_hostname,
        on_connected=on_connected)
    if status != 200:
        raise _http_error(status, data)
    try:
        answer = json.loads(data)
        if answer.get("type") != "answer" or not isinstance(answer.get("sdp"), str):
            raise ValueError
    except (ValueError, AttributeError):
        raise ConnectionError("the answer is not JSON {sdp, type: answer}") from None
    return dict(answer)


async def whip_offer(sock: socket.socket, sdp: str, *, host: str, path: str, timeout_s: float = 10.0,
                     ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None
                     ) -> tuple[str, str]:
    """WHIP (RFC 9725): POST the SDP offer as ``application/sdp`` with :func:`http_exchange`; returns
    (the SDP answer, the session's path from ``Location``, resolved against ``path``). Raises
    ConnectionError unless the endpoint answered 201 Created with an SDP body and a Location."""
    status, headers, data = await http_exchange(
        sock, "POST", path, host=host, body=sdp.encode(), content_type="application/sdp", accept="application/sdp",
        timeout_s=timeout_s, ssl_context=ssl_context, server_hostname=server_hostname)
    if status != 201:
        raise _http_error(status, data)
    if not headers.get("content-type", "").startswith("application/sdp") or b"v=0" not in data:
        raise ConnectionError("the WHIP answer is not application/sdp")
    if not headers.get("location"):
        raise ConnectionError("the WHIP answer has no Location")
    parts = urlsplit(urljoin(path, headers["location"]))
    return data.decode("utf-8", "replace"), parts.path + (f"?{parts.query}" if parts.query else "")


async def whip_delete(sock: socket.socket, session: str, *, host: str, timeout_s: float = 10.0,
                      ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None) -> int:
    """End a WHIP session: DELETE its path (from :func:`whip_offer`); returns the HTTP status."""
    status, _, _ = await http_exchange(sock, "DELETE", session, host=host, timeout_s=timeout_s,
                                       ssl_context=ssl_context, server_hostname=server_hostname)
    return status
