"""Claims and recommendations: paired, like for like, each verdict with its interval and cells
(hand-made tables with known effects drive each outcome)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from report_rows import cells, table
from translab.report import claims as C

RNG = np.random.default_rng


def transport_table(ws_p95: float = 300.0, rtc_p95: float = 120.0, clean_gap: float = -6.5) -> pd.DataFrame:
    return table(
        cells(C.WEBRTC, "clean-lan", RNG(1), m2e_p50_ms=(45.0, 0.5), m2e_p95_ms=(50.0, 0.5), plcmos=(4.0, 0.05, 0.3),
              budget_lookahead_ms=6.5),
        cells(C.WS_BINARY, "clean-lan", RNG(2), m2e_p50_ms=(45.0 + clean_gap, 0.5),
              m2e_p95_ms=(50.0 + clean_gap, 0.5), plcmos=(4.0, 0.05, 0.3), budget_lookahead_ms=0.0,
              net_delay_p50_ms=0.3, net_delay_p99_ms=0.4, tcp_retransmissions=0),
        cells(C.WEBRTC, "4g", RNG(3), m2e_p50_ms=(80.0, 5.0), m2e_p95_ms=(rtc_p95, 10.0), plcmos=(3.8, 0.1, 0.3)),
        cells(C.WS_BINARY, "4g", RNG(4), m2e_p50_ms=(90.0, 5.0), m2e_p95_ms=(ws_p95, 30.0), plcmos=(3.8, 0.1, 0.3),
              concealed_ratio=(0.02, 0.005), net_delay_p50_ms=(40.0, 2.0), net_delay_p99_ms=(300.0, 30.0),
              tcp_retransmissions=(20.0, 3.0)))


def test_every_measured_verdict_has_an_interval_metric_and_cells() -> None:
    d = pd.concat([transport_table(), plc_table(), bitrate_table()], ignore_index=True)
    d["payload_kbps_up"] = np.where(d["codec"] == "pcm16", 384.0, 24.0)
    d["sample_rate"] = np.where(d["codec"] == "pcm16", 24000, 48000)
    for v in C.evaluate(d):
        if v.verdict == C.NOT_MEASURED:
            continue
        assert v.tests and v.metrics and v.cells, v.key
        for t in v.tests:
            if "not measured" in t.name:  # set-up without live calls: says so, has nothing to list
                continue
            assert t.cells and t.config and t.metric, (v.key, t.name)
            assert t.estimate.has_interval and t.estimate.lo <= t.estimate.value <= t.estimate.hi, t
        assert set(v.cells) <= set(d["cell_hash"])


def test_bad_networks_supported_when_intervals_clear_and_inconclusive_when_not() -> None:
    v = C.claim_bad_networks(transport_table())
    assert v.verdict == C.SUPPORTED, v.detail
    assert [t.verdict for t in v.tests] == [C.SUPPORTED, C.SUPPORTED]
    assert "(n=20)" in v.detail and "[" in v.detail
    # a 1 ms gap on the 4g profile, with 10-30 ms noise: inconclusive, not a win
    v = C.claim_bad_networks(transport_table(ws_p95=121.0, rtc_p95=120.0))
    assert v.tests[1].verdict == C.INCONCLUSIVE and v.verdict == C.INCONCLUSIVE
    # WebSocket clearly better on 4g: refuted there; clean half still holds: depends
    v = C.claim_bad_networks(transport_table(ws_p95=60.0, rtc_p95=120.0))
    assert v.tests[1].verdict == C.REFUTED and v.verdict == C.DEPENDS


def test_comparisons_are_paired_by_seed_and_clip() -> None:
    d = transport_table()
    c = C.compare(d, C.WEBRTC, C.WS_BINARY, "plcmos", "clean-lan")
    # the shared clip effect (sd 0.3) cancels in the pairs: the interval is narrow around 0
    assert c.n == 20 and c.diff.hi - c.diff.lo < 0.1 and c.diff.lo < 0 < c.diff.hi
    assert len(c.cells) == 40
    # a unit that only one side ran is not paired
    c2 = C.compare(d.drop(index=d.index[0]), C.WEBRTC, C.WS_BINARY, "plcmos", "clean-lan")
    assert c2.n == 19 and len(c2.cells) == 38


def test_clean_latency_set_up_not_measured_without_ten_live_calls() -> None:
    v = C.claim_clean_latency(transport_table())
    steady, setup = v.tests
    assert steady.verdict == C.SUPPORTED and "m2e_p50_ms" in steady.metric
    assert setup.verdict == C.INCONCLUSIVE and "not measured" in setup.name and ">= 10" in setup.name
    assert v.verdict == C.INCONCLUSIVE
    # WebSocket 10 ms slower on the clean LAN: refuted whatever set-up says
    assert C.claim_clean_latency(transport_table(clean_gap=10.0)).verdict == C.REFUTED


def _live_setup_rows(n: int, rtc_ms: float = 300.0, ws_ms: float = 100.0, over_link: bool = True,
                     profile: str = "clean-lan") -> pd.DataFrame:
    """``n`` seeds of live calls per transport; WebRTC's signalling crossed the link when ``over_link``
    (the row has ``setup_answer_received_ms``)."""
    live = []
    for i in range(n):
        for tr, col, v in (("webrtc", "setup_first_rtp_received_ms", rtc_ms), ("websocket", "setup_first_frame_received_ms", ws_ms)):
            row = {"status": "ok", "mode": "live", "transport": tr, "profile": profile, "seed": i,
                   "clip": "a", col: v + i * (1 + (tr == "webrtc")), "cell_hash": f"{profile}{tr}{i}"}
            if tr == "webrtc" and over_link:
                row["setup_answer_received_ms"] = v / 2
            live.append(row)
    return pd.DataFrame(live)


def test_set_up_is_judged_with_ten_live_calls_per_transport() -> None:
    d = pd.concat([transport_table(), _live_setup_rows(10)], ignore_index=True)
    t = C.setup_test(d, "clean-lan")
    # differences -200 - i for i = 0..9: median -204.5, interval wholly below 0
    assert t.verdict == C.SUPPORTED and t.estimate.value == pytest.approx(-204.5) and len(t.cells) == 20
    assert t.estimate.lo < -204.5 < t.estimate.hi < 0
    assert t.estimate.stat == "median difference"
    # nine pairs: not judged, says how many
    t9 = C.setup_test(pd.concat([transport_table(), _live_setup_rows(9)], ignore_index=True), "clean-lan")
    assert t9.verdict == C.INCONCLUSIVE and "9 WebSocket and 9 WebRTC calls" in t9.name


def test_set_up_ignores_webrtc_calls_whose_signalling_did_not_cross_the_link() -> None:
    d = pd.concat([transport_table(), _live_setup_rows(12, over_link=False)], ignore_index=True)
    t = C.setup_test(d, "clean-lan")
    assert t.verdict == C.INCONCLUSIVE and "12 WebSocket and 0 WebRTC calls" in t.name
    assert C.setup_profiles(d) == [] and C.setup_table(d).empty


def test_set_up_only_run_gets_a_set_up_verdict_and_table() -> None:
    """A run of data/experiments/setup.toml has no simulated cells: the clean-latency claim still
    judges its set-up part, and the table has each transport's median with its interval."""
    d = pd.concat([_live_setup_rows(10), _live_setup_rows(10, rtc_ms=900.0, ws_ms=800.0, profile="4g")],
                  ignore_index=True)
    v = C.claim_clean_latency(d)
    assert [t.name for t in v.tests] == ["clean-lan set-up (live calls)"] and v.verdict == C.SUPPORTED
    assert v.figure == "setup_time"
    tab = C.setup_table(d).set_index("profile")
    assert list(tab.index) == ["clean-lan", "4g"] and (tab["n"] == 10).all()
    assert tab.loc["4g", "webrtc_ms"] == pytest.approx(909.0) and tab.loc["4g", "websocket_ms"] == pytest.approx(804.5)
    assert tab.loc["4g", "webrtc_lo"] <= 909.0 <= tab.loc["4g", "webrtc_hi"]
    assert tab.loc["4g", "diff_hi"] < 0


