"""coturn in the lab: generated configuration, REST credentials, TURN allocations over UDP/TCP
from behind a NAT, TLS on 443 with the run's certificate, logs kept, stopped at the end."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import ssl
import struct
from pathlib import Path

import pytest

from translab.emulate.coturn import config_text, relay_usage, turn_rest_credentials


def test_rest_credentials_follow_the_turn_rest_convention() -> None:
    user, pw = turn_rest_credentials("s3cret", name="alice", ttl_s=600, now_s=1_000_000)
    assert user == "1000600:alice"
    expect = base64.b64encode(hmac.new(b"s3cret", b"1000600:alice", hashlib.sha1).digest()).decode()
    assert pw == expect


def test_config_text_has_the_listeners() -> None:
    txt = config_text(ips=("198.18.0.1", "198.18.0.2"), secret="x", cert=Path("/c"), pkey=Path("/k"),
                      log_file=Path("/l"), pid_file=Path("/p"))
    for line in ("listening-port=3478", "tls-listening-port=443", "listening-ip=198.18.0.2",
                 "use-auth-secret", "static-auth-secret=x", "log-file=/l", "no-cli"):
        assert line in txt.splitlines()
    assert "stun-only" not in txt


def test_relay_usage_parses_session_counters() -> None:
    log = ("1: : session 001: usage: realm=<translab.test>, username=<1:a>, rp=1, rb=100, sp=1, sb=90\n"
           "1: : session 001: usage: realm=<translab.test>, username=<1:a>, rp=10, rb=1000, sp=9, sb=900\n"
           "1: : session 001: peer usage: realm=<translab.test>, username=<1:a>, rp=8, rb=700, sp=9, sb=800\n"
           "2: : session 002: usage: realm=<translab.test>, username=<1:b>, rp=1, rb=100, sp=2, sb=200\n")
    assert relay_usage(log) == {"sessions": 2, "received_packets": 11, "received_bytes": 1100,
                                "sent_packets": 11, "sent_bytes": 1100, "peer_received_packets": 8,
                                "peer_received_bytes": 700, "peer_sent_packets": 9, "peer_sent_bytes": 800}


async def _allocate(lab, user: str, pw: str) -> list[tuple[str, int]]:
    from aioice.turn import create_turn_endpoint

    from translab.emulate.netns.aio import NsBinding, bound, netns_sockets

    out = []
    loop = asyncio.get_running_loop()
    with netns_sockets(loop), bound(NsBinding(lab.netns("a"), lab.host_ip("a"))):
        for transport in ("udp", "tcp"):
            tr, _ = await create_turn_endpoint(asyncio.DatagramProtocol, ("198.18.0.1", 3478), user, pw,
                                               transport=transport)
            out.append(tr.get_extra_info("sockname"))
            tr.close()
            await asyncio.sleep(0.05)
    return out


@pytest.mark.netns
@pytest.mark.coturn
def test_coturn_relays_with_rest_credentials_behind_symmetric_nat(tmp_path) -> None:
    from translab.emulate.coturn import Coturn
    from translab.emulate.netns.lab import Lab, LabConfig

    with Lab(LabConfig(sides=("a",), nat={"a": "symmetric"}), run_dir=tmp_path) as lab:
        c = Coturn(lab).start()
        user, pw = c.credentials()
        # TURN Allocate over UDP and over TCP from behind the NAT (aioice's TURN client, sockets
        # in the LAN namespace), with the REST credentials.
        relayed = asyncio.run(_allocate(lab, user, pw))
        assert [ip for ip, _ in relayed] == ["198.18.0.1", "198.18.0.1"]
        bad = lab.run_in("a", ["turnutils_uclient", "-y", "-n", "2", "-u", user, "-w", "wrong", "198.18.0.1"])
        assert bad.returncode != 0 and "Cannot complete Allocation" in bad.stdout
        # TLS on 443 with the run's certificate, then a STUN Binding over it: our NAT'd address.
        ctx = ssl.create_default_context(cafile=str(c.dir / "turn-cert.pem"))
        raw = lab.socket("a", __import__("socket").SOCK_STREAM)
        raw.settimeout(3)
        raw.connect(("198.18.0.1", 443))
        with ctx.wrap_socket(raw, server_hostname="turn.translab.test") as tls:
            tid = secrets.token_bytes(12)
            tls.sendall(struct.pack("!HHI", 1, 0, 0x2112A442) + tid)
            resp = tls.recv(2048)
            assert resp[:2] == b"\x01\x01" and resp[8:20] == tid  # Binding success, same transaction
        usage = c.stop()
        assert c.proc is not None and c.proc.poll() is not None
        assert usage["sessions"] >= 2 and usage["sent_bytes"] > 0
    assert (tmp_path / "coturn" / "turnserver.log").stat().st_size > 0
