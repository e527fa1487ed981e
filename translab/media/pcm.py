"""PCM16 framing: little-endian signed 16-bit samples cut into fixed-duration frames.

Units: ``rate`` in Hz, ``frame_ms`` in milliseconds, sizes in samples (per channel) or bytes
as the function name says.
"""

from __future__ import annotations

import numpy as np

from translab.errors import ConfigError, check_choice

__all__ = ["PCM_RATES", "FRAME_MS_CHOICES", "frame_samples", "frame_bytes", "split_frames",
           "pcm16_encode", "pcm16_decode"]

#: sample rates (Hz) the PCM paths support (same as translab.media.audio.SUPPORTED_RATES)
PCM_RATES: tuple[int, ...] = (8000, 16000, 24000, 48000)
#: frame durations (ms) the PCM paths support
FRAME_MS_CHOICES: tuple[int, ...] = (10, 20, 40, 60, 100)


def frame_samples(rate: int, frame_ms: float) -> int:
    """Samples per channel in one frame of ``frame_ms`` ms at ``rate`` Hz (e.g. 16000, 20 -> 320)."""
    check_choice("rate", rate, PCM_RATES)
    check_choice("frame_ms", frame_ms, FRAME_MS_CHOICES)
    return int(rate) * int(frame_ms) // 1000


def frame_bytes(rate: int, frame_ms: float, channels: int = 1) -> int:
    """Bytes in one PCM16 frame: ``frame_samples * channels * 2`` (e.g. 24 kHz, 100 ms -> 4800)."""
    check_choice("channels", channels, (1, 2))
    return frame_samples(rate, frame_ms) * channels * 2


def split_frames(x_int16: np.ndarray, rate: int, frame_ms: float) -> np.ndarray:
    """Cut mono int16 samples into frames: int16 array ``(n_frames, frame_samples)``.

    The last frame is zero-padded; an empty input gives ``(0, frame_samples)``.
    """
    n = frame_samples(rate, frame_ms)
    x = np.asarray(x_int16)
    if x.dtype != np.int16:
        raise ConfigError("x_int16 dtype", str(x.dtype), "int16 (use translab.media.audio.to_int16)")
    if x.ndim != 1:
        raise ConfigError("x_int16 shape", x.shape, "1-D mono samples")
    n_frames = -(-len(x) // n)
    out = np.zeros(n_frames * n, dtype=np.int16)
    out[: len(x)] = x
    return out.reshape(n_frames, n)


def pcm16_encode(frame: np.ndarray) -> bytes:
    """int16 samples -> little-endian PCM16 bytes (2 bytes per sample, interleaved if 2-D)."""
    a = np.asarray(frame)
    if a.dtype != np.int16:
        raise ConfigError("frame dtype", str(a.dtype), "int16")
    return a.astype("<i2", copy=False).tobytes()


def pcm16_decode(b: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes -> 1-D int16 array (native byte order, a fresh copy)."""
    if len(b) % 2:
        raise ConfigError("pcm16 length", len(b), "an even number of bytes")
    return np.frombuffer(b, dtype="<i2").astype(np.int16)
