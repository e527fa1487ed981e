"""WebSocket message framings (pure: bytes and strings in, bytes and strings out).

============== ===================================================== ========== ===========
framing        one message carries                                    codec      frame
============== ===================================================== ========== ===========
binary         the codec payload as a binary WebSocket frame          any        any
realtime-json  ``{"type":"input_audio_buffer.append","audio":B64}``  pcm16 24k  any
twilio-json    ``{"event":"media",...,"media":{"payload":B64}}``      pcmu 8k    20 ms
============== ===================================================== ========== ===========

``realtime-json`` follows the OpenAI Realtime API's client event; ``twilio-json`` follows Twilio Media
Streams' ``media`` message (with its ``sequenceNumber``, ``streamSid`` and ``media.chunk/timestamp``
fields so message sizes are realistic). JSON messages are text frames; base64 inflates the audio by 4/3.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from translab.errors import ConfigError, TranslabError

from translab.config import WS_FRAMINGS as FRAMINGS
from translab.config import check_framing

__all__ = ["FRAMINGS", "FramingError", "check_framing", "decode_message", "encode_message", "message_size",
           "CLOSE_UNSUPPORTED_DATA", "CLOSE_INVALID_PAYLOAD", "CLOSE_MESSAGE_TOO_BIG", "TWILIO_STREAM_SID"]

#: WebSocket close codes used by the server for bad client data (RFC 6455 section 7.4.1).
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_MESSAGE_TOO_BIG = 1009

TWILIO_STREAM_SID = "MZ00000000000000000000000000000000"


class FramingError(TranslabError):
    """A received message does not follow the framing. ``close_code`` is the RFC 6455 code a server
    should close with (1003 unsupported data, 1007 invalid payload) and ``reason`` its text."""

    def __init__(self, close_code: int, reason: str) -> None:
        self.close_code = close_code
        self.reason = reason
        super().__init__(f"{reason} (close code {close_code})")


def encode_message(framing: str, payload: bytes, seq: int, media_ts_ms: int) -> bytes | str:
    """The WebSocket message (bytes: binary frame; str: text frame) that carries ``payload``.

    ``seq`` is the 0-based message number, ``media_ts_ms`` the media time of its first sample (ms).
    """
    if framing == "binary":
        return bytes(payload)
    audio = base64.b64encode(payload).decode("ascii")
    if framing == "realtime-json":
        return json.dumps({"type": "input_audio_buffer.append", "audio": audio}, separators=(",", ":"))
    if framing == "twilio-json":
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": str(seq + 2),  # Twilio: "start" is 1, media messages from 2
                "media": {
                    "track": "inbound",
                    "chunk": str(seq + 1),
                    "timestamp": str(media_ts_ms),
                    "payload": audio,
                },
                "streamSid": TWILIO_STREAM_SID,
            },
            separators=(",", ":"),
        )
    raise ConfigError("framing", framing, ", ".join(FRAMINGS))


def message_size(message: bytes | str) -> int:
    """Bytes the message occupies as a WebSocket payload (UTF-8 for text frames)."""
    return len(message.encode("utf-8")) if isinstance(message, str) else len(message)


def decode_message(framing: str, message: bytes | str, *, sample_bytes: int = 2) -> bytes:
    """The codec payload carried by ``message``; raises :class:`FramingError` for bad data.

    ``sample_bytes`` is the size of one sample of the expected codec for binary PCM framings (2 for
    PCM16, 1 for mu-law, 0 to skip the check, e.g. for Opus packets).
    """
    if framing == "binary":
        if isinstance(message, str):
            raise FramingError(CLOSE_UNSUPPORTED_DATA, "binary framing expects binary frames, got text")
        if sample_bytes and len(message) % sample_bytes:
            raise FramingError(
                CLOSE_INVALID_PAYLOAD,
                f"binary audio of {len(message)} bytes is not a whole number of {sample_bytes}-byte samples",
            )
        return bytes(message)
    if isinstance(message, bytes):
        raise FramingError(CLOSE_UNSUPPORTED_DATA, f"{framing} framing expects text frames, got binary")
    try:
        event: Any = json.loads(message)
    except json.JSONDecodeError as err:
        raise FramingError(CLOSE_INVALID_PAYLOAD, f"invalid JSON: {err.msg} at char {err.pos}") from None
    if not isinstance(event, dict):
        raise FramingError(CLOSE_INVALID_PAYLOAD, "JSON message is not an object")
    if framing == "realtime-json":
        kind = event.get("type")
        if kind != "input_audio_buffer.append":
            raise FramingError(CLOSE_UNSUPPORTED_DATA, f"unknown event type {kind!r}")
        b64 = event.get("audio")
    elif framing == "twilio-json":
        kind = event.get("event")
        if kind != "media":
            raise FramingError(CLOSE_UNSUPPORTED_DATA, f"unknown event {kind!r}")
        media = event.get("media")
        b64 = media.get("payload") if isinstance(media, dict) else None
    else:
        raise ConfigError("framing", framing, ", ".join(FRAMINGS))
    if not isinstance(b64, str):
        raise FramingError(CLOSE_INVALID_PAYLOAD, "audio field missing or not a base64 string")
    try:
        audio = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise FramingError(CLOSE_INVALID_PAYLOAD, "audio is not valid base64") from None
    if framing == "realtime-json" and len(audio) % 2:
        raise FramingError(CLOSE_INVALID_PAYLOAD, f"pcm16 audio of {len(audio)} bytes has an odd length")
    return audio
