"""Issue 13: the RTCP reports of a protected call on one seeded schedule (translab.protection.rtcp),
shared by the live aiortc call (translab.transport.webrtc.seeded_rtcp / route_rtcp) and the
simulator's ``abr_feedback = "rr"`` mode, so live and simulated senders get the same reports."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from translab.config import CallConfig


def test_schedule_draws_aiortcs_interval_distribution_from_the_seed() -> None:
    """aiortc's RTCP loops sleep 0.5 + random.random() s between reports: the schedule's intervals
    are uniform on [0.5, 1.5) (Kolmogorov-Smirnov against that law), the same for the same seed,
    different between seeds and between the SR and RR streams."""
    from translab.protection.rtcp import RtcpSchedule

    sched = RtcpSchedule(7)
    sr = sched.until("sr", 2000.0)
    gaps = np.diff([0.0] + sr)
    assert gaps.min() >= 0.5 and gaps.max() < 1.5 and len(sr) > 1800
    assert stats.kstest(gaps - 0.5, "uniform").pvalue > 0.01
    assert sr[:50] == RtcpSchedule(7).until("sr", sr[49])
    assert sr[:5] != RtcpSchedule(8).until("sr", 10.0)[:5]
    assert sr[:5] != sched.until("rr", 10.0)[:5]


def test_rtcp_link_streams_are_not_the_media_or_retransmission_streams() -> None:
    from translab.link.profiles import direction_rngs, retransmission_rng
    from translab.protection.rtcp import rtcp_rngs

    first = [g.random() for g in (*direction_rngs(4).values(), retransmission_rng(4), *rtcp_rngs(4).values())]
    assert len(set(first)) == 5
    assert rtcp_rngs(4)["up"].random() == first[3]


def test_report_fields_match_aiortcs_receiver_statistics() -> None:
    """The loss fraction the simulator puts in an RR is aiortc's StreamStatistics.fraction_lost over
    the same arrivals (a retransmission counts as received, the interval restarts at each report),
    and DLSR is truncated to 1/65536 s units with at least one unit in an answer."""
    from aiortc.rtcrtpreceiver import StreamStatistics
    from aiortc.rtp import RtpPacket

    from translab.protection.rtcp import dlsr_s, fraction_lost

    rng = np.random.default_rng(1)
    st = StreamStatistics(48000)
    base, exp_prior, rx_prior, rx, top = None, 0, 0, 0, -1
    for k in range(400):
        arrivals = [] if rng.random() < 0.15 else [k]
        if k > 3 and rng.random() < 0.1:
            arrivals.append(k - 3)  # a retransmission or late duplicate
        for s in arrivals:
            st.add(RtpPacket(sequence_number=(60000 + s) & 0xFFFF, timestamp=960 * s))
            base = s if base is None else base
            top, rx = max(top, s), rx + 1
        if k % 37 == 36:
            expected = top - base + 1
            assert fraction_lost(expected - exp_prior, rx - rx_prior) == st.fraction_lost
            exp_prior, rx_prior = expected, rx
    assert dlsr_s(0.0, True) == 1 / 65536 and dlsr_s(0.0, False) == 0.0
    assert dlsr_s(0.25 + 0.9 / 65536, False) == 0.25


def test_simulated_rtt_comes_from_sr_rr_and_sets_the_nack_rule() -> None:
    """rr mode with NACK and the adaptive buffer: the first RTT sample is the first SR's uplink delay
    plus its answer's downlink delay (sfu-10pct-loss: 45 + 40 ms base, 5 ms jitter each), so the
    buffer's minimum target is that plus two frames; no 100 ms feedback is sent (the downlink
    carries only the SRs' answers, the periodic RRs and the NACKs)."""
    from translab.metrics.bandwidth import rtcp_rr_wire_bytes
    from translab.simulate import simulate

    res = simulate(CallConfig(profile="sfu-10pct-loss", duration_s=4, seed=2, metrics=(), nack=True,
                              abr_feedback="rr"))
    p = res.trace.attrs["protection"]
    assert 80.0 + 40.0 < p["min_target_ms"] < 105.0 + 40.0
    assert p["rtcp_rr"][0][3] and p["rtcp_rr"][0][0] < 0.2
    assert p["nack_sent"] > 0 and res.summary["rtx_recovered"] > 0
    twcc = simulate(CallConfig(profile="sfu-10pct-loss", duration_s=4, seed=2, metrics=(), nack=True))
    assert "rtcp_rr" not in twcc.trace.attrs["protection"]
    # downlink feedback: the RRs and the NACKs (64 B + 4 B per extra FCI each), no transport-cc reports
    nack_bytes = p["feedback_bytes"] - rtcp_rr_wire_bytes() * len(p["rtcp_rr"])  # IPv4
    assert 64 * p["nack_sent"] <= nack_bytes <= 64 * p["nack_sent"] + 4 * p["nack_seqs"]
    assert twcc.trace.attrs["protection"]["feedback_bytes"] > p["feedback_bytes"]


