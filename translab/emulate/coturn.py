"""coturn (the Debian ``turnserver``) for the namespace lab: a generated configuration, a
certificate made for the run, TURN REST credentials, start/stop inside the public namespace, and the
relay's byte counters read back from its log.

Listeners: STUN/TURN on 3478 UDP+TCP at each public server address (two addresses enable coturn's
RFC 5780 NAT behaviour discovery: CHANGE-REQUEST answered from the alternate address and port
3479), TURN over TLS on 443. Credentials: ``use-auth-secret`` with a shared secret; a client's
username is ``<expiry unix time>:<name>`` and its password base64(HMAC-SHA1(secret, username)).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from translab.emulate.netns.lab import Lab

REALM = "translab.test"
STUN_PORT = 3478
ALT_PORT = 3479
TLS_PORT = 443


def turn_rest_credentials(secret: str, name: str = "translab", ttl_s: float = 3600.0,
                          now_s: float | None = None) -> tuple[str, str]:
    """TURN REST credentials: ``(username, password)`` valid for ``ttl_s`` seconds from ``now_s``
    (Unix time; default now). username = ``"<expiry>:<name>"``, password = base64 HMAC-SHA1."""
    expiry = int((time.time() if now_s is None else now_s) + ttl_s)
    username = f"{expiry}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def make_certificate(directory: Path, ips: tuple[str, ...], name: str = "turn.translab.test") -> tuple[Path, Path]:
    """A self-signed certificate (EC P-256, valid 2 days) for ``ips`` and ``name``; returns
    ``(cert_path, key_path)`` in PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(name)] + [x509.IPAddress(ipaddress.IPv4Address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "turn-cert.pem", directory / "turn-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def config_text(*, ips: tuple[str, ...], secret: str, cert: Path, pkey: Path, log_file: Path,
                pid_file: Path, stun_only: bool = False, db_file: Path | None = None) -> str:
    """The turnserver.conf for the lab (pure: same inputs, same text). ``db_file``: coturn's SQLite
    database, kept per run so concurrent labs never share /var/lib/turn/turndb."""
    lines = [
        f"listening-port={STUN_PORT}",
        f"alt-listening-port={ALT_PORT}",
        f"tls-listening-port={TLS_PORT}",
        *[f"listening-ip={ip}" for ip in ips],
        f"relay-ip={ips[0]}",
        "min-port=49152",
        "max-port=65535",
        "fingerprint",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        f"cert={cert}",
        f"pkey={pkey}",
        "no-dtls",
        "no-cli",
        "no-multicast-peers",
        # Peers live in the lab's own ranges only (LAN sides' public addresses, servers, LANs).
        "allowed-peer-ip=198.18.0.0-198.19.255.255",
        "allowed-peer-ip=10.0.0.0-10.255.255.255",
        f"log-file={log_file}",
        "simple-log",
        "verbose",
        f"pidfile={pid_file}",
        "no-software-attribute",
    ]
    if db_file is not None:
        lines.append(f"userdb={db_file}")
    if stun_only:
        lines.append("stun-only")
    return "\n".join(lines) + "\n"


def stun_binding(sock: socket.socket, server: tuple[str, int], timeout_s: float = 0.5) -> tuple[str, int] | None:
    """Send one RFC 5389 Binding request on UDP ``sock``; the XOR-MAPPED-ADDRESS (ip, port) or None."""
    tid = secrets.token_bytes(12)
    sock.settimeout(timeout_s)
    sock.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, server)
    try:
        data, _ = sock.recvfrom(2048)
    except (socket.timeout, OSError):
        return None
    if len(data) < 20 or data[8:20] != tid:
        return None
    pos = 20
    while pos + 4 <= len(data):
        atype, alen = struct.unpack_from("!HH", data, pos)
        val = data[pos + 4: pos + 4 + alen]
        if atype == 0x0020 and alen >= 8 and val[1] == 1:
            port = struct.unpack_from("!H", val, 2)[0] ^ 0x2112
            ip = bytes(a ^ b for a, b in zip(val[4:8], b"\x21\x12\xa4\x42"))
            return socket.inet_ntoa(ip), port
        pos += 4 + alen + (-alen % 4)
    return None


