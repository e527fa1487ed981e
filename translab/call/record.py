"""What an engine returns (:class:`CallRecord`) and what a call returns (:class:`CallResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class StockOutput:
    """What aiortc's own receiver delivered in a live WebRTC call: per frame (call-clock s when
    ``track.recv()`` returned it, media time of its first sample in samples at 48 kHz, samples), and
    its decoded audio (float32 mono, 48 kHz) in delivery order (None when not recorded)."""

    frames: list[tuple[float, int, int]]
    audio: np.ndarray | None = None


@dataclass
class CallRecord:
    """One call as an engine saw it: the uplink arrival trace (translab.trace), how it ended, its
    set-up milestones (ms since the call started, key without ``setup_``/``_ms``), when the media
    clock started (``media_start_ms``, ms since the call started; NaN for simulated calls), the
    TCP model's counters (simulated WebSocket only, for the bandwidth figures), what aiortc's own
    receiver delivered, and the engine's figures for its own row groups (keys declared in
    translab.call.row: setup, sender, aiortc_stock, transport, browser)."""

    trace: pd.DataFrame
    status: str = "ok"
    reason: str = ""
    setup_ms: dict[str, float] = field(default_factory=dict)
    media_start_ms: float = math.nan
    tcp_retransmissions: int | None = None
    tcp_acks: int | None = None
    stock: StockOutput | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    #: the audio the caller actually sent, when only the call could tell (a browser's microphone from
    #: the moment the call connected; float32 at the codec rate): the quality metrics score against it
    #: instead of the prepared clip. None: the prepared call's reference.
    reference: np.ndarray | None = None


@dataclass
class CallResult:
    """What one call produced: the summary row, the arrival trace, the played-out audio (float32 at
    the codec rate; empty for a failed call), the playout result (frames log and receiver stats; None
    for a failed call), and aiortc's own audio at the codec rate for a live aiortc-stock call."""

    summary: dict[str, Any]
    trace: pd.DataFrame
    audio: np.ndarray
    playout: Any
    wall_s: float = math.nan  # how long producing it took (s); not in the summary, which is deterministic
    stock_audio: np.ndarray | None = None

    def row(self) -> pd.DataFrame:
        """The summary as a one-row pandas DataFrame."""
        return pd.DataFrame([self.summary])
