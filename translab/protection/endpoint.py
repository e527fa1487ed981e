"""The two ends of a protected RTP stream for a live transport, sans-I/O: what the sender puts on
the wire (RED wrapping, the RTX history answering NACKs) and when the receiver asks for a packet
(the NACK tracker fed as the simulator feeds it). A transport calls them with its packets and the
time; nothing here reads a clock or touches a socket.

- :class:`ProtectedSender`: each media packet's payload is wrapped in RED (:class:`.red.RedEncoder`)
  when asked and stored in the :class:`.rtx.RtxHistory`; a NACK returns the stored payloads the
  history agrees to resend (RFC 4588 payloads built with :func:`.rtx.rtx_payload`).
- :class:`LiveEncoder`: Opus encoded during the call and reconfigured from the receiver's reports:
  FEC expected loss (``fec_loss = "measured"``, :class:`.abr.MeasuredLossFec`) or bitrate, FEC and
  expected loss (``abr``, :class:`.abr.AudioNetworkAdaptor` fed by receiver reports only), as the
  simulator's closed loop does it.
- :class:`ProtectedReceiver`: every arriving packet (original or retransmission) goes to the
  :class:`.nack.NackTracker`, which is told the playout position estimated as
  :mod:`translab.protection.sim` estimates it (``PlayoutEstimate``); with NACK on, the list it
  returns is what the receiver sends now as one RTCP NACK. From the first RTT sample on, the adaptive
  buffer's minimum target is :func:`.sim.nack_min_target_ms` (the stated NACK rule).

RTP sequence numbers arrive as 16-bit values; both ends unwrap them (:class:`SeqUnwrapper`) to the
integers the tracker and history use. Times in seconds (any origin, the same for all calls of one
object); media timestamps in samples at the codec rate.
"""

from __future__ import annotations

import math

import numpy as np

from translab.media.opus import OpusEncoder
from translab.metrics.bandwidth import HeaderModel, rtcp_nack_wire_bytes, rtcp_rr_wire_bytes
from translab.protection.abr import AudioNetworkAdaptor, MeasuredLossFec
from translab.protection.nack import NackTracker
from translab.protection.red import RedEncoder, decode_red
from translab.protection.rtx import RtxHistory, rtx_payload
from translab.protection.sim import PlayoutEstimate, nack_min_target_ms


class SeqUnwrapper:
    """16-bit RTP sequence numbers (or 32-bit timestamps with ``bits=32``) to unbounded integers,
    continuing from the previous value (a step of more than half the range counts backwards)."""

    def __init__(self, bits: int = 16) -> None:
        self.mod = 1 << bits
        self.last: int | None = None

    def __call__(self, value: int) -> int:
        if self.last is None:
            self.last = int(value) % self.mod
            return self.last
        step = (int(value) - self.last) % self.mod
        if step >= self.mod // 2:
            step -= self.mod
        out = self.last + step
        self.last = max(self.last, out)
        return out


