"""Speech quality of the played-out audio: PLCMOS v2 (non-intrusive), PESQ wideband / narrowband,
STOI / ESTOI and ViSQOL speech mode (intrusive, on audio aligned to the reference).

All inputs are mono float arrays in [-1, 1] (int16 arrays are scaled by 1/32768) at ``rate`` Hz;
each metric resamples to the rate it needs (PLCMOS 16 kHz, PESQ-WB 16 kHz, PESQ-NB 8 kHz, ViSQOL
speech 16 kHz; STOI resamples to 10 kHz itself).

* PLCMOS v2 (speechmos + onnxruntime, MIT): averages 15 random "virtual raters" drawn from NumPy's
  global RNG; :func:`plcmos` seeds that RNG with :data:`PLCMOS_SEED` around the call and restores
  the previous state afterwards, so the same audio always gets the same score and the caller's
  random stream is untouched. One ONNX session per process, created on first use, single-threaded
  by default (sweeps run one process per core; set TRANSLAB_ORT_THREADS=0 for all cores).
* PESQ (package ``pesq``, an optional extra: the wrapper is MIT but the bundled ITU-T P.862 code is
  licensed for evaluation only, not commercial use): :func:`pesq_score` returns None when it is
  not installed, NaN when P.862 finds no utterance.
* STOI / ESTOI (pystoi).
* ViSQOL v3 speech mode (package ``visqol-python[lattice]``, Apache-2.0, an optional extra; pure
  Python, 4-5 s per 10 s clip): :func:`visqol_score` raises :class:`VisqolUnavailable` when it is
  not installed. The ``pyvisqol`` package is not usable here: it downloads its native library from a
  model hub at import time, which fails offline.
"""

from __future__ import annotations

import math
import os
import threading
from math import gcd
from typing import Any, Sequence

import numpy as np
from scipy import signal

from translab.errors import ConfigError, TranslabError, check_choice

__all__ = [
    "METRICS",
    "PLCMOS_SEED",
    "VisqolUnavailable",
    "align",
    "plcmos",
    "pesq_score",
    "quality",
    "stoi_score",
    "visqol_score",
]

#: Metric names :func:`quality` knows, and the keys of its result.
METRICS: tuple[str, ...] = ("plcmos", "pesq_wb", "pesq_nb", "stoi", "estoi", "visqol")
#: Seed of NumPy's global RNG while PLCMOS draws its virtual raters.
PLCMOS_SEED = 0
_PLCMOS_RATE = 16000


class VisqolUnavailable(TranslabError):
    """ViSQOL cannot run in this environment (the optional package is missing)."""


# --- helpers -------------------------------------------------------------------------------------

def _as_float(x: Any, field: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ConfigError(field, f"array of shape {a.shape}", "a 1-D mono signal")
    if a.size == 0:
        raise ConfigError(field, "empty array", "at least one sample")
    if a.dtype == np.int16:
        return a.astype(np.float64) / 32768.0
    if not np.issubdtype(a.dtype, np.floating):
        raise ConfigError(field, str(a.dtype), "float in [-1, 1] or int16")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        raise ConfigError(field, "non-finite samples", "finite floats in [-1, 1]")
    return a


def _check_rate(rate: int) -> int:
    if int(rate) != rate or not (1000 <= rate <= 384000):
        raise ConfigError("rate", rate, "a whole sample rate in Hz, 1000 to 384000")
    return int(rate)


def _resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly), float64 out."""
    if from_rate == to_rate:
        return x
    g = gcd(int(from_rate), int(to_rate))
    return signal.resample_poly(x, to_rate // g, from_rate // g).astype(np.float64)


# --- alignment ------------------------------------------------------------------------------------

def align(
    ref: np.ndarray, deg: np.ndarray, rate: int, max_lag_s: float | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Align ``deg`` to ``ref`` by cross-correlation (FFT) and cut both to their overlap.

    Returns ``(ref_seg, deg_seg, lag_samples)`` with equal-length segments, where ``lag_samples``
    (samples at ``rate``) is how much later the content appears in ``deg`` than in ``ref``
    (negative: earlier). ``max_lag_s`` (s) limits the search to |lag| <= max_lag_s. One global lag:
    time-stretching by an adaptive jitter buffer leaves residual drift that this does not undo.
    """
    rate = _check_rate(rate)
    r = _as_float(ref, "ref")
    d = _as_float(deg, "deg")
    corr = signal.correlate(d, r, mode="full", method="fft")
    lags = signal.correlation_lags(d.size, r.size, mode="full")
    if max_lag_s is not None:
        if not (max_lag_s >= 0):
            raise ConfigError("max_lag_s", max_lag_s, ">= 0 s")
        keep = np.abs(lags) <= int(round(max_lag_s * rate))
        corr, lags = corr[keep], lags[keep]
    lag = int(lags[int(np.argmax(corr))]) if corr.size and np.any(corr != 0) else 0
    r0, d0 = max(0, -lag), max(0, lag)
    n = max(0, min(r.size - r0, d.size - d0))
    if n == 0:
        raise TranslabError(f"align: no overlap between ref and deg at lag {lag} samples")
    return r[r0 : r0 + n], d[d0 : d0 + n], lag


