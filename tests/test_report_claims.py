"""Claims: each verdict follows the numbers in the results table (hand-made tables drive each branch)."""

from __future__ import annotations

import pandas as pd
import pytest

from translab.report import claims as C


def rows(*dicts: dict) -> pd.DataFrame:
    base = {"status": "ok", "mode": "simulate", "codec": "opus", "conceal": "opus-fec", "playout": "adaptive"}
    return pd.DataFrame([{**base, **d} for d in dicts])


def lat(tr: str, prof: str, p50: float, p95: float, p99: float, **kw: object) -> dict:
    return {"transport": tr, "profile": prof, "m2e_p50_ms": p50, "m2e_p95_ms": p95, "m2e_p99_ms": p99, **kw}


def test_pcm_frame_bytes() -> None:
    v = C.claim_pcm_frame_bytes(rows({"transport": "websocket", "codec": "pcm16", "sample_rate": 24000,
                                      "payload_kbps_up": 384.0}))
    assert v.verdict == C.SUPPORTED and "4800" in v.detail
    assert C.claim_pcm_frame_bytes(rows()).verdict == C.SUPPORTED  # arithmetic alone


def test_clean_latency_branches() -> None:
    # simulated cells only: steady state alone cannot decide a claim about the ICE set-up tax
    media_ws_faster = [lat("websocket", "clean-lan", 40, 45, 50), lat("webrtc", "clean-lan", 50, 55, 60)]
    v = C.claim_clean_latency(rows(*media_ws_faster))
    assert v.verdict == C.DEPENDS and "set-up" in v.detail and "not measure" in v.detail
    media_rtc_faster = [lat("websocket", "clean-lan", 70, 75, 80), lat("webrtc", "clean-lan", 50, 55, 60)]
    v = C.claim_clean_latency(rows(*media_rtc_faster))
    assert v.verdict == C.DEPENDS and "not measure" in v.detail
    # with set-up measured on both, the verdict is decided
    both = [lat("websocket", "clean-lan", 40, 45, 50, setup_first_frame_received_ms=5.0),
            lat("webrtc", "clean-lan", 50, 55, 60, setup_first_rtp_received_ms=120.0)]
    assert C.claim_clean_latency(rows(*both)).verdict == C.SUPPORTED
    worse = [lat("websocket", "clean-lan", 70, 75, 80, setup_first_frame_received_ms=200.0),
             lat("webrtc", "clean-lan", 50, 55, 60, setup_first_rtp_received_ms=120.0)]
    assert C.claim_clean_latency(rows(*worse)).verdict == C.REFUTED
    live = [lat("websocket", "clean-lan", 70, 75, 80, setup_first_frame_received_ms=5.0),
            lat("webrtc", "clean-lan", 50, 55, 60, setup_first_rtp_received_ms=120.0)]
    v = C.claim_clean_latency(rows(*live))
    assert v.verdict == C.DEPENDS and "set-up" in v.detail and v.figure == "setup_time"
    assert C.claim_clean_latency(rows(lat("webrtc", "4g", 1, 2, 3))).verdict == C.NOT_MEASURED


def test_bad_networks_branches() -> None:
    good = [lat("websocket", "clean-lan", 40, 45, 50), lat("webrtc", "clean-lan", 50, 55, 60),
            lat("websocket", "4g", 60, 300, 500), lat("webrtc", "4g", 80, 120, 150)]
    assert C.claim_bad_networks(rows(*good)).verdict == C.SUPPORTED
    mixed = good + [lat("websocket", "hotel-wifi", 60, 90, 100), lat("webrtc", "hotel-wifi", 80, 120, 150)]
    v = C.claim_bad_networks(rows(*mixed))
    assert v.verdict == C.DEPENDS and "hotel-wifi" in v.detail
    ws_wins = [lat("websocket", "4g", 60, 90, 100), lat("webrtc", "4g", 80, 120, 150)]
    assert C.claim_bad_networks(rows(*ws_wins)).verdict == C.REFUTED


