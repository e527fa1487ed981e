"""WebRTC path: fmtp advertising, stats conversion, and a short live call whose RTP taps see
translab's own Opus packets byte for byte."""

from __future__ import annotations

import asyncio
import types

import numpy as np
import pytest

from translab.config import CallConfig
from translab.transport.webrtc import advertised_opus, opus_fmtp, rtc_stats


def test_opus_fmtp_describes_the_config() -> None:
    cfg = CallConfig(bitrate=32000, frame_ms=60, fec=True, dtx=True).resolved()
    f = opus_fmtp(cfg)
    assert f["maxaveragebitrate"] == 32000 and f["ptime"] == 60
    assert f["useinbandfec"] == 1 and f["usedtx"] == 1


def test_advertised_opus_restores_aiortc_defaults_even_on_error() -> None:
    from aiortc.codecs import CODECS

    before = dict(CODECS["audio"][0].parameters)
    with pytest.raises(RuntimeError):
        with advertised_opus({"maxaveragebitrate": 12000}):
            assert CODECS["audio"][0].parameters == {"maxaveragebitrate": 12000}
            raise RuntimeError
    assert dict(CODECS["audio"][0].parameters) == before


def test_rtc_stats_converts_jitter_to_seconds() -> None:
    s = types.SimpleNamespace(type="inbound-rtp", id="x", timestamp=0, jitter=480, packetsLost=3, kind="audio")
    r = types.SimpleNamespace(type="remote-inbound-rtp", id="y", timestamp=0, roundTripTime=0.05, jitter=96)
    out = rtc_stats({"a": s, "b": r}, "rtc")
    assert out["rtc_inbound_rtp_jitter_s"] == pytest.approx(0.01)
    assert out["rtc_remote_inbound_rtp_jitter_s"] == pytest.approx(0.002)
    assert out["rtc_remote_inbound_rtp_roundTripTime_s"] == 0.05
    assert out["rtc_inbound_rtp_packetsLost"] == 3
    assert "rtc_inbound_rtp_kind" not in out


@pytest.mark.live
@pytest.mark.parametrize("frame_ms,bitrate", [(10, 12000), (60, 64000)])
def test_live_webrtc_carries_translab_opus_packets_unchanged(frame_ms: int, bitrate: int) -> None:
    from translab.emulate.emulator import LiveEmulator
    from translab.link.delay import Delay
    from translab.media.stream import encode_stream
    from translab.transport.webrtc import webrtc_call

    cfg = CallConfig(transport="webrtc", bitrate=bitrate, frame_ms=frame_ms, profile="x").resolved()
    t = np.arange(int(48000 * 1.2)) / 48000
    audio = (0.3 * np.sin(2 * np.pi * 300 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    stream = encode_stream(audio, cfg)

    async def main():
        emu = LiveEmulator("x", seed=1, chain_factory=lambda d: Delay(0.02))
        await emu.start()
        try:
            rec = await webrtc_call(stream, cfg, emu, drain_s=0.3)
        finally:
            await emu.close()
        return rec, emu.report()

    rec, report = asyncio.run(main())
    assert rec.status == "ok", rec.reason
    n = len(stream.seq)
    assert len(rec.send_s) == n and len(rec.arrivals) == n
    assert rec.extra["rtp_payload_mismatches"] == 0  # byte for byte what translab's encoder made
    d = np.array([rec.arrivals[k][0] - rec.send_s[k] for k in range(n)])
    assert np.all(d >= 0.02 - 1e-3) and np.median(d) < 0.02 + 0.005
    assert f"maxaveragebitrate={bitrate}" in rec.extra["sdp_answer_opus_fmtp"]
    assert f"ptime={frame_ms}" in rec.extra["sdp_offer_opus_fmtp"]
    assert report["emu_udp_up_packets_rtp"] == n  # every RTP packet crossed the emulator
    assert report["emu_udp_up_packets_stun"] > 0 and report["emu_udp_up_packets_dtls"] > 0
    assert report["emu_udp_down_packets_stun"] > 0
    for key in ("signalling_done", "ice_connected", "dtls_connected", "first_rtp_sent", "first_rtp_received"):
        assert key in rec.setup_ms
    # the packets sent are translab's: average payload size follows the bitrate, not aiortc's 96k
    sizes = np.array([len(p) for p in stream.payload])
    assert sizes.mean() * 8 / (frame_ms / 1000) < bitrate * 1.5
