"""Set up and tear down one namespace lab: namespaces ``pub`` and LAN sides ``a``/``b``, a TUN
device in each, the forwarder process between them.

Use as a context manager; clean-up also runs on Ctrl-C (KeyboardInterrupt unwinds through
``__exit__``), on SIGTERM (turned into SystemExit while a lab is up), at interpreter exit
(atexit), and -- after SIGKILL -- by ``translab netns cleanup`` (the forwarder dies with its parent
and its TUN devices with it; namespaces and other children are found by prefix).

Addresses (see :mod:`.router`): servers in ``pub`` at 198.18.0.1 and 198.18.0.2; side ``a``/``b``
public address 198.19.1.1 / 198.19.2.1; host 10.1.0.2 / 10.2.0.2 behind a NAT.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from translab.emulate.netns.cleanup import RUN_ENV, cleanup
from translab.emulate.netns.firewall import FIREWALL_PROFILES
from translab.emulate.netns.names import LabNames, new_run_id
from translab.emulate.netns.router import SERVER_IPS, side_host_ip
from translab.emulate.netns.system import (
    ip_netns,
    require,
    run,
    set_pdeathsig,
    socket_in_netns,
)
from translab.emulate.netns.tun import open_tun
from translab.errors import check_choice


@dataclass
class LabConfig:
    """What to build. ``nat``: per side a preset name, a dict of NatConfig fields, or None (no NAT).
    ``firewall``: per side one of ``open``, ``udp-blocked``, ``only-443``. ``links``: None, or
    ``{"profile": name, "side": "a"}`` / ``{"delay_s": seconds, "side": "a"}``. ``pcap``: file for
    every forwarded packet. ``server_ips``: addresses in ``pub``."""

    sides: tuple[str, ...] = ("a", "b")
    nat: dict[str, Any] = field(default_factory=dict)
    firewall: dict[str, str] = field(default_factory=dict)
    links: dict[str, Any] | None = None
    seed: int = 0
    pcap: str | Path | None = None
    server_ips: tuple[str, ...] = SERVER_IPS

    def __post_init__(self) -> None:
        for s in self.sides:
            check_choice("side", s, ("a", "b"))
        for s, fw in self.firewall.items():
            check_choice(f"firewall.{s}", fw, FIREWALL_PROFILES)


_active: "set[Lab]" = set()
_prev_sigterm: Any = None


def _sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _atexit() -> None:
    for lab in list(_active):
        lab.stop()


atexit.register(_atexit)


class Lab:
    """One running lab. ``netns(port)`` gives namespace names, ``host_ip(port)`` addresses,
    ``socket(port, ...)`` a socket inside a namespace, ``popen(port, argv)`` a child process
    inside a namespace (stopped with the lab). ``stats`` holds the forwarder's statistics after
    :meth:`stop`."""

    def __init__(self, config: LabConfig | None = None, runid: str | None = None,
                 run_dir: str | Path | None = None) -> None:
        self.config = config or LabConfig()
        self.names = LabNames(runid or new_run_id())
        self._run_dir = Path(run_dir) if run_dir else None
        self.stats: dict[str, Any] = {}
        self._children: list[subprocess.Popen] = []
        self._forwarder: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._up = False

    @property
    def run_dir(self) -> Path:
        """Where logs, statistics and coturn's files go (a fresh temp dir unless given); made on
        first use, so a lab that cannot start leaves nothing behind."""
        if self._run_dir is None:
            self._run_dir = Path(tempfile.mkdtemp(prefix=self.names.prefix))
        self._run_dir.mkdir(parents=True, exist_ok=True)
        return self._run_dir

    # -- names and addresses --------------------------------------------------------------------
    @property
    def ports(self) -> tuple[str, ...]:
        return ("pub",) + tuple(self.config.sides)

    def netns(self, port: str) -> str:
        """Namespace name of ``pub``, ``a`` or ``b``."""
        return self.names.netns(port)

    def natted(self, side: str) -> bool:
        return self.config.nat.get(side) not in (None, "none")

    def host_ip(self, port: str) -> str:
        """The address of the host in ``port``'s namespace (``pub``: the primary server)."""
        if port == "pub":
            return self.config.server_ips[0]
        return side_host_ip(port, self.natted(port))

    # -- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Create namespaces, TUN devices, addresses, routes; start the forwarder.
        Raises NetnsUnavailable (one line) when not root / no namespaces."""
        global _prev_sigterm
        require()
        _active.add(self)
        if threading.current_thread() is threading.main_thread() and len(_active) == 1:
            _prev_sigterm = signal.signal(signal.SIGTERM, _sigterm)
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        self._up = True

    def _build(self) -> None:
        fds: dict[str, int] = {}
        try:
            for port in self.ports:
                ns = self.netns(port)
                run(["ip", "netns", "add", ns])
                ip_netns(ns, "link", "set", "lo", "up")
                run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                     "net.ipv6.conf.default.disable_ipv6=1"], check=False)
                tun = self.names.tun(port)
                fds[port] = open_tun(tun)
                run(["ip", "link", "set", "dev", tun, "netns", ns])
                if port == "pub":
                    for ip in self.config.server_ips:
                        ip_netns(ns, "addr", "add", f"{ip}/32", "dev", tun)
                    ip_netns(ns, "link", "set", tun, "up")
                    # Everything not local goes to the forwarder, which drops what it cannot route
                    # (e.g. private LAN addresses a TURN relay tries): like the Internet, no
                    # ENETUNREACH that would make coturn close a session.
                    ip_netns(ns, "route", "add", "default", "dev", tun)
                else:
                    plen = 24 if self.natted(port) else 32
                    ip_netns(ns, "addr", "add", f"{self.host_ip(port)}/{plen}", "dev", tun)
                    ip_netns(ns, "link", "set", tun, "up")
                    ip_netns(ns, "route", "add", "default", "dev", tun)
            self._start_forwarder(fds)
        finally:
            for fd in fds.values():
                os.close(fd)  # the forwarder holds its own copies

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[RUN_ENV] = self.names.prefix
        return env

    def _start_forwarder(self, fds: dict[str, int]) -> None:
        cfg = {
            "ports": fds,
            "sides": {s: {"nat": self.config.nat.get(s), "firewall": self.config.firewall.get(s, "open")}
                      for s in self.config.sides},
            "links": self.config.links,
            "seed": self.config.seed,
            "pcap": str(self.config.pcap) if self.config.pcap else None,
            "stats": str(self.run_dir / "forwarder-stats.json"),
        }
        self._forwarder = subprocess.Popen(
            [sys.executable, "-m", "translab.emulate.netns.forwarder"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.run_dir / "forwarder.log", "wb"),
            pass_fds=list(fds.values()), env=self._child_env(), text=True,
        )
        assert self._forwarder.stdin and self._forwarder.stdout
        self._forwarder.stdin.write(json.dumps(cfg) + "\n")
        self._forwarder.stdin.flush()
        line = self._forwarder.stdout.readline()
        if line.strip() != "ready":
            log = (self.run_dir / "forwarder.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"forwarder did not start: {log}")

    def stop(self) -> dict[str, Any]:
        """Stop children and the forwarder, delete namespaces. Idempotent; returns ``stats``."""
        global _prev_sigterm
        with self._lock:
            if self not in _active:
                return self.stats
            for p in reversed(self._children):
                _terminate(p)
            if self._forwarder is not None:
                _terminate(self._forwarder)
                path = self.run_dir / "forwarder-stats.json"
                if path.exists():
                    self.stats = json.loads(path.read_text())
            cleanup(self.names.prefix, include_live=True)
            _active.discard(self)
            if not _active and _prev_sigterm is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, _prev_sigterm)
                _prev_sigterm = None
            self._up = False
            return self.stats

    # -- things inside the lab -------------------------------------------------------------------
    def socket(self, port: str, type: int = socket.SOCK_DGRAM) -> socket.socket:
        """An IPv4 socket created inside ``port``'s namespace."""
        return socket_in_netns(self.netns(port), socket.AF_INET, type)

    def popen(self, port: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen:
        """Start ``argv`` inside ``port``'s namespace; it is stopped when the lab stops and dies
        if this process dies."""
        kw.setdefault("env", self._child_env())
        p = subprocess.Popen(["ip", "netns", "exec", self.netns(port), *argv],
                             preexec_fn=set_pdeathsig, **kw)
        self._children.append(p)
        return p

    def run_in(self, port: str, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run ``argv`` inside ``port``'s namespace to completion; output captured as text."""
        return subprocess.run(["ip", "netns", "exec", self.netns(port), *argv], capture_output=True,
                              text=True, timeout=timeout, env=self._child_env())


def _terminate(p: subprocess.Popen, grace_s: float = 2.0) -> None:
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(grace_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(2.0)
        except ProcessLookupError:
            pass
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
