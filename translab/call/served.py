"""Served calls: the receiving side on its own (``translab serve``): a WebSocket endpoint and a WebRTC answerer
behind HTTP signalling, both behind the live emulator, so clients outside translab (a browser, a
user's own voice pipeline) can call in and be measured.

* WebSocket: clients connect to ``ws://HOST:WS_PORT/?framing=...&codec=...&rate=...&frame_ms=...``
  (see :meth:`translab.transport.websocket.StreamSpec.from_path`); the port is a
  :class:`~translab.emulate.tcp_relay.TcpRelay` whose byte stream crosses the profile's TCP model,
  in front of a :class:`~translab.transport.websocket.VoiceServer`.
* WebRTC: ``POST http://HOST:HTTP_PORT/offer`` with an SDP offer (aiortc answers; host candidates
  only); incoming datagrams cross the "up" link, outgoing ones the "down" link.

Each call that ends (WebSocket closed; WebRTC closed, failed or silent for ``inactivity_s``) gets
a directory ``OUT/<transport>-<n>/`` with trace.parquet, output.wav and summary.json (mode=live).

The caller's clock is not known here, so the arrival trace uses a receiver-estimated clock: capture
times follow the media timestamps, offset so that the earliest packet took 0 s to arrive
(WebSocket) or so that it was captured when it entered the emulator (WebRTC, where the emulator
sees each SRTP packet's sequence number in the clear). Network and mouth-to-ear figures of served
calls are therefore relative to the fastest packet (``attrs["clock"] = "receiver-estimated"``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from translab import trace as trace_mod
from translab.call.artefacts import write_summary
from translab.call.engine import run_call
from translab.call.prepare import EXTERNAL_CLIP, PreparedCall, trace_attrs, wire_bytes
from translab.call.record import CallRecord
from translab.config import OPUS_FRAME_MS, PCM_FRAME_MS, CallConfig
from translab.emulate.scheduler import now
from translab.errors import TranslabError

__all__ = ["ServeConfig", "ServedEngine", "TranslabServer", "rtp_trace_rows", "ws_trace_rows"]



@dataclass
class ServedEngine:
    """The engine of a call received by ``translab serve``: the caller is outside translab, so the
    engine starts from the arrival-trace columns the server recorded (``cols``: seq, media_ts,
    frame_samples, capture_s, send_s, arrival_s, payload_bytes, message_bytes, duplicates, payload,
    on the receiver-estimated clock), not from a clip. ``frame_ms`` is the measured frame length (ms);
    ``figures`` go into the row's transport group. There is no reference audio, so the quality
    metrics are off (``metrics=()``)."""

    cols: dict[str, Any]
    frame_ms: float
    figures: dict[str, Any] = field(default_factory=dict)
    #: the caller's audio when it is known (a browser peer playing a clip): float32 at the call's rate
    reference: np.ndarray | None = None
    name = "served"
    mode = "live"

    def prepare(self, cfg: CallConfig) -> PreparedCall:
        cfg = cfg.resolved()
        rate = int(cfg.sample_rate or 48000)
        if self.reference is not None:
            return PreparedCall(cfg, np.asarray(self.reference, dtype=np.float32), None)
        duration = float(np.sum(self.cols["frame_samples"])) / rate
        return PreparedCall(cfg, np.zeros(int(duration * rate), dtype=np.float32), None)

    def run(self, call: PreparedCall, out_dir: Path | None = None) -> CallRecord:
        cfg, cols = call.cfg, self.cols
        n = len(cols["seq"])
        rows = {**cols, "wire_bytes": wire_bytes(cfg, cols["message_bytes"]), "transport": [cfg.transport] * n,
                "direction": ["up"] * n, "fec": np.zeros(n, dtype=bool)}
        # the caller's encoder is not ours: frame length as received, its bitrate unknown
        attrs = {**trace_attrs(cfg, None, "live"), "frame_ms": self.frame_ms, "bitrate_bps": None,
                 "clock": "receiver-estimated"}
        return CallRecord(trace=trace_mod.make_trace(rows, attrs), figures=dict(self.figures))


@dataclass
class ServeConfig:
    """Where to listen and how to emulate. Ports 0 = any free port. Times in seconds."""

    host: str = "127.0.0.1"
    http_port: int = 8080
    ws_port: int = 8765
    profile: str = "clean-lan"
    seed: int = 7
    playout: str = "adaptive"
    out_dir: Path = field(default_factory=lambda: Path("results/serve"))
    pcap: Path | None = None
    tls: bool = False
    echo: bool = False
    inactivity_s: float = 5.0
    #: what the WebRTC answerer sends back: "none", "echo" (the caller's own audio, re-encoded by
    #: aiortc) or "clip" (``reply_stream``: packets encoded by translab, see translab.transport.reply)
    reply: str = "none"
    #: the SenderStream a "clip" reply sends (translab.simulate.prepare_call makes one)
    reply_stream: Any = None
    #: Opus fmtp parameters the answer advertises (translab.transport.webrtc.opus_fmtp), or None
    reply_fmtp: dict[str, Any] | None = None
    #: origins allowed to call /offer from a browser besides loopback ones (see signalling.py)
    allow_origins: tuple[str, ...] = ()
    #: when the caller's audio is known (a browser peer whose fake microphone plays a clip): the
    #: reference (float32, 48 kHz) WebRTC calls are scored against, its name, and the metrics
    caller_reference: Any = None
    caller_clip: str = EXTERNAL_CLIP
    metrics: tuple[str, ...] = ()
    #: False: a finished WebRTC call is not analysed here; its uplink trace columns are kept in
    #: ``rtc_done[id]["up"]`` (cols, frame_ms, figures) for the engine that owns the call (the browser peer)
    analyse_calls: bool = True


def _unwrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Unwrap a wrapping counter (16-bit RTP sequence, 32-bit timestamp) into int64."""
    v = values.astype(np.int64)
    if v.size == 0:
        return v
    span = 1 << bits
    d = np.diff(v)
    d = (d + span // 2) % span - span // 2
    return np.concatenate([[v[0]], v[0] + np.cumsum(d)])


def rtp_trace_rows(received: list[tuple[int, int, float, bytes]], entry: dict[tuple[int, int], float],
                   ssrc: int | None, rate: int = 48000) -> tuple[dict[str, Any], float]:
    """Arrival-trace columns from RTP packets an answerer received: (rtp seq, rtp ts, monotonic
    arrival s, payload) in arrival order. ``entry`` maps (ssrc, seq) to when the packet entered the
    emulator (monotonic s). Returns (columns, frame_ms); times are on a receiver-estimated clock."""
    seq = _unwrap(np.array([r[0] for r in received]), 16)
    ts = _unwrap(np.array([r[1] for r in received], dtype=np.int64), 32)
    t = np.array([r[2] for r in received])
    order = np.lexsort((t, seq))
    seq, ts, t = seq[order], ts[order], t[order]
    payloads = [received[i][3] for i in order]
    first = np.ones(len(seq), dtype=bool)
    first[1:] = seq[1:] != seq[:-1]
    s0, s1 = int(seq[0]), int(seq[-1])
    n = s1 - s0 + 1
    uniq = seq[first]
    dseq, dts = np.diff(uniq), np.diff(ts[first])
    frame = int(np.median(dts[dseq == 1])) if np.any(dseq == 1) else int(0.02 * rate)
    frame = max(frame, 1)
    k = seq - s0
    media_ts = np.arange(n, dtype=np.int64) * frame
    media_ts[k[first]] = ts[first] - ts[first][0]
    arrival = np.full(n, np.nan)
    arrival[k[first]] = t[first]
    dups = np.bincount(k, minlength=n) - 1
    dups[dups < 0] = 0
    payload = [b""] * n
    for i in np.flatnonzero(first):
        payload[k[i]] = payloads[i]
    entered = np.full(n, np.nan)
    for i in np.flatnonzero(first):
        key = (int(ssrc or 0), int(seq[i]) & 0xFFFF)
        if key in entry:
            entered[k[i]] = entry[key]
    cap_rel = (media_ts + frame) / rate
    ref = np.where(np.isnan(entered), arrival, entered)
    ok = ~np.isnan(ref)
    offset = float(np.min(ref[ok] - cap_rel[ok]))
    capture = cap_rel + offset
    send = np.where(np.isnan(entered), capture, np.maximum(entered, capture))
    t0 = offset  # call clock zero: when the first sample was captured
    cols = {
        "seq": np.arange(n, dtype=np.int64), "media_ts": media_ts,
        "frame_samples": np.full(n, frame, dtype=np.int64),
        "capture_s": capture - t0, "send_s": send - t0, "arrival_s": arrival - t0,
        "payload_bytes": np.array([len(p) for p in payload], dtype=np.int64),
        "message_bytes": np.array([len(p) for p in payload], dtype=np.int64),
        "duplicates": dups.astype(np.int64), "payload": payload,
    }
    return cols, 1000.0 * frame / rate


def ws_trace_rows(arrivals: list[tuple[float, int, int]], payloads: list[bytes], sample_bytes: int,
                  rate: int, frame_ms: float) -> dict[str, Any]:
    """Arrival-trace columns from a VoiceServer call (monotonic arrival s, payload bytes, message
    bytes) on a receiver-estimated clock (the fastest message took 0 s)."""
    n = len(arrivals)
    if sample_bytes:
        fs = np.array([a[1] // sample_bytes for a in arrivals], dtype=np.int64)
    else:
        fs = np.full(n, int(round(rate * frame_ms / 1000)), dtype=np.int64)
    media_ts = np.concatenate([[0], np.cumsum(fs)[:-1]]).astype(np.int64)
    t = np.array([a[0] for a in arrivals])
    cap_rel = (media_ts + fs) / rate
    offset = float(np.min(t - cap_rel))
    return {
        "seq": np.arange(n, dtype=np.int64), "media_ts": media_ts, "frame_samples": fs,
        "capture_s": cap_rel, "send_s": cap_rel, "arrival_s": t - offset,
        "payload_bytes": np.array([a[1] for a in arrivals], dtype=np.int64),
        "message_bytes": np.array([a[2] for a in arrivals], dtype=np.int64),
        "duplicates": np.zeros(n, dtype=np.int64), "payload": list(payloads),
    }


class TranslabServer:
    """Runs the WebSocket endpoint and the WebRTC answerer (see the module docstring).

    ``finished`` lists the summaries of calls written so far; ``address`` holds the bound
    ``{"http": (host, port), "ws": (host, port)}`` after :meth:`start`.
    """

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.emu: Any = None
        self.ws_server: Any = None
        self.relay: Any = None
        self.http: Any = None
        self.finished: list[dict[str, Any]] = []
        self.address: dict[str, tuple[str, int]] = {}
        self._rtc: list[dict[str, Any]] = []
        #: finished WebRTC calls by id, for engines that analyse the reply direction (see
        #: translab.transport.reply): "reply_t0", "send_tap" and "down_log" when a reply was sent
        self.rtc_done: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._n = 0
        from translab.transport.reply import ReplySender

        self._reply = ReplySender(cfg.reply, cfg.reply_stream, cfg.reply_fmtp)

    async def start(self) -> dict[str, tuple[str, int]]:
        """Start the emulator, the WebSocket endpoint and the HTTP signalling endpoint; returns
        their (host, port) by name."""
        from translab.emulate.emulator import LiveEmulator
        from translab.transport.signalling import SignallingServer
        from translab.transport.websocket import VoiceServer

        c = self.cfg
        c.out_dir = Path(c.out_dir)
        c.out_dir.mkdir(parents=True, exist_ok=True)
        self.emu = LiveEmulator(c.profile, c.seed, pcap=c.pcap)
        await self.emu.start()
        self.emu.udp["up"].rtp_entry = {}
        ssl_ctx = None
        if c.tls:
            from translab.transport.tls import self_signed_contexts

            ssl_ctx, _ = self_signed_contexts()
        self.ws_server = VoiceServer(spec=None, ssl_context=ssl_ctx, echo=c.echo,
                                     on_call_end=self._ws_call_ended)
        inner = await self.ws_server.start()
        self.relay = await self.emu.tcp_relay(inner, listen=(c.host, c.ws_port))
        self.address["ws"] = self.relay.address
        from translab.transport.caller_page import caller_page

        self.http = SignallingServer(self._offer, host=c.host, port=c.http_port, info=lambda: self.finished,
                                     help_text=self.help_text(), allow_origins=c.allow_origins,
                                     page=caller_page(c.profile, c.seed, c.reply), on_whip=self._whip,
                                     on_whip_end=self._whip_end)
        self.address["http"] = await self.http.start()
        return self.address

    def help_text(self) -> str:
        scheme = "wss" if self.cfg.tls else "ws"
        return (
            "translab serve\n"
            "  A browser: open / on this port (the caller page)\n"
            f"  WebRTC: POST an SDP offer to /offer (application/sdp or JSON {{type, sdp}}); "
            f"profile {self.cfg.profile}, seed {self.cfg.seed}\n"
            "  WHIP (RFC 9725): POST application/sdp to /whip -> 201 + Location; DELETE it to hang up\n"
            f"  WebSocket: {scheme}://HOST:WS_PORT/?framing=binary&codec=pcm16&rate=16000&frame_ms=20\n"
            "  GET /calls: summaries of finished calls\n"
        )

    async def close(self) -> None:
        """Stop everything; calls still open are finished (written) first."""
        for call in list(self._rtc):
            await self._finish_rtc(call, "server stopping")
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
        if self.ws_server is not None:
            await self.ws_server.close()
        if self.emu is not None:
            await self.emu.close()

    # -- WebRTC --------------------------------------------------------------------------------------
    async def _offer(self, sdp: str) -> str:
        """Answer a WebRTC offer (``POST /offer``)."""
        call = await self._answer(sdp)
        return str(call["pc"].localDescription.sdp)

    async def _whip(self, sdp: str) -> tuple[str, str]:
        """Answer a WHIP offer: (answer, session id = the call's id)."""
        call = await self._answer(sdp)
        return str(call["pc"].localDescription.sdp), str(call["id"])

    async def _whip_end(self, session: str) -> bool:
        """A WHIP client's DELETE: the call ends now (analysed and written in the background, so the
        client's DELETE is answered at once); False when there is no such open call."""
        for call in self._rtc:
            if call["id"] == session:
                task = asyncio.get_running_loop().create_task(self._finish_rtc(call, "WHIP DELETE"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return True
        return False

    async def _answer(self, sdp: str) -> dict[str, Any]:
        """A new answering peer for ``sdp``, attached to the emulator and watched; the call's record."""
        from aiortc import RTCSessionDescription

        from translab.transport.webrtc import RtpReceiveTap, StockRecorder, new_peer

        pc = new_peer()
        call: dict[str, Any] = {"pc": pc, "opened": now(), "stock": None, "tap": None,
                                "id": self._next_id("webrtc")}

        @pc.on("track")
        def _track(track: Any) -> None:
            if track.kind == "audio" and call["stock"] is None:
                call["stock"] = StockRecorder(self._reply.tee(call, track))

        with self._reply.advertised():  # aiortc picks the answer's codec parameters in both calls
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as err:
                await pc.close()
                raise ValueError(str(err)) from None
            audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
            if not audio:
                await pc.close()
                raise ValueError("the offer has no audio m-line")
            call["tap"] = RtpReceiveTap(audio[0].receiver)
            self._reply.add_track(pc, call, self.emu)
            answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        self.emu.attach_peer(pc, egress="down", ingress="up")
        self._reply.tap(audio[0], call)
        self._rtc.append(call)
        task = asyncio.get_running_loop().create_task(self._watch_rtc(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def _watch_rtc(self, call: dict[str, Any]) -> None:
        pc, tap = call["pc"], call["tap"]
        while True:
            await asyncio.sleep(0.25)
            if pc.connectionState in ("closed", "failed"):
                reason = f"connection {pc.connectionState}"
                break
            last = tap.received[-1][2] if tap.received else call["opened"]
            limit = self.cfg.inactivity_s if tap.received else max(30.0, self.cfg.inactivity_s)
            if now() - last > limit:
                reason = f"no RTP for {limit:g} s"
                break
        await self._finish_rtc(call, reason)

    async def _finish_rtc(self, call: dict[str, Any], reason: str) -> None:
        if call not in self._rtc:
            return
        self._rtc.remove(call)
        if call["stock"] is not None:
            await call["stock"].stop()
        stats = {}
        try:
            from translab.transport.webrtc import rtc_stats

            stats = rtc_stats(await call["pc"].getStats(), "rtc_callee")
        except Exception:
            pass
        self._reply.finish(call, self.emu)
        self.rtc_done[call["id"]] = call
        await call["pc"].close()
        tap = call["tap"]
        if not tap.received:
            self._write_failed(call["id"], "webrtc", f"no RTP received ({reason})")
            return
        cols, frame_ms = rtp_trace_rows(tap.received, self.emu.udp["up"].rtp_entry or {}, tap.ssrc)
        extra = {"ended": reason, **stats, **self.emu.report()}
        if not self.cfg.analyse_calls:
            call["up"] = (cols, frame_ms, {**extra, "clock": "receiver-estimated"})
            return
        self._summarise(call["id"], "webrtc", cols, codec="opus", rate=48000, frame_ms=frame_ms,
                        framing="rtp", extra=extra)

    # -- WebSocket -----------------------------------------------------------------------------------
    def _ws_call_ended(self, call: Any) -> None:
        name = self._next_id("websocket")
        spec = call.spec
        if spec is None or not call.arrivals:
            self._write_failed(name, "websocket", f"no audio (close {call.close_code} {call.close_reason})")
            return
        cols = ws_trace_rows(call.arrivals, call.payloads, spec.sample_bytes, spec.sample_rate, spec.frame_ms)
        extra = {"ended": f"close {call.close_code} {call.close_reason}".strip(),
                 "echo_dropped": call.echo_dropped, "error_events": len(call.errors)}
        self._summarise(name, "websocket", cols, codec=spec.codec, rate=spec.sample_rate,
                        frame_ms=spec.frame_ms, framing=spec.framing, extra=extra)

    # -- results -------------------------------------------------------------------------------------
    def _next_id(self, transport: str) -> str:
        self._n += 1
        return f"{transport}-{self._n}"

    def _summarise(self, name: str, transport: str, cols: dict[str, Any], *, codec: str, rate: int,
                   frame_ms: float, framing: str, extra: dict[str, Any]) -> None:
        out = self.cfg.out_dir / name
        known = transport == "webrtc" and self.cfg.caller_reference is not None and rate == 48000
        choices = OPUS_FRAME_MS if codec == "opus" else PCM_FRAME_MS
        frame_cfg = min(choices, key=lambda c: abs(c - frame_ms))
        clip = self.cfg.caller_clip if known else EXTERNAL_CLIP
        cfg = CallConfig(transport=transport, codec=codec, sample_rate=rate, frame_ms=frame_cfg,
                         framing=None if transport == "webrtc" else framing, profile=self.cfg.profile,
                         seed=self.cfg.seed, playout=self.cfg.playout, clip=clip,
                         metrics=self.cfg.metrics if known else (), tls=self.cfg.tls)
        engine = ServedEngine(cols, frame_ms=float(frame_ms), figures={**extra, "clock": "receiver-estimated"},
                              reference=self.cfg.caller_reference if known else None)
        try:
            summary = run_call(cfg, engine, out).summary
        except (TranslabError, ValueError) as err:  # an undecodable stream must not stop the server
            self._write_failed(name, transport, f"could not analyse: {err}")
            return
        summary["call"] = name
        self.finished.append({k: summary.get(k) for k in (
            "call", "transport", "codec", "frame_ms", "packets_sent", "loss_rate", "m2e_p50_ms", "status")})

    def _write_failed(self, name: str, transport: str, reason: str) -> None:
        out = self.cfg.out_dir / name
        out.mkdir(parents=True, exist_ok=True)
        s = {"call": name, "mode": "live", "transport": transport, "status": "failed", "reason": reason}
        write_summary(s, out)
        self.finished.append(s)
