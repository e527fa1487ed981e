"""WebRTC signalling crosses the emulated link (issue 10, "set-up like for like"): the caller's offer
goes as an HTTP(S) POST of JSON {sdp, type} through the emulator's TCP relay and the answer comes back
the same way, so on a path with 100 ms each way the exchange costs the TCP handshake, the TLS
handshake and the request/answer round trip, as WebSocket's TCP + TLS + upgrade do."""

from __future__ import annotations

import asyncio

import pytest

from translab.config import CallConfig

pytestmark = pytest.mark.live

#: a fixed one-way delay (ms) per direction, no jitter, no loss
ONE_WAY_MS = 100.0
#: the emulator never releases early; a little slack for clock reads around the milestones (ms)
SLACK_MS = 2.0


def _fixed_delay_profile(tmp_path, one_way_ms: float) -> str:
    p = tmp_path / f"fixed-{one_way_ms:g}ms.toml"
    link = (f'delay = {{ base_ms = {one_way_ms}, jitter_ms = 0.0, distribution = "uniform" }}\n'
            'capacity = { rate_kbps = 100000 }\n')
    p.write_text(f'description = "fixed {one_way_ms:g} ms each way, no loss"\nsource = "test"\n'
                 f"[up]\n{link}[down]\n{link}")
    return str(p)


def _call(profile: str, tmp_path, tls: bool, transport: str = "webrtc") -> dict:
    from translab.live import live_call

    cfg = CallConfig(transport=transport, profile=profile, duration_s=0.5, metrics=(), seed=3, tls=tls)
    res = live_call(cfg, tmp_path / f"{transport}-{tls}", drain_s=0.2, connect_timeout_s=10)
    s = res.summary
    assert s["status"] == "ok", s.get("reason")
    return s


@pytest.mark.parametrize("tls", [False, True])
def test_webrtc_signalling_takes_round_trips_over_a_100ms_path(tmp_path, tls: bool) -> None:
    s = _call(_fixed_delay_profile(tmp_path, ONE_WAY_MS), tmp_path, tls)
    rtt = 2 * ONE_WAY_MS
    ms = {k[len("setup_"):-len("_ms")]: v for k, v in s.items() if k.startswith("setup_") and k.endswith("_ms")}
    # the TCP handshake (SYN up, SYN-ACK down) after the offer is ready
    assert ms["tcp_connected"] - ms["offer_ready"] >= rtt - SLACK_MS, ms
    before_post = ms["tcp_connected"]
    if tls:  # TLS 1.3: one more round trip before the request can go
        assert ms["tls_done"] - ms["tcp_connected"] >= rtt - SLACK_MS, ms
        before_post = ms["tls_done"]
    else:
        assert "tls_done" not in ms
    # the POST goes up and the answer comes down: at least one round trip
    assert ms["answer_received"] - before_post >= rtt - SLACK_MS, ms
    n_rtt = 3 if tls else 2
    assert ms["signalling_done"] >= n_rtt * rtt - SLACK_MS, ms
    # and not absurdly more (no retransmission on a lossless path; a loaded host adds tens of ms)
    assert ms["signalling_done"] < n_rtt * rtt + 400, ms
    # ICE and DTLS only start once the answer is in: the caller's checks need another round trip
    assert ms["signalling_done"] < ms["ice_connected"] <= ms["dtls_connected"] < ms["first_rtp_received"]
    assert ms["ice_connected"] - ms["answer_received"] >= ONE_WAY_MS - SLACK_MS, ms
    # the offer and the answer really crossed the emulated TCP path (an SDP offer is > 500 bytes)
    assert s["emu_tcp_up_app_bytes_in"] > 500 and s["emu_tcp_down_app_bytes_in"] > 500


def test_webrtc_signalling_on_clean_lan_stays_fast(tmp_path) -> None:
    s = _call("clean-lan", tmp_path, tls=True)
    assert s["setup_offer_ready_ms"] < s["setup_tcp_connected_ms"] < s["setup_tls_done_ms"] \
        < s["setup_answer_received_ms"] <= s["setup_signalling_done_ms"] < s["setup_ice_connected_ms"]
    # sub-millisecond link: what is left is the two stacks' own work on a shared host
    assert s["setup_signalling_done_ms"] < 150, s["setup_signalling_done_ms"]
    assert s["setup_first_rtp_received_ms"] < 400, s["setup_first_rtp_received_ms"]


def test_bad_offer_is_refused_with_the_servers_reason() -> None:
    """post_offer surfaces an HTTP error from the signalling server as ConnectionError with its text."""
    import socket

    from translab.transport.signalling import SignallingServer, post_offer

    async def on_offer(sdp: str) -> str:
        raise ValueError("no audio m-line")

    async def main() -> str:
        server = SignallingServer(on_offer)
        host, port = await server.start()
        try:
            sock = socket.create_connection((host, port))
            sock.setblocking(False)
            with pytest.raises(ConnectionError) as err:
                await post_offer(sock, {"sdp": "v=0\r\n", "type": "offer"}, host=f"{host}:{port}", timeout_s=5)
            return str(err.value)
        finally:
            await server.close()

    msg = asyncio.run(main())
    assert msg.startswith("HTTP 400") and "no audio m-line" in msg
