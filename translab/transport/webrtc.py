"""The WebRTC path: two aiortc peers (or an answerer for an outside caller) carrying translab's own
Opus packets, tapped at the RTP layer on both ends.

REFERENCE section 3 lists what aiortc would otherwise get wrong; this module works around each:

* Sender: :class:`PacketTrack` is a MediaStreamTrack paced in real time (absolute deadlines) whose
  ``recv()`` returns ``av.Packet`` objects carrying pre-encoded Opus from
  :func:`translab.media.stream.encode_stream` (pts in 1/48000 s), so aiortc's fixed 96 kbit/s
  stereo encoder is bypassed and bitrate, frame size, FEC, DTX and complexity apply for real. DTX
  frames are already absent from the stream (skipped as a browser would).
* SDP: :func:`advertised_opus` puts useinbandfec, usedtx, maxaveragebitrate and ptime into the Opus
  fmtp via ``aiortc.codecs.CODECS["audio"][0].parameters`` for the negotiation, then restores it.
* ICE: ``RTCConfiguration(iceServers=[])`` (no 5 s wait for Google's STUN server).
* Receiver: :class:`RtpReceiveTap` wraps ``RTCRtpReceiver._handle_rtp_packet`` (and keeps calling
  the original, so RTCP and getStats still work), stamping each RTP packet with the monotonic clock.
  :class:`RtpSendTap` wraps the caller's ``RTCDtlsTransport._send_rtp`` to stamp each media packet
  as it is handed to SRTP, and to learn the RTP sequence / timestamp origins.
* ``aiortc-stock``: :class:`StockRecorder` records what aiortc's own receiver delivers
  (``track.recv()`` frames with their arrival time) for comparison with translab's playout.

* Protection (audio NACK + RTX, RED): :func:`advertised_protection` extends aiortc's audio codec table
  for the negotiation (aiortc writes its SDP from that table, so that is where its SDP is munged):
  ``a=rtcp-fb:96 nack``, ``rtx/48000`` with ``apt=96`` and the sender's RTX SSRC in an
  ``a=ssrc-group:FID``, ``red/48000/2``. :class:`RtpSendTap` and :class:`RtpReceiveTap` then carry
  the packets: the send tap wraps each Opus payload as the sender object says (RED) and keeps its
  header for RTX (the track takes each payload from the sender object when it encodes during the
  call: measured-loss FEC or ABR, fed with the receiver reports); NACKs
  reaching the caller's RTCRtpSender go to the sender object (not to aiortc's own 128-packet
  history) and its answers leave as RFC 4588 packets on the RTX SSRC; the receive tap hands every
  packet to the receiver object, sends the NACKs it asks for through aiortc's RTCP, and gives
  aiortc's decoder plain Opus (RTX unwrapped, RED's primary block). The decisions (history, NACK
  timing, RED packing) are not here: they come from objects implementing :class:`StreamSender` and
  :class:`StreamReceiver` (translab.protection.endpoint). :func:`seeded_rtcp` sends the RTCP
  reports on the seeded schedule the simulator shares (the RTT is known one round trip after media
  starts) and :func:`route_rtcp` gives them the simulator's link draws. A protected call's protocol
  timing (the NACK tracker's and the adaptive buffer's packet arrival times, the SR arrival behind
  DLSR, the RR arrival and SR send behind the RTT, the time a NACK is handled) uses wire times,
  :class:`WireTimes`: when the emulated link delivered (or took) the datagram, as libwebrtc uses
  the socket's receive time. What it sends goes on the wire at the simulator's times
  (:mod:`translab.protection.timing`): media on the capture grid (the track hands each packet over
  ``ENCODE_LEAD_S`` early and the emulator holds it, :func:`translab.emulate.datagram.launch_at`),
  each NACK, retransmission and report ``REACTION_S`` after what caused it; the host's processing
  must fit inside that, and a datagram it hands over late leaves at once and is counted
  (``host_late_launches``).

Times: monotonic seconds (``translab.emulate.scheduler.now``) internally; the LegRecord holds the
call clock (s since the clip's first sample) and setup milestones in ms. A protected call's arrival
times in the LegRecord are wire times (see above); an unprotected call's are when the tap handled
the packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import random
import ssl
import struct
import time
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from translab.emulate.datagram import launch_at, launch_time
from translab.emulate.scheduler import DeadlineScheduler, now
from translab.protection.rtcp import RAPID_SR_PACKETS, RtcpSchedule, dlsr_s, rtcp_rngs
from translab.protection.timing import ENCODE_LEAD_S, REACTION_S
from translab.transport.record import LegRecord

__all__ = ["RTP_CLOCK", "opus_fmtp", "advertised_opus", "PacketTrack", "RtpSendTap", "RtpReceiveTap",
           "StockRecorder", "rtc_stats", "webrtc_call", "new_peer"]

#: Opus' RTP clock rate (RFC 7587), whatever the codec's internal rate
RTP_CLOCK = 48000
#: payload types: aiortc's Opus, the RTX for it (aiortc's next dynamic type), RED (Chrome's 63)
OPUS_PT = 96
RTX_PT = 97
RED_PT = 63


@contextlib.contextmanager
def advertised_protection(nack: bool, red: int) -> Iterator[None]:
    """Within the block, aiortc offers and accepts audio NACK and RTX (``nack``: ``a=rtcp-fb:96
    nack``, ``a=rtpmap:97 rtx/48000`` + ``a=fmtp:97 apt=96``, which makes aiortc add the RTX SSRC
    and ``a=ssrc-group:FID``) and RED (``red`` 1 or 2: ``a=rtpmap:63 red/48000/2`` + ``a=fmtp:63
    96/96``, one 96 per block). Opus stays the first codec, the one aiortc's sender uses."""
    from aiortc.codecs import CODECS
    from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

    table = CODECS["audio"]
    opus = table[0]
    assert opus.mimeType.lower() == "audio/opus" and opus.payloadType == OPUS_PT
    saved_table, saved_fb = list(table), list(opus.rtcpFeedback)
    if nack:
        opus.rtcpFeedback[:] = [RTCRtcpFeedback(type="nack")]
        table.append(RTCRtpCodecParameters(mimeType="audio/rtx", clockRate=RTP_CLOCK, payloadType=RTX_PT,
                                           parameters={"apt": OPUS_PT}))
    if red:
        table.append(RTCRtpCodecParameters(mimeType="audio/red", clockRate=RTP_CLOCK, channels=2,
                                           payloadType=RED_PT,
                                           parameters={"/".join([str(OPUS_PT)] * (int(red) + 1)): None}))
    try:
        yield
    finally:
        table[:] = saved_table
        opus.rtcpFeedback[:] = saved_fb


