"""Kernel TCP counters of a lab namespace (/proc/net/snmp and /proc/net/netstat as seen from
inside it): how real TCP repaired losses during a call (timeouts, tail loss probes, fast
retransmits, RACK/SACK recoveries). Namespaces are fresh per call, so the counters are the call's."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from translab.emulate.netns.lab import Lab

#: (table, counter) pairs reported, and their summary names.
COUNTERS: dict[tuple[str, str], str] = {
    ("Tcp", "OutSegs"): "out_segs",
    ("Tcp", "RetransSegs"): "retrans_segs",
    ("TcpExt", "TCPTimeouts"): "timeouts",
    ("TcpExt", "TCPLossProbes"): "loss_probes",
    ("TcpExt", "TCPLossProbeRecovery"): "loss_probe_recoveries",
    ("TcpExt", "TCPFastRetrans"): "fast_retrans",
    ("TcpExt", "TCPSackRecovery"): "sack_recoveries",
    ("TcpExt", "TCPDSACKRecv"): "dsack_received",
    ("TcpExt", "TCPSpuriousRTOs"): "spurious_rtos",
}


def parse_proc_net(text: str) -> dict[tuple[str, str], int]:
    """Parse the header/value line pairs of /proc/net/snmp or /proc/net/netstat."""
    out: dict[tuple[str, str], int] = {}
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for head, vals in zip(lines[::2], lines[1::2]):
        if not head or head[0] != vals[0]:
            continue
        table = head[0].rstrip(":")
        for name, v in zip(head[1:], vals[1:]):
            try:
                out[(table, name)] = int(v)
            except ValueError:
                pass
    return out


def tcp_counters(lab: "Lab", port: str) -> dict[str, int]:
    """The :data:`COUNTERS` of ``port``'s namespace, keyed by their summary names."""
    p = lab.run_in(port, ["cat", "/proc/net/snmp", "/proc/net/netstat"], timeout=5)
    table = parse_proc_net(p.stdout)
    return {name: table.get(key, 0) for key, name in COUNTERS.items()}