def plc_table(plc_gain: float = 0.5) -> pd.DataFrame:
    return table(
        cells(C.OPUS_PLC, "4g", RNG(5), plcmos=(3.5 + plc_gain, 0.1, 0.3)),
        cells(C.OPUS_ZERO, "4g", RNG(6), plcmos=(3.5, 0.1, 0.3)),
        cells(C.WS_BINARY, "4g", RNG(7), concealed_ratio=(0.02, 0.005), plcmos=(3.8, 0.1)),
        cells(C.WS_FIXED, "4g", RNG(8), plcmos=(3.6, 0.1, 0.3)),
        cells(C.WS_FIXED_ZERO, "4g", RNG(9), plcmos=(3.0, 0.1, 0.3)))


def test_plc_is_like_for_like_and_null_effect_is_inconclusive() -> None:
    v = C.claim_plc(plc_table())
    assert v.verdict == C.SUPPORTED, v.detail
    assert v.tests[0].estimate.value == pytest.approx(0.5, abs=0.1)
    assert all(h.startswith(("WebRTC Opus 24k no FEC", "WebSocket")) for h in v.cells)  # no FEC-on cell pooled
    v = C.claim_plc(plc_table(plc_gain=0.0))
    assert v.tests[0].verdict in (C.INCONCLUSIVE, C.REFUTED) and v.verdict != C.SUPPORTED


