"""The wire events of a voice-agent conversation, sans-I/O: typed dataclasses in, JSON text out.

Two protocols, each documented by its vendor:

* OpenAI Realtime (GA names; https://platform.openai.com/docs/api-reference/realtime): client events
  ``session.update`` (audio formats, ``turn_detection`` server_vad), ``input_audio_buffer.append``,
  ``conversation.item.truncate``; server events ``input_audio_buffer.speech_started`` /
  ``speech_stopped`` (``audio_start_ms`` / ``audio_end_ms``: ms of the input audio buffer),
  ``input_audio_buffer.committed``, ``response.created``, ``response.output_audio.delta`` (the beta
  API's ``response.audio.delta`` is decoded too and can be emitted), ``response.output_audio.done``,
  ``response.done``, ``error``.
* Twilio Media Streams (https://www.twilio.com/docs/voice/media-streams/websocket-messages): from
  Twilio ``connected``, ``start``, ``media`` (base64 8 kHz mu-law, 20 ms, with ``chunk`` and
  ``timestamp``), ``mark``, ``stop``; to Twilio ``media``, ``mark``, ``clear``.

:func:`encode` gives compact JSON (no spaces) with the keys in the documented order, so the bytes
are fixed; :func:`decode_realtime` / :func:`decode_twilio` parse text back into the dataclasses and
raise :class:`ProtocolError` (naming the field) for anything malformed. Audio stays ``bytes`` in the
dataclasses; base64 exists only on the wire.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Union

from translab.errors import TranslabError

STREAM_SID = "MZ00000000000000000000000000000000"
"""The stream id the lab's Twilio side uses (the same as translab.media.framing's)."""
ACCOUNT_SID = "AC00000000000000000000000000000000"
CALL_SID = "CA00000000000000000000000000000000"


class ProtocolError(TranslabError):
    """A message does not follow the protocol: ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


def _b64(audio: bytes) -> str:
    return base64.b64encode(audio).decode("ascii")


def _unb64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(where, "missing or not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(where, "not valid base64") from None


# --- OpenAI Realtime -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioFormat:
    """``audio/pcm`` (PCM16 little-endian mono, 24000 Hz only) or ``audio/pcmu`` / ``audio/pcma``
    (G.711, 8000 Hz)."""

    type: str = "audio/pcm"
    rate: int = 24000

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "rate": self.rate} if self.type == "audio/pcm" else {"type": self.type}


@dataclass(frozen=True)
class TurnDetection:
    """``server_vad`` settings (Realtime defaults: threshold 0.5, prefix_padding_ms 300,
    silence_duration_ms 500, a response created and interrupted by the VAD)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }


@dataclass(frozen=True)
class SessionUpdate:
    """Client: configure the session's audio formats and turn detection (None: no VAD)."""

    TYPE: ClassVar[str] = "session.update"
    input_format: AudioFormat = AudioFormat()
    output_format: AudioFormat = AudioFormat()
    turn_detection: TurnDetection | None = TurnDetection()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "format": self.input_format.to_dict(),
                        "turn_detection": self.turn_detection.to_dict() if self.turn_detection else None,
                    },
                    "output": {"format": self.output_format.to_dict()},
                },
            },
        }


@dataclass(frozen=True)
class InputAudioAppend:
    """Client: append audio (in the session's input format) to the input buffer."""

    TYPE: ClassVar[str] = "input_audio_buffer.append"
    audio: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "audio": _b64(self.audio)}


@dataclass(frozen=True)
class ItemTruncate:
    """Client: the user heard only ``audio_end_ms`` of item ``item_id``'s audio (barge-in)."""

    TYPE: ClassVar[str] = "conversation.item.truncate"
    item_id: str
    audio_end_ms: int
    content_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "item_id": self.item_id, "content_index": self.content_index,
                "audio_end_ms": self.audio_end_ms}


@dataclass(frozen=True)
class SpeechStarted:
    """Server: the VAD heard speech begin at ``audio_start_ms`` of the input buffer."""

    TYPE: ClassVar[str] = "input_audio_buffer.speech_started"
    event_id: str
    audio_start_ms: int
    item_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "event_id": self.event_id, "audio_start_ms": self.audio_start_ms,
                "item_id": self.item_id}


