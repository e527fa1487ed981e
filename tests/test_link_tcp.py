"""TCP delivery model: in-order delivery, loss turned into delay, retransmission paths, streaming."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translab.errors import ConfigError
from translab.link.chain import LinkChain
from translab.link.delay import Delay
from translab.link.loss import BernoulliLoss
from translab.link.loss_trace import TraceLoss
from translab.link.tcp import TcpDeliveryModel


def writes(n: int = 1500, frame_s: float = 0.02, nbytes: int = 660) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n) * frame_s, np.full(n, nbytes)


def lossy(p: float, base: float = 0.04, jitter: float = 0.005, reorder: bool = False) -> LinkChain:
    return LinkChain([BernoulliLoss(p), Delay(base, jitter, "normal", reorder)])


def test_zero_loss_delivery_equals_arrival() -> None:
    ws, wb = writes(nbytes=3000)  # 3 segments per write: 1448 + 1448 + 104
    r = TcpDeliveryModel(lossy(0.0), lossy(0.0)).deliver(ws, wb, np.random.default_rng(1))
    seg = r.segments
    assert r.retransmissions == 0 and r.timeouts == 0
    assert len(seg) == 3 * ws.size == r.segments_sent
    last = seg.groupby("write")["arrival_s"].max().to_numpy()
    np.testing.assert_array_equal(r.delivered_s, last)
    assert r.acks == len(seg)
    assert set(seg.groupby("write").size()) == {3}


@pytest.mark.parametrize("p", [0.02, 0.1])
def test_never_out_of_order_and_every_byte_arrives(p: float) -> None:
    ws, wb = writes()
    m = TcpDeliveryModel(lossy(p, jitter=0.02, reorder=True), lossy(p))
    r = m.deliver(ws, wb, np.random.default_rng(2))
    assert not np.isnan(r.delivered_s).any()
    assert np.all(np.diff(r.delivered_s) >= 0)  # head-of-line blocking: in order
    assert np.all(r.delivered_s >= ws)
    # Deliveries as reported to the application are in order and sum to everything written.
    d = m._deliveries
    assert sum(b for _, b in d) == int(wb.sum())
    assert all(a[0] <= b[0] for a, b in zip(d, d[1:]))


@settings(max_examples=25, deadline=None)
@given(
    p_fwd=st.floats(0.0, 0.3),
    p_rev=st.floats(0.0, 0.3),
    jitter=st.floats(0.0, 0.05),
    nbytes=st.sampled_from([160, 660, 1448, 3000]),
    seed=st.integers(0, 2**32 - 1),
)
def test_in_order_and_complete_for_any_loss(p_fwd: float, p_rev: float, jitter: float, nbytes: int, seed: int) -> None:
    ws, wb = writes(n=150, nbytes=nbytes)
    m = TcpDeliveryModel(lossy(p_fwd, jitter=jitter, reorder=True), lossy(p_rev))
    r = m.deliver(ws, wb, np.random.default_rng(seed), np.random.default_rng(seed + 1))
    assert not np.isnan(r.delivered_s).any()  # loss becomes delay, never lost audio
    assert np.all(np.diff(r.delivered_s) >= 0)  # head-of-line blocking: strictly in order
    assert np.all(r.delivered_s >= ws)  # never before it was written
    assert sum(b for _, b in m._deliveries) == int(wb.sum())


def test_loss_becomes_delay() -> None:
    ws, wb = writes(3000)
    p99 = []
    for p in (0.0, 0.01, 0.05, 0.15):
        r = TcpDeliveryModel(lossy(p), lossy(p)).deliver(ws, wb, np.random.default_rng(3))
        assert not np.isnan(r.delivered_s).any()  # nothing is lost, only late
        p99.append(np.percentile(r.delivered_s - ws, 99))
        if p > 0:
            assert r.retransmissions > 0
    assert all(a < b for a, b in zip(p99, p99[1:])), p99
    # At 1 % loss a lost segment needs a later write (20 ms) and an RTT (80 ms) to be detected
    # (RACK, the default), and the retransmission another one-way delay (40 ms).
    assert p99[1] > 0.02 + 0.08


def test_retransmissions_can_be_lost_again_and_rto_backs_off() -> None:
    # Forward link: segment 0's first four transmissions are lost, everything else arrives.
    pattern = np.zeros(10_000, dtype=bool)
    fwd = LinkChain([TraceLoss(pattern), Delay(0.05)])
    m = TcpDeliveryModel(fwd, LinkChain([Delay(0.05)]))
    ws, wb = np.array([0.0]), np.array([100])
    pattern[:4] = True
    r = m.deliver(ws, wb, np.random.default_rng(0))
    seg = r.segments
    assert list(seg["retransmission"]) == [0, 1, 2, 3, 4]
    gaps = np.diff(seg["send_s"].to_numpy())
    # Single segment, no RTT sample yet: RTO 1 s, doubling: 1, 2, 4, 8 s.
    np.testing.assert_allclose(gaps, [1.0, 2.0, 4.0, 8.0])
    assert r.timeouts == 4 and r.fast_retransmits == 0
    assert r.delivered_s[0] == pytest.approx(15.0 + 0.05)


def test_fast_retransmit_after_three_later_segments() -> None:
    pattern = np.zeros(100, dtype=bool)
    pattern[5] = True  # the 6th transmission (segment 5) is lost
    fwd = LinkChain([TraceLoss(pattern), Delay(0.03)])
    rev = LinkChain([Delay(0.03)])
    ws, wb = writes(20)
    r = TcpDeliveryModel(fwd, rev, loss_detection="dupack").deliver(ws, wb, np.random.default_rng(0))
    assert r.fast_retransmits == 1 and r.timeouts == 0
    rtx = r.segments[r.segments["retransmission"] > 0].iloc[0]
    assert rtx["seg"] == 5
    # Segment 8 (the third later one) is sent at 0.16 s, arrives 0.19, its SACK returns at 0.22.
    assert rtx["send_s"] == pytest.approx(0.22)
    assert r.delivered_s[5] == pytest.approx(0.25)
    # Head-of-line blocking: writes 6..11 arrive by 0.25 s but wait for segment 5; 12 does not.
    np.testing.assert_allclose(r.delivered_s[6:12], 0.25)
    assert r.delivered_s[12] == pytest.approx(0.27)
    np.testing.assert_allclose(r.delivered_s[:5], np.arange(5) * 0.02 + 0.03)


def test_dupthresh_one_repairs_faster() -> None:
    ws, wb = writes(3000)
    p99 = {}
    for d in (3, 1):
        r = TcpDeliveryModel(lossy(0.03), lossy(0.0), dupthresh=d, loss_detection="dupack").deliver(
            ws, wb, np.random.default_rng(5))
        p99[d] = np.percentile(r.delivered_s - ws, 99)
    assert p99[1] < p99[3]


def test_rack_detects_loss_after_one_later_segment_and_a_reordering_window() -> None:
    pattern = np.zeros(100, dtype=bool)
    pattern[5] = True  # segment 5 (sent at 0.10 s) is lost
    fwd = LinkChain([TraceLoss(pattern), Delay(0.03)])
    r = TcpDeliveryModel(fwd, LinkChain([Delay(0.03)])).deliver(*writes(20), np.random.default_rng(0))
    assert r.fast_retransmits == 1 and r.timeouts == 0
    rtx = r.segments[r.segments["retransmission"] > 0].iloc[0]
    # Segment 6 (sent 0.12) is SACKed at 0.18; segment 5 is lost once 0.10 + rack_rtt (0.06) +
    # min_rtt / 4 (0.015) = 0.175 s has passed: retransmitted with that ACK, at 0.18 s.
    assert rtx["seg"] == 5 and rtx["send_s"] == pytest.approx(0.18)
    assert r.delivered_s[5] == pytest.approx(0.21)
    np.testing.assert_allclose(r.delivered_s[6:10], 0.21)
    assert r.delivered_s[10] == pytest.approx(0.23)


def test_rack_reordering_timer_waits_out_the_window() -> None:
    # Segment 1 is lost and segment 2 follows 1 ms later: its SACK arrives while segment 1's
    # reordering window is still open, so the loss is declared by the reordering timer.
    pattern = np.zeros(100, dtype=bool)
    pattern[1] = True
    fwd = LinkChain([TraceLoss(pattern), Delay(0.03)])
    ws = np.array([0.0, 0.1, 0.101, 0.3])
    wb = np.full(4, 100)
    m = TcpDeliveryModel(fwd, LinkChain([Delay(0.01)]))
    r = m.deliver(ws, wb, np.random.default_rng(0))
    rtx = r.segments[r.segments["retransmission"] > 0].iloc[0]
    # min_rtt = rack_rtt = 0.04 s, reo_wnd 0.01 s. Segment 2 (sent 0.101) is SACKed at 0.141;
    # segment 1 (sent 0.100) is lost at 0.100 + 0.04 + 0.01 = 0.15 s: the timer, not an ACK.
    assert rtx["seg"] == 1 and rtx["send_s"] == pytest.approx(0.15)
    assert r.timeouts == 0 and r.fast_retransmits == 1


def test_rack_repairs_a_lost_retransmission_without_a_timeout() -> None:
    pattern = np.zeros(100, dtype=bool)
    pattern[[5, 9]] = True  # segment 5 and its retransmission (the 10th transmission, at 0.18 s)
    fwd = LinkChain([TraceLoss(pattern), Delay(0.03)])
    rev = LinkChain([Delay(0.03)])
    ws, wb = writes(20)
    r = TcpDeliveryModel(fwd, rev).deliver(ws, wb, np.random.default_rng(0))
    assert r.timeouts == 0 and r.fast_retransmits == 2
    # Segment 9 (sent 0.18 s, after the retransmission) is SACKed at 0.24 s with four segments
    # SACKed above the hole (reordering window 0): the lost retransmission goes again at 0.24 s.
    sends = r.segments[r.segments["seg"] == 5]["send_s"].to_numpy()
    np.testing.assert_allclose(sends, [0.10, 0.18, 0.24])
    assert r.delivered_s[5] == pytest.approx(0.27)  # ("dupack" would wait for the RTO, >= 0.2 s)


def test_rack_repairs_faster_than_dupack() -> None:
    ws, wb = writes(3000)
    p99 = {}
    for mode in ("dupack", "rack"):
        r = TcpDeliveryModel(lossy(0.03), lossy(0.03), loss_detection=mode).deliver(ws, wb, np.random.default_rng(5))
        assert not np.isnan(r.delivered_s).any()
        p99[mode] = np.percentile(r.delivered_s - ws, 99)
    assert p99["rack"] < p99["dupack"]
    with pytest.raises(ConfigError, match="loss_detection"):
        TcpDeliveryModel(lossy(0.0), loss_detection="fack")


def test_same_seed_same_result_different_seed_differs() -> None:
    ws, wb = writes(800)
    a = TcpDeliveryModel(lossy(0.05), lossy(0.05)).deliver(ws, wb, np.random.default_rng(7))
    b = TcpDeliveryModel(lossy(0.05), lossy(0.05)).deliver(ws, wb, np.random.default_rng(7))
    c = TcpDeliveryModel(lossy(0.05), lossy(0.05)).deliver(ws, wb, np.random.default_rng(8))
    np.testing.assert_array_equal(a.delivered_s, b.delivered_s)
    assert a.segments.equals(b.segments)
    assert not np.array_equal(a.delivered_s, c.delivered_s)


def stream(m: TcpDeliveryModel, ws: np.ndarray, wb: np.ndarray, seed: int) -> list[tuple[float, int]]:
    """Drive the streaming API as a live emulator would: poll up to each write time, write, and
    poll at every next event in between."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, int]] = []
    for t, b in zip(ws.tolist(), wb.tolist()):
        while (nxt := m.next_event_s()) is not None and nxt < t:
            out += m.poll(nxt)
        out += m.poll(t)
        m.send(t, b, rng)
    out += m.poll(np.inf)
    return out


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    p=st.sampled_from([0.0, 0.03, 0.2]),
    nbytes=st.sampled_from([160, 1500, 4800]),
    delack=st.booleans(),
)
def test_streaming_equals_batch(seed: int, p: float, nbytes: int, delack: bool) -> None:
    ws, wb = writes(300, nbytes=nbytes)
    batch = TcpDeliveryModel(lossy(p, jitter=0.01), lossy(p), delayed_ack=delack).deliver(
        ws, wb, np.random.default_rng(seed)
    )
    m = TcpDeliveryModel(lossy(p, jitter=0.01), lossy(p), delayed_ack=delack)
    out = stream(m, ws, wb, seed)
    assert all(a[0] <= b[0] for a, b in zip(out, out[1:]))
    np.testing.assert_array_equal(m.write_delivery_s(), batch.delivered_s)
    assert m.result().segments.equals(batch.segments)
    assert m.acks == batch.acks


