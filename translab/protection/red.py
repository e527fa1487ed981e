"""RED: redundant audio data in RTP (RFC 2198), as Chrome sends Opus in ``red/48000``.

Payload layout (RFC 2198 section 3)::

    for each redundant block, oldest first, 4 bytes:
        F=1 (1 bit) | block PT (7 bits) | timestamp offset (14 bits) | block length (10 bits)
    then 1 byte for the primary block:
        F=0 (1 bit) | block PT (7 bits)
    then the blocks' data in the same order: redundant blocks, primary last.

The timestamp offset is in RTP clock units (48 kHz for Opus, whatever the encoder's input rate) and
says how much earlier than the RTP packet's timestamp the block's media starts; the primary block's
timestamp is the packet's. A block longer than 1023 bytes or further back than 16383 units cannot be
described, so, like libwebrtc's ``AudioEncoderCopyRed``, the encoder leaves such blocks out.
Chrome's payload types: Opus 111, RED 63 (the RED PT is in the RTP header, not in this payload).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from translab.errors import ConfigError, TranslabError

#: Largest block length (bytes) a RED header can carry (10 bits).
MAX_BLOCK_BYTES = 1023
#: Largest timestamp offset (RTP clock units) a RED header can carry (14 bits).
MAX_TS_OFFSET = 16383
#: Chrome's payload type for Opus in its offers.
OPUS_PT = 111


@dataclass(frozen=True)
class RedBlock:
    """One block of a RED payload: ``ts_offset`` in RTP clock units before the packet's timestamp
    (0 for the primary), ``pt`` the block's payload type, ``data`` the codec payload."""

    ts_offset: int
    pt: int
    data: bytes

    @property
    def primary(self) -> bool:
        return self.ts_offset == 0


def encode_red(primary: bytes, redundant: "list[tuple[int, bytes]]", pt: int = OPUS_PT) -> bytes:
    """A RED payload carrying ``redundant`` blocks (``(ts_offset, data)``, oldest first, offsets in
    RTP clock units > 0) and ``primary``. Raises ConfigError for a block that RFC 2198's header
    cannot describe (callers that want libwebrtc's behaviour drop such blocks: :class:`RedEncoder`)."""
    if not 0 <= pt <= 127:
        raise ConfigError("red pt", pt, "0 to 127")
    head = bytearray()
    body = bytearray()
    last = MAX_TS_OFFSET + 1
    for offset, data in redundant:
        if not 0 < offset <= MAX_TS_OFFSET:
            raise ConfigError("red ts_offset", offset, f"1 to {MAX_TS_OFFSET} RTP clock units")
        if offset >= last:
            raise ConfigError("red ts_offset", offset, "decreasing offsets (oldest block first)")
        if len(data) > MAX_BLOCK_BYTES:
            raise ConfigError("red block length", len(data), f"0 to {MAX_BLOCK_BYTES} bytes")
        last = offset
        word = (1 << 31) | (pt << 24) | (offset << 10) | len(data)
        head += word.to_bytes(4, "big")
        body += data
    head.append(pt)
    return bytes(head + body + primary)


def decode_red(payload: bytes) -> list[RedBlock]:
    """The blocks of a RED payload, in payload order (redundant oldest first, primary last).
    TranslabError for a truncated payload or block lengths that overrun it."""
    blocks: list[tuple[int, int, int]] = []  # (offset, pt, length); length -1 = primary (the rest)
    pos = 0
    n = len(payload)
    while True:
        if pos >= n:
            raise TranslabError("RED payload: header runs past the end")
        if payload[pos] & 0x80:
            if pos + 4 > n:
                raise TranslabError("RED payload: truncated 4-byte block header")
            word = int.from_bytes(payload[pos:pos + 4], "big")
            blocks.append(((word >> 10) & 0x3FFF, (word >> 24) & 0x7F, word & 0x3FF))
            pos += 4
        else:
            blocks.append((0, payload[pos] & 0x7F, -1))
            pos += 1
            break
    out: list[RedBlock] = []
    for offset, pt, length in blocks:
        if length < 0:
            out.append(RedBlock(0, pt, bytes(payload[pos:])))
            break
        if pos + length > n:
            raise TranslabError("RED payload: a block length runs past the end")
        out.append(RedBlock(offset, pt, bytes(payload[pos:pos + length])))
        pos += length
    return out


class RedEncoder:
    """Wraps each new codec payload in RED with the previous ``distance`` payloads (1 or 2), as
    libwebrtc's ``AudioEncoderCopyRed`` does for Chrome's ``red/48000``.

    ``wrap(payload, rtp_ts)`` takes the primary payload and its RTP timestamp (48 kHz units for
    Opus) and returns the RED payload; blocks too old or too long for the header are left out, and
    so are empty payloads (DTX)."""

    def __init__(self, distance: int, pt: int = OPUS_PT) -> None:
        if distance not in (1, 2):
            raise ConfigError("red", distance, "1 or 2 (redundant frames per packet)")
        self.distance = distance
        self.pt = pt
        self._history: deque[tuple[int, bytes]] = deque(maxlen=distance)

    def wrap(self, payload: bytes, rtp_ts: int) -> bytes:
        """The RED payload for ``payload`` (primary) with timestamp ``rtp_ts`` (RTP clock units)."""
        red = [
            (rtp_ts - ts, data) for ts, data in self._history
            if 0 < rtp_ts - ts <= MAX_TS_OFFSET and 0 < len(data) <= MAX_BLOCK_BYTES
        ]
        self._history.append((rtp_ts, payload))
        return encode_red(payload, red, self.pt)
