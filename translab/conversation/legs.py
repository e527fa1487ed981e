"""The legs a conversation's audio and events travel, in simulated time, on the existing link models.

* :func:`ws_leg`: WebSocket messages as one TCP byte stream (translab.link.tcp over a profile's
  chains; ACKs return on the other direction), with the header model's framing bytes.
* :func:`rtp_leg`: a continuous audio timeline framed and encoded as a live sender would
  (translab.media.stream), each packet one datagram through a profile's chain, played out by a
  receiver of translab.playout (jitter buffer + concealment).
* :func:`play_time_of`: when a media instant of a stream was played by a receiver (from its frames
  log), the map that carries a turn's timing through every jitter buffer on the path.

Each leg draws from its own generator, ``SeedSequence([seed, crc32(name)])``, so adding a leg does
not change another leg's randomness.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from translab.call.prepare import stream_trace, wire_bytes
from translab.config import CallConfig
from translab.link.profiles import load_profile
from translab.link.tcp import TcpDeliveryModel
from translab.media.stream import SenderStream, encode_stream
from translab.metrics.bandwidth import HeaderModel, ws_tcp_payload_bytes
from translab.playout import PlayoutResult, play
from translab.playout.aiortc_stock import release_order, sink_play_times
from translab.playout.stats import PLAYED_KINDS

HEADERS = HeaderModel()
EDGE_LEAD_S = 0.005
"""An edge (gateway, carrier) that sends a packet every 20 ms reads its reply buffer this long (s)
before each send tick, to encode and packetise in time: a frame sent at (k+1) x 20 ms carries the
edge's audio from k x 20 ms - EDGE_LEAD_S. The live edge's work from its tick to the packet handed
to the socket took 1.0-1.5 ms at the median and p95 2-3 ms (asyncio wake-up behind the other
parties' tasks, resampling and libopus or G.711, aiortc's packetiser; 8 calls, seeds 1-4; see
translab.conversation.rtp_wire, which launches the packet at the tick)."""


def leg_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of leg ``name`` for ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def ws_model(profile: str, direction: str, seed: int,
             name: str) -> tuple[TcpDeliveryModel, tuple[np.random.Generator, np.random.Generator]]:
    """The TCP delivery model of WebSocket leg ``name`` on ``profile``'s ``direction`` chain (ACKs on
    the other) and its (data, ACK) generators: what :func:`ws_leg` computes with, and what a live
    leg's relay runs in real time (translab.conversation.live), so both draw the same."""
    prof = load_profile(profile)
    other = "down" if direction == "up" else "up"
    model = TcpDeliveryModel(prof.chain(direction), prof.chain(other), mss=int(HEADERS.mss or 1448))
    return model, (leg_rng(seed, name + ":data"), leg_rng(seed, name + ":ack"))


def ws_leg(send_s: np.ndarray, message_bytes: np.ndarray, profile: str, direction: str, client: bool,
           seed: int, name: str) -> np.ndarray:
    """Delivery time (s) of each WebSocket message (sent at ``send_s``, s; sizes in bytes) over the
    TCP model on ``profile``'s ``direction`` chain; ``client``: client-to-server frames (masked)."""
    tcp = np.array([ws_tcp_payload_bytes(int(b), client, HEADERS) for b in message_bytes], dtype=np.int64)
    model, (data, ack) = ws_model(profile, direction, seed, name)
    if len(tcp) == 0:
        return np.zeros(0)
    res = model.deliver(np.asarray(send_s, dtype=float), tcp, data, ack)
    return np.asarray(res.delivered_s, dtype=float)


@dataclass
class RtpLeg:
    """What an RTP-like leg produced: the sender's packets, the arrival trace and the receiver's
    playout (times on the call clock)."""

    stream: SenderStream
    trace: pd.DataFrame
    playout: PlayoutResult
    frame_n: int


def rtp_leg(audio: np.ndarray, call: CallConfig, profile: str, direction: str, seed: int, name: str,
            playout: str = "adaptive") -> RtpLeg:
    """``audio`` (float32 at ``call.sample_rate``, the sender's timeline from t = 0) sent in frames
    of ``call`` (codec, frame_ms) as datagrams over ``profile``'s ``direction`` chain, played by a
    ``playout`` receiver with the codec's default concealment."""
    cfg = call.resolved()
    stream = encode_stream(audio, cfg)
    wire = wire_bytes(cfg, stream.message_bytes)
    send = stream.capture_s.astype(float)
    idx, arr = load_profile(profile).chain(direction).apply(send, wire, leg_rng(seed, name))
    arrival = np.full(len(send), np.nan)
    if len(idx):
        order = np.lexsort((arr, idx))
        first = np.ones(len(order), dtype=bool)
        first[1:] = idx[order][1:] != idx[order][:-1]
        arrival[idx[order][first]] = arr[order][first]
    trace = stream_trace(cfg, stream, send_s=send, arrival_s=arrival, wire_bytes=wire,
                         duplicates=np.zeros(len(send), dtype=np.int64), mode="simulate", direction=direction)
    trace.attrs["profile"] = profile  # the leg's network, not the call config's
    out = play(trace, policy=playout, conceal=str(cfg.conceal))
    return RtpLeg(stream, trace, out, int(stream.frame_samples[0]))


