"""CallConfig: everything that defines one call (simulated or live), with validation and defaults.

A call is fully determined by its CallConfig, its seed (a field) and the code version. Options left at
``None`` are resolved by :meth:`CallConfig.resolved` from the transport and codec, so that
``CallConfig()`` alone is a meaningful call (WebRTC, Opus 24 kbit/s 20 ms with FEC, over ``4g``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from translab.errors import ConfigError, check_choice, check_range

TRANSPORTS = ("webrtc", "websocket")
CODECS = ("opus", "pcm16", "pcmu")
CONCEALMENTS = ("opus-plc", "opus-fec", "zero", "repeat", "pcm-plc")
METRICS = ("plcmos", "pesq_wb", "pesq_nb", "stoi", "estoi", "visqol")
DEFAULT_METRICS = ("plcmos", "pesq_wb", "stoi")

_PLAYOUT_RE = re.compile(r"^(adaptive|elastic|aiortc-stock|fixed:\d+(\.\d+)?)$")


def check_playout(value: str) -> None:
    """Raise ConfigError unless ``value`` names a playout policy (fixed:<ms>, adaptive, elastic,
    aiortc-stock); cheap, for entry points that check a playout before importing the media stack."""
    if not isinstance(value, str) or not _PLAYOUT_RE.match(value):
        raise ConfigError("playout", value, "fixed:<ms>, adaptive, elastic, aiortc-stock")


def parse_bitrate(value: str | int | float) -> int:
    """``"24k"`` -> 24000, ``"1.5M"`` -> 1500000, ``32000`` -> 32000 (bit/s)."""
    if isinstance(value, (int, float)):
        return int(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
    if not m:
        raise ConfigError("bitrate", value, "a number of bit/s such as 24000 or 24k")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[m.group(2).lower()]
    return int(round(float(m.group(1)) * scale))


@dataclass(frozen=True)
class CallConfig:
    """One call. Units: bitrate in bit/s, frame_ms in ms, sample_rate in Hz, duration_s in s."""

    transport: str = "webrtc"
    codec: str | None = None  # webrtc: opus; websocket: pcm16
    bitrate: int = 24000  # Opus target bit/s (ignored by PCM codecs)
    frame_ms: float = 20
    sample_rate: int | None = None  # opus: 48000; pcm16: 24000; pcmu: 8000
    fec: bool = True  # Opus in-band FEC (needs expected_loss_pct > 0 to take effect)
    expected_loss_pct: int = 10  # OPUS_SET_PACKET_LOSS_PERC when fec is on
    dtx: bool = False
    complexity: int = 9
    framing: str | None = None  # websocket: binary / realtime-json / twilio-json; webrtc: rtp
    profile: str = "4g"  # a profile name from data/profiles or a path to a TOML file
    playout: str = "adaptive"  # fixed:<ms> | adaptive | elastic | aiortc-stock
    conceal: str | None = None  # opus: opus-fec (fec) or opus-plc; pcm: pcm-plc
    clip: str | None = None  # a clip name from data/clips or a WAV path; default: first clip
    seed: int = 7
    duration_s: float | None = None  # cut the clip (None: whole clip)
    metrics: tuple[str, ...] = field(default=DEFAULT_METRICS)
    ip_version: int = 4
    tls: bool = True  # WebSocket over TLS (wss)
    nack: bool = False  # WebRTC: audio NACK + RTX (RFC 4588), see translab.protection
    red: int = 0  # WebRTC: RED (RFC 2198) with 1 or 2 redundant frames per packet; 0 = off
    abr: bool = False  # WebRTC: adaptive bitrate / FEC controller (libwebrtc audio network adaptor)
    fec_loss: str = "fixed"  # Opus FEC expected loss: fixed (expected_loss_pct) or measured (from feedback)

    def resolved(self) -> "CallConfig":
        """A copy with every ``None`` default filled in, validated."""
        from translab.media.audio import SUPPORTED_RATES  # here: keeps scipy out of CLI start-up

        check_choice("transport", self.transport, TRANSPORTS)
        codec = self.codec or ("opus" if self.transport == "webrtc" else "pcm16")
        check_choice("codec", codec, CODECS)
        if self.transport == "webrtc" and codec != "opus":
            raise ConfigError("codec", codec, "opus for transport webrtc")
        rate = self.sample_rate or {"opus": 48000, "pcm16": 24000, "pcmu": 8000}[codec]
        if codec == "opus":
            # Opus itself also runs at 12 kHz, but the clip is resampled to one of the media rates
            # (translab.media.audio.SUPPORTED_RATES), so a call is refused here, naming sample_rate,
            # rather than later by the clip loader.
            check_choice("sample_rate", rate, SUPPORTED_RATES)
            check_choice("frame_ms", self.frame_ms, (2.5, 5, 10, 20, 40, 60))
            check_range("bitrate", self.bitrate, 6000, 510000, "bit/s")
        elif codec == "pcm16":
            check_choice("sample_rate", rate, SUPPORTED_RATES)
            check_choice("frame_ms", self.frame_ms, (10, 20, 40, 60, 100))
        else:
            check_choice("sample_rate", rate, (8000,))
            check_choice("frame_ms", self.frame_ms, (10, 20, 40, 60, 100))
        if self.transport == "webrtc":
            framing = self.framing or "rtp"
            check_choice("framing", framing, ("rtp",))
        else:
            from translab.transport.framing import check_framing

            framing = self.framing or "binary"
            check_framing(framing, codec, rate, self.frame_ms)
        check_playout(self.playout)
        conceal = self.conceal or (
            ("opus-fec" if self.fec else "opus-plc") if codec == "opus" else "pcm-plc"
        )
        check_choice("conceal", conceal, CONCEALMENTS)
        if codec != "opus" and conceal.startswith("opus-"):
            raise ConfigError("conceal", conceal, "zero, repeat, pcm-plc for codec " + codec)
        if codec == "opus" and conceal == "pcm-plc":
            raise ConfigError("conceal", conceal, "opus-plc, opus-fec, zero, repeat for codec opus")
        if codec == "opus" and conceal == "opus-fec" and not self.fec:  # (i15) as the experiment rules
            raise ConfigError("conceal", conceal, "opus-plc, zero, repeat when fec is off (opus-fec "
                              "decodes the FEC that --no-fec turns off)")
        check_range("expected_loss_pct", self.expected_loss_pct, 0, 100, "%")
        check_range("complexity", self.complexity, 0, 10)
        check_range("seed", self.seed, 0, 2**63 - 1)
        check_choice("ip_version", self.ip_version, (4, 6))
        for m in self.metrics:
            check_choice("metrics", m, METRICS)
        if self.duration_s is not None:
            check_range("duration_s", self.duration_s, 0.1, 3600, "s")
        _check_protection(self)
        return dataclasses.replace(
            self, codec=codec, sample_rate=rate, framing=framing, conceal=conceal,
            metrics=tuple(self.metrics),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (metrics as a list) for JSON, hashing and result rows."""
        d = dataclasses.asdict(self)
        d["metrics"] = list(self.metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | None = None) -> "CallConfig":
        """Build from a dict, refusing unknown keys with a ConfigError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in names:
                raise ConfigError("key", key, ", ".join(sorted(names)), where=where)
        d = dict(d)
        if "bitrate" in d:
            d["bitrate"] = parse_bitrate(d["bitrate"])
        if "metrics" in d:
            d["metrics"] = tuple(d["metrics"])
        return cls(**d)


def _check_protection(cfg: CallConfig) -> None:
    """NACK / RED / ABR / measured FEC loss exist on the WebRTC (Opus) path only; RED carries 1 or 2
    redundant frames."""
    check_choice("red", cfg.red, (0, 1, 2))
    check_choice("fec_loss", cfg.fec_loss, ("fixed", "measured"))
    for name in ("nack", "abr"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(name, getattr(cfg, name), "true or false")
    if (cfg.nack or cfg.red or cfg.abr or cfg.fec_loss != "fixed") and cfg.transport != "webrtc":
        name = "nack" if cfg.nack else "red" if cfg.red else "abr" if cfg.abr else "fec_loss"
        raise ConfigError(name, getattr(cfg, name), "off for transport websocket (WebRTC only)")
