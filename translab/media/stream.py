"""The sender: a clip becomes timed media packets, exactly as a live sender would emit them.

Both the simulator and the live transports send the packets this module makes, so the same clip,
codec settings and framing give the same bytes on every path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from translab.config import CallConfig
from translab.media import g711, pcm
from translab.media.audio import to_int16
from translab.media.framing import encode_message, message_size

#: Opus packets of at most this many bytes are DTX (silence) frames; a browser does not send them.
DTX_MAX_BYTES = 2


@dataclass
class SenderStream:
    """Packets a sender emits, in send order. Times in seconds on the call clock (0 = first sample
    captured); ``capture_s`` is when a packet's last sample was captured."""

    seq: np.ndarray  # int64, 0.. per packet actually sent
    media_ts: np.ndarray  # int64, first sample, in samples at sample_rate
    frame_samples: np.ndarray  # int64
    capture_s: np.ndarray  # float64
    payload: list[bytes]  # codec payload
    message: list[bytes | str]  # what the transport carries (RTP payload or WebSocket message)
    fec: np.ndarray  # bool
    reference: np.ndarray  # float32 mono audio that was encoded (the quality reference)
    sample_rate: int
    lookahead_ms: float  # codec algorithmic delay beyond the frame (Opus lookahead; 0 for PCM)
    dtx_skipped: int  # DTX frames not sent

    @property
    def payload_bytes(self) -> np.ndarray:
        """Codec payload size of each packet in bytes (int64)."""
        return np.fromiter((len(p) for p in self.payload), dtype=np.int64, count=len(self.payload))

    @property
    def message_bytes(self) -> np.ndarray:
        """Size of each transport message in bytes (int64): RTP payload, or the WebSocket message
        (a text frame's UTF-8 bytes)."""
        return np.fromiter((message_size(m) for m in self.message), dtype=np.int64, count=len(self.message))


#: CallConfig fields that decide the sender's packets (everything else, e.g. seed, profile and
#: playout, only changes what happens to them): "encode once, impair many".
SENDER_FIELDS = ("transport", "codec", "bitrate", "frame_ms", "sample_rate", "fec", "expected_loss_pct", "dtx",
                 "complexity", "framing")


def encode_stream(audio: np.ndarray, cfg: CallConfig) -> SenderStream:
    """Encode ``audio`` (float32 mono at ``cfg.sample_rate``) into the packets of one call.

    ``cfg`` must be resolved (:meth:`CallConfig.resolved`). The clip is cut into frames of
    ``cfg.frame_ms`` (the last one zero-padded); Opus DTX frames are skipped.

    Encode once, impair many: the packets depend only on the audio and :data:`SENDER_FIELDS`, and
    libopus is deterministic, so the last streams are kept per process (keyed by the audio's bytes
    and those fields) and a sweep over seeds and profiles encodes each clip and codec setting once.
    Each call gets its own lists; the arrays are shared and read-only.
    """
    import hashlib

    a = np.ascontiguousarray(audio, dtype=np.float32)
    key = hashlib.sha256(a.tobytes()).hexdigest() + repr(tuple(getattr(cfg, f) for f in SENDER_FIELDS))
    s = _encode_cached(key, a, cfg)
    return dataclasses.replace(s, payload=list(s.payload), message=list(s.message))


_CACHE: dict[str, SenderStream] = {}
_CACHE_SIZE = 16


def _encode_cached(key: str, audio: np.ndarray, cfg: CallConfig) -> SenderStream:
    if key in _CACHE:
        _CACHE[key] = _CACHE.pop(key)  # most recently used last
        return _CACHE[key]
    s = _encode(audio, cfg)
    for arr in (s.seq, s.media_ts, s.frame_samples, s.capture_s, s.fec, s.reference):
        arr.flags.writeable = False
    _CACHE[key] = s
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    return s


def _encode(audio: np.ndarray, cfg: CallConfig) -> SenderStream:
    """:func:`encode_stream` without the cache."""
    assert cfg.sample_rate is not None and cfg.framing is not None, "encode a resolved CallConfig"
    rate = int(cfg.sample_rate)
    frames = pcm.split_frames(to_int16(audio), rate, cfg.frame_ms)
    n_frames, n = frames.shape
    reference = frames.reshape(-1).astype(np.float32) / 32768.0
    payloads: list[bytes] = []
    fec_flags: list[bool] = []
    kept: list[int] = []
    lookahead_ms = 0.0
    if cfg.codec == "opus":
        from translab.media.opus import OpusEncoder, packet_has_fec

        enc = OpusEncoder(
            sample_rate=rate, channels=1, frame_ms=cfg.frame_ms, bitrate=cfg.bitrate,
            complexity=cfg.complexity, application="voip", fec=cfg.fec,
            packet_loss_perc=cfg.expected_loss_pct if cfg.fec else 0, dtx=cfg.dtx,
        )
        lookahead_ms = enc.lookahead_ms
        for i in range(n_frames):
            packet = enc.encode(frames[i])
            if cfg.dtx and len(packet) <= DTX_MAX_BYTES:
                continue
            kept.append(i)
            payloads.append(packet)
            fec_flags.append(packet_has_fec(packet))
    else:
        encode = pcm.pcm16_encode if cfg.codec == "pcm16" else g711.ulaw_encode
        for i in range(n_frames):
            kept.append(i)
            payloads.append(encode(frames[i]))
            fec_flags.append(False)
    idx = np.asarray(kept, dtype=np.int64)
    media_ts = idx * n
    messages: list[bytes | str]
    if cfg.transport == "websocket":
        messages = [
            encode_message(cfg.framing, p, s, int(ts * 1000 // rate))
            for s, (p, ts) in enumerate(zip(payloads, media_ts))
        ]
    else:
        messages = list(payloads)
    return SenderStream(
        seq=np.arange(len(kept), dtype=np.int64),
        media_ts=media_ts,
        frame_samples=np.full(len(kept), n, dtype=np.int64),
        capture_s=(media_ts + n) / rate,
        payload=payloads,
        message=messages,
        fec=np.asarray(fec_flags, dtype=bool),
        reference=reference,
        sample_rate=rate,
        lookahead_ms=lookahead_ms,
        dtx_skipped=n_frames - len(kept),
    )
