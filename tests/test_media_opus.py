"""Opus through libopus (ctypes): round trips, packet sizes, FEC, PLC, DTX, errors."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest
import scipy.signal as ss

from translab.errors import ConfigError
from translab.media import opus
from translab.media.opus import (
    OpusDecoder,
    OpusEncoder,
    OpusError,
    OpusInvalidPacketError,
    packet_has_fec,
    packet_has_fec_toc,
)


def speechlike(rate: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Deterministic voiced-speech stand-in (int16): a glottal pulse train with gliding pitch
    (100-160 Hz) through three formant resonators, syllable envelope (4 Hz), and pauses."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = 130 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = np.cumsum(f0 / rate)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    x = pulses + 0.02 * rng.standard_normal(n)
    for fc, bw in ((700, 130), (1220, 150), (2600, 250)):
        r = np.exp(-np.pi * bw / rate)
        a = [1, -2 * r * np.cos(2 * np.pi * fc / rate), r * r]
        x = ss.lfilter([1 - r], a, x)
    env = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 0.5  # 4 syllables/s, silent halves
    y = x * env
    return (y / np.abs(y).max() * 16000).astype(np.int16)


def tone(rate: int, seconds: float = 2.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def encode_all(enc: OpusEncoder, x: np.ndarray) -> list[bytes]:
    n = enc.frame_samples
    return [enc.encode(x[i * n:(i + 1) * n]) for i in range(len(x) // n)]


def round_trip(x: np.ndarray, rate: int, bitrate: int, **kw) -> tuple[np.ndarray, np.ndarray, OpusEncoder, list[bytes]]:
    """Encode+decode; returns (reference, decoded) aligned by the encoder lookahead."""
    enc = OpusEncoder(rate, 1, 20, bitrate, **kw)
    dec = OpusDecoder(rate)
    packets = encode_all(enc, x)
    y = np.concatenate([dec.decode(p) for p in packets]).astype(float)
    L = enc.lookahead_samples
    ref = x[: len(y) - L].astype(float)
    return ref, y[L:], enc, packets


def snr_db(ref: np.ndarray, deg: np.ndarray, skip: int = 0) -> float:
    r, d = ref[skip:].astype(float), deg[skip:len(ref)].astype(float)
    return float(10 * np.log10(np.sum(r ** 2) / max(np.sum((r - d) ** 2), 1e-12)))


def best_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """Lag (samples) maximising the waveform SNR of y[lag:] against x."""
    xs, ys = x.astype(float), y.astype(float)
    scores = [snr_db(xs[: len(ys) - L], ys[L:]) for L in range(max_lag)]
    return int(np.argmax(scores))


# ---------------------------------------------------------------------------------------------


def test_version_and_path():
    v = opus.libopus_version()
    assert v.startswith("libopus")
    assert "opus" in opus.libopus_path()


def test_env_var_path_wins(monkeypatch, tmp_path):
    # an explicit TRANSLAB_LIBOPUS must not silently fall back to another library
    explicit = os.environ.get("TRANSLAB_LIBOPUS")
    monkeypatch.setenv("TRANSLAB_LIBOPUS", str(tmp_path / "nope.so"))
    assert opus._candidates() == [("env", str(tmp_path / "nope.so"))]
    monkeypatch.delenv("TRANSLAB_LIBOPUS")
    cands = opus._candidates()
    kinds = [k for k, _ in cands]
    # PyAV (an aiortc dependency, so always installed) bundles libopus: it comes before the system's
    assert kinds[0] == "av" and "av.libs" in cands[0][1]
    assert set(kinds[1:]) <= {"system"}
    if not explicit:
        assert opus.libopus_path() == cands[0][1]  # and it is the one loaded


def test_capabilities_are_probed():
    caps = opus.capabilities()
    assert set(caps) >= {"dred", "deep_plc", "packet_has_lbrr", "version"}
    assert isinstance(caps["dred"], bool) and isinstance(caps["deep_plc"], bool)


def test_lookahead():
    enc = OpusEncoder(48000, application="voip")
    assert enc.lookahead_samples == 312  # 6.5 ms at 48 kHz (REFERENCE section 2)
    assert enc.lookahead_ms == pytest.approx(6.5)
    assert OpusEncoder(16000).lookahead_ms == pytest.approx(6.5)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_output_delay_is_lookahead(rate):
    # In "audio" mode the decoded waveform lines up with the input exactly lookahead samples late.
    x = speechlike(rate)
    enc = OpusEncoder(rate, 1, 20, 32000, application="audio")
    dec = OpusDecoder(rate)
    y = np.concatenate([dec.decode(p) for p in encode_all(enc, x)])
    lag = best_lag(x, y, 3 * enc.lookahead_samples)
    assert abs(lag - enc.lookahead_samples) <= rate // 8000  # within 1/8 ms


@pytest.mark.parametrize("rate", [16000, 48000])
def test_tone_round_trip_snr(rate):
    snrs = {}
    for br in (12000, 32000, 64000):
        ref, y, _, _ = round_trip(tone(rate), rate, br, application="audio")
        snrs[br] = snr_db(ref, y, skip=rate // 10)
    assert snrs[12000] > 12
    assert snrs[64000] > 30
    assert snrs[64000] > snrs[12000] + 10


@pytest.mark.parametrize("application,low,high", [("audio", 10, 18), ("voip", 4, 7)])
def test_speech_round_trip_snr(application, low, high):
    # voip mode high-passes the input and favours SILK (not waveform-matching): lower SNR.
    rate = 16000
    x = speechlike(rate)
    s = {br: snr_db(*round_trip(x, rate, br, application=application)[:2]) for br in (12000, 32000)}
    assert s[12000] > low
    assert s[32000] > high
    assert s[32000] > s[12000]


@pytest.mark.parametrize("clip", ["slt-weather", "rms-order"])
def test_clip_round_trip_snr(clip):
    # measured (libopus 1.6.1, 16 kHz, audio mode): slt 19.5/26.4/29.1 dB, rms 13.3/17.9/19.8 dB
    # at 12/24/32 kbit/s; voip mode 5-7 dB (high-pass + SILK, not waveform-matching)
    from translab.media.audio import to_int16
    from translab.media.clips import load_clip

    x = to_int16(load_clip(clip, 16000))
    s = {br: snr_db(*round_trip(x, 16000, br, application="audio")[:2]) for br in (12000, 24000, 32000)}
    assert s[12000] > 10
    assert s[32000] > 16
    assert s[12000] < s[24000] < s[32000]
    assert snr_db(*round_trip(x, 16000, 24000, application="voip")[:2]) > 3


def test_wrong_delay_alignment_scores_worse():
    # guards the alignment above: ignoring the lookahead must visibly hurt the SNR
    rate = 16000
    x = speechlike(rate)
    ref, y, enc, _ = round_trip(x, rate, 32000, application="audio")
    y0 = np.concatenate([np.zeros(enc.lookahead_samples), y])  # undo the alignment
    assert snr_db(ref, y) > snr_db(x[: len(y0)], y0) + 10


def test_packet_sizes_grow_with_bitrate():
    x = speechlike(48000)
    sizes = [np.mean([len(p) for p in round_trip(x, 48000, br)[3]]) for br in (8000, 16000, 32000, 64000, 128000)]
    assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes
    # CBR: every packet is bitrate * 20 ms / 8 bytes
    enc = OpusEncoder(48000, 1, 20, 32000, vbr=False)
    assert {len(p) for p in encode_all(enc, x)} == {80}


def test_stereo_and_float_input():
    rate = 48000
    x = tone(rate, 0.2)
    st = np.stack([x, x // 2], axis=1)
    enc = OpusEncoder(rate, 2, 10, 64000)
    dec = OpusDecoder(rate, 2)
    out = dec.decode(enc.encode(st[:480]))
    assert out.shape == (480, 2) and out.dtype == np.int16
    enc1 = OpusEncoder(rate, 1, 20, 32000)
    assert len(enc1.encode(x[:960].astype(np.float32) / 32768))
    with pytest.raises(ConfigError, match="pcm samples"):
        enc1.encode(x[:959])


@pytest.mark.parametrize("frame_ms", [2.5, 5, 10, 20, 40, 60])
def test_frame_durations(frame_ms):
    enc = OpusEncoder(48000, 1, frame_ms, 32000)
    dec = OpusDecoder(48000)
    x = tone(48000, 0.2)
    p = enc.encode(x[: enc.frame_samples])
    assert enc.frame_samples == int(48 * frame_ms)
    assert len(dec.decode(p)) == enc.frame_samples
    assert dec.packet_samples(p) == enc.frame_samples


def fec_packets(rate: int, fec: bool, loss: int, bitrate: int = 32000) -> tuple[np.ndarray, list[bytes], int]:
    x = speechlike(rate, 3.0)
    enc = OpusEncoder(rate, 1, 20, bitrate, fec=fec, packet_loss_perc=loss)
    return x, encode_all(enc, x), enc.frame_samples


def test_fec_flags_and_size():
    # In-band FEC (LBRR) comes out of the target bitrate, not on top (REFERENCE section 2): with
    # VBR at the same bitrate FEC packets carry LBRR but are not larger (measured with libopus
    # 1.3.1 and 1.6.1: mean size within a few per cent).
    _, plain, _ = fec_packets(48000, fec=False, loss=10)
    _, withfec, _ = fec_packets(48000, fec=True, loss=10)
    _, noloss, _ = fec_packets(48000, fec=True, loss=0)
    assert not any(packet_has_fec(p) for p in plain)
    assert not any(packet_has_fec(p) for p in noloss)  # FEC needs packet_loss_perc > 0
    voiced = [packet_has_fec(p) for p in withfec]
    assert np.mean(voiced) > 0.3  # the test signal is silent half the time
    ratio = np.mean([len(p) for p in withfec]) / np.mean([len(p) for p in plain])
    assert 0.9 < ratio < 1.1


def test_packet_has_fec_parser_matches_libopus():
    pkts: list[bytes] = []
    for rate, br, ch, fms in ((48000, 32000, 1, 20), (16000, 24000, 1, 40), (16000, 24000, 1, 60),
                              (48000, 40000, 2, 20), (48000, 96000, 1, 20), (16000, 24000, 1, 10)):
        enc = OpusEncoder(rate, ch, fms, br, fec=True, packet_loss_perc=10)
        x = speechlike(rate, 1.2)
        if ch == 2:
            x = np.stack([x, np.roll(x, 7)], axis=1)
        n = enc.frame_samples
        pkts += [enc.encode(x[i * n:(i + 1) * n]) for i in range(len(x) // n)]
    flags = [packet_has_fec_toc(p) for p in pkts]
    assert any(flags) and not all(flags)
    if opus.capabilities()["packet_has_lbrr"]:
        assert flags == [packet_has_fec(p) for p in pkts]
    # CELT-only TOC (config >= 16) never carries LBRR
    assert packet_has_fec_toc(bytes([31 << 3, 0xFF, 0xFF])) is False


def test_fec_recovers_better_than_plc():
    rate = 48000
    x, packets, n = fec_packets(rate, fec=True, loss=10)
    ref_dec = OpusDecoder(rate)
    ref = np.concatenate([ref_dec.decode(p) for p in packets])  # the frames as if nothing was lost
    gains, fec_snrs = [], []
    for k in range(10, len(packets) - 1, 6):
        seg = ref[k * n:(k + 1) * n]
        if np.abs(seg).max() < 1000 or not packet_has_fec(packets[k + 1]):
            continue
        a, b = OpusDecoder(rate), OpusDecoder(rate)
        for p in packets[:k]:
            a.decode(p)
            b.decode(p)
        rec = a.decode_fec(packets[k + 1], n)
        plc = b.conceal(n)
        assert len(rec) == len(plc) == n
        fec_snrs.append(snr_db(seg, rec))
        gains.append(snr_db(seg, rec) - snr_db(seg, plc))
    assert len(gains) >= 8
    assert np.median(fec_snrs) > 8
    assert np.median(gains) > 5  # measured ~10 dB at 32 kbit/s, 10 % loss


def test_decode_fec_without_lbrr_falls_back_to_plc():
    rate = 16000
    _, packets, n = fec_packets(rate, fec=False, loss=0)
    a, b = OpusDecoder(rate), OpusDecoder(rate)
    for p in packets[:20]:
        a.decode(p)
        b.decode(p)
    assert np.array_equal(a.decode_fec(packets[21], n), b.conceal(n))


@pytest.mark.parametrize("rate,n", [(48000, 960), (48000, 120), (16000, 320), (8000, 480), (24000, 2880)])
def test_conceal_sample_count(rate, n):
    enc, dec = OpusEncoder(rate), OpusDecoder(rate)
    x = tone(rate, 0.1)
    dec.decode(enc.encode(x[: enc.frame_samples]))
    out = dec.conceal(n)
    assert out.shape == (n,) and out.dtype == np.int16
    assert np.abs(out).max() > 0  # continues the tone rather than silence


def test_conceal_rejects_non_multiple_of_2_5ms():
    dec = OpusDecoder(48000)
    for bad in (0, 100, 959, 48001, -960, 960.0):
        with pytest.raises(ConfigError, match="n_samples"):
            dec.conceal(bad)
    with pytest.raises(ConfigError, match="n_samples"):
        dec.decode_fec(b"\x08\x00", 48000)  # FEC recovers at most one 120 ms packet


def test_conceal_long_outage():
    enc, dec = OpusEncoder(48000), OpusDecoder(48000)
    dec.decode(enc.encode(tone(48000, 0.02)))
    out = dec.conceal(48000)  # 1 s, more than one 120 ms decoder call
    assert out.shape == (48000,)
    assert np.abs(out[-4800:]).max() < np.abs(out[:4800]).max()  # PLC fades out


def test_dtx_tiny_packets_on_silence():
    rate = 48000
    enc = OpusEncoder(rate, dtx=True)
    x = speechlike(rate, 1.0)
    sil = np.zeros(rate, dtype=np.int16)
    sizes_speech = [len(p) for p in encode_all(enc, x)]
    sizes_sil = [len(p) for p in encode_all(enc, sil)]
    # DTX: 1-byte (TOC-only) packets, plus one comfort-noise refresh frame about every 400 ms
    tiny = np.array(sizes_sil) <= 2
    assert tiny.mean() > 0.9
    assert 1 <= (~tiny).sum() <= 4  # 1 s of silence: 2-3 refreshes
    assert enc.in_dtx
    assert np.median(sizes_speech) > 20
    plain = OpusEncoder(rate, dtx=False)
    assert min(len(p) for p in encode_all(plain, sil)[-20:]) > 2


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"sample_rate": 44100}, "sample_rate"),
        ({"channels": 3}, "channels"),
        ({"frame_ms": 30}, "frame_ms"),
        ({"bitrate": 5999}, "bitrate"),
        ({"bitrate": 510001}, "bitrate"),
        ({"complexity": 11}, "complexity"),
        ({"complexity": -1}, "complexity"),
        ({"application": "music"}, "application"),
        ({"packet_loss_perc": 101}, "packet_loss_perc"),
        ({"packet_loss_perc": -1}, "packet_loss_perc"),
        ({"max_bandwidth": "ultraband"}, "max_bandwidth"),
        ({"bitrate": 32000.5}, "bitrate"),
    ],
)
def test_out_of_range_raises_config_error(kwargs, field):
    with pytest.raises(ConfigError) as ei:
        OpusEncoder(**kwargs)
    assert ei.value.field == field
    assert field in str(ei.value)


def test_decoder_config_errors():
    with pytest.raises(ConfigError, match="sample_rate"):
        OpusDecoder(44100)
    with pytest.raises(ConfigError, match="channels"):
        OpusDecoder(48000, 0)


@pytest.mark.parametrize("packet", [b"\x03\x00", b"\x01\x00", b"\xff\xff\xff"])
def test_corrupt_packet_raises_invalid_packet(packet):
    with pytest.raises(OpusInvalidPacketError) as ei:
        OpusDecoder(48000).decode(packet)
    assert isinstance(ei.value, OpusError)
    assert ei.value.code == -4
    assert "corrupted stream" in str(ei.value)  # libopus' own opus_strerror text


def test_max_bandwidth_limits_spectrum():
    rate = 48000
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(rate) * 3000).astype(np.int16)  # white noise: energy everywhere
    out = {}
    for bw in ("narrowband", "fullband"):
        ref, y, _, _ = round_trip(x, rate, 64000, application="audio", max_bandwidth=bw)
        f, p = ss.welch(y, rate, nperseg=1024)
        out[bw] = p[f > 6000].sum() / p.sum()
    assert out["narrowband"] < 0.01 < out["fullband"]


def test_state_freed_on_gc(monkeypatch):
    freed = []
    enc = OpusEncoder()
    dec = OpusDecoder()
    real_e, real_d = enc._destroy, dec._destroy
    enc._destroy = lambda st: (freed.append("enc"), real_e(st))
    dec._destroy = lambda st: (freed.append("dec"), real_d(st))
    del enc, dec
    gc.collect()
    assert sorted(freed) == ["dec", "enc"]


@pytest.mark.parametrize("code,cls,text", [
    (-1, opus.OpusBadArgError, "invalid argument"),
    (-2, opus.OpusBufferTooSmallError, "buffer too small"),
    (-3, opus.OpusInternalError, "internal error"),
    (-4, opus.OpusInvalidPacketError, "corrupted stream"),
    (-5, opus.OpusUnimplementedError, "request not implemented"),
    (-6, opus.OpusInvalidStateError, "invalid state"),
    (-7, opus.OpusAllocFailError, "memory allocation failed"),
])
def test_error_codes_map_to_types_with_libopus_text(code, cls, text):
    with pytest.raises(cls) as ei:
        opus._raise(code, "somewhere")
    assert ei.value.code == code and text in str(ei.value) and "somewhere" in str(ei.value)


def test_bad_ctl_value_raises_bad_arg():
    enc = OpusEncoder()
    with pytest.raises(opus.OpusBadArgError):
        enc._ctl(opus._SET_COMPLEXITY, 42)  # bypasses the Python-side check on purpose


@pytest.mark.parametrize("application", ["voip", "audio", "restricted-lowdelay"])
def test_applications(application):
    enc = OpusEncoder(48000, 1, 10, 48000, application=application)
    dec = OpusDecoder(48000)
    x = tone(48000, 0.1)
    out = np.concatenate([dec.decode(p) for p in encode_all(enc, x)])
    assert len(out) == len(x)
    # restricted-lowdelay is CELT-only: shorter lookahead (2.5 ms)
    assert enc.lookahead_ms == pytest.approx(2.5 if application == "restricted-lowdelay" else 6.5)
