"""Calling an endpoint outside translab (a user's own voice stack) through the live emulator.

A :class:`Target` is a URL: ``ws://`` / ``wss://`` for a WebSocket endpoint (with a framing:
binary, realtime-json, twilio-json), ``http://`` / ``https://`` for a WebRTC offer URL that takes
``POST`` of the SDP offer as JSON ``{"sdp", "type"}`` and answers the same way (pipecat's
SmallWebRTC ``/api/offer``, ``translab serve``'s ``/offer``). A framing may be given in the URL's
fragment (``ws://host:8765/#twilio-json``); fragments are never sent.

The caller side is translab's: its uplink packets cross the emulator's "up" link, what comes back
crosses "down" (UDP for WebRTC; the signalling POST and WebSocket cross the TCP relay, so they see
the profile too). What the caller can measure is recorded in an :class:`ExternalRecord`: set-up
milestones, when the endpoint's audio came back, the audio itself, and the path's loss, jitter and
round-trip time as far as the caller sees them. A failure never raises: the record says
``failed``, a short machine-readable ``failure`` (see :data:`FAILURES`) and a human ``reason``.

Times: monotonic seconds internally (``translab.emulate.scheduler.now``); ``setup_ms`` in ms since
the call started (dial), the received chunks on the call clock (s since the clip's first sample).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import urllib.parse
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from translab.emulate.scheduler import now
from translab.errors import ConfigError
from translab.media.framing import FRAMINGS, TWILIO_STREAM_SID
from translab.transport.record import LegRecord

__all__ = ["Target", "parse_target", "ExternalRecord", "FAILURES", "external_leg", "AUDIBLE_DBFS", "audible_span",
           "rfc3550_jitter", "decode_downlink", "delivery_times", "TLS_RECORD_OVERHEAD"]

#: failure kinds (Prometheus label values of ``translab_probe_failures_total{reason=...}``)
FAILURES: tuple[str, ...] = (
    "dns_failed", "connect_refused", "connect_timeout", "signalling_failed", "ws_handshake_refused",
    "ice_failed", "dtls_timeout", "disconnected", "no_audio_back", "timeout", "error",
)

#: a received 10 ms window is "audio" (not silence or comfort noise) above this RMS level (dBFS)
AUDIBLE_DBFS = -45.0


@dataclass(frozen=True)
class Target:
    """An external endpoint. ``transport``: "webrtc" (an offer URL) or "websocket"; ``path``
    includes the query; ``framing``: the WebSocket framing from the URL fragment, if any."""

    url: str
    transport: str
    host: str
    port: int
    path: str
    tls: bool
    framing: str | None = None
    #: a WebRTC target that speaks WHIP (RFC 9725; the URL's ``#whip`` fragment): POST
    #: application/sdp, 201 + Location, DELETE at the end; else POST of JSON ``{sdp, type}``
    whip: bool = False


def parse_target(url: str) -> Target:
    """Validate ``url`` (scheme, host, port, framing fragment); raise one ConfigError naming it."""
    allowed = ("ws://HOST[:PORT]/PATH[#FRAMING] or wss://... (WebSocket), http(s)://HOST[:PORT]/PATH "
               "(WebRTC offer URL taking POST {sdp, type}; #whip: a WHIP endpoint)")
    try:
        u = urllib.parse.urlsplit(str(url))
        port = u.port
    except ValueError:
        raise ConfigError("--target", url, allowed) from None
    scheme = u.scheme.lower()
    if scheme not in ("ws", "wss", "http", "https") or not u.hostname:
        raise ConfigError("--target", url, allowed)
    fragment = u.fragment or None
    whip = scheme.startswith("http") and fragment == "whip"
    framing = None if whip else fragment
    if framing is not None and (scheme.startswith("http") or framing not in FRAMINGS):
        raise ConfigError("--target", url, "a fragment naming the WebSocket framing: " + ", ".join(FRAMINGS)
                          + " (WebSocket URLs), or #whip (http(s) URLs of a WHIP endpoint)")
    tls = scheme in ("wss", "https")
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    return Target(url=str(url), transport="websocket" if scheme.startswith("ws") else "webrtc",
                  host=u.hostname, port=port or (443 if tls else 80), path=path, tls=tls, framing=framing,
                  whip=whip)


@dataclass
class ExternalRecord:
    """What the caller saw of one call to an external endpoint.

    ``setup_ms``: milestones in ms since dial. ``t0``: the call clock's zero (monotonic s).
    ``chunks``: received audio as (call-clock s it arrived, float32 mono samples at ``rate`` Hz)
    in arrival order. ``loss_up`` /
    ``loss_down``: fraction of packets lost per direction as the caller knows it (NaN: unknown);
    ``jitter_s``: interarrival jitter of what came back (RFC 3550, s); ``rtt_s``: round trip (s).
    ``uplink``: per packet k of the sent stream, when it was sent and when the emulator delivered it
    to the endpoint's socket (call clock, s; WebRTC: the "up" link's per-datagram log; WebSocket: when
    the TCP relay had delivered the message's last byte, see :func:`delivery_times`); a packet the
    endpoint never got has no arrival.
    """

    t0: float = float("nan")
    rate: int = 48000
    setup_ms: dict[str, float] = field(default_factory=dict)
    chunks: list[tuple[float, np.ndarray]] = field(default_factory=list)
    loss_up: float = float("nan")
    loss_down: float = float("nan")
    jitter_s: float = float("nan")
    rtt_s: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)
    uplink: LegRecord = field(default_factory=LegRecord)
    status: str = "ok"
    failure: str = ""
    reason: str = ""

    def fail(self, failure: str, reason: str) -> "ExternalRecord":
        """Mark failed (first failure wins); ``failure`` is one of :data:`FAILURES`."""
        assert failure in FAILURES, failure
        if self.status == "ok":
            self.status, self.failure, self.reason = "failed", failure, reason
        return self

    def audio(self) -> np.ndarray:
        """Everything received, concatenated in arrival order (float32 at ``rate``)."""
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([c for _, c in self.chunks]).astype(np.float32)

    def underruns(self, min_gap_s: float = 0.005) -> tuple[int, float]:
        """(count, total s) of the waits a client would hear if it played every chunk as soon as
        it arrived, back to back, with no buffer beyond the first chunk: a chunk that arrives after
        the previous one has finished playing leaves a gap (ignored below ``min_gap_s``)."""
        if not self.chunks:
            return 0, 0.0
        cursor = self.chunks[0][0]
        n, total = 0, 0.0
        for t, x in self.chunks:
            if t > cursor + min_gap_s:
                n, total = n + 1, total + (t - cursor)
            cursor = max(cursor, t) + len(x) / self.rate
        return n, total

    def first_audible_s(self, dbfs: float = AUDIBLE_DBFS) -> float:
        """Call-clock time (s) the first audible 10 ms of received audio arrived (NaN: none)."""
        win = max(1, self.rate // 100)
        for t, x in self.chunks:
            n = len(x) // win * win or len(x)
            if n == 0:
                continue
            w = x[:n].reshape(-1, min(win, n)) if n >= win else x[None, :n]
            rms = np.sqrt(np.mean(np.square(w, dtype=np.float64), axis=1))
            if np.any(20 * np.log10(np.maximum(rms, 1e-10)) > dbfs):
                return t
        return float("nan")


def audible_span(x: np.ndarray, rate: int, dbfs: float = AUDIBLE_DBFS, margin_s: float = 0.1) -> np.ndarray:
    """``x`` cut to its audible part: from ``margin_s`` before the first 10 ms window above ``dbfs``
    to ``margin_s`` after the last one (empty when nothing is audible)."""
    win = max(1, rate // 100)
    n = len(x) // win
    if n == 0:
        return x[:0]
    rms = np.sqrt(np.mean(np.square(x[: n * win].reshape(n, win), dtype=np.float64), axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10)) > dbfs)
    if not len(loud):
        return x[:0]
    m = int(margin_s * rate)
    return x[max(0, loud[0] * win - m): min(len(x), (loud[-1] + 1) * win + m)]


def rfc3550_jitter(arrival_s: np.ndarray, media_s: np.ndarray) -> float:
    """Interarrival jitter (s) as RFC 3550 section 6.4.1 computes it (gain 1/16), from arrival
    times and media (RTP) times of the same packets, both in s, in arrival order."""
    if len(arrival_s) < 2:
        return float("nan")
    d = np.abs(np.diff(np.asarray(arrival_s, float) - np.asarray(media_s, float)))
    j = 0.0
    for x in d:
        j += (x - j) / 16.0
    return float(j)


#: bytes a TLS record adds to its plaintext (header 5 + AEAD tag 16 + TLS 1.3 content type 1; TLS 1.2
#: AES-GCM: header 5 + explicit nonce 8 + tag 16): one record per write of a WebSocket frame
TLS_RECORD_OVERHEAD = {"TLSv1.3": 22, "TLSv1.2": 29}


def delivery_times(end_offsets: np.ndarray, deliveries: list[tuple[float, int]]) -> np.ndarray:
    """When each message's last byte was delivered: ``end_offsets`` (bytes of the stream up to and
    including each message), ``deliveries`` (time, bytes delivered so far) in time order, as
    :meth:`translab.emulate.tcp_relay.TcpRelay.uplink_deliveries` logs them. NaN: not delivered."""
    if not deliveries:
        return np.full(len(end_offsets), np.nan)
    d = np.asarray(deliveries, dtype=float)
    i = np.searchsorted(d[:, 1], np.asarray(end_offsets, dtype=float), side="left")
    out = np.full(len(end_offsets), np.nan)
    ok = i < len(d)
    out[ok] = d[i[ok], 0]
    return out


async def _open(target: Target, emu: Any, timeout_s: float, rec: ExternalRecord,
                mark: Callable[[str, float | None], None]) -> socket.socket | None:
    """A TCP socket to ``target`` through the emulator's relay (``emu=None``: direct). A direct
    connect first tells refused / unresolvable / silent targets apart (the relay would only hang
    up); then the relayed connection's emulated handshake is timed as ``tcp_connected``."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM),
                                       timeout_s)
    except (OSError, asyncio.TimeoutError) as err:
        rec.fail("dns_failed", f"cannot resolve {target.host}: {err}")
        return None
    addr: tuple[str, int] = (str(infos[0][4][0]), int(infos[0][4][1]))
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(addr[0], addr[1]), timeout_s)
        w.close()
    except asyncio.TimeoutError:
        rec.fail("connect_timeout", f"TCP connect to {addr[0]}:{addr[1]} timed out after {timeout_s:g} s")
        return None
    except OSError as err:
        rec.fail("connect_refused", f"TCP connect to {addr[0]}:{addr[1]} failed: {err.strerror or err}")
        return None
    if emu is None:
        sock = socket.create_connection(addr, timeout=timeout_s)
        sock.setblocking(False)
        mark("tcp_connected", None)
        return sock
    relay = await emu.tcp_relay((addr[0], addr[1]), record=True)
    try:
        sock, t = await relay.connect(timeout_s)
    except (OSError, asyncio.TimeoutError) as err:
        rec.fail("connect_timeout", f"TCP connect through the emulator failed: {type(err).__name__} {err}")
        return None
    mark("tcp_connected", t)
    return sock


