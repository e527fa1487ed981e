"""Realtime and Twilio events: byte-exact against the documented shapes, round trips, clear errors."""

import base64

import pytest

from translab.conversation import protocol as p
from translab.media.framing import encode_message

PCM = bytes(range(8))
B64 = base64.b64encode(PCM).decode()


@pytest.mark.parametrize(
    "event, text",
    [
        (
            p.SessionUpdate(),
            '{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcm",'
            '"rate":24000},"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,'
            '"silence_duration_ms":500,"create_response":true,"interrupt_response":true}},"output":{"format":'
            '{"type":"audio/pcm","rate":24000}}}}}',
        ),
        (p.InputAudioAppend(PCM), '{"type":"input_audio_buffer.append","audio":"' + B64 + '"}'),
        (
            p.ItemTruncate("item_2", 1500),
            '{"type":"conversation.item.truncate","item_id":"item_2","content_index":0,"audio_end_ms":1500}',
        ),
        (
            p.SpeechStarted("event_1", 1000, "item_1"),
            '{"type":"input_audio_buffer.speech_started","event_id":"event_1","audio_start_ms":1000,"item_id":"item_1"}',
        ),
        (
            p.SpeechStopped("event_2", 2000, "item_1"),
            '{"type":"input_audio_buffer.speech_stopped","event_id":"event_2","audio_end_ms":2000,"item_id":"item_1"}',
        ),
        (
            p.Committed("event_3", "item_1", None),
            '{"type":"input_audio_buffer.committed","event_id":"event_3","previous_item_id":null,"item_id":"item_1"}',
        ),
        (
            p.ResponseCreated("event_4", "resp_1"),
            '{"type":"response.created","event_id":"event_4","response":{"id":"resp_1","object":"realtime.response",'
            '"status":"in_progress"}}',
        ),
        (
            p.AudioDelta("event_5", "resp_1", "item_2", PCM),
            '{"type":"response.output_audio.delta","event_id":"event_5","response_id":"resp_1","item_id":"item_2",'
            '"output_index":0,"content_index":0,"delta":"' + B64 + '"}',
        ),
        (
            p.AudioDelta("event_5", "resp_1", "item_2", PCM, beta=True),
            '{"type":"response.audio.delta","event_id":"event_5","response_id":"resp_1","item_id":"item_2",'
            '"output_index":0,"content_index":0,"delta":"' + B64 + '"}',
        ),
        (
            p.AudioDone("event_6", "resp_1", "item_2"),
            '{"type":"response.output_audio.done","event_id":"event_6","response_id":"resp_1","item_id":"item_2",'
            '"output_index":0,"content_index":0}',
        ),
        (
            p.ResponseDone("event_7", "resp_1", "cancelled"),
            '{"type":"response.done","event_id":"event_7","response":{"id":"resp_1","object":"realtime.response",'
            '"status":"cancelled"}}',
        ),
        (
            p.ErrorEvent("event_8", "bad audio", code="invalid_value", param="audio"),
            '{"type":"error","event_id":"event_8","error":{"type":"invalid_request_error","code":"invalid_value",'
            '"message":"bad audio","param":"audio"}}',
        ),
    ],
)
def test_realtime_events_are_byte_exact_and_round_trip(event, text):
    assert p.encode(event) == text
    assert p.decode_realtime(text) == event


SID = p.STREAM_SID


@pytest.mark.parametrize(
    "event, text",
    [
        (p.TwilioConnected(), '{"event":"connected","protocol":"Call","version":"1.0.0"}'),
        (
            p.TwilioStart(),
            '{"event":"start","sequenceNumber":"1","start":{"accountSid":"' + p.ACCOUNT_SID + '","streamSid":"' + SID
            + '","callSid":"' + p.CALL_SID + '","tracks":["inbound"],"customParameters":{},"mediaFormat":'
            '{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"' + SID + '"}',
        ),
        (
            p.TwilioMedia(PCM, sequence_number=3, chunk=2, timestamp_ms=20),
            '{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"2","timestamp":"20",'
            '"payload":"' + B64 + '"},"streamSid":"' + SID + '"}',
        ),
        (p.TwilioMedia(PCM), '{"event":"media","streamSid":"' + SID + '","media":{"payload":"' + B64 + '"}}'),
        (p.TwilioMark("reply-1"), '{"event":"mark","streamSid":"' + SID + '","mark":{"name":"reply-1"}}'),
        (
            p.TwilioMark("reply-1", sequence_number=9),
            '{"event":"mark","sequenceNumber":"9","streamSid":"' + SID + '","mark":{"name":"reply-1"}}',
        ),
        (p.TwilioClear(), '{"event":"clear","streamSid":"' + SID + '"}'),
        (
            p.TwilioStop(12),
            '{"event":"stop","sequenceNumber":"12","streamSid":"' + SID + '","stop":{"accountSid":"' + p.ACCOUNT_SID
            + '","callSid":"' + p.CALL_SID + '"}}',
        ),
    ],
)
def test_twilio_events_are_byte_exact_and_round_trip(event, text):
    assert p.encode(event) == text
    assert p.decode_twilio(text) == event