class LiveEncoder:
    """Encodes ``frames`` (int16, ``(n_frames, frame_samples)``) one by one during the call with Opus
    in-band FEC and reconfigures the encoder from the receiver's RTCP reports (:meth:`on_report`):

    - ``adaptor`` None (``fec_loss = "measured"``): FEC on, its expected loss
      (``OPUS_SET_PACKET_LOSS_PERC``) from the reports' loss through :class:`.abr.MeasuredLossFec`
      (starts at 0 %);
    - ``adaptor`` an :class:`.abr.AudioNetworkAdaptor` (``abr`` with ``abr_feedback = "rr"``): each
      report (loss fraction, packets it covers, RTT) is fed to it with no per-packet times (so its
      delay-based estimate has no samples) and its bitrate, FEC and expected loss apply from the next
      frame; the frame length stays the call's (give the adaptor ``frame_lengths_ms`` of that one).

    ``timeline``: (call-clock s, bit/s, FEC, expected loss %, frame ms) at the start and at every
    change, the simulator's bitrate timeline. Other arguments as
    :class:`translab.media.opus.OpusEncoder`'s (DTX off: every frame is sent)."""

    def __init__(self, frames: np.ndarray, sample_rate: int, frame_ms: float, bitrate: int,
                 complexity: int, adaptor: AudioNetworkAdaptor | None = None) -> None:
        self.frames = frames
        self.adaptor = adaptor
        fec, perc = (adaptor.settings.fec, adaptor.settings.loss_perc) if adaptor is not None else (True, 0)
        self.enc = OpusEncoder(sample_rate=sample_rate, channels=1, frame_ms=frame_ms, bitrate=bitrate,
                               complexity=complexity, application="voip", fec=fec, packet_loss_perc=perc,
                               dtx=False)
        self.measured = MeasuredLossFec()
        self.frame_ms = int(round(float(frame_ms)))
        self.timeline: list[tuple[float, int, bool, int, int]] = [(0.0, int(bitrate), fec, perc, self.frame_ms)]

    def encode(self, k: int) -> bytes:
        """Frame ``k`` encoded now, with the current settings."""
        return self.enc.encode(self.frames[k])

    def on_report(self, loss: float, t_s: float, expected: int | None = None, rtt_s: float | None = None) -> None:
        """A receiver report reached the sender at ``t_s`` (call clock): its loss fraction (0-1) over
        ``expected`` packets (None: unknown) and the RTT sample (s; None: none yet, 100 ms assumed)."""
        if self.adaptor is not None:
            before = self.adaptor.settings
            s = self.adaptor.on_feedback(1000.0 * t_s, loss, [], 1000.0 * (rtt_s or 0.1), expected)
            if s != before:
                self.enc.reconfigure(bitrate=s.bitrate_bps, fec=s.fec, packet_loss_perc=s.loss_perc)
                self.timeline.append((t_s, s.bitrate_bps, s.fec, s.loss_perc, s.frame_ms))
            return
        perc = self.measured.on_loss(loss, 1000.0 * t_s)
        if perc != self.enc.packet_loss_perc:
            self.enc.reconfigure(packet_loss_perc=perc)
            self.timeline.append((t_s, self.enc.bitrate, True, perc, self.frame_ms))


class ProtectedSender:
    """The sender's side (see the module docstring). ``red``: redundant frames per packet (0 off);
    ``opus_pt``: the payload type RED blocks name; ``encoder``: encode during the call (None: the
    transport sends its pre-encoded packets)."""

    def __init__(self, red: int = 0, opus_pt: int = 96, encoder: LiveEncoder | None = None) -> None:
        self.encoder = encoder
        self.red = RedEncoder(red, pt=opus_pt) if red else None
        self.history = RtxHistory()
        self._seq = SeqUnwrapper()
        self._ts = SeqUnwrapper(bits=32)
        self.first_seq16: int | None = None  # the RTP sequence number of the first packet sent

    def wrap(self, seq16: int, rtp_ts: int, payload: bytes, t_s: float, rtt_s: float | None) -> bytes:
        """The RTP payload to send for codec ``payload`` (RTP sequence number ``seq16``, timestamp
        ``rtp_ts``, 32 bits, RTP clock units, sent at ``t_s``): RED-wrapped when asked; kept for
        retransmission."""
        if self.first_seq16 is None:
            self.first_seq16 = int(seq16) & 0xFFFF
        msg = self.red.wrap(payload, self._ts(rtp_ts)) if self.red is not None else payload
        self.history.sent(self._seq(seq16), msg, t_s, rtt_s or 0.0)
        return msg

    def payload(self, k: int) -> bytes | None:
        """Packet ``k``'s codec payload when this sender encodes during the call, else None."""
        return self.encoder.encode(k) if self.encoder is not None else None

    def on_report(self, loss: float, t_s: float, expected: int | None = None, rtt_s: float | None = None) -> None:
        """A receiver report arrived at ``t_s`` (call clock, s): loss fraction 0-1 over ``expected``
        packets, RTT sample (s) (see :meth:`LiveEncoder.on_report`)."""
        if self.encoder is not None:
            self.encoder.on_report(loss, t_s, expected, rtt_s)

    def on_nack(self, seqs16: list[int], t_s: float, rtt_s: float | None) -> list[tuple[int, bytes]]:
        """The retransmissions for an RTCP NACK of ``seqs16``: ``[(osn16, RFC 4588 payload)]``."""
        seqs = [self._seq(s) for s in seqs16]
        return [(osn & 0xFFFF, rtx_payload(osn, p)) for osn, p in self.history.on_nack(seqs, t_s, rtt_s or 0.0)]


