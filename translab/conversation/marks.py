"""The Twilio bridge's marks: how much of a reply the caller has heard, as Twilio Media Streams bridges
learn it. After each ``media`` message the bridge sends Twilio a ``mark``; Twilio echoes a mark back
once the audio sent before it has played (and drops the marks still pending when it is sent
``clear``). On ``speech_started`` the bridge sends ``clear`` and, if audio of the current reply was
still queued at Twilio (audio sent beyond the last echoed mark), ``conversation.item.truncate`` with
``audio_end_ms`` = the audio position of the last echoed mark of that item (0 before any): what the
caller had heard, at the granularity of the media messages.

Pure (no clock, no sockets): the live bridge (translab.conversation.twilio) and the simulation
(translab.conversation.simulate) feed it the same events in arrival order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from translab.conversation import protocol as p


@dataclass
class MarkBook:
    """The bridge's bookkeeping (``rate``: the reply audio's sample rate; μ-law: one byte a sample)."""

    rate: int = 8000
    sent_ms: dict[str, float] = field(default_factory=dict)  # item -> reply audio sent to Twilio (ms)
    names: dict[str, tuple[str, float]] = field(default_factory=dict)  # mark name -> (item, audio ms)
    heard_ms: dict[str, float] = field(default_factory=dict)  # item -> position of its last echoed mark
    current: str | None = None  # the item of the last media sent

    def after_media(self, delta: p.AudioDelta) -> p.TwilioMark:
        """The mark to send right after the ``media`` message carrying ``delta``."""
        pos = self.sent_ms.get(delta.item_id, 0.0) + 1000.0 * len(delta.delta) / self.rate
        self.sent_ms[delta.item_id] = pos
        self.current = delta.item_id
        name = f"{delta.item_id}-{len(self.names) + 1}"
        self.names[name] = (delta.item_id, pos)
        return p.TwilioMark(name)

    def echoed(self, mark: p.TwilioMark) -> None:
        """Twilio echoed ``mark``: the audio before it has played."""
        item, pos = self.names[mark.name]
        self.heard_ms[item] = max(self.heard_ms.get(item, 0.0), pos)

    def truncate(self) -> p.ItemTruncate | None:
        """On ``speech_started``: the truncate of the current reply if audio of it was still queued
        at Twilio, else None."""
        item = self.current
        if item is None:
            return None
        heard = self.heard_ms.get(item, 0.0)
        if heard >= self.sent_ms[item] - 1e-9:
            return None
        return p.ItemTruncate(item, int(math.floor(heard + 1e-9)))
