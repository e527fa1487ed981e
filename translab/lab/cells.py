"""Cell functions: what the runner calls for one cell of an experiment.

A cell function takes ``(cell, out_dir)``, where ``cell`` is a dict of CallConfig fields plus ``mode``
and ``metrics``, writes the cell's artefacts into ``out_dir`` (an empty directory) and returns the
summary row (a flat dict). It raises on failure; the runner turns that into a failed row. Cell functions
must be importable module-level functions so worker processes (local or Dask) can unpickle them.

* :func:`run_cell` (the default) dispatches on ``mode``: :func:`simulate_cell` or :func:`live_cell`.
* :func:`toy_cell` is a fast, deterministic stand-in used by tests and ``translab run --cell-function``
  to exercise the runner without the engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

#: Keys of a cell that are not CallConfig fields.
RUNNER_KEYS = ("mode",)


def call_config(cell: dict[str, Any]) -> Any:
    """The :class:`translab.config.CallConfig` of a cell (runner keys removed)."""
    from translab.config import CallConfig

    return CallConfig.from_dict({k: v for k, v in cell.items() if k not in RUNNER_KEYS})


def _save_frames(result: Any, out_dir: Path) -> None:
    """Keep the playout frames log (m2e per played block) for latency CDFs in figures."""
    frames = getattr(getattr(result, "playout", None), "frames", None)
    if frames is not None:
        cols = [c for c in ("play_s", "media_ts", "samples", "kind", "m2e_ms") if c in frames.columns]
        frames[cols].to_parquet(out_dir / "frames.parquet", index=False)


def network_delay(trace: Any) -> dict[str, float]:
    """Transport-level delay of a call's received packets, arrival - send (ms): p50, p95, p99, max.
    For WebSocket this includes TCP retransmission and head-of-line waits; playout is not included."""
    import numpy as np

    d = (trace["arrival_s"].to_numpy(dtype=float) - trace["send_s"].to_numpy(dtype=float)) * 1000.0
    d = d[~np.isnan(d)]
    if not d.size:
        return {}
    p50, p95, p99 = np.percentile(d, [50, 95, 99])
    return {"net_delay_p50_ms": float(p50), "net_delay_p95_ms": float(p95), "net_delay_p99_ms": float(p99),
            "net_delay_max_ms": float(d.max())}


def simulate_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Simulate one call (translab.simulate) and write trace.parquet, output.wav, summary.json and
    frames.parquet into ``out_dir``."""
    from translab.simulate import simulate

    result = simulate(call_config(cell), out_dir=out_dir)
    _save_frames(result, Path(out_dir))
    return {**result.summary, **network_delay(result.trace)}


def live_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Run one live call in real time (translab.live) and write the same artefacts as a simulated
    cell. Live calls are never run in parallel by the runner."""
    from translab.live import live_call

    result = run_outside_event_loop(lambda: live_call(call_config(cell), out_dir=out_dir))
    _save_frames(result, Path(out_dir))
    return {**result.summary, **network_delay(result.trace)}


def run_outside_event_loop(fn: Callable[[], Any]) -> Any:
    """``fn()``, in a helper thread when this thread already runs an asyncio loop (Jupyter), because
    a live call starts its own loop with ``asyncio.run``."""
    import asyncio
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="translab-live") as ex:
        return ex.submit(fn).result()


def run_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The default cell function: simulate or live by ``cell["mode"]``."""
    if cell.get("mode", "simulate") == "live":
        return live_cell(cell, out_dir)
    return simulate_cell(cell, out_dir)