@dataclass(frozen=True)
class SpeechStopped:
    """Server: the VAD decided speech ended at ``audio_end_ms`` of the input buffer."""

    TYPE: ClassVar[str] = "input_audio_buffer.speech_stopped"
    event_id: str
    audio_end_ms: int
    item_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "event_id": self.event_id, "audio_end_ms": self.audio_end_ms,
                "item_id": self.item_id}


@dataclass(frozen=True)
class Committed:
    """Server: the input buffer up to the stop became user item ``item_id``."""

    TYPE: ClassVar[str] = "input_audio_buffer.committed"
    event_id: str
    item_id: str
    previous_item_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "event_id": self.event_id, "previous_item_id": self.previous_item_id,
                "item_id": self.item_id}


RESPONSE_STATUSES = ("in_progress", "completed", "cancelled", "failed", "incomplete")


def _response(response_id: str, status: str) -> dict[str, Any]:
    return {"id": response_id, "object": "realtime.response", "status": status}


@dataclass(frozen=True)
class ResponseCreated:
    """Server: response ``response_id`` started (status in_progress)."""

    TYPE: ClassVar[str] = "response.created"
    event_id: str
    response_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "event_id": self.event_id, "response": _response(self.response_id, "in_progress")}


@dataclass(frozen=True)
class AudioDelta:
    """Server: a chunk of reply audio (output format) for item ``item_id``. ``beta`` encodes the
    beta API's type name ``response.audio.delta``."""

    TYPE: ClassVar[str] = "response.output_audio.delta"
    BETA_TYPE: ClassVar[str] = "response.audio.delta"
    event_id: str
    response_id: str
    item_id: str
    delta: bytes
    output_index: int = 0
    content_index: int = 0
    beta: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.BETA_TYPE if self.beta else self.TYPE, "event_id": self.event_id,
                "response_id": self.response_id, "item_id": self.item_id, "output_index": self.output_index,
                "content_index": self.content_index, "delta": _b64(self.delta)}


@dataclass(frozen=True)
class AudioDone:
    """Server: item ``item_id``'s audio is complete (or was cut)."""

    TYPE: ClassVar[str] = "response.output_audio.done"
    event_id: str
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "event_id": self.event_id, "response_id": self.response_id,
                "item_id": self.item_id, "output_index": self.output_index, "content_index": self.content_index}


@dataclass(frozen=True)
class ResponseDone:
    """Server: response ``response_id`` ended with ``status`` (completed, or cancelled by barge-in)."""

    TYPE: ClassVar[str] = "response.done"
    event_id: str
    response_id: str
    status: str = "completed"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "event_id": self.event_id, "response": _response(self.response_id, self.status)}


@dataclass(frozen=True)
class ErrorEvent:
    """Server: an error (``kind`` is the API's ``error.type``, e.g. invalid_request_error)."""

    TYPE: ClassVar[str] = "error"
    event_id: str
    message: str
    kind: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "event_id": self.event_id,
                "error": {"type": self.kind, "code": self.code, "message": self.message, "param": self.param}}


RealtimeEvent = Union[SessionUpdate, InputAudioAppend, ItemTruncate, SpeechStarted, SpeechStopped, Committed,
                      ResponseCreated, AudioDelta, AudioDone, ResponseDone, ErrorEvent]


# --- Twilio Media Streams --------------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioConnected:
    """From Twilio: the WebSocket is up."""

    EVENT: ClassVar[str] = "connected"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.EVENT, "protocol": "Call", "version": "1.0.0"}


@dataclass(frozen=True)
class TwilioStart:
    """From Twilio: the stream starts (8 kHz mu-law mono)."""

    EVENT: ClassVar[str] = "start"
    sequence_number: int = 1
    stream_sid: str = STREAM_SID
    call_sid: str = CALL_SID
    account_sid: str = ACCOUNT_SID
    tracks: tuple[str, ...] = ("inbound",)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.EVENT,
            "sequenceNumber": str(self.sequence_number),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": list(self.tracks),
                "customParameters": {},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": self.stream_sid,
        }


