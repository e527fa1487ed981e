"""Concealment methods, chosen independently of the jitter-buffer policy.

Every concealer has the same two calls: ``conceal(n) -> (samples, kind)`` for a block of ``n``
samples that has no audio, and ``good(x) -> x`` for every good block played (so it can keep history
and smooth the junction after a loss). Samples are float64 mono, full scale 1.0.

- ``zero``: silence.
- ``repeat``: the last good block again, faded: the gain falls linearly from 1 to 0 over
  ``REPEAT_FADE_MS`` of concealment, silence after; the next good block fades in over 2.5 ms.
- ``opus-plc``: the Opus decoder's own PLC (``OpusDecoder.conceal``).
- ``opus-fec``: like ``opus-plc``; the receiver asks :meth:`OpusConcealer.recover_fec` first, which
  decodes the lost frame from the next packet's in-band FEC (LBRR) when that packet is there in time.
- ``pcm-plc``: G.711 Appendix I style pitch waveform substitution (:mod:`translab.playout.pcm_plc`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from translab.errors import ConfigError
from translab.playout.pcm_plc import PcmPlc

CONCEAL_METHODS = ("opus-plc", "opus-fec", "zero", "repeat", "pcm-plc")
ALLOWED_FOR_CODEC = {
    "opus": ("opus-plc", "opus-fec", "zero", "repeat"),
    "pcm16": ("zero", "repeat", "pcm-plc"),
    "pcmu": ("zero", "repeat", "pcm-plc"),
}
REPEAT_FADE_MS = 40.0
FADE_IN_MS = 2.5


class Concealer(Protocol):
    """The two calls every concealer answers (see the module docstring)."""

    def conceal(self, n: int) -> tuple[np.ndarray, str]:
        """``n`` samples (float64 mono, full scale 1.0) for a block with no audio, and the kind of
        block it is for the frames log ("zero", "repeat", "plc", "pcm-plc")."""
        ...

    def good(self, x: np.ndarray) -> np.ndarray:
        """A good block ``x`` (float64 mono) about to be played: kept as history, returned (possibly
        smoothed at the junction after a loss)."""
        ...


class ZeroConcealer:
    """Silence for every lost block."""

    def conceal(self, n: int) -> tuple[np.ndarray, str]:
        return np.zeros(n), "zero"

    def good(self, x: np.ndarray) -> np.ndarray:
        return x


class RepeatConcealer:
    """Repeat the last good block with a linear fade to silence over ``REPEAT_FADE_MS``."""

    def __init__(self, sample_rate: int) -> None:
        self.rate = sample_rate
        self.last = np.zeros(0)
        self.erased = 0
        self.fade_n = int(round(REPEAT_FADE_MS * sample_rate / 1000))

    def conceal(self, n: int) -> tuple[np.ndarray, str]:
        if self.last.size == 0:
            self.erased += n
            return np.zeros(n), "repeat"
        j = np.arange(self.erased, self.erased + n)
        src = self.last[j % self.last.size]
        gain = np.clip(1.0 - j / self.fade_n, 0.0, 1.0)
        self.erased += n
        return src * gain, "repeat"

    def good(self, x: np.ndarray) -> np.ndarray:
        if self.erased:
            m = min(x.size, int(round(FADE_IN_MS * self.rate / 1000)))
            x = x.copy()
            x[:m] *= np.arange(1, m + 1) / (m + 1)
        self.erased = 0
        if x.size:
            self.last = x.copy()
        return x


class PcmPlcConcealer:
    """G.711 Appendix I style pitch waveform substitution."""

    def __init__(self, sample_rate: int) -> None:
        self.plc = PcmPlc(sample_rate)

    def conceal(self, n: int) -> tuple[np.ndarray, str]:
        return self.plc.conceal(n), "pcm-plc"

    def good(self, x: np.ndarray) -> np.ndarray:
        return self.plc.good(x)


class OpusConcealer:
    """Opus decoder PLC, and FEC recovery when ``use_fec``. ``decoder``: a
    :class:`translab.media.opus.OpusDecoder` shared with the receiver (its state must see every
    frame in playout order)."""

    def __init__(self, decoder: object, use_fec: bool) -> None:
        self.decoder = decoder
        self.use_fec = use_fec

    def conceal(self, n: int) -> tuple[np.ndarray, str]:
        y = self.decoder.conceal(n)  # type: ignore[attr-defined]
        return _mono_float(y, n), "plc"

    def recover_fec(self, next_payload: bytes, n: int) -> np.ndarray:
        """Decode the lost frame of ``n`` samples from ``next_payload``'s in-band FEC."""
        return _mono_float(self.decoder.decode_fec(next_payload, n), n)  # type: ignore[attr-defined]

    def good(self, x: np.ndarray) -> np.ndarray:
        return x


def _mono_float(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.mean(axis=1)
    out = y.astype(np.float64) / 32768.0
    if out.size < n:
        out = np.concatenate([out, np.zeros(n - out.size)])
    return out[:n]


def check_conceal(conceal: str, codec: str) -> None:
    """Raise ConfigError unless ``conceal`` is a method that works for ``codec``."""
    if conceal not in CONCEAL_METHODS:
        raise ConfigError("conceal", conceal, ", ".join(CONCEAL_METHODS))
    allowed = ALLOWED_FOR_CODEC.get(codec)
    if allowed is None:
        raise ConfigError("codec", codec, ", ".join(ALLOWED_FOR_CODEC))
    if conceal not in allowed:
        raise ConfigError("conceal", conceal, f"{', '.join(allowed)} for codec {codec}")


def make_concealer(conceal: str, codec: str, sample_rate: int, decoder: object | None = None) -> Concealer:
    """The concealer for ``conceal`` (checked against ``codec``); Opus methods need ``decoder``."""
    check_conceal(conceal, codec)
    if conceal == "zero":
        return ZeroConcealer()
    if conceal == "repeat":
        return RepeatConcealer(sample_rate)
    if conceal == "pcm-plc":
        return PcmPlcConcealer(sample_rate)
    if decoder is None:
        raise ConfigError("decoder", None, "an OpusDecoder for opus-plc / opus-fec")
    return OpusConcealer(decoder, use_fec=conceal == "opus-fec")