class StreamSender(Protocol):
    """The sender's protection decisions (translab.protection.endpoint.ProtectedSender)."""

    def wrap(self, seq16: int, rtp_ts: int, payload: bytes, t_s: float, rtt_s: float | None) -> bytes:
        """The RTP payload to send for an Opus packet (RED-wrapped or not); kept for RTX."""
        ...

    def on_nack(self, seqs16: list[int], t_s: float, rtt_s: float | None) -> list[tuple[int, bytes]]:
        """``[(original sequence number, RFC 4588 payload)]`` to retransmit for a NACK."""
        ...

    def payload(self, k: int) -> bytes | None:
        """Packet ``k``'s codec payload, encoded now; None: the stream's pre-encoded packet."""
        ...

    def on_report(self, loss: float, t_s: float, expected: int | None = None, rtt_s: float | None = None) -> None:
        """A receiver report arrived at ``t_s`` (call clock, s): its loss fraction (0-1), the packets it
        covers (highest sequence number since the previous report's; None for the first) and the
        RTT sample it gave (s; None: none yet)."""
        ...


class StreamReceiver(Protocol):
    """The receiver's protection decisions (translab.protection.endpoint.ProtectedReceiver)."""

    def on_packet(self, seq16: int, rtp_ts: int, t_s: float, rtt_s: float | None) -> list[int]:
        """A packet (or a retransmission's original) arrived: the sequence numbers to NACK now."""
        ...

    def primary(self, payload: bytes) -> bytes:
        """The Opus payload a decoder gets from a received payload (RED: its primary block)."""
        ...

    def on_rtt(self, rtt_s: float | None) -> None:
        """The sender took an RTT sample (s): the moment it is known (the NACK rule's first target)."""
        ...

    def report_sent(self, t_s: float, fraction_lost: int, highest16: int, answer: bool) -> None:
        """The receiver sent an RTCP RR at ``t_s`` (call clock, s): its 8-bit loss fraction, highest
        sequence number, and whether it answered an SR."""
        ...


def opus_fmtp(cfg: Any) -> dict[str, int | str]:
    """The Opus fmtp parameters that describe ``cfg`` (a resolved CallConfig): bitrate in bit/s,
    frame in ms."""
    return {
        "minptime": 10,
        "useinbandfec": 1 if cfg.fec else 0,
        "usedtx": 1 if cfg.dtx else 0,
        "maxaveragebitrate": int(cfg.bitrate),
        "ptime": int(cfg.frame_ms) if float(cfg.frame_ms).is_integer() else float(cfg.frame_ms),
    }


@contextlib.contextmanager
def advertised_opus(parameters: dict[str, Any]) -> Iterator[None]:
    """Within the block, aiortc advertises ``parameters`` in its Opus fmtp (offers and answers)."""
    from aiortc.codecs import CODECS

    codec = CODECS["audio"][0]
    assert codec.mimeType.lower() == "audio/opus"
    saved = dict(codec.parameters)
    codec.parameters.clear()
    codec.parameters.update(parameters)
    try:
        yield
    finally:
        codec.parameters.clear()
        codec.parameters.update(saved)


@contextlib.contextmanager
def advertised(cfg: Any, protected: bool = False) -> Iterator[None]:
    """The Opus fmtp of ``cfg`` (:func:`advertised_opus`) and, when ``protected``, its NACK / RTX /
    RED (:func:`advertised_protection`) in aiortc's offers and answers within the block."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(advertised_opus(opus_fmtp(cfg)))
        if protected:
            stack.enter_context(advertised_protection(bool(getattr(cfg, "nack", False)),
                                                      int(getattr(cfg, "red", 0) or 0)))
        yield


def new_peer() -> Any:
    """An RTCPeerConnection without STUN/TURN servers (host candidates only)."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def restrict_ip_version(pc: Any, ip_version: int) -> None:
    """Gather host candidates of one IP version only (so the packets on the wire have the header
    sizes the call's header model assumes). Call before ``setLocalDescription``; a peer without a
    usable address of that version falls back to both."""
    import aioice.ice

    has = aioice.ice.get_host_addresses(use_ipv4=ip_version == 4, use_ipv6=ip_version == 6)
    if not has:
        return
    from translab.emulate.datagram import ice_connections_of

    for conn in ice_connections_of(pc):
        conn._use_ipv4 = ip_version == 4
        conn._use_ipv6 = ip_version == 6


async def _sleep_until(deadline: float, scheduler: DeadlineScheduler | None) -> None:
    """Sleep until ``deadline`` (monotonic s), precisely when a scheduler is given."""
    if deadline <= now():
        return
    if scheduler is None or scheduler.closed:
        await asyncio.sleep(deadline - now())
        return
    fut = asyncio.get_running_loop().create_future()
    scheduler.at(deadline, lambda: fut.done() or fut.set_result(None))
    await fut


class PacketTrack:
    """A real-time audio track that yields pre-encoded Opus packets (built lazily as an aiortc
    MediaStreamTrack subclass; see :func:`make_packet_track`)."""


