"""Named network profiles: TOML files in ``data/profiles/`` that describe each direction's chain.

A profile file::

    description = "one line"
    source = "a citation, or assumption"      # where the numbers come from
    [up]                                      # client -> server
    delay = { base_ms = 35, jitter_ms = 10, distribution = "paretonormal", reorder = false }
    loss = { model = "gilbert-elliott", loss_percent = 1.0, avg_burst_length = 2.0 }
    duplication = { p = 0.0 }
    capacity = { rate_kbps = 5000, overhead_bytes = 0, queue_packets = 200 }
    outage = { start_s = 1, start_spread_s = 4, duration_s = 0.3, period_s = 10 }
    [down]                                    # server -> client
    ...

Every key is optional inside a direction; ``[up]`` and ``[down]`` must both be present (an empty
table is the ideal link). Loss models: ``none``; ``bernoulli`` (``p``); ``gilbert-elliott`` with
netem's ``p, r, one_minus_h, one_minus_k`` or libwebrtc's ``loss_percent, avg_burst_length``;
``4-state`` (``p13, p31, p32, p23, p14``); ``trace`` (``path``, ``offset``: a PLC-Challenge file,
looked up beside the profile, then in ``data/traces/``). Capacity: ``rate_kbps`` or ``trace`` (a
mahimahi file), ``overhead_bytes``, one of ``queue_packets`` / ``queue_bytes``. ``outage`` may be a
table or an array of tables; with ``start_spread_s`` each window starts at a seeded uniform offset in
``[0, start_spread_s)`` after its nominal time (:mod:`translab.link.outage`;
:func:`scheduled_windows` lists a call's windows). Chains are built in LinkChain's canonical order (chain.py). Unknown
keys, bad values and missing files raise :class:`ConfigError` when the profile is loaded.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from translab.errors import ConfigError, check_choice
from translab.link.base import LinkModel
from translab.link.capacity import CapacityQueue, TraceCapacity
from translab.link.chain import LinkChain
from translab.link.delay import DISTRIBUTIONS, Delay
from translab.link.duplication import Duplication
from translab.link.loss import BernoulliLoss, FourStateLoss, GilbertElliottLoss, NoLoss
from translab.link.loss_trace import TraceLoss, resolve_trace_path
from translab.link.outage import Outage
from translab.paths import PROFILES_DIR

DIRECTIONS: tuple[str, ...] = ("up", "down")
TOP_KEYS: tuple[str, ...] = ("name", "description", "source", "up", "down")
DIRECTION_KEYS: tuple[str, ...] = ("delay", "loss", "duplication", "capacity", "outage")
LOSS_MODELS: tuple[str, ...] = ("none", "bernoulli", "gilbert-elliott", "4-state", "trace")
_KEYS: dict[str, tuple[str, ...]] = {
    "delay": ("base_ms", "jitter_ms", "distribution", "reorder"),
    "duplication": ("p",),
    "capacity": ("rate_kbps", "trace", "overhead_bytes", "queue_packets", "queue_bytes"),
    "outage": ("start_s", "duration_s", "period_s", "start_spread_s"),
    "loss:none": ("model",),
    "loss:bernoulli": ("model", "p"),
    "loss:gilbert-elliott": ("model", "p", "r", "one_minus_h", "one_minus_k", "loss_percent", "avg_burst_length"),
    "loss:4-state": ("model", "p13", "p31", "p32", "p23", "p14"),
    "loss:trace": ("model", "path", "offset"),
}


def _check_keys(where: str, table: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(where, table, "a table of " + ", ".join(allowed))
    for k in table:
        if k not in allowed:
            raise ConfigError(f"{where}.{k}", table[k], "known keys: " + ", ".join(allowed))
    return table


def _build_loss(where: str, t: dict[str, Any], base_dir: "Path | None") -> LinkModel:
    model = t.get("model", "bernoulli" if "p" in t else None)
    check_choice(f"{where}.model", model, LOSS_MODELS)
    _check_keys(where, t, _KEYS[f"loss:{model}"])
    if model == "none":
        return NoLoss()
    if model == "bernoulli":
        return BernoulliLoss(t.get("p", 0.0))
    if model == "gilbert-elliott":
        webrtc = {"loss_percent", "avg_burst_length"} & set(t)
        netem = {"p", "r", "one_minus_h", "one_minus_k"} & set(t)
        if webrtc and netem:
            raise ConfigError(where, sorted(t), "either p, r, one_minus_h, one_minus_k or loss_percent, avg_burst_length")
        if webrtc:
            if set(webrtc) != {"loss_percent", "avg_burst_length"}:
                raise ConfigError(where, sorted(t), "both loss_percent and avg_burst_length")
            return GilbertElliottLoss.from_loss_burst(t["loss_percent"], t["avg_burst_length"])
        if "p" not in t:
            raise ConfigError(f"{where}.p", None, "a probability from 0 to 1 (Good -> Bad)")
        p = t["p"]
        r = t.get("r", 1.0 - float(p) if isinstance(p, (int, float)) else p)
        return GilbertElliottLoss(p, r, t.get("one_minus_h", 1.0), t.get("one_minus_k", 0.0))
    if model == "4-state":
        if "p13" not in t:
            raise ConfigError(f"{where}.p13", None, "a probability from 0 to 1")
        return FourStateLoss(t["p13"], t.get("p31"), t.get("p32", 0.0), t.get("p23", 0.0), t.get("p14", 0.0))
    if "path" not in t:
        raise ConfigError(f"{where}.path", None, "a PLC-Challenge loss trace file")
    return TraceLoss(resolve_trace_path(t["path"], base_dir), offset=t.get("offset", 0))


def build_chain(direction: dict[str, Any], where: str = "profile", base_dir: "Path | None" = None) -> LinkChain:
    """A fresh LinkChain from one direction's table (canonical order: outage, duplication,
    capacity, loss, delay). ConfigError for unknown keys or bad values."""
    d = _check_keys(where, direction, DIRECTION_KEYS)
    models: list[LinkModel] = []
    outs = d.get("outage")
    if outs is not None:
        for j, o in enumerate(outs if isinstance(outs, list) else [outs]):
            w = f"{where}.outage" + (f"[{j}]" if isinstance(outs, list) else "")
            o = _check_keys(w, o, _KEYS["outage"])
            for k in ("start_s", "duration_s"):
                if k not in o:
                    raise ConfigError(f"{w}.{k}", None, "a number >= 0 (s)")
            models.append(Outage(o["start_s"], o["duration_s"], o.get("period_s", 0.0), o.get("start_spread_s", 0.0)))
    if "duplication" in d:
        t = _check_keys(f"{where}.duplication", d["duplication"], _KEYS["duplication"])
        if t.get("p", 0.0):
            models.append(Duplication(t["p"]))
        else:
            Duplication(t.get("p", 0.0))  # validate
    if "capacity" in d:
        w = f"{where}.capacity"
        t = _check_keys(w, d["capacity"], _KEYS["capacity"])
        limits = dict(queue_packets=t.get("queue_packets"), queue_bytes=t.get("queue_bytes"))
        if ("rate_kbps" in t) == ("trace" in t):
            raise ConfigError(w, sorted(t), "exactly one of rate_kbps or trace")
        if "trace" in t:
            models.append(TraceCapacity(resolve_trace_path(t["trace"], base_dir), t.get("overhead_bytes", 0), **limits))
        else:
            models.append(CapacityQueue(t["rate_kbps"], t.get("overhead_bytes", 0), **limits))
    if "loss" in d:
        lm = _build_loss(f"{where}.loss", d["loss"], base_dir)
        if not isinstance(lm, NoLoss):
            models.append(lm)
    if "delay" in d:
        t = _check_keys(f"{where}.delay", d["delay"], _KEYS["delay"])
        dist = t.get("distribution", "normal")
        check_choice(f"{where}.delay.distribution", dist, DISTRIBUTIONS)
        for k in ("base_ms", "jitter_ms"):
            v = t.get(k, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0):
                raise ConfigError(f"{where}.delay.{k}", v, "a number >= 0 (ms)")
        models.append(
            Delay(t.get("base_ms", 0.0) / 1000.0, t.get("jitter_ms", 0.0) / 1000.0, dist, t.get("reorder", False))
        )
    return LinkChain(models)


@dataclass
class Profile:
    """A named link profile: ``params`` holds the raw TOML (``up`` and ``down`` tables)."""

    name: str
    description: str
    source: str
    params: dict[str, Any] = field(repr=False)
    path: "Path | None" = None

    def chain(self, direction: str) -> LinkChain:
        """A fresh LinkChain for ``direction`` ("up" = client to server, "down" = server to client)."""
        check_choice("direction", direction, DIRECTIONS)
        base_dir = self.path.parent if self.path else None
        return build_chain(self.params[direction], f"{self.name}.{direction}", base_dir)

    def describe(self, direction: str) -> str:
        """One line of the direction's parameters, e.g. ``delay 35 ms + paretonormal 10 ms; ...``,
        with the loss model's long-run loss rate and mean burst length appended."""
        text = describe_direction(self.params.get(direction, {}))
        for m in self.chain(direction):
            expected = getattr(m, "expected", None)
            if expected is not None and not isinstance(m, Duplication):
                rate, burst = expected()
                b = f", mean burst {burst:.2g} pkts" if np.isfinite(burst) else ""
                text += f" [long-run loss {rate * 100:.3g} %{b}]"
        return text


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def describe_direction(d: dict[str, Any]) -> str:
    """Human summary of one direction's table (units in the text)."""
    parts: list[str] = []
    outs = d.get("outage")
    for o in outs if isinstance(outs, list) else ([outs] if outs else []):
        per = f" every {_fmt(o.get('period_s'))} s" if o.get("period_s") else ""
        at = (f"at a seeded time in {_fmt(o['start_s'])}-{_fmt(o['start_s'] + o['start_spread_s'])} s"
              if o.get("start_spread_s") else f"from {_fmt(o['start_s'])} s")
        parts.append(f"outage {_fmt(o['duration_s'])} s {at}{per}")
    if d.get("duplication", {}).get("p"):
        parts.append(f"duplicate {_fmt(d['duplication']['p'] * 100)} %")
    c = d.get("capacity")
    if c:
        q = ""
        if c.get("queue_packets"):
            q = f", queue {c['queue_packets']} pkts"
        elif c.get("queue_bytes"):
            q = f", queue {c['queue_bytes']} B"
        rate = f"{_fmt(c['rate_kbps'])} kbit/s" if "rate_kbps" in c else f"trace {c['trace']}"
        oh = f" +{c['overhead_bytes']} B/pkt" if c.get("overhead_bytes") else ""
        parts.append(f"capacity {rate}{oh}{q}")
    lo = d.get("loss")
    if lo and lo.get("model", "bernoulli") != "none":
        m = lo.get("model", "bernoulli")
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in lo.items() if k != "model")
        parts.append(f"loss {m}({args})")
    de = d.get("delay")
    if de:
        j = de.get("jitter_ms", 0)
        jit = f" + {de.get('distribution', 'normal')} {_fmt(j)} ms" if j else ""
        ro = ", reorder" if de.get("reorder") else ""
        parts.append(f"delay {_fmt(de.get('base_ms', 0))} ms{jit}{ro}")
    return "; ".join(parts) or "ideal"