def toy_cell(cell: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """A deterministic fake cell (no engine, milliseconds): plausible numbers derived from the cell,
    with the summary's column names, a ``frames.parquet`` and, for live cells, setup milestones.

    WebSocket gets no loss but a latency tail growing with the profile's impairment; Opus quality
    grows with bitrate; concealment ranks opus-fec > opus-plc > pcm-plc > repeat > zero.
    Fails (raises RuntimeError) when ``cell["seed"] == 666``; kills its process (``os._exit``) when
    ``cell["seed"] == 667`` (never use 667 with the serial executor). Sleeps ``TRANSLAB_TOY_SLEEP_S`` seconds
    (environment, default 0) so tests can interrupt a run.
    """
    import numpy as np
    import pandas as pd

    sleep_s = float(os.environ.get("TRANSLAB_TOY_SLEEP_S", "0") or 0)
    if sleep_s:
        time.sleep(sleep_s)
    if cell.get("seed") == 666:
        raise RuntimeError("toy failure for seed 666")
    if cell.get("seed") == 667:  # a crash: the worker process dies without a word
        os._exit(3)
    digest = hashlib.sha256(json.dumps(cell, sort_keys=True, default=str).encode()).digest()
    u = [b / 255 for b in digest[:8]]
    ws = cell.get("transport") == "websocket"
    codec = cell.get("codec") or ("pcm16" if ws else "opus")
    rate = int(cell.get("sample_rate") or (48000 if codec == "opus" else 24000))
    frame_ms = float(cell.get("frame_ms") or 20)
    profile = str(cell.get("profile"))
    bad = 0.0 if profile in ("clean-lan", "colocated") else 1.0
    loss = 0.0 if ws else bad * (0.01 + 0.03 * u[3])
    late = bad * 0.01 * u[4]
    conceal = cell.get("conceal") or ("opus-fec" if codec == "opus" else "pcm-plc")
    gain = {"opus-fec": 0.5, "opus-plc": 0.4, "pcm-plc": 0.3, "repeat": 0.15, "zero": 0.0}.get(conceal, 0.0)
    bitrate = int(cell.get("bitrate") or 24000)
    payload_kbps = bitrate / 1000 if codec == "opus" else (rate * 16 / 1000 if codec == "pcm16" else 64.0)
    framing = cell.get("framing") or ("rtp" if not ws else "binary")
    message_kbps = payload_kbps * (4 / 3 + 0.05 if framing.endswith("json") else 1.0)
    per_pkt = (20 + 8 + 12 + 8 + 10) if not ws else (20 + 32 + 22 + 6)
    media_wire = message_kbps + per_pkt * 8 / frame_ms
    base = frame_ms + (6.5 if codec == "opus" else 0.0) + 1 + 40 * bad
    jb = 20 + 30 * bad + (60 * bad if ws else 0)
    quality_codec = (3.0 + 0.9 * min(bitrate, 32000) / 32000) if codec == "opus" else 4.0
    summary = {
        "transport": cell.get("transport"), "codec": codec, "bitrate_bps": bitrate if codec == "opus"
        else int(payload_kbps * 1000), "frame_ms": frame_ms, "sample_rate": rate, "framing": framing,
        "profile": profile, "seed": cell.get("seed"), "playout": cell.get("playout"), "conceal": conceal,
        "loss_rate": loss, "late_rate": late, "concealed_ratio": loss + late,
        "stalls": int(bad * 3) if ws and cell.get("playout") == "elastic" else 0,
        "tcp_retransmissions": int(bad * 10) if ws else 0,
        "m2e_p50_ms": base + jb, "m2e_p95_ms": base + jb + 25 * bad * (1 + 2 * ws) + 5 * u[1],
        "m2e_p99_ms": base + jb + 40 * bad * (1 + 4 * ws) + 8 * u[2],
        "net_delay_p50_ms": 1 + 35 * bad, "net_delay_p99_ms": 1 + 35 * bad + 30 * bad * (1 + 5 * ws) + 2 * u[6],
        "budget_framing_ms": frame_ms, "budget_lookahead_ms": 6.5 if codec == "opus" else 0.0,
        "budget_network_ms": 1 + 40 * bad, "budget_jitter_buffer_ms": jb,
        "payload_kbps_up": payload_kbps, "message_kbps_up": message_kbps, "media_wire_kbps_up": media_wire,
        "wire_kbps_up": media_wire + (1.3 if not ws else 0.0), "control_kbps_down": 0.9 if not ws else 10.0,
        "plcmos": quality_codec - 20 * (loss + late) * (1 - gain), "codec_plcmos": quality_codec,
        "emodel_mos": 4.2 - 2 * (loss + late) - 0.01 * jb, "mode": cell.get("mode", "simulate"),
    }
    if cell.get("mode") == "live":
        key = "setup_first_rtp_received_ms" if not ws else "setup_first_frame_received_ms"
        summary[key] = (120 + 10 * u[5]) if not ws else (5 + 2 * u[5])
    rng = np.random.default_rng(int.from_bytes(digest[:4], "little"))
    m2e = summary["m2e_p50_ms"] + rng.gamma(2.0, 4 + 10 * bad * (1 + 3 * ws), size=200)
    pd.DataFrame({"play_s": np.arange(200) * 0.02, "m2e_ms": m2e}).to_parquet(Path(out_dir) / "frames.parquet")
    (Path(out_dir) / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
