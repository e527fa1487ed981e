"""RTX (RFC 4588): the sender's packet history and the retransmission payload.

An RTX packet travels on its own SSRC and sequence space; its payload is the original sequence
number (OSN, 2 bytes, network order) followed by the original RTP payload (RFC 4588 section 4).

:class:`RtxHistory` is the sender side, in the manner of libwebrtc's ``RtpPacketHistory``: every sent
packet is stored for at least ``max(min_age_s, 3 x RTT)``; a NACKed packet is resent only if it is
still stored and was not (re)sent less than one RTT ago, so a NACK repeated while the first
retransmission is still in flight does not send another copy. Pure: times come in as arguments (s).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from translab.errors import ConfigError, TranslabError


def rtx_payload(osn: int, payload: bytes) -> bytes:
    """The RTX payload for original packet ``osn`` (0..65535; wrapped to 16 bits)."""
    return (int(osn) & 0xFFFF).to_bytes(2, "big") + payload


def parse_rtx(payload: bytes) -> tuple[int, bytes]:
    """``(osn, original payload)`` of an RTX payload; TranslabError if shorter than 2 bytes."""
    if len(payload) < 2:
        raise TranslabError("RTX payload: shorter than its 2-byte original sequence number")
    return int.from_bytes(payload[:2], "big"), bytes(payload[2:])


@dataclass
class _Stored:
    payload: bytes
    first_send_s: float
    last_send_s: float
    times_resent: int = 0


class RtxHistory:
    """Packets the sender can retransmit, by sequence number.

    ``min_age_s``: packets are kept at least this long (libwebrtc: 1 s) or three RTTs, whichever is
    longer. ``max_resends``: give up on a packet after this many retransmissions."""

    def __init__(self, min_age_s: float = 1.0, max_resends: int = 10) -> None:
        if not min_age_s > 0:
            raise ConfigError("rtx min_age_s", min_age_s, "a number of seconds > 0")
        self.min_age_s = float(min_age_s)
        self.max_resends = int(max_resends)
        self._packets: OrderedDict[int, _Stored] = OrderedDict()
        self.resent = 0
        self.refused_in_flight = 0
        self.refused_expired = 0

    def sent(self, seq: int, payload: bytes, now_s: float, rtt_s: float = 0.0) -> None:
        """Store packet ``seq`` sent at ``now_s``; drop packets older than the keep time."""
        self._packets[int(seq)] = _Stored(payload, now_s, now_s)
        keep = max(self.min_age_s, 3.0 * rtt_s)
        while self._packets:
            first = next(iter(self._packets.values()))
            if now_s - first.first_send_s <= keep:
                break
            self._packets.popitem(last=False)

    def on_nack(self, seqs: "list[int]", now_s: float, rtt_s: float) -> list[tuple[int, bytes]]:
        """The packets to retransmit now for a NACK of ``seqs``: ``[(osn, original payload)]``.
        A packet resent less than ``rtt_s`` ago, resent ``max_resends`` times already, or no longer
        stored is not sent (counted in ``refused_in_flight`` / ``refused_expired``)."""
        out: list[tuple[int, bytes]] = []
        for seq in seqs:
            p = self._packets.get(int(seq))
            if p is None or p.times_resent >= self.max_resends:
                self.refused_expired += 1
                continue
            if p.times_resent and now_s - p.last_send_s < rtt_s:
                self.refused_in_flight += 1
                continue
            p.times_resent += 1
            p.last_send_s = now_s
            self.resent += 1
            out.append((int(seq), p.payload))
        return out
