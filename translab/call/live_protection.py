"""Loss protection on the in-process live WebRTC call (issue 13): which options a live engine
carries, the sender / receiver decisions it hands the transport
(:mod:`translab.protection.endpoint`, driven by :func:`translab.transport.webrtc.webrtc_call`), and
the arrival trace of a protected live leg in the schema of the simulator's
(:func:`translab.protection.sim.protected_trace`): one row per RTP packet on the wire, originals with
the payload as sent (RED-wrapped when asked) and retransmissions as extra rows (``rtx`` True, RFC 4588
payload, ``seq`` = the original's). The analysis (playout, ``rtx_recovered`` / ``red_recovered``,
effective loss) is then the same code for both.

Live NACK + RTX, RED, measured-loss FEC and ABR (the sender then encodes during the call) run on
the in-process engine (``translab call``); every protection option is refused by name on the other
live engines. Live ABR is driven by what the live sender observes, aiortc's RTCP receiver reports
(loss fraction, packets covered, RTT), so it needs ``abr_feedback = "rr"`` (aiortc's audio path has
no transport-wide CC, the per-packet feedback of the simulator's default "twcc" mode), and keeps
the call's frame length (aiortc packetises at a fixed length).

Live against simulated: the originals cross the uplink with the simulator's draws and
retransmissions with its side streams (:meth:`translab.emulate.emulator.LiveEmulator.route_retransmissions`);
the RTCP reports of a protected call (SR, RR, NACK) follow the seeded schedule and rules of
:mod:`translab.protection.rtcp` (:func:`translab.transport.webrtc.seeded_rtcp`) and cross the links
with the simulator's RTCP draws (:func:`translab.transport.webrtc.route_rtcp`), so with
``abr_feedback = "rr"`` the simulator sends the same reports. Timing is made the simulator's on both
sides of the host:

- what the endpoints *read* is wire time (:class:`translab.transport.webrtc.WireTimes`), as libwebrtc
  stamps packets on receipt from the socket: packet arrivals (NACK tracker, adaptive buffer, the NACK
  rule's target), the SR arrival behind DLSR, the RR arrival and SR send behind the RTT;
- what they *send* enters the wire at the simulator's time (:mod:`translab.protection.timing`,
  :func:`translab.emulate.datagram.launch_at`): media on the capture grid, each NACK, retransmission
  and report ``REACTION_S`` (3 ms) after its cause. The host's Python work (about 0.5 ms from a
  packet's capture to the link, 0.8 ms for a NACK, 0.7 ms for a retransmission, medians) happens
  inside that time; a datagram handed over late still leaves at once and is counted
  (``host_late_launches``, ``host_launch_late_max_ms``);
- the wire sizes are the header model's (AEAD-GCM's 16 B SRTP tag, which aiortc negotiates), so the
  capacity stages serialise each datagram for as long in both.

Why it matters: the adaptive buffer times arrivals on NetEq's 10 ms tick and the NACK rule waits for a
retransmission only while the time to play exceeds the RTT, so with NACK a millisecond moves which
packets are recovered. Before the launch times, the host's ~2 ms on the NACK loop put live loss after
recovery up to 1.3 points away from the simulation's (sfu-10pct-loss, seeds 1-6; the simulation alone
moved by as much with its arrivals shifted by 0.5 ms); with the RTCP sizes 6 B short, the RTT sample
was 12 us off, enough to flip one NACK decision on seed 6. The measured agreement is in the README.
In the default "twcc" mode the simulator's feedback is a transport-cc-like report every 100 ms, so
its RTT samples and NACK decisions differ from a live call's by construction. ``feedback_kbps_down`` counts the NACKs and
receiver reports, live as in the simulator's rr mode (in "twcc" mode the simulator's 100 ms reports).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from translab import trace as trace_mod
from translab.call.prepare import trace_attrs
from translab.config import CallConfig
from translab.errors import ConfigError
from translab.media.stream import SenderStream
from translab.metrics.bandwidth import HeaderModel, rtp_wire_bytes
from translab.media import pcm
from translab.media.audio import to_int16
from translab.media.opus import packet_has_fec
from translab.protection.abr import AudioNetworkAdaptor
from translab.protection.endpoint import LiveEncoder, ProtectedReceiver, ProtectedSender
from translab.protection.red import decode_red
from translab.protection.sim import ProtectionOptions, abr_frame_lengths
from translab.transport.record import LegRecord

#: protection options the in-process live engine carries
LIVE_OPTIONS: tuple[str, ...] = ("nack", "red", "fec_loss", "abr")


def refuse_live(cfg: CallConfig, engine: str, supported: tuple[str, ...] = ()) -> None:
    """ConfigError naming the first protection option ``cfg`` asks for that ``engine`` (a live
    engine) does not carry (``supported``: the ones it does)."""
    opts = ProtectionOptions.of(cfg)
    asked: list[tuple[str, Any]] = []
    if opts.nack:
        asked.append(("nack", True))
    if opts.red:
        asked.append(("red", opts.red))
    if opts.abr:
        asked.append(("abr", True))
    if opts.fec_measured:
        asked.append(("fec_loss", "measured"))
    for name, value in asked:
        if name in supported:
            continue
        allowed = (f"off for the {engine} engine (live NACK/RTX, RED, fec_loss=measured and abr run on the "
                   "in-process engine, translab call; every option in simulated calls)")
        raise ConfigError(name, value, allowed)
    if opts.abr and "abr" in supported and cfg.abr_feedback != "rr":
        raise ConfigError("abr_feedback", cfg.abr_feedback, "rr with abr on live calls (the live sender gets "
                          "RTCP receiver reports only: aiortc's audio path has no transport-wide CC)")
    if (opts.fec_measured and "fec_loss" in supported or opts.abr and "abr" in supported) and cfg.dtx:
        name = "fec_loss = \"measured\"" if opts.fec_measured else "abr"
        raise ConfigError("dtx", True, f"off with {name} on live calls (the sender encodes during the call "
                          "and sends every frame)")


def endpoints(cfg: CallConfig, reference: np.ndarray) -> tuple[ProtectedSender, ProtectedReceiver]:
    """The sender's and receiver's protection for a resolved ``cfg`` (NACK, RED and measured-loss
    FEC or ABR as asked; ``reference``: the clip as encoded, float32, for encoding during the call)."""
    assert cfg.sample_rate is not None
    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    encoder = None
    if cfg.codec == "opus" and (cfg.abr or cfg.fec_loss == "measured" and cfg.fec):
        frames = pcm.split_frames(to_int16(reference), int(cfg.sample_rate), cfg.frame_ms)
        adaptor = None
        if cfg.abr:  # as the simulator's (translab.protection.sim), at the call's frame length only
            frame_ms = int(cfg.frame_ms) if float(cfg.frame_ms).is_integer() else 20
            adaptor = AudioNetworkAdaptor(int(cfg.bitrate), frame_ms, rtp_wire_bytes(0, hm), fec=bool(cfg.fec),
                                          frame_lengths_ms=abr_frame_lengths(cfg))
        encoder = LiveEncoder(frames, int(cfg.sample_rate), float(cfg.frame_ms), int(cfg.bitrate),
                              int(cfg.complexity), adaptor)
    return (ProtectedSender(int(cfg.red or 0), encoder=encoder),
            ProtectedReceiver(int(cfg.sample_rate), float(cfg.frame_ms) / 1000.0, cfg.playout, bool(cfg.nack),
                              hm=hm))


def protected_leg_trace(cfg: CallConfig, stream: SenderStream, rec: LegRecord,
                        receiver: ProtectedReceiver, sender: ProtectedSender | None = None) -> pd.DataFrame:
    """The arrival trace of a protected live leg (see the module docstring). Wire bytes follow the
    config's header model, as the simulator's; a packet never sent (call ended early) keeps
    ``send_s = capture_s`` and is lost."""
    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    red = bool(cfg.red)
    cols: dict[str, list[Any]] = {c: [] for c in trace_mod.COLUMNS}
    rtx: list[bool] = []
    codec: list[int] = []
    fec: list[bool] = []

    def add(k: int, send_s: float, arrival_s: float, msg: bytes, dups: int, is_rtx: bool) -> None:
        cols["seq"].append(int(stream.seq[k]))
        cols["media_ts"].append(int(stream.media_ts[k]))
        cols["frame_samples"].append(int(stream.frame_samples[k]))
        cols["capture_s"].append(float(stream.capture_s[k]))
        cols["send_s"].append(send_s)
        cols["arrival_s"].append(arrival_s)
        cols["payload_bytes"].append(codec[k])
        cols["message_bytes"].append(len(msg))
        cols["wire_bytes"].append(rtp_wire_bytes(len(msg), hm))
        cols["transport"].append("webrtc")
        cols["direction"].append("up")
        cols["fec"].append(fec[k])
        cols["duplicates"].append(dups)
        cols["payload"].append(msg)
        rtx.append(is_rtx)

    for k in range(len(stream.seq)):  # codec bytes and FEC of what was sent (encoded live or not)
        msg = rec.sent_payload.get(k, stream.payload[k])
        blocks = [b.data for b in decode_red(msg)] if red and k in rec.sent_payload else [msg]
        codec.append(sum(len(b) for b in blocks))
        fec.append(packet_has_fec(blocks[-1]) if blocks[-1] else False)
    for k in range(len(stream.seq)):
        msg = rec.sent_payload.get(k, stream.payload[k])
        send = rec.send_s.get(k, float(stream.capture_s[k]))
        times = rec.arrivals.get(k, [])
        add(k, send, max(min(times), send) if times else math.nan, msg, max(len(times) - 1, 0), False)
    for k, send, arrival, payload in rec.rtx:
        add(k, send, max(arrival, send) if arrival == arrival else math.nan, payload, 0, True)
    order = sorted(range(len(rtx)), key=lambda i: (cols["send_s"][i], rtx[i]))
    attrs = trace_attrs(cfg, stream, "live")
    attrs["protection"] = {
        "nack": bool(cfg.nack), "red": int(cfg.red or 0), "abr": bool(cfg.abr),
        "fec_measured": bool(cfg.fec_loss == "measured" and sender is not None and sender.encoder is not None),
        "nack_sent": receiver.nack_sent, "nack_seqs": receiver.nack_seqs,
        "feedback_bytes": receiver.nack_bytes + receiver.rr_bytes, "min_target_ms": receiver.min_target_ms,
        "timeline": [list(x) for x in sender.encoder.timeline] if sender is not None and sender.encoder else [],
    }
    first = sender.first_seq16 if sender is not None and sender.first_seq16 is not None else 0
    # the receiver reports, highest sequence number as the stream's (0 = first packet sent)
    attrs["protection"]["rtcp_rr"] = [[t, fl, (h - first) & 0xFFFF, answer] for t, fl, h, answer in receiver.rr_log]
    df = trace_mod.make_trace({c: [v[i] for i in order] for c, v in cols.items()}, attrs)
    df["rtx"] = np.asarray([rtx[i] for i in order], dtype=bool)
    return df
