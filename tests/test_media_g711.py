"""G.711 mu-law / A-law: code points, bit-exactness with audioop, error bounds, monotonicity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from translab.errors import ConfigError
from translab.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL = np.arange(-32768, 32768, dtype=np.int16)


def test_known_code_points():
    z = np.zeros(1, dtype=np.int16)
    assert ulaw_encode(z) == b"\xff"
    assert alaw_encode(z) == b"\xd5"
    assert ulaw_decode(b"\xff").tolist() == [0]
    assert ulaw_decode(b"\x7f").tolist() == [0]  # "negative zero"
    assert ulaw_decode(b"\x80").tolist() == [32124]  # largest positive
    assert ulaw_decode(b"\x00").tolist() == [-32124]
    assert alaw_decode(b"\xd5").tolist() == [8]
    assert alaw_decode(b"\xaa").tolist() == [32256]
    assert alaw_decode(b"\x2a").tolist() == [-32256]
    assert ulaw_encode(np.array([32767, -32768], np.int16)) == b"\x80\x00"
    assert alaw_encode(np.array([32767, -32768], np.int16)) == b"\xaa\x2a"


@pytest.mark.parametrize("enc,dec", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_monotonic(enc, dec):
    y = dec(enc(ALL)).astype(np.int32)
    assert np.all(np.diff(y) >= 0)
    assert len(np.unique(y)) in (255, 256)  # mu-law has two zeros


@pytest.mark.parametrize("enc,dec", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_codes_are_fixed_points(enc, dec):
    codes = bytes(range(256))
    assert dec(enc(dec(codes))).tolist() == dec(codes).tolist()


@pytest.mark.parametrize("enc,dec,small_step", [(ulaw_encode, ulaw_decode, 8), (alaw_encode, alaw_decode, 16)])
def test_round_trip_error_bounds(enc, dec, small_step):
    x = ALL.astype(np.int32)
    y = dec(enc(ALL)).astype(np.int32)
    err = np.abs(y - x)
    inner = np.abs(x) < 32000
    # log companding: error <= half a step, step <= ~1/16 of the magnitude (+ the smallest step)
    assert np.all(err[inner] <= np.abs(x[inner]) / 16 + small_step)
    small = np.abs(x) < 32
    assert err[small].max() <= small_step
    assert err.max() <= 1024 + 1  # largest step 2048 (mu-law) / 2048 (A-law) at full scale


def test_sine_snr():
    t = np.arange(8000) / 8000
    x = (16000 * np.sin(2 * np.pi * 1004 * t)).astype(np.int16)
    for enc, dec in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        y = dec(enc(x)).astype(float)
        snr = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum((x - y) ** 2))
        assert 35 < snr < 40  # G.711 gives about 38 dB for a loud sine


def test_bit_exact_with_audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    raw = ALL.tobytes()
    assert ulaw_encode(ALL) == audioop.lin2ulaw(raw, 2)
    assert alaw_encode(ALL) == audioop.lin2alaw(raw, 2)
    codes = bytes(range(256))
    assert ulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


def test_rejects_non_int16():
    with pytest.raises(ConfigError, match="dtype"):
        ulaw_encode(np.zeros(4, np.float32))
    assert ulaw_encode(np.zeros(0, np.int16)) == b""
