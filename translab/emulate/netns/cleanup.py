"""Remove what lab runs left behind, by name prefix: processes started for a run (found by the
``TRANSLAB_NETNS_RUN`` environment variable the lab gives them, or running inside a lab
namespace), the namespaces, and any devices left in the root namespace."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from translab.emulate.netns.names import PREFIX
from translab.emulate.netns.system import list_netns, netns_pids, run

RUN_ENV = "TRANSLAB_NETNS_RUN"


def _run_env_pids(prefix: str) -> dict[int, str]:
    """Processes whose environment has TRANSLAB_NETNS_RUN starting with ``prefix``: pid -> run prefix."""
    me = os.getpid()
    found: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(RUN_ENV.encode() + b"="):
                run = item.split(b"=", 1)[1].decode(errors="replace")
                if run.startswith(prefix):
                    found[int(d.name)] = run
                break
    return found


def _pids_with_run_env(prefix: str) -> list[int]:
    return sorted(_run_env_pids(prefix))


def live_runs(prefix: str = PREFIX) -> set[str]:
    """Run prefixes (``tl-<runid>-``) whose forwarder is still running: a lab in use, not a
    leftover (a forwarder dies with the process that started the lab)."""
    live = set()
    for pid, run in _run_env_pids(prefix).items():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"translab.emulate.netns.forwarder" in cmd:
            live.add(run)
    return live


def _run_of(name: str) -> str:
    """``tl-<runid>-`` of a namespace or device name."""
    return name[: len(PREFIX) + 7]


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def leftovers(prefix: str = PREFIX, include_live: bool = True) -> dict[str, list]:
    """What exists with this prefix: ``netns`` names, root-namespace ``devices``, ``pids``.
    ``include_live=False`` leaves out runs whose forwarder is still running (labs in use)."""
    if not prefix.startswith(PREFIX):
        raise ValueError(f"prefix {prefix!r} must start with {PREFIX!r}")
    skip = set() if include_live else live_runs(prefix)
    ns = [n for n in list_netns() if n.startswith(prefix) and _run_of(n) not in skip]
    pids = {p for p, run in _run_env_pids(prefix).items() if run not in skip}
    for n in ns:
        pids.update(netns_pids(n))
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    devs = []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix) and _run_of(name) not in skip:
                devs.append(name)
    return {"netns": ns, "devices": devs, "pids": sorted(pids)}


def cleanup(prefix: str = PREFIX, include_live: bool = False) -> dict[str, list]:
    """Kill the processes, delete the namespaces and devices of runs starting with ``prefix``;
    runs still in use (forwarder alive) are left alone unless ``include_live``. Returns what was
    removed (same keys as :func:`leftovers`)."""
    found = leftovers(prefix, include_live=include_live)
    killed = [p for p in found["pids"] if _kill(p)]
    for n in found["netns"]:
        run(["ip", "netns", "del", n], check=False)
    for d in found["devices"]:
        run(["ip", "link", "del", d], check=False)
    return {"netns": found["netns"], "devices": found["devices"], "pids": killed}
