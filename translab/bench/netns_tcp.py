"""Model against kernel: WebSocket calls over the same lossy links, once with the simulator's TCP
delivery model (translab.link.tcp.TcpDeliveryModel) and once live on the namespace backend (real
kernel TCP, the same link models in the forwarder); frame delay p50/p95/p99 and stall counts.

The links: a constant one-way delay and Bernoulli loss of ``loss_pct`` on both the data (up) and
the ACK (down) direction, written as a profile file per loss rate. Frame delay = arrival - send
(ms) per WebSocket message; a stall is a gap of more than 3 frame durations between consecutive
in-order deliveries (head-of-line blocking after a loss).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

DELAY_MS = 25.0


def profile_file(directory: Path, loss_pct: float, delay_ms: float = DELAY_MS) -> Path:
    """A profile TOML with constant delay and Bernoulli loss in both directions."""
    p = directory / f"tcp-loss-{loss_pct:g}pct.toml"
    body = "\n".join([
        f'description = "constant {delay_ms:g} ms, {loss_pct:g} % Bernoulli loss both ways"',
        'source = "translab bench netns_tcp"',
        *[f"[{d}]\ndelay = {{ base_ms = {delay_ms:g} }}\nloss = {{ model = \"bernoulli\", p = {loss_pct / 100:g} }}"
          for d in ("up", "down")],
    ])
    p.write_text(body + "\n")
    return p


def frame_figures(trace: Any, frame_ms: float) -> dict[str, float]:
    """Frame delay percentiles (ms) and stall count of a WebSocket arrival trace."""
    t = trace.sort_values("seq")
    d = ((t["arrival_s"] - t["send_s"]) * 1e3).dropna().to_numpy()
    arr = t["arrival_s"].dropna().to_numpy()
    gaps = np.diff(arr) * 1e3
    return {
        "frames": int(len(d)),
        "delay_p50_ms": float(np.percentile(d, 50)) if len(d) else float("nan"),
        "delay_p95_ms": float(np.percentile(d, 95)) if len(d) else float("nan"),
        "delay_p99_ms": float(np.percentile(d, 99)) if len(d) else float("nan"),
        "stalls": int((gaps > 3 * frame_ms).sum()),
    }


#: TcpDeliveryModel variants tried against the kernel (keyword arguments of the model).
MODEL_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},  # loss_detection="rack" since RACK became the default
    "rack-linux-rto": {"rto_formula": "linux"},
    "dupack": {"loss_detection": "dupack"},  # the old default (dupthresh 3)
    "dupack-dupthresh1": {"loss_detection": "dupack", "dupthresh": 1},
}


def model_variant_figures(cfg: Any, stream: Any, frame_ms: float, _counters: dict[str, Any] | None = None,
                          **tcp_kw: Any) -> dict[str, float]:
    """Frame figures of the TCP delivery model with extra keyword arguments, on exactly the inputs
    ``simulate`` uses for a WebSocket call (same profile, seed, byte counts). ``_counters``: a dict
    that receives the model's timeouts and fast retransmits."""
    from translab.link.profiles import direction_rngs, load_profile
    from translab.link.tcp import TcpDeliveryModel
    from translab.metrics.bandwidth import HeaderModel, ws_tcp_payload_bytes

    hm = HeaderModel(ip_version=cfg.ip_version, tls=cfg.tls)
    assert hm.mss is not None  # filled in by HeaderModel
    prof = load_profile(cfg.profile)
    rngs = direction_rngs(cfg.seed)
    nbytes = np.array([ws_tcp_payload_bytes(int(b), True, hm) for b in stream.message_bytes], dtype=np.int64)
    send = stream.capture_s.astype(float)
    res = TcpDeliveryModel(prof.chain("up"), prof.chain("down"), mss=hm.mss, **tcp_kw).deliver(
        send, nbytes, rngs["up"], rngs["down"])
    import pandas as pd

    if _counters is not None:
        _counters["model_tcp_timeouts"] = int(res.timeouts)
        _counters["model_tcp_fast_retransmits"] = int(res.fast_retransmits)
    t = pd.DataFrame({"seq": np.arange(len(send)), "send_s": send, "arrival_s": res.delivered_s})
    return frame_figures(t, frame_ms)