def _client_ssl() -> ssl.SSLContext:
    """TLS for wss/https targets: verified against the system's trust store."""
    return ssl.create_default_context()


def _http_options(target: Target) -> dict[str, Any]:
    """Host header and TLS settings of an HTTP request to ``target``."""
    host = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    return {"host": host, "ssl_context": _client_ssl() if target.tls else None, "server_hostname": target.host}


async def _signal(target: Target, sock: socket.socket, sdp: str, timeout_s: float) -> tuple[str, str | None]:
    """Send the SDP offer to ``target`` over ``sock``: (the SDP answer, the WHIP session's path or
    None) (:func:`translab.transport.signalling.post_offer` or ``whip_offer``). Raises
    ConnectionError on any HTTP, JSON or WHIP problem."""
    from translab.transport.signalling import post_offer, whip_offer

    if target.whip:
        return await whip_offer(sock, sdp, path=target.path, timeout_s=timeout_s, **_http_options(target))
    answer = await post_offer(sock, {"sdp": sdp, "type": "offer"}, path=target.path, timeout_s=timeout_s,
                              **_http_options(target))
    return str(answer["sdp"]), None


async def _end_whip(target: Target, session: str, emu: Any, timeout_s: float) -> int | None:
    """DELETE the WHIP session over a new connection through the emulator (as a client hanging up);
    its HTTP status, or None when that failed (a call's end never waits longer than ``timeout_s``)."""
    from translab.transport.signalling import whip_delete

    try:
        sock = await asyncio.wait_for(_open(target, emu, timeout_s, ExternalRecord(), lambda *_: None), timeout_s)
        if sock is None:
            return None
        return await asyncio.wait_for(whip_delete(sock, session, timeout_s=timeout_s, **_http_options(target)),
                                      timeout_s)
    except (ConnectionError, OSError, asyncio.TimeoutError, ssl.SSLError):
        return None


