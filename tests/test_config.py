"""CallConfig defaults and the errors a wrong call definition gets."""

import pytest

from translab.config import CallConfig, parse_bitrate
from translab.errors import ConfigError


def test_defaults_resolve_per_transport():
    rtc = CallConfig().resolved()
    assert (rtc.codec, rtc.sample_rate, rtc.framing, rtc.conceal) == ("opus", 48000, "rtp", "opus-fec")
    ws = CallConfig(transport="websocket").resolved()
    assert (ws.codec, ws.sample_rate, ws.framing, ws.conceal) == ("pcm16", 24000, "binary", "pcm-plc")
    tw = CallConfig(transport="websocket", codec="pcmu", framing="twilio-json").resolved()
    assert tw.sample_rate == 8000


@pytest.mark.parametrize("text, bps", [("24k", 24000), ("6000", 6000), ("1.5M", 1500000), (64000, 64000)])
def test_parse_bitrate(text, bps):
    assert parse_bitrate(text) == bps


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"transport": "carrier-pigeon"}, "transport: 'carrier-pigeon' is not allowed (allowed: webrtc, websocket)"),
        ({"bitrate": 3000}, "bitrate: 3000 is not allowed (allowed: 6000 to 510000 bit/s)"),
        ({"transport": "webrtc", "codec": "pcm16"}, "codec: 'pcm16' is not allowed (allowed: opus for transport webrtc)"),
        ({"frame_ms": 30}, "frame_ms: 30 is not allowed"),
        ({"playout": "fixed"}, "playout: 'fixed' is not allowed"),
        ({"transport": "websocket", "conceal": "opus-fec"}, "conceal: 'opus-fec' is not allowed"),
        ({"metrics": ("mos",)}, "metrics: 'mos' is not allowed"),
        # Opus runs at 12 kHz but a clip cannot be resampled to it: refused as sample_rate, not later
        ({"sample_rate": 12000}, "sample_rate: 12000 is not allowed (allowed: 8000, 16000, 24000, 48000)"),
    ],
)
def test_bad_values_name_field_value_and_allowed(kwargs, message):
    with pytest.raises(ConfigError) as err:
        CallConfig(**kwargs).resolved()
    assert message in str(err.value)


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(ConfigError, match=r"exp.toml: key: 'bitrat' is not allowed \(allowed: abr, abr_feedback, bitrate, "):
        CallConfig.from_dict({"bitrat": 24000}, where="exp.toml")
    assert CallConfig.from_dict({"bitrate": "32k"}).bitrate == 32000


def test_negative_seed_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"seed: -1 is not allowed \(allowed: 0 to "):
        CallConfig(seed=-1).resolved()