def test_streaming_rejects_writes_in_the_past() -> None:
    m = TcpDeliveryModel(lossy(0.0), lossy(0.0))
    m.send(0.0, 100, np.random.default_rng(0))
    m.poll(1.0)
    with pytest.raises(ConfigError):
        m.send(0.5, 100)


@pytest.mark.parametrize(
    "kwargs, field",
    [(dict(mss=0), "tcp.mss"), (dict(min_rto_s=0), "tcp.min_rto_s"), (dict(dupthresh=0), "tcp.dupthresh"),
     (dict(rto_formula="bsd"), "tcp.rto_formula")],
)
def test_bad_tcp_config(kwargs, field) -> None:
    with pytest.raises(ConfigError) as e:
        TcpDeliveryModel(lossy(0.0), **kwargs)
    assert e.value.field == field


def test_linux_rto_formula_is_never_shorter() -> None:
    ws, wb = writes(1000)
    res = {}
    for f in ("rfc6298", "linux"):
        m = TcpDeliveryModel(lossy(0.0, base=0.01, jitter=0.0), lossy(0.0, base=0.01, jitter=0.0), rto_formula=f)
        m.deliver(ws, wb, np.random.default_rng(0))
        res[f] = m.rto_s
    assert res["rfc6298"] == pytest.approx(0.2)  # floor: srtt 20 ms, no variance
    assert res["linux"] == pytest.approx(0.22)  # srtt + max(4 rttvar, 200 ms)