async def external_leg(stream: Any, cfg: Any, emu: Any, target: Target, *, connect_timeout_s: float = 10.0,
                       listen_s: float = 1.5, start_delay_s: float = 0.05) -> ExternalRecord:
    """Call ``target``: send ``stream`` (a SenderStream of ``cfg``, a resolved CallConfig whose
    transport matches the target) in real time through ``emu`` and record what comes back, for
    ``listen_s`` s after the last packet. Every socket and peer is closed before it returns."""
    if target.transport == "webrtc":
        return await _webrtc_leg(stream, cfg, emu, target, connect_timeout_s, listen_s, start_delay_s)
    return await _websocket_leg(stream, cfg, emu, target, connect_timeout_s, listen_s, start_delay_s)


# -- WebRTC ------------------------------------------------------------------------------------------

_OFFER_LOCKS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def _offer_lock() -> asyncio.Lock:
    """One lock per event loop: concurrent calls (probes of several targets) create their offers
    one at a time, so one call's :func:`advertised_opus` cannot restore the table under another."""
    loop = asyncio.get_running_loop()
    lock = _OFFER_LOCKS.get(loop)
    if lock is None:
        lock = _OFFER_LOCKS[loop] = asyncio.Lock()
    return lock

async def _webrtc_leg(stream: Any, cfg: Any, emu: Any, target: Target, timeout_s: float, listen_s: float,
                      start_delay_s: float) -> ExternalRecord:
    from aiortc import RTCSessionDescription

    from translab.transport.webrtc import (
        RtpReceiveTap, RtpSendTap, StockRecorder, advertised_opus, make_packet_track, new_peer, opus_fmtp,
        restrict_ip_version, rtc_stats, watch_connection,
    )

    rec = ExternalRecord(rate=48000)
    t_start = now()

    def mark(name: str, t: float | None = None) -> None:
        rec.setup_ms.setdefault(name, ((now() if t is None else t) - t_start) * 1e3)

    loop = asyncio.get_running_loop()
    pc = new_peer()
    start: asyncio.Future[float] = loop.create_future()
    connected: asyncio.Future[None] = loop.create_future()
    connected.add_done_callback(lambda f: f.cancelled() or f.exception())
    scheduler = emu.scheduler if emu is not None else None
    track = make_packet_track(stream.payload, stream.media_ts, stream.capture_s, stream.sample_rate,
                              start, scheduler)
    stock: list[StockRecorder] = []

    watch_connection(pc, mark, connected)

    @pc.on("track")
    def _track(remote: Any) -> None:
        if remote.kind == "audio" and not stock:
            stock.append(StockRecorder(remote))

    send_tap: RtpSendTap | None = None
    whip_session: str | None = None
    try:
        async with _offer_lock():  # advertised_opus changes aiortc's global codec table across awaits
            with advertised_opus(opus_fmtp(cfg)):
                pc.addTransceiver(track, direction="sendrecv")
                restrict_ip_version(pc, int(getattr(cfg, "ip_version", 4)))
                await pc.setLocalDescription(await pc.createOffer())
        mark("offer_ready")
        if emu is not None:
            emu.attach_peer(pc, egress="up", ingress="down")
        recv_tap = RtpReceiveTap(pc.getTransceivers()[0].receiver,
                                 lambda *a: mark("first_rtp_received"))
        sock = await _open(target, emu, timeout_s, rec, mark)
        if sock is None:
            return rec
        try:
            answer, whip_session = await asyncio.wait_for(
                _signal(target, sock, pc.localDescription.sdp, timeout_s), timeout_s)
        except (ConnectionError, OSError, asyncio.TimeoutError, ssl.SSLError) as err:
            return rec.fail("signalling_failed", f"offer to {target.url}: {type(err).__name__} {err}".strip())
        mark("answer_received")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except Exception as err:  # aiortc raises ValueError and others for SDP it cannot use
            return rec.fail("signalling_failed", f"unusable answer: {type(err).__name__} {err}")
        send_tap = RtpSendTap(pc.getSenders()[0].transport)
        try:
            await asyncio.wait_for(asyncio.shield(connected), timeout_s)
        except asyncio.TimeoutError:
            kind = "ice_failed" if "ice_connected" not in rec.setup_ms else "dtls_timeout"
            return rec.fail(kind, f"not connected within {timeout_s:g} s (ICE {pc.iceConnectionState}, "
                            f"connection {pc.connectionState})")
        except ConnectionError as err:
            return rec.fail(str(err), f"connection failed ({err}); ICE {pc.iceConnectionState}")
        t0 = now() + start_delay_s
        rec.t0 = t0
        rec.extra["setup_t0_ms"] = (t0 - t_start) * 1e3
        if emu is not None:
            emu.set_media_origin(t0)
        start.set_result(t0)
        end = t0 + (float(stream.capture_s[-1]) if len(stream.capture_s) else 0.0)
        while now() < end + listen_s:
            await asyncio.sleep(min(0.25, max(0.0, end + listen_s - now())))
            if pc.connectionState in ("failed", "closed"):
                rec.fail("disconnected", f"connection {pc.connectionState} during media")
                break
        if send_tap.sent:
            mark("first_rtp_sent", send_tap.sent[0][2])
        _webrtc_uplink(rec, stream, send_tap, emu)
        stats = rtc_stats(await pc.getStats(), "rtc")
        rec.extra.update({k: v for k, v in stats.items() if isinstance(v, (int, float))})
        _webrtc_path_figures(rec, stats, recv_tap)
        if stock:
            await stock[0].stop()
            s = stock[0]
            if s.frames:
                mark("first_audio_frame", s.frames[0][0])
            rec.chunks = [(t - t0, c) for (t, _, _), c in zip(s.frames, s.chunks)]
        return rec
    except asyncio.CancelledError:
        rec.fail("timeout", "cancelled")
        whip_session = None  # a cancelled probe ends now; the endpoint ends the session on silence
        raise
    finally:
        if not start.done():
            start.cancel()
        for s in stock:
            await s.stop()
        track.stop()
        if whip_session is not None:  # hang up first, so the endpoint ends the session now, not on silence
            rec.extra["whip_delete_status"] = await _end_whip(target, whip_session, emu, min(timeout_s, 1.0))
        await asyncio.gather(pc.close(), return_exceptions=True)