def make_packet_track(payloads: list[bytes], media_ts: np.ndarray, capture_s: np.ndarray,
                      sample_rate: int, start: "asyncio.Future[float]",
                      scheduler: DeadlineScheduler | None = None,
                      payload_of: Callable[[int], bytes | None] | None = None) -> Any:
    """A MediaStreamTrack whose k-th ``recv()`` returns packet k at ``t0 + capture_s[k] - lead_s``
    (its capture time, the moment its last sample is captured, less the track's ``lead_s``
    attribute, 0 unless set: a head start for a sender whose datagrams are launched at their
    capture time), t0 being the result of ``start`` (monotonic s). pts = media time in 1/48000 s.
    After the last packet the track ends (MediaStreamError). ``payload_of(k)``: the payload encoded
    at send time (None: ``payloads[k]``)."""
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    scale = RTP_CLOCK // int(sample_rate) if RTP_CLOCK % int(sample_rate) == 0 else None
    tb = fractions.Fraction(1, RTP_CLOCK)

    class _PacketTrack(MediaStreamTrack, PacketTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.index = 0
            self.lead_s = 0.0

        async def recv(self) -> Any:
            if self.readyState != "live":
                raise MediaStreamError
            t0 = await start
            k = self.index
            if k >= len(payloads):
                self.stop()
                raise MediaStreamError
            await _sleep_until(t0 + float(capture_s[k]) - self.lead_s, scheduler)
            self.index += 1
            live = payload_of(k) if payload_of is not None else None
            pkt = av.Packet(live if live is not None else payloads[k])
            ts = int(media_ts[k])
            pkt.pts = ts * scale if scale else int(round(ts * RTP_CLOCK / sample_rate))
            pkt.time_base = tb
            return pkt

    return _PacketTrack()


def seeded_rtcp(sender: Any, receiver: Any, send_tap: "RtpSendTap", schedule: RtcpSchedule,
                start: "asyncio.Future[float]", scheduler: DeadlineScheduler | None,
                report_sent: Callable[[float, int, int, bool], None] | None = None,
                wire: "WireTimes | None" = None, rx_clock: Callable[[], float] = now) -> None:
    """The RTCP reports of a protected call on the seeded schedule shared with the simulator
    (:mod:`translab.protection.rtcp`): real SR (+ SDES) and RR packets, built as aiortc builds them,
    at the times and by the rules stated there. Install after both descriptions are set and
    before the peers connect (aiortc starts its RTCP loops once DTLS is up).

    - the caller's ``sender`` (RTCRtpSender) and the callee's ``receiver`` (RTCRtpReceiver) get
      their own ``_run_rtcp`` (the coroutine aiortc starts): sleep until each time of
      ``schedule.times("sr")`` / ``("rr")`` after the call clock's zero (``start``'s result,
      monotonic s; ``scheduler`` for precise wake-ups), then send; the sender ends with a BYE as
      aiortc's does;
    - rapid start: an SR right after the 2nd, 7th, ... RTP packet (``RAPID_SR_PACKETS``) while
      ``send_tap.last_rtt_s`` is None;
    - the receiver answers every SR at once with an RR.

    ``report_sent(call-clock s, 8-bit loss fraction, highest sequence number, answer)`` is told of
    every RR the receiver sends.

    Wire times (the timestamps of the RTT sample, as a capture would stamp them): each SR's send
    time (``send_tap.sr_sent``, which the RR's LSR is checked against) is when the SR entered the
    uplink (``wire.sr_sent``; ``now()`` without ``wire``), and the receiver's SR arrival, from which
    an RR's DLSR counts, is ``rx_clock()`` while it handles the SR (:meth:`WireTimes.receiving`:
    the SR's delivery by the emulated downlink's far end). DLSR then covers the receiver's real
    processing up to the RR's send, and the sender's RTT (RR arrival on the wire - SR send - DLSR)
    is the emulated path's round trip, as libwebrtc measures it with socket receive times.

    Launch times (with ``wire``; :mod:`translab.protection.timing`): a periodic report built at its
    scheduled time, an answering RR built when the SR arrived and an early SR after the media packet
    it follows enter the link ``REACTION_S`` later (held by the emulator); DLSR counts to that
    moment, and the early SR checks for an RTT sample at the packet's launch, as the simulator's
    does."""
    from aiortc.rtp import (RtcpByePacket, RtcpReceiverInfo, RtcpRrPacket, RtcpSdesPacket, RtcpSenderInfo,
                            RtcpSourceInfo, RtcpSrPacket)

    async def send_sr() -> None:
        ntp = getattr(sender, "_RTCRtpSender__ntp_timestamp", 0)
        packets: list[Any] = [RtcpSrPacket(ssrc=sender._ssrc, sender_info=RtcpSenderInfo(
            ntp_timestamp=ntp, rtp_timestamp=getattr(sender, "_RTCRtpSender__rtp_timestamp", 0),
            packet_count=getattr(sender, "_RTCRtpSender__packet_count", 0) & 0xFFFFFFFF,
            octet_count=getattr(sender, "_RTCRtpSender__octet_count", 0) & 0xFFFFFFFF))]
        lsr = (ntp >> 16) & 0xFFFFFFFF
        sender._RTCRtpSender__lsr = lsr  # aiortc's own statistics (wall clock)
        sender._RTCRtpSender__lsr_time = time.time()
        cname = getattr(sender, "_RTCRtpSender__cname", None)
        if cname is not None:
            packets.append(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=sender._ssrc, items=[(1, cname.encode("utf8"))])]))
        t_send = launch_time()  # when it enters the uplink: now, or its launch time when held
        if wire is not None:
            wire.sr_sent.pop(sender._ssrc, None)
        await sender._send_rtcp(packets)
        if wire is not None:  # the moment the SR entered the uplink, if it did not wait for its launch
            t_send = wire.sr_sent.pop(sender._ssrc, t_send)
        send_tap.sr_sent = (lsr, t_send)

    async def send_rr(answer: bool) -> None:
        rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
        lsrs = receiver._RTCRtpReceiver__lsr
        reports = []
        for ssrc, stream in receiver._RTCRtpReceiver__remote_streams.items():
            lsr, dlsr = 0, 0
            if ssrc in lsrs and ssrc in sr_arrival:
                lsr = lsrs[ssrc]
                dlsr = int(round(65536 * dlsr_s(launch_time() - sr_arrival[ssrc], answer)))
            reports.append(RtcpReceiverInfo(ssrc=ssrc, fraction_lost=stream.fraction_lost,
                                            packets_lost=stream.packets_lost, highest_sequence=stream.max_seq,
                                            jitter=stream.jitter, lsr=lsr, dlsr=dlsr))
        if rtcp_ssrc is None or not reports:
            return
        if report_sent is not None and start.done():
            report_sent(now() - start.result(), reports[0].fraction_lost, reports[0].highest_sequence, answer)
        await receiver._send_rtcp(RtcpRrPacket(ssrc=rtcp_ssrc, reports=reports))

    def reaction(t: float) -> float | None:
        """The launch time of what the endpoint sends in reaction to an event at ``t`` (monotonic s)."""
        return t + REACTION_S if wire is not None else None

    async def rapid_sr(t_packet: float) -> None:
        if wire is not None:
            await _sleep_until(t_packet, scheduler)
        if send_tap.last_rtt_s is None:
            with launch_at(reaction(t_packet)):
                await send_sr()

    for n in RAPID_SR_PACKETS:
        send_tap.after_packet[n] = rapid_sr
    original = receiver._handle_rtcp_packet
    sr_arrival: dict[int, float] = {}  # SSRC -> wire arrival (monotonic s) of its latest SR

    async def _handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            sr_arrival[packet.ssrc] = rx_clock()
        await original(packet)
        if isinstance(packet, RtcpSrPacket):
            with launch_at(reaction(sr_arrival[packet.ssrc])):
                await send_rr(True)

    receiver._handle_rtcp_packet = _handle_rtcp_packet

    async def periodic(role: str, obj: Any, prefix: str, send: Callable[[], Any]) -> None:
        getattr(obj, prefix + "rtcp_started").set()
        try:
            t0 = await start
            for t in schedule.times(role):
                await _sleep_until(t0 + t, scheduler)
                with launch_at(reaction(t0 + t)):
                    await send()
        except asyncio.CancelledError:
            pass
        if role == "sr":
            await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        getattr(obj, prefix + "rtcp_exited").set()

    sender._run_rtcp = lambda: periodic("sr", sender, "_RTCRtpSender__", send_sr)
    receiver._run_rtcp = lambda: periodic("rr", receiver, "_RTCRtpReceiver__", lambda: send_rr(False))


class _CallClockModel:
    """A link model seen on the call clock: send times shifted by ``offset_s`` before the model and
    arrival times shifted back (so RTCP, timed by the emulator from its start, meets the model at
    the simulator's times)."""

    def __init__(self, model: Any, offset_s: float) -> None:
        self.model, self.offset_s = model, float(offset_s)

    def apply(self, send_s: np.ndarray, size: np.ndarray, rng: Any) -> tuple[np.ndarray, np.ndarray]:
        idx, arrival = self.model.apply(np.asarray(send_s) - self.offset_s, size, rng)
        return idx, np.asarray(arrival) + self.offset_s


