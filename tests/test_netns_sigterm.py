"""SIGTERM in the middle of a `--backend netns` call ends it cleanly (issue 15: it hung, 2 of 2 tries,
with the forwarder, turnserver and namespaces up until SIGKILL): the process exits with 143 within a
bounded time, no traceback, and nothing of its lab is left (namespaces, forwarder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


pytestmark = [pytest.mark.netns, pytest.mark.live]

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _run_prefix(pids: list[int]) -> str | None:
    for pid in pids:
        try:
            env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for kv in env:
            if kv.startswith(b"TRANSLAB_NETNS_RUN="):
                return kv.split(b"=", 1)[1].decode()
    return None


@pytest.mark.parametrize("transport", [pytest.param("webrtc", marks=pytest.mark.coturn), "websocket"])
def test_sigterm_mid_call_ends_cleanly(tmp_path: Path, transport: str) -> None:
    err_path = tmp_path / "stderr"
    with open(err_path, "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "translab.cli", "call", "--backend", "netns",
                              "--transport", transport, "--duration", "60", "--metrics", "none",
                              "--out", str(tmp_path / "out")], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=err, text=True)
    try:
        end = time.monotonic() + 120
        while "% sent" not in err_path.read_text() and time.monotonic() < end and p.poll() is None:
            time.sleep(0.2)
        assert "% sent" in err_path.read_text(), err_path.read_text()
        time.sleep(1.0)  # mid-call
        kids = _children(p.pid)
        prefix = _run_prefix(kids)
        assert prefix, "no forwarder found"
        p.send_signal(signal.SIGTERM)
        code = p.wait(timeout=60)  # it hung for 10 minutes before the fix
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = err_path.read_text()
    assert code == 128 + signal.SIGTERM and "Traceback" not in text, text[-2000:]
    assert not [k for k in kids if _alive(k)], "a child of the call survived"
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in left, left
