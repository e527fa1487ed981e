"""Report figures: each plots what its axis and caption say (hand-made result tables and frame logs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from translab.report import claims as C
from translab.report import figures as F
from report_rows import cells, table


def row(**kw: object) -> dict:
    base = {"status": "ok", "mode": "simulate", "codec": "opus", "conceal": "opus-fec", "playout": "adaptive",
            "fec": True, "frame_ms": 20, "seed": 1, "profile": "4g", "transport": "webrtc"}
    return {**base, **kw}


def test_quality_loss_compares_concealment_like_for_like_with_intervals() -> None:
    d = table(cells(C.OPUS_PLC, "4g", np.random.default_rng(1), plcmos=(3.9, 0.1), effective_loss_rate=0.03),
              cells(C.OPUS_ZERO, "4g", np.random.default_rng(2), plcmos=(3.1, 0.1), effective_loss_rate=0.03),
              # a FEC-on cell with other numbers must not be pooled into the PLC bar
              cells(C.WEBRTC, "4g", np.random.default_rng(3), plcmos=(2.0, 0.1), effective_loss_rate=0.01))
    ax = F.quality_loss(d).axes[0]
    bars = {t.get_text().split("\n")[0]: p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches)}
    assert bars[C.OPUS_PLC.label] == pytest.approx(d[d["conceal"] == "opus-plc"]["plcmos"].mean())
    assert bars[C.WEBRTC.label] == pytest.approx(2.0, abs=0.1)
    labels = " ".join(t.get_text() for t in ax.texts)
    assert "n=20" in labels and "[" in labels  # every bar says its n and interval
    assert "never played 3.0%" in " ".join(t.get_text() for t in ax.get_yticklabels())


def test_quality_bitrate_uses_pesq_with_fec_off_and_intervals() -> None:
    rows = [cells(C.opus_no_fec(k), "clean-lan", np.random.default_rng(k), pesq_wb=(q, 0.05), codec_pesq_wb=q + 0.01)
            for k, q in ((12, 3.6), (24, 4.2), (64, 4.4))]
    rows.append(cells(C.WEBRTC, "clean-lan", np.random.default_rng(0), pesq_wb=(1.0, 0.05)))  # FEC on: not plotted
    ax = F.quality_bitrate(table(*rows)).axes[0]
    opus = [c for c in ax.containers if str(c.get_label()).startswith("Opus, FEC off")]
    assert opus and list(np.round(opus[0].lines[0].get_ydata(), 1)) == [3.6, 4.2, 4.4]
    assert "PESQ-WB" in ax.get_ylabel() and len(ax.get_legend().get_texts()) <= 3


def _cell(run: Path, h: str, m2e: list[float]) -> None:
    p = run / "cells" / h
    p.mkdir(parents=True)
    pd.DataFrame({"m2e_ms": m2e}).to_parquet(p / "frames.parquet")


def test_latency_cdf_uses_the_exact_settings_adds_lookahead_and_reports_the_cut(tmp_path: Path) -> None:
    _cell(tmp_path, "a", [50.0] * 999 + [5000.0])
    _cell(tmp_path, "b", [400.0] * 100)
    _cell(tmp_path, "c", [40.0] * 100)
    rtc = dict(C.WEBRTC.values)
    d = pd.DataFrame([
        row(**rtc, cell_hash="a", budget_lookahead_ms=6.5, m2e_p50_ms=56.5, m2e_p95_ms=56.5, m2e_p99_ms=56.5),
        row(**{**rtc, "playout": "aiortc-stock"}, cell_hash="b", budget_lookahead_ms=6.5, m2e_p50_ms=406.5,
            m2e_p95_ms=406.5, m2e_p99_ms=406.5),
        row(**dict(C.WS_BINARY.values), cell_hash="c", budget_lookahead_ms=0.0, m2e_p50_ms=40.0, m2e_p95_ms=40.0,
            m2e_p99_ms=40.0)])
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
    rtc = dict(C.WEBRTC.values)
    d = pd.DataFrame([row(**rtc, **parts, budget_jitter_buffer_ms=40.0, m2e_mean_ms=96.5),
                      row(**rtc, **parts, budget_jitter_buffer_ms=60.0, m2e_mean_ms=116.5, seed=2),
                      row(**{**rtc, "playout": "fixed:900"}, **parts, budget_jitter_buffer_ms=900.0, m2e_mean_ms=956.5)])
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


def test_setup_time_shows_n_spread_and_the_medians_interval() -> None:
    rtc = [row(mode="live", profile="clean-lan", setup_first_rtp_received_ms=v, setup_answer_received_ms=20.0, seed=i)
           for i, v in enumerate((100.0, 140.0, 120.0, 130.0))]
    in_process = [row(mode="live", profile="clean-lan", setup_first_rtp_received_ms=30.0, seed=9)]  # not like for like
    ws = [row(mode="live", profile="clean-lan", transport="websocket", setup_first_frame_received_ms=80.0)]
    ax = F.setup_time(pd.DataFrame(rtc + in_process + ws)).axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert any("webrtc" in t and "n=4" in t for t in ticks) and any("websocket" in t and "n=1" in t for t in ticks)
    # every call is a dot (the in-process WebRTC call is left out); the median's interval is a whisker
    dots = sorted(float(y) for ln in ax.lines if ln.get_marker() == "." for y in ln.get_ydata())
    assert dots == [80.0, 100.0, 120.0, 130.0, 140.0]
    assert sum(type(c).__name__ == "ErrorbarContainer" for c in ax.containers) == 1  # n=1 has no interval
    assert "median's 95 %" in F.FIGURES["setup_time"][2] and "HTTPS POST" in F.FIGURES["setup_time"][2]


def test_captions_state_the_filters() -> None:
    assert C.WEBRTC.label in F.FIGURES["latency_cdf"][2] and "lookahead" in F.FIGURES["latency_cdf"][2]
    assert "FEC off" in F.FIGURES["quality_bitrate"][2] and "PESQ-WB" in F.FIGURES["quality_bitrate"][2]
    assert "MEAN" in F.latency_budget.__doc__ and "mean" in F.FIGURES["latency_budget"][2]


def test_playout_policy_bars_have_n_and_intervals_and_no_rotated_labels() -> None:
    d = table(cells(C.WEBRTC, "4g", np.random.default_rng(1), m2e_p95_ms=(120.0, 10.0), plcmos=(3.8, 0.1)),
              cells(C.WEBRTC_FIXED, "4g", np.random.default_rng(2), m2e_p95_ms=(90.0, 5.0), plcmos=(3.2, 0.1)))
    fig = F.playout_policy(d)
    texts = [t for ax in fig.axes for t in ax.texts]
    assert len(texts) == 4 and all("n=20" in t.get_text() and "[" in t.get_text() for t in texts)
    assert all(t.get_rotation() == 0 for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels())


def test_claims_do_not_rank_transports_on_the_emodel_alone() -> None:
    base = [row(transport=t, profile=p, codec=c, conceal=k, m2e_p50_ms=50.0, m2e_p95_ms=p95, m2e_p99_ms=p95,
                plcmos=4.0, emodel_mos=1.0 if t == "webrtc" else 4.5)
            for t, c, k in (("webrtc", "opus", "opus-fec"), ("websocket", "pcm16", "pcm-plc"))
            for p, p95 in (("clean-lan", 60.0), ("4g", 100.0 if t == "webrtc" else 300.0))]
    d = pd.DataFrame(base)
    flipped = d.assign(emodel_mos=5.0 - d["emodel_mos"])
    assert [(v.verdict, v.detail) for v in C.evaluate(d)] == [(v.verdict, v.detail) for v in C.evaluate(flipped)]
