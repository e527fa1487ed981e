"""The Twilio bridge's marks (translab.conversation.marks): the mark after each media message, Twilio's
echo, and the truncate on speech_started at the last echoed mark's audio position."""

from translab.conversation import protocol as p
from translab.conversation.marks import MarkBook

SID = p.STREAM_SID


def _delta(item: str, ms: int) -> p.AudioDelta:
    return p.AudioDelta("event_1", "resp_1", item, b"\xff" * (8 * ms))  # mu-law 8 kHz: 8 bytes a ms


def test_a_mark_follows_each_media_message_in_twilios_documented_shape():
    book = MarkBook(8000)
    m1, m2 = book.after_media(_delta("item_a1", 100)), book.after_media(_delta("item_a1", 100))
    assert book.names == {m1.name: ("item_a1", 100.0), m2.name: ("item_a1", 200.0)}
    # to Twilio: no sequence number; Twilio's echo carries one (Media Streams docs)
    assert p.encode(m1) == '{"event":"mark","streamSid":"' + SID + '","mark":{"name":"' + m1.name + '"}}'
    echo = p.decode_twilio('{"event":"mark","sequenceNumber":"4","streamSid":"' + SID
                           + '","mark":{"name":"' + m1.name + '"}}')
    assert echo == p.TwilioMark(m1.name, sequence_number=4)


def test_the_truncate_is_the_last_echoed_marks_position_while_audio_is_still_queued():
    book = MarkBook(8000)
    assert book.truncate() is None  # nothing sent yet
    marks = [book.after_media(_delta("item_a1", 100)) for _ in range(5)]
    assert book.truncate() == p.ItemTruncate("item_a1", 0)  # sent, none played yet
    book.echoed(p.TwilioMark(marks[0].name, 1))
    book.echoed(p.TwilioMark(marks[1].name, 2))
    assert book.truncate() == p.ItemTruncate("item_a1", 200)
    assert p.encode(book.truncate()) == ('{"type":"conversation.item.truncate","item_id":"item_a1",'
                                         '"content_index":0,"audio_end_ms":200}')
    for i, m in enumerate(marks[2:]):
        book.echoed(p.TwilioMark(m.name, 3 + i))
    assert book.truncate() is None  # all of it played: nothing to cut


def test_a_new_reply_is_truncated_on_its_own_marks():
    book = MarkBook(8000)
    old = book.after_media(_delta("item_a1", 60))
    book.echoed(p.TwilioMark(old.name, 1))
    book.after_media(_delta("item_a2", 60))
    assert book.truncate() == p.ItemTruncate("item_a2", 0)