def route_rtcp(emu: Any, seed: int, t0: float) -> None:
    """From the media start on (``t0``, monotonic s, the call clock's zero), RTCP datagrams crossing
    ``emu``'s UDP links (a :class:`translab.emulate.emulator.LiveEmulator` with separate control
    models; others are left alone) meet a fresh instance of the direction's link model on the call
    clock, drawing from :func:`translab.protection.rtcp.rtcp_rngs` (``seed``), as the simulator's
    RTCP does (``DatagramLink.route_rtcp``); STUN keeps the control model."""
    udp, factory = getattr(emu, "udp", None), getattr(emu, "chain_factory", None)
    if not udp or factory is None:
        return
    rngs = rtcp_rngs(seed)
    for d, link in udp.items():
        if link.control is link.media:
            continue  # one shared model for every datagram: nothing to separate
        link.route_rtcp(_CallClockModel(factory(d), t0 - link.t0), rngs[d])


class WireTimes:
    """Wire times of the SRTP / SRTCP datagrams of a call through an emulated path (the in-process
    :class:`translab.emulate.emulator.LiveEmulator`), for the protocol timing of a protected call:
    libwebrtc takes a packet's receive time from the socket (as a packet capture or the kernel's
    ``SO_TIMESTAMPNS`` stamps it), not from the moment the application gets round to the packet,
    and so do the NACK tracker, the adaptive buffer's target and the RTT (LSR/DLSR) here.

    - arrival: :meth:`attach` has each UDP link report every delivered RTP/RTCP datagram with its
      arrival time on the emulated wire (``DatagramLink.on_release``: the link model's arrival,
      monotonic s, the time the simulator gives the same datagram); :meth:`receiving` wraps a peer's
      ICE transport so that while its DTLS transport handles a datagram (aiortc handles them one at
      a time, ``RTCDtlsTransport._recv_next``) the clock it returns gives that datagram's arrival;
    - send: ``sr_sent`` (SSRC -> monotonic s) is when the latest RTCP Sender Report of an SSRC
      entered the link (``DatagramLink.on_enter``).

    The host's processing keeps its real cost: a packet is handled when Python gets to it; the
    timestamps the algorithms use come from the wire, and what the endpoint sends in reaction is
    launched at the simulator's time (see the module docstring). A datagram the links did not
    deliver (no emulator) is stamped ``now()``."""

    def __init__(self) -> None:
        self._due: dict[bytes, list[float]] = {}
        self.sr_sent: dict[int, float] = {}

    def attach(self, emu: Any) -> bool:
        """Stamp the datagrams of ``emu``'s UDP links (False: ``emu`` has none, nothing done)."""
        udp = getattr(emu, "udp", None)
        if not udp:
            return False
        for link in udp.values():
            link.on_release = self._released
            link.on_enter = self._entered
        return True

    def _entered(self, data: bytes, t: float) -> None:
        if len(data) >= 8 and 128 <= data[0] <= 191 and data[1] == 200:  # SRTCP starting with an SR
            self.sr_sent[int.from_bytes(data[4:8], "big")] = t

    def _released(self, data: bytes, due_s: float) -> None:
        if data and 128 <= data[0] <= 191:  # RTP / RTCP (RFC 7983)
            self._due.setdefault(data, []).append(due_s)

    def receiving(self, ice_transport: Any) -> Callable[[], float]:
        """Wrap ``ice_transport`` (an aiortc RTCIceTransport, whose ``_recv`` its DTLS transport
        awaits for each datagram); the returned clock gives the wire arrival (monotonic s) of the
        datagram being handled, ``now()`` for one not stamped."""
        current: list[float | None] = [None]
        original = ice_transport._recv

        async def _recv() -> bytes:
            data = await original()
            times = self._due.get(data)
            current[0] = times.pop(0) if times else None
            if times is not None and not times:
                del self._due[data]
            return data

        ice_transport._recv = _recv

        def clock() -> float:
            t = current[0]
            return now() if t is None else t

        return clock


def rtp_header_length(data: bytes) -> int:
    """Bytes of an RTP packet's header: fixed 12, CSRCs and the header extension (RFC 3550 5.3.1)."""
    n = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        n += 4 + 4 * int.from_bytes(data[n + 2:n + 4], "big")
    return n