@pytest.mark.live
def test_live_reports_follow_the_simulated_schedule_and_abr_agrees() -> None:
    """Live ABR (abr_feedback = "rr", the only feedback aiortc's audio path has; the sender encodes
    during the call) on sfu-10pct-loss, seed 3, 10 s, 64 kbit/s: the callee's RRs leave at the
    simulated times (within 5 ms; measured 0.1-1.7 ms: answers to SRs wait for the SR's emulated
    uplink delay and the host, periodic ones for the scheduler) with the same loss fraction and
    highest sequence number, except when a media packet reaches the simulated receiver within a
    few ms of a report (live it is handled ~1 ms later, so it may count in the next report: 2 of 20
    reports in about half the runs), and the loss after recovery agrees within the issue's 0.5
    points (measured: identical, 4.72 %, on 5 runs of 5)."""
    from translab.call import run_call
    from translab.call.live import LiveEngine
    from translab.call.simulated import SimulatedEngine

    cfg = CallConfig(profile="sfu-10pct-loss", duration_s=10, seed=3, bitrate=64000, metrics=(), abr=True,
                     abr_feedback="rr")
    sim = run_call(cfg, SimulatedEngine())
    for attempt in range(2):  # a host stall (the process paused) delays reports: run again
        live = run_call(cfg, LiveEngine(drain_s=0.5, realtime=True))
        s = live.summary
        assert s["status"] == "ok", s["reason"]
        if s["host_stalls"] == 0:
            break
    late_s = 0.005 + (s["host_stall_max_ms"] / 1000.0 if s["host_stalls"] else 0.0)
    rr_sim, rr_live = sim.trace.attrs["protection"]["rtcp_rr"], live.trace.attrs["protection"]["rtcp_rr"]
    assert len(rr_live) >= 15
    # real RTCP on the wire: every report logged crossed the emulated downlink as an RTCP datagram
    assert s["emu_udp_down_packets_rtcp"] == len(rr_live), (s["emu_udp_down_packets_rtcp"], len(rr_live))
    assert s["emu_udp_up_packets_rtcp"] >= len([1 for *_, answer in rr_live if answer])
    arrival = sim.trace.set_index("seq")["arrival_s"]
    same = 0
    for a, b in zip(rr_sim, rr_live):
        assert abs(a[0] - b[0]) < late_s and a[3] == b[3], (a, b)
        if a[1:] == b[1:]:
            same += 1
        elif a[2] != b[2] and not s["host_stalls"]:  # a packet reached the simulated receiver within 3 ms of the report: live
            # packets are handled ~1 ms later (sent ~0.5 ms late, handled ~0.45 ms after their wire
            # arrival; aiortc's statistics count handled packets), so it may fall after it
            assert abs(a[2] - b[2]) == 1 and abs(arrival[max(a[2], b[2])] - a[0]) < 0.003, (a, b)
    assert same >= 0.75 * len(rr_live)
    # the downlink feedback is those reports, live and simulated (the simulation's run 0.5 s longer)
    assert s["feedback_kbps_down"] == pytest.approx(sim.summary["feedback_kbps_down"], rel=0.1)
    assert s["loss_rate"] == sim.summary["loss_rate"] and s["rtp_payload_mismatches"] == 0
    assert abs(s["effective_loss_rate"] - sim.summary["effective_loss_rate"]) <= 0.005
    # what the controller did live: 20 ms frames throughout, FEC asked for with an expected loss
    # from a report, FEC in the packets after that, less loss after recovery than on the wire
    assert live.trace.attrs["protection"]["abr"] is True
    tl_live = live.trace.attrs["protection"]["timeline"]
    assert tl_live[0] == [0.0, 64000, True, 0, 20] and all(x[4] == 20 for x in tl_live)
    on = next(x for x in tl_live if x[2] and x[3] > 0)
    assert 0.1 < on[0] < 5.0
    t = live.trace.sort_values("seq")
    assert t.loc[t["send_s"] > on[0] + 0.1, "fec"].any()
    assert s["abr_bitrate_min_kbps"] < 64.0 and s["effective_loss_rate"] < s["loss_rate"]
