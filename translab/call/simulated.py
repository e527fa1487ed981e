"""The simulated engine: the uplink through the profile's link models in simulated time, faster than
real time. Same config and seed give byte-identical output."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from translab.call.engine import ClipEngine
from translab.call.prepare import PreparedCall, stream_trace, trace_attrs, wire_bytes
from translab.call.record import CallRecord
from translab.link.profiles import direction_rngs, load_profile
from translab.link.tcp import TcpDeliveryModel
from translab.metrics.bandwidth import HeaderModel, ws_tcp_payload_bytes
from translab.protection.sim import protected_trace


class SimulatedEngine(ClipEngine):
    """WebRTC: each RTP packet is one datagram through the uplink model. WebSocket: the messages are
    one TCP byte stream through the TCP delivery model over the uplink model (ACKs return over the
    downlink model)."""

    name = "simulated"
    mode = "simulate"

    def run(self, call: PreparedCall, out_dir: Path | None = None) -> CallRecord:
        cfg, stream = call.cfg, call.stream
        assert stream is not None
        if cfg.nack or cfg.red or cfg.abr or cfg.fec_loss != "fixed":  # a closed loop (translab.protection.sim)
            hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
            trace, _ = protected_trace(cfg, stream, hm, trace_attrs(cfg, stream, "simulate"))
            return CallRecord(trace=trace, figures={"dtx_skipped": stream.dtx_skipped})
        profile = load_profile(cfg.profile)
        rngs = direction_rngs(cfg.seed)
        send_s = stream.capture_s.astype(float)
        n = len(send_s)
        wire = wire_bytes(cfg, stream.message_bytes)
        retransmissions: int | None = None
        acks: int | None = None
        if cfg.transport == "webrtc":
            idx, arr = profile.chain("up").apply(send_s, wire, rngs["up"])
            arrival = np.full(n, np.nan)
            copies = np.bincount(idx, minlength=n) if len(idx) else np.zeros(n, int)
            if len(idx):
                order = np.lexsort((arr, idx))  # first (earliest) copy of each packet
                first = np.ones(len(order), dtype=bool)
                first[1:] = idx[order][1:] != idx[order][:-1]
                arrival[idx[order][first]] = arr[order][first]
            duplicates = np.maximum(copies - 1, 0)
        else:
            hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
            tcp_bytes = np.array([ws_tcp_payload_bytes(int(b), True, hm) for b in stream.message_bytes],
                                 dtype=np.int64)
            assert hm.mss is not None  # filled in by HeaderModel
            model = TcpDeliveryModel(profile.chain("up"), profile.chain("down"), mss=hm.mss)
            res = model.deliver(send_s, tcp_bytes, rngs["up"], rngs["down"])
            arrival = np.asarray(res.delivered_s, dtype=float)
            duplicates = np.zeros(n, dtype=np.int64)
            retransmissions, acks = int(res.retransmissions), int(res.acks)
        trace = stream_trace(cfg, stream, send_s=send_s, arrival_s=arrival, wire_bytes=wire,
                             duplicates=duplicates, mode="simulate")
        return CallRecord(trace=trace, figures={"dtx_skipped": stream.dtx_skipped},
                          tcp_retransmissions=retransmissions, tcp_acks=acks)
