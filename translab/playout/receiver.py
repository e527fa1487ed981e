"""The receiver: turns an arrival trace into the audio a listener hears, with W3C receiver stats.

``play(trace, policy=..., conceal=...)`` reads codec, sample rate, frame length and channels from
``trace.attrs``, lays the packets on a grid of media slots (one per frame, by ``media_ts``) and runs
a playout clock over them. Output is produced one block at a time (normally one frame; adaptive
playout makes blocks shorter or longer). Times are seconds on the call clock; the play clock is
kept as a sample count so it never drifts.

Policies (each in its own module; this one holds what they share):

- ``fixed:<ms>`` (:mod:`.fixed_delay`): slot k plays at its capture time + target.
- ``adaptive`` (:mod:`.adaptive`): NetEq-style target from a forgetting histogram of relative
  packet delay; reaches it by time-stretching speech or inserting/removing silence.
- ``elastic`` (:mod:`.elastic`): never conceals; waits for the next frame (a stall).
- ``aiortc-stock`` (:mod:`.aiortc_stock`): aiortc 1.16's receiver (capacity 16, prefetch 4, no PLC).

Each output block becomes a row of ``PlayoutResult.frames``: ``play_s`` (when its first sample
plays, s), ``media_ts`` (media timestamp of the slot it belongs to, samples), ``samples``,
``kind`` and ``m2e_ms``: play time minus capture time of the block's first sample (ms), NaN for
blocks that carry no transmitted audio (concealment, stall, inserted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from translab.config import PLAYOUTS
from translab.errors import ConfigError, TranslabError
from translab.playout.concealment import OpusConcealer, check_conceal, make_concealer
from translab.playout.stats import ReceiverStats, rfc3550_jitter

POLICIES = PLAYOUTS  # the allowed values are declared in translab.config
KINDS = ("decoded", "fec", "plc", "zero", "repeat", "pcm-plc", "stall", "inserted")
_FIXED_RE = re.compile(r"^fixed:(\d+(?:\.\d+)?)$")
#: Tolerance when comparing an arrival with a play time (s): 1 microsecond.
EPS_S = 1e-6


@dataclass
class PlayoutResult:
    """What the receiver played. ``audio``: float32 mono at ``sample_rate`` (Hz), starting at the
    first block's ``play_s``; ``frames``: one row per output block; ``stats``: W3C counters."""

    audio: np.ndarray
    frames: pd.DataFrame
    stats: dict[str, Any]
    sample_rate: int
    policy: str
    conceal: str
    start_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def parse_policy(policy: str) -> tuple[str, float | None]:
    """``"fixed:60"`` -> ``("fixed", 60.0)`` (ms); ``"adaptive"`` -> ``("adaptive", None)``."""
    if not isinstance(policy, str):
        raise ConfigError("policy", policy, ", ".join(POLICIES))
    m = _FIXED_RE.match(policy)
    if m:
        target = float(m.group(1))
        if not 0 <= target <= 10000:
            raise ConfigError("policy", policy, "fixed:<ms> with 0 to 10000 ms")
        return "fixed", target
    if policy in ("adaptive", "elastic", "aiortc-stock"):
        return policy, None
    raise ConfigError("policy", policy, ", ".join(POLICIES))


class FrameDecoder:
    """Decodes one codec payload to float64 mono (full scale 1.0)."""

    def __init__(self, codec: str, sample_rate: int, channels: int) -> None:
        self.codec = codec
        self.channels = channels
        self.opus = None
        if codec == "opus":
            from translab.media.opus import OpusDecoder

            self.opus = OpusDecoder(sample_rate, channels)
        elif codec == "pcm16":
            from translab.media.pcm import pcm16_decode

            self._pcm = pcm16_decode
        elif codec == "pcmu":
            from translab.media.g711 import ulaw_decode

            self._pcm = ulaw_decode
        else:
            raise ConfigError("codec", codec, "opus, pcm16, pcmu")

    def decode(self, payload: bytes) -> np.ndarray:
        """One packet's codec payload -> its samples, float64 mono, full scale 1.0."""
        if self.opus is not None:
            y = self.opus.decode(payload)
        else:
            y = self._pcm(payload)
            if self.channels > 1:
                y = y.reshape(-1, self.channels)
        y = np.asarray(y)
        if y.ndim == 2:
            y = y.mean(axis=1)
        return y.astype(np.float64) / 32768.0


