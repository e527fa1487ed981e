"""The namespace lab on real kernel stacks: NAT and firewall on real UDP/TCP, pcap read by tshark,
and clean-up after Ctrl-C, SIGTERM and SIGKILL (with `translab netns cleanup`)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from translab.emulate.netns.cleanup import leftovers
from translab.emulate.netns.lab import Lab, LabConfig
from translab.emulate.netns.names import new_run_id

pytestmark = pytest.mark.netns

PY = sys.executable


def _udp_exchange(lab: Lab, src_port: int = 5000, timeout: float = 1.0):
    srv = lab.socket("pub")
    srv.bind(("198.18.0.1", 3478))
    srv.settimeout(timeout)
    cli = lab.socket("a")
    cli.bind(("0.0.0.0", src_port))
    cli.settimeout(timeout)
    cli.sendto(b"ping", ("198.18.0.1", 3478))
    data, addr = srv.recvfrom(100)
    return srv, cli, addr


def test_udp_and_tcp_through_nat_with_pcap(tmp_path) -> None:
    pcap = tmp_path / "fwd.pcap"
    cfg = LabConfig(nat={"a": "port-restricted-cone"}, pcap=pcap)
    with Lab(cfg, run_dir=tmp_path) as lab:
        srv, cli, addr = _udp_exchange(lab)
        assert addr == ("198.19.1.1", 5000)  # port preserved, public address
        srv.sendto(b"pong", addr)
        assert cli.recvfrom(100)[0] == b"pong"
        # From the alternate address: port-restricted filtering drops it.
        alt = lab.socket("pub")
        alt.bind(("198.18.0.2", 3478))
        alt.sendto(b"unsolicited", addr)
        cli.settimeout(0.3)
        with pytest.raises(socket.timeout):
            cli.recvfrom(100)
        # Real kernel TCP through the NAT (checksums must be right or the kernel drops segments).
        ls = lab.socket("pub", socket.SOCK_STREAM)
        ls.bind(("198.18.0.1", 443))
        ls.listen(1)
        c = lab.socket("a", socket.SOCK_STREAM)
        c.settimeout(2)
        c.connect(("198.18.0.1", 443))
        s, peer = ls.accept()
        assert peer[0] == "198.19.1.1"
        c.sendall(b"x" * 100_000)
        got = b""
        s.settimeout(2)
        while len(got) < 100_000:
            got += s.recv(65536)
        assert got == b"x" * 100_000
        for x in (srv, cli, alt, ls, c, s):
            x.close()
    assert lab.stats["drops"].get("nat-in-a") == 1
    assert lab.stats["pcap_packets"] > 10
    if shutil.which("tshark"):
        out = subprocess.run(
            ["tshark", "-r", str(pcap), "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
             "-o", "tcp.check_checksum:TRUE", "-Y", "ip.checksum.status==2 || udp.checksum.status==2 || tcp.checksum.status==2",
             "-T", "fields", "-e", "frame.number"],
            capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "", f"bad checksums in frames {out.stdout.split()}"
        n = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True, timeout=30).stdout.split()
        assert len(n) == lab.stats["pcap_packets"]


@pytest.mark.parametrize("profile, udp_ok, tcp80_ok", [("udp-blocked", False, True), ("only-443", False, False)])
def test_firewall_profiles_on_real_traffic(tmp_path, profile, udp_ok, tcp80_ok) -> None:
    with Lab(LabConfig(nat={"a": "full-cone"}, firewall={"a": profile}), run_dir=tmp_path) as lab:
        srv = lab.socket("pub")
        srv.bind(("198.18.0.1", 3478))
        srv.settimeout(0.3)
        cli = lab.socket("a")
        cli.sendto(b"x", ("198.18.0.1", 3478))
        try:
            srv.recvfrom(10)
            got_udp = True
        except socket.timeout:
            got_udp = False
        assert got_udp is udp_ok
        results = {}
        for port in (80, 443):
            ls = lab.socket("pub", socket.SOCK_STREAM)
            ls.bind(("198.18.0.1", port))
            ls.listen(1)
            c = lab.socket("a", socket.SOCK_STREAM)
            c.settimeout(0.5)
            try:
                c.connect(("198.18.0.1", port))
                results[port] = True
            except OSError:
                results[port] = False
            c.close()
            ls.close()
        assert results == {80: tcp80_ok, 443: True}
        srv.close()
        cli.close()


_CHILD = r"""
import sys, time
from translab.emulate.netns.lab import Lab, LabConfig
lab = Lab(LabConfig(nat={"a": "symmetric"}), runid=sys.argv[1])
lab.start()
lab.popen("pub", ["sleep", "60"])
print("up", flush=True)
time.sleep(60)
"""

# A real call (WebSocket, 20 s of audio) with coturn up, killed while media flows.
_CALL_CHILD = r"""
import sys
from translab.config import CallConfig
from translab.emulate.netns import lab as labmod
from translab.call.netns import NetnsOptions, netns_call
orig = labmod.Lab.__init__
def init(self, *a, **kw):
    kw["runid"] = sys.argv[1]
    orig(self, *a, **kw)