def _webrtc_uplink(rec: ExternalRecord, stream: Any, send_tap: Any, emu: Any) -> None:
    """The uplink as the endpoint received it: the k-th media RTP packet sent is packet k of the
    stream and the k-th media datagram the "up" link carried (its log is on the call clock)."""
    up = rec.uplink
    up.t0 = rec.t0
    log = emu.udp["up"].media_log if emu is not None else []
    for k, (_, _, t, size) in enumerate(send_tap.sent[: len(stream.seq)]):
        up.send_s[k] = t - rec.t0
        up.wire_bytes[k] = size
        if k < len(log) and not np.isnan(log[k][1]):
            up.arrivals[k] = [float(log[k][1])]
    rec.extra["rtp_packets_sent"] = len(send_tap.sent)


def _webrtc_path_figures(rec: ExternalRecord, stats: dict[str, Any], tap: Any) -> None:
    """Loss per direction, jitter and RTT from aiortc's stats (RTCP from the endpoint) and the
    receive tap (sequence gaps of what came back)."""
    if tap.received:
        seq = np.array([r[0] for r in tap.received], dtype=np.int64)
        d = (np.diff(seq) + 32768) % 65536 - 32768
        useq = np.unique(np.concatenate([[0], np.cumsum(d)]))
        expected = int(useq[-1] - useq[0] + 1)
        rec.loss_down = 1.0 - len(useq) / expected if expected > 0 else float("nan")
        rec.extra["rtp_packets_received"] = len(tap.received)
    j = stats.get("rtc_inbound_rtp_jitter_s")
    if j is not None:
        rec.jitter_s = float(j)
    rtt = stats.get("rtc_remote_inbound_rtp_roundTripTime_s")
    if rtt is not None and rtt > 0:
        rec.rtt_s = float(rtt)
    lost, sent = stats.get("rtc_remote_inbound_rtp_packetsLost"), stats.get("rtc_outbound_rtp_packetsSent")
    if lost is not None and sent:  # cumulative, from the endpoint's last RTCP receiver report
        rec.loss_up = max(0.0, float(lost)) / float(sent)


