"""Small synthetic signals and arrival traces for playout tests, examples and notebooks.

``voiced(duration_s, rate)`` makes a speech-like periodic signal (harmonics of a gliding pitch under
a syllable-like envelope, with pauses); ``packet_trace(audio, ...)`` encodes it (PCM16, mu-law or
Opus) into 1 packet per frame and stamps capture/send/arrival times from per-packet delays and a
loss mask, giving a trace in the :mod:`translab.trace` schema.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from translab.trace import make_trace


def voiced(
    duration_s: float,
    rate: int,
    *,
    f0_hz: float = 140.0,
    glide: float = 0.15,
    pauses: bool = True,
    level: float = 0.3,
) -> np.ndarray:
    """A speech-like voiced signal (float32, full scale 1.0): 12 harmonics with a 1/h spectrum,
    pitch gliding +-``glide`` (fraction) around ``f0_hz`` at 3 Hz; with ``pauses``, 4 Hz syllables
    and a 300 ms pause every second."""
    n = int(round(duration_s * rate))
    t = np.arange(n) / rate
    f0 = f0_hz * (1 + glide * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.zeros(n)
    for h in range(1, 13):
        if h * f0_hz * (1 + glide) < rate / 2:
            x += np.sin(h * phase) / h
    x /= np.max(np.abs(x)) + 1e-12
    if pauses:
        env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t - np.pi / 2)
        env *= (t % 1.0) < 0.7
        x *= env
    return (level * x).astype(np.float32)


def packet_trace(
    audio: np.ndarray,
    rate: int,
    frame_ms: float = 20.0,
    *,
    codec: str = "pcm16",
    delay_s: float | Sequence[float] | np.ndarray = 0.001,
    lost: Sequence[int] | np.ndarray = (),
    bitrate: int = 24000,
    fec: bool = False,
    loss_perc: int = 0,
    transport: str = "webrtc",
) -> pd.DataFrame:
    """A trace for ``audio`` (float, full scale 1.0, mono at ``rate`` Hz) cut into ``frame_ms``
    frames (last one zero-padded), one packet per frame, sent when its last sample is captured.

    ``delay_s``: one-way delay (s), one value or one per packet; ``lost``: packet indices whose
    arrival is NaN. Opus frames are encoded with ``bitrate`` (bit/s), in-band FEC when ``fec`` with
    ``loss_perc`` expected loss (%). ``attrs`` carry codec, sample_rate, channels, frame_ms.
    """
    from translab.media.audio import to_int16
    from translab.media.pcm import pcm16_encode, split_frames

    frames = split_frames(to_int16(np.asarray(audio, dtype=np.float32)), rate, frame_ms)
    n_pk, n = frames.shape
    lookahead_ms = 0.0
    if codec == "opus":
        from translab.media.opus import OpusEncoder, packet_has_fec

        enc = OpusEncoder(
            sample_rate=rate, channels=1, frame_ms=frame_ms, bitrate=bitrate, fec=fec,
            packet_loss_perc=loss_perc if fec else 0,
        )
        lookahead_ms = float(enc.lookahead_ms)
        payload = [enc.encode(f) for f in frames]
        has_fec = [packet_has_fec(p) for p in payload]
    elif codec == "pcm16":
        payload = [pcm16_encode(f) for f in frames]
        has_fec = [False] * n_pk
    elif codec == "pcmu":
        from translab.media.g711 import ulaw_encode

        payload = [ulaw_encode(f) for f in frames]
        has_fec = [False] * n_pk
    else:
        raise ValueError(f"codec {codec!r}")
    media_ts = np.arange(n_pk, dtype=np.int64) * n
    capture = (media_ts + n) / rate
    delay = np.broadcast_to(np.asarray(delay_s, dtype=float), (n_pk,))
    arrival = capture + delay
    arrival[np.asarray(lost, dtype=np.int64)] = np.nan
    size = np.array([len(p) for p in payload], dtype=np.int64)
    rows = {
        "seq": np.arange(n_pk, dtype=np.int64),
        "media_ts": media_ts,
        "frame_samples": np.full(n_pk, n, dtype=np.int64),
        "capture_s": capture,
        "send_s": capture.copy(),
        "arrival_s": arrival,
        "payload_bytes": size,
        "message_bytes": size,
        "wire_bytes": size + 40,
        "transport": [transport] * n_pk,
        "direction": ["up"] * n_pk,
        "fec": np.asarray(has_fec, dtype=bool),
        "duplicates": np.zeros(n_pk, dtype=np.int64),
        "payload": payload,
    }
    attrs = {
        "codec": codec, "sample_rate": rate, "channels": 1, "frame_ms": frame_ms,
        "framing": "rtp" if transport == "webrtc" else "binary", "clip": "synthetic", "seed": 0,
        "profile": "synthetic", "mode": "simulate", "lookahead_ms": lookahead_ms,
    }
    return make_trace(rows, attrs)
