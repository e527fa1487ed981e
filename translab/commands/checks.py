"""Checks of the paths, ports and hosts a user gives on the command line, run BEFORE any long work:
each refuses with one :class:`~translab.errors.ConfigError` naming the option, the value and what is
allowed (the CLI prints it on one line and exits 2), so a wrong ``--out`` is never found after a
six-second call, and a port in use is named instead of an ``OSError`` traceback."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from translab.errors import ConfigError, check_range


def out_dir(option: str, path: str | os.PathLike[str]) -> Path:
    """Create the output directory ``path`` (and its parents) and check it is a writable directory.
    Refuses a path that is a file, lies below a file, or cannot be created or written."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(option, str(path), "a directory (this path is an existing file)") from None
    except NotADirectoryError:
        raise ConfigError(option, str(path), "a directory (a parent of this path is a file)") from None
    except OSError as err:
        raise ConfigError(option, str(path), f"a directory that can be created ({err.strerror})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(option, str(path), "a writable directory")
    return p


def out_file(option: str, path: str | os.PathLike[str]) -> Path:
    """Check that the file ``path`` can be written: its folder exists and is a writable directory and
    ``path`` is not a directory (the file itself is created or replaced later)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ConfigError(option, str(path), "a file name (this path is a directory)")
    if not parent.is_dir():
        why = "its folder is a file" if parent.exists() else f"its folder {str(parent)!r} does not exist"
        raise ConfigError(option, str(path), f"a file in an existing directory ({why})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(option, str(path), f"a file in a writable directory ({parent} is not writable)")
    return p


def in_dir(option: str, path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` is an existing directory (an input such as a run directory)."""
    p = Path(path)
    if not p.is_dir():
        why = "it is a file" if p.exists() else "it does not exist"
        raise ConfigError(option, str(path), f"an existing directory ({why})")
    return p


def port(option: str, value: int) -> int:
    """A TCP/UDP port number: 0 (any free port) to 65535."""
    check_range(option, value, 0, 65535, "(0: any free port)")
    return value


def bindable(host: str, ports: dict[str, int]) -> None:
    """Check that every TCP port in ``ports`` (option -> port) can be bound on ``host`` now: refuses a
    host that is not an address of this machine (option ``--host``) and a port in use (its option).
    Port 0 (any free port) is only checked against the host."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ConfigError("--host", host, "an IP address or name of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    family, addr = infos[0][0], infos[0][4][0]
    for option, number in ports.items():
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, number))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ConfigError(option, number, f"a free port (port {number} on {host} is in use)") from None
            if err.errno == errno.EADDRNOTAVAIL:
                raise ConfigError("--host", host, "an address of this machine, e.g. 127.0.0.1 or 0.0.0.0 "
                                  "(this one is not)") from None
            if err.errno == errno.EACCES:
                raise ConfigError(option, number, "a port this user may bind (1024 and up without root)") from None
            raise ConfigError(option, number, f"a port that can be bound on {host} ({err.strerror})") from None
        finally:
            s.close()