# -- WebSocket ---------------------------------------------------------------------------------------

def decode_downlink(framing: str, msg: bytes | str, rate: int) -> tuple[str, np.ndarray | None]:
    """What an endpoint's message carries: ("audio", float32 samples at ``rate``), ("clear", None)
    for a barge-in flush (Twilio ``clear``), or ("other", None). realtime-json: the GA event
    ``response.output_audio.delta`` and the beta ``response.audio.delta`` (PCM16 24 kHz);
    twilio-json: ``media`` (mu-law 8 kHz); binary: PCM16 at the call's rate."""
    from translab.media.g711 import ulaw_decode

    if framing == "binary":
        if isinstance(msg, str) or len(msg) % 2:
            return "other", None
        return "audio", np.frombuffer(msg, dtype="<i2").astype(np.float32) / 32768.0
    if isinstance(msg, bytes):
        return "other", None
    try:
        ev = json.loads(msg)
    except json.JSONDecodeError:
        return "other", None
    if not isinstance(ev, dict):
        return "other", None
    try:
        if framing == "realtime-json" and ev.get("type") in ("response.output_audio.delta", "response.audio.delta"):
            raw = base64.b64decode(ev["delta"])
            return "audio", np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        if framing == "twilio-json" and ev.get("event") == "media":
            x = ulaw_decode(base64.b64decode(ev["media"]["payload"]))
            return "audio", np.asarray(x, dtype=np.float32) / 32768.0
        if ev.get("event") == "clear" or ev.get("type") == "conversation.item.truncated":
            return "clear", None
    except (KeyError, TypeError, ValueError):
        return "other", None
    return "other", None


