"""Put the sockets of in-process asyncio code into lab namespaces, per task.

Both peers of a call run on one event loop in this process; what differs is the namespace their
sockets live in. Inside :func:`netns_sockets` the running loop's ``create_datagram_endpoint``,
``create_connection`` and ``create_server`` (and aioice's host-address discovery) look at the
context variable :data:`BINDING`: when a task has set it, each new socket is created inside that
namespace (see :func:`translab.emulate.netns.system.socket_in_netns`) and bound to its host
address; otherwise the loop behaves as usual. Context variables are copied into tasks a task
starts, so everything aioice does while gathering candidates for a peer inherits its binding.
TLS to the lab's coturn (``turns:``) is verified against the run's certificate.

This is the one module that patches third-party behaviour at run time, and why: aiortc/aioice
create their sockets with the running loop's ``create_*`` methods and offer no socket factory or
namespace option, so the only way to put a peer's sockets into a namespace without forking them is
to wrap those loop methods (and aioice's ``get_host_addresses``) for the duration of
:func:`netns_sockets`, and to restore them afterwards (tests/test_netns_aio_patch.py checks the
restore). Everything else the netns backend needs is injected: peers by a factory passed to
``webrtc_call``, the TCP connection by :class:`translab.emulate.netns.call.NetnsPath`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import socket
import threading
import ssl as ssl_mod
from dataclasses import dataclass
from typing import Any, Coroutine, Iterator, TypeVar

T = TypeVar("T")

from translab.emulate.netns.system import socket_in_netns


@dataclass(frozen=True)
class NsBinding:
    """Where a task's sockets go: namespace name, its host address, the CA file for TLS."""

    netns: str
    host_ip: str
    cafile: str | None = None
    listen: tuple[str, int] | None = None  # create_server binds here (host, port)


BINDING: contextvars.ContextVar[NsBinding | None] = contextvars.ContextVar("translab_netns", default=None)


@contextlib.contextmanager
def bound(binding: NsBinding) -> Iterator[None]:
    """Within the block (and tasks started from it), new sockets go to ``binding``'s namespace."""
    tok = BINDING.set(binding)
    try:
        yield
    finally:
        BINDING.reset(tok)


def _sock(b: NsBinding, type: int) -> socket.socket:
    s = socket_in_netns(b.netns, socket.AF_INET, type)
    s.setblocking(False)
    return s


@contextlib.contextmanager
def netns_sockets(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Install the per-task namespace routing of socket creation on ``loop`` (restored after)."""
    import aioice.ice

    orig_dg, orig_cc, orig_cs = loop.create_datagram_endpoint, loop.create_connection, loop.create_server
    orig_hosts = aioice.ice.get_host_addresses

    async def create_datagram_endpoint(factory: Any, local_addr: Any = None, remote_addr: Any = None,
                                       **kw: Any) -> Any:
        b = BINDING.get()
        if b is None or kw.get("sock") is not None:
            return await orig_dg(factory, local_addr=local_addr, remote_addr=remote_addr, **kw)
        s = _sock(b, socket.SOCK_DGRAM)
        try:
            s.bind(local_addr if local_addr else (b.host_ip, 0))
            if remote_addr:
                s.connect(remote_addr)
        except OSError:
            s.close()
            raise
        return await orig_dg(factory, sock=s, **{k: v for k, v in kw.items() if k in ("reuse_port",)})

    async def create_connection(factory: Any, host: Any = None, port: Any = None, *, ssl: Any = None,
                                **kw: Any) -> Any:
        b = BINDING.get()
        if b is None or kw.get("sock") is not None:
            return await orig_cc(factory, host, port, ssl=ssl, **kw)
        s = _sock(b, socket.SOCK_STREAM)
        try:
            await loop.sock_connect(s, (host, port))
        except OSError:
            s.close()
            raise
        hostname = kw.get("server_hostname")
        if ssl is True:
            ssl = ssl_mod.create_default_context(cafile=b.cafile) if b.cafile else ssl_mod.create_default_context()
            hostname = hostname or host
        extra: dict[str, Any] = {"server_hostname": hostname} if ssl else {}
        return await orig_cc(factory, sock=s, ssl=ssl, **extra)

    async def create_server(factory: Any, host: Any = None, port: Any = None, **kw: Any) -> Any:
        b = BINDING.get()
        if b is None or kw.get("sock") is not None:
            return await orig_cs(factory, host, port, **kw)
        s = _sock(b, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(b.listen or (b.host_ip, 0))
        kw.pop("reuse_address", None)
        kw.pop("reuse_port", None)
        return await orig_cs(factory, sock=s, **kw)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        b = BINDING.get()
        if b is None:
            return orig_hosts(use_ipv4, use_ipv6)
        return [b.host_ip] if use_ipv4 else []

    loop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign, assignment]
    loop.create_connection = create_connection  # type: ignore[method-assign, assignment]
    loop.create_server = create_server  # type: ignore[method-assign, assignment]
    aioice.ice.get_host_addresses = get_host_addresses
    try:
        yield
    finally:
        for name in ("create_datagram_endpoint", "create_connection", "create_server"):
            loop.__dict__.pop(name, None)
        aioice.ice.get_host_addresses = orig_hosts


def run_ending_on_sigterm(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, but SIGTERM ends it the way Ctrl-C does: the main task is cancelled, so
    the call unwinds through its ``finally`` blocks (peer connections closed, sockets and threads
    released) while the loop still runs, then SystemExit(143) is raised for the lab to clean up.

    Without it, SIGTERM's SystemExit was raised from the signal handler inside whatever callback the
    loop was running; asyncio.run then waited for the other tasks to finish being cancelled, and the
    WebRTC legs' tasks waited on the one that had died: the process hung with the forwarder, coturn and
    the namespaces up (issue 15). asyncio.run already handles SIGINT like this. The SIGTERM handler in
    place before (the lab's) is restored afterwards. Outside the main thread: plain asyncio.run."""
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coro)
    terminated: list[int] = []

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_sigterm() -> None:
            terminated.append(signal.SIGTERM)
            task.cancel()

        prev = signal.getsignal(signal.SIGTERM)
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            return await coro
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, prev)

    try:
        result = asyncio.run(main())
    except BaseException:
        if terminated:  # whatever the cancelled call raised on its way out
            raise SystemExit(128 + signal.SIGTERM) from None
        raise
    if terminated:  # the call caught the cancellation and returned (e.g. as a failed call)
        raise SystemExit(128 + signal.SIGTERM)
    return result
