"""The simulated WebRTC uplink with loss protection: a closed loop in simulated time.

One event queue in time order runs the sender, the link models of both directions and the receiver:

- **send** (every frame at its capture time): the Opus payload (re-encoded here with the controller's
  current bitrate / FEC / expected loss when ABR is on, through :class:`translab.media.opus.OpusEncoder`),
  wrapped in RED when asked, stored in the RTX history and pushed through the uplink chain.
- **arrival** at the receiver: the NACK tracker sees the packet (gap detection) and is told the
  current playout position; with NACK on, the list it returns is sent as one RTCP NACK through the
  downlink chain.
- **NACK arrival** at the sender: the RTX history decides what to resend (RFC 4588 payloads); each
  retransmission is an extra row of the trace that crosses the uplink chain again with its own loss
  draw and delay (its variates come from a second set of streams, so the original packets see the
  same draws as in the call without NACK; the queue and loss-chain state are shared).
- **endpoint time** (:mod:`translab.protection.timing`): every datagram an endpoint sends in reaction
  to an event (a NACK, a retransmission, a feedback report, an SR or RR) enters the wire
  ``REACTION_S`` after the event (reports carry the statistics of the event's time; DLSR counts to
  the wire); an encoder reconfigured during the call encodes each packet with the settings in force
  ``ENCODE_LEAD_S`` before its capture time. The live call keeps to the same times.
- **feedback** every ``FEEDBACK_INTERVAL_S`` (transport-wide-CC-like report through the downlink
  chain): send and arrival times and sizes of the packets received in the interval; when it
  reaches the sender it gives an RTT sample and, with ABR, feeds the delay-based part of
  :class:`~.abr.AudioNetworkAdaptor`, whose new settings apply from the next frame.
- **receiver report** (RTCP RR through the downlink chain) at half ``RR_INTERVAL_S`` and then every
  ``RR_INTERVAL_S``: the loss fraction since the previous report (RFC 3550 A.3); it feeds the
  controller's loss-based estimate and FEC decision (with ABR) or the measured-loss FEC
  (``fec_loss = "measured"``). libwebrtc's audio report interval is 5 s, the first report half an
  interval after the start, each next one randomised to 0.5-1.5 x the interval (fixed here). So the
  sender learns of loss 2.5 s into the call: until then ABR hands Opus 0 % expected loss and libopus
  adds no FEC, as a libwebrtc sender does.

``abr_feedback = "rr"`` (:data:`translab.config.ABR_FEEDBACKS`) gives the sender RTCP Sender /
Receiver Reports only, as a live aiortc call has them (no transport-wide CC), for every protection
option: the reports follow the seeded schedule and rules of :mod:`translab.protection.rtcp` (aiortc's
0.5-1.5 s SR and RR loops, early SRs until the first RTT sample, an RR answering each SR), cross
model instances of their own with :func:`~.rtcp.rtcp_rngs` (NACKs too), and carry what aiortc's
receiver statistics carry. Each RR gives the sender its loss fraction and the packets it covers
(ABR, measured-loss FEC) and, when its LSR is the latest SR's, the RTT sample (LSR/DLSR) that NACK,
the RTX history and the jitter buffer's NACK rule use; ABR gets no per-packet times, so the
delay-based estimate has no samples and the bandwidth estimate is the loss-based one. The live call
(:func:`translab.transport.webrtc.seeded_rtcp`) sends the same reports at the same times.

With NACK on, the adaptive jitter buffer waits for retransmissions by a stated rule
(:func:`nack_min_target_ms`): from the first RTT sample on, its minimum target delay is one RTT plus
two frames. The receiver's playout position, which decides whether a missing packet is still worth a
NACK, is estimated causally: for ``fixed:<ms>`` a slot plays at capture + frame + target; for the other
policies as the adaptive buffer does (smallest transit of the last 2 s plus the NetEq-style target
delay from :class:`translab.playout.delay_manager.DelayManager`, fed with every slot's first arrival).
Both ends use the sender's latest RTT sample (WebRTC endpoints learn it from RTCP).

Frame length: with ABR on a 20 ms call the controller may switch between 20 and 60 ms packets
(:func:`abr_frame_lengths`); a 60 ms packet is encoded from three 20 ms frames with the settings in
force when its first frame was captured and sent when the last one is captured (so it adds 40 ms to the
first frame's delay), carries ``frame_samples`` = 3 frames in the trace, and is played by the receiver
as three 20 ms slots (its in-band FEC recovers the packet before it for 60 ms).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from translab import trace as trace_mod
from translab.link.profiles import direction_rngs, load_profile, retransmission_rng
from translab.media import pcm
from translab.media.audio import to_int16
from translab.media.opus import OpusEncoder, packet_has_fec
from translab.media.stream import DTX_MAX_BYTES
from translab.metrics.bandwidth import (SRTCP_INDEX_BYTES, UDP_BYTES, HeaderModel, rtcp_nack_wire_bytes,
                                        rtcp_rr_wire_bytes, rtcp_sr_wire_bytes, rtp_wire_bytes)
from translab.playout.delay_manager import DelayManager
from translab.playout.receiver import parse_policy
from translab.protection.abr import AudioNetworkAdaptor, MeasuredLossFec
from translab.protection.nack import NackTracker
from translab.protection.red import RedEncoder, decode_red
from translab.protection.rtcp import RAPID_SR_PACKETS, RtcpSchedule, dlsr_s, fraction_lost, rtcp_rngs
from translab.protection.rtx import RtxHistory, rtx_payload
from translab.protection.timing import ENCODE_LEAD_S, REACTION_S

#: Interval of the receiver's feedback reports (s): transport-wide CC feedback is sent about every 100 ms.
FEEDBACK_INTERVAL_S = 0.1
#: Interval of the receiver's RTCP receiver reports carrying the loss fraction (s): libwebrtc's audio
#: report interval (video: 1 s); see the module docstring.
RR_INTERVAL_S = 5.0
#: RTCP bytes of one feedback report (a transport-cc message for ~5 packets), before SRTCP, UDP and IP.
FEEDBACK_RTCP_BYTES = 48
#: RTP clock rate of Opus (RFC 7587): RED timestamp offsets are in these units.
OPUS_RTP_HZ = 48000


def feedback_wire_bytes(hm: HeaderModel) -> int:
    """Wire bytes of one simulated transport-cc feedback report (``FEEDBACK_RTCP_BYTES`` as SRTCP)."""
    return hm.ip_bytes + UDP_BYTES + FEEDBACK_RTCP_BYTES + SRTCP_INDEX_BYTES + hm.srtp_tag_bytes


def nack_min_target_ms(rtt_s: float, frame_s: float) -> float:
    """The NACK rule of the adaptive jitter buffer: its minimum target delay (ms) becomes one RTT
    plus two frames (a loss is seen when the next packet arrives, one frame later; one more frame of
    margin for jitter), so a packet lost once can be retransmitted before its slot plays (the NACK
    tracker asks only while the time to play exceeds the RTT, i.e. while target - frame > RTT). Set from the first RTT sample, as an
    application sets ``RTCRtpReceiver.jitterBufferTarget``; NetEq alone only grows its target once
    late retransmissions enter its delay histogram (``enable_rtx_handling``), which with the
    default 100 ms RTT guess and little loss rarely happens."""
    return 1000.0 * (rtt_s + 2.0 * frame_s)


@dataclass(frozen=True)
class ProtectionOptions:
    """What protection a call uses: ``nack`` (audio NACK + RTX), ``red`` (0 off, 1 or 2 redundant
    frames per packet), ``abr`` (adaptive bitrate / FEC controller), ``fec_measured`` (Opus FEC's
    expected loss from the receiver's reports, :class:`~.abr.MeasuredLossFec`; with ``abr`` the
    controller sets it anyway)."""

    nack: bool = False
    red: int = 0
    abr: bool = False
    fec_measured: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.nack or self.red or self.abr or self.fec_measured)

    @classmethod
    def of(cls, cfg: Any) -> "ProtectionOptions":
        """The options of a CallConfig (absent fields: off)."""
        return cls(bool(getattr(cfg, "nack", False)), int(getattr(cfg, "red", 0) or 0),
                   bool(getattr(cfg, "abr", False)), getattr(cfg, "fec_loss", "fixed") == "measured")


def abr_frame_lengths(cfg: Any) -> tuple[int, ...]:
    """The frame lengths (ms) the simulated receiver accepts from an ABR sender: 20 and 60 ms for a
    20 ms call (libwebrtc ANA's FrameLengthController switches between them; the receiver plays a
    60 ms packet as three 20 ms slots, :class:`translab.playout.receiver.Slots`, and times redundant
    blocks and retransmissions by their own frame's length, :func:`translab.protection.receive.playout_view`);
    the call's own frame length otherwise, and with ``abr_feedback = "rr"`` (the live aiortc sender's
    case, whose packetisation is fixed)."""
    if float(cfg.frame_ms) == 20 and getattr(cfg, "abr_feedback", "twcc") != "rr":
        return (20, 60)
    return (int(cfg.frame_ms) if float(cfg.frame_ms).is_integer() else 20,)


@dataclass
class _Row:
    seq: int
    media_ts: int
    capture_s: float
    send_s: float
    payload: bytes  # RTP payload as sent (RED / RTX wrapped)
    codec_bytes: int
    fec: bool
    rtx: bool
    wire: int
    frame_samples: int = 0  # samples of audio the packet carries
    arrival_s: float = math.nan
    copies: int = 0


@dataclass
class _Report:
    """What the receiver sends in one feedback report."""

    sent_s: float
    loss: float | None  # RR: loss fraction since the previous RR; None for transport-cc feedback
    expected: int
    packets: list[tuple[float, float, int]]  # (send_s, arrival_s, wire bytes) received in the interval
    highest: int = -1  # rr mode: the highest sequence number received
    lsr: int | None = None  # rr mode: the SR the report refers to (packets sent before it; None: none yet)
    dlsr_s: float = 0.0  # rr mode: its DLSR (s)


@dataclass
class UplinkResult:
    """The rows of the protected uplink and what the protection did."""

    rows: list[_Row]
    nack_sent: int = 0  # RTCP NACK messages the receiver sent
    nack_seqs: int = 0  # sequence numbers they asked for (a packet asked twice counts twice)
    feedback_bytes: int = 0  # wire bytes of NACKs and feedback reports (downlink)
    min_target_ms: float | None = None  # the NACK rule's minimum jitter-buffer target (ms)
    timeline: list[tuple[float, int, bool, int, int]] = field(default_factory=list)  # t_s, bps, fec, loss %, frame ms
    #: ``abr_feedback = "rr"``: the receiver reports sent, (call-clock s, 8-bit loss fraction, highest
    #: sequence number received, an answer to an SR)
    rtcp_rr: list[tuple[float, int, int, bool]] = field(default_factory=list)


class PlayoutEstimate:
    """The receiver's causal estimate of its playout offset (play time minus capture start, s)."""

    def __init__(self, policy: str, frame_s: float) -> None:
        name, target_ms = parse_policy(policy)
        self.fixed_s = frame_s + target_ms / 1000.0 if name == "fixed" and target_ms is not None else None
        self.dm = DelayManager()

    def set_min_target(self, ms: float) -> None:
        """Raise the adaptive buffer's minimum target delay to ``ms`` (the NACK rule)."""
        self.dm.cfg = dataclasses.replace(self.dm.cfg, min_target_ms=min(ms, self.dm.cfg.max_target_ms))
        self.dm.target_ms = self.dm.clamp(self.dm.target_ms)

    def arrived(self, arrival_s: float, cap_start_s: float) -> None:
        if self.fixed_s is None:
            self.dm.update(arrival_s, cap_start_s)

    def offset_s(self) -> float | None:
        if self.fixed_s is not None:
            return self.fixed_s
        if math.isnan(self.dm.min_transit_s):
            return None
        return self.dm.min_transit_s + self.dm.target_ms / 1000.0