def play_time_of(frames: pd.DataFrame, rate: int, frame_n: int, media_s: float) -> float:
    """When the receiver played the sender's media instant ``media_s`` (s from the stream's start):
    the play time of the played block of its frame plus the offset into it (capped at the block's
    length). A frame that was not played from its own packet (lost, concealed) maps to the next
    played frame's start. NaN if nothing at or after it was played."""
    played = frames[frames["kind"].isin(PLAYED_KINDS)]
    ts = played["media_ts"].to_numpy(dtype=np.int64)
    pos = int(np.floor(media_s * rate + 1e-6))
    slot = pos // frame_n * frame_n
    i = int(np.searchsorted(ts, slot, side="left"))
    if i >= len(ts):
        return float("nan")
    row = played.iloc[i]
    if int(row["media_ts"]) != slot:
        return float(row["play_s"])
    return float(row["play_s"]) + min(pos - slot, int(row["samples"])) / rate


def timeline(result: PlayoutResult, length_s: float, until_s: float = np.inf) -> np.ndarray:
    """A receiver's output placed on the call clock: float32 at its rate from t = 0 to ``length_s``,
    silent before it started and from ``until_s`` on (a flush)."""
    rate = result.sample_rate
    out = np.zeros(int(np.ceil(length_s * rate)), dtype=np.float32)
    i = int(round(result.start_s * rate))
    stop = min(len(out), int(round(until_s * rate)) if np.isfinite(until_s) else len(out))
    n = max(0, min(len(result.audio), stop - i))
    if i < len(out):
        out[i:i + n] = result.audio[:n]
    return out


def gaps(frames: pd.DataFrame, rate: int, start_s: float, stop_s: float) -> tuple[int, float]:
    """Underruns inside agent speech: runs of blocks that were not played from a packet (stalls,
    concealment; ``inserted`` silence is a jitter buffer's own pause and does not count) between
    ``start_s`` and ``stop_s`` (call clock, s). Returns (count of runs, total ms)."""
    f = frames[(frames["play_s"] >= start_s - 1e-9) & (frames["play_s"] < stop_s - 1e-9)]
    bad = ~f["kind"].isin(PLAYED_KINDS | {"inserted"}).to_numpy()
    if not bad.any():
        return 0, 0.0
    runs = int(bad[0]) + int(np.sum(bad[1:] & ~bad[:-1]))
    ms = 0.0
    for (_, row), b in zip(f.iterrows(), bad):
        if b:
            ms += min(int(row["samples"]) / rate, stop_s - float(row["play_s"])) * 1000.0
    return runs, ms


def played_ms(frames: pd.DataFrame, rate: int, start_s: float, stop_s: float) -> float:
    """Audio played from packets (decoded or FEC) between ``start_s`` and ``stop_s`` (ms)."""
    f = frames[frames["kind"].isin(PLAYED_KINDS)]
    a = f["play_s"].to_numpy(dtype=float)
    b = a + f["samples"].to_numpy(dtype=float) / rate
    return float(np.clip(np.minimum(b, stop_s) - np.maximum(a, start_s), 0, None).sum() * 1000.0)


def released_frames(leg: RtpLeg) -> tuple[list[float], list[int], np.ndarray]:
    """What aiortc's own receiver hands an application reading ``track.recv()`` on ``leg`` (its
    ``aiortc-stock`` playout): each frame's release time (s, call clock) and slot, in order, and
    their decoded audio joined (float32 at the leg's rate: no stalls, nothing concealed)."""
    tr = leg.trace
    rel, _ = release_order(tr["arrival_s"].to_numpy(dtype=float), tr["seq"].to_numpy(dtype=np.int64))
    res = leg.playout
    f = res.frames[res.frames["kind"].isin(PLAYED_KINDS)]
    parts = []
    for ps, n in zip(f["play_s"].to_numpy(dtype=float), f["samples"].to_numpy(dtype=np.int64)):
        i = int(round((ps - res.start_s) * res.sample_rate))
        parts.append(res.audio[i:i + int(n)])
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return [r for r, _ in rel], [k for _, k in rel], audio


def release_position(slots: list[int], frame_s: float, starts: np.ndarray | None = None) -> Callable[[float], float]:
    """Where the sender's media instant m (s) lands in a stream made of frames forwarded in release
    order (``slots``: the sender's frame index of each, ``frame_s`` s each): its frame's place in that
    order (or ``starts[j]``, s, when the frames were placed on a timeline) plus the offset into it; a
    frame never released maps to the next released one's start (NaN if none)."""
    j_of = {k: j for j, k in enumerate(slots)}
    ordered = sorted(j_of)
    at = np.arange(len(slots)) * frame_s if starts is None else np.asarray(starts, dtype=float)

    def position(m: float) -> float:
        k = int(np.floor(m / frame_s + 1e-9))
        if k in j_of:
            return float(at[j_of[k]]) + (m - k * frame_s)
        i = bisect.bisect_left(ordered, k)
        return float(at[j_of[ordered[i]]]) if i < len(ordered) else float("nan")

    return position


def clocked_sink(leg: RtpLeg, origin_s: float = 0.0) -> tuple[np.ndarray, list[int], np.ndarray]:
    """aiortc's released frames on ``leg`` played by a steady sink whose clock ticks at origin_s +
    k x frame (a carrier's free-running clock, the call grid by default): each frame's play time
    (s), its slot, and the sink's output from t = 0 (float32 at the leg's rate, silence where
    nothing played)."""
    rel, slots, audio = released_frames(leg)
    rate, n = int(leg.stream.sample_rate), leg.frame_n
    play_s = sink_play_times(np.array(rel), n / rate, origin_s) if rel else np.zeros(0)
    end = int(round(play_s[-1] * rate)) + n if len(play_s) else 0
    out = np.zeros(end, dtype=np.float32)
    for j, ps in enumerate(play_s.tolist()):
        i = int(round(ps * rate))
        out[i:i + n] = audio[j * n:(j + 1) * n]
    return play_s, slots, out
