"""The report's NAT and firewall section, built from a small real run on the netns backend (five
1 s calls: a direct STUN call, one that cannot connect without a relay, two TURN calls at 12 and
64 kbit/s, a WebSocket behind only-443), and the TURN claim's verdict from its relay bytes."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest

from translab.lab import experiment as ex
from translab.lab.runner import run_experiment
from translab.lab.store import load_results
from translab.report import claims as C
from translab.report import nat
from translab.report.html import build_html, nat_section

pytestmark = [pytest.mark.netns, pytest.mark.coturn, pytest.mark.live]


def small_nat_experiment() -> ex.Experiment:
    return ex.from_dict({
        "name": "nat-small", "description": "report test", "metrics": [],
        "defaults": {"backend": "netns", "profile": "clean-lan", "duration_s": 1.0, "seed": 1},
        "grid": [
            {"transport": "webrtc", "caller_nat": ["full-cone", "symmetric"], "callee_nat": "symmetric",
             "ice": "stun"},
            {"transport": "webrtc", "caller_nat": "symmetric", "callee_nat": "symmetric", "ice": "turn-udp",
             "bitrate": ["12k", "64k"]},
            {"transport": "websocket", "caller_nat": "symmetric", "firewall": "only-443"},
        ]})


@pytest.fixture(scope="module")
def nat_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nat-run")
    run_experiment(small_nat_experiment(), out, executor="serial", progress=False)
    return out


def test_no_section_without_netns_cells() -> None:
    df = pd.DataFrame([{"status": "ok", "transport": "webrtc", "mode": "simulate"}])
    assert not nat.has_netns(df) and nat_section(df) == "" and nat.outcome_table(df).empty


def test_outcome_table_of_a_real_run(nat_run: Path) -> None:
    df = load_results(nat_run)
    t = nat.outcome_table(df)
    assert len(t) == 5
    # full cone to symmetric connects with STUN (a reflexive pair); symmetric to symmetric does not
    ok = t[(t["caller_nat"] == "full-cone")].iloc[0]
    assert ok["connected"] and ok["path"] in ("srflx", "prflx") and ok["setup_ms"] > 0
    bad = t[(t["caller_nat"] == "symmetric") & (t["ice"] == "stun")].iloc[0]
    assert not bad["connected"] and bad["path"] == "-" and bad["matches_expectation"]
    relay = t[t["ice"] == "turn-udp"]
    assert relay["connected"].all() and (relay["path"] == "relay").all()
    ws = t[t["transport"] == "websocket"].iloc[0]
    assert ws["connected"] and ws["path"] == "tcp" and ws["firewall"] == "only-443"
    assert t["matches_expectation"].all(), t
    s = nat.outcome_summary(df)
    assert (s["cells"], s["connected"], s["matches"], s["differs"]) == (5, 4, 5, [])


def test_setup_relay_overhead_and_bitrates(nat_run: Path) -> None:
    df = load_results(nat_run)
    sp = nat.setup_by_path(df)
    assert set(sp["path"]) >= {"relay", "tcp"} and (sp["first_media_ms"] > 0).all()
    relay_row = sp[sp["path"] == "relay"].iloc[0]
    assert relay_row["ice_connected_ms"] < relay_row["first_media_ms"]
    ro = nat.relay_overhead(df).iloc[0]
    assert ro["relay_cells"] == 2 and ro["direct_cells"] == 1
    assert ro["relay_one_way_p50_ms"] > 0 and ro["direct_one_way_p50_ms"] > 0
    rb = nat.relay_by_bitrate(df).set_index("bitrate_kbps")
    assert set(rb["pair"]) == {"relay-relay"}
    assert list(rb.index) == [12.0, 64.0]
    # what enters the relay follows the bitrate: 64k carries more than 12k, and more than its payload
    assert rb.loc[64.0, "relay_in_kbps"] > rb.loc[12.0, "relay_in_kbps"] + 30
    assert (rb["relay_in_kbps"] > rb["payload_kbps_up"]).all()
    assert (rb["two_way_call_kbps"] == 2 * rb["relay_in_kbps"]).all()


def test_turn_claim_gets_its_verdict_from_relay_bytes(nat_run: Path) -> None:
    df = load_results(nat_run)
    v = C.claim_turn_64k(df)
    assert v.verdict != C.NOT_MEASURED
    rb = nat.relay_by_bitrate(df)
    assert v.evidence["relay_in_kbps_at_12k"] == pytest.approx(float(rb["relay_in_kbps"].iloc[0]))
    assert "coturn" in v.detail


def test_report_has_the_nat_section(nat_run: Path) -> None:
    text = build_html(nat_run)
    sec = text[text.index("id='nat'"):text.index("id='provenance'")]
    for anchor in ("nat-outcomes", "fig-nat-heatmap", "fig-nat-setup", "nat-setup", "nat-relay", "nat-relay-bitrate"):
        assert f"id='{anchor}'" in sec, anchor
    assert "4 of 5 calls connected; 5 of 5 as expected" in html.unescape(sec)
    assert len(re.findall(r"data:image/png;base64,", sec)) == 2
