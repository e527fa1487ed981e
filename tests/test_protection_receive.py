"""The receiver's view of protected packets when the sender switches between 20 and 60 ms packets
(issue 13): a redundant RED block or a retransmission is timed and sized as its own frame, not as
the carrying packet or the call's first packet; with that, ABR may use 60 ms packets with NACK or RED."""

from __future__ import annotations

import math

import numpy as np

from translab.config import CallConfig
from translab.simulate import simulate

RATE, N = 48000, 960  # Opus at 48 kHz, 20 ms frames
#: packets per run: 20 ms, then 60 ms, then 20 ms
PLAN = [1] * 20 + [3] * 20 + [1] * 20
ONE_WAY_S = 0.03


def _mixed_stream():
    """Opus packets (voiced audio, FEC at 10 %) following PLAN: (media_ts, frames, capture_s, payload)."""
    from translab.media.opus import OpusEncoder
    from translab.playout.synthetic import voiced

    x = (voiced(2.0, RATE) * 32767).astype(np.int16).reshape(-1, N)
    enc = OpusEncoder(RATE, 1, 20, 32000, fec=True, packet_loss_perc=10)
    out, i = [], 0
    for m in PLAN:
        enc.reconfigure(frame_ms=20 * m)
        out.append((i * N, m, (i + m) * N / RATE, enc.encode(x[i:i + m].reshape(-1))))
        i += m
    return out


def _protected_trace(packets, lost, *, red=0, rtx_for=()):
    """A protected trace of ``packets`` (see :func:`_mixed_stream`): each original RED-wrapped when
    ``red``, sent at its capture time and arriving ONE_WAY_S later unless its index is in ``lost``;
    ``rtx_for``: packet indices retransmitted (RFC 4588) 50 ms after their send time, arriving."""
    from translab.media.opus import packet_has_fec
    from translab.protection.red import RedEncoder
    from translab.protection.rtx import rtx_payload
    from translab.trace import make_trace

    enc = RedEncoder(red) if red else None
    rows = []
    for k, (ts, m, cap, pk) in enumerate(packets):
        msg = enc.wrap(pk, ts) if enc is not None else pk
        rows.append((k, ts, m * N, cap, cap, math.nan if k in lost else cap + ONE_WAY_S, msg, packet_has_fec(pk), False))
    for k in rtx_for:
        ts, m, cap, pk = packets[k]
        rows.append((k, ts, m * N, cap, cap + 0.05, cap + 0.05 + ONE_WAY_S, rtx_payload(k, rows[k][6]),
                     packet_has_fec(pk), True))
    rows.sort(key=lambda r: (r[4], r[8]))
    cols = dict(zip(("seq", "media_ts", "frame_samples", "capture_s", "send_s", "arrival_s", "payload", "fec", "rtx"),
                    map(list, zip(*rows))))
    size = [len(p) for p in cols["payload"]]
    cols.update(payload_bytes=size, message_bytes=size, wire_bytes=size, transport=["webrtc"] * len(rows),
                direction=["up"] * len(rows), duplicates=[0] * len(rows))
    rtx = cols.pop("rtx")
    tr = make_trace(cols, {"codec": "opus", "sample_rate": RATE, "channels": 1, "frame_ms": 20,
                           "protection": {"nack": bool(rtx_for), "red": red}})
    tr["rtx"] = np.asarray(rtx, dtype=bool)
    return tr


def _expected_slots(packets, carrier_arrival):
    """Per 20 ms slot: media_ts, capture start (s), the Opus bytes of the packet covering it, and
    the arrival of the copy that fills it (``carrier_arrival[k]`` for packet k)."""
    ts, cap0, payload, arrival = [], [], [], []
    for k, (t, m, _, pk) in enumerate(packets):
        for part in range(m):
            ts.append(t + part * N)
            cap0.append((t + part * N) / RATE)
            payload.append(pk)
            arrival.append(carrier_arrival[k])
    return np.array(ts), np.array(cap0), payload, np.array(arrival)


