"""ITU-T G.711 mu-law and A-law (vectorised numpy), for the 8 kHz PSTN-bridge path.

Encoders take 16-bit linear PCM (int16) and return one byte per sample; decoders return int16.
The segment/quantisation arithmetic is the Sun Microsystems reference (``g711.c``) as used by
CPython's ``audioop`` (bit-exact with ``audioop.lin2ulaw``/``lin2alaw``/``ulaw2lin``/``alaw2lin``
for all 65536 inputs and 256 codes): mu-law on the top 14 bits (bias 0x21, clip 8159), A-law on
the top 13 bits; code words are sent inverted (mu-law) or with even bits toggled (A-law, XOR
0x55), so digital silence is 0xFF / 0xD5.
"""

from __future__ import annotations

import numpy as np

from translab.errors import ConfigError

__all__ = ["ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode"]

_BIAS = 0x84  # mu-law bias on the 16-bit scale (0x21 on the 14-bit scale)


def _as_int16(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != np.int16:
        raise ConfigError("x_int16 dtype", str(a.dtype), "int16")
    return a.reshape(-1)


def _segment(v: np.ndarray, first_end: int) -> np.ndarray:
    """Segment number 0..8 of non-negative ``v`` for segment ends first_end * 2**k - 1."""
    ends = first_end * (1 << np.arange(8)) - 1
    return np.searchsorted(ends, v, side="left")


def ulaw_encode(x_int16: np.ndarray) -> bytes:
    """16-bit linear PCM -> G.711 mu-law bytes (one per sample). 0 -> 0xFF."""
    x = _as_int16(x_int16).astype(np.int32) >> 2  # 14-bit (arithmetic shift)
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21  # clip, add bias (14-bit scale)
    seg = _segment(mag, 0x40)  # segment ends 0x3F, 0x7F, ... 0x1FFF
    uval = (np.minimum(seg, 7) << 4) | ((mag >> (seg + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)  # beyond the last segment: largest code
    return ((uval ^ mask) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(b: bytes) -> np.ndarray:
    """G.711 mu-law bytes -> int16 (range -32124..32124)."""
    u = ~np.frombuffer(bytes(b), dtype=np.uint8).astype(np.int32) & 0xFF
    seg = (u >> 4) & 0x07
    t = (((u & 0x0F) << 3) + _BIAS) << seg
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


def alaw_encode(x_int16: np.ndarray) -> bytes:
    """16-bit linear PCM -> G.711 A-law bytes (one per sample). 0 -> 0xD5."""
    x = _as_int16(x_int16).astype(np.int32) >> 3  # 13-bit
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = _segment(mag, 0x20)  # segment ends 0x1F, 0x3F, ... 0xFFF
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8).tobytes()


def alaw_decode(b: bytes) -> np.ndarray:
    """G.711 A-law bytes -> int16 (range -32256..32256)."""
    a = np.frombuffer(bytes(b), dtype=np.uint8).astype(np.int32) ^ 0x55
    seg = (a >> 4) & 0x07
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)
