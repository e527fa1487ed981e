"""The receiver's audio NACK timing, in the manner of libwebrtc NetEq's ``NackTracker``
(``modules/audio_coding/neteq/nack_tracker.cc``) as ``ChannelReceive`` drives it.

- **Gap detection**: when packet N arrives and the last one received was M < N - 1, packets
  M+1..N-1 are missing; each gets an estimated media timestamp (from the samples per packet seen
  between M and N). A packet arriving later (reordered or retransmitted) leaves the list.
- **When a NACK is sent**: after every received packet (``ChannelReceive::OnReceivedPayloadData``
  asks for the list each time); no extra delay. A packet stays in the list and is NACKed again on
  later packets while it is still useful (the sender's history refuses a resend within one RTT,
  see :mod:`.rtx`).
- **Give-up**: a missing packet is requested only while its *time to play* (how long until the
  receiver plays its slot, from the playout position the caller reports) exceeds the RTT, i.e.
  while a retransmission can still arrive before its playout deadline; NetEq's extra allowance
  ``time_since_packet + rtt < max_wait`` (``ms_per_loss_percent`` x loss %) also keeps it. Once the
  playout position has passed it, it is dropped from the list. The list is limited to the last
  ``max_list`` packets (NetEq: 500).
- Without an RTT sample the default RTT (100 ms) is used; the loss rate is NetEq's exponential
  filter (forget factor 0.996 per packet).

Sequence numbers here are unwrapped integers (0, 1, 2, ...). Pure: no clock; times in ms or samples
as named.
"""

from __future__ import annotations

from dataclasses import dataclass

from translab.errors import ConfigError


@dataclass(frozen=True)
class NackConfig:
    """NetEq's ``NackTracker::Config`` defaults. Times in ms."""

    packet_loss_forget_factor: float = 0.996
    ms_per_loss_percent: float = 20.0
    never_nack_multiple_times: bool = False
    default_rtt_ms: float = 100.0
    max_loss_rate: float = 1.0
    max_list: int = 500


class NackTracker:
    """Missing packets and when to ask for them. ``sample_rate``: media timestamp units per second."""

    def __init__(self, sample_rate: int, config: NackConfig | None = None) -> None:
        if sample_rate <= 0:
            raise ConfigError("sample_rate", sample_rate, "a positive number of Hz")
        self.rate = int(sample_rate)
        self.cfg = config or NackConfig()
        self.missing: dict[int, int] = {}  # seq -> estimated media timestamp (samples)
        self.last_seq: int | None = None
        self.last_ts = 0
        self.play_ts: int | None = None  # media timestamp being played now
        self.loss_rate = 0.0

    def on_packet(self, seq: int, media_ts: int) -> None:
        """A packet (original or retransmission) with ``seq`` and ``media_ts`` (samples) arrived."""
        self.missing.pop(seq, None)
        if self.last_seq is None:
            self.last_seq, self.last_ts = seq, media_ts
            return
        if seq <= self.last_seq:
            return  # old: reordered or retransmitted
        gap = seq - self.last_seq - 1
        self._update_loss(gap)
        if gap > 0:
            per = (media_ts - self.last_ts) // (seq - self.last_seq)
            if per > 0:
                for n in range(self.last_seq + 1, seq):
                    self.missing[n] = self.last_ts + (n - self.last_seq) * per
        self.last_seq, self.last_ts = seq, media_ts
        limit = seq - self.cfg.max_list
        for n in [n for n in self.missing if n < limit]:
            del self.missing[n]

    def on_playout(self, play_ts: int) -> None:
        """The receiver is now playing media timestamp ``play_ts`` (samples); packets whose media
        starts before it can no longer be played and leave the list."""
        self.play_ts = play_ts
        for n in [n for n, ts in self.missing.items() if ts < play_ts]:
            del self.missing[n]

    def time_to_play_ms(self, seq: int) -> float:
        """How long (ms) until the missing packet ``seq`` would be played (NetEq's time_to_play)."""
        ts = self.missing[seq]
        ref = self.play_ts if self.play_ts is not None else self.last_ts
        return 1000.0 * (ts - ref) / self.rate

    def nack_list(self, rtt_ms: float | None) -> list[int]:
        """The packets to NACK now, given the current RTT estimate (ms; None or 0: no sample yet)."""
        cfg = self.cfg
        rtt = float(rtt_ms) if rtt_ms else cfg.default_rtt_ms
        if self.loss_rate > cfg.max_loss_rate:
            return []
        max_wait = 100.0 * cfg.ms_per_loss_percent * self.loss_rate
        out = []
        for n, ts in sorted(self.missing.items()):
            since_ms = 1000.0 * (self.last_ts - ts) / self.rate
            if self.time_to_play_ms(n) > rtt or since_ms + rtt < max_wait:
                out.append(n)
        if cfg.never_nack_multiple_times:
            self.missing.clear()
        return out

    def _update_loss(self, lost: int) -> None:
        a = self.cfg.packet_loss_forget_factor
        self.loss_rate *= a
        for _ in range(lost):
            self.loss_rate = a * self.loss_rate + (1.0 - a)
