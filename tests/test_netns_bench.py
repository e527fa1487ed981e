"""The forwarder benchmark runs and accounts for every probe (figures are not asserted)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.netns


def test_bench_runs_and_counts_every_probe() -> None:
    from translab.bench import netns

    out = netns.run(duration_s=1.0)
    assert out["up_received"] == out["up_sent"] == 50
    assert out["down_received"] == out["down_sent"] == 50
    for key in ("up_added_delay_error_p99_ms", "down_added_delay_error_p99_ms", "forwarder_cpu_pct_one_core"):
        assert out[key] == out[key]  # a number, not NaN
    assert out["pcap_packets"] == 101  # 100 probes + the mapping opener
    if "tshark_read_packets" in out:
        assert out["tshark_read_packets"] == 101
