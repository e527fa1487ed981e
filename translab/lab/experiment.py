"""Experiment files: a TOML file naming a question, a grid of call configurations and the metrics.

File format (every key is checked; see ``data/experiments/default.toml`` for a full example)::

    name = "wifi-vs-4g"                 # required, a short identifier
    description = "..."                 # required, one or two sentences
    question = "..."                    # optional, the question the report answers
    metrics = ["plcmos", "stoi"]        # quality metrics computed for every cell (default: plcmos, stoi)

    [defaults]                          # optional: one value per key, shared by every cell; a list
                                        # (e.g. clip = [...]) is a grid key of every block lacking it
    clip = "..."
    seed = 1

    [[grid]]                            # one or more blocks; each is a Cartesian product of its lists,
    transport = ["webrtc"]              # and the experiment's grid is the union of all blocks.
    codec = "opus"                      # a scalar is a one-element list
    bitrate = [12000, "24k"]            # bit/s, or a string with a k suffix (kbit/s)
    profile = ["clean-lan", "4g"]

    [[exclude]]                         # optional: drop every cell matching ALL keys given here
    transport = "websocket"             # (a list matches any of its values)
    profile = ["4g"]

Grid keys are the fields of :class:`translab.config.CallConfig` (transport, codec, bitrate, frame_ms,
sample_rate, fec, expected_loss_pct, dtx, complexity, framing, profile, playout, conceal, clip, seed,
duration_s, ip_version, tls) plus ``mode`` ("simulate" or "live"). Keys left out take CallConfig's
defaults; the clip is pinned to the first shipped clip when not given.

Live calls run on a ``backend``, as with ``translab call --backend``: ``"inprocess"`` (default, the
in-process emulator) or ``"netns"`` (real kernel stacks in network namespaces; needs root). Netns
cells take the keys of ``translab call``'s netns options: ``caller_nat`` and ``callee_nat`` (none,
full-cone, restricted-cone, port-restricted-cone, symmetric), ``firewall`` and ``callee_firewall``
(open, udp-blocked, only-443), ``ice`` (none, stun, turn-udp, turn-tcp, turns-443) and
``relay_only`` (true/false)::

    [defaults]
    mode = "live"
    backend = "netns"

    [[grid]]
    transport = "webrtc"
    caller_nat = ["full-cone", "symmetric"]
    callee_nat = "symmetric"
    ice = ["stun", "turn-udp"]

The backend and the netns keys are stored in a cell only when its backend is netns, so cells of the
other backend keep the hashes (and results) they had before these keys existed.

Protection keys (WebRTC only, see translab.protection): ``nack`` (true/false), ``red`` (0, 1, 2),
``abr`` (true/false), ``abr_feedback`` ("twcc" or "rr"), ``fec_loss`` ("fixed" or "measured"); ``data/experiments/protection.toml``.

Conversation cells: a cell with a ``topology`` (direct-ws, webrtc-gateway, twilio) is a simulated
voice-agent conversation (translab.conversation.simulate, run by translab.lab.cells.conversation_cell)
with the keys of :data:`CONVERSATION_KEYS`: ``dc_profile`` (the datacenter legs), ``turns``,
``bargein_every`` (0: never), ``wer`` (recognise what the model heard; the row's ``wer`` column is then
the word error rate), ``pacing`` (burst, realtime) and ``think_ms`` (median think time); ``profile`` is
the caller's access leg, ``seed`` seeds everything. Other call keys mean nothing to a conversation and
are removed (cells that differ only in them merge); ``data/experiments/conversation.toml``::

    [[grid]]
    topology = ["direct-ws", "webrtc-gateway", "twilio"]
    profile = ["clean-lan", "4g"]
    seed = [1, 2, 3, 4, 5]

``mode = "live"`` runs a conversation cell live (translab.conversation.live: real websockets and aiortc
through the in-process emulator, in real time, never in parallel), with the simulated cell's columns
plus its agreement with the simulation of the same cell (``sim_turn_latency_p50_ms``,
``live_minus_sim_p50_ms``). ``edge_playout`` (adaptive, aiortc-stock) is the jitter buffer where the
caller's RTP leg ends on webrtc-gateway and twilio: adaptive by default when simulated; aiortc-stock,
the only one a live edge has, when live. A simulated cell to pair with live ones sets
``edge_playout = "aiortc-stock"``; ``data/experiments/conversation_live.toml``.

``target = "URL"`` calls an endpoint outside translab instead of translab's receiver
(translab.call.external.ExternalEngine, as ``translab call --target``): a live cell on the in-process
emulator whose transport follows the URL (``ws[s]://...[#framing]``: WebSocket; ``http[s]://...``: a
WebRTC offer URL)::

    [[grid]]
    target = ["http://127.0.0.1:7860/api/offer", "ws://127.0.0.1:8765/#twilio-json"]
    profile = ["clean-lan", "4g"]

``peer = "chromium"`` makes the caller headless Chromium (translab.call.browser.BrowserEngine, as
``translab call --peer chromium``): a live WebRTC cell on the in-process emulator; the default
``"aiortc"`` is not stored in a cell (hashes unchanged).

Combinations that make no sense are handled by a built-in validity check, :func:`normalise_cell`,
applied to every product cell before ``[[exclude]]``. Its rules (:data:`RULES`, in order) are of two
kinds:

* *irrelevant* settings are set to one canonical value so the duplicates collapse into one cell
  (framing for WebRTC is "rtp"; bitrate, FEC, DTX and complexity mean nothing for PCM; twilio-json fixes
  mu-law 8 kHz 20 ms; realtime-json fixes PCM16 24 kHz; mu-law is 8 kHz);
* *contradictions* are dropped (a non-Opus codec over WebRTC; "rtp" framing over WebSocket; Opus in a
  JSON framing; Opus concealment for PCM and PCM concealment for Opus; opus-fec without FEC; 100 ms Opus
  frames; relay_only without a TURN ice option; anything else :meth:`CallConfig.resolved` refuses).
* protection-webrtc: NACK, RED, ABR and measured FEC loss over WebSocket are dropped;
* conversation (applied first): conversation keys are removed from one-way cells (so their hashes are
  unchanged); a conversation cell keeps only its keys, profile, seed and mode; netns conversation
  cells, and live ones on an RTP topology whose ``edge_playout`` is not aiortc-stock, are dropped;
* netns: netns keys mean nothing on the in-process backend (removed, merged); a netns cell is a live
  call (mode set to "live"); a WebSocket netns cell talks to a public server, so callee_nat,
  callee_firewall, ice and relay_only are reset (merged).
* peer: a chromium cell is live; chromium with WebSocket or on the netns backend is dropped.
* target (first of the one-way rules): a target cell is live, its transport and framing follow the URL;
  with a chromium peer or on the netns backend it is dropped.

:func:`expand` reports how many product cells each rule dropped and how many merged as duplicates;
the report prints it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from translab.config import (ABR_FEEDBACKS, BACKENDS, CODECS, CONCEALMENTS, FIREWALLS, FRAME_MS, FRAMINGS, ICE_OPTIONS,
                             METRICS, MODES, NAT_CHOICES, PEERS, NETNS_FIELDS, OPUS_FRAME_MS, PLAYOUTS, SAMPLE_RATES,
                             TRANSPORTS, TURN_ICE, check_playout, parse_bitrate)
from translab.errors import ConfigError
from translab.paths import CLIPS_DIR, EXPERIMENTS_DIR, PROFILES_DIR

# --------------------------------------------------------------------------------------------------
# Keys and their allowed values

#: The allowed values are CallConfig's (translab.config): one declaration, derived here.
NETNS_KEYS: dict[str, Any] = dict(NETNS_FIELDS)
#: Keys of a conversation cell (translab.conversation.simulate.ConversationConfig) and their defaults;
#: ``topology`` None means "not a conversation" (a one-way call).
CONVERSATION_KEYS: dict[str, Any] = {"topology": None, "dc_profile": "colocated", "turns": 4, "bargein_every": 2,
                                     "wer": False, "pacing": "burst", "think_ms": 315.0}
#: Conversation keys stored in a cell only when they matter and differ from their default, so the
#: conversation cells that existed before them keep their hashes: ``edge_playout`` (the jitter buffer
#: where the caller's RTP leg ends, translab.conversation.simulate.EDGE_PLAYOUTS; None: the mode's
#: own, adaptive simulated and aiortc-stock live).
CONVERSATION_SPARSE_KEYS: dict[str, Any] = {"edge_playout": None}
#: Keys of a cell that are not CallConfig fields.
EXTRA_FIELDS: dict[str, Any] = {"mode": "simulate", "backend": "inprocess", "peer": "aiortc", "target": None,
                                 **NETNS_KEYS, **CONVERSATION_KEYS, **CONVERSATION_SPARSE_KEYS}
CONCEALS = CONCEALMENTS
QUALITY_METRICS = METRICS
DEFAULT_METRICS = ("plcmos", "stoi")

TOP_KEYS = ("name", "description", "question", "metrics", "defaults", "grid", "exclude")


#: CallConfig fields a cell leaves out while they hold their default, so that adding them kept the
#: identity (hash, stored results, tests/data/default_digest.json) of every existing cell.
SPARSE_FIELDS: tuple[str, ...] = ("abr_feedback",)


def call_fields() -> dict[str, Any]:
    """The CallConfig field names (except ``metrics``, set per experiment) with their defaults."""
    from translab.config import CallConfig  # noqa: PLC0415

    return {f.name: f.default for f in dataclasses.fields(CallConfig) if f.name != "metrics"}


def cell_keys() -> tuple[str, ...]:
    """Every key a grid block, ``[defaults]`` or ``[[exclude]]`` may use."""
    return tuple(call_fields()) + tuple(EXTRA_FIELDS)


def known_profiles() -> list[str]:
    """Names of the profiles shipped in data/profiles (via translab.link.profiles when available)."""
    try:
        from translab.link.profiles import list_profiles  # noqa: PLC0415

        return sorted(p.name for p in list_profiles())
    except Exception:
        return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def known_clips() -> list[str]:
    """Names of the speech clips shipped in data/clips (via translab.media.clips when available)."""
    try:
        from translab.media.clips import list_clips  # noqa: PLC0415

        return sorted(list_clips())
    except Exception:
        return sorted(p.stem for p in CLIPS_DIR.glob("*.wav"))


# --------------------------------------------------------------------------------------------------
# The experiment


@dataclass(frozen=True)
class Experiment:
    """A parsed, validated experiment file.

    ``blocks`` are the grid blocks (key -> list of values, already type-checked), ``defaults`` the
    shared values, ``exclude`` the exclusion patterns (key -> list of values), ``source`` the file
    path and ``text`` its exact content (kept for the manifest).
    """

    name: str
    description: str
    question: str
    metrics: tuple[str, ...]
    defaults: dict[str, Any]
    blocks: tuple[dict[str, list[Any]], ...]
    exclude: tuple[dict[str, list[Any]], ...] = ()
    source: str = "<memory>"
    text: str = ""
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex, 16 digits) of the file text, or of the parsed content when built in memory."""
        blob = self.text.encode() if self.text else json.dumps(
            {"name": self.name, "defaults": self.defaults, "blocks": self.blocks,
             "exclude": self.exclude, "metrics": self.metrics}, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def cells(self) -> list[dict[str, Any]]:
        """The expanded grid (see :func:`expand`)."""
        return expand(self).cells


def resolve_path(path: str | Path) -> Path:
    """An experiment file: a path, or a name in data/experiments (``default`` -> default.toml)."""
    p = Path(path)
    if p.is_file():
        return p
    cand = EXPERIMENTS_DIR / (p.name if p.suffix == ".toml" else f"{p.name}.toml")
    if cand.exists():
        return cand
    names = sorted(q.stem for q in EXPERIMENTS_DIR.glob("*.toml"))
    raise ConfigError("experiment", str(path), "an existing TOML file or one of: " + ", ".join(names))


def load_experiment(path: str | Path, check_size: bool = True) -> Experiment:
    """Read and validate an experiment file. Raises ConfigError naming the file, key and allowed values
    (also for a file that is not UTF-8, and a grid larger than :data:`MAX_GRID_COMBINATIONS`)."""
    p = resolve_path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError("file", str(p), f"a UTF-8 text file (byte {err.start} is not UTF-8)") from None
    except OSError as err:
        raise ConfigError("file", str(p), f"a readable file ({err.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("toml", str(err), "a valid TOML document", where=str(p)) from None
    return from_dict(data, source=str(p), text=text, base_dir=p.parent, check_size=check_size)


def from_dict(data: dict[str, Any], *, source: str = "<memory>", text: str = "",
              base_dir: Path | None = None, check_size: bool = True) -> Experiment:
    """Validate the parsed content of an experiment file (also handy in notebooks and tests).
    ``check_size=False`` skips the grid-size limit and the expansion (``--dry-run`` of a large grid
    counts its combinations from :func:`block_sizes` instead)."""
    where = source
    keys = cell_keys()
    for k in data:
        if k not in TOP_KEYS:
            raise ConfigError(k, data[k], "top-level keys " + ", ".join(TOP_KEYS), where=where)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name", name, "a non-empty string", where=where)
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ConfigError("description", desc, "a string", where=where)
    question = data.get("question", desc)
    if not isinstance(question, str):
        raise ConfigError("question", question, "a string", where=where)
    metrics = data.get("metrics", list(DEFAULT_METRICS))
    if isinstance(metrics, str) or not isinstance(metrics, list):
        raise ConfigError("metrics", metrics, "a list of " + ", ".join(QUALITY_METRICS), where=where)
    for m in metrics:
        if m not in QUALITY_METRICS:
            raise ConfigError("metrics", m, ", ".join(QUALITY_METRICS), where=where)
    base = base_dir or Path.cwd()

    defaults_raw = data.get("defaults", {})
    if not isinstance(defaults_raw, dict):
        raise ConfigError("defaults", defaults_raw, "a table of key = value", where=where)
    defaults: dict[str, Any] = {}
    for k, v in defaults_raw.items():
        if k not in keys:
            raise ConfigError(f"defaults.{k}", v, "keys " + ", ".join(keys), where=where)
        if isinstance(v, list):
            continue  # a list is a grid dimension of every block (below)
        defaults[k] = _check_value(k, v, f"defaults.{k}", where, base)

    grid_raw = data.get("grid")
    if isinstance(grid_raw, dict):
        grid_raw = [grid_raw]
    if not isinstance(grid_raw, list) or not grid_raw:
        raise ConfigError("grid", grid_raw, "one or more [[grid]] tables of key = [values]", where=where)
    # A list in [defaults] (e.g. the clips) is crossed into every block that does not name the key.
    shared = {k: v for k, v in defaults_raw.items() if isinstance(v, list)}
    grid_raw = [{**shared, **b} if isinstance(b, dict) else b for b in grid_raw]
    blocks = tuple(_check_block(b, f"grid[{i}]", where, base, keys)
                   for i, b in enumerate(grid_raw))
    for i, b in enumerate(blocks):
        for k, vs in b.items():
            if not vs:
                raise ConfigError(f"grid[{i}].{k}", [], "a non-empty list (an empty list empties the grid)",
                                  where=where)

    excl_raw = data.get("exclude", [])
    if isinstance(excl_raw, dict):
        excl_raw = [excl_raw]
    if not isinstance(excl_raw, list):
        raise ConfigError("exclude", excl_raw, "[[exclude]] tables of key = value(s)", where=where)
    exclude = tuple(_check_block(b, f"exclude[{i}]", where, base, keys)
                    for i, b in enumerate(excl_raw))

    exp = Experiment(name=name.strip(), description=desc.strip(), question=question.strip(),
                     metrics=tuple(metrics), defaults=defaults, blocks=blocks, exclude=exclude,
                     source=source, text=text, base_dir=base)
    if not check_size:
        return exp
    check_grid_size(exp)
    if not expand(exp).cells:
        raise ConfigError("grid", "(no cells)", "a grid with at least one valid cell after the validity "
                          "rules and [[exclude]]", where=where)
    return exp


def _check_block(block: Any, label: str, where: str, base: Path, keys: tuple[str, ...]) -> dict[str, list[Any]]:
    if not isinstance(block, dict):
        raise ConfigError(label, block, "a table of key = [values]", where=where)
    out: dict[str, list[Any]] = {}
    for k, v in block.items():
        if k not in keys:
            raise ConfigError(f"{label}.{k}", v, "keys " + ", ".join(keys), where=where)
        values = v if isinstance(v, list) else [v]
        out[k] = [_check_value(k, x, f"{label}.{k}", where, base) for x in values]
    return out


def _check_value(key: str, v: Any, label: str, where: str, base: Path) -> Any:
    """Type- and range-check one value of ``key``; returns it normalised (bitrate in bit/s)."""

    def bad(allowed: str) -> ConfigError:
        return ConfigError(label, v, allowed, where=where)

    if key == "transport":
        if v not in TRANSPORTS:
            raise bad(", ".join(TRANSPORTS))
    elif key == "codec":
        if v not in CODECS:
            raise bad(", ".join(CODECS))
    elif key == "framing":
        if v not in FRAMINGS:
            raise bad(", ".join(FRAMINGS))
    elif key == "mode":
        if v not in MODES:
            raise bad(", ".join(MODES))
    elif key == "backend":
        if v not in BACKENDS:
            raise bad(", ".join(BACKENDS))
    elif key == "peer":
        if v not in PEERS:
            raise bad(", ".join(PEERS))
    elif key == "target":
        from translab.transport.external import parse_target  # noqa: PLC0415

        if not isinstance(v, str):
            raise bad("a URL string: ws[s]://HOST[:PORT]/PATH[#FRAMING] or http[s]://HOST[:PORT]/PATH")
        try:
            parse_target(v)
        except ConfigError as err:
            raise bad(err.allowed) from None
    elif key in ("caller_nat", "callee_nat"):
        if v not in NAT_CHOICES:
            raise bad(", ".join(NAT_CHOICES))
    elif key in ("firewall", "callee_firewall"):
        if v not in FIREWALLS:
            raise bad(", ".join(FIREWALLS))
    elif key == "ice":
        if v not in ICE_OPTIONS:
            raise bad(", ".join(ICE_OPTIONS))
    elif key in ("relay_only", "wer"):
        if not isinstance(v, bool):
            raise bad("true or false")
    elif key == "topology":
        from translab.conversation.simulate import TOPOLOGIES

        if v not in TOPOLOGIES:
            raise bad(", ".join(TOPOLOGIES))
    elif key == "edge_playout":
        from translab.conversation.simulate import EDGE_PLAYOUTS

        if v not in EDGE_PLAYOUTS:
            raise bad(", ".join(EDGE_PLAYOUTS))
    elif key == "pacing":
        from translab.conversation.model import PACINGS

        if v not in PACINGS:
            raise bad(", ".join(PACINGS))
    elif key in ("turns", "bargein_every"):
        if isinstance(v, bool) or not isinstance(v, int) or not (0 if key == "bargein_every" else 1) <= v <= 200:
            raise bad(f"an integer {0 if key == 'bargein_every' else 1} to 200")
    elif key == "think_ms":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 60000:
            raise bad("a number of ms, 0 to 60000")
        return float(v)
    elif key == "dc_profile":
        if not isinstance(v, str) or v not in known_profiles():
            raise bad(", ".join(known_profiles()))
    elif key == "conceal":
        if v not in CONCEALS:
            raise bad(", ".join(CONCEALS))
    elif key == "abr_feedback":
        if v not in ABR_FEEDBACKS:
            raise bad(", ".join(ABR_FEEDBACKS))
    elif key == "playout":
        try:
            check_playout(v, label)
        except ConfigError:
            raise bad(", ".join(PLAYOUTS) + " (e.g. fixed:60 or fixed:62.5)") from None
    elif key == "bitrate":
        try:
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise TypeError(v)
            b = parse_bitrate(v)
        except (ValueError, TypeError):
            raise bad("an integer bit/s or a string like '24k'") from None
        if not 6000 <= b <= 510000:
            raise bad("6000 to 510000 bit/s")
        return b
    elif key == "frame_ms":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v not in FRAME_MS:
            raise bad(", ".join(f"{x:g}" for x in FRAME_MS) + " (ms)")
        return int(v) if float(v).is_integer() else float(v)
    elif key == "sample_rate":
        if isinstance(v, bool) or v not in SAMPLE_RATES:
            raise bad(", ".join(map(str, SAMPLE_RATES)) + " (Hz)")
        return int(v)
    elif key in ("fec", "dtx"):
        if not isinstance(v, bool):
            raise bad("true or false")
    elif key == "seed":
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise bad("a non-negative integer")
    elif key == "duration_s":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise bad("a positive number of seconds")
        return float(v)
    elif key == "profile":
        if not isinstance(v, str):
            raise bad("a profile name or a path to a profile TOML")
        names = known_profiles()
        if v not in names:
            p = (base / v) if not Path(v).is_absolute() else Path(v)
            if p.suffix == ".toml" and p.exists():
                return str(p.resolve())
            raise bad(", ".join(names) + f" (or a path to a profile .toml; relative paths are resolved "
                      f"against the experiment file's directory {base})")
    elif key == "clip":
        if not isinstance(v, str):
            raise bad("a clip name or a path to a WAV file")
        names = known_clips()
        if v not in names:
            p = (base / v) if not Path(v).is_absolute() else Path(v)
            if p.suffix.lower() == ".wav" and p.exists():
                return str(p.resolve())
            raise bad(", ".join(names) + f" (or a path to a .wav; relative paths are resolved against "
                      f"the experiment file's directory {base})")
    elif key in ("tls",):
        if not isinstance(v, bool):
            raise bad("true or false")
    elif key in ("expected_loss_pct", "complexity", "ip_version"):
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad("an integer")
    else:  # a CallConfig field this module does not know: check the type against the default
        default = call_fields().get(key)
        if default is not None and not isinstance(v, type(default)):
            raise bad(f"a value of type {type(default).__name__}")
    return v


# --------------------------------------------------------------------------------------------------
# Validity rules and expansion


@dataclass(frozen=True)
class Rule:
    """One validity rule: ``apply(cell)`` returns the (possibly changed) cell, or None to drop it."""

    name: str
    doc: str
    apply: Callable[[dict[str, Any]], dict[str, Any] | None]


def _set(cell: dict[str, Any], **kv: Any) -> dict[str, Any]:
    return {**cell, **kv}


def _rule_webrtc_framing(c: dict[str, Any]) -> dict[str, Any] | None:
    return _set(c, framing="rtp") if c["transport"] == "webrtc" else c


def _rule_webrtc_codec(c: dict[str, Any]) -> dict[str, Any] | None:
    return None if c["transport"] == "webrtc" and c["codec"] not in (None, "opus") else c


def _rule_websocket_rtp(c: dict[str, Any]) -> dict[str, Any] | None:
    return None if c["transport"] == "websocket" and c["framing"] == "rtp" else c


def _rule_twilio(c: dict[str, Any]) -> dict[str, Any] | None:
    if c["transport"] == "websocket" and c["framing"] == "twilio-json":
        if c["codec"] == "opus":
            return None
        return _set(c, codec="pcmu", sample_rate=8000, frame_ms=20)
    return c


def _rule_realtime(c: dict[str, Any]) -> dict[str, Any] | None:
    if c["transport"] == "websocket" and c["framing"] == "realtime-json":
        if c["codec"] == "opus":
            return None
        return _set(c, codec="pcm16", sample_rate=24000)
    return c


def _codec(c: dict[str, Any]) -> str:
    return c["codec"] or ("opus" if c["transport"] == "webrtc" else "pcm16")


def _rule_pcm_settings(c: dict[str, Any]) -> dict[str, Any] | None:
    if _codec(c) == "opus":
        return c
    d = _defaults()
    out = _set(c, fec=False, dtx=False, bitrate=d["bitrate"], expected_loss_pct=d["expected_loss_pct"],
               complexity=d["complexity"])
    if _codec(c) == "pcmu":
        out["sample_rate"] = 8000
    return out


def _rule_conceal_codec(c: dict[str, Any]) -> dict[str, Any] | None:
    codec, conceal = _codec(c), c["conceal"]
    if codec == "opus" and conceal == "pcm-plc":
        return None
    if codec != "opus" and conceal in ("opus-plc", "opus-fec"):
        return None
    if codec == "opus" and conceal == "opus-fec" and not c["fec"]:
        return None
    return c


def _rule_opus_frames(c: dict[str, Any]) -> dict[str, Any] | None:
    return None if _codec(c) == "opus" and c["frame_ms"] not in OPUS_FRAME_MS else c


def _rule_netns(c: dict[str, Any]) -> dict[str, Any] | None:
    if c.get("backend", "inprocess") != "netns":
        return {k: v for k, v in c.items() if k != "backend" and k not in NETNS_KEYS}
    c = _set(c, mode="live")
    if c["relay_only"] and c["ice"] not in TURN_ICE:
        return None
    if c["transport"] == "websocket":
        c = _set(c, callee_nat="none", callee_firewall="open", ice="none", relay_only=False)
    return c


def _rule_protection(c: dict[str, Any]) -> dict[str, Any] | None:
    """NACK, RED, ABR and measured FEC loss are WebRTC (RTP/Opus) mechanisms: a WebSocket cell with
    any of them is dropped (TCP retransmits by itself; there is no RTP to repair or adapt)."""
    if c["transport"] == "webrtc":
        return c
    on = bool(c.get("nack")) or bool(c.get("red")) or bool(c.get("abr")) or c.get("fec_loss", "fixed") != "fixed"
    return None if on else c


#: The CallConfig keys a conversation cell keeps (the caller's access profile and the seed); the
#: others describe a one-way call and are removed.
CONVERSATION_CALL_KEYS = ("profile", "seed")


def _rule_conversation(c: dict[str, Any]) -> dict[str, Any] | None:
    """One-way cells lose the conversation keys (merged, so their hashes are those of before the keys
    existed); a conversation cell (``topology`` set) keeps only the conversation keys, profile, seed
    and mode, and is dropped on the netns backend. A live conversation cell runs real websockets and
    aiortc through the in-process emulator (translab.conversation.live); its RTP edges (gateway,
    carrier) are aiortc's own receiver, so ``edge_playout`` is aiortc-stock there (another is dropped).
    ``edge_playout`` means nothing on direct-ws (removed, merged) and is stored only when it is not
    the simulated default, adaptive (hashes of earlier conversation cells unchanged)."""
    if c.get("topology") is None:
        return {k: v for k, v in c.items() if k not in CONVERSATION_KEYS and k not in CONVERSATION_SPARSE_KEYS}
    if c.get("backend", "inprocess") != "inprocess":
        return None
    mode = c.get("mode", "simulate")
    out = {**{k: c[k] for k in CONVERSATION_CALL_KEYS}, "mode": mode,
           **{k: c.get(k, v) for k, v in CONVERSATION_KEYS.items()}}
    if c["topology"] != "direct-ws":
        edge = c.get("edge_playout") or ("aiortc-stock" if mode == "live" else "adaptive")
        if mode == "live" and edge != "aiortc-stock":
            return None
        if edge != "adaptive":
            out["edge_playout"] = edge
    return out


def _rule_peer(c: dict[str, Any]) -> dict[str, Any] | None:
    if c.get("peer", "aiortc") == "aiortc":
        return {k: v for k, v in c.items() if k != "peer"}
    if c["transport"] != "webrtc" or c.get("backend", "inprocess") != "inprocess":
        return None
    return _set(c, mode="live")


def _rule_target(c: dict[str, Any]) -> dict[str, Any] | None:
    """No ``target``: the key is removed (hashes unchanged). A target cell is a live call on the
    in-process emulator whose transport follows the URL; a WebSocket target's framing is the URL's
    fragment, else the cell's, else binary; a chromium peer or the netns backend is dropped."""
    url = c.get("target")
    if url is None:
        return {k: v for k, v in c.items() if k != "target"}
    if c.get("backend", "inprocess") != "inprocess" or c.get("peer", "aiortc") != "aiortc":
        return None
    from translab.transport.external import parse_target  # noqa: PLC0415

    t = parse_target(url)
    if t.transport == "webrtc":
        return _set(c, transport="webrtc", mode="live")
    own = c["framing"] if c["transport"] == "websocket" and c["framing"] not in (None, "rtp") else None
    return _set(c, transport="websocket", framing=t.framing or own or "binary", tls=t.tls, mode="live")


def _rule_callconfig(c: dict[str, Any]) -> dict[str, Any] | None:
    """The engine's own check (CallConfig.resolved): fills transport/codec-dependent defaults."""
    from translab.config import CallConfig  # noqa: PLC0415

    fields = {k: v for k, v in c.items() if k not in EXTRA_FIELDS}
    try:
        cfg = CallConfig.from_dict(fields).resolved()
    except ConfigError:
        return None
    d = cfg.to_dict()
    d.pop("metrics", None)
    for k in SPARSE_FIELDS:
        if d.get(k) == call_fields().get(k):
            d.pop(k)
    return {**d, **{k: c[k] for k in EXTRA_FIELDS if k in c}}


def _defaults() -> dict[str, Any]:
    return call_fields()


RULES: tuple[Rule, ...] = (
    Rule("target", "no target: key removed (merged); a target cell is live on the in-process emulator, its "
         "transport (and WebSocket framing, from the URL's #fragment) follows the URL; chromium or netns "
         "target cells dropped", _rule_target),
    Rule("webrtc-framing", "framing applies to WebSocket only: WebRTC cells get framing=rtp (merged)",
         _rule_webrtc_framing),
    Rule("webrtc-codec", "WebRTC carries Opus only here (aiortc has no PCM16 payload type): other "
         "codecs dropped", _rule_webrtc_codec),
    Rule("websocket-rtp", "framing rtp is WebRTC's: dropped for WebSocket", _rule_websocket_rtp),
    Rule("twilio-json", "twilio-json carries mu-law 8 kHz 20 ms: codec, rate and frame set (merged); "
         "Opus dropped", _rule_twilio),
    Rule("realtime-json", "realtime-json carries PCM16 24 kHz: codec and rate set (merged); Opus dropped",
         _rule_realtime),
    Rule("pcm-settings", "bitrate, FEC, DTX, complexity are Opus settings: reset for PCM (merged); "
         "mu-law is 8 kHz", _rule_pcm_settings),
    Rule("conceal-codec", "opus-plc/opus-fec need Opus, pcm-plc needs PCM, opus-fec needs fec=true: "
         "dropped", _rule_conceal_codec),
    Rule("opus-frames", "Opus frames are 2.5 to 60 ms: 100 ms dropped for Opus", _rule_opus_frames),
    Rule("netns", "netns keys are removed from in-process cells (merged); a netns cell is live; "
         "WebSocket netns cells reset callee_nat, callee_firewall, ice, relay_only (merged); relay_only "
         "without a TURN ice option dropped", _rule_netns),
    Rule("protection-webrtc", "nack, red, abr and fec_loss=measured are WebRTC (RTP) mechanisms: WebSocket "
         "cells with any of them dropped", _rule_protection),
    Rule("peer", "peer aiortc is the default and removed (merged); a chromium cell is live, WebRTC on the "
         "in-process emulator: WebSocket or netns chromium cells dropped", _rule_peer),
    Rule("callconfig", "anything else CallConfig.resolved() refuses is dropped; defaults that depend "
         "on transport and codec (codec, sample_rate, framing, conceal) are filled in",
         _rule_callconfig),
)


#: The rule of conversation cells: applied first; a conversation cell is checked by it alone (the other
#: rules are about one-way calls).
CONVERSATION_RULE = Rule("conversation", "conversation keys removed from one-way cells (merged); a "
                         "conversation cell keeps profile, seed, mode and its conversation keys (merged); "
                         "edge_playout means nothing on direct-ws (merged); netns conversation cells, and "
                         "live ones whose RTP edge is not aiortc-stock, dropped", _rule_conversation)


def normalise_cell(cell: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any] | None:
    """Apply :data:`CONVERSATION_RULE`, then (one-way cells) :data:`RULES` in order; returns the
    normalised cell or None when a rule drops it.

    ``counts`` (optional) is incremented for the rule that dropped the cell. Cells a rule normalised
    into the same cell as another are merged later and counted as "duplicate" by :func:`expand`.
    """
    conversation = cell.get("topology") is not None
    c: dict[str, Any] | None = dict(cell)
    for rule in (CONVERSATION_RULE,) if conversation else (CONVERSATION_RULE, *RULES):
        assert c is not None
        c = rule.apply(c)
        if c is None:
            if counts is not None:
                counts[rule.name] = counts.get(rule.name, 0) + 1
            return None
    return c


#: The largest grid expanded: product combinations summed over the [[grid]] blocks (before the
#: validity rules). Expanding keeps every cell (a dict of ~30 keys) and its key in memory, about 1 KB a
#: combination (measured: 20,000 one-block cells add ~20 MB and expand in ~1 s), and a run of this many
#: simulated cells already takes hours on two cores; a grid of 10^7 combinations would need ~10 GB
#: before the first cell ran. Split a larger study into several experiment files (each its own --out).
MAX_GRID_COMBINATIONS = 20_000


def block_sizes(exp: Experiment) -> list[int]:
    """Product combinations of each [[grid]] block (the product of its lists' lengths), computed from
    the axes without expanding anything."""
    sizes = []
    for block in exp.blocks:
        n = 1
        for values in block.values():
            n *= len(values)
        sizes.append(n)
    return sizes


def check_grid_size(exp: Experiment) -> int:
    """The grid's number of product combinations; ConfigError when over :data:`MAX_GRID_COMBINATIONS`."""
    sizes = block_sizes(exp)
    total = sum(sizes)
    if total > MAX_GRID_COMBINATIONS:
        blocks = " + ".join(f"{n:,}" for n in sizes)
        raise ConfigError("grid", f"{total:,} combinations ({blocks} over {len(sizes)} block(s))",
                          f"at most {MAX_GRID_COMBINATIONS:,} combinations: split the study into "
                          "several experiment files", where=exp.source)
    return total


@dataclass
class Expansion:
    """The expanded grid: unique ``cells`` in a stable order, and how many product cells each rule
    dropped, ``exclude`` removed, and ``duplicate`` merged into an earlier identical cell."""

    cells: list[dict[str, Any]]
    product_size: int
    dropped: dict[str, int]


def _matches(cell: dict[str, Any], pattern: dict[str, list[Any]]) -> bool:
    return all(cell.get(k, EXTRA_FIELDS.get(k)) in vs for k, vs in pattern.items())


def expand(exp: Experiment) -> Expansion:
    """Expand the grid blocks: product of each block over defaults and CallConfig defaults, validity
    rules, ``[[exclude]]``, then de-duplication (first occurrence kept). Cells carry every key of
    :func:`cell_keys` (but :data:`SPARSE_FIELDS` at their default) plus ``metrics`` (a list). Refuses a grid over :data:`MAX_GRID_COMBINATIONS`."""
    check_grid_size(exp)
    base = {**call_fields(), **EXTRA_FIELDS, **exp.defaults}
    if base.get("clip") is None:  # pin the clip so the cell hash names the audio actually used
        clips = known_clips()
        base["clip"] = clips[0] if clips else None
    counts: dict[str, int] = {}
    seen: set[str] = set()
    cells: list[dict[str, Any]] = []
    total = 0
    for block in exp.blocks:
        keys = list(block)
        for combo in itertools.product(*(block[k] for k in keys)):
            total += 1
            cell = {**base, **dict(zip(keys, combo))}
            if cell.get("bitrate") is not None:
                cell["bitrate"] = parse_bitrate(cell["bitrate"])
            norm = normalise_cell(cell, counts)
            if norm is None:
                continue
            if any(_matches(norm, pat) for pat in exp.exclude):
                counts["exclude"] = counts.get("exclude", 0) + 1
                continue
            norm["metrics"] = list(exp.metrics)
            key = json.dumps(norm, sort_keys=True, default=str)
            if key in seen:
                counts["duplicate"] = counts.get("duplicate", 0) + 1
                continue
            seen.add(key)
            cells.append(norm)
    return Expansion(cells=cells, product_size=total, dropped=counts)


def grid_summary(exp: Experiment) -> dict[str, list[Any]]:
    """For display: each key that varies across the expanded cells, with its distinct values."""
    cells = exp.cells()
    out: dict[str, list[Any]] = {}
    for k in cell_keys():
        vals: list[Any] = []
        for c in cells:
            if c.get(k) not in vals:
                vals.append(c.get(k))
        if len(vals) > 1:
            out[k] = vals
    return out


def describe_rules() -> list[tuple[str, str]]:
    """(name, description) of every validity rule, for documentation and the report."""
    return [(r.name, r.doc) for r in (CONVERSATION_RULE, *RULES)]


def iter_cells(paths: Iterable[str | Path]) -> Iterable[dict[str, Any]]:
    """All cells of several experiment files, in order."""
    for p in paths:
        yield from load_experiment(p).cells()