class ProtectedReceiver:
    """The receiver's side (see the module docstring). ``sample_rate``: codec rate (Hz);
    ``frame_s``: frame length (s); ``policy``: the call's playout policy; ``nack``: send NACKs;
    ``hm``: the header model its RTCP's wire bytes are counted with."""

    def __init__(self, sample_rate: int, frame_s: float, policy: str, nack: bool,
                 hm: HeaderModel = HeaderModel()) -> None:
        self.rate = int(sample_rate)
        self.frame_s = float(frame_s)
        self.nack = bool(nack)
        self.hm = hm
        self.tracker = NackTracker(self.rate)
        self.playout = PlayoutEstimate(policy, self.frame_s)
        self._seq = SeqUnwrapper()
        self._ts = SeqUnwrapper(bits=32)
        self._seen: set[int] = set()
        self.nack_sent = 0  # RTCP NACK messages
        self.nack_seqs = 0  # sequence numbers asked for (a packet asked twice counts twice)
        self.nack_bytes = 0  # their wire bytes (SRTCP over UDP/IP)
        self.rr_bytes = 0  # wire bytes of the RTCP receiver reports sent (one report block each)
        self.min_target_ms: float | None = None
        #: the RTCP receiver reports sent: (call-clock s, 8-bit loss fraction, highest 16-bit sequence
        #: number received, an answer to an SR), as :func:`translab.protection.sim.simulate_uplink`'s
        self.rr_log: list[tuple[float, int, int, bool]] = []

    def on_rtt(self, rtt_s: float | None) -> None:
        """An RTT sample is known (s): the first one sets the NACK rule's minimum target."""
        if rtt_s and self.nack and self.min_target_ms is None and self.playout.fixed_s is None:
            self.min_target_ms = nack_min_target_ms(rtt_s, self.frame_s)
            self.playout.set_min_target(self.min_target_ms)

    def on_packet(self, seq16: int, rtp_ts: int, t_s: float, rtt_s: float | None) -> list[int]:
        """A packet arrived (an original or a retransmission's original sequence number and
        timestamp, RTP clock 48 kHz): the 16-bit sequence numbers to NACK now (empty: none)."""
        seq = self._seq(seq16)
        media_ts = self._ts(rtp_ts) * self.rate // 48000
        self.on_rtt(rtt_s)
        if seq not in self._seen:
            self._seen.add(seq)
            self.playout.arrived(t_s, media_ts / self.rate)
        self.tracker.on_packet(seq, media_ts)
        off = self.playout.offset_s()
        if off is not None:
            self.tracker.on_playout(int(math.floor((t_s - off) * self.rate)))
        if not self.nack:
            return []
        seqs = self.tracker.nack_list(None if not rtt_s else rtt_s * 1000.0)
        if seqs:
            self.nack_sent += 1
            self.nack_seqs += len(seqs)
            self.nack_bytes += rtcp_nack_wire_bytes(seqs, self.hm)
        return [s & 0xFFFF for s in seqs]

    def report_sent(self, t_s: float, fraction_lost: int, highest16: int, answer: bool) -> None:
        """The transport sent an RTCP RR at ``t_s`` (see :attr:`rr_log`)."""
        self.rr_log.append((float(t_s), int(fraction_lost), int(highest16), bool(answer)))
        self.rr_bytes += rtcp_rr_wire_bytes(self.hm)

    def primary(self, payload: bytes) -> bytes:
        """The primary (newest) block of a RED payload: what a RED receiver hands its decoder."""
        return decode_red(payload)[-1].data
