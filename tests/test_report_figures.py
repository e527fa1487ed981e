"""Report figures: each plots what its axis and caption say (hand-made result tables and frame logs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from translab.report import claims as C
from translab.report import figures as F


def row(**kw: object) -> dict:
    base = {"status": "ok", "mode": "simulate", "codec": "opus", "conceal": "opus-fec", "playout": "adaptive",
            "fec": True, "frame_ms": 20, "seed": 1, "profile": "4g", "transport": "webrtc"}
    return {**base, **kw}


def test_quality_loss_plots_effective_loss_and_labels_it() -> None:
    d = pd.DataFrame([row(plcmos=3.0, concealed_ratio=0.0, effective_loss_rate=0.10, playout="elastic"),
                      row(plcmos=3.5, concealed_ratio=0.02, effective_loss_rate=0.02)])
    ax = F.quality_loss(d).axes[0]
    xs = sorted(x for c in ax.collections for x, _ in c.get_offsets())
    assert xs == pytest.approx([2.0, 10.0])  # the elastic cell skipped 10 % without concealing: not 0 %
    assert "lost, discarded late or skipped" in ax.get_xlabel()
    # an old run without the column falls back to the concealed share, and says so
    ax = F.quality_loss(d.drop(columns="effective_loss_rate")).axes[0]
    assert sorted(x for c in ax.collections for x, _ in c.get_offsets()) == pytest.approx([0.0, 2.0])
    assert "concealed" in ax.get_xlabel()


def test_quality_bitrate_uses_only_like_for_like_cells() -> None:
    d = pd.DataFrame([row(bitrate_bps=24000, plcmos=4.0), row(bitrate_bps=64000, plcmos=4.1),
                      row(bitrate_bps=24000, plcmos=2.0, fec=False, conceal="zero"),
                      row(bitrate_bps=24000, plcmos=2.5, playout="fixed:40"),
                      row(bitrate_bps=24000, plcmos=2.5, frame_ms=60),
                      row(transport="websocket", codec="pcm16", conceal="pcm-plc", sample_rate=16000,
                          framing="binary", plcmos=3.7, profile="4g"),
                      row(transport="websocket", codec="pcm16", conceal="pcm-plc", sample_rate=16000,
                          framing="binary", plcmos=4.3, profile="clean-lan"),
                      row(transport="websocket", codec="pcm16", conceal="zero", sample_rate=16000,
                          framing="binary", plcmos=1.0, profile="clean-lan")])
    ax = F.quality_bitrate(d).axes[0]
    opus = [ln for ln in ax.get_lines() if ln.get_label() == "opus / 4g"][0]
    assert list(opus.get_ydata()) == [4.0, 4.1]  # no dip from the FEC-off / fixed-buffer / 60 ms cells
    pcm = {ln.get_label(): ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_label().startswith("websocket")}
    # one reference per profile, none for the zero-fill variant
    assert sorted(pcm.values()) == [3.7, 4.3] and all(" / " in k for k in pcm)


def _cell(run: Path, h: str, m2e: list[float]) -> None:
    p = run / "cells" / h
    p.mkdir(parents=True)
    pd.DataFrame({"m2e_ms": m2e}).to_parquet(p / "frames.parquet")


def test_latency_cdf_filters_to_adaptive_adds_lookahead_and_reports_the_cut(tmp_path: Path) -> None:
    _cell(tmp_path, "a", [50.0] * 999 + [5000.0])
    _cell(tmp_path, "b", [400.0] * 100)
    _cell(tmp_path, "c", [40.0] * 100)
    d = pd.DataFrame([
        row(cell_hash="a", budget_lookahead_ms=6.5, m2e_p50_ms=56.5, m2e_p95_ms=56.5, m2e_p99_ms=56.5),
        row(cell_hash="b", playout="aiortc-stock", budget_lookahead_ms=6.5, m2e_p50_ms=406.5,
            m2e_p95_ms=406.5, m2e_p99_ms=406.5),
        row(cell_hash="c", transport="websocket", codec="pcm16", conceal="pcm-plc", budget_lookahead_ms=0.0,
            m2e_p50_ms=40.0, m2e_p95_ms=40.0, m2e_p99_ms=40.0)])
    fig = F.latency_cdf(d, tmp_path)
    ax = fig.axes[0]
    lines = {ln.get_label(): np.asarray(ln.get_xdata()) for ln in ax.get_lines()}
    assert len(lines["webrtc"]) == 1000  # the aiortc-stock cell is not pooled in
    assert lines["webrtc"][0] == pytest.approx(56.5) and lines["websocket"][0] == pytest.approx(40.0)
    # the one 5 s frame is beyond the axis: the panel says so instead of hiding it
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "0.1%" in texts and "max 5006" in texts
    assert ax.get_xlim()[1] < 5000


def test_latency_budget_parts_add_up_to_the_mean_tick() -> None:
    parts = {"budget_framing_ms": 20.0, "budget_lookahead_ms": 6.5, "budget_network_ms": 30.0}
    d = pd.DataFrame([row(**parts, budget_jitter_buffer_ms=40.0, m2e_mean_ms=96.5),
                      row(**parts, budget_jitter_buffer_ms=60.0, m2e_mean_ms=116.5, seed=2),
                      row(**parts, budget_jitter_buffer_ms=900.0, m2e_mean_ms=956.5, playout="fixed:900")])
    ax = F.latency_budget(d).axes[0]
    right = max(p.get_x() + p.get_width() for p in ax.patches)
    tick = [ln for ln in ax.get_lines() if ln.get_label() == "measured mean m2e"][0]
    assert right == pytest.approx(106.5) and tick.get_xdata()[0] == pytest.approx(106.5)
    assert "(n=2)" in ax.get_yticklabels()[0].get_text()


def test_bandwidth_labels_the_downlink_control_as_downlink() -> None:
    d = pd.DataFrame([row(profile="clean-lan", payload_kbps_up=24.0, message_kbps_up=24.0, media_wire_kbps_up=40.0,
                          wire_kbps_up=42.0, control_kbps_down=3.0, bitrate_bps=24000)])
    fig = F.bandwidth_stack(d)
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any(lab.startswith("DOWNLINK") for lab in labels)
    assert not any("reverse" in lab and "DOWNLINK" not in lab for lab in labels)


def test_setup_time_shows_n_and_spread() -> None:
    d = pd.DataFrame([row(mode="live", profile="clean-lan", setup_first_rtp_received_ms=v) for v in (100.0, 140.0)]
                     + [row(mode="live", profile="clean-lan", transport="websocket", setup_first_frame_received_ms=80.0)])
    ax = F.setup_time(d).axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert any("n=2" in t for t in ticks) and any("n=1" in t for t in ticks)
    assert ax.containers and any(type(c).__name__ == "ErrorbarContainer" for c in ax.containers)
    assert "0.3 ms" in F.FIGURES["setup_time"][2]


def test_captions_state_the_filters() -> None:
    assert C.LIKE_FOR_LIKE in F.FIGURES["latency_cdf"][2] and "lookahead" in F.FIGURES["latency_cdf"][2]
    assert C.BITRATE_CELLS in F.FIGURES["quality_bitrate"][2]
    assert "MEAN" in F.latency_budget.__doc__ and "mean" in F.FIGURES["latency_budget"][2]


def test_playout_policy_labels_show_frames_never_played() -> None:
    d = pd.DataFrame([row(playout="elastic", m2e_p95_ms=300.0, concealed_ratio=0.0, effective_loss_rate=0.08),
                      row(playout="adaptive", m2e_p95_ms=120.0, concealed_ratio=0.03, effective_loss_rate=0.01)])
    ax = F.playout_policy(d).axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0.0% / 8.0%", "3.0% / 1.0%"]  # elastic's skipped 8 % is not hidden behind 0 % concealed


def test_claims_do_not_rank_transports_on_the_emodel_alone() -> None:
    base = [row(transport=t, profile=p, codec=c, conceal=k, m2e_p50_ms=50.0, m2e_p95_ms=p95, m2e_p99_ms=p95,
                plcmos=4.0, emodel_mos=1.0 if t == "webrtc" else 4.5)
            for t, c, k in (("webrtc", "opus", "opus-fec"), ("websocket", "pcm16", "pcm-plc"))
            for p, p95 in (("clean-lan", 60.0), ("4g", 100.0 if t == "webrtc" else 300.0))]
    d = pd.DataFrame(base)
    flipped = d.assign(emodel_mos=5.0 - d["emodel_mos"])
    assert [(v.verdict, v.detail) for v in C.evaluate(d)] == [(v.verdict, v.detail) for v in C.evaluate(flipped)]