class Slots:
    """The trace laid on a grid of media slots, one per frame (index k), in media order.

    Arrays (length ``n``): ``media_ts`` (samples), ``present`` (a packet was sent), ``arrival``
    (s, NaN if lost or never sent), ``cap_start`` (capture time of the slot's first sample, s),
    ``send`` (s), ``fec`` (packet carries FEC), ``seq``; ``payload`` a list. ``later_min[k]``: the
    earliest arrival among slots after k (inf if none).

    A packet longer than the frame (``frame_samples`` a multiple m of it: a sender that switched to
    60 ms frames mid-call) covers m slots: all carry its arrival, send time, seq and payload; ``part``
    says which m-th of the packet a slot is (0 for the first, which alone carries the FEC flag) and
    ``parts`` the m (both None when every packet is one frame).
    """

    def __init__(self, trace: pd.DataFrame, sample_rate: int, frame_n: int) -> None:
        if len(trace) == 0:
            raise TranslabError("playout: the trace has no packets")
        fs = trace["frame_samples"].to_numpy(dtype=np.int64)
        if np.any(fs <= 0) or np.any(fs % frame_n):
            raise TranslabError(
                f"playout: frame_samples must be multiples of {frame_n} (frame_ms x sample_rate); got {sorted(set(fs.tolist()))[:5]}"
            )
        self.part: np.ndarray | None = None
        self.parts: np.ndarray | None = None
        if np.any(fs != frame_n):
            trace = _split_long_packets(trace, fs // frame_n, frame_n, sample_rate)
        ts = trace["media_ts"].to_numpy(dtype=np.int64)
        ts0 = int(ts.min())
        if np.any((ts - ts0) % frame_n):
            raise TranslabError("playout: media_ts not on the frame grid")
        k = (ts - ts0) // frame_n
        n = int(k.max()) + 1
        arr = trace["arrival_s"].to_numpy(dtype=float)
        # one packet per slot: keep the earliest-arriving copy (NaN last)
        order = np.lexsort((np.where(np.isnan(arr), np.inf, arr), k))
        first = np.ones(order.size, dtype=bool)
        first[1:] = k[order][1:] != k[order][:-1]
        rows = order[first]
        kk = k[rows]
        self.n = n
        self.frame_n = frame_n
        self.rate = sample_rate
        self.media_ts = ts0 + np.arange(n, dtype=np.int64) * frame_n
        self.present = np.zeros(n, dtype=bool)
        self.present[kk] = True
        self.arrival = np.full(n, np.nan)
        self.arrival[kk] = arr[rows]
        cap = trace["capture_s"].to_numpy(dtype=float)
        c0 = float(cap[rows[0]]) - (kk[0] * frame_n + frame_n) / sample_rate
        self.cap_start = c0 + (self.media_ts - ts0) / sample_rate
        self.cap_start[kk] = cap[rows] - frame_n / sample_rate
        self.send = np.full(n, np.nan)
        self.send[kk] = trace["send_s"].to_numpy(dtype=float)[rows]
        self.fec = np.zeros(n, dtype=bool)
        self.fec[kk] = trace["fec"].to_numpy(dtype=bool)[rows]
        if "_part" in trace.columns:
            self.part = np.zeros(n, dtype=np.int64)
            self.parts = np.ones(n, dtype=np.int64)
            self.part[kk] = trace["_part"].to_numpy(dtype=np.int64)[rows]
            self.parts[kk] = trace["_parts"].to_numpy(dtype=np.int64)[rows]
        self.seq = np.full(n, -1, dtype=np.int64)
        self.seq[kk] = trace["seq"].to_numpy(dtype=np.int64)[rows]
        payload_col = trace["payload"].to_numpy(dtype=object)
        self.payload: list[bytes | None] = [None] * n
        for slot, row in zip(kk.tolist(), rows.tolist()):
            self.payload[slot] = payload_col[row]
        a = np.where(np.isnan(self.arrival), np.inf, self.arrival)
        suffix = np.minimum.accumulate(a[::-1])[::-1]
        self.later_min = np.append(suffix[1:], np.inf)
        self.first_arrival = float(a.min()) if np.isfinite(a.min()) else float("nan")

    def arrived(self, k: int, t: float) -> bool:
        """Slot k's packet is in the buffer at time ``t`` (s)."""
        a = self.arrival[k]
        return bool(a == a and a <= t + EPS_S)

    def heads(self) -> np.ndarray:
        """Boolean mask of the slots that start a packet (all slots when every packet is one frame)."""
        return np.ones(self.n, dtype=bool) if self.part is None else self.part == 0


def _split_long_packets(trace: pd.DataFrame, m: np.ndarray, frame_n: int, rate: int) -> pd.DataFrame:
    """One row per frame-long part of each packet (see :class:`Slots`): media_ts and capture_s (the
    capture time of the part's last sample, s) per part, everything else repeated; columns ``_part``
    and ``_parts``; only the first part keeps the FEC flag."""
    rep = np.repeat(np.arange(len(trace)), m)
    part = np.arange(rep.size) - np.repeat(np.cumsum(m) - m, m)
    out = trace.iloc[rep].reset_index(drop=True)
    mm = m[rep]
    out["media_ts"] = out["media_ts"].to_numpy(dtype=np.int64) + part * frame_n
    out["capture_s"] = out["capture_s"].to_numpy(dtype=float) - (mm - 1 - part) * frame_n / rate
    out["frame_samples"] = frame_n
    out["fec"] = out["fec"].to_numpy(dtype=bool) & (part == 0)
    out["_part"] = part
    out["_parts"] = mm
    return out


class Receiver:
    """Shared playout machinery: decoder, concealer, output blocks, frame rows and stats.

    The play clock ``t`` (s) is ``start_s + out_samples / rate``.
    """

    def __init__(self, trace: pd.DataFrame, conceal: str, use_concealer: bool = True) -> None:
        attrs = trace.attrs
        for key in ("codec", "sample_rate", "frame_ms"):
            if key not in attrs:
                raise TranslabError(f"playout: trace.attrs has no {key!r}")
        self.codec = str(attrs["codec"])
        self.rate = int(attrs["sample_rate"])
        self.channels = int(attrs.get("channels", 1) or 1)
        self.frame_ms = float(attrs["frame_ms"])
        self.frame_n = int(round(self.frame_ms * self.rate / 1000))
        self.frame_s = self.frame_n / self.rate
        if use_concealer:
            check_conceal(conceal, self.codec)
        self.decoder = FrameDecoder(self.codec, self.rate, self.channels)
        self.slots = Slots(trace, self.rate, self.frame_n)
        self.concealer = make_concealer(conceal, self.codec, self.rate, self.decoder.opus) if use_concealer else None
        self.use_fec = isinstance(self.concealer, OpusConcealer) and self.concealer.use_fec
        self.stats = ReceiverStats(self.rate)
        self.blocks: list[np.ndarray] = []
        self.rows: dict[str, list[Any]] = {"play_s": [], "media_ts": [], "samples": [], "kind": [], "m2e_ms": []}
        self.start_s = 0.0
        self.out_n = 0
        self.fec_used = 0
        self.discarded: set[int] = set()
        self._decoded = np.zeros(0)  # the last decoded packet (slots of longer packets)
        self._decoded_seq = -1

    # --- clock -----------------------------------------------------------------------------------
    def start(self, t: float) -> None:
        """Set the time (s) of the first output sample."""
        self.start_s = float(t)
        self.out_n = 0

    @property
    def t(self) -> float:
        """The playout clock (s, call clock): start time plus the samples emitted so far."""
        return self.start_s + self.out_n / self.rate

    # --- output ----------------------------------------------------------------------------------
    def emit(self, x: np.ndarray, kind: str, k: int, with_m2e: bool) -> None:
        """Append block ``x`` of ``kind`` for slot ``k`` at the current play time."""
        t = self.t
        self.blocks.append(x)
        r = self.rows
        r["play_s"].append(t)
        r["media_ts"].append(int(self.slots.media_ts[k]) if 0 <= k < self.slots.n else -1)
        r["samples"].append(int(x.size))
        r["kind"].append(kind)
        r["m2e_ms"].append((t - self.slots.cap_start[k]) * 1000.0 if with_m2e else np.nan)
        self.stats.block(kind, x)
        self.out_n += int(x.size)

    def stall(self, until_s: float, k: int) -> None:
        """Silence from now until ``until_s`` (rounded up to whole samples): the device underruns."""
        n = int(np.ceil((until_s - self.t) * self.rate - 1e-6))
        if n > 0:
            self.emit(np.zeros(n), "stall", k, with_m2e=False)

    def decode(self, k: int) -> np.ndarray:
        """Decode slot k's payload and pass it through the concealer's good-frame path. A slot that
        is part of a longer packet gets its frame of the packet's audio (the packet is decoded once,
        at its first slot to play)."""
        s = self.slots
        if s.part is None:
            x = self.decoder.decode(s.payload[k])  # type: ignore[arg-type]
        else:
            if self._decoded_seq != s.seq[k]:
                self._decoded = self.decoder.decode(s.payload[k])  # type: ignore[arg-type]
                self._decoded_seq = int(s.seq[k])
            p = int(s.part[k])
            x = self._decoded[p * self.frame_n:(p + 1) * self.frame_n]
        if self.concealer is not None:
            x = self.concealer.good(x)
        return x

    def play_decoded(self, k: int, x: np.ndarray, target_s: float) -> None:
        """Emit decoded audio of slot k (already stretched if need be) and count buffer delay."""
        self.stats.emitted(int(x.size), self.t - float(self.slots.arrival[k]), target_s)
        self.emit(x, "decoded", k, with_m2e=True)

    def conceal_slot(self, k: int, n: int, target_s: float, consume: bool = True) -> None:
        """Fill ``n`` samples for slot k, which has no audio at the current play time: Opus FEC from
        the next packet when allowed and that packet is already here, else the concealer. With
        ``consume`` the slot is given up (a late packet for it will be discarded)."""
        s = self.slots
        t = self.t
        if consume and s.arrival[k] == s.arrival[k]:
            self.discarded.add(k)
        if (
            consume
            and self.use_fec
            and k + 1 < s.n
            and s.fec[k + 1]
            and s.arrived(k + 1, t)
        ):
            m = 1 if s.parts is None else int(s.parts[k + 1])
            # a packet's FEC covers the lost audio just before it for the packet's own duration:
            # the last n samples of it are slot k's
            y = self.concealer.recover_fec(s.payload[k + 1], m * n)[-n:]  # type: ignore[union-attr]
            self.fec_used += 1
            self.stats.emitted(int(y.size), t - float(s.arrival[k + 1]), target_s)
            self.emit(y, "fec", k, with_m2e=True)
            return
        assert self.concealer is not None
        y, kind = self.concealer.conceal(n)
        self.emit(np.asarray(y, dtype=np.float64), kind, k, with_m2e=False)

    # --- result ----------------------------------------------------------------------------------
    def result(self, policy: str, conceal: str, extra: dict[str, Any] | None = None) -> PlayoutResult:
        """The PlayoutResult of everything emitted so far (audio, frames log, W3C stats)."""
        s = self.slots
        st = self.stats
        head = s.heads()  # W3C counts packets: one slot per packet
        got = ~np.isnan(s.arrival) & head
        st.packetsReceived = int(got.sum())
        if st.packetsReceived:
            seq = s.seq[got]
            st.packetsLost = int(seq.max() - seq.min() + 1 - st.packetsReceived)
        st.packetsDiscarded = len(self.discarded) if s.part is None else len({int(s.seq[k]) for k in self.discarded})
        st.jitter = rfc3550_jitter(s.arrival[head], s.media_ts[head], self.rate)
        st.fecPacketsReceived = int((got & s.fec).sum())
        st.fecPacketsDiscarded = st.fecPacketsReceived - self.fec_used
        stats = st.finish()
        stats.update(extra or {})
        audio = (np.concatenate(self.blocks) if self.blocks else np.zeros(0)).astype(np.float32)
        frames = pd.DataFrame(
            {
                "play_s": np.asarray(self.rows["play_s"], dtype=np.float64),
                "media_ts": np.asarray(self.rows["media_ts"], dtype=np.int64),
                "samples": np.asarray(self.rows["samples"], dtype=np.int64),
                "kind": pd.Series(self.rows["kind"], dtype="string"),
                "m2e_ms": np.asarray(self.rows["m2e_ms"], dtype=np.float64),
            }
        )
        frames.attrs.update(
            {"sample_rate": self.rate, "frame_ms": self.frame_ms, "policy": policy, "conceal": conceal}
        )
        return PlayoutResult(
            audio=audio, frames=frames, stats=stats, sample_rate=self.rate, policy=policy,
            conceal=conceal, start_s=self.start_s,
        )
