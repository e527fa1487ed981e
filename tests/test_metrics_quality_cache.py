"""The quality-score cache: identical audio is scored once (across processes, via files), anything
else is a miss, and it can be turned off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from translab.metrics import quality as q


def _audio(seed: int) -> np.ndarray:
    t = np.arange(16000) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.random.default_rng(seed).uniform(0.5, 1, t.size)).astype(np.float32)


def test_identical_audio_is_scored_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(q.CACHE_ENV, str(tmp_path))
    ref, deg = _audio(1), _audio(1) * 0.9
    first = q.quality(ref, deg, 16000, metrics=("stoi",))
    assert len(list(tmp_path.rglob("*.json"))) == 1

    def boom(*a: object, **k: object) -> dict:
        raise AssertionError("scored again")

    monkeypatch.setattr(q, "score", boom)
    assert q.quality(ref.copy(), deg.copy(), 16000, metrics=("stoi",)) == pytest.approx(first)
    with pytest.raises(AssertionError, match="scored again"):  # one sample different: a miss
        q.quality(ref, np.concatenate([deg[:-1], [0.5]]).astype(np.float32), 16000, metrics=("stoi",))
    with pytest.raises(AssertionError, match="scored again"):  # other metrics: a miss
        q.quality(ref, deg, 16000, metrics=("stoi", "estoi"))


def test_cache_off_and_uncached_calls_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(q.CACHE_ENV, "off")
    assert q.cache_dir() is None
    ref = _audio(2)
    a = q.quality(ref, ref, 16000, metrics=("stoi",))
    monkeypatch.setenv(q.CACHE_ENV, str(tmp_path))
    b = q.quality(ref, ref, 16000, metrics=("stoi",), cache=False)
    assert a == b and not list(tmp_path.rglob("*.json"))


def test_a_missing_metric_package_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PESQ's None (package missing) is a fact of this machine, not of the audio, and JSON null would
    read back as NaN: such a result is returned as None every time and never stored."""
    import sys

    monkeypatch.setenv(q.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(sys.modules, "pesq", None)  # makes `import pesq` raise ImportError
    ref = _audio(3)
    for _ in range(2):
        assert q.quality(ref, ref, 16000, metrics=("pesq_wb",))["pesq_wb"] is None
    assert not list(tmp_path.rglob("*.json"))
