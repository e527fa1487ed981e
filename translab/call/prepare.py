"""What every call starts from: the resolved config, the reference audio and the sender's packets;
and the one place an arrival trace is assembled from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from translab import trace as trace_mod
from translab.config import CallConfig
from translab.media.clips import list_clips, load_clip
from translab.media.stream import SenderStream, encode_stream
from translab.metrics.bandwidth import HeaderModel, rtp_wire_bytes, ws_wire_bytes


#: the clip name of a call whose caller is outside translab and whose audio is unknown (a served call)
EXTERNAL_CLIP = "external"


@dataclass(frozen=True)
class PreparedCall:
    """A call ready for an engine: ``cfg`` resolved (clip chosen), ``reference`` the audio that was
    encoded (float32 mono at the codec rate, the clip padded to whole frames), ``stream`` the sender's packets (None for a call whose sender is outside
    translab, e.g. one received by ``translab serve``)."""

    cfg: CallConfig
    reference: np.ndarray
    stream: SenderStream | None

    @property
    def lookahead_ms(self) -> float:
        return float(self.stream.lookahead_ms) if self.stream is not None else 0.0


def default_clip() -> str:
    """The clip a call uses when none is given: the first of data/clips."""
    return list_clips()[0]


def load_reference(cfg: CallConfig) -> np.ndarray:
    """The clip as float32 mono at the codec's sample rate, cut to ``cfg.duration_s`` if set."""
    assert cfg.sample_rate is not None, "load_reference needs a resolved CallConfig"
    audio = load_clip(cfg.clip or default_clip(), cfg.sample_rate)
    if cfg.duration_s is not None:
        audio = audio[: int(round(cfg.duration_s * cfg.sample_rate))]
    return audio


def prepare_call(cfg: CallConfig, silence_after_s: float = 0.0) -> PreparedCall:
    """Resolve ``cfg``, choose its clip, load the reference and encode the sender's packets.
    ``silence_after_s``: seconds of silence appended to the clip (a caller that keeps its microphone
    open while it listens, see translab.call.external); part of the reference and the stream."""
    cfg = cfg.resolved()
    if cfg.clip is None:
        cfg = dataclasses.replace(cfg, clip=default_clip())
    audio = load_reference(cfg)
    if silence_after_s > 0:
        pad = np.zeros(int(round(silence_after_s * int(cfg.sample_rate or 0))), dtype=np.float32)
        audio = np.concatenate([audio, pad])
    stream = encode_stream(audio, cfg)
    return PreparedCall(cfg, stream.reference, stream)


def trace_attrs(cfg: CallConfig, stream: SenderStream | None, mode: str) -> dict[str, Any]:
    """The metadata every arrival trace carries (see translab.trace). ``stream``: the sender's
    encoded stream, for the codec look-ahead (ms); None when translab did not encode it (0 ms)."""
    return {
        "codec": cfg.codec,
        "sample_rate": int(cfg.sample_rate or 0),
        "channels": 1,
        "frame_ms": float(cfg.frame_ms),
        "framing": cfg.framing,
        "transport": cfg.transport,
        "clip": cfg.clip,
        "seed": int(cfg.seed),
        "profile": cfg.profile,
        "mode": mode,
        "lookahead_ms": float(stream.lookahead_ms) if stream is not None else 0.0,
        "bitrate_bps": int(cfg.bitrate) if cfg.codec == "opus" else None,
    }


def stream_trace(cfg: CallConfig, stream: SenderStream, *, send_s: np.ndarray, arrival_s: np.ndarray,
                 wire_bytes: np.ndarray, duplicates: np.ndarray, mode: str, direction: str = "up") -> pd.DataFrame:
    """The arrival trace of ``stream``'s packets (``direction``: the uplink unless a conversation's
    agent leg) given what the engine measured per packet: ``send_s`` / ``arrival_s`` on the call
    clock (s, NaN = lost), ``wire_bytes`` under the header model, ``duplicates`` (extra copies that
    arrived)."""
    n = len(stream.seq)
    rows = {
        "seq": stream.seq, "media_ts": stream.media_ts, "frame_samples": stream.frame_samples,
        "capture_s": stream.capture_s, "send_s": send_s, "arrival_s": arrival_s,
        "payload_bytes": stream.payload_bytes, "message_bytes": stream.message_bytes,
        "wire_bytes": wire_bytes, "transport": [cfg.transport] * n, "direction": [direction] * n,
        "fec": stream.fec, "duplicates": duplicates, "payload": stream.payload,
    }
    return trace_mod.make_trace(rows, trace_attrs(cfg, stream, mode))


def wire_bytes(cfg: CallConfig, message_bytes: Any) -> np.ndarray:
    """Bytes on the wire per message under the config's header model (RTP/UDP/IP or
    WebSocket/TLS/TCP/IP, see translab.metrics.bandwidth.HeaderModel)."""
    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    if cfg.transport == "webrtc":
        return np.array([rtp_wire_bytes(int(b), hm) for b in message_bytes], dtype=np.int64)
    return np.array([ws_wire_bytes(int(b), True, hm) for b in message_bytes], dtype=np.int64)
