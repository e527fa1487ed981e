"""Byte-exact framings and the server-side errors they raise."""

import base64
import json

import pytest

from translab.errors import ConfigError
from translab.media.framing import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_UNSUPPORTED_DATA,
    FramingError,
    check_framing,
    decode_message,
    encode_message,
    message_size,
)

PCM_100MS_24K = bytes(range(256)) * 18 + bytes(192)  # 4800 bytes


def test_binary_is_the_payload_itself():
    msg = encode_message("binary", PCM_100MS_24K, 0, 0)
    assert msg == PCM_100MS_24K and message_size(msg) == 4800
    assert decode_message("binary", msg) == PCM_100MS_24K


def test_realtime_json_is_the_openai_append_event_with_base64_audio():
    msg = encode_message("realtime-json", PCM_100MS_24K, 3, 300)
    assert isinstance(msg, str)
    event = json.loads(msg)
    assert event == {"type": "input_audio_buffer.append", "audio": base64.b64encode(PCM_100MS_24K).decode()}
    # base64 of 4800 bytes is exactly 6400 characters; the JSON envelope adds 46 bytes.
    assert message_size(msg) == 6400 + len('{"type":"input_audio_buffer.append","audio":""}')
    assert decode_message("realtime-json", msg) == PCM_100MS_24K


def test_twilio_json_carries_mulaw_in_a_media_event():
    mulaw = bytes([0xFF]) * 160  # 20 ms at 8 kHz
    msg = encode_message("twilio-json", mulaw, 0, 0)
    event = json.loads(msg)
    assert event["event"] == "media" and event["sequenceNumber"] == "2"
    assert event["media"]["chunk"] == "1" and event["media"]["track"] == "inbound"
    assert base64.b64decode(event["media"]["payload"]) == mulaw
    assert decode_message("twilio-json", msg, sample_bytes=1) == mulaw


@pytest.mark.parametrize(
    "framing, message, code, words",
    [
        ("binary", b"\x00\x01\x02", CLOSE_INVALID_PAYLOAD, "whole number"),
        ("binary", "text", CLOSE_UNSUPPORTED_DATA, "binary frames"),
        ("realtime-json", "{not json", CLOSE_INVALID_PAYLOAD, "invalid JSON"),
        ("realtime-json", '{"type":"session.update"}', CLOSE_UNSUPPORTED_DATA, "unknown event type"),
        ("realtime-json", '{"type":"input_audio_buffer.append","audio":"@@@"}', CLOSE_INVALID_PAYLOAD, "base64"),
        ("realtime-json", '{"type":"input_audio_buffer.append","audio":"AA=="}', CLOSE_INVALID_PAYLOAD, "odd"),
        ("realtime-json", "[1, 2]", CLOSE_INVALID_PAYLOAD, "not an object"),
        ("twilio-json", '{"event":"stop"}', CLOSE_UNSUPPORTED_DATA, "unknown event"),
        ("twilio-json", '{"event":"media","media":{}}', CLOSE_INVALID_PAYLOAD, "audio field"),
        ("twilio-json", b"\x00\x00", CLOSE_UNSUPPORTED_DATA, "text frames"),
    ],
)
def test_bad_messages_name_their_fault_and_close_code(framing, message, code, words):
    with pytest.raises(FramingError) as err:
        decode_message(framing, message)
    assert err.value.close_code == code
    assert words in err.value.reason


def test_framing_refuses_codecs_it_cannot_carry():
    check_framing("realtime-json", "pcm16", 24000, 100)
    with pytest.raises(ConfigError, match="realtime-json carries pcm16 at 24000 Hz"):
        check_framing("realtime-json", "pcm16", 16000, 20)
    with pytest.raises(ConfigError, match="twilio-json carries pcmu"):
        check_framing("twilio-json", "pcmu", 8000, 100)
    with pytest.raises(ConfigError, match="framing: 'xml'"):
        check_framing("xml", "pcm16", 16000, 20)