def _preamble(framing: str, cfg: Any) -> list[str]:
    """Events a client of this framing sends before audio (Twilio ``connected`` + ``start``;
    Realtime ``session.update`` with PCM16 input)."""
    if framing == "twilio-json":
        return [json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
                json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": TWILIO_STREAM_SID,
                            "start": {"streamSid": TWILIO_STREAM_SID, "accountSid": "AC" + "0" * 32,
                                      "callSid": "CA" + "0" * 32, "tracks": ["inbound"],
                                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                      "channels": 1}}})]
    if framing == "realtime-json":
        return [json.dumps({"type": "session.update", "session": {
            "input_audio_format": "pcm16", "output_audio_format": "pcm16"}})]
    return []


async def _websocket_leg(stream: Any, cfg: Any, emu: Any, target: Target, timeout_s: float, listen_s: float,
                         start_delay_s: float) -> ExternalRecord:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    from translab.transport.webrtc import _sleep_until

    rate = int(cfg.sample_rate) if cfg.framing == "binary" else (8000 if cfg.framing == "twilio-json" else 24000)
    rec = ExternalRecord(rate=rate)
    t_start = now()

    def mark(name: str, t: float | None = None) -> None:
        rec.setup_ms.setdefault(name, ((now() if t is None else t) - t_start) * 1e3)

    sock = await _open(target, emu, timeout_s, rec, mark)
    if sock is None:
        return rec
    scheme = "wss" if target.tls else "ws"
    uri = f"{scheme}://{target.host}:{target.port}{target.path}"
    kwargs: dict[str, Any] = {"sock": sock, "open_timeout": timeout_s, "max_size": None,
                              "ping_interval": None, "compression": None}
    if target.tls:
        kwargs.update(ssl=_client_ssl(), server_hostname=target.host)
    try:
        ws = await connect(uri, **kwargs)
    except (InvalidHandshake, OSError, asyncio.TimeoutError, ssl.SSLError, EOFError) as err:
        sock.close()
        return rec.fail("ws_handshake_refused", f"WebSocket upgrade to {target.url} failed: "
                        f"{type(err).__name__} {err}".strip())
    mark("upgrade_done")
    # Byte offsets of the uplink stream as the relay sees it: everything it read before the upgrade
    # completed (the HTTP request, TLS handshake), then every write of this connection (plus the
    # TLS record overhead per write), so each message's last byte can be found in its delivery log.
    relay = emu.relays[-1] if emu is not None else None
    written = [relay.uplink_deliveries()[0] if relay is not None else 0]
    ssl_object = ws.transport.get_extra_info("ssl_object")
    per_write = TLS_RECORD_OVERHEAD.get(ssl_object.version(), 22) if ssl_object is not None else 0
    write = ws.transport.write

    def counting_write(data: bytes | bytearray | memoryview) -> None:
        written[0] += len(data) + per_write
        write(data)

    ws.transport.write = counting_write  # type: ignore[method-assign]
    end_offset: dict[int, int] = {}
    arrivals: list[tuple[float, int]] = []  # (monotonic s, samples)
    rtts: list[float] = []
    reader: asyncio.Task[None] | None = None
    pings: list[asyncio.Task[None]] = []

    async def read() -> None:
        try:
            async for msg in ws:
                t = now()
                kind, x = decode_downlink(cfg.framing, msg, rate)
                if kind == "audio" and x is not None and len(x):
                    rec.chunks.append((t, x))
                    arrivals.append((t, len(x)))
                elif kind == "clear":
                    rec.extra["clear_events"] = rec.extra.get("clear_events", 0) + 1
        except ConnectionClosed:
            pass

    async def ping() -> None:
        try:
            t = now()
            await asyncio.wait_for(await ws.ping(), timeout_s)
            rtts.append(now() - t)
        except (ConnectionClosed, asyncio.TimeoutError):
            pass

    try:
        reader = asyncio.get_running_loop().create_task(read())
        for ev in _preamble(cfg.framing, cfg):
            await ws.send(ev)
        pings = [asyncio.get_running_loop().create_task(ping())]  # not awaited: media starts on time
        t0 = now() + start_delay_s
        rec.t0 = t0
        rec.extra["setup_t0_ms"] = (t0 - t_start) * 1e3
        if emu is not None:
            emu.set_media_origin(t0)
        n = len(stream.seq)
        scheduler = emu.scheduler if emu is not None else None
        next_ping = t0 + 1.0
        for k in range(n):
            await _sleep_until(t0 + float(stream.capture_s[k]), scheduler)
            if k == 0:
                mark("first_frame_sent")
            t_send = now()
            await ws.send(stream.message[k])
            end_offset[k] = written[0]
            rec.uplink.send_s[k] = t_send - t0
            if now() >= next_ping:
                next_ping += 1.0
                pings.append(asyncio.get_running_loop().create_task(ping()))
        if cfg.framing == "twilio-json":
            await ws.send(json.dumps({"event": "stop", "streamSid": TWILIO_STREAM_SID}))
        await asyncio.sleep(listen_s)
    except ConnectionClosed as err:
        rec.fail("disconnected", f"endpoint closed the WebSocket during media: {err}")
    except asyncio.CancelledError:
        rec.fail("timeout", "cancelled")
        raise
    finally:
        try:  # short: a cancelled probe must end within its interval's margin
            await asyncio.wait_for(ws.close(), 0.5)
        except Exception:
            ws.transport.abort()
        for task in [reader, *pings]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [reader, *pings] if t is not None), return_exceptions=True)
    t0 = rec.t0
    rec.chunks = [(t - t0, x) for t, x in rec.chunks]
    rec.uplink.t0 = t0
    if relay is not None and end_offset:
        ks = sorted(end_offset)
        got = delivery_times(np.array([end_offset[k] for k in ks]), relay.uplink_deliveries()[1])
        for k, t in zip(ks, got):
            if not np.isnan(t):
                rec.uplink.arrivals[k] = [float(t) - t0]
    if arrivals:
        mark("first_audio_frame", arrivals[0][0])
        a = np.array(arrivals, dtype=float)
        media = np.concatenate([[0.0], np.cumsum(a[:-1, 1])]) / rate
        rec.jitter_s = rfc3550_jitter(a[:, 0], media)
    if rtts:
        rec.rtt_s = float(np.median(rtts))
        rec.extra["ws_pings"] = len(rtts)
    rec.loss_down = 0.0  # TCP delivers every byte or the call fails (retransmissions: emu_tcp_*); no RTCP up
    return rec
