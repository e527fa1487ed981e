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


def _pids_with_run_env(prefix: str) -> list[int]:
    """Processes whose environment has TRANSLAB_NETNS_RUN starting with ``prefix``."""
    me = os.getpid()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(RUN_ENV.encode() + b"="):
                if item.split(b"=", 1)[1].decode(errors="replace").startswith(prefix):
                    found.append(int(d.name))
                break
    return found


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def leftovers(prefix: str = PREFIX) -> dict[str, list]:
    """What exists with this prefix: ``netns`` names, root-namespace ``devices``, ``pids``."""
    if not prefix.startswith(PREFIX):
        raise ValueError(f"prefix {prefix!r} must start with {PREFIX!r}")
    ns = [n for n in list_netns() if n.startswith(prefix)]
    pids = set(_pids_with_run_env(prefix))
    for n in ns:
        pids.update(netns_pids(n))
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    devs = []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                devs.append(name)
    return {"netns": ns, "devices": devs, "pids": sorted(pids)}


def cleanup(prefix: str = PREFIX) -> dict[str, list]:
    """Kill the processes, delete the namespaces and devices of runs starting with ``prefix``.
    Returns what was removed (same keys as :func:`leftovers`)."""
    found = leftovers(prefix)
    killed = [p for p in found["pids"] if _kill(p)]
    for n in found["netns"]:
        run(["ip", "netns", "del", n], check=False)
    for d in found["devices"]:
        run(["ip", "link", "del", d], check=False)
    return {"netns": found["netns"], "devices": found["devices"], "pids": killed}