def compare(loss_pcts: tuple[float, ...] = (1.0, 3.0, 5.0), duration_s: float = 20.0, seed: int = 1,
            tls: bool = False, seeds: tuple[int, ...] | None = None) -> list[dict[str, Any]]:
    """One row per loss rate (and seed, when ``seeds`` is given) with ``model_*`` and ``kernel_*``
    figures and the p95 ratio."""
    if seeds is not None:
        return [r for sd in seeds for r in compare(loss_pcts, duration_s, sd, tls)]
    from translab.config import CallConfig
    from translab.call.netns import NetnsOptions, netns_call
    from translab.simulate import simulate

    tmp = Path(tempfile.mkdtemp(prefix="tl-tcpcmp-"))
    rows = []
    for loss in loss_pcts:
        prof = profile_file(tmp, loss)
        cfg = CallConfig(transport="websocket", profile=str(prof), duration_s=duration_s, seed=seed,
                         metrics=(), tls=tls).resolved()
        sim = simulate(dataclasses.replace(cfg))
        live = netns_call(cfg, NetnsOptions(connect_timeout_s=5.0, drain_s=2.0))
        row: dict[str, Any] = {"loss_pct": loss, "seed": seed, "delay_ms": DELAY_MS, "duration_s": duration_s,
                               "frame_ms": float(cfg.frame_ms)}
        for name, res in (("model", sim), ("kernel", live)):
            for k, v in frame_figures(res.trace, float(cfg.frame_ms)).items():
                row[f"{name}_{k}"] = v
        row["kernel_status"] = live.summary.get("status")
        row["model_tcp_retransmissions"] = sim.summary.get("tcp_retransmissions")
        row["kernel_link_lost"] = live.summary.get("netns_link_lost")
        for k in ("retrans_segs", "timeouts", "loss_probes", "fast_retrans", "sack_recoveries", "spurious_rtos"):
            row[f"kernel_tcp_{k}"] = live.summary.get(f"kernel_tcp_{k}")
        row["model_tcp_timeouts"] = None  # filled below from the model's own counters
        row["p95_ratio_model_over_kernel"] = row["model_delay_p95_ms"] / row["kernel_delay_p95_ms"]
        from translab.media.stream import encode_stream
        from translab.simulate import load_reference

        stream = encode_stream(load_reference(cfg), cfg)
        dflt = model_variant_figures(cfg, stream, float(cfg.frame_ms), _counters=row)
        assert abs(dflt["delay_p95_ms"] - row["model_delay_p95_ms"]) < 1e-6, "model inputs differ from simulate's"
        for name, kw in MODEL_VARIANTS.items():
            if name == "default":
                continue
            f = model_variant_figures(cfg, stream, float(cfg.frame_ms), **kw)
            row[f"variant_{name}_delay_p95_ms"] = f["delay_p95_ms"]
            row[f"variant_{name}_delay_p99_ms"] = f["delay_p99_ms"]
            row[f"variant_{name}_stalls"] = f["stalls"]
            row[f"variant_{name}_p95_ratio"] = f["delay_p95_ms"] / row["kernel_delay_p95_ms"]
        rows.append(row)
    return rows


TABLE_FIGURES = ("delay_p50_ms", "delay_p95_ms", "delay_p99_ms", "stalls")


def table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per loss rate over the seeds: the median of each frame figure for the model, its variants
    and the kernel (stalls summed), the p95 ratio model/kernel of those medians, and the per-seed
    p95s. At 1 % loss a 10 s call has only a handful of losses, each delaying about 4 frames, so
    p95 sits on the knee of the delay distribution and swings between seeds: compare over seeds."""
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    for loss, g in df.groupby("loss_pct"):
        r: dict[str, Any] = {"loss_pct": float(loss), "seeds": len(g), "frames": int(g["kernel_frames"].sum())}
        for who in ("model", "kernel"):
            for f in TABLE_FIGURES:
                col = g[f"{who}_{f}"]
                r[f"{who}_{f}"] = float(col.sum() if f == "stalls" else col.median())
            r[f"{who}_p95_per_seed_ms"] = [round(float(v), 1) for v in g[f"{who}_delay_p95_ms"]]
        for name in MODEL_VARIANTS:
            if name != "default" and f"variant_{name}_delay_p95_ms" in g:
                r[f"variant_{name}_delay_p95_ms"] = float(g[f"variant_{name}_delay_p95_ms"].median())
                r[f"variant_{name}_p95_ratio"] = r[f"variant_{name}_delay_p95_ms"] / r["kernel_delay_p95_ms"]
        r["p95_ratio_model_over_kernel"] = r["model_delay_p95_ms"] / r["kernel_delay_p95_ms"]
        r["model_timeouts"] = int(g["model_tcp_timeouts"].sum())
        r["kernel_timeouts"] = int(pd.to_numeric(g["kernel_tcp_timeouts"], errors="coerce").sum())
        out.append(r)
    return out


def run(seeds: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    """`translab bench` entry: the comparison at 1, 3 and 5 % loss over ``seeds`` (about 40 s of
    real time per seed), summarised by :func:`table`."""
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    if reason:
        return {"skipped": reason}
    out: dict[str, Any] = {}
    for row in table(compare(seeds=seeds)):
        tag = f"loss{row['loss_pct']:g}pct"
        for k, v in row.items():
            if k not in ("loss_pct",):
                out[f"{tag}_{k}"] = v
    return out


if __name__ == "__main__":  # pragma: no cover
    from translab.jsonio import dumps
    import sys

    dur = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    seeds = tuple(int(x) for x in sys.argv[2].split(",")) if len(sys.argv) > 2 else (1,)
    rows = compare(duration_s=dur, seeds=seeds)
    for r in rows:
        print(dumps(r))
    for r in table(rows):
        print(dumps({"table": r}))