# --- PLCMOS ---------------------------------------------------------------------------------------

_plcmos_lock = threading.Lock()
_plcmos_model: Any = None
_plcmos_pid: int | None = None


def _ort_threads() -> int:
    """ONNX Runtime intra-op threads for PLCMOS: env TRANSLAB_ORT_THREADS (0 = onnxruntime's
    default, one per core), default 1 because sweeps run one worker process per core."""
    raw = os.environ.get("TRANSLAB_ORT_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        raise ConfigError("TRANSLAB_ORT_THREADS", raw, "a whole number >= 0") from None
    if n < 0:
        raise ConfigError("TRANSLAB_ORT_THREADS", raw, "a whole number >= 0")
    return n


def _plcmos_instance() -> Any:
    """The per-process speechmos PLCMOS object with a single-threaded ONNX session."""
    global _plcmos_model, _plcmos_pid
    if _plcmos_model is not None and _plcmos_pid == os.getpid():
        return _plcmos_model
    import onnxruntime as ort
    from speechmos import plcmos as plcmos_mod

    model = plcmos_mod.PLCMOS.__new__(plcmos_mod.PLCMOS)
    try:
        # What PLCMOS.__init__ does, but with our session options (its own uses all cores).
        model.model_name = "plcmos_v2"
        model.onnx_name = "plcmos_v2.onnx"
        model.max_lens = 999999999999
        model.embed_rounds = 15
        model.model_path = os.path.join(os.path.dirname(os.path.abspath(plcmos_mod.__file__)),
                                        "plcmos_models", model.onnx_name)
        opts = ort.SessionOptions()
        threads = _ort_threads()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        model.session = ort.InferenceSession(model.model_path, sess_options=opts,
                                             providers=["CPUExecutionProvider"])
    except Exception:  # a speechmos version laid out differently: its own constructor
        model = plcmos_mod.PLCMOS()
    _plcmos_model, _plcmos_pid = model, os.getpid()
    return model


def plcmos(x: np.ndarray, rate: int) -> float:
    """PLCMOS v2 score (about 1..5) of the signal ``x`` at ``rate`` Hz (non-intrusive).

    Resampled to 16 kHz and clipped to [-1, 1]; NumPy's global RNG is seeded with
    :data:`PLCMOS_SEED` for the call and then restored, so scores repeat exactly.
    """
    rate = _check_rate(rate)
    a = _as_float(x, "x")
    a = np.clip(_resample(a, rate, _PLCMOS_RATE), -1.0, 1.0)
    if a.size < _PLCMOS_RATE // 10:
        raise ConfigError("x", f"{a.size} samples at 16 kHz", "at least 0.1 s of audio")
    with _plcmos_lock:
        model = _plcmos_instance()
        state = np.random.get_state()
        try:
            np.random.seed(PLCMOS_SEED)
            return float(model(a)["plcmos"])
        finally:
            np.random.set_state(state)


# --- PESQ / STOI ----------------------------------------------------------------------------------

def pesq_score(
    ref: np.ndarray, deg: np.ndarray, rate: int, mode: str = "wb", *, align_first: bool = False
) -> float | None:
    """PESQ (ITU-T P.862 / P.862.2) MOS-LQO of ``deg`` against ``ref``, both at ``rate`` Hz.

    ``mode`` "wb" (P.862.2, resampled to 16 kHz; about 1.04..4.64) or "nb" (P.862.1 mapping,
    8 kHz; about 1.02..4.55). Returns None when the optional ``pesq`` package is not installed and
    NaN when P.862 finds no utterance (e.g. silence). P.862 does its own time alignment; pass
    ``align_first=True`` to cross-correlate first anyway (as :func:`quality` does).
    """
    check_choice("mode", mode, ("wb", "nb"))
    rate = _check_rate(rate)
    try:
        from pesq import PesqError, pesq
    except ImportError:
        return None
    r, d = _as_float(ref, "ref"), _as_float(deg, "deg")
    if align_first:
        r, d, _ = align(r, d, rate)
    fs = 16000 if mode == "wb" else 8000
    r, d = _resample(r, rate, fs), _resample(d, rate, fs)
    if not (np.any(r) and np.any(d)):
        return math.nan  # all silence: the wrapper would divide by a zero peak
    try:
        return float(pesq(fs, r.astype(np.float32), d.astype(np.float32), mode))
    except PesqError:
        return math.nan


def stoi_score(
    ref: np.ndarray, deg: np.ndarray, rate: int, extended: bool = False, *, align_first: bool = False
) -> float:
    """STOI (or ESTOI with ``extended=True``), about 0..1, of ``deg`` against ``ref`` at ``rate``
    Hz. STOI does no time alignment: pass aligned signals or ``align_first=True``; the longer
    signal is cut to the shorter."""
    from pystoi import stoi

    rate = _check_rate(rate)
    r, d = _as_float(ref, "ref"), _as_float(deg, "deg")
    if align_first:
        r, d, _ = align(r, d, rate)
    n = min(r.size, d.size)
    return float(stoi(r[:n], d[:n], rate, extended=extended))


# --- ViSQOL ---------------------------------------------------------------------------------------

_visqol_api: Any = None
_visqol_pid: int | None = None


def visqol_score(ref: np.ndarray, deg: np.ndarray, rate: int) -> float:
    """ViSQOL v3 speech-mode MOS-LQO (about 1..5) of ``deg`` against ``ref`` at ``rate`` Hz
    (resampled to 16 kHz; ViSQOL aligns globally and per patch itself). Slow: 4-5 s per 10 s clip.

    Raises :class:`VisqolUnavailable` unless the optional ``visqol-python[lattice]`` package
    (pure-Python ViSQOL + the ``ai-edge-litert`` runtime for its speech mapping model) is installed.
    """
    global _visqol_api, _visqol_pid
    rate = _check_rate(rate)
    r = _resample(_as_float(ref, "ref"), rate, 16000)
    d = _resample(_as_float(deg, "deg"), rate, 16000)
    if _visqol_api is None or _visqol_pid != os.getpid():
        try:
            import ai_edge_litert  # noqa: F401  (without it the speech score mapping saturates)
            from visqol.api import VisqolApi
        except ImportError as e:
            raise VisqolUnavailable(
                "visqol: unavailable: the optional package visqol-python[lattice] is not installed "
                f"({e.name or e}); install it with `pip install 'translab[visqol]'`. (The PyPI "
                "package 'visqol' does not exist and 'pyvisqol' downloads a native library from a "
                "model hub at import time, so it cannot run offline.)"
            ) from e
        import logging

        logging.getLogger("visqol").setLevel(logging.ERROR)
        api = VisqolApi()
        api.create(mode="speech", use_lattice_model=True)
        _visqol_api, _visqol_pid = api, os.getpid()
    return float(_visqol_api.measure_from_arrays(r, d, 16000).moslqo)


# --- all together ---------------------------------------------------------------------------------

def quality(
    ref: np.ndarray,
    deg: np.ndarray,
    rate: int,
    metrics: Sequence[str] = ("plcmos", "pesq_wb", "stoi"),
    *,
    max_lag_s: float | None = 2.0,
) -> dict[str, float | None]:
    """Scores of the played-out ``deg`` against the reference ``ref`` (both at ``rate`` Hz).

    ``metrics``: any of :data:`METRICS` ("plcmos", "pesq_wb", "pesq_nb", "stoi", "estoi",
    "visqol"). PLCMOS scores ``deg`` alone (all of it); the intrusive metrics score the segments
    aligned by :func:`align` (lag searched within ``max_lag_s`` seconds). Keys are the metric names;
    a value is None when its optional package is missing (PESQ) and NaN when undefined. Also
    returns ``align_lag_ms``, the lag found (ms), when an intrusive metric was asked for.
    """
    for m in metrics:
        check_choice("metrics", m, METRICS)
    rate = _check_rate(rate)
    out: dict[str, float | None] = {}
    d_full = _as_float(deg, "deg")
    if "plcmos" in metrics:
        out["plcmos"] = plcmos(d_full, rate)
    intrusive = [m for m in metrics if m != "plcmos"]
    if not intrusive:
        return out
    r, d, lag = align(ref, d_full, rate, max_lag_s=max_lag_s)
    out["align_lag_ms"] = 1000.0 * lag / rate
    for m in intrusive:
        if m == "pesq_wb":
            out[m] = pesq_score(r, d, rate, "wb")
        elif m == "pesq_nb":
            out[m] = pesq_score(r, d, rate, "nb")
        elif m == "stoi":
            out[m] = stoi_score(r, d, rate)
        elif m == "estoi":
            out[m] = stoi_score(r, d, rate, extended=True)
        elif m == "visqol":
            out[m] = visqol_score(r, d, rate)
    return out
