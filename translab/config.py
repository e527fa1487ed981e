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

# ------------------------------------------------------------------------------------------------
# The allowed values: the one source that the CLI (choices, help), experiment files, serve's query
# parsing and the Python API derive from.

TRANSPORTS: tuple[str, ...] = ("webrtc", "websocket")
CODECS: tuple[str, ...] = ("opus", "pcm16", "pcmu")
#: what drives the adaptive bitrate controller (``abr_feedback``): "twcc" (transport-wide-CC-like
#: feedback every 100 ms + RTCP receiver reports) or "rr" (RTCP receiver reports only)
ABR_FEEDBACKS: tuple[str, ...] = ("twcc", "rr")
CONCEALMENTS: tuple[str, ...] = ("opus-plc", "opus-fec", "zero", "repeat", "pcm-plc")
METRICS: tuple[str, ...] = ("plcmos", "pesq_wb", "pesq_nb", "stoi", "estoi", "visqol")
DEFAULT_METRICS: tuple[str, ...] = ("plcmos", "pesq_wb", "stoi")
#: WebSocket framings (see translab.media.framing); WebRTC's framing is "rtp"
WS_FRAMINGS: tuple[str, ...] = ("binary", "realtime-json", "twilio-json")
FRAMINGS: tuple[str, ...] = ("rtp",) + WS_FRAMINGS
#: the codec a WebSocket framing implies when no codec is given
FRAMING_CODECS: dict[str, str] = {"realtime-json": "pcm16", "twilio-json": "pcmu"}
#: receiver policies; "fixed:<ms>" takes a delay in ms (decimals allowed, e.g. fixed:62.5)
PLAYOUTS: tuple[str, ...] = ("fixed:<ms>", "adaptive", "elastic", "aiortc-stock")
#: media sample rates (Hz) a clip is resampled to (translab.media.audio.SUPPORTED_RATES)
SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 24000, 48000)
DEFAULT_RATES: dict[str, int] = {"opus": 48000, "pcm16": 24000, "pcmu": 8000}
OPUS_FRAME_MS: tuple[float, ...] = (2.5, 5, 10, 20, 40, 60)
PCM_FRAME_MS: tuple[float, ...] = (10, 20, 40, 60, 100)
FRAME_MS: tuple[float, ...] = (2.5, 5, 10, 20, 40, 60, 100)
BITRATE_RANGE: tuple[int, int] = (6000, 510000)  # Opus, bit/s
IP_VERSIONS: tuple[int, ...] = (4, 6)
MODES: tuple[str, ...] = ("simulate", "live")
BACKENDS: tuple[str, ...] = ("inprocess", "netns")
#: who calls translab in a live WebRTC call: aiortc (in-process) or headless Chromium (translab.call.browser)
PEERS: tuple[str, ...] = ("aiortc", "chromium")

_PLAYOUT_RE = re.compile(r"^(adaptive|elastic|aiortc-stock|fixed:\d+(\.\d+)?)$")


def check_playout(value: object, field_name: str = "playout") -> str:
    """``value`` if it is a receiver policy (``fixed:<ms>`` with ms a number, adaptive, elastic,
    aiortc-stock), else ConfigError naming ``field_name``."""
    if not isinstance(value, str) or not _PLAYOUT_RE.match(value):
        raise ConfigError(field_name, value, ", ".join(PLAYOUTS) + " (e.g. fixed:60 or fixed:62.5)")
    return value


def check_framing(framing: str, codec: str, sample_rate: int, frame_ms: float) -> None:
    """Raise ConfigError when WebSocket ``framing`` cannot carry ``codec`` at ``sample_rate`` /
    ``frame_ms`` (realtime-json: pcm16 24 kHz; twilio-json: pcmu 8 kHz 20 ms)."""
    check_choice("framing", framing, WS_FRAMINGS)
    if framing == "realtime-json" and (codec != "pcm16" or sample_rate != 24000):
        raise ConfigError(
            "framing", framing, "realtime-json carries pcm16 at 24000 Hz only "
            f"(got codec {codec} at {sample_rate} Hz)"
        )
    if framing == "twilio-json" and (codec != "pcmu" or sample_rate != 8000 or frame_ms != 20):
        raise ConfigError(
            "framing", framing, "twilio-json carries pcmu at 8000 Hz in 20 ms frames only "
            f"(got codec {codec} at {sample_rate} Hz, {frame_ms} ms)"
        )


