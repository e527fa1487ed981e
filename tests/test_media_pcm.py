"""PCM16 framing: sizes per rate and frame duration, zero padding, byte-exact round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translab.errors import ConfigError
from translab.media.pcm import (
    FRAME_MS_CHOICES,
    PCM_RATES,
    frame_bytes,
    frame_samples,
    pcm16_decode,
    pcm16_encode,
    split_frames,
)


def test_issue_sizes():
    assert frame_bytes(24000, 100) == 4800
    assert frame_bytes(16000, 20) == 640
    assert frame_samples(16000, 20) == 320
    assert frame_bytes(48000, 20, channels=2) == 3840


@pytest.mark.parametrize("rate", PCM_RATES)
@pytest.mark.parametrize("frame_ms", FRAME_MS_CHOICES)
def test_all_sizes(rate, frame_ms):
    n = frame_samples(rate, frame_ms)
    assert n == rate * frame_ms / 1000
    assert frame_bytes(rate, frame_ms) == 2 * n


@pytest.mark.parametrize("kw,field", [({"rate": 44100, "frame_ms": 20}, "rate"),
                                      ({"rate": 16000, "frame_ms": 30}, "frame_ms"),
                                      ({"rate": 16000, "frame_ms": 20, "channels": 3}, "channels")])
def test_bad_values(kw, field):
    with pytest.raises(ConfigError) as ei:
        frame_bytes(**kw)
    assert ei.value.field == field


def test_split_frames_pads_last():
    x = np.arange(1, 801, dtype=np.int16)  # 800 samples at 16 kHz = 2.5 frames of 20 ms
    f = split_frames(x, 16000, 20)
    assert f.shape == (3, 320) and f.dtype == np.int16
    assert np.array_equal(f.reshape(-1)[:800], x)
    assert not f[2, 160:].any()
    assert split_frames(np.zeros(0, np.int16), 16000, 20).shape == (0, 320)
    with pytest.raises(ConfigError, match="dtype"):
        split_frames(x.astype(np.float32), 16000, 20)


def test_little_endian_bytes():
    assert pcm16_encode(np.array([1, -2, 0x1234], dtype=np.int16)) == b"\x01\x00\xfe\xff\x34\x12"
    assert pcm16_decode(b"\x01\x00\xfe\xff\x34\x12").tolist() == [1, -2, 0x1234]
    with pytest.raises(ConfigError, match="even"):
        pcm16_decode(b"\x00")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=2000))
def test_round_trip(values):
    x = np.array(values, dtype=np.int16)
    b = pcm16_encode(x)
    assert len(b) == 2 * len(x)
    assert np.array_equal(pcm16_decode(b), x)
    assert pcm16_encode(pcm16_decode(b)) == b
