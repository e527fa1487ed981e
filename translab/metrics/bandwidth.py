"""Payload and wire bandwidth under a stated header model.

Header model (every size in bytes; see :class:`HeaderModel`)
--------------------------------------------------------------
WebRTC, one RTP packet per datagram::

    IP (20 v4 / 40 v6) + UDP 8 + RTP 12 + header extensions + payload + SRTP auth tag

The extension block defaults to 8 B: what aiortc 1.16 puts on audio packets, a one-byte-header
(RFC 8285) block of 4 B (0xBEDE + length) + ``sdes:mid`` "0" (1 B id/len + 1 B) +
``ssrc-audio-level`` (1 + 1 B), already 4-byte aligned (checked by serialising an aiortc
``RtpPacket`` with its audio extension map: 12 + 8 + payload). The SRTP tag defaults to 16 B: two
aiortc 1.16 peers (pylibsrtp 1.0) negotiate SRTP_AEAD_AES_256_GCM, the first profile of aiortc's
list, and its datagrams on the emulated wire are 12 + 8 + payload + 16 B (checked by
tests/test_live_protection_wire.py); AES_CM_128_HMAC_SHA1_80 would be 10.

Control traffic of WebRTC, as per-second overheads per direction (aiortc 1.16 behaviour, read from
``rtcrtpsender.py`` / ``rtcrtpreceiver.py`` and ``aioice/ice.py``):

* RTCP: the sender of a stream sends an SR (28 B, no report blocks) + SDES with its CNAME (a
  36-character UUID: 4 + 4 + 2 + 36 + 2 -> 48 B) every 0.5 to 1.5 s (uniform, mean 1 s); the
  receiver sends a bare RR with one report block (32 B) on the same schedule. SRTCP adds the 4 B
  E-flag/index and the auth tag. With IPv4 and a 16 B tag: SR+SDES 124 B/s on the media's
  direction, RR 80 B/s on the reverse one. A generic NACK (RFC 4585) is 12 B + 4 B per FCI.
* STUN consent freshness (RFC 7675): each peer sends one Binding request every 4 to 6 s (mean 5 s)
  on the nominated pair and answers the other's: a request is 88 B (header 20, USERNAME of two
  4-character ufrags 16, PRIORITY 8, ICE-CONTROLLING/CONTROLLED 12, MESSAGE-INTEGRITY 24,
  FINGERPRINT 8), a success response 64 B (IPv4 XOR-MAPPED-ADDRESS) or 76 B (IPv6), + IP + UDP.
  So each direction carries one request and one response per 5 s.

WebSocket, one message per write, ``TCP_NODELAY`` (no coalescing of messages)::

    WS frame  = WS header (2 B if payload < 126, 4 B if < 65536, else 10 B) + 4 B mask (client
                to server only) + message
    TLS 1.3   = the frame split into records of at most 16384 B, each + 5 B header + 1 B inner
                content type + 16 B AEAD tag
    TCP       = the record bytes split into segments of at most MSS, each + IP + TCP 20 B + options
                (12 B: timestamps)

The receiver's pure ACKs (IP + TCP + options) flow the other way: one per two data segments
(delayed ACK, RFC 5681) unless a measured rate is given. ACKs piggybacked on reverse data and
TCP retransmissions are not counted; neither is the connection set-up (TCP/TLS/HTTP upgrade, or
ICE/DTLS), which does not recur during a call.

In a trace, direction "up" is the caller's sending direction and the caller is the WebSocket
client (its frames are masked); "down" frames come from the server (unmasked).

JSON + base64 inflation shows as ``message_kbps`` against ``payload_kbps``.
Units: sizes in bytes, rates in kbit/s (1 kbit = 1000 bit) where the name says ``_kbps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from translab.errors import ConfigError, TranslabError, check_choice, check_range

__all__ = [
    "HeaderModel",
    "bandwidth",
    "rtcp_rr_wire_bytes",
    "rtcp_sr_wire_bytes",
    "rtp_wire_bytes",
    "stun_consent_wire_bytes",
    "tcp_ack_bytes",
    "ws_frame_header_bytes",
    "ws_segments",
    "ws_tcp_payload_bytes",
    "ws_wire_bytes",
]

UDP_BYTES = 8
RTP_BYTES = 12
TCP_BYTES = 20
SRTCP_INDEX_BYTES = 4
TLS_RECORD_MAX = 16384  #: maximum TLS plaintext per record (RFC 8446)
TLS13_RECORD_OVERHEAD = 5 + 1 + 16  #: header + inner content type + AEAD tag
RTCP_SR_BYTES = 28  #: header 4 + SSRC 4 + sender info 20, no report blocks (aiortc's SR)
RTCP_RR_BYTES = 8  #: header 4 + SSRC 4, + 24 per report block
RTCP_NACK_BYTES = 12  #: header 4 + sender SSRC 4 + media SSRC 4, + 4 per FCI
RTCP_REPORT_BLOCK_BYTES = 24
STUN_REQUEST_BYTES = 88  #: aioice consent Binding request (4-character ufrags)
STUN_RESPONSE_BYTES = {4: 64, 6: 76}  #: Binding success response by IP version


@dataclass(frozen=True)
class HeaderModel:
    """What is counted on the wire. Sizes in bytes, intervals in seconds.

    ``mss`` (TCP maximum segment size) defaults to ``mtu - IP - TCP - options`` (1448 for IPv4 with
    timestamps, 1428 for IPv6).
    """

    ip_version: int = 4
    rtp_ext_bytes: int = 8  #: aiortc audio: mid + ssrc-audio-level in a one-byte-header block
    srtp_tag_bytes: int = 16  #: AEAD_AES_256_GCM (aiortc 1.16); 10 for AES_CM_128_HMAC_SHA1_80
    tcp_options_bytes: int = 12  #: TCP timestamps option (10 B + 2 B padding)
    tls: bool = True  #: wss (TLS 1.3 records) or plain ws
    mtu: int = 1500
    mss: int | None = None
    rtcp_interval_s: float = 1.0  #: aiortc: uniform 0.5..1.5 s
    consent_interval_s: float = 5.0  #: aioice: uniform 4..6 s
    cname_bytes: int = 36  #: aiortc CNAME is str(uuid4())

    def __post_init__(self) -> None:
        check_choice("ip_version", self.ip_version, (4, 6))
        check_range("rtp_ext_bytes", self.rtp_ext_bytes, 0, 1024, "bytes")
        if self.rtp_ext_bytes % 4:
            raise ConfigError("rtp_ext_bytes", self.rtp_ext_bytes, "a multiple of 4 (RFC 3550 extension words)")
        check_range("srtp_tag_bytes", self.srtp_tag_bytes, 0, 32, "bytes")
        check_range("tcp_options_bytes", self.tcp_options_bytes, 0, 40, "bytes")
        if self.tcp_options_bytes % 4:
            raise ConfigError("tcp_options_bytes", self.tcp_options_bytes, "a multiple of 4, 0 to 40")
        check_range("mtu", self.mtu, 576, 65535, "bytes")
        max_mss = self.mtu - self.ip_bytes - TCP_BYTES - self.tcp_options_bytes
        if self.mss is None:
            object.__setattr__(self, "mss", max_mss)
        else:
            check_range("mss", self.mss, 1, max_mss, "bytes (mtu - IP - TCP - options)")
        check_range("rtcp_interval_s", self.rtcp_interval_s, 1e-3, math.inf, "s")
        check_range("consent_interval_s", self.consent_interval_s, 1e-3, math.inf, "s")
        check_range("cname_bytes", self.cname_bytes, 1, 255, "bytes")

    @property
    def ip_bytes(self) -> int:
        """IP header size: 20 B (IPv4, no options) or 40 B (IPv6, no extension headers)."""
        return 20 if self.ip_version == 4 else 40

    @property
    def udp_header_bytes(self) -> int:
        """IP + UDP header of one datagram: 28 B (IPv4) or 48 B (IPv6)."""
        return self.ip_bytes + UDP_BYTES

    @property
    def tcp_header_bytes(self) -> int:
        """IP + TCP + options of one segment (also the size of a pure ACK)."""
        return self.ip_bytes + TCP_BYTES + self.tcp_options_bytes


def _nonneg(field: str, n: int) -> int:
    if int(n) != n or n < 0:
        raise ConfigError(field, n, "a whole number of bytes >= 0")
    return int(n)


def rtp_wire_bytes(payload_bytes: int, hm: HeaderModel = HeaderModel()) -> int:
    """Bytes on the wire for one SRTP packet carrying ``payload_bytes`` of RTP payload:
    IP + UDP 8 + RTP 12 + extensions + payload + SRTP tag."""
    p = _nonneg("payload_bytes", payload_bytes)
    return hm.ip_bytes + UDP_BYTES + RTP_BYTES + hm.rtp_ext_bytes + p + hm.srtp_tag_bytes


def ws_frame_header_bytes(message_bytes: int, client: bool) -> int:
    """WebSocket frame header for a ``message_bytes`` payload (RFC 6455 5.2): 2 B below 126, 4 B
    below 65536, else 10 B; + 4 B masking key for client-to-server frames."""
    n = _nonneg("message_bytes", message_bytes)
    base = 2 if n < 126 else 4 if n < 65536 else 10
    return base + (4 if client else 0)


def ws_tcp_payload_bytes(message_bytes: int, client: bool, hm: HeaderModel = HeaderModel()) -> int:
    """Bytes one WebSocket message adds to the TCP byte stream: the frame (header, mask, message)
    plus, with TLS, 22 B per TLS 1.3 record of at most 16384 B."""
    frame = ws_frame_header_bytes(message_bytes, client) + int(message_bytes)
    if not hm.tls:
        return frame
    records = max(1, math.ceil(frame / TLS_RECORD_MAX))
    return frame + records * TLS13_RECORD_OVERHEAD


def ws_segments(message_bytes: int, client: bool, hm: HeaderModel = HeaderModel()) -> int:
    """TCP segments one message is sent in (one write, no coalescing): ceil(stream bytes / MSS)."""
    assert hm.mss is not None
    return math.ceil(ws_tcp_payload_bytes(message_bytes, client, hm) / hm.mss)


def ws_wire_bytes(message_bytes: int, client: bool, hm: HeaderModel = HeaderModel()) -> int:
    """Bytes on the wire for one WebSocket message: its TCP stream bytes plus IP + TCP + options
    for each segment."""
    return ws_tcp_payload_bytes(message_bytes, client, hm) + ws_segments(message_bytes, client, hm) * hm.tcp_header_bytes


def tcp_ack_bytes(hm: HeaderModel = HeaderModel()) -> int:
    """Bytes on the wire for one pure TCP ACK: IP + TCP 20 + options (52 B for IPv4 with timestamps)."""
    return hm.tcp_header_bytes


def rtcp_sr_wire_bytes(hm: HeaderModel = HeaderModel()) -> int:
    """One aiortc sender RTCP compound (SR without report blocks + SDES CNAME) as SRTCP on the wire."""
    sdes = 4 + 4 + 2 + hm.cname_bytes + 2  # header, SSRC, CNAME item, end-of-chunk nulls
    sdes += -sdes % 4
    return hm.ip_bytes + UDP_BYTES + RTCP_SR_BYTES + sdes + SRTCP_INDEX_BYTES + hm.srtp_tag_bytes


def rtcp_rr_wire_bytes(hm: HeaderModel = HeaderModel(), report_blocks: int = 1) -> int:
    """One aiortc receiver report (bare RR, ``report_blocks`` x 24 B) as SRTCP on the wire."""
    check_range("report_blocks", report_blocks, 0, 31)
    rr = RTCP_RR_BYTES + RTCP_REPORT_BLOCK_BYTES * report_blocks
    return hm.ip_bytes + UDP_BYTES + rr + SRTCP_INDEX_BYTES + hm.srtp_tag_bytes


def rtcp_nack_wire_bytes(seqs: "list[int]", hm: HeaderModel = HeaderModel()) -> int:
    """One RTCP generic NACK (RFC 4585 6.2.1) for ``seqs`` as SRTCP on the wire: header + sender and
    media SSRC 12 B, 4 B per FCI (a PID and a 16-bit mask covering 17 sequence numbers), SRTCP
    index and tag, UDP, IP."""
    fci = 0
    last_pid = None
    for s in sorted(seqs):
        if last_pid is None or s > last_pid + 16:
            fci += 1
            last_pid = s
    return hm.ip_bytes + UDP_BYTES + RTCP_NACK_BYTES + 4 * fci + SRTCP_INDEX_BYTES + hm.srtp_tag_bytes


def stun_consent_wire_bytes(hm: HeaderModel = HeaderModel()) -> tuple[int, int]:
    """(request, response) wire bytes of one RFC 7675 consent check as aioice sends it."""
    udp_ip = hm.ip_bytes + UDP_BYTES
    return STUN_REQUEST_BYTES + udp_ip, STUN_RESPONSE_BYTES[hm.ip_version] + udp_ip


def _kbps(nbytes: float, duration_s: float) -> float:
    return float(nbytes) * 8.0 / duration_s / 1000.0


def _acks_for(direction: str, acks_per_s: float | Mapping[str, float] | None) -> float | None:
    if acks_per_s is None:
        return None
    if isinstance(acks_per_s, Mapping):
        v = acks_per_s.get(direction)
        return None if v is None else float(v)
    return float(acks_per_s)


def bandwidth(
    trace: pd.DataFrame,
    duration_s: float,
    hm: HeaderModel = HeaderModel(),
    acks_per_s: float | Mapping[str, float] | None = None,
    retransmitted_segments: int | Mapping[str, int] = 0,
) -> dict[str, Any]:
    """Mean bit rates of a call over ``duration_s`` seconds, per direction ("up", "down").

    Every row of ``trace`` is a packet that was sent (lost ones included: they used the sender's
    link); wire sizes are recomputed from ``message_bytes`` under ``hm`` (the trace's own
    ``wire_bytes`` column is not read). ``acks_per_s``: measured rate of pure TCP ACKs answering
    the data of a direction (a number for both, or {"up": .., "down": ..}); default: one per two
    data segments. ``retransmitted_segments`` (WebSocket only: a number for "up", or per direction):
    TCP segments sent again, each counted at the mean wire size of that direction's data segments
    (and acknowledged like the others).

    Returns (kbit/s): ``payload_kbps_<d>`` (codec payload), ``message_kbps_<d>`` (RTP payload or
    WebSocket message incl. JSON/base64), ``media_wire_kbps_<d>`` (media packets on the wire),
    ``control_kbps_<d>`` (TCP ACKs for WebSocket; RTCP + STUN consent for WebRTC, flowing in
    direction d), ``wire_kbps_<d>`` (media + control), plus ``packets_per_s_<d>`` (media packets
    or TCP segments). Rates of a direction without media are 0 (its control
    traffic still counts).
    """
    check_range("duration_s", duration_s, 1e-9, math.inf, "s")
    for col in ("message_bytes", "payload_bytes", "transport", "direction"):
        if col not in trace.columns:
            raise TranslabError(f"trace: missing column {col!r} needed for bandwidth")
    transports = set(trace["transport"].astype(str).unique())
    if len(transports) > 1:
        raise ConfigError("transport", sorted(transports), "one transport per trace")
    transport = transports.pop() if transports else str(trace.attrs.get("transport", "webrtc"))
    check_choice("transport", transport, ("webrtc", "websocket"))
    directions = set(trace["direction"].astype(str).unique())
    bad = directions - {"up", "down"}
    if bad:
        raise ConfigError("direction", sorted(bad)[0], "up, down")

    out: dict[str, Any] = {}
    media_wire: dict[str, float] = {}
    units: dict[str, int] = {}  # packets (webrtc) or TCP segments (websocket) per direction
    for d in ("up", "down"):
        rows = trace[trace["direction"] == d]
        msg = rows["message_bytes"].to_numpy(dtype=np.int64)
        out[f"payload_kbps_{d}"] = _kbps(rows["payload_bytes"].to_numpy(dtype=np.int64).sum(), duration_s)
        out[f"message_kbps_{d}"] = _kbps(msg.sum(), duration_s)
        if transport == "webrtc":
            media_wire[d] = float(sum(rtp_wire_bytes(int(m), hm) for m in msg))
            units[d] = len(msg)
        else:
            client = d == "up"
            media_wire[d] = float(sum(ws_wire_bytes(int(m), client, hm) for m in msg))
            units[d] = int(sum(ws_segments(int(m), client, hm) for m in msg))

    control: dict[str, float] = {"up": 0.0, "down": 0.0}
    other = {"up": "down", "down": "up"}
    if transport == "webrtc":
        req, resp = stun_consent_wire_bytes(hm)
        for d in ("up", "down"):
            control[d] += (req + resp) * duration_s / hm.consent_interval_s
            if units[d]:
                control[d] += rtcp_sr_wire_bytes(hm) * duration_s / hm.rtcp_interval_s
                control[other[d]] += rtcp_rr_wire_bytes(hm) * duration_s / hm.rtcp_interval_s
    else:
        rtx = retransmitted_segments if isinstance(retransmitted_segments, Mapping) else {"up": retransmitted_segments}
        for d in ("up", "down"):
            n_rtx = int(rtx.get(d, 0))
            if n_rtx < 0:
                raise ConfigError("retransmitted_segments", n_rtx, "a whole number >= 0")
            if n_rtx and units[d]:
                media_wire[d] += n_rtx * media_wire[d] / units[d]
                units[d] += n_rtx
        for d in ("up", "down"):
            rate = _acks_for(d, acks_per_s)
            n_acks = rate * duration_s if rate is not None else math.ceil(units[d] / 2)
            control[other[d]] += n_acks * tcp_ack_bytes(hm)

    for d in ("up", "down"):
        out[f"media_wire_kbps_{d}"] = _kbps(media_wire[d], duration_s)
        out[f"control_kbps_{d}"] = _kbps(control[d], duration_s)
        out[f"wire_kbps_{d}"] = _kbps(media_wire[d] + control[d], duration_s)
        out[f"packets_per_s_{d}"] = units[d] / duration_s
    return out
