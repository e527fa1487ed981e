"""WAV loading (mono/stereo, PCM16/32/float), resampling, conversions, clips and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io.wavfile as wavfile
import scipy.signal as ss

from translab.errors import ConfigError, TranslabError
from translab.media import audio, clips
from translab.media.audio import SUPPORTED_RATES, load_wav, resample, to_float, to_int16, write_wav
from translab.paths import CLIPS_DIR


def sine(rate: int, hz: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    f, p = ss.periodogram(x, rate)
    return float(f[np.argmax(p)])


@pytest.mark.parametrize("kind", ["int16", "int32", "float32", "uint8"])
def test_load_formats(tmp_path, kind):
    x = sine(16000, 440, 0.5)
    data = {"int16": (x * 32767).astype(np.int16), "int32": (x * 2**31).astype(np.int32),
            "float32": x, "uint8": (x * 127 + 128).astype(np.uint8)}[kind]
    p = tmp_path / "a.wav"
    wavfile.write(p, 16000, data)
    y, r = load_wav(p)
    assert r == 16000 and y.dtype == np.float32 and y.ndim == 1
    assert np.max(np.abs(y - x)) < (0.02 if kind == "uint8" else 1e-4)  # 8-bit: 1/128 steps


def test_stereo_is_averaged(tmp_path):
    left = sine(8000, 300, 0.2)
    st = np.stack([left, np.zeros_like(left)], axis=1)
    p = tmp_path / "st.wav"
    wavfile.write(p, 8000, (st * 32767).astype(np.int16))
    y, _ = load_wav(p)
    assert y.ndim == 1
    assert np.allclose(y, left / 2, atol=1e-4)


@pytest.mark.parametrize("to_rate", SUPPORTED_RATES)
def test_resample_on_load(tmp_path, to_rate):
    p = tmp_path / "a.wav"
    wavfile.write(p, 44100, (sine(44100, 1000, 0.5) * 32767).astype(np.int16))
    y, r = load_wav(p, rate=to_rate, dtype="int16")
    assert r == to_rate and y.dtype == np.int16
    assert len(y) == pytest.approx(to_rate / 2, abs=1)
    assert dominant_hz(y.astype(float), to_rate) == pytest.approx(1000, abs=5)


def test_resample_removes_aliases():
    x = sine(48000, 6000, 0.5)  # above 4 kHz: must vanish at 8 kHz, not fold to 2 kHz
    y = resample(x, 48000, 8000)
    assert np.sqrt(np.mean(y[200:-200] ** 2)) < 0.005
    z = resample(sine(16000, 1000, 0.5), 16000, 48000)
    assert len(z) == 24000 and z.dtype == np.float32


def test_conversions():
    assert to_int16(np.array([0.0, 0.5, -1.0, 1.0, 2.0], np.float32)).tolist() == [0, 16384, -32768, 32767, 32767]
    assert to_float(np.array([-32768, 16384], np.int16)).tolist() == [-1.0, 0.5]
    i = np.arange(-32768, 32768, 7, dtype=np.int16)
    assert np.array_equal(to_int16(to_float(i)), i)


def test_write_wav_atomic_pcm16(tmp_path):
    p = tmp_path / "sub" / "o.wav"
    x = sine(24000, 500, 0.1)
    write_wav(p, x, 24000)
    r, d = wavfile.read(p)
    assert r == 24000 and d.dtype == np.int16
    assert np.array_equal(d, to_int16(x))
    assert [q.name for q in p.parent.iterdir()] == ["o.wav"]  # no temporary left behind


def test_error_not_audio(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not a WAV file\n")
    with pytest.raises(ConfigError, match="could not read") as ei:
        load_wav(p)
    assert ei.value.field == "path"


def test_error_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="existing WAV"):
        load_wav(tmp_path / "nope.wav")


def test_error_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    wavfile.write(p, 16000, np.zeros(0, np.int16))
    with pytest.raises(TranslabError, match="has none"):
        load_wav(p)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(ConfigError):
        load_wav(tmp_path / "zero.wav")


def test_error_unsupported_rate_and_dtype(tmp_path):
    p = tmp_path / "a.wav"
    wavfile.write(p, 16000, np.zeros(1600, np.int16))
    with pytest.raises(ConfigError) as ei:
        load_wav(p, rate=44100)
    assert ei.value.field == "rate" and "8000" in str(ei.value)
    with pytest.raises(ConfigError, match="dtype"):
        load_wav(p, dtype="float64")
    with pytest.raises(ConfigError, match="rate"):
        clips.load_clip(p, 22050)


def test_error_clip_shorter_than_one_frame(tmp_path):
    p = tmp_path / "short.wav"
    wavfile.write(p, 16000, np.ones(300, np.int16))  # 18.75 ms < 20 ms
    with pytest.raises(ConfigError, match="at least 20 ms") as ei:
        clips.load_clip(p, 16000)
    assert ei.value.field == "clip"
    assert len(clips.load_clip(p, 16000, min_ms=10)) == 300
    wavfile.write(p, 16000, np.ones(320, np.int16))
    assert len(clips.load_clip(p, 16000)) == 320


def test_unknown_clip_lists_names():
    with pytest.raises(ConfigError, match="slt-weather"):
        clips.clip_path("no-such-clip")


# --- the committed clips --------------------------------------------------------------------


def test_committed_clips():
    names = clips.list_clips()
    assert {"slt-weather", "rms-order"} <= set(names)
    flite = [n for n in names if clips.clip_card(n)["source"].startswith("flite")]
    voices = {n.split("-")[0] for n in flite}
    assert {"slt"} < voices and voices & {"rms", "awb"}  # female and male
    total = 0
    for n in names:
        p = clips.clip_path(n)
        total += p.stat().st_size
        r, d = wavfile.read(p)
        assert r in (16000, 22050, 48000) and d.dtype == np.int16 and d.ndim == 1
        assert 8 <= len(d) / r <= 16
        if n in flite:
            assert (CLIPS_DIR / "texts" / f"{n}.txt").is_file()
        # real pauses: at least 2 stretches of >= 0.3 s of digital silence (between the utterances)
        w = int(0.3 * r)
        silent = np.convolve(np.abs(d.astype(int)) < 8, np.ones(w), "valid") == w
        starts = np.flatnonzero(np.diff(silent.astype(int)) == 1)
        assert len(starts) >= 2, n
    assert total < 4_500_000


def test_16k_clips_are_wideband_only():
    # 16 kHz files: nothing above 8 kHz; measured energy above 7 kHz is 30-45 dB below total
    for n in clips.list_clips():
        if clips.clip_card(n)["sample_rate"] != 16000:
            continue
        x = clips.load_clip(n, 48000)
        f, p = ss.welch(x, 48000, nperseg=4096)
        assert p[f > 8500].sum() / p.sum() < 1e-4  # (resampling filter transition band)
        assert p[f > 7000].sum() / p.sum() < 10 ** (-2.5)


def test_load_clip_by_name_and_path():
    x = clips.load_clip("slt-weather", 8000)
    y = clips.load_clip(str(CLIPS_DIR / "slt-weather.wav"), 8000)
    assert x.dtype == np.float32 and np.array_equal(x, y)
    assert audio.SUPPORTED_RATES == (8000, 16000, 24000, 48000)


def test_load_clip_is_cached_but_each_call_gets_its_own_copy_and_a_changed_file_reloads(tmp_path):
    import os

    f = tmp_path / "c.wav"
    wavfile.write(f, 16000, (np.sin(np.arange(8000) / 5) * 8000).astype(np.int16))
    a = clips.load_clip(str(f), 48000)
    a[:] = 0  # a caller scribbling on its array must not reach the next caller
    b = clips.load_clip(str(f), 48000)
    assert np.abs(b).max() > 0.2 and b.flags.writeable
    wavfile.write(f, 16000, np.full(8000, 1000, dtype=np.int16))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))  # surely a new mtime
    c = clips.load_clip(str(f), 48000)
    assert np.allclose(c[1000:-1000], 1000 / 32768, atol=1e-3)


def test_nan_or_inf_samples_are_refused_with_their_index(tmp_path):
    """Issue 15: a WAV with NaN samples gave a cast warning and then STOI 0.007 as if it were a result."""
    from translab.media.audio import check_finite

    x = np.zeros(1000, dtype=np.float32)
    x[321] = np.nan
    wavfile.write(tmp_path / "nan.wav", 16000, x)
    with pytest.raises(ConfigError, match=r"samples: 'sample 321 is nan' is not allowed \(allowed: finite"):
        load_wav(tmp_path / "nan.wav")
    st = np.zeros((1000, 2), dtype=np.float64)
    st[5, 1] = -np.inf
    with pytest.raises(ConfigError, match=r"sample 5, channel 1 is -inf"):
        check_finite(st)
    check_finite(np.array([1, 2], dtype=np.int16))  # integer audio is always finite


def test_clip_longer_than_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import translab.media.audio as audio

    wavfile.write(tmp_path / "long.wav", 8000, np.zeros(8000 * 3, dtype=np.int16))
    monkeypatch.setattr(audio, "MAX_CLIP_S", 2.0)
    with pytest.raises(ConfigError, match=r"clip length: '3 s' is not allowed \(allowed: at most 2 s"):
        audio.load_wav(tmp_path / "long.wav")
    monkeypatch.setattr(audio, "MAX_CLIP_S", 3.0)
    x, rate = audio.load_wav(tmp_path / "long.wav")
    assert rate == 8000 and len(x) == 24000 and x.flags.writeable  # a copy, not the memory map