labmod.Lab.__init__ = init
netns_call(CallConfig(transport="webrtc", profile="clean-lan", duration_s=20, metrics=()),
           NetnsOptions(caller_nat="symmetric", callee_nat="full-cone", ice="turn-udp"),
           progress=lambda f: print("media", flush=True))
"""


def _start_child(runid: str) -> subprocess.Popen:
    p = subprocess.Popen([PY, "-c", _CHILD, runid], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "up"
    found = leftovers(f"tl-{runid}-")
    assert len(found["netns"]) == 3 and len(found["pids"]) >= 2  # forwarder + sleep
    return p


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cleans_up(sig) -> None:
    runid = new_run_id()  # random: concurrent test runs on one machine must not collide
    p = _start_child(runid)
    p.send_signal(sig)
    p.wait(10)
    time.sleep(0.2)
    assert leftovers(f"tl-{runid}-") == {"netns": [], "devices": [], "pids": []}


def test_sigkill_mid_run_then_cleanup_command_leaves_nothing() -> None:
    runid = new_run_id()
    p = _start_child(runid)
    p.kill()
    p.wait(5)
    time.sleep(0.3)
    left = leftovers(f"tl-{runid}-")
    assert left["netns"], "SIGKILL cannot clean up namespaces; the command must"
    out = subprocess.run([PY, "-m", "translab.cli", "netns", "cleanup", "--prefix", f"tl-{runid}-"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "3 namespaces" in out.stdout
    time.sleep(0.2)
    assert leftovers(f"tl-{runid}-") == {"netns": [], "devices": [], "pids": []}


@pytest.mark.coturn
def test_sigkill_mid_call_then_cleanup_leaves_nothing() -> None:
    runid = new_run_id()
    p = subprocess.Popen([PY, "-c", _CALL_CHILD, runid], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()  # first progress report: media is flowing
    assert line.strip() == "media", line
    found = leftovers(f"tl-{runid}-")
    assert len(found["netns"]) == 3 and len(found["pids"]) >= 2  # forwarder + turnserver
    p.kill()
    p.wait(5)
    time.sleep(0.3)
    out = subprocess.run([PY, "-m", "translab.cli", "netns", "cleanup", "--prefix", f"tl-{runid}-"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    time.sleep(0.2)
    assert leftovers(f"tl-{runid}-") == {"netns": [], "devices": [], "pids": []}


@pytest.mark.coturn
def test_ctrl_c_mid_call_cleans_up_by_itself() -> None:
    runid = new_run_id()
    p = subprocess.Popen([PY, "-c", _CALL_CHILD, runid], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "media"
    p.send_signal(signal.SIGINT)
    p.wait(20)
    time.sleep(0.2)
    assert leftovers(f"tl-{runid}-") == {"netns": [], "devices": [], "pids": []}


def test_cleanup_leaves_labs_in_use_alone(tmp_path) -> None:
    from translab.emulate.netns.cleanup import cleanup

    with Lab(LabConfig(sides=("a",)), run_dir=tmp_path) as lab:
        assert cleanup(lab.names.prefix) == {"netns": [], "devices": [], "pids": []}
        assert len(leftovers(lab.names.prefix)["netns"]) == 2  # still there, still working
        s = lab.socket("a")
        s.sendto(b"x", ("198.18.0.1", 9))
        s.close()
    assert leftovers(lab.names.prefix) == {"netns": [], "devices": [], "pids": []}