def test_audio_messages_match_the_call_paths_framing_byte_for_byte():
    # The one-way calls (translab.transport.framing) send the same two audio messages.
    assert p.encode(p.InputAudioAppend(PCM)) == encode_message("realtime-json", PCM, 0, 0)
    media = p.TwilioMedia(PCM, sequence_number=2 + 4, chunk=4 + 1, timestamp_ms=80)
    assert p.encode(media) == encode_message("twilio-json", PCM, 4, 80)


def test_beta_session_update_is_understood():
    text = ('{"type":"session.update","session":{"input_audio_format":"g711_ulaw","output_audio_format":"pcm16",'
            '"turn_detection":{"type":"server_vad","silence_duration_ms":200}}}')
    ev = p.decode_realtime(text)
    assert ev.input_format == p.AudioFormat("audio/pcmu", 8000)
    assert ev.output_format == p.AudioFormat("audio/pcm", 24000)
    assert ev.turn_detection == p.TurnDetection(silence_duration_ms=200)


def test_turn_detection_null_turns_the_vad_off():
    ev = p.decode_realtime('{"type":"session.update","session":{"type":"realtime","audio":{"input":'
                           '{"turn_detection":null}}}}')
    assert ev.turn_detection is None


@pytest.mark.parametrize(
    "text, message",
    [
        (b"{}", "frame: a JSON text frame is required"),
        ("[1]", "frame: the JSON message is not an object"),
        ("{nope", "frame: invalid JSON"),
        ('{"type":"response.cancel"}', "type: 'response.cancel' is not a supported event"),
        ('{"type":"input_audio_buffer.append","audio":"***"}', "audio: not valid base64"),
        ('{"type":"input_audio_buffer.append"}', "audio: missing or not a base64 string"),
        ('{"type":"conversation.item.truncate","item_id":"i","content_index":0,"audio_end_ms":"5"}',
         "audio_end_ms: '5' is not a int"),
        ('{"type":"response.done","event_id":"e","response":{"id":"r","status":"weird"}}',
         "response.status: 'weird' is not one of"),
        ('{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":'
         '{"type":"audio/pcm","rate":16000}}}}}', "session.audio.input.format.rate: 16000 is not allowed"),
        ('{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":'
         '{"type":"semantic_vad"}}}}}', "session.audio.input.turn_detection.type: 'semantic_vad' is not supported"),
        ('{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":'
         '{"type":"server_vad","threshold":"high"}}}}}', "session.audio.input.turn_detection.threshold:"),
    ],
)
def test_malformed_realtime_messages_name_the_field(text, message):
    with pytest.raises(p.ProtocolError, match="^" + message.replace("(", r"\(").replace("[", r"\[").replace("*", r"\*")):
        p.decode_realtime(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"event":"dtmf"}', "event: 'dtmf' is not a supported event"),
        ('{"event":"media","streamSid":"S","media":{}}', "media.payload: missing"),
        ('{"event":"media","sequenceNumber":"x","streamSid":"S","media":{"track":"inbound","chunk":"1",'
         '"timestamp":"0","payload":""}}', "sequenceNumber: 'x' is not a decimal number"),
        ('{"event":"clear"}', "streamSid: missing"),
    ],
)
def test_malformed_twilio_messages_name_the_field(text, message):
    with pytest.raises(p.ProtocolError, match="^" + message):
        p.decode_twilio(text)
