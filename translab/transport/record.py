"""What a live transport leg records, before it becomes an arrival trace (translab.live)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LegRecord:
    """Raw timings of one live call leg (caller to callee).

    ``t0`` is the call clock's zero on the monotonic clock (s): when the clip's first sample is
    "captured". ``send_s`` / ``arrivals`` are per sender sequence number (the SenderStream's ``seq``)
    on the call clock (s); a packet never seen has no entry. ``setup_ms`` holds the setup milestones
    in ms since the call started (before any socket was opened). ``stock_frames`` are what aiortc's
    own receiver delivered: (call-clock s, media time in samples at 48 kHz of the first sample,
    samples). ``extra`` goes into the summary as is (flat, JSON-able).
    """

    t0: float = float("nan")
    send_s: dict[int, float] = field(default_factory=dict)
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    wire_bytes: dict[int, int] = field(default_factory=dict)
    setup_ms: dict[str, float] = field(default_factory=dict)
    stock_frames: list[tuple[float, int, int]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    reason: str = ""
    echo_rtt_s: list[float] = field(default_factory=list)
    #: aiortc's own decoded output (float32 mono, 48 kHz) in delivery order (``aiortc-stock``)
    stock_audio: Any = None
    #: with protection: the RTP payload as sent per sender sequence number (RED-wrapped or Opus)
    sent_payload: dict[int, bytes] = field(default_factory=dict)
    #: with protection: retransmissions in send order, (sender sequence number of the original,
    #: send s, first arrival s or NaN, RFC 4588 payload), call clock
    rtx: list[tuple[int, float, float, bytes]] = field(default_factory=list)

    def fail(self, reason: str) -> "LegRecord":
        """Mark the leg failed with ``reason`` (first reason wins)."""
        if self.status == "ok":
            self.status = "failed"
            self.reason = reason
        return self
