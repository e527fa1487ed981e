"""The speech clips in data/clips/ (by name = file stem, e.g. "slt-weather"), or any WAV path."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from translab.errors import ConfigError
from translab.media.audio import load_wav
from translab.paths import CLIPS_DIR

__all__ = ["list_clips", "clip_path", "load_clip"]


def list_clips() -> list[str]:
    """Names (file stems) of the WAV clips in data/clips/, sorted."""
    return sorted(p.stem for p in CLIPS_DIR.glob("*.wav"))


def clip_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A clip name from data/clips/ or a path to a WAV file -> the file's Path.

    Anything containing a path separator or ending in ".wav" is a path; otherwise a name.
    """
    s = os.fspath(name_or_path)
    if isinstance(name_or_path, Path) or os.sep in s or "/" in s or s.lower().endswith(".wav"):
        p = Path(s).expanduser()
        if not p.is_file():
            raise ConfigError("clip", s, "an existing WAV file")
        return p
    p = CLIPS_DIR / f"{s}.wav"
    if not p.is_file():
        names = ", ".join(list_clips()) or "(none found)"
        raise ConfigError("clip", s, f"{names}, or a path to a WAV file")
    return p


def load_clip(name_or_path: str | os.PathLike[str], rate: int, min_ms: float = 20) -> np.ndarray:
    """Load a clip as mono float32 in [-1, 1] at ``rate`` Hz (one of audio.SUPPORTED_RATES).

    Refuses (ConfigError) a clip shorter than ``min_ms`` milliseconds (default: one 20 ms frame).
    Decoded and resampled audio is cached per process (keyed by the file's path, size and
    modification time, and the rate), so a sweep does not resample the same clip for every call;
    each call returns its own copy.
    """
    p = clip_path(name_or_path)
    st = p.stat()
    x = _load_resampled(str(p.resolve()), st.st_size, st.st_mtime_ns, rate)
    dur_ms = 1000.0 * len(x) / rate
    if dur_ms < min_ms:
        raise ConfigError("clip", str(p), f"at least {min_ms:g} ms of audio (one frame); "
                          f"it has {dur_ms:.1f} ms")
    return x.copy()


@functools.lru_cache(maxsize=16)
def _load_resampled(path: str, size: int, mtime_ns: int, rate: int) -> np.ndarray:
    """:func:`load_wav` of ``path`` at ``rate``, read-only; ``size`` and ``mtime_ns`` only key the cache."""
    x, _ = load_wav(path, rate=rate, dtype="float32")
    x.flags.writeable = False
    return x