def bitrate_table(q24: float = 4.3, q64: float = 4.4) -> pd.DataFrame:
    return table(cells(C.opus_no_fec(24), "clean-lan", RNG(10), pesq_wb=(q24, 0.02, 0.2), wire_kbps_up=(44.0, 0.5)),
                 cells(C.opus_no_fec(64), "clean-lan", RNG(11), pesq_wb=(q64, 0.02, 0.2), wire_kbps_up=(84.0, 0.5)))


def test_opus_24k_quality_holds_bandwidth_does_not() -> None:
    v = C.claim_opus_24k(bitrate_table())
    quality, wire = v.tests
    assert quality.verdict == C.SUPPORTED and "pesq_wb" in quality.metric
    assert wire.verdict == C.REFUTED and wire.estimate.value == pytest.approx(44 / 84, abs=0.02)
    assert v.verdict == C.DEPENDS
    assert C.claim_opus_24k(bitrate_table(q24=3.8)).tests[0].verdict == C.REFUTED
    assert C.claim_opus_24k(bitrate_table()[lambda x: x["bitrate_bps"] == 24000]).verdict == C.NOT_MEASURED


def test_ws_deterministic_per_profile_and_retransmissions_per_call() -> None:
    v = C.claim_ws_deterministic(transport_table())
    assert [t.verdict for t in v.tests] == [C.SUPPORTED, C.REFUTED] and v.verdict == C.DEPENDS
    assert "TCP retransmissions per call" in v.detail and "(n=20)" in v.detail


def test_pcm_frame_bytes() -> None:
    d = table(cells(C.WS_BINARY, "clean-lan", payload_kbps_up=384.0))
    v = C.claim_pcm_frame_bytes(d)
    assert v.verdict == C.SUPPORTED and "4800" in v.detail and len(v.cells) == 20
    assert C.claim_pcm_frame_bytes(d.iloc[0:0]).verdict == C.NOT_MEASURED


def test_turn_not_measured_without_relay_cells() -> None:
    v = C.claim_turn_64k(transport_table())
    assert v.verdict == C.NOT_MEASURED and "nat.toml" in v.detail


