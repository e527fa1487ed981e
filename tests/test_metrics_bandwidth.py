"""Header arithmetic pinned to hand-computed examples (REFERENCE section 1)."""

from __future__ import annotations

import numpy as np
import pytest

from translab.errors import ConfigError, TranslabError
from translab.metrics.bandwidth import (
    HeaderModel,
    bandwidth,
    rtcp_nack_wire_bytes,
    rtcp_rr_wire_bytes,
    rtcp_sr_wire_bytes,
    rtp_wire_bytes,
    stun_consent_wire_bytes,
    tcp_ack_bytes,
    ws_frame_header_bytes,
    ws_segments,
    ws_tcp_payload_bytes,
    ws_wire_bytes,
)
from translab.trace import make_trace

#: REFERENCE's worked example: no header extension, AES-CM + HMAC-SHA1-80 (10 B tag)
NO_EXT = HeaderModel(rtp_ext_bytes=0, srtp_tag_bytes=10)


def _trace(transport: str, payload: list[int], message: list[int] | None = None, direction: str = "up",
           frame_s: float = 0.02):
    n = len(payload)
    message = payload if message is None else message
    t = np.arange(n) * frame_s
    return make_trace(
        {
            "seq": np.arange(n), "media_ts": np.arange(n) * 320, "frame_samples": [320] * n,
            "capture_s": t, "send_s": t, "arrival_s": t + 0.05, "payload_bytes": payload,
            "message_bytes": message, "wire_bytes": [0] * n, "transport": [transport] * n,
            "direction": [direction] * n, "fec": [False] * n, "duplicates": [0] * n, "payload": [b""] * n,
        },
        {"codec": "opus"},
    )


def test_header_model_defaults():
    hm = HeaderModel()
    assert (hm.ip_bytes, hm.mss, hm.tcp_header_bytes) == (20, 1448, 52)
    v6 = HeaderModel(ip_version=6)
    assert (v6.ip_bytes, v6.mss, v6.tcp_header_bytes) == (40, 1428, 72)


def test_opus_20_and_32_kbps_over_srtp():
    # 20 kbit/s at 20 ms = 50 B payload, 50 packets/s.
    # No extension: 20 IP + 8 UDP + 12 RTP + 50 + 10 tag = 100 B -> 100 * 8 * 50 = 40.0 kbit/s (REFERENCE).
    assert rtp_wire_bytes(50, NO_EXT) == 100
    # aiortc's 8 B extension block (mid + audio level) and its AES-GCM 16 B tag: 114 B -> 45.6 kbit/s.
    assert rtp_wire_bytes(50) == 114
    assert rtp_wire_bytes(50, HeaderModel(srtp_tag_bytes=10)) == 108
    # 32 kbit/s = 80 B: 130 B -> 52.0 kbit/s (REFERENCE), 144 B as aiortc sends it.
    assert rtp_wire_bytes(80, NO_EXT) == 130 and rtp_wire_bytes(80) == 144
    # IPv6 adds 20 B.
    assert rtp_wire_bytes(50, HeaderModel(ip_version=6)) == 134

    bw = bandwidth(_trace("webrtc", [50] * 500), 10.0, NO_EXT)
    assert bw["payload_kbps_up"] == pytest.approx(20.0)
    assert bw["media_wire_kbps_up"] == pytest.approx(40.0)
    assert bandwidth(_trace("webrtc", [80] * 500), 10.0, NO_EXT)["media_wire_kbps_up"] == pytest.approx(52.0)
    assert bandwidth(_trace("webrtc", [50] * 500), 10.0)["media_wire_kbps_up"] == pytest.approx(45.6)


@pytest.mark.parametrize(
    "n, server, client", [(0, 2, 6), (125, 2, 6), (126, 4, 8), (65535, 4, 8), (65536, 10, 14)]
)
def test_ws_header_sizes(n, server, client):
    assert ws_frame_header_bytes(n, client=False) == server
    assert ws_frame_header_bytes(n, client=True) == client