@dataclass(frozen=True)
class TwilioMedia:
    """Audio: from Twilio it carries ``sequence_number``, ``chunk`` (1-based) and ``timestamp`` (ms
    since the stream started); to Twilio only the payload (all three None)."""

    EVENT: ClassVar[str] = "media"
    payload: bytes
    sequence_number: int | None = None
    chunk: int | None = None
    timestamp_ms: int | None = None
    track: str = "inbound"
    stream_sid: str = STREAM_SID

    def to_dict(self) -> dict[str, Any]:
        if self.sequence_number is None:
            return {"event": self.EVENT, "streamSid": self.stream_sid, "media": {"payload": _b64(self.payload)}}
        return {
            "event": self.EVENT,
            "sequenceNumber": str(self.sequence_number),
            "media": {"track": self.track, "chunk": str(self.chunk), "timestamp": str(self.timestamp_ms),
                      "payload": _b64(self.payload)},
            "streamSid": self.stream_sid,
        }


@dataclass(frozen=True)
class TwilioMark:
    """A named mark: sent to Twilio after audio, echoed back (with a sequence number) once that audio
    has played."""

    EVENT: ClassVar[str] = "mark"
    name: str
    sequence_number: int | None = None
    stream_sid: str = STREAM_SID

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"event": self.EVENT}
        if self.sequence_number is not None:
            d["sequenceNumber"] = str(self.sequence_number)
        d["streamSid"] = self.stream_sid
        d["mark"] = {"name": self.name}
        return d


@dataclass(frozen=True)
class TwilioClear:
    """To Twilio: drop the audio buffered for playing (barge-in)."""

    EVENT: ClassVar[str] = "clear"
    stream_sid: str = STREAM_SID

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.EVENT, "streamSid": self.stream_sid}


@dataclass(frozen=True)
class TwilioStop:
    """From Twilio: the stream ended."""

    EVENT: ClassVar[str] = "stop"
    sequence_number: int = 0
    stream_sid: str = STREAM_SID
    call_sid: str = CALL_SID
    account_sid: str = ACCOUNT_SID

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.EVENT, "sequenceNumber": str(self.sequence_number), "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}


TwilioEvent = Union[TwilioConnected, TwilioStart, TwilioMedia, TwilioMark, TwilioClear, TwilioStop]


# --- encode / decode -------------------------------------------------------------------------------


def encode(event: "RealtimeEvent | TwilioEvent") -> str:
    """The event as one compact JSON text frame, keys in the documented order."""
    return json.dumps(event.to_dict(), separators=(",", ":"))