def test_plc_branches() -> None:
    d = rows({"transport": "webrtc", "profile": "4g", "conceal": "opus-plc", "plcmos": 3.5},
             {"transport": "webrtc", "profile": "4g", "conceal": "zero", "plcmos": 2.9},
             {"transport": "websocket", "profile": "4g", "codec": "pcm16", "conceal": "pcm-plc", "plcmos": 3.8,
              "concealed_ratio": 0.01, "loss_rate": 0.0, "stalls": 0})
    assert C.claim_plc(d).verdict == C.SUPPORTED
    d.loc[2, "concealed_ratio"] = 0.0
    assert C.claim_plc(d).verdict == C.DEPENDS  # TCP turned loss into delay the buffer absorbed


def test_opus_24k_quality_holds_bandwidth_does_not() -> None:
    d = rows({"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 24000, "plcmos": 3.9,
              "payload_kbps_up": 24.0, "wire_kbps_up": 48.0},
             {"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 64000, "plcmos": 4.0,
              "payload_kbps_up": 64.0, "wire_kbps_up": 88.0})
    v = C.claim_opus_24k(d)
    assert v.verdict == C.REFUTED and "quality half holds" in v.detail
    assert v.evidence["wire_ratio"] == pytest.approx(48 / 88)
    assert C.claim_opus_24k(d[d["bitrate_bps"] == 24000]).verdict == C.NOT_MEASURED


def test_ws_deterministic() -> None:
    d = rows(lat("websocket", "clean-lan", 40, 42, 43), lat("websocket", "4g", 60, 200, 400))
    assert C.claim_ws_deterministic(d).verdict == C.DEPENDS
    assert C.claim_ws_deterministic(d.iloc[[1]]).verdict == C.REFUTED
    assert C.claim_ws_deterministic(d.iloc[[0]]).verdict == C.DEPENDS  # only clean measured


