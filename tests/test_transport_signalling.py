"""serve's HTTP side (aiohttp): the caller page, CORS preflight answered from an allow-list (never
``*``), and requests from origins not on it refused before any offer is handled."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from translab.errors import ConfigError
from translab.transport.signalling import SignallingServer, check_origin, is_loopback_origin


async def _raw(addr: tuple[str, int], head: str, body: bytes = b"") -> tuple[str, list[str], bytes]:
    """Send one request as bytes; returns (status line, header lines as sent, body)."""
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    top, _, payload = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    return lines[0], lines[1:], payload


def _serve(coro_fn, **kw):  # noqa: ANN001, ANN202
    offers: list[str] = []

    async def on_offer(sdp: str) -> str:
        offers.append(sdp)
        return "v=0\r\nanswer\r\n"

    async def main():  # noqa: ANN202
        server = SignallingServer(on_offer, page="<!doctype html><title>p</title>", **kw)
        addr = await server.start()
        try:
            return await coro_fn(addr)
        finally:
            await server.close()

    return asyncio.run(main()), offers


PREFLIGHT = ("OPTIONS /offer HTTP/1.1\nHost: 127.0.0.1\nOrigin: {origin}\nAccess-Control-Request-Method: POST\n"
             "Access-Control-Request-Headers: content-type\nConnection: close\n")


def test_preflight_from_a_loopback_origin_is_answered_byte_exact() -> None:
    async def go(addr):  # noqa: ANN001, ANN202
        return await _raw(addr, PREFLIGHT.format(origin="http://localhost:5173"))

    (status, headers, body), _ = _serve(go)
    assert status == "HTTP/1.1 204 No Content"
    for line in ("Access-Control-Allow-Origin: http://localhost:5173",
                 "Access-Control-Allow-Methods: POST, OPTIONS",
                 "Access-Control-Allow-Headers: Content-Type",
                 "Access-Control-Max-Age: 600",
                 "Vary: Origin"):
        assert line in headers, headers
    assert not any("*" in h for h in headers) and body == b""


def test_allow_list_adds_origins_and_everything_else_is_refused() -> None:
    async def go(addr):  # noqa: ANN001, ANN202
        ok = await _raw(addr, PREFLIGHT.format(origin="http://192.168.1.20:8080"))
        evil_pre = await _raw(addr, PREFLIGHT.format(origin="https://evil.example"))
        # a "simple" cross-origin POST needs no preflight: it must be refused by its Origin alone
        sdp = b"v=0\r\noffer\r\n"
        evil_post = await _raw(addr, "POST /offer HTTP/1.1\nHost: x\nOrigin: https://evil.example\n"
                                     f"Content-Type: text/plain\nContent-Length: {len(sdp)}\nConnection: close\n", sdp)
        null_post = await _raw(addr, "POST /offer HTTP/1.1\nHost: x\nOrigin: null\n"
                                     f"Content-Type: text/plain\nContent-Length: {len(sdp)}\nConnection: close\n", sdp)
        good_post = await _raw(addr, "POST /offer HTTP/1.1\nHost: x\nOrigin: http://127.0.0.1:9999\n"
                                     f"Content-Type: application/sdp\nContent-Length: {len(sdp)}\nConnection: close\n", sdp)
        return ok, evil_pre, evil_post, null_post, good_post

    (ok, evil_pre, evil_post, null_post, good_post), offers = _serve(go, allow_origins=["HTTP://192.168.1.20:8080/"])
    assert ok[0] == "HTTP/1.1 204 No Content"
    assert "Access-Control-Allow-Origin: http://192.168.1.20:8080" in ok[1]
    for status, headers, body in (evil_pre, evil_post, null_post):
        assert status.startswith("HTTP/1.1 403"), status
        assert not any(h.lower().startswith("access-control-") for h in headers)
        assert b"--allow-origin" in body
    assert good_post[0] == "HTTP/1.1 200 OK" and good_post[2] == b"v=0\r\nanswer\r\n"
    assert "Access-Control-Allow-Origin: http://127.0.0.1:9999" in good_post[1]
    assert offers == ["v=0\r\noffer\r\n"]  # only the allowed POST reached the offer handler


def test_page_help_and_errors() -> None:
    async def go(addr):  # noqa: ANN001, ANN202
        page = await _raw(addr, "GET / HTTP/1.1\nHost: x\nConnection: close\n")
        helptext = await _raw(addr, "GET /help HTTP/1.1\nHost: x\nConnection: close\n")
        big = b"v=0" + b"x" * 70000
        too_big = await _raw(addr, f"POST /offer HTTP/1.1\nHost: x\nContent-Type: application/sdp\n"
                                   f"Content-Length: {len(big)}\nConnection: close\n", big)
        bad_json = await _raw(addr, "POST /offer HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                    "Content-Length: 2\nConnection: close\n", b"{}")
        return page, helptext, too_big, bad_json

    (page, helptext, too_big, bad_json), offers = _serve(go, help_text="how to call\n")
    assert page[0] == "HTTP/1.1 200 OK" and "Content-Type: text/html; charset=utf-8" in page[1]
    assert page[2].startswith(b"<!doctype html>")
    assert helptext[2] == b"how to call\n"
    assert too_big[0].startswith("HTTP/1.1 413")
    assert bad_json[0].startswith("HTTP/1.1 400") and b'"type":"offer"' in bad_json[2]
    assert offers == []


@pytest.mark.parametrize("value", ["*", "http://*.example", "ftp://x", "http://x/path", "x", "http://u:p@x"])
def test_bad_allow_origin_values_name_the_option(value: str) -> None:
    with pytest.raises(ConfigError, match="--allow-origin"):
        check_origin(value)


def test_origin_normalisation_and_loopback() -> None:
    assert check_origin("HTTP://LocalHost:80") == "http://localhost"
    assert check_origin("https://[::1]:8443") == "https://[::1]:8443"
    assert is_loopback_origin("http://127.0.0.2:3000") and is_loopback_origin("https://[::1]")
    assert not is_loopback_origin("http://localhost.evil.example") and not is_loopback_origin("null")


def test_cli_serve_refuses_a_wildcard_origin() -> None:
    r = subprocess.run([sys.executable, "-m", "translab.cli", "serve", "--allow-origin", "*", "--for", "0.1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--allow-origin" in r.stderr and "Traceback" not in r.stderr
