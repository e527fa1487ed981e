"""aiortc-stock: the port of aiortc's JitterBuffer matches the original, and one lost packet raises
latency for good from 81 to 281 ms (REFERENCE section 3, aiortc issue #543)."""

from __future__ import annotations

import numpy as np
import pytest

from translab.playout import play
from translab.playout.aiortc_jitter_buffer import AiortcJitterBuffer
from translab.playout.synthetic import packet_trace, voiced

RATE = 16000
FRAME_N = 320


def _after_capture_ms(out) -> np.ndarray:
    """Play time minus capture time of each decoded frame's last sample (ms): how aiortc's own
    latency figure is defined (the frame is sent when it is complete)."""
    d = out.frames[out.frames["kind"] == "decoded"]
    return (d["play_s"].to_numpy() - (d["media_ts"].to_numpy() + FRAME_N) / RATE) * 1000.0


def test_one_lost_packet_raises_latency_from_81_to_281_ms_for_good():
    x = voiced(3.0, RATE)
    clean = play(packet_trace(x, RATE, delay_s=0.001), policy="aiortc-stock", conceal="zero")
    np.testing.assert_allclose(_after_capture_ms(clean), 81.0, atol=1e-6)
    lossy = play(packet_trace(x, RATE, delay_s=0.001, lost=[20]), policy="aiortc-stock", conceal="zero")
    lat = _after_capture_ms(lossy)
    d = lossy.frames[lossy.frames["kind"] == "decoded"]
    slots = d["media_ts"].to_numpy() // FRAME_N
    # frames 16..19 (in front of the gap) are flushed with the lost one: ~5 frames gone
    assert list(slots[:16]) == list(range(16))
    assert slots[16] == 21
    np.testing.assert_allclose(lat[:16], 81.0, atol=1e-6)
    np.testing.assert_allclose(lat[16:], 281.0, atol=1e-6)
    st = lossy.stats
    assert st["packetsLost"] == 1
    assert st["packetsDiscarded"] == 4
    assert st["concealedSamples"] == 0  # aiortc has no PLC: the listener hears a stall
    assert st["stallCount"] == 1
    assert lossy.conceal == "none"


def test_stall_duration_equals_the_latency_step():
    x = voiced(2.0, RATE)
    lossy = play(packet_trace(x, RATE, delay_s=0.001, lost=[30]), policy="aiortc-stock", conceal="zero")
    # 4 frames flushed + 1 lost = 100 ms of audio gone, latency +200 ms: 300 ms of silence
    assert lossy.stats["totalStallDuration"] == pytest.approx(0.300, abs=1e-9)
    assert lossy.stats["stallInterruptionCount"] == 1
    assert lossy.stats["interruptionCount"] == 0  # nothing is concealed


def _reference_release(seqs: list[int]) -> list[tuple[int, int | None]]:
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtp import RtpPacket

    jb = JitterBuffer(capacity=16, prefetch=4)
    out = []
    for s in seqs:
        p = RtpPacket(sequence_number=s & 0xFFFF, timestamp=(1234 + 960 * s) & 0xFFFFFFFF)
        p._data = s.to_bytes(4, "big")
        _, frame = jb.add(p)
        out.append((s, None if frame is None else int.from_bytes(frame.data, "big") & 0xFFFF))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_port_releases_what_aiortc_releases(seed):
    pytest.importorskip("aiortc")
    rng = np.random.default_rng(seed)
    n = 400
    seqs = np.arange(65400, 65400 + n)  # crosses the uint16 wrap
    keep = rng.random(n) > 0.06  # some loss, in bursts sometimes
    keep[100:107] = False
    order = np.argsort(np.arange(n) + rng.normal(0, 1.2, n))  # some reordering
    arrivals = [int(s) for s in seqs[order] if keep[s - 65400]]
    ref = _reference_release(arrivals)
    jb = AiortcJitterBuffer(16, 4)
    mine = [(s, jb.add(s)) for s in arrivals]
    assert [(s & 0xFFFF, r) for s, r in mine] == [(s & 0xFFFF, r) for s, r in ref]