# The namespace backend's options (translab.emulate.netns): NAT presets per side (translab.link.nat
# implements exactly these), firewall profiles (translab.emulate.netns.firewall), ICE options.
NAT_CHOICES: tuple[str, ...] = ("none", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric")
FIREWALLS: tuple[str, ...] = ("open", "udp-blocked", "only-443")
ICE_OPTIONS: tuple[str, ...] = ("none", "stun", "turn-udp", "turn-tcp", "turns-443")
TURN_ICE: tuple[str, ...] = ("turn-udp", "turn-tcp", "turns-443")


@dataclass(frozen=True)
class NetnsConfig:
    """Where a call on the namespace backend runs: NAT preset per side (``none`` = public address),
    the caller's and the callee's firewall profile, the ICE option, and relay-only (the caller's
    iceTransportPolicy="relay"; TURN options only). The typed part of a call that only the netns
    backend reads; experiment cells carry its fields as keys (:data:`NETNS_FIELDS`)."""

    caller_nat: str = "none"
    callee_nat: str = "none"
    firewall: str = "open"
    callee_firewall: str = "open"
    ice: str = "none"
    relay_only: bool = False

    def __post_init__(self) -> None:
        check_choice("caller_nat", self.caller_nat, NAT_CHOICES)
        check_choice("callee_nat", self.callee_nat, NAT_CHOICES)
        check_choice("firewall", self.firewall, FIREWALLS)
        check_choice("callee_firewall", self.callee_firewall, FIREWALLS)
        check_choice("ice", self.ice, ICE_OPTIONS)
        if not isinstance(self.relay_only, bool):
            raise ConfigError("relay_only", self.relay_only, "true or false")
        if self.relay_only and self.ice not in TURN_ICE:
            raise ConfigError("relay_only", True, "only with a TURN ice option (" + ", ".join(TURN_ICE) + ")")


#: the netns keys of an experiment cell and their defaults
NETNS_FIELDS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(NetnsConfig)}


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
    abr_feedback: str = "twcc"  # what drives abr: twcc (transport-cc every 100 ms + RRs) or rr (RTCP RRs only)

    def __post_init__(self) -> None:
        # "24k" (and 24000.0) are accepted here as on the CLI and in experiment files (bit/s)
        if isinstance(self.bitrate, (str, float)) and not isinstance(self.bitrate, bool):
            object.__setattr__(self, "bitrate", parse_bitrate(self.bitrate))
        if isinstance(self.metrics, list):
            object.__setattr__(self, "metrics", tuple(self.metrics))

    def resolved(self) -> "CallConfig":
        """A copy with every ``None`` default filled in, validated."""
        check_choice("transport", self.transport, TRANSPORTS)
        if self.framing is not None:
            check_choice("framing", self.framing, FRAMINGS)
        default_codec = "opus" if self.transport == "webrtc" else FRAMING_CODECS.get(self.framing or "", "pcm16")
        codec = self.codec or default_codec
        check_choice("codec", codec, CODECS)
        if self.transport == "webrtc" and codec != "opus":
            raise ConfigError("codec", codec, "opus for transport webrtc")
        rate = self.sample_rate or DEFAULT_RATES[codec]
        if isinstance(self.bitrate, bool) or not isinstance(self.bitrate, int):
            raise ConfigError("bitrate", self.bitrate, "an integer number of bit/s (24000) or a string such as '24k'")
        if codec == "opus":
            # Opus itself also runs at 12 kHz, but the clip is resampled to one of the media rates,
            # so a call is refused here, naming sample_rate, rather than later by the clip loader.
            check_choice("sample_rate", rate, SAMPLE_RATES)
            check_choice("frame_ms", self.frame_ms, OPUS_FRAME_MS)
            check_range("bitrate", self.bitrate, *BITRATE_RANGE, "bit/s")
        elif codec == "pcm16":
            check_choice("sample_rate", rate, SAMPLE_RATES)
            check_choice("frame_ms", self.frame_ms, PCM_FRAME_MS)
        else:
            check_choice("sample_rate", rate, (8000,))
            check_choice("frame_ms", self.frame_ms, PCM_FRAME_MS)
        if self.transport == "webrtc":
            framing = self.framing or "rtp"
            check_choice("framing", framing, ("rtp",))
        else:
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
        if codec == "opus" and conceal == "opus-fec" and not self.fec:  # as the experiment rules drop it
            raise ConfigError("conceal", conceal, "opus-plc, zero, repeat when fec is off (opus-fec "
                              "decodes the FEC that --no-fec turns off)")
        check_range("expected_loss_pct", self.expected_loss_pct, 0, 100, "%")
        check_range("complexity", self.complexity, 0, 10)
        check_range("seed", self.seed, 0, 2**63 - 1)
        check_choice("ip_version", self.ip_version, IP_VERSIONS)
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
    check_choice("abr_feedback", cfg.abr_feedback, ABR_FEEDBACKS)
    for name in ("nack", "abr"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(name, getattr(cfg, name), "true or false")
    if (cfg.nack or cfg.red or cfg.abr or cfg.fec_loss != "fixed") and cfg.transport != "webrtc":
        name = "nack" if cfg.nack else "red" if cfg.red else "abr" if cfg.abr else "fec_loss"
        raise ConfigError(name, getattr(cfg, name), "off for transport websocket (WebRTC only)")