def test_failed_rows_ignored_and_evaluate_never_raises() -> None:
    d = transport_table()
    d.loc[d.index[:5], "status"] = "failed"
    assert C.compare(d, C.WEBRTC, C.WS_BINARY, "plcmos", "clean-lan").n == 15
    assert len(C.evaluate(pd.DataFrame({"x": [1]}))) == len(C.CLAIMS)


def test_recommendations_follow_the_intervals() -> None:
    d = transport_table()
    recs = {(r.profile, r.decision): r for r in C.recommendations(d)}
    assert recs[("4g", "transport")].choice == C.WEBRTC.label  # p95 180 ms lower, PLCMOS equal-ish
    assert recs[("clean-lan", "transport")].choice == C.WS_BINARY.label  # 6.5 ms lower beyond the 5 ms bar
    close = transport_table(ws_p95=122.0)
    r = {(r.profile, r.decision): r for r in C.recommendations(close)}[("4g", "transport")]
    assert r.choice == "inconclusive" and all(c.diff.has_interval for _, c, _ in r.comparisons)
    assert r.cells


def test_claims_do_not_rank_transports_on_the_emodel() -> None:
    d = transport_table().assign(emodel_mos=lambda x: np.where(x["transport"] == "webrtc", 1.0, 4.5))
    flipped = d.assign(emodel_mos=5.0 - d["emodel_mos"])
    assert [(v.verdict, v.detail) for v in C.evaluate(d)] == [(v.verdict, v.detail) for v in C.evaluate(flipped)]


# ------------------------------------------------------------------ protection and conversation claims

NONE = C.setting("none", transport="webrtc", codec="opus", bitrate_bps=64000, fec=True, frame_ms=20,
                 playout="adaptive", conceal="opus-fec", nack=False, red=0, abr=False, fec_loss="fixed")
ABR = NONE.with_("abr", abr=True)


def protection_table(loss_gain: float = 3.0, delay_gain: float = 80.0, harm: float = 0.0) -> pd.DataFrame:
    return table(
        cells(NONE, "capacity-drop", RNG(20), effective_loss_rate=(0.06, 0.01, 0.01), m2e_p95_ms=(300.0, 20.0, 30.0)),
        cells(ABR, "capacity-drop", RNG(21), effective_loss_rate=(0.06 - loss_gain / 100, 0.01, 0.01),
              m2e_p95_ms=(300.0 - delay_gain, 20.0, 30.0)),
        cells(NONE, "4g", RNG(22), plcmos=(4.0, 0.05, 0.3)),
        cells(ABR, "4g", RNG(23), plcmos=(4.0 - harm, 0.05, 0.3)))


def test_adaptive_bitrate_verdict_has_parts_with_intervals_and_cells() -> None:
    d = protection_table()
    v = C.claim_adaptive_bitrate(d)
    assert v.verdict == C.SUPPORTED, v.detail
    names = [t.name for t in v.tests]
    assert names == ["4g: ABR does no harm", "capacity-drop: ABR lowers the effective loss",
                     "capacity-drop: ABR lowers the delay"]
    loss = v.tests[1]
    assert loss.unit == "pp" and loss.estimate.value == pytest.approx(-3.0, abs=0.6) and loss.estimate.n == 20
    for t in v.tests:
        assert t.estimate.has_interval and len(t.cells) == 40 and set(t.cells) <= set(d["cell_hash"])
    assert "aiortc" in v.detail
    # ABR costs 0.5 MOS on 4g: that part is refuted while the capacity drop still supports: depends
    assert C.claim_adaptive_bitrate(protection_table(harm=0.5)).verdict == C.DEPENDS
    # no effect on the capacity drop: inconclusive there, not supported
    v0 = C.claim_adaptive_bitrate(protection_table(loss_gain=0.0, delay_gain=0.0))
    assert v0.tests[1].verdict != C.SUPPORTED and v0.verdict != C.SUPPORTED
    # websocket rows and rows without protection columns: not measured
    assert C.claim_adaptive_bitrate(transport_table()).verdict == C.NOT_MEASURED


