"""Accuracy of the namespace forwarder: probe packets at 50 packets/s each way through a lab whose
caller link adds a constant delay; the added one-way delay is compared with the configured one.

Probes are real UDP packets between a socket in the caller's namespace (behind a NAT) and one in
the public namespace, sent and received by one select loop in this process (no thread contention),
time-stamped with CLOCK_MONOTONIC. The error includes the kernel and TUN path, not only the
forwarder's timer. Also reported: the forwarder's CPU use, its own release lateness, and that
tshark reads the pcap of every forwarded packet.
"""

from __future__ import annotations

import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DELAY_S = 0.020
RATE_PPS = 50.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(duration_s: float = 10.0, delay_s: float = DELAY_S, rate_pps: float = RATE_PPS) -> dict[str, Any]:
    """Run the probe benchmark; figures in ms, packets, percent of one core."""
    from translab.emulate.netns.lab import Lab, LabConfig
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    if reason:
        return {"skipped": reason}
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    pcap = tmp / "forwarded.pcap"
    cfg = LabConfig(sides=("a",), nat={"a": "port-restricted-cone"},
                    links={"delay_s": delay_s, "side": "a"}, pcap=pcap)
    try:  # the probe loop's time stamps deserve the same priority as the forwarder
        old_policy = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except OSError:
        old_policy = None
    try:
        res = _probe(cfg, tmp, duration_s, delay_s, rate_pps)
    finally:
        if old_policy is not None:
            os.sched_setscheduler(0, old_policy[0], old_policy[1])
    res["load_average_1min"] = os.getloadavg()[0]
    return res


def _probe(cfg: Any, tmp: Path, duration_s: float, delay_s: float, rate_pps: float) -> dict[str, Any]:
    from translab.emulate.netns.lab import Lab

    pcap = Path(cfg.pcap)
    sent: dict[tuple[str, int], float] = {}
    delays: dict[str, list[float]] = {"up": [], "down": []}
    with Lab(cfg, run_dir=tmp) as lab:
        srv = lab.socket("pub")
        srv.bind(("198.18.0.1", 4000))
        cli = lab.socket("a")
        cli.bind(("0.0.0.0", 4001))
        for s in (srv, cli):
            s.setblocking(False)
        # Open the NAT mapping (port-restricted: the server may answer once the client sent).
        cli.sendto(b"open", ("198.18.0.1", 4000))
        time.sleep(0.1)
        srv.recvfrom(64)
        peer = ("198.19.1.1", 4001)
        pid = lab._forwarder.pid if lab._forwarder else 0
        cpu0, wall0 = _cpu_s(pid), time.monotonic()
        interval = 1.0 / rate_pps
        n = int(duration_s * rate_pps)
        t_start = time.monotonic() + 0.05
        next_up, next_down = t_start, t_start + interval / 2
        i_up = i_down = 0
        end = t_start + duration_s + 2 * delay_s + 0.2
        while time.monotonic() < end:
            now = time.monotonic()
            if i_up < n and now >= next_up:
                sent[("up", i_up)] = time.monotonic()
                cli.sendto(struct.pack("!4sI", b"up  ", i_up), ("198.18.0.1", 4000))
                i_up += 1
                next_up = t_start + i_up * interval
            if i_down < n and now >= next_down:
                sent[("down", i_down)] = time.monotonic()
                srv.sendto(struct.pack("!4sI", b"down", i_down), peer)
                i_down += 1
                next_down = t_start + (i_down + 0.5) * interval
            wake = min(next_up if i_up < n else end, next_down if i_down < n else end, end)
            ready, _, _ = select.select([srv, cli], [], [], max(0.0, wake - time.monotonic()))
            for s in ready:
                while True:
                    try:
                        data = s.recv(64)
                    except BlockingIOError:
                        break
                    t = time.monotonic()
                    tag, seq = struct.unpack("!4sI", data[:8])
                    d = tag.decode().strip()
                    if (d, seq) in sent:
                        delays[d].append(t - sent[(d, seq)])
        cpu = _cpu_s(pid) - cpu0
        wall = time.monotonic() - wall0
        srv.close()
        cli.close()
    stats = lab.stats
    out: dict[str, Any] = {"configured_delay_ms": delay_s * 1e3, "rate_pps_each_way": rate_pps,
                           "duration_s": duration_s}
    for d in ("up", "down"):
        err = (np.array(delays[d]) - delay_s) * 1e3
        out[f"{d}_received"] = int(err.size)
        out[f"{d}_sent"] = n
        if err.size:
            out[f"{d}_added_delay_error_p50_ms"] = round(float(np.percentile(err, 50)), 3)
            out[f"{d}_added_delay_error_p99_ms"] = round(float(np.percentile(err, 99)), 3)
            out[f"{d}_added_delay_error_max_ms"] = round(float(err.max()), 3)
            out[f"{d}_added_delay_error_min_ms"] = round(float(err.min()), 3)
    out["forwarder_cpu_pct_one_core"] = round(100 * cpu / wall, 2)
    out["forwarder_scheduling"] = stats.get("scheduling", "?")
    out["forwarder_release_late_p99_ms"] = round(stats.get("release_late_p99_ms", float("nan")), 3)
    out["pcap_packets"] = stats.get("pcap_packets", 0)
    if shutil.which("tshark"):
        p = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True, timeout=60)
        out["tshark_read_packets"] = len(p.stdout.split()) if p.returncode == 0 else -1
    out["pcap_path"] = str(pcap)
    return out


if __name__ == "__main__":  # pragma: no cover
    from translab.jsonio import dumps

    print(dumps(run(), indent=1))