_USAGE = re.compile(r"session (\d+): (peer )?usage: realm=<[^>]*>, username=<[^>]*>, "
                    r"rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


def relay_usage(log_text: str) -> dict[str, int]:
    """coturn's per-session counters summed over sessions (the last report of each session wins).

    Client side (``usage:`` lines, between TURN clients and the server): ``received_*`` from
    clients, ``sent_*`` to clients. Peer side (``peer usage:`` lines, between the relay addresses
    and the peers): ``peer_received_*``, ``peer_sent_*``. Packets and bytes as coturn counts them
    (TURN framing included on the client side).
    """
    client: dict[str, tuple[int, ...]] = {}
    peer: dict[str, tuple[int, ...]] = {}
    for m in _USAGE.finditer(log_text):
        (peer if m.group(2) else client)[m.group(1)] = tuple(int(x) for x in m.groups()[2:])
    out = {"sessions": len(client)}
    for prefix, table in (("", client), ("peer_", peer)):
        tot = [sum(v[i] for v in table.values()) for i in range(4)]
        out.update({f"{prefix}received_packets": tot[0], f"{prefix}received_bytes": tot[1],
                    f"{prefix}sent_packets": tot[2], f"{prefix}sent_bytes": tot[3]})
    return out


@dataclass
class Coturn:
    """A turnserver running in ``lab``'s public namespace; use as a context manager."""

    lab: "Lab"
    stun_only: bool = False
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen | None = None

    @property
    def dir(self) -> Path:
        return self.lab.run_dir / "coturn"

    @property
    def ips(self) -> tuple[str, ...]:
        """The primary and alternate server addresses (the first two of the lab's)."""
        return tuple(self.lab.config.server_ips[:2])

    @property
    def log_path(self) -> Path:
        return self.dir / "turnserver.log"

    def credentials(self, ttl_s: float = 3600.0) -> tuple[str, str]:
        """Fresh TURN REST ``(username, password)``."""
        return turn_rest_credentials(self.secret, ttl_s=ttl_s)

    def ice_urls(self, option: str) -> list[str]:
        """The ICE server URLs of an ICE option (``stun``, ``turn-udp``, ``turn-tcp``, ``turns-443``)."""
        ip = self.ips[0]
        return {
            "none": [],
            "stun": [f"stun:{ip}:{STUN_PORT}"],
            "turn-udp": [f"turn:{ip}:{STUN_PORT}?transport=udp"],
            "turn-tcp": [f"turn:{ip}:{STUN_PORT}?transport=tcp"],
            "turns-443": [f"turns:{ip}:{TLS_PORT}?transport=tcp"],
        }[option]

    def start(self, timeout_s: float = 5.0) -> "Coturn":
        """Write config and certificate, start turnserver, wait until it answers STUN."""
        if shutil.which("turnserver") is None:
            raise RuntimeError("coturn's turnserver is not installed (apt-get install coturn)")
        self.dir.mkdir(parents=True, exist_ok=True)
        cert, key = make_certificate(self.dir, self.ips)
        conf = self.dir / "turnserver.conf"
        conf.write_text(config_text(ips=self.ips, secret=self.secret, cert=cert, pkey=key,
                                    log_file=self.log_path, pid_file=self.dir / "turnserver.pid",
                                    stun_only=self.stun_only, db_file=self.dir / "turndb"))
        os.chmod(conf, 0o600)
        out = open(self.dir / "turnserver.stdout", "wb")
        self.proc = self.lab.popen("pub", ["turnserver", "-c", str(conf)], stdout=out,
                                   stderr=subprocess.STDOUT)
        out.close()
        probe = self.lab.socket("pub")
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"turnserver exited with {self.proc.returncode}; see {self.log_path}")
                if stun_binding(probe, (self.ips[0], STUN_PORT), 0.1) is not None:
                    return self
                time.sleep(0.05)
        finally:
            probe.close()
        self.stop()
        raise RuntimeError(f"turnserver did not answer STUN within {timeout_s} s; see {self.log_path}")

    def stop(self) -> dict[str, Any]:
        """Stop turnserver; returns its relay counters read from the log (kept in the run dir)."""
        if self.proc is not None and self.proc.poll() is None:
            self._await_usage(grace_s=2.0)
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(2)
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return relay_usage(text)

    def _await_usage(self, grace_s: float) -> None:
        """Wait (at most ``grace_s``) until every session coturn opened has logged its usage line
        (it does so when the client deallocates or the TCP connection closes)."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            opened = set(re.findall(r"session (\d+): new,", text))
            logged = set(re.findall(r"session (\d+): usage:", text))
            if opened <= logged:
                return
            time.sleep(0.1)

    def __enter__(self) -> "Coturn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