def test_pcm16_16k_20ms_over_wss_client_to_server():
    # 640 B payload + 4 B WS header (126..65535) + 4 B mask = 648 B frame;
    # one TLS 1.3 record: + 5 header + 1 content type + 16 tag = 670 B of TCP stream;
    # 670 <= MSS 1448: one segment, + 20 IP + 20 TCP + 12 timestamps = 722 B;
    # 50 messages/s: 722 * 8 * 50 = 288.8 kbit/s (REFERENCE: "about 289").
    assert ws_tcp_payload_bytes(640, True) == 670
    assert ws_segments(640, True) == 1
    assert ws_wire_bytes(640, True) == 722
    bw = bandwidth(_trace("websocket", [640] * 500), 10.0)
    assert bw["payload_kbps_up"] == pytest.approx(256.0)
    assert bw["media_wire_kbps_up"] == pytest.approx(288.8)
    assert bw["wire_kbps_up"] == pytest.approx(288.8)  # nothing flows up but media (no down data)
    # ACKs down: one per two segments: 250 ACKs x 52 B over 10 s = 10.4 kbit/s.
    assert bw["wire_kbps_down"] == pytest.approx(10.4)
    assert bw["payload_kbps_down"] == 0.0
    # a measured ACK rate replaces the default
    assert bandwidth(_trace("websocket", [640] * 500), 10.0, acks_per_s=50)["wire_kbps_down"] == pytest.approx(20.8)
    # plain ws (no TLS) and server-to-client (no mask)
    assert ws_wire_bytes(640, True, HeaderModel(tls=False)) == 640 + 8 + 52
    assert ws_wire_bytes(640, False) == 640 + 4 + 22 + 52


def test_large_messages_split_into_records_and_segments():
    # PCM16 24 kHz 100 ms = 4800 B: frame 4808, TLS 4830, ceil(4830 / 1448) = 4 segments -> 4830 + 4 * 52.
    assert ws_wire_bytes(4800, True) == 5038
    # 20000 B: 4 B header + 4 mask = 20008 B frame, two TLS records (16384 + 3624): 20052 B,
    # ceil(20052 / 1448) = 14 segments: 20052 + 14 * 52 = 20780.
    assert ws_tcp_payload_bytes(20000, True) == 20052
    assert ws_segments(20000, True) == 14
    assert ws_wire_bytes(20000, True) == 20780
    # 70000 B: 10 B header + 4 mask = 70014, ceil(70014 / 16384) = 5 records: 70124 B,
    # ceil(70124 / 1448) = 49 segments: 70124 + 49 * 52 = 72672.
    assert ws_wire_bytes(70000, True) == 72672
    # IPv6: MSS 1428, 72 B per segment: ceil(4830 / 1428) = 4 -> 4830 + 288
    assert ws_wire_bytes(4800, True, HeaderModel(ip_version=6)) == 5118


def test_json_base64_inflation_visible():
    # 640 B PCM -> base64 856 B + JSON keys
    payload, message = 640, 856 + 55
    bw = bandwidth(_trace("websocket", [payload] * 50, [message] * 50), 1.0)
    assert bw["payload_kbps_up"] == pytest.approx(256.0)
    assert bw["message_kbps_up"] == pytest.approx(message * 8 * 50 / 1000)
    assert bw["message_kbps_up"] / bw["payload_kbps_up"] > 4 / 3


