"""The in-process live engine: the same clip, encoder and framing as the simulator, carried by a
real transport (aiortc WebRTC or websockets) in real time through the in-process live emulator,
whose link models are the profile's, seeded like the simulator's. A call that cannot connect ends
within ``connect_timeout_s`` with ``status == "failed"`` and a ``reason``; every peer, socket, task
and timer it opened is closed before it returns."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import pandas as pd

from translab.call.engine import ClipEngine
from translab.call.live_protection import LIVE_OPTIONS, endpoints, protected_leg_trace
from translab.call.prepare import PreparedCall, stream_trace, wire_bytes
from translab.call.record import CallRecord, StockOutput
from translab.config import CallConfig
from translab.emulate.realtime import RT_PRIORITY, LoopLagMonitor, realtime_mode
from translab.media.stream import SenderStream
from translab.protection.endpoint import ProtectedReceiver, ProtectedSender
from translab.transport.record import LegRecord

T = TypeVar("T")


def run_outside_event_loop(fn: Callable[[], T]) -> T:
    """``fn()``, in a helper thread when this thread already runs an asyncio loop (Jupyter), because
    a live call starts its own loop with ``asyncio.run``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="translab-live") as ex:
        return ex.submit(fn).result()


def leg_trace(cfg: CallConfig, stream: SenderStream, rec: LegRecord) -> pd.DataFrame:
    """The arrival trace of a live leg: one row per packet of ``stream``; a packet that was never
    sent (call ended early) keeps ``send_s = capture_s`` and is lost. ``wire_bytes`` follow the
    same header model as the simulator (the emulator's real counts are in the ``emu_*`` columns)."""
    n = len(stream.seq)
    send = np.array([rec.send_s.get(k, float(stream.capture_s[k])) for k in range(n)], dtype=float)
    arrival = np.full(n, np.nan)
    dups = np.zeros(n, dtype=np.int64)
    for k, times in rec.arrivals.items():
        if 0 <= k < n and times:
            arrival[k] = max(min(times), send[k])
            dups[k] = len(times) - 1
    return stream_trace(cfg, stream, send_s=send, arrival_s=arrival,
                        wire_bytes=wire_bytes(cfg, stream.message_bytes), duplicates=dups, mode="live")


def leg_record(call: PreparedCall, rec: LegRecord, figures: dict[str, Any],
               protection: tuple[ProtectedSender, ProtectedReceiver] | None = None) -> CallRecord:
    """A transport leg's raw timings as a CallRecord: the trace, milestones, aiortc's own output,
    the sender's lateness and echo round trips, and ``figures`` (the engine's counters).
    ``protection``: the protected sender and receiver of a call with NACK / RED / measured FEC / ABR (its
    trace then has the protected schema, :func:`translab.call.live_protection.protected_leg_trace`)."""
    cfg, stream = call.cfg, call.stream
    assert stream is not None
    extra = dict(rec.extra)
    media_start_ms = float(extra.pop("setup_t0_ms", math.nan))
    figures = {"dtx_skipped": stream.dtx_skipped, **figures}
    send_late = [rec.send_s[k] - float(stream.capture_s[k]) for k in rec.send_s]
    if send_late:
        figures["send_late_p50_ms"] = float(np.percentile(send_late, 50)) * 1e3
        figures["send_late_p99_ms"] = float(np.percentile(send_late, 99)) * 1e3
    figures.update(extra)
    if rec.echo_rtt_s:
        rtt = np.asarray(rec.echo_rtt_s) * 1e3
        figures.update({"echo_rtt_p50_ms": float(np.percentile(rtt, 50)),
                        "echo_rtt_p95_ms": float(np.percentile(rtt, 95)), "echo_messages": int(len(rtt))})
    stock = None
    if rec.stock_frames:
        audio = np.asarray(rec.stock_audio, dtype=np.float32) if rec.stock_audio is not None else None
        stock = StockOutput(frames=list(rec.stock_frames), audio=audio)
    trace = (protected_leg_trace(cfg, stream, rec, protection[1], protection[0]) if protection is not None
             else leg_trace(cfg, stream, rec))
    return CallRecord(trace=trace, status=rec.status, reason=rec.reason,
                      setup_ms=dict(rec.setup_ms), media_start_ms=media_start_ms, stock=stock,
                      figures=figures)


@dataclass
class LiveEngine(ClipEngine):
    """Real aiortc or websockets through the in-process emulator, in real time.

    ``pcap``: path to write forwarded packets; ``connect_timeout_s`` (s); ``drain_s`` (s to wait for
    stragglers after the last packet); ``progress(fraction)``; ``chain_factory(direction)`` (link
    models overriding the profile); ``control`` ("separate"/"shared", see translab.emulate.datagram);
    ``echo`` (WebSocket: server echoes audio, round trips in the row); ``realtime`` (SCHED_RR, see
    :func:`translab.emulate.realtime.realtime_mode`); ``deflate`` (WebSocket permessage-deflate)."""

    pcap: str | Path | None = None
    connect_timeout_s: float = 10.0
    drain_s: float = 1.0
    progress: Callable[[float], None] | None = None
    chain_factory: Callable[[str], Any] | None = None
    control: str = "separate"
    echo: bool = False
    realtime: bool = False
    deflate: bool = False
    name = "live"
    mode = "live"
    live_protection = LIVE_OPTIONS

    def run(self, call: PreparedCall, out_dir: Path | None = None) -> CallRecord:
        return run_outside_event_loop(lambda: asyncio.run(self.run_async(call)))

    async def run_async(self, call: PreparedCall) -> CallRecord:
        """The call in the running event loop."""
        from translab.emulate.emulator import LiveEmulator

        cfg, stream = call.cfg, call.stream
        emu = LiveEmulator(cfg.profile, cfg.seed, chain_factory=self.chain_factory, control=self.control,
                           pcap=self.pcap, ip_version=cfg.ip_version)
        with realtime_mode(rt_priority=RT_PRIORITY if self.realtime else None) as rt_state:
            await emu.start()
            monitor = LoopLagMonitor()
            protection = None
            try:
                if cfg.transport == "webrtc":
                    from translab.transport.webrtc import RTX_PT, webrtc_call

                    if cfg.nack or cfg.red or cfg.abr or cfg.fec_loss == "measured":  # issue 13 on the live path
                        protection = endpoints(cfg, call.reference)
                        if cfg.nack:
                            emu.route_retransmissions(RTX_PT)
                    rec = await webrtc_call(stream, cfg, emu, connect_timeout_s=self.connect_timeout_s,
                                            drain_s=self.drain_s, progress=self.progress,
                                            protection=protection)
                else:
                    from translab.transport.websocket import websocket_call

                    rec = await websocket_call(stream, cfg, emu, connect_timeout_s=self.connect_timeout_s,
                                               drain_s=self.drain_s, progress=self.progress,
                                               echo=self.echo, deflate=self.deflate)
            finally:
                host = await monitor.stop()
                await emu.close()
        figures: dict[str, Any] = {**host, **rt_state}
        if cfg.transport == "websocket":
            figures["ws_deflate"] = bool(self.deflate)
        figures.update(emu.report())
        return leg_record(call, rec, figures, protection)
