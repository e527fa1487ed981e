"""Audio an answerer sends back to an outside WebRTC caller (``translab serve``), so the caller's
receiver (a browser's NetEq) has something to play.

* ``"clip"``: translab's own Opus packets of a :class:`~translab.media.stream.SenderStream`, paced
  in real time by :func:`translab.transport.webrtc.make_packet_track` (bitrate, frame, FEC as the
  stream was encoded; aiortc's encoder is bypassed). The clip starts ``start_delay_s`` after the
  peer connection is connected (that instant is the reply's call clock zero, ``reply_t0``, and the
  downlink's media clock origin in the emulator, as for an in-process call). The packets are tapped
  as they are handed to SRTP (:class:`~translab.transport.webrtc.RtpSendTap`), and the emulator's
  downlink log says what became of each, so the reply direction gets an arrival trace of its own
  (:func:`reply_trace`).
* ``"echo"``: the caller's own audio back, decoded and re-encoded by aiortc.
* ``"none"``: receive only (the answer is recvonly).

Times: monotonic seconds (translab.emulate.scheduler.now), trace times on the reply's call clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Iterator

import numpy as np

from translab.emulate.scheduler import now
from translab.errors import ConfigError, check_choice

__all__ = ["REPLIES", "ReplySender", "reply_arrivals"]

REPLIES = ("none", "echo", "clip")


class ReplySender:
    """Per-server reply policy; the per-call state lives in the call dict of
    :class:`translab.call.served.TranslabServer` (keys ``reply_track``, ``reply_start``,
    ``reply_t0``, ``send_tap``, ``down_log``)."""

    def __init__(self, mode: str = "none", stream: Any = None, fmtp: dict[str, Any] | None = None,
                 start_delay_s: float = 0.05) -> None:
        check_choice("reply", mode, REPLIES)
        if mode == "clip" and stream is None:
            raise ConfigError("reply", mode, "clip only with a prepared stream (reply_stream)")
        self.mode, self.stream, self.fmtp = mode, stream, fmtp
        self.start_delay_s = start_delay_s

    def tee(self, call: dict[str, Any], track: Any) -> Any:
        """The track a recorder should consume: ``track`` itself, or (echo) one of two
        subscriptions to it, the other being sent back."""
        if self.mode != "echo":
            return track
        from aiortc.contrib.media import MediaRelay

        relay = MediaRelay()
        call["reply_relay"] = relay
        call["echo_track"] = relay.subscribe(track)
        return relay.subscribe(track)

    def add_track(self, pc: Any, call: dict[str, Any], emu: Any = None) -> None:
        """Before the answer: add the reply track to ``pc`` (after its remote description is set);
        a clip starts when ``pc`` is connected (see :meth:`start`)."""
        if self.mode == "echo" and call.get("echo_track") is not None:
            pc.addTrack(call["echo_track"])
        elif self.mode == "clip":
            from translab.transport.webrtc import make_packet_track

            s = self.stream
            start: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            call["reply_start"] = start
            call["reply_track"] = make_packet_track(s.payload, s.media_ts, s.capture_s, s.sample_rate, start)
            pc.addTrack(call["reply_track"])

            @pc.on("connectionstatechange")
            def _connected() -> None:
                if pc.connectionState == "connected":
                    self.start(call, emu)

    @contextlib.contextmanager
    def advertised(self) -> Iterator[None]:
        """Around ``createAnswer``: the answer's Opus fmtp says what the reply sends and what the
        caller should send (FEC, bitrate, ptime) when ``fmtp`` is given."""
        if not self.fmtp:
            yield
            return
        from translab.transport.webrtc import advertised_opus

        with advertised_opus(self.fmtp):
            yield

    def tap(self, transceiver: Any, call: dict[str, Any]) -> None:
        """After ``setLocalDescription`` (the sender's transport exists): stamp outgoing RTP."""
        if self.mode != "clip":
            return
        from translab.transport.webrtc import RtpSendTap

        call["send_tap"] = RtpSendTap(transceiver.sender.transport)

    def start(self, call: dict[str, Any], emu: Any) -> None:
        """Once connected: start the clip ``start_delay_s`` from now; the emulator's downlink times
        media from that instant (as an in-process call's does)."""
        start = call.get("reply_start")
        if start is None or start.done():
            return
        t0 = now() + self.start_delay_s
        call["reply_t0"] = t0
        if emu is not None and "down" in emu.udp:
            emu.udp["down"].media_t0 = t0
            call["down_log_from"] = len(emu.udp["down"].media_log)
        start.set_result(t0)

    def finish(self, call: dict[str, Any], emu: Any) -> None:
        """When the call ends: stop the reply track, keep the emulator's downlink log of this call."""
        track = call.get("reply_track")
        if track is not None:
            track.stop()
        start = call.get("reply_start")
        if start is not None and not start.done():
            start.cancel()
        if emu is not None and "down" in emu.udp and "down_log_from" in call:
            call["down_log"] = list(emu.udp["down"].media_log[call["down_log_from"]:])


def reply_arrivals(sent: list[tuple[int, int, float, int]], down_log: list[tuple[float, float]],
                   t0: float, media_t0: float) -> tuple[dict[int, float], dict[int, list[float]], int]:
    """Match the reply's RTP packets to the emulator's downlink log: the k-th media datagram the
    link saw is the k-th RTP packet the sender tap stamped (both in send order, one SRTP datagram
    per RTP packet). ``sent``: (rtp seq, rtp ts, monotonic s, bytes); ``down_log``: (send s, arrival
    s or NaN) on the link clock whose zero is ``media_t0`` (monotonic s); ``t0``: the reply's call
    clock zero. Returns (send_s by k, arrival_s by k (a list, as LegRecord keeps), unmatched count)
    on the reply's call clock."""
    n = min(len(sent), len(down_log))
    send_s: dict[int, float] = {}
    arrivals: dict[int, list[float]] = {}
    for k in range(n):
        send_s[k] = sent[k][2] - t0
        a = down_log[k][1]
        if not np.isnan(a):
            arrivals[k] = [media_t0 + float(a) - t0]
    return send_s, arrivals, abs(len(sent) - len(down_log))