def conv(topology: str) -> C.Setting:
    return C.setting(topology, topology=topology, dc_profile="colocated", turns=4, bargein_every=2,
                     pacing="burst", think_ms=315.0)


def conversation_table(ws_lat: float = 900.0, gw_lat: float = 1050.0, ws_stop: float = 50.0) -> pd.DataFrame:
    rows = []
    for i, prof in enumerate(("clean-lan", "4g")):
        rows += cells(conv("direct-ws"), prof, RNG(30 + i), turn_latency_p50_ms=(ws_lat, 20.0, 50.0),
                      turn_latency_p95_ms=(ws_lat + 100, 30.0, 50.0), bargein_stop_p50_ms=(ws_stop, 10.0),
                      underruns=(0.2, 0.3), wer=(0.30, 0.01, 0.1))
        rows += cells(conv("webrtc-gateway"), prof, RNG(40 + i), turn_latency_p50_ms=(gw_lat, 20.0, 50.0),
                      turn_latency_p95_ms=(gw_lat + 100, 30.0, 50.0), bargein_stop_p50_ms=(150.0, 10.0),
                      underruns=(0.4, 0.3), wer=(0.30, 0.01, 0.1))
    return pd.DataFrame(rows)


def test_websocket_first_and_engineering_time_from_conversations() -> None:
    d = conversation_table()
    v = C.claim_websocket_first(d)
    assert v.verdict == C.SUPPORTED and len(v.tests) == 4, v.detail
    for t in v.tests:
        assert t.estimate.has_interval and t.estimate.value == pytest.approx(-150.0, abs=25) and len(t.cells) == 40
    # direct-ws 300 ms slower: refuted
    assert C.claim_websocket_first(conversation_table(ws_lat=1350.0)).verdict == C.REFUTED
    e = C.claim_engineering_time(d)
    # turn latency and barge-in differ by more than 100 ms: refuted (the whole interval outside the margin);
    # underruns and WER within their margins: supported parts
    by = {t.name: t for t in e.tests}
    assert by["clean-lan: turn_latency_p95_ms the same"].verdict == C.REFUTED
    assert by["clean-lan: wer the same"].verdict == C.SUPPORTED
    assert by["clean-lan: underruns the same"].verdict == C.SUPPORTED
    assert e.verdict == C.DEPENDS and all(t.estimate.has_interval and t.cells for t in e.tests)
    same = C.claim_engineering_time(conversation_table(ws_lat=1040.0, gw_lat=1050.0, ws_stop=140.0))
    assert same.verdict == C.SUPPORTED, same.detail
    # a conversation with another script does not pair
    other = d.copy()
    other.loc[other["topology"] == "webrtc-gateway", "turns"] = 6
    assert C.claim_websocket_first(other).verdict == C.NOT_MEASURED


def test_within_is_an_equivalence_judgement() -> None:
    from translab.metrics import statistics as st

    e = st.Estimate(1.0, -2.0, 3.0, 10, "mean")
    assert st.judge(e, 5.0, "within") == C.SUPPORTED
    assert st.judge(e, 2.5, "within") == C.INCONCLUSIVE
    assert st.judge(st.Estimate(9.0, 6.0, 12.0, 10, "mean"), 5.0, "within") == C.REFUTED
    assert st.judge(st.Estimate(-9.0, -12.0, -6.0, 10, "mean"), 5.0, "within") == C.REFUTED


def test_conversation_rows_never_count_as_one_way_cells() -> None:
    conv_only = conversation_table()
    assert len(C.WEBRTC.rows(conv_only)) == 0 and len(C.WS_BINARY.rows(conv_only)) == 0
    mixed = pd.concat([transport_table(), conv_only], ignore_index=True)
    assert C.compare(mixed, C.WEBRTC, C.WS_BINARY, "plcmos", "clean-lan").n == 20
    assert C.claim_websocket_first(mixed).verdict == C.SUPPORTED