def simulate_uplink(cfg: Any, stream: Any, frames: np.ndarray | None, hm: Any) -> UplinkResult:
    """Run the closed loop for one call. ``stream``: the SenderStream (its payloads are sent as they
    are unless ABR re-encodes ``frames``, int16 ``(n_frames, frame_samples)``); ``hm``: the header
    model for wire sizes. Deterministic from ``cfg.seed``."""
    opts = ProtectionOptions.of(cfg)
    rate = int(cfg.sample_rate)
    n = int(stream.frame_samples[0]) if len(stream.frame_samples) else int(round(cfg.frame_ms * rate / 1000))
    frame_s = n / rate
    profile = load_profile(cfg.profile)
    up, down = profile.chain("up"), profile.chain("down")
    rngs = direction_rngs(cfg.seed)
    rtx_rng = retransmission_rng(cfg.seed)
    up.bind(rngs["up"])
    down.bind(rngs["down"])
    rtx_streams = up.side_streams(rtx_rng)

    red = RedEncoder(opts.red) if opts.red else None
    history = RtxHistory()
    tracker = NackTracker(rate)
    playout = PlayoutEstimate(cfg.playout, frame_s)
    overhead = rtp_wire_bytes(0, hm)
    frame_ms = int(cfg.frame_ms) if float(cfg.frame_ms).is_integer() else 20
    ana = AudioNetworkAdaptor(int(cfg.bitrate), frame_ms, overhead, fec=bool(cfg.fec),
                              frame_lengths_ms=abr_frame_lengths(cfg)) if opts.abr else None
    measured = MeasuredLossFec() if opts.fec_measured and ana is None and cfg.fec else None
    enc = None
    if ana is not None or measured is not None:
        enc = OpusEncoder(sample_rate=rate, channels=1, frame_ms=cfg.frame_ms, bitrate=int(cfg.bitrate),
                          complexity=cfg.complexity, application="voip", fec=cfg.fec,
                          packet_loss_perc=ana.settings.loss_perc if ana is not None else 0 if measured
                          else cfg.expected_loss_pct if cfg.fec else 0, dtx=cfg.dtx)
    res = UplinkResult(rows=[])
    if enc is not None:
        res.timeline.append((0.0, enc.bitrate, enc.fec, enc.packet_loss_perc, int(round(float(cfg.frame_ms)))))

    events: list[tuple[float, int, str, Any]] = []
    order = 0

    def push(t: float, kind: str, data: Any) -> None:
        nonlocal order
        heapq.heappush(events, (t, order, kind, data))
        order += 1

    # what to send: (media_ts, capture_s, payload or None to encode frame i)
    if enc is not None:
        assert frames is not None
        plan = [(i * n, (i + 1) * n / rate, i) for i in range(frames.shape[0])]
    else:
        plan = [(int(ts), float(c), j) for j, (ts, c) in enumerate(zip(stream.media_ts, stream.capture_s))]
    for ts, cap, j in plan:
        push(cap, "send", (ts, cap, j))
    end_s = (plan[-1][1] if plan else 0.0) + 1.0
    # "rr": RTCP SR/RR only, on the shared seeded schedule (translab.protection.rtcp)
    rr_only = getattr(cfg, "abr_feedback", "twcc") == "rr" and opts.enabled
    ctl: dict[str, Any] = {}
    ctl_rngs = rtcp_rngs(cfg.seed)
    if rr_only:
        ctl = {d: profile.chain(d) for d in ("up", "down")}
        schedule = RtcpSchedule(cfg.seed)
        for t_sr in schedule.until("sr", end_s):
            push(t_sr, "sr", None)
        for t_rr in schedule.until("rr", end_s):
            push(t_rr, "rr", False)
    else:
        t_fb = FEEDBACK_INTERVAL_S
        while (opts.nack or opts.abr or measured is not None) and t_fb <= end_s:
            push(t_fb, "feedback", None)
            t_fb += FEEDBACK_INTERVAL_S
        t_rr = RR_INTERVAL_S / 2
        while (opts.abr or measured is not None) and t_rr <= end_s:
            push(t_rr, "rr", None)
            t_rr += RR_INTERVAL_S

    # what the sender has decided, with the time it decided it (the encoder takes the settings in force
    # ENCODE_LEAD_S before a packet's capture time: translab.protection.timing)
    ana_log: list[tuple[float, Any]] = [(-math.inf, ana.settings)] if ana is not None else []
    fec_log: list[tuple[float, int]] = [(-math.inf, enc.packet_loss_perc)] if measured is not None and enc is not None else []

    def launch(t: float, send: Any) -> None:
        """An endpoint's reaction to an event at ``t``: ``send(t_wire)`` puts it on the wire
        REACTION_S later (an event of its own, so every chain meets its datagrams in send order)."""
        push(t + REACTION_S, "launch", send)

    def datagram(chain: Any, rng: Any, size: int, kind: str, data: Any, first: bool = False) -> Any:
        """The send of one datagram of ``size`` wire bytes across ``chain`` (with ``rng``): each copy
        (the first only, with ``first``) arrives as event ``kind`` carrying ``data``."""
        def send(t_wire: float) -> None:
            arrivals = chain.apply_one(t_wire, size, rng)
            for a in arrivals[:1] if first else arrivals:
                push(a, kind, data)
        return send

    def retransmit(rows: list[_Row]) -> Any:
        """The send of retransmissions (their ``send_s`` already the launch time) across the uplink."""
        def send(t_wire: float) -> None:
            for r in rows:
                transmit(r, streams=rtx_streams)
        return send

    rtt_s: float | None = None
    pending: list[int] = []  # frames of the packet being assembled (ABR at 60 ms)
    group = 1
    next_seq = 0
    max_seq = -1  # highest original seq received
    rr_prev_max = -1
    rr_received = 0
    fb_owd: list[tuple[float, float, int]] = []
    first_seen: set[int] = set()
    # rr mode: aiortc's receiver statistics (every arrival counts), the SRs, the sender's last RR
    rx_base: int | None = None
    rx_count = rx_expected_prior = rx_received_prior = 0
    sr_sent: tuple[int, float] | None = None  # (LSR: packets sent before the SR, send s)
    sr_received: tuple[int, float] | None = None  # (LSR, arrival s)
    sender_highest = -1

    def send_sr(t_sr: float) -> None:
        nonlocal sr_sent
        lsr = next_seq
        sr_sent = (lsr, t_sr + REACTION_S)
        launch(t_sr, datagram(ctl["up"], ctl_rngs["up"], rtcp_sr_wire_bytes(hm), "sr_arrive", lsr))

    def send_rr(t_rr: float, answer: bool) -> None:
        nonlocal rx_expected_prior, rx_received_prior
        if rx_base is None:
            return  # aiortc reports only on a stream it has received
        expected = max_seq - rx_base + 1
        fl = fraction_lost(expected - rx_expected_prior, rx_count - rx_received_prior)
        rx_expected_prior, rx_received_prior = expected, rx_count
        t_wire = t_rr + REACTION_S
        lsr, dl = (sr_received[0], dlsr_s(t_wire - sr_received[1], answer)) if sr_received else (None, 0.0)
        rr = _Report(t_wire, fl / 256.0, 0, [], highest=max_seq, lsr=lsr, dlsr_s=dl)
        res.rtcp_rr.append((t_rr, fl, max_seq, answer))
        size = rtcp_rr_wire_bytes(hm)
        res.feedback_bytes += size
        launch(t_rr, datagram(ctl["down"], ctl_rngs["down"], size, "report", rr))
    originals: dict[int, _Row] = {}

    def transmit(row: _Row, streams: Any = None) -> None:
        arr = up.apply_one(row.send_s, row.wire, rngs["up"], streams=streams)
        row.copies = len(arr)
        if arr:
            row.arrival_s = min(arr)
        res.rows.append(row)
        for a in arr:
            push(a, "arrive", row)

    while events:
        t, _, kind, data = heapq.heappop(events)
        if kind == "send":
            ts, cap, j = data
            samples = n
            if enc is not None:
                assert frames is not None
                if ana is not None:
                    if not pending:  # a packet starts: the controller's settings apply to all of it
                        s = _as_of(ana_log, t - ENCODE_LEAD_S)
                        enc.reconfigure(bitrate=s.bitrate_bps, fec=s.fec, packet_loss_perc=s.loss_perc)
                        group = max(1, int(round(s.frame_ms * rate / 1000)) // n)
                    pending.append(j)
                    if len(pending) < group and j < frames.shape[0] - 1:
                        continue  # the packet waits for its last frame's capture
                    ts, samples = pending[0] * n, len(pending) * n
                    enc.reconfigure(frame_ms=len(pending) * float(cfg.frame_ms))
                    payload = enc.encode(frames[pending[0]:pending[-1] + 1].reshape(-1))
                    pending = []
                else:
                    if fec_log:
                        perc = _as_of(fec_log, t - ENCODE_LEAD_S)
                        if perc != enc.packet_loss_perc:
                            enc.reconfigure(packet_loss_perc=perc)
                    payload = enc.encode(frames[j])
                if cfg.dtx and len(payload) <= DTX_MAX_BYTES:
                    continue
            else:
                payload = stream.payload[j]
            msg = red.wrap(payload, ts * OPUS_RTP_HZ // rate) if red is not None else payload
            codec_bytes = len(payload) if red is None else _red_codec_bytes(msg)
            seq = next_seq
            next_seq += 1
            history.sent(seq, msg, t, rtt_s or 0.0)
            originals[seq] = _Row(seq, ts, cap, t, msg, codec_bytes, packet_has_fec(payload), False,
                                  rtp_wire_bytes(len(msg), hm), samples)
            transmit(originals[seq])
            if rr_only and rtt_s is None and next_seq in RAPID_SR_PACKETS:
                send_sr(t)
        elif kind == "arrive":
            row: _Row = data
            if row.seq not in first_seen:
                first_seen.add(row.seq)
                playout.arrived(t, row.media_ts / rate)
            tracker.on_packet(row.seq, row.media_ts)
            if not row.rtx:
                rr_received += 1
                max_seq = max(max_seq, row.seq)
            rx_count += 1
            if rx_base is None:
                rx_base = row.seq
            fb_owd.append((row.send_s, t, row.wire))
            off = playout.offset_s()
            if off is not None:
                tracker.on_playout(int(math.floor((t - off) * rate)))
            if opts.nack:
                seqs = tracker.nack_list(None if rtt_s is None else rtt_s * 1000.0)
                if seqs:
                    res.nack_sent += 1
                    res.nack_seqs += len(seqs)
                    size = rtcp_nack_wire_bytes(seqs, hm)
                    res.feedback_bytes += size
                    if rr_only:  # RTCP: every copy reaches the sender
                        launch(t, datagram(ctl["down"], ctl_rngs["down"], size, "nack", seqs))
                    else:
                        launch(t, datagram(down, rngs["down"], size, "nack", seqs, first=True))
        elif kind == "nack":
            resend = []
            for osn, payload in history.on_nack(data, t, rtt_s or 0.0):
                msg = rtx_payload(osn, payload)
                base = originals[osn]
                resend.append(_Row(osn, base.media_ts, base.capture_s, t + REACTION_S, msg, base.codec_bytes,
                                   base.fec, True, rtp_wire_bytes(len(msg), hm), base.frame_samples))
            if resend:
                launch(t, retransmit(resend))
        elif kind == "launch":
            data(t)
        elif kind == "feedback":
            report = _Report(t + REACTION_S, None, len(fb_owd), fb_owd)
            fb_owd = list[tuple[float, float, int]]()
            size = feedback_wire_bytes(hm)
            res.feedback_bytes += size
            launch(t, datagram(down, rngs["down"], size, "report", report, first=True))
        elif kind == "sr":
            send_sr(t)
        elif kind == "sr_arrive":
            sr_received = (int(data), t)
            send_rr(t, True)
        elif kind == "rr" and rr_only:
            send_rr(t, False)
        elif kind == "rr":
            expected = max_seq - rr_prev_max
            # RFC 3550 A.3 interval loss, negative when late packets of an earlier interval came
            loss = 1.0 - rr_received / expected if expected > 0 else 0.0
            rr = _Report(t + REACTION_S, loss, max(expected, 0), [])
            rr_prev_max, rr_received = max(max_seq, rr_prev_max), 0
            size = rtcp_rr_wire_bytes(hm)
            res.feedback_bytes += size
            launch(t, datagram(down, rngs["down"], size, "report", rr, first=True))
        elif kind == "report":
            rep: _Report = data
            last = rep.packets[-1][:2] if rep.packets else None
            rtt_new: float | None = None
            if rr_only:  # the sender's RTT sample from LSR/DLSR; the packets the RR covers
                if sr_sent is not None and rep.lsr == sr_sent[0] and rep.dlsr_s > 0:
                    rtt_new = t - sr_sent[1] - rep.dlsr_s
                rep.expected, sender_highest = rep.highest - sender_highest, rep.highest
            elif last is not None:
                last_send, last_arr = last
                rtt_new = (t - last_send) - (rep.sent_s - last_arr)
            if rtt_new is not None:
                rtt_s = rtt_new
                if opts.nack and res.min_target_ms is None and playout.fixed_s is None:
                    res.min_target_ms = nack_min_target_ms(rtt_s, frame_s)
                    playout.set_min_target(res.min_target_ms)
            if ana is not None and not (rr_only and rep.loss is None):
                before = ana.settings
                s = ana.on_feedback(1000.0 * t, rep.loss,
                                    [(1000.0 * a, 1000.0 * b, w) for a, b, w in rep.packets],
                                    1000.0 * (rtt_s or 0.1), rep.expected)
                if s != before:
                    ana_log.append((t, s))
                    res.timeline.append((t, s.bitrate_bps, s.fec, s.loss_perc, s.frame_ms))
            elif measured is not None and enc is not None and rep.loss is not None:
                perc = measured.on_loss(rep.loss, 1000.0 * t)
                if perc != fec_log[-1][1]:
                    fec_log.append((t, perc))
                    res.timeline.append((t, enc.bitrate, enc.fec, perc, int(round(float(cfg.frame_ms)))))
    return res


def _as_of(log: list[tuple[float, Any]], t: float) -> Any:
    """The value of a (time, value) log, in time order, in force at ``t``: the last one decided at or before it."""
    for at, value in reversed(log):
        if at <= t:
            return value
    return log[0][1]


def _red_codec_bytes(msg: bytes) -> int:
    """Codec bytes (primary + redundant blocks) in a RED payload."""
    return sum(len(b.data) for b in decode_red(msg))


def protected_trace(cfg: Any, stream: Any, hm: Any, attrs: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The arrival trace of a protected WebRTC call (originals, then retransmissions as extra rows
    with ``rtx`` True) and its transport counters. ``attrs``: the trace metadata of the call;
    ``attrs["protection"]`` gets the options, NACK counts and the bitrate timeline."""
    opts = ProtectionOptions.of(cfg)
    frames = None
    if opts.abr or opts.fec_measured:
        frames = pcm.split_frames(to_int16(stream.reference), int(cfg.sample_rate), cfg.frame_ms)
    res = simulate_uplink(cfg, stream, frames, hm)
    rows = sorted(res.rows, key=lambda r: (r.send_s, r.rtx))
    n = len(rows)
    cols = {
        "seq": [r.seq for r in rows],
        "media_ts": [r.media_ts for r in rows],
        "frame_samples": [r.frame_samples or int(stream.frame_samples[0]) for r in rows],
        "capture_s": [r.capture_s for r in rows],
        "send_s": [r.send_s for r in rows],
        "arrival_s": [r.arrival_s for r in rows],
        "payload_bytes": [r.codec_bytes for r in rows],
        "message_bytes": [len(r.payload) for r in rows],
        "wire_bytes": [r.wire for r in rows],
        "transport": ["webrtc"] * n,
        "direction": ["up"] * n,
        "fec": [r.fec for r in rows],
        "duplicates": [max(r.copies - 1, 0) for r in rows],
        "payload": [r.payload for r in rows],
    }
    attrs = dict(attrs)
    attrs["protection"] = {
        "nack": opts.nack, "red": opts.red, "abr": opts.abr, "fec_measured": opts.fec_measured,
        "nack_sent": res.nack_sent, "nack_seqs": res.nack_seqs,
        "feedback_bytes": res.feedback_bytes, "min_target_ms": res.min_target_ms,
        "timeline": [list(x) for x in res.timeline],
    }
    if getattr(cfg, "abr_feedback", "twcc") == "rr" and opts.enabled:
        attrs["protection"]["rtcp_rr"] = [list(x) for x in res.rtcp_rr]
    df = trace_mod.make_trace(cols, attrs)
    df["rtx"] = np.asarray([r.rtx for r in rows], dtype=bool)
    return df, {}