def _check_slots(view, packets, carrier_arrival):
    from translab.playout.receiver import Slots

    slots = Slots(view, RATE, N)
    ts, cap0, payload, arrival = _expected_slots(packets, carrier_arrival)
    assert slots.n == len(ts) == 100
    assert slots.media_ts.tolist() == ts.tolist()
    assert slots.present.all()
    np.testing.assert_allclose(slots.cap_start, cap0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(slots.arrival, arrival, rtol=0, atol=1e-9)
    assert [bytes(p) for p in slots.payload] == payload  # each slot decodes its own packet's bytes
    return slots


def test_red_blocks_keep_their_own_frame_length_across_20_60_switches():
    """RED distance 1 over the mixed stream, losing a 20 ms packet whose copy rides in a 60 ms one
    (19), a 60 ms packet whose copy rides in a 60 ms one (22) and a 60 ms packet whose copy rides in
    a 20 ms one (39): every slot is filled, at its own capture time, with its own frame's bytes."""
    from translab.playout import play
    from translab.protection.receive import playout_view

    packets = _mixed_stream()
    lost = {19, 22, 39}
    view = playout_view(_protected_trace(packets, lost, red=1))
    # each block row is sized and timed as its frame
    own = {ts: (m * N, cap) for ts, m, cap, _ in packets}
    assert [(f, c) for f, c in zip(view["frame_samples"], view["capture_s"])] == [own[t] for t in view["media_ts"]]
    red = view[view["source"] == "red"]
    assert set(red["frame_samples"]) == {N, 3 * N}
    arrival = [packets[k + 1][2] + ONE_WAY_S if k in lost else packets[k][2] + ONE_WAY_S for k in range(len(packets))]
    _check_slots(view, packets, arrival)
    # played: nothing concealed. The copy of 60 ms packet 22 rides in packet 23, which leaves 120 ms
    # after 22's first sample and arrives 150 ms after it: a fixed 150 ms buffer (first slot played
    # 170 ms after its first sample) waits for it
    r = play(view, policy="fixed:150", conceal="opus-fec")
    assert len(r.frames) == 100 and set(r.frames["kind"]) == {"decoded"}


def test_a_retransmitted_60_ms_packet_fills_its_three_slots_at_their_capture_times():
    from translab.protection.receive import playout_view

    packets = _mixed_stream()
    view = playout_view(_protected_trace(packets, {25}, rtx_for=(25,)))
    rtx = view[view["source"] == "rtx"]
    assert rtx["frame_samples"].tolist() == [3 * N] and rtx["capture_s"].tolist() == [packets[25][2]]
    arrival = [p[2] + ONE_WAY_S + (0.05 if k == 25 else 0.0) for k, p in enumerate(packets)]
    _check_slots(view, packets, arrival)


def _drop_with_loss(tmp_path):
    """The capacity-drop profile with 2 % random uplink loss: low enough for ABR's 60 ms packets
    (<= 4 % reported loss), so some 60 ms packets are lost."""
    p = tmp_path / "drop-loss.toml"
    p.write_text(
        'description = "capacity-drop with 2 % random uplink loss"\nsource = "test"\n'
        '[up]\ndelay = { base_ms = 30, jitter_ms = 5, distribution = "paretonormal" }\n'
        'loss = { model = "bernoulli", p = 0.02 }\n'
        'capacity = { trace = "capacity-drop.mahimahi", queue_packets = 50 }\n'
        '[down]\ndelay = { base_ms = 30, jitter_ms = 5, distribution = "paretonormal" }\n'
        'capacity = { rate_kbps = 20000, queue_packets = 200 }\n')
    return str(p)


def _recovered_60_ms_packets(res):
    """The media_ts of the lost 60 ms originals of ``res`` and of those whose three slots were all
    played decoded: from a retransmission or a redundant RED block, as the call had only one of them
    (Opus FEC in the next packet would make the last slot "fec", PLC any "plc")."""
    orig = res.trace  # the result's trace holds the original packets (retransmissions are wire rows)
    lost60 = orig[(orig["frame_samples"] == 3 * N) & orig["arrival_s"].isna()]["media_ts"].tolist()
    frames = res.playout.frames
    kind = dict(zip(frames["media_ts"].tolist(), frames["kind"].tolist()))
    return lost60, [ts for ts in lost60 if all(kind.get(ts + p * N) == "decoded" for p in range(3))]


def test_nack_with_abr_switches_to_60_ms_and_recovers_a_lost_60_ms_packet(tmp_path):
    res = simulate(CallConfig(profile=_drop_with_loss(tmp_path), bitrate=64000, metrics=(), seed=2,
                              abr=True, nack=True))
    timeline = res.trace.attrs["protection"]["timeline"]
    assert any(ms == 60 for *_, ms in timeline)  # NACK no longer pins ABR to 20 ms
    lost60, recovered = _recovered_60_ms_packets(res)
    assert lost60 and recovered, (lost60, recovered)
    assert res.summary["rtx_recovered"] >= len(recovered)


def test_red_with_abr_switches_to_60_ms_and_recovers_a_lost_60_ms_packet(tmp_path):
    res = simulate(CallConfig(profile=_drop_with_loss(tmp_path), bitrate=64000, metrics=(), seed=2,
                              abr=True, red=1))
    assert any(ms == 60 for *_, ms in res.trace.attrs["protection"]["timeline"])
    lost60, recovered = _recovered_60_ms_packets(res)
    assert lost60 and recovered == lost60, (lost60, recovered)
    assert res.summary["red_recovered"] >= len(recovered)