class RtpSendTap:
    """Wraps an RTCDtlsTransport's ``_send_rtp`` to stamp every outgoing media RTP packet.

    ``sent`` lists (rtp_seq, rtp_ts, monotonic s, rtp bytes) in send order; RTCP passes untouched.
    With ``protect`` (a :class:`StreamSender`), each Opus payload is replaced by what it returns (RED
    with payload type ``RED_PT`` when ``red``), ``payloads`` keeps the RTP payload sent per sequence
    number, and :meth:`attach_sender` makes NACKs reaching an RTCRtpSender answer with RTX packets
    (``rtx_sent``: (rtx seq, original seq, monotonic s, RTX payload)) and keeps ``last_rtt_s``, the
    RTT (s) of the latest receiver report (RFC 3550 LSR/DLSR, as aiortc computes it but not
    smoothed: the simulator's endpoints also use their latest sample); each report's loss fraction,
    the packets it covers and that RTT go to ``protect.on_report``. ``rtt()``: the RTT the
    StreamSender is given (s, None before the first receiver report). ``clock()``: the time
    (monotonic s) of the RTCP datagram being handled: the RR's arrival in the RTT sample and the
    report's and a NACK's time given to the StreamSender (:meth:`WireTimes.receiving`: its arrival
    on the wire; default ``now()``); ``sr_sent``: (LSR, send time, monotonic s) of the latest SR
    (set by :func:`seeded_rtcp`; None: aiortc's own, on the wall clock).

    Launch times (:func:`translab.emulate.datagram.launch_at`): ``launch(k)`` gives the monotonic s
    the k-th media packet (from 0) is to enter the link (None: at once); ``reaction_s`` (None: at
    once), how long after a NACK's arrival (``clock()``) its retransmissions are launched. Send
    times in ``sent`` and ``rtx_sent`` are those launch times (now, for a packet handed over late).
    """

    def __init__(self, dtls_transport: Any, protect: StreamSender | None = None, red: bool = False,
                 rtt: Callable[[], float | None] = lambda: None, clock: Callable[[], float] = now,
                 launch: Callable[[int], float | None] = lambda k: None, reaction_s: float | None = None) -> None:
        self.sent: list[tuple[int, int, float, int]] = []
        self.payloads: dict[int, bytes] = {}
        self.rtx_sent: list[tuple[int, int, float, bytes]] = []
        self.nacks_received = 0
        self.last_rtt_s: float | None = None
        self.sr_sent: tuple[int, float] | None = None
        #: told of each RTT sample as it is taken (s)
        self.on_rtt: Callable[[float], None] | None = None
        self.clock = clock
        self._rr_highest: int | None = None  # highest sequence number of the previous receiver report
        self.t0 = 0.0  # the call clock's zero (monotonic s), for the times given to on_report
        #: coroutines to run once the n-th media packet has been handed on (n: key, from 1), given
        #: that packet's send time (monotonic s)
        self.after_packet: dict[int, Callable[[float], Any]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._headers: dict[int, bytes] = {}
        self._rtx_seq = random.getrandbits(16)
        self._rtt = rtt
        self._reaction_s = reaction_s
        original = dtls_transport._send_rtp

        async def _send_rtp(data: bytes) -> None:
            at = None  # a media packet's launch time
            if len(data) >= 12 and not (192 <= data[1] <= 223):
                seq, ts = struct.unpack_from("!HI", data, 2)
                pt = data[1] & 0x7F
                if protect is not None and pt == RTX_PT:
                    h = rtp_header_length(data)
                    self.rtx_sent.append((seq, int.from_bytes(data[h:h + 2], "big"), launch_time(), bytes(data[h:])))
                else:
                    at = launch(len(self.sent))
                    if protect is not None and pt == OPUS_PT:
                        h = rtp_header_length(data)
                        header = bytearray(data[:h])
                        msg = protect.wrap(seq, ts, bytes(data[h:]), now(), self._rtt())
                        if red:
                            header[1] = (header[1] & 0x80) | RED_PT
                        self._headers[seq] = bytes(header)
                        if len(self._headers) > 4096:
                            del self._headers[next(iter(self._headers))]
                        self.payloads[seq] = msg
                        data = bytes(header) + msg
                    t_sent = at if at is not None and at > now() else now()
                    self.sent.append((seq, ts, t_sent, len(data)))
                    then = self.after_packet.pop(len(self.sent), None)
                    if then is not None:  # after aiortc's sender has noted this packet (its SR fields)
                        asyncio.get_running_loop().call_soon(self._spawn, then, t_sent)
            if at is None:
                await original(data)
                return
            with launch_at(at):
                await original(data)

        dtls_transport._send_rtp = _send_rtp
        self._target = dtls_transport
        self._protect = protect

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        task = asyncio.ensure_future(fn(*args))
        self._tasks.add(task)  # a strong reference until it is done
        task.add_done_callback(self._tasks.discard)

    def attach_sender(self, sender: Any) -> None:
        """NACKs (RFC 4585 generic NACK) reaching ``sender`` (an RTCRtpSender) are answered by the
        StreamSender, as RFC 4588 packets on the sender's RTX SSRC; other RTCP goes to aiortc."""
        from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRrPacket, RtcpRtpfbPacket, RtcpSrPacket

        protect = self._protect
        assert protect is not None
        original = sender._handle_rtcp_packet

        async def _handle_rtcp_packet(packet: Any) -> None:
            t = self.clock()  # the datagram's arrival
            if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                if self.sr_sent is not None:
                    (lsr, lsr_time), arrival = self.sr_sent, t
                else:
                    lsr, lsr_time, arrival = sender._RTCRtpSender__lsr, sender._RTCRtpSender__lsr_time, time.time()
                for report in packet.reports:
                    if report.ssrc != sender._ssrc:
                        continue
                    if lsr is not None and report.lsr == lsr and report.dlsr:
                        self.last_rtt_s = arrival - lsr_time - report.dlsr / 65536
                        if self.on_rtt is not None:
                            self.on_rtt(self.last_rtt_s)
                    expected = None  # packets the report covers (RFC 3550 A.3 expected_interval)
                    prev = self._rr_highest if self._rr_highest is not None else (
                        (self.sent[0][0] - 1) & 0xFFFF if self.sent else None)
                    if prev is not None:
                        expected = (report.highest_sequence - prev) & 0xFFFF
                    self._rr_highest = report.highest_sequence
                    protect.on_report(report.fraction_lost / 256.0, t - self.t0, expected, self.last_rtt_s)
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.nacks_received += 1
                with launch_at(None if self._reaction_s is None else t + self._reaction_s):
                    for osn, payload in protect.on_nack(list(packet.lost), t, self._rtt()):
                        header = self._headers.get(osn)
                        if header is None:
                            continue
                        h = bytearray(header)
                        h[1] = (h[1] & 0x80) | RTX_PT
                        struct.pack_into("!HI", h, 2, self._rtx_seq, struct.unpack_from("!I", header, 4)[0])
                        struct.pack_into("!I", h, 8, sender._rtx_ssrc)
                        self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
                        await self._target._send_rtp(bytes(h) + payload)
                return
            await original(packet)

        sender._handle_rtcp_packet = _handle_rtcp_packet

    def detach(self) -> None:
        self._target.__dict__.pop("_send_rtp", None)


class RtpReceiveTap:
    """Wraps ``RTCRtpReceiver._handle_rtp_packet``: ``received`` lists (rtp_seq, rtp_ts, monotonic
    s, payload) for every media RTP packet that reaches the receiver; the original handler still
    runs. With ``protect`` (a :class:`StreamReceiver`): RTX packets are unwrapped (``rtx_received``:
    (rtx seq, original seq, monotonic s, original payload)), every packet (retransmissions as their
    original) goes to ``protect.on_packet`` and the NACKs it asks for leave through aiortc's RTCP,
    and aiortc's decoder gets plain Opus (RED's primary block). ``media_clock()``: (the call clock's
    zero in monotonic s, the RTP timestamp of media time 0): the StreamReceiver gets times on the
    call clock and timestamps from media time 0, the frame the simulator's receiver works in (a
    fixed playout delay is counted from the capture time). ``clock()``: a packet's arrival time
    (monotonic s), stamped in ``received`` / ``rtx_received`` and given to the StreamReceiver (its
    NACK timing, playout estimate and the NACK rule's target): ``now()`` (when the tap handles it)
    by default, its arrival on the emulated wire with :meth:`WireTimes.receiving` (a protected
    call), as libwebrtc stamps packets on receipt from the socket; ``host_lag_s`` then lists how
    long after that arrival each packet was handled (s; empty with the default clock).
    ``reaction_s``: a NACK is launched that long after the arrival of the packet that revealed the
    loss (:func:`translab.emulate.datagram.launch_at`; None: at once)."""

    def __init__(self, receiver: Any, on_packet: Callable[[int, int, float, bytes], None] | None = None,
                 protect: StreamReceiver | None = None, red: bool = False,
                 rtt: Callable[[], float | None] = lambda: None,
                 media_clock: Callable[[], tuple[float, int]] = lambda: (0.0, 0),
                 clock: Callable[[], float] = now, reaction_s: float | None = None) -> None:
        self.received: list[tuple[int, int, float, bytes]] = []
        self.rtx_received: list[tuple[int, int, float, bytes]] = []
        self.host_lag_s: list[float] = []
        self.nacks_sent = 0
        self.ssrc: int | None = None  # the (last) media SSRC seen
        original = receiver._handle_rtp_packet
        stamped = clock is not now

        async def _handle_rtp_packet(packet: Any, arrival_time_ms: int) -> None:
            t = clock()
            if stamped:
                self.host_lag_s.append(now() - t)
            if protect is not None and packet.payload_type == RTX_PT:
                if len(packet.payload) < 2 or self.ssrc is None:
                    return
                osn = int.from_bytes(packet.payload[:2], "big")
                inner = bytes(packet.payload[2:])
                self.rtx_received.append((packet.sequence_number, osn, t, inner))
                packet.sequence_number, packet.payload, packet.ssrc = osn, inner, self.ssrc
                packet.payload_type = RED_PT if red else OPUS_PT
            else:
                self.ssrc = packet.ssrc
                item = (packet.sequence_number, packet.timestamp, t, bytes(packet.payload))
                self.received.append(item)
                if on_packet is not None:
                    on_packet(*item)
            if protect is not None:
                t0, ts0 = media_clock()
                lost = protect.on_packet(packet.sequence_number, (packet.timestamp - ts0) & 0xFFFFFFFF, t - t0, rtt())
                if lost:
                    self.nacks_sent += 1
                    with launch_at(None if reaction_s is None else t + reaction_s):
                        await receiver._send_rtcp_nack(packet.ssrc, lost)
                if packet.payload_type == RED_PT:
                    packet.payload = protect.primary(bytes(packet.payload))
                    packet.payload_type = OPUS_PT
            await original(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = _handle_rtp_packet
        self._target = receiver

    def detach(self) -> None:
        self._target.__dict__.pop("_handle_rtp_packet", None)


class StockRecorder:
    """Consumes a remote audio track as aiortc delivers it: ``frames`` lists (monotonic s, pts,
    samples) per decoded frame (pts relative to the first RTP timestamp aiortc saw, 48 kHz);
    ``audio()`` is the decoded sound itself (float32 mono) in delivery order, which is what an
    application playing aiortc's track would hear."""

    def __init__(self, track: Any) -> None:
        self.frames: list[tuple[float, int, int]] = []
        self.chunks: list[np.ndarray] = []
        self.task = asyncio.get_running_loop().create_task(self._run(track))

    def audio(self) -> np.ndarray:
        """aiortc's output as float32 mono in [-1, 1] (48 kHz)."""
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self.chunks)

    async def _run(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                self.frames.append((now(), int(frame.pts or 0), int(frame.samples)))
                x = frame.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                ch = len(frame.layout.channels)
                self.chunks.append(x.reshape(-1, ch).mean(axis=1) if ch > 1 else x)
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def rtc_stats(report: Any, prefix: str) -> dict[str, Any]:
    """Flatten an aiortc RTCStatsReport into ``{prefix}_{type}_{field}`` numbers, converting to
    seconds where aiortc uses other units (inbound-rtp jitter is in RTP clock units)."""
    out: dict[str, Any] = {}
    for stats in report.values():
        kind = stats.type.replace("-", "_")
        for name, value in vars(stats).items():
            if name in ("id", "type", "timestamp") or isinstance(value, (str, bool)) or value is None:
                continue
            if not isinstance(value, (int, float)):
                continue
            if stats.type in ("inbound-rtp", "remote-inbound-rtp") and name == "jitter":
                out[f"{prefix}_{kind}_jitter_s"] = float(value) / RTP_CLOCK
                continue
            if name == "roundTripTime":
                out[f"{prefix}_{kind}_roundTripTime_s"] = float(value)
                continue
            out[f"{prefix}_{kind}_{name}"] = value
    return out



def watch_connection(pc: Any, mark: Callable[[str], None], connected: "asyncio.Future[None]") -> None:
    """Follow ``pc``'s (an RTCPeerConnection) state: ``mark("ice_connected")`` and
    ``mark("dtls_connected")`` when they happen, and settle ``connected`` -- its result once DTLS is
    up, ``ConnectionError("ice_failed")`` when the connection fails before ICE connected, else
    ``ConnectionError("dtls_timeout")``."""
    ice_up: list[bool] = []

    @pc.on("iceconnectionstatechange")
    def _ice() -> None:
        if pc.iceConnectionState in ("connected", "completed"):
            ice_up.append(True)
            mark("ice_connected")
        elif pc.iceConnectionState == "failed" and not connected.done():
            connected.set_exception(ConnectionError("ice_failed"))

    @pc.on("connectionstatechange")
    def _conn() -> None:
        if pc.connectionState == "connected":
            mark("dtls_connected")
            if not connected.done():
                connected.set_result(None)
        elif pc.connectionState == "failed" and not connected.done():
            connected.set_exception(ConnectionError("dtls_timeout" if ice_up else "ice_failed"))


async def webrtc_call(stream: Any, cfg: Any, emu: Any, *, connect_timeout_s: float = 10.0,
                      drain_s: float = 1.0, progress: Callable[[float], None] | None = None,
                      start_delay_s: float = 0.05, peer_factory: Callable[[], Any] | None = None,
                      protection: tuple[StreamSender, StreamReceiver] | None = None) -> LegRecord:
    """One live WebRTC call leg through the emulator: caller sends ``stream`` (a SenderStream) to a
    callee in this process. Returns the LegRecord; never raises for a network failure (the record
    says ``failed`` and why). Both peers are closed before returning.

    Signalling, with an emulated path (``emu`` given): the caller POSTs its offer as JSON
    ``{sdp, type}`` to the callee's ``/offer`` (HTTPS when ``cfg.tls``, as pipecat's SmallWebRTC and
    WHIP take it) over a TCP connection through ``emu.tcp_relay``, so the TCP handshake, the TLS
    handshake, the request and the answer all cross the emulated link, as WebSocket's TCP + TLS +
    upgrade do. ICE does not trickle: aiortc gathers every candidate inside ``setLocalDescription``,
    so gathering completes before the offer is sent (and the callee's before the answer). Set-up
    milestones (ms since the caller started building its offer; the callee's endpoint is already
    listening): ``offer_ready``, ``tcp_connected``, ``tls_done`` (HTTPS only), ``answer_received``,
    ``signalling_done`` (answer applied), ``ice_connected``, ``dtls_connected``, ``callee_ice_connected``,
    ``callee_dtls_connected`` (media starts once both ends are connected), ``first_rtp_sent``,
    ``first_rtp_received``, ``first_stock_frame``. Without a path (``emu=None``: the netns backend,
    whose peers live in namespaces, and loopback tests) the offer and answer are exchanged in this
    process and never cross a link; only ``offer_ready`` and ``signalling_done`` are recorded.

    ``connect_timeout_s``: how long ICE + DTLS may take. ``drain_s``: how long to wait after the last
    packet for stragglers. ``progress(fraction)`` is called about every second during media.
    ``emu``: the network path (:class:`translab.transport.path.NetworkPath`, None: none).
    ``peer_factory()``: makes each peer, caller first (default :func:`new_peer`).
    ``protection``: (sender, receiver) decisions for ``cfg.nack`` / ``cfg.red`` (see the module
    docstring); the record then holds the payloads as sent and the retransmissions.
    """
    import aiortc  # noqa: F401  (importing aiortc takes ~140 ms once per process: not the call's set-up)

    rec = LegRecord()
    loop = asyncio.get_running_loop()
    make = peer_factory or new_peer
    caller, callee = make(), make()
    ip_version = int(getattr(cfg, "ip_version", 4))
    signalling: Any = None
    relay: Any = None
    client_ssl: ssl.SSLContext | None = None
    if emu is not None:
        # the callee's signalling endpoint is already listening when the caller dials (like the
        # WebSocket server): its start-up is not the call's set-up
        try:
            signalling, relay, client_ssl = await _start_signalling(callee, cfg, emu, ip_version,
                                                                    protection is not None)
        except BaseException:
            await asyncio.gather(caller.close(), callee.close(), return_exceptions=True)
            raise
    t_start = now()

    def mark(name: str, t: float | None = None) -> None:
        rec.setup_ms.setdefault(name, ((now() if t is None else t) - t_start) * 1e3)

    start: asyncio.Future[float] = loop.create_future()
    connected: asyncio.Future[None] = loop.create_future()
    # a failure reported after we stopped waiting must not log "exception never retrieved"
    connected.add_done_callback(lambda f: f.cancelled() or f.exception())
    scheduler = emu.scheduler if emu is not None else None
    track = make_packet_track(stream.payload, stream.media_ts, stream.capture_s, stream.sample_rate,
                              start, scheduler, protection[0].payload if protection is not None else None)
    stock: StockRecorder | None = None
    recv_tap: RtpReceiveTap | None = None
    send_tap: RtpSendTap | None = None
    first_rx: list[float] = []

    watch_connection(caller, mark, connected)
    # media waits for the callee too: the DTLS server is up one flight before the client, and when
    # that last flight is lost the client has no SRTP keys until it retransmits (1 s later), so media
    # sent meanwhile is dropped by the receiver, not by the link (issue 13, seed 1 of sfu-10pct-loss)
    callee_connected: asyncio.Future[None] = loop.create_future()
    callee_connected.add_done_callback(lambda f: f.cancelled() or f.exception())
    watch_connection(callee, lambda name: mark(f"callee_{name}"), callee_connected)

    @callee.on("track")
    def _track(remote: Any) -> None:
        nonlocal stock
        stock = StockRecorder(remote)

    try:
        from aiortc import RTCSessionDescription

        with advertised(cfg, protection is not None):
            caller.addTransceiver(track, direction="sendonly")
            restrict_ip_version(caller, ip_version)
            # aiortc gathers every host candidate inside setLocalDescription (no trickle ICE): the
            # offer below is complete when this returns
            await caller.setLocalDescription(await caller.createOffer())
        mark("offer_ready")
        if emu is not None:
            emu.attach_peer(caller, egress="up")
            from translab.transport.signalling import post_offer

            stage = ["TCP connect"]

            async def exchange() -> dict[str, Any]:
                sock, t_tcp = await relay.connect(connect_timeout_s)
                mark("tcp_connected", t_tcp)
                stage[0] = "TLS handshake" if client_ssl is not None else "HTTP POST of the offer"

                def ready() -> None:
                    mark("tls_done")
                    stage[0] = "HTTP POST of the offer"

                return await post_offer(
                    sock, {"sdp": caller.localDescription.sdp, "type": "offer"},
                    host=f"localhost:{signalling.address[1]}", timeout_s=connect_timeout_s,
                    ssl_context=client_ssl, server_hostname="localhost",
                    on_connected=ready if client_ssl is not None else None)

            try:  # one deadline for the whole exchange; ICE + DTLS then get their own
                answer = await asyncio.wait_for(exchange(), connect_timeout_s)
            except asyncio.TimeoutError:
                return rec.fail(f"signalling not done within {connect_timeout_s:g} s (stuck in {stage[0]} "
                                "over the emulated TCP path)")
            except (ConnectionError, OSError, ssl.SSLError) as err:
                return rec.fail(f"signalling failed in {stage[0]}: {type(err).__name__} {err}".strip())
            mark("answer_received")
            answer_desc = RTCSessionDescription(sdp=answer["sdp"], type="answer")
        else:  # no emulated path (netns backend, tests): offer/answer exchanged in this process
            with advertised(cfg, protection is not None):
                await callee.setRemoteDescription(caller.localDescription)
                restrict_ip_version(callee, ip_version)
                await callee.setLocalDescription(await callee.createAnswer())
            answer_desc = callee.localDescription
        rec.extra["sdp_offer_opus_fmtp"] = _fmtp_line(caller.localDescription.sdp)
        rec.extra["sdp_answer_opus_fmtp"] = _fmtp_line(answer_desc.sdp)
        if protection is not None:
            rec.extra["sdp_offer_protection"] = _protection_lines(caller.localDescription.sdp)
            rec.extra["sdp_answer_protection"] = _protection_lines(answer_desc.sdp)
        with advertised(cfg, protection is not None):
            await caller.setRemoteDescription(answer_desc)
        mark("signalling_done")
        sender = caller.getSenders()[0]

        def rtt() -> float | None:
            return send_tap.last_rtt_s  # the latest receiver report's RTT sample (s)

        red = bool(getattr(cfg, "red", 0)) and protection is not None
        # a protected call's protocol timing uses wire times (WireTimes) where the path has them
        wire = WireTimes() if protection is not None and emu is not None else None
        if wire is not None and not wire.attach(emu):
            wire = None
        tx_clock = wire.receiving(sender.transport.transport) if wire is not None else now
        rx_clock = wire.receiving(callee.getReceivers()[0].transport.transport) if wire is not None else now
        reaction_s = REACTION_S if wire is not None else None

        def launch(k: int) -> float | None:  # media on the capture grid (translab.protection.timing)
            if wire is None or not start.done() or k >= len(stream.capture_s):
                return None
            return start.result() + float(stream.capture_s[k])

        if wire is not None:
            track.lead_s = ENCODE_LEAD_S
        send_tap = RtpSendTap(sender.transport, protection[0] if protection else None, red, rtt, tx_clock,
                              launch, reaction_s)
        if protection is not None:
            send_tap.attach_sender(sender)
            send_tap.on_rtt = protection[1].on_rtt  # the receiver's NACK rule from the first sample, as simulated

        def on_rx(seq: int, ts: int, t: float, payload: bytes) -> None:
            if not first_rx:
                first_rx.append(t)
                mark("first_rtp_received")

        def media_clock() -> tuple[float, int]:
            if not send_tap.sent:
                return rec.t0, 0
            ts_scale = RTP_CLOCK / int(stream.sample_rate)
            return rec.t0, (send_tap.sent[0][1] - int(round(int(stream.media_ts[0]) * ts_scale))) & 0xFFFFFFFF

        recv_tap = RtpReceiveTap(callee.getReceivers()[0], on_rx, protection[1] if protection else None,
                                 red, rtt, media_clock, rx_clock, reaction_s)
        if protection is not None:  # RTCP on the seeded schedule the simulator shares
            seeded_rtcp(sender, callee.getReceivers()[0], send_tap, RtcpSchedule(int(getattr(cfg, "seed", 0))),
                        start, scheduler, protection[1].report_sent, wire, rx_clock)
        both = asyncio.gather(connected, callee_connected)
        both.add_done_callback(lambda f: f.cancelled() or f.exception())  # a failure after a timeout
        try:
            await asyncio.wait_for(asyncio.shield(both), connect_timeout_s)
        except asyncio.TimeoutError:
            return rec.fail(f"not connected within {connect_timeout_s:g} s "
                            f"(ICE {caller.iceConnectionState}, connection {caller.connectionState}; "
                            f"callee's connection {callee.connectionState})")
        except ConnectionError as err:
            return rec.fail(str(err))
        # media: the call clock starts a little after connection
        t0 = now() + start_delay_s
        rec.t0 = t0
        send_tap.t0 = t0
        if emu is not None:
            emu.set_media_origin(t0)
            if protection is not None:
                route_rtcp(emu, int(getattr(cfg, "seed", 0)), t0)
        start.set_result(t0)
        end = t0 + float(stream.capture_s[-1]) if len(stream.capture_s) else t0
        while now() < end:
            await asyncio.sleep(min(1.0, max(0.0, end - now())))
            if progress is not None:
                progress(min(1.0, (now() - t0) / max(end - t0, 1e-9)))
            if caller.connectionState in ("failed", "closed"):
                rec.fail(f"connection {caller.connectionState} during media")
                break
        await asyncio.sleep(drain_s)
        if send_tap.sent:
            rec.setup_ms["first_rtp_sent"] = (send_tap.sent[0][2] - t_start) * 1e3
        if stock is not None and stock.frames:
            rec.setup_ms["first_stock_frame"] = (stock.frames[0][0] - t_start) * 1e3
        rec.extra["setup_t0_ms"] = (t0 - t_start) * 1e3
        if wire is not None:  # the host against its launch times
            late = [x for link in emu.udp.values() for x in link.late_launches_s]
            rec.extra["host_late_launches"] = len(late)
            rec.extra["host_launch_late_max_ms"] = 1e3 * max(late, default=0.0)
        rec.extra.update(rtc_stats(await caller.getStats(), "rtc_caller"))
        rec.extra.update(rtc_stats(await callee.getStats(), "rtc_callee"))
        _fill(rec, stream, send_tap, recv_tap, stock)
        return rec
    except asyncio.CancelledError:
        rec.fail("cancelled")
        raise
    finally:
        if not start.done():
            start.cancel()
        if stock is not None:
            await stock.stop()
        track.stop()
        await asyncio.gather(caller.close(), callee.close(), return_exceptions=True)
        if signalling is not None:
            await signalling.close()


async def _start_signalling(callee: Any, cfg: Any, emu: Any, ip_version: int,
                            protected: bool = False) -> tuple[Any, Any, Any]:
    """The callee's HTTP(S) signalling endpoint (:class:`translab.transport.signalling.SignallingServer`
    on loopback, ``POST /offer`` with JSON ``{sdp, type}``) behind a TCP relay of ``emu``, so the
    caller's POST and the answer cross the emulated TCP path. HTTPS when ``cfg.tls`` (a voice
    endpoint serves its offer URL over TLS, as it serves wss). Returns (server, relay, the client's
    TLS context or None). Answering attaches the callee's sockets to the "down" link."""
    from aiortc import RTCSessionDescription

    from translab.transport.signalling import SignallingServer

    async def on_offer(sdp: str) -> str:
        with advertised(cfg, protected):
            try:
                await callee.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as err:  # aiortc raises several kinds for an SDP it cannot use
                raise ValueError(str(err)) from None
            restrict_ip_version(callee, ip_version)
            await callee.setLocalDescription(await callee.createAnswer())
        emu.attach_peer(callee, egress="down")
        return str(callee.localDescription.sdp)

    server_ssl = client_ssl = None
    if bool(getattr(cfg, "tls", False)):
        from translab.transport.tls import self_signed_contexts

        server_ssl, client_ssl = self_signed_contexts()
    server = SignallingServer(on_offer, ssl_context=server_ssl)
    target = await server.start()
    try:
        relay = await emu.tcp_relay(target)
    except BaseException:
        await server.close()
        raise
    return server, relay, client_ssl


def _protection_lines(sdp: str) -> str:
    """The SDP lines that negotiate protection (rtcp-fb, rtx, red, ssrc-group), joined by " | "."""
    keep = ("a=rtcp-fb:", "a=ssrc-group:", f"a=rtpmap:{RTX_PT} ", f"a=fmtp:{RTX_PT} ",
            f"a=rtpmap:{RED_PT} ", f"a=fmtp:{RED_PT} ")
    return " | ".join(line for line in sdp.splitlines() if line.startswith(keep))


def _fmtp_line(sdp: str) -> str:
    for line in sdp.splitlines():
        if line.startswith("a=fmtp:96"):
            return line
    return ""


def _fill(rec: LegRecord, stream: Any, send_tap: RtpSendTap, recv_tap: RtpReceiveTap,
          stock: StockRecorder | None) -> None:
    """Map RTP sequence numbers back to the stream's packets (k-th media RTP sent = packet k)."""
    t0 = rec.t0
    by_rtp: dict[int, int] = {}
    for k, (rseq, rts, t, size) in enumerate(send_tap.sent[: len(stream.seq)]):
        by_rtp[rseq] = k
        rec.send_s[k] = t - t0
        rec.wire_bytes[k] = size
    for rseq, k in by_rtp.items():
        if rseq in send_tap.payloads:
            rec.sent_payload[k] = send_tap.payloads[rseq]
    mismatches = 0
    for rseq, rts, t, payload in recv_tap.received:
        k = by_rtp.get(rseq)
        if k is not None:
            rec.arrivals.setdefault(k, []).append(t - t0)
            mismatches += payload != rec.sent_payload.get(k, stream.payload[k])
    arrived: dict[int, float] = {}
    for rtx_seq, osn, t, payload in recv_tap.rtx_received:
        arrived[rtx_seq] = min(arrived.get(rtx_seq, t), t)
        k = by_rtp.get(osn)
        mismatches += k is None or payload != rec.sent_payload.get(k, stream.payload[k])
    for rtx_seq, osn, t, payload in send_tap.rtx_sent:
        k = by_rtp.get(osn)
        if k is not None:
            rec.rtx.append((k, t - t0, arrived.get(rtx_seq, float("nan")) - t0, payload))
    rec.extra["rtp_payload_mismatches"] = int(mismatches)
    if recv_tap.host_lag_s:  # wire-stamped arrivals
        lag_ms = 1e3 * np.asarray(recv_tap.host_lag_s)
        rec.extra["host_rx_lag_p50_ms"] = float(np.percentile(lag_ms, 50))
        rec.extra["host_rx_lag_p99_ms"] = float(np.percentile(lag_ms, 99))
    rec.extra["rtp_packets_sent"] = len(send_tap.sent)
    rec.extra["rtp_packets_received"] = len(recv_tap.received)
    if send_tap.rtx_sent or recv_tap.nacks_sent:
        rec.extra.update(rtp_nacks_sent=recv_tap.nacks_sent, rtp_nacks_received=send_tap.nacks_received,
                         rtp_rtx_sent=len(send_tap.rtx_sent), rtp_rtx_received=len(recv_tap.rtx_received))
    if stock is not None and stock.frames and send_tap.sent and recv_tap.received:
        rate = int(stream.sample_rate)
        origin = send_tap.sent[0][1] - int(stream.media_ts[0]) * RTP_CLOCK // rate
        first_rx_ts = recv_tap.received[0][1]
        shift = (first_rx_ts - origin) & 0xFFFFFFFF
        rec.stock_frames = [(t - t0, int(pts) + shift, n) for t, pts, n in stock.frames]
        rec.stock_audio = stock.audio()