def test_webrtc_control_traffic():
    # SR (28) + SDES (4 + 4 + 2 + 36 CNAME + 2 -> 48) = 76, + SRTCP index 4 + tag 10 = 90, + 28 = 118 B
    assert rtcp_sr_wire_bytes(NO_EXT) == 118 and rtcp_sr_wire_bytes() == 124  # aiortc's 16 B tag
    # RR with one block: 8 + 24 = 32, + 14 = 46, + 28 = 74 B
    assert rtcp_rr_wire_bytes(NO_EXT) == 74 and rtcp_rr_wire_bytes() == 80
    # generic NACK: 12 B + 4 B per FCI; one FCI covers a PID and the 16 sequence numbers after it
    assert rtcp_nack_wire_bytes([5], NO_EXT) == 58 and rtcp_nack_wire_bytes([5, 21]) == 64
    assert rtcp_nack_wire_bytes([5, 22, 23], NO_EXT) == 62
    # consent: request 88 + 28, response 64 + 28 (IPv4); IPv6 response 76 + 48
    assert stun_consent_wire_bytes() == (116, 92)
    assert stun_consent_wire_bytes(HeaderModel(ip_version=6)) == (136, 124)
    assert tcp_ack_bytes() == 52
    bw = bandwidth(_trace("webrtc", [50] * 500), 10.0, NO_EXT)
    stun_kbps = (116 + 92) * 8 / 5 / 1000  # 0.3328
    assert bw["control_kbps_up"] == pytest.approx(118 * 8 / 1000 + stun_kbps)
    assert bw["control_kbps_down"] == pytest.approx(74 * 8 / 1000 + stun_kbps)
    assert bw["wire_kbps_up"] == pytest.approx(40.0 + 0.944 + 0.3328)
    assert bw["wire_kbps_down"] == pytest.approx(0.592 + 0.3328)


def test_both_directions():
    up = _trace("webrtc", [50] * 50)
    down = _trace("webrtc", [80] * 50, direction="down")
    import pandas as pd

    both = pd.concat([up, down], ignore_index=True)
    bw = bandwidth(both, 1.0, NO_EXT)
    assert bw["payload_kbps_down"] == pytest.approx(32.0)
    assert bw["media_wire_kbps_down"] == pytest.approx(52.0)
    assert bw["control_kbps_up"] == bw["control_kbps_down"]  # SR + RR + consent each way
    assert bw["packets_per_s_up"] == 50.0


def test_lost_packets_still_count_as_sent():
    tr = _trace("webrtc", [50] * 50)
    tr.loc[::2, "arrival_s"] = np.nan
    assert bandwidth(tr, 1.0, NO_EXT)["media_wire_kbps_up"] == pytest.approx(40.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ip_version": 5},
        {"rtp_ext_bytes": 6},
        {"tcp_options_bytes": 13},
        {"mss": 1460},  # too big for IPv4 + timestamps in a 1500 B MTU
        {"srtp_tag_bytes": -1},
    ],
)
def test_bad_header_model(kwargs):
    with pytest.raises(ConfigError) as e:
        HeaderModel(**kwargs)
    assert e.value.field == next(iter(kwargs))


def test_bad_inputs():
    with pytest.raises(ConfigError):
        rtp_wire_bytes(-1)
    with pytest.raises(ConfigError):
        bandwidth(_trace("webrtc", [50]), 0.0)
    tr = _trace("webrtc", [50] * 2)
    tr["transport"] = ["webrtc", "websocket"]
    with pytest.raises(TranslabError):
        bandwidth(tr, 1.0)


def test_tcp_retransmissions_add_segments_and_acks():
    tr = _trace("websocket", [640] * 500)
    base = bandwidth(tr, 10.0)
    # 50 retransmitted segments of the mean data-segment size (722 B): + 50 * 722 * 8 / 10 s
    bw = bandwidth(tr, 10.0, retransmitted_segments=50)
    assert bw["media_wire_kbps_up"] == pytest.approx(base["media_wire_kbps_up"] + 50 * 722 * 8 / 10 / 1000)
    assert bw["packets_per_s_up"] == pytest.approx(55.0)
    assert bw["wire_kbps_down"] == pytest.approx(275 * 52 * 8 / 10 / 1000)  # one ACK per 2 of 550 segments
    assert bandwidth(tr, 10.0, retransmitted_segments={"down": 5}) == base  # no down data to resend
    with pytest.raises(ConfigError):
        bandwidth(tr, 10.0, retransmitted_segments=-1)