def _load(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        raise ProtocolError("frame", "a JSON text frame is required, got a binary frame")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProtocolError("frame", f"invalid JSON: {err.msg} at char {err.pos}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("frame", "the JSON message is not an object")
    return obj


def _get(d: Any, path: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
    cur = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if optional:
                return None
            raise ProtocolError(path, "missing")
        cur = cur[part]
    if cur is None and optional:
        return None
    if not isinstance(cur, kind) or (kind is int and isinstance(cur, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ProtocolError(path, f"{cur!r} is not a {names}")
    return cur


def _int_str(d: Any, path: str) -> int:
    """Twilio sends counters as decimal strings."""
    v = _get(d, path, (str, int))
    try:
        return int(v)
    except ValueError:
        raise ProtocolError(path, f"{v!r} is not a decimal number") from None


def _format(d: Any, path: str) -> AudioFormat:
    fmt = _get(d, path, (dict, str), optional=True)
    if fmt is None:
        return AudioFormat()
    if isinstance(fmt, str):  # beta API: "pcm16" | "g711_ulaw" | "g711_alaw"
        beta = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
        if fmt not in beta:
            raise ProtocolError(path, f"{fmt!r} is not one of {', '.join(beta)}")
        return AudioFormat(beta[fmt], 24000 if fmt == "pcm16" else 8000)
    kind = _get(fmt, "type", str)
    if kind == "audio/pcm":
        rate = fmt.get("rate", 24000)
        if rate != 24000:
            raise ProtocolError(path + ".rate", f"{rate!r} is not allowed (audio/pcm is 24000 Hz only)")
        return AudioFormat(kind, 24000)
    if kind in ("audio/pcmu", "audio/pcma"):
        return AudioFormat(kind, 8000)
    raise ProtocolError(path + ".type", f"{kind!r} is not one of audio/pcm, audio/pcmu, audio/pcma")


def _opt(d: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any, path: str) -> Any:
    """``d[key]`` checked against ``kind``, or ``default`` when absent."""
    return _get(d, key, kind) if key in d else default


def _turn_detection(td: Any, path: str) -> TurnDetection | None:
    if td is None:
        return None
    if not isinstance(td, dict):
        raise ProtocolError(path, f"{td!r} is not an object or null")
    kind = td.get("type")
    if kind != "server_vad":
        raise ProtocolError(path + ".type", f"{kind!r} is not supported (allowed: server_vad)")
    dflt = TurnDetection()
    num = (int, float)
    try:
        return TurnDetection(
            threshold=float(_opt(td, "threshold", num, dflt.threshold, path)),
            prefix_padding_ms=int(_opt(td, "prefix_padding_ms", num, dflt.prefix_padding_ms, path)),
            silence_duration_ms=int(_opt(td, "silence_duration_ms", num, dflt.silence_duration_ms, path)),
            create_response=_opt(td, "create_response", bool, True, path),
            interrupt_response=_opt(td, "interrupt_response", bool, True, path),
        )
    except ProtocolError as err:
        raise ProtocolError(f"{path}.{err.field}", str(err).split(": ", 1)[1]) from None


def _session_update(d: dict[str, Any]) -> SessionUpdate:
    s = _get(d, "session", dict)
    if "audio" in s:  # GA shape
        inp = _get(d, "session.audio.input", dict, optional=True) or {}
        path = "session.audio.input.turn_detection"
        return SessionUpdate(
            input_format=_format(d, "session.audio.input.format"),
            output_format=_format(d, "session.audio.output.format"),
            turn_detection=_turn_detection(inp["turn_detection"], path) if "turn_detection" in inp else TurnDetection(),
        )
    path = "session.turn_detection"  # beta shape
    return SessionUpdate(
        input_format=_format(d, "session.input_audio_format"),
        output_format=_format(d, "session.output_audio_format"),
        turn_detection=_turn_detection(s["turn_detection"], path) if "turn_detection" in s else TurnDetection(),
    )


def _error(d: dict[str, Any]) -> ErrorEvent:
    return ErrorEvent(
        event_id=_get(d, "event_id", str), message=_get(d, "error.message", str),
        kind=_get(d, "error.type", str), code=_get(d, "error.code", str, True), param=_get(d, "error.param", str, True),
    )


def _status(d: dict[str, Any]) -> str:
    status: str = _get(d, "response.status", str)
    if status not in RESPONSE_STATUSES:
        raise ProtocolError("response.status", f"{status!r} is not one of {', '.join(RESPONSE_STATUSES)}")
    return status


_REALTIME: dict[str, Callable[[dict[str, Any]], Any]] = {
    SessionUpdate.TYPE: _session_update,
    InputAudioAppend.TYPE: lambda d: InputAudioAppend(_unb64(d.get("audio"), "audio")),
    ItemTruncate.TYPE: lambda d: ItemTruncate(
        _get(d, "item_id", str), _get(d, "audio_end_ms", int), _get(d, "content_index", int)),
    SpeechStarted.TYPE: lambda d: SpeechStarted(
        _get(d, "event_id", str), _get(d, "audio_start_ms", int), _get(d, "item_id", str)),
    SpeechStopped.TYPE: lambda d: SpeechStopped(
        _get(d, "event_id", str), _get(d, "audio_end_ms", int), _get(d, "item_id", str)),
    Committed.TYPE: lambda d: Committed(
        _get(d, "event_id", str), _get(d, "item_id", str), _get(d, "previous_item_id", str, True)),
    ResponseCreated.TYPE: lambda d: ResponseCreated(_get(d, "event_id", str), _get(d, "response.id", str)),
    AudioDelta.TYPE: lambda d: _delta(d, beta=False),
    AudioDelta.BETA_TYPE: lambda d: _delta(d, beta=True),
    AudioDone.TYPE: lambda d: AudioDone(
        _get(d, "event_id", str), _get(d, "response_id", str), _get(d, "item_id", str),
        _get(d, "output_index", int), _get(d, "content_index", int)),
    ResponseDone.TYPE: lambda d: ResponseDone(_get(d, "event_id", str), _get(d, "response.id", str), _status(d)),
    ErrorEvent.TYPE: _error,
}


def _delta(d: dict[str, Any], beta: bool) -> AudioDelta:
    return AudioDelta(
        _get(d, "event_id", str), _get(d, "response_id", str), _get(d, "item_id", str),
        _unb64(d.get("delta"), "delta"), _get(d, "output_index", int), _get(d, "content_index", int), beta,
    )


def decode_realtime(text: str | bytes) -> RealtimeEvent:
    """Parse one Realtime event (client or server); :class:`ProtocolError` for an unknown type or a
    missing / mistyped field."""
    d = _load(text)
    kind = _get(d, "type", str)
    parse = _REALTIME.get(kind)
    if parse is None:
        raise ProtocolError("type", f"{kind!r} is not a supported event (allowed: {', '.join(sorted(_REALTIME))})")
    return parse(d)  # type: ignore[no-any-return]


def _twilio_media(d: dict[str, Any]) -> TwilioMedia:
    payload = _unb64(_get(d, "media", dict).get("payload"), "media.payload")
    sid = _get(d, "streamSid", str)
    if "sequenceNumber" not in d:
        return TwilioMedia(payload, stream_sid=sid)
    return TwilioMedia(
        payload, sequence_number=_int_str(d, "sequenceNumber"), chunk=_int_str(d, "media.chunk"),
        timestamp_ms=_int_str(d, "media.timestamp"), track=_get(d, "media.track", str), stream_sid=sid,
    )


def _twilio_start(d: dict[str, Any]) -> TwilioStart:
    fmt = _get(d, "start.mediaFormat", dict)
    if fmt.get("encoding") != "audio/x-mulaw" or fmt.get("sampleRate") != 8000:
        raise ProtocolError("start.mediaFormat", f"{fmt!r} is not audio/x-mulaw at 8000 Hz")
    return TwilioStart(
        sequence_number=_int_str(d, "sequenceNumber"), stream_sid=_get(d, "start.streamSid", str),
        call_sid=_get(d, "start.callSid", str), account_sid=_get(d, "start.accountSid", str),
        tracks=tuple(_get(d, "start.tracks", list)),
    )


_TWILIO: dict[str, Callable[[dict[str, Any]], Any]] = {
    "connected": lambda d: TwilioConnected(),
    "start": _twilio_start,
    "media": _twilio_media,
    "mark": lambda d: TwilioMark(
        _get(d, "mark.name", str), _int_str(d, "sequenceNumber") if "sequenceNumber" in d else None,
        _get(d, "streamSid", str)),
    "clear": lambda d: TwilioClear(_get(d, "streamSid", str)),
    "stop": lambda d: TwilioStop(
        _int_str(d, "sequenceNumber"), _get(d, "streamSid", str), _get(d, "stop.callSid", str),
        _get(d, "stop.accountSid", str)),
}


def decode_twilio(text: str | bytes) -> TwilioEvent:
    """Parse one Twilio Media Streams message; :class:`ProtocolError` for anything malformed."""
    d = _load(text)
    kind = _get(d, "event", str)
    parse = _TWILIO.get(kind)
    if parse is None:
        raise ProtocolError("event", f"{kind!r} is not a supported event (allowed: {', '.join(_TWILIO)})")
    return parse(d)  # type: ignore[no-any-return]
