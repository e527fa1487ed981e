"""The forwarding process: reads packets from the lab's TUN devices, routes them (NAT, firewall),
passes them through link models, and writes each out at its absolute deadline.

Runs as its own process (``python -m translab.emulate.netns.forwarder``) so no other Python thread
competes for its interpreter: :class:`translab.emulate.netns.lab.Lab` starts it with the TUN fds
inherited and a JSON configuration on stdin; it prints ``ready`` when set up, and on SIGTERM or
SIGINT writes its statistics (JSON) and exits. It dies with its parent (PR_SET_PDEATHSIG).

Timing: a packet read at ``t`` (CLOCK_MONOTONIC seconds) gets ``arrival = hop(t)`` from each link
model on its path; the loop sleeps in select(2) (microsecond timeout) until the earliest deadline,
then writes every packet due within 20 us in deadline order, and logs intended vs actual release.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from translab.emulate.netns.firewall import Firewall
from translab.emulate.netns.rawpcap import RawPcap
from translab.emulate.netns.router import Router, Side
from translab.emulate.netns.system import set_pdeathsig
from translab.link.nat import Nat, NatConfig, preset

EARLY_RELEASE_S = 20e-6


class ConstantDelay:
    """Link model adding a fixed delay (seconds); the forwarder benchmark's reference link."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = float(delay_s)

    def apply(self, send_s: np.ndarray, size: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(send_s, dtype=np.float64)
        return np.arange(t.size, dtype=np.int64), t + self.delay_s

    def reset(self) -> None:
        pass


def nat_from_spec(spec: Any, public_ip: str, rng: np.random.Generator) -> Nat | None:
    """A :class:`Nat` from a preset name, a dict of :class:`NatConfig` fields (optionally with
    ``preset``), or None/"none" for no NAT."""
    if spec in (None, "none"):
        return None
    if isinstance(spec, str):
        return Nat(preset(spec), public_ip, rng)
    spec = dict(spec)
    if "port_range" in spec:
        spec["port_range"] = tuple(spec["port_range"])
    name = spec.pop("preset", None)
    cfg = preset(name, **spec) if name else NatConfig(**spec)
    return Nat(cfg, public_ip, rng)


def links_from_spec(spec: dict[str, Any], seed: int) -> dict[tuple[str, str], tuple[Any, np.random.Generator]]:
    """Link models per hop from ``{"profile": name, "side": "a"}`` or ``{"delay_s": x, "side": "a"}``.

    The profile's ``up`` chain is side's up-link, its ``down`` chain the side's down-link, each
    with its own generator from ``direction_rngs(seed)``.
    """
    if not spec:
        return {}
    side = spec.get("side", "a")
    if spec.get("delay_s") is not None:
        rng = np.random.default_rng(seed)
        return {(side, d): (ConstantDelay(spec["delay_s"]), rng) for d in ("up", "down")}
    if spec.get("profile"):
        from translab.link.profiles import direction_rngs, load_profile

        prof = load_profile(spec["profile"])
        rngs = direction_rngs(seed)
        return {(side, d): (prof.chain(d), rngs[d]) for d in ("up", "down")}
    return {}


@dataclass(order=True)
class _Due:
    deadline_s: float
    seq: int
    port: str
    packet: bytes


class Forwarder:
    """The event loop over TUN fds. ``ports`` maps port name to fd."""

    def __init__(self, ports: dict[str, int], router: Router,
                 links: dict[tuple[str, str], tuple[Any, np.random.Generator]],
                 pcap: RawPcap | None = None) -> None:
        self.ports = ports
        self.fd_port = {fd: name for name, fd in ports.items()}
        self.router = router
        self.links = links
        self.pcap = pcap
        self.heap: list[_Due] = []
        self._seq = itertools.count()
        self.count_in = {p: 0 for p in ports}
        self.count_out = {p: 0 for p in ports}
        self.bytes_out = {p: 0 for p in ports}
        self.link_lost = 0
        self.lateness_s: list[float] = []
        self.stop = False

    def _through(self, hops: list[tuple[str, str]], t: float, size: int) -> list[float]:
        times = [t]
        for hop in hops:
            model = self.links.get(hop)
            if model is None:
                continue
            m, rng = model
            one = getattr(m, "apply_one", None)  # the link models' cheap scalar path, if offered
            nxt: list[float] = []
            for ti in times:
                if one is not None:
                    nxt.extend(float(a) for a in one(ti, size, rng))
                else:
                    _, arr = m.apply(np.array([ti]), np.array([size], dtype=np.int64), rng)
                    nxt.extend(float(a) for a in arr)
            times = nxt
        return times

    def _read(self, fd: int) -> None:
        port = self.fd_port[fd]
        for _ in range(64):
            try:
                pkt = os.read(fd, 65535)
            except BlockingIOError:
                return
            except OSError:  # device gone (namespace deleted under us): nothing more to read
                return
            t = time.monotonic()
            self.count_in[port] += 1
            r = self.router.route(port, pkt, t)
            if r is None:
                continue
            times = self._through(r.hops, t, len(r.packet))
            if not times:
                self.link_lost += 1
            for d in times:
                heapq.heappush(self.heap, _Due(d, next(self._seq), r.out, r.packet))

    def _release(self) -> None:
        now = time.monotonic()
        while self.heap and self.heap[0].deadline_s <= now + EARLY_RELEASE_S:
            due = heapq.heappop(self.heap)
            try:
                os.write(self.ports[due.port], due.packet)
            except OSError:
                pass  # device going away at shutdown
            actual = time.monotonic()
            self.lateness_s.append(actual - due.deadline_s)
            self.count_out[due.port] += 1
            self.bytes_out[due.port] += len(due.packet)
            if self.pcap is not None:
                self.pcap.write(time.time(), due.packet)
            now = actual

    def run(self, wake_fd: int) -> None:
        fds = list(self.fd_port) + [wake_fd]
        while not self.stop:
            timeout = 0.5
            if self.heap:
                timeout = max(0.0, self.heap[0].deadline_s - time.monotonic())
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                ready = []
            for fd in ready:
                if fd == wake_fd:
                    try:
                        os.read(wake_fd, 64)
                    except BlockingIOError:
                        pass
                    continue
                self._read(fd)
            self._release()

    def stats(self) -> dict[str, Any]:
        late = np.array(self.lateness_s) * 1e3 if self.lateness_s else np.zeros(1)
        return {
            "packets_in": self.count_in,
            "packets_out": self.count_out,
            "bytes_out": self.bytes_out,
            "link_lost": self.link_lost,
            "drops": self.router.drops,
            "release_late_p50_ms": float(np.percentile(late, 50)),
            "release_late_p99_ms": float(np.percentile(late, 99)),
            "release_late_max_ms": float(late.max()),
            "released": len(self.lateness_s),
            "pcap_packets": self.pcap.packets if self.pcap else 0,
            "nat_mappings": {n: len(s.nat.mappings()) for n, s in self.router.sides.items() if s.nat},
        }


def realtime_priority(priority: int = 20) -> str:
    """Ask for SCHED_FIFO ``priority`` (root) so timer wake-ups are not delayed by other busy
    processes on a shared machine; fall back to nice -10, else leave as is. Returns what was set.
    The loop sleeps in select(2) between packets, so it never monopolises a core."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return f"SCHED_FIFO {priority}"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "default"


def main() -> int:
    """Process entry: JSON config on stdin (ports, sides, links, seed, pcap, stats paths)."""
    set_pdeathsig()
    cfg = json.loads(sys.stdin.readline())
    seed = int(cfg.get("seed", 0))
    ss = np.random.SeedSequence([seed, 4787])
    nat_rngs = dict(zip(("a", "b"), (np.random.default_rng(s) for s in ss.spawn(2))))
    from translab.emulate.netns.router import side_public_ip

    sides = {
        name: Side(name, nat_from_spec(s.get("nat"), side_public_ip(name), nat_rngs[name]),
                   Firewall(s.get("firewall", "open")))
        for name, s in cfg["sides"].items()
    }
    sched = realtime_priority() if cfg.get("realtime", True) else "default"
    pcap = RawPcap(cfg["pcap"]) if cfg.get("pcap") else None
    fwd = Forwarder({k: int(v) for k, v in cfg["ports"].items()}, Router(sides),
                    links_from_spec(cfg.get("links") or {}, seed), pcap)
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(w)

    def on_signal(signum: int, frame: object) -> None:
        fwd.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)
    try:
        fwd.run(r)
    finally:
        if pcap:
            pcap.close()
        if cfg.get("stats"):
            from translab.jsonio import write_json

            write_json(cfg["stats"], {**fwd.stats(), "scheduling": sched}, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