def test_turn_not_measured_without_relay_cells() -> None:
    d = rows({"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 24000, "wire_kbps_up": 45.0})
    v = C.claim_turn_64k(d)
    assert v.verdict == C.NOT_MEASURED and "45 kbit/s" in v.detail


def relay(bitrate: int, in_kbps: float, **kw: object) -> dict:
    """A relayed netns WebRTC call as its results row (coturn's counters in netns_relay_*)."""
    return {"transport": "webrtc", "profile": "clean-lan", "mode": "live", "backend": "netns",
            "bitrate_bps": bitrate, "netns_connected": True, "netns_pair": "relay-relay",
            "netns_relay_bytes": 10_000, "netns_relay_in_kbps": in_kbps, "netns_relay_kbps": 2 * in_kbps,
            "wire_kbps_up": in_kbps, "caller_nat": "symmetric", "callee_nat": "symmetric", "ice": "turn-udp", **kw}


def test_turn_verdict_from_relay_cells_per_bitrate() -> None:
    v = C.claim_turn_64k(rows(relay(12000, 30.0), relay(16000, 34.0)))
    assert v.verdict == C.SUPPORTED and v.evidence["two_way_call_kbps_at_12k"] == 60.0
    v = C.claim_turn_64k(rows(relay(12000, 34.0), relay(24000, 44.0), relay(64000, 77.0)))
    assert v.verdict == C.DEPENDS and "12k only" in v.detail and "77 kbit/s in" in v.detail
    assert C.claim_turn_64k(rows(relay(64000, 77.0))).verdict == C.REFUTED
    # direct (non-relay) and failed netns calls carry no relay traffic: not measured
    direct = relay(24000, 44.0, netns_pair="host-srflx")
    failed = relay(24000, 44.0, status="failed")
    assert C.claim_turn_64k(rows(direct, failed)).verdict == C.NOT_MEASURED


def test_failed_rows_ignored_and_evaluate_never_raises() -> None:
    d = rows(lat("websocket", "clean-lan", 40, 45, 50), lat("webrtc", "clean-lan", 10, 15, 20, status="failed"))
    assert C.claim_clean_latency(d).verdict == C.NOT_MEASURED
    verdicts = C.evaluate(pd.DataFrame({"status": ["ok"], "transport": ["webrtc"]}))
    assert len(verdicts) == len(C.CLAIMS) and all(v.verdict in C.VERDICTS for v in verdicts)


def test_ws_deterministic_uses_delivery_delay_when_present() -> None:
    d = rows(lat("websocket", "clean-lan", 40, 90, 95, net_delay_p50_ms=1.0, net_delay_p99_ms=2.0),
             lat("websocket", "4g", 60, 61, 62, net_delay_p50_ms=35.0, net_delay_p99_ms=240.0),
             lat("webrtc", "4g", 60, 61, 62, net_delay_p50_ms=33.0, net_delay_p99_ms=60.0))
    v = C.claim_ws_deterministic(d)
    assert v.verdict == C.DEPENDS and "delivery delay" in v.detail
    assert v.evidence["ws_spread_ms"]["4g"] == pytest.approx(205.0)
    assert v.evidence["webrtc_spread_ms"]["4g"] == pytest.approx(27.0)


def test_bad_networks_compares_like_with_like_and_names_the_lookahead() -> None:
    base = [lat("websocket", "clean-lan", 40, 45, 50, seed=1, budget_lookahead_ms=0.0),
            lat("websocket", "clean-lan", 41, 47, 50, seed=2, budget_lookahead_ms=0.0),
            lat("webrtc", "clean-lan", 47, 52, 60, seed=1, budget_lookahead_ms=6.5),
            lat("webrtc", "clean-lan", 47, 53, 60, seed=2, budget_lookahead_ms=6.5),
            lat("websocket", "4g", 60, 300, 500, seed=1), lat("webrtc", "4g", 80, 120, 150, seed=1)]
    v = C.claim_bad_networks(rows(*base))
    # the 6-7 ms clean-lan gap is Opus's lookahead: WebSocket does not "win" the controlled network
    assert v.verdict == C.DEPENDS and "lookahead" in v.detail and "n=2" in v.detail
    assert v.evidence["profiles"]["clean-lan"]["ws_p95_seed_range"] == (45.0, 47.0)
    assert C.LIKE_FOR_LIKE in v.detail
    # fixed-buffer / zero-fill / no-FEC variants on one side only must not change the comparison
    extra = [lat("websocket", "4g", 60, 40, 50, playout="fixed:40", seed=1),
             lat("websocket", "4g", 60, 41, 50, conceal="zero", seed=1),
             lat("webrtc", "4g", 60, 900, 950, fec=False, conceal="opus-plc", seed=1)]
    v2 = C.claim_bad_networks(rows(*base, *extra))
    keys = ("ws_p95", "rtc_p95", "ws_cells", "rtc_cells")
    assert v2.verdict == v.verdict
    assert [v2.evidence["profiles"]["4g"][k] for k in keys] == [v.evidence["profiles"]["4g"][k] for k in keys]


def test_opus_24k_uses_the_figures_cells() -> None:
    d = rows({"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 24000, "plcmos": 3.9, "fec": True,
              "frame_ms": 20, "payload_kbps_up": 24.0, "wire_kbps_up": 48.0},
             {"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 64000, "plcmos": 4.0, "fec": True,
              "frame_ms": 20, "payload_kbps_up": 64.0, "wire_kbps_up": 88.0},
             # variants the figure leaves out: they would drag the 24k median down
             {"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 24000, "plcmos": 2.0, "fec": False,
              "conceal": "zero", "frame_ms": 20, "payload_kbps_up": 24.0, "wire_kbps_up": 48.0},
             {"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 24000, "plcmos": 2.1, "fec": True,
              "playout": "elastic", "frame_ms": 20, "payload_kbps_up": 24.0, "wire_kbps_up": 48.0},
             {"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 24000, "plcmos": 2.2, "fec": True,
              "frame_ms": 60, "payload_kbps_up": 24.0, "wire_kbps_up": 30.0},
             {"transport": "webrtc", "profile": "clean-lan", "bitrate_bps": 24000, "plcmos": 2.3, "fec": True,
              "frame_ms": 20, "mode": "live", "payload_kbps_up": 24.0, "wire_kbps_up": 48.0})
    v = C.claim_opus_24k(d)
    assert v.evidence["plcmos_24k"] == 3.9 and v.evidence["cells_24k"] == 1
    assert "quality half holds" in v.detail and C.BITRATE_CELLS in v.detail
    assert list(C.bitrate_cells(d).index) == [0, 1]
