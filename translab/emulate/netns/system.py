"""Thin I/O helpers: ``ip`` commands, whether namespaces are usable here, sockets and processes
inside a namespace, parent-death signals for children."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
from typing import Sequence

NETNS_DIR = "/var/run/netns"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


class NetnsUnavailable(RuntimeError):
    """The namespace backend cannot run here (not root, no ``ip netns``, no /dev/net/tun)."""


class CommandError(RuntimeError):
    """An ``ip`` / ``sysctl`` command failed; the message carries its stderr."""


def run(cmd: Sequence[str], check: bool = True, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Run a command, capture output; raise :class:`CommandError` (with stderr) if it fails."""
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise CommandError(f"{' '.join(cmd)}: {p.stderr.strip() or p.stdout.strip()}")
    return p


def unavailable_reason() -> str | None:
    """None when the backend can run; else one line saying why not."""
    if os.geteuid() != 0:
        return "the netns backend needs root (network namespaces and TUN devices)"
    if shutil.which("ip") is None:
        return "the netns backend needs iproute2's `ip` command"
    if not os.path.exists("/dev/net/tun"):
        return "the netns backend needs /dev/net/tun"
    try:
        p = run(["ip", "netns", "list"], check=False, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`ip netns` failed: {e}"
    if p.returncode != 0:
        return f"`ip netns` failed: {p.stderr.strip()}"
    return None


def require() -> None:
    """Raise :class:`NetnsUnavailable` with the one-line reason if the backend cannot run."""
    reason = unavailable_reason()
    if reason:
        raise NetnsUnavailable(reason)


def list_netns() -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    p = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def netns_pids(name: str) -> list[int]:
    """Process ids running in namespace ``name``."""
    p = run(["ip", "netns", "pids", name], check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def ip_netns(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``ip -n NAME args...``."""
    return run(["ip", "-n", name, *args], check=check)


def exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside namespace ``name``."""
    return ["ip", "netns", "exec", name, *argv]


_libc = ctypes.CDLL(None, use_errno=True)


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (a preexec_fn)."""
    _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def socket_in_netns(name: str, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM,
                    proto: int = 0) -> socket.socket:
    """A socket created inside namespace ``name`` (it stays there whichever thread uses it).

    A helper thread enters the namespace with setns(2) (which affects only that thread), creates
    the socket and ends; the calling thread's namespace never changes. ``proto`` 0 picks TCP/UDP
    explicitly: asyncio only disables Nagle (TCP_NODELAY) on sockets whose ``proto`` is
    IPPROTO_TCP, as sockets made by its own create_connection are.
    """
    if proto == 0:
        proto = socket.IPPROTO_TCP if type == socket.SOCK_STREAM else (
            socket.IPPROTO_UDP if type == socket.SOCK_DGRAM else 0)
    result: dict[str, object] = {}

    def worker() -> None:
        try:
            fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({name}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result["sock"] = socket.socket(family, type, proto)
        except BaseException as e:  # handed to the caller
            result["err"] = e

    t = threading.Thread(target=worker, name=f"setns-{name}")
    t.start()
    t.join()
    if "err" in result:
        raise result["err"]  # type: ignore[misc]
    return result["sock"]  # type: ignore[return-value]
