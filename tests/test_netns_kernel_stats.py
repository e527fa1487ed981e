"""Parsing the kernel's TCP counters of a namespace (/proc/net/snmp, /proc/net/netstat)."""

from __future__ import annotations

from translab.emulate.netns.kernel_stats import parse_proc_net

SAMPLE = """Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm OutSegs RetransSegs
Tcp: 1 500 14
TcpExt: SyncookiesSent TCPTimeouts TCPLossProbes TCPFastRetrans
TcpExt: 0 1 2 13
"""


def test_parse_proc_net() -> None:
    t = parse_proc_net(SAMPLE)
    assert t[("Tcp", "RetransSegs")] == 14 and t[("Tcp", "OutSegs")] == 500
    assert t[("TcpExt", "TCPTimeouts")] == 1 and t[("TcpExt", "TCPFastRetrans")] == 13
    assert t[("Ip", "DefaultTTL")] == 64