def _read_profile(path: Path, name: "str | None" = None) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("profile", str(path), f"valid TOML ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("profile", str(path), f"a readable TOML file ({err.__class__.__name__})") from None
    where = path.name
    _check_keys(where, data, TOP_KEYS)
    for k in ("description", "source"):
        if not isinstance(data.get(k), str) or not data[k].strip():
            raise ConfigError(f"{where}.{k}", data.get(k), "a non-empty one-line string")
    for d in DIRECTIONS:
        if d not in data:
            raise ConfigError(f"{where}.{d}", None, f"a [{d}] table (empty for an ideal link)")
    prof = Profile(
        name=str(data.get("name") or name or path.stem),
        description=data["description"].strip(),
        source=data["source"].strip(),
        params={d: data[d] for d in DIRECTIONS},
        path=path,
    )
    for d in DIRECTIONS:  # validate now, not in the middle of a run
        prof.chain(d)
    return prof


def profile_names() -> list[str]:
    """Names of the profiles shipped in ``data/profiles/`` (sorted)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name_or_path: "str | Path") -> Profile:
    """A shipped profile by name, or a user's TOML file by path. ConfigError listing the names
    when neither exists, or naming the field when the file is invalid."""
    s = str(name_or_path)
    p = Path(s)
    if p.suffix == ".toml" and not p.is_file() and "/" not in s and (PROFILES_DIR / p.name).is_file():
        p = PROFILES_DIR / p.name  # "4g.toml" means the shipped file
    if p.suffix == ".toml" or p.is_file() or "/" in s:
        if not p.is_file():
            where = "" if p.is_absolute() else f" (relative paths are resolved against the working directory {Path.cwd()})"
            raise ConfigError("profile", s, "an existing .toml file" + where + ", or one of: "
                              + ", ".join(profile_names()))
        return _read_profile(p)
    shipped = PROFILES_DIR / f"{s}.toml"
    if not shipped.is_file():
        raise ConfigError("profile", s, ", ".join(profile_names()) + ", or a path to a .toml file")
    return _read_profile(shipped, s)


def list_profiles() -> list[Profile]:
    """Every shipped profile, sorted by name."""
    return [load_profile(n) for n in profile_names()]


def direction_rngs(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for "up" and "down" from ``np.random.SeedSequence(seed).spawn(2)``."""
    up, down = np.random.SeedSequence(seed).spawn(2)
    return {"up": np.random.default_rng(up), "down": np.random.default_rng(down)}


def retransmission_rng(seed: int) -> np.random.Generator:
    """The generator a WebRTC call's retransmissions (RTX) draw their uplink fates from: child 2 of
    ``np.random.SeedSequence(seed)`` (children 0 and 1 are :func:`direction_rngs`'), spawned into one
    stream per link model with ``LinkChain.side_streams``, so extra packets leave the original
    packets' draws as in the call without them. The simulator and the live emulator both use it."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def scheduled_windows(profile: Profile, seed: int, until_s: float, direction: str = "up") -> list[tuple[float, float]]:
    """The outage windows ``(start_s, end_s)`` (s, call clock) that a call with ``seed`` meets in
    ``direction`` before ``until_s``: the same times its chain draws (both are seeded by ``seed``)."""
    rng = direction_rngs(seed)[direction]
    out: list[tuple[float, float]] = []
    for m in profile.chain(direction):
        if isinstance(m, Outage):
            m.bind(rng)
            out += m.windows(until_s)
    return sorted(out)
