"""WAV loading, mono conversion, polyphase resampling, int16/float conversion, atomic WAV writing.

Float audio is float32 in [-1, 1] (full scale 1.0 = int16 32768). Rates are in Hz.
"""

from __future__ import annotations

import os
import struct
import tempfile
import warnings
from math import gcd
from pathlib import Path

import numpy as np

from translab.errors import ConfigError, check_choice
from translab.config import SAMPLE_RATES

__all__ = ["MAX_CLIP_S", "SUPPORTED_RATES", "check_finite", "load_wav", "resample", "to_int16", "to_float",
           "write_wav"]

#: sample rates (Hz) translab works at
SUPPORTED_RATES: tuple[int, ...] = SAMPLE_RATES  # the media rates CallConfig allows
#: The longest clip accepted, in seconds. A call holds its whole clip, the decoded output and per-frame
#: traces in memory, several copies at 48 kHz float (and PESQ/STOI/PLCMOS hold their own), about 10 MB
#: per minute of audio per copy; 20 minutes keeps a cell well under 1 GB, so two workers fit a laptop.
#: Voice-agent turns are seconds long; a longer recording is cut into clips first.
MAX_CLIP_S = 1200.0
_DTYPES = ("float32", "int16")


def to_float(x: np.ndarray) -> np.ndarray:
    """Samples -> float32 in [-1, 1]. int16/int32/uint8 are scaled by their full scale;
    float input is passed through (as float32, not clipped)."""
    a = np.asarray(x)
    if a.dtype == np.int16:
        return a.astype(np.float32) / np.float32(32768.0)
    if a.dtype == np.int32:  # PCM32, and PCM24 as scipy left-justifies it into int32
        return (a.astype(np.float64) / 2147483648.0).astype(np.float32)
    if a.dtype == np.uint8:  # PCM8 is unsigned with offset 128
        return (a.astype(np.float32) - 128.0) / np.float32(128.0)
    if a.dtype.kind == "f":
        return a.astype(np.float32, copy=False)
    raise ConfigError("sample dtype", str(a.dtype), "int16, int32, uint8, float32, float64")


def to_int16(x: np.ndarray) -> np.ndarray:
    """Samples -> int16. Float input (full scale 1.0) is scaled by 32768, rounded and clipped
    to [-32768, 32767]; int16 input is returned unchanged."""
    a = np.asarray(x)
    if a.dtype == np.int16:
        return a
    f = to_float(a).astype(np.float64)
    return np.clip(np.round(f * 32768.0), -32768, 32767).astype(np.int16)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono samples from ``from_rate`` to ``to_rate`` Hz with a polyphase FIR
    (scipy.signal.resample_poly, Kaiser window); returns float32 in the float scale."""
    for field, r in (("from_rate", from_rate), ("to_rate", to_rate)):
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r <= 0:
            raise ConfigError(field, r, "a positive integer sample rate in Hz")
    f = to_float(x)
    if from_rate == to_rate:
        return f.copy()
    g = gcd(int(from_rate), int(to_rate))
    from scipy.signal import resample_poly  # scipy is heavy: imported when audio is first resampled

    out: np.ndarray = resample_poly(f, int(to_rate) // g, int(from_rate) // g).astype(np.float32)
    return out


def check_finite(x: np.ndarray, where: str = "samples") -> None:
    """Raise ConfigError naming the first NaN or infinite sample (its index) of float audio; integer
    audio is always finite."""
    a = np.asarray(x)
    if a.dtype.kind != "f":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        idx = np.argwhere(bad)[0]
        i = int(idx[0])
        ch = f", channel {int(idx[1])}" if a.ndim == 2 else ""
        raise ConfigError(where, f"sample {i}{ch} is {a[tuple(idx)]}",
                          "finite samples (no NaN or infinity)")


def load_wav(path: str | os.PathLike[str], rate: int | None = None,
             dtype: str = "float32") -> tuple[np.ndarray, int]:
    """Load a mono or stereo WAV as mono; returns ``(samples, rate_hz)``.

    Channels are averaged. ``rate``: resample to this rate (one of SUPPORTED_RATES), or None to
    keep the file's rate. ``dtype``: "float32" (in [-1, 1]) or "int16".
    Raises ConfigError for a missing file, a file that is not a readable WAV, a WAV with no
    samples, an unsupported target rate or dtype.
    """
    import scipy.io.wavfile as wavfile  # scipy is heavy: imported when a WAV is first read

    check_choice("dtype", dtype, _DTYPES)
    if rate is not None:
        check_choice("rate", rate, SUPPORTED_RATES)
    p = Path(path)
    if not p.is_file():
        raise ConfigError("path", str(p), "an existing WAV file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            try:  # memory-mapped: the length is checked before the samples are read into memory
                file_rate, data = wavfile.read(p, mmap=True)
            except ValueError:  # 24-bit PCM cannot be mapped
                file_rate, data = wavfile.read(p)
    except (ValueError, EOFError, OSError, IndexError, struct.error) as e:  # struct: a truncated header
        raise ConfigError("path", str(p), f"a WAV file of PCM or float samples (could not read it: {e})") from e
    if file_rate <= 0:
        raise ConfigError("sample rate", file_rate, "a positive rate in Hz", where=str(p))
    if data.size == 0:
        raise ConfigError("path", str(p), "a WAV file with at least one sample (this one has none)")
    seconds = data.shape[0] / file_rate
    if seconds > MAX_CLIP_S:
        raise ConfigError("clip length", f"{seconds:.0f} s", f"at most {MAX_CLIP_S:.0f} s (memory per call "
                          "grows with the clip; cut a long recording into clips)", where=str(p))
    check_finite(data, where=f"{p}: samples")
    x = to_float(np.array(data))
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    out_rate = int(file_rate) if rate is None else int(rate)
    if out_rate != file_rate:
        x = resample(x, int(file_rate), out_rate)
    return (to_int16(x) if dtype == "int16" else x.astype(np.float32, copy=False)), out_rate


def write_wav(path: str | os.PathLike[str], x: np.ndarray, rate: int) -> Path:
    """Write mono (1-D) or multi-channel ``(n, channels)`` samples as a PCM16 WAV, atomically
    (a temporary file in the same folder, then renamed). Float input is full scale 1.0."""
    import scipy.io.wavfile as wavfile

    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ConfigError("rate", rate, "a positive integer sample rate in Hz")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = to_int16(x)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            wavfile.write(fh, int(rate), data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the WAV is for sharing like any output
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