def test_delayed_ack_halves_acks_at_20ms_and_waits_40ms_at_60ms() -> None:
    clean = lambda: LinkChain([Delay(0.03)])  # noqa: E731
    ws, wb = writes(1000)
    r = TcpDeliveryModel(clean(), clean(), delayed_ack=True).deliver(ws, wb, np.random.default_rng(0))
    assert r.acks == 500  # every second in-order segment (20 ms apart, under the 40 ms timer)
    np.testing.assert_allclose(r.delivered_s, ws + 0.03)  # delayed ACKs do not delay data
    ws60, wb60 = writes(200, frame_s=0.06)
    m = TcpDeliveryModel(clean(), clean(), delayed_ack=True)
    r = m.deliver(ws60, wb60, np.random.default_rng(0))
    assert r.acks == 200  # the 40 ms timer fires before the next segment
    assert m.srtt_s == pytest.approx(0.06 + 0.04)  # the RTT includes the ACK delay


def test_delayed_ack_still_repairs_loss_in_order() -> None:
    ws, wb = writes(2000)
    r = TcpDeliveryModel(lossy(0.05), lossy(0.02), delayed_ack=True).deliver(ws, wb, np.random.default_rng(4))
    assert not np.isnan(r.delivered_s).any()
    assert np.all(np.diff(r.delivered_s) >= 0)
    assert r.retransmissions > 0 and r.acks < len(r.segments)
