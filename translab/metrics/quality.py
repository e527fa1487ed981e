"""Speech quality of the played-out audio: PLCMOS v2 (non-intrusive), PESQ wideband / narrowband,
STOI / ESTOI and ViSQOL speech mode (intrusive, on audio aligned to the reference).

All inputs are mono float arrays in [-1, 1] (int16 arrays are scaled by 1/32768) at ``rate`` Hz;
each metric resamples to the rate it needs (PLCMOS 16 kHz, PESQ-WB 16 kHz, PESQ-NB 8 kHz, ViSQOL
speech 16 kHz; STOI resamples to 10 kHz itself).

* PLCMOS v2 (speechmos + onnxruntime, MIT): averages 15 random "virtual raters" drawn from NumPy's
  global RNG; :func:`plcmos` seeds that RNG with :data:`PLCMOS_SEED` around the call and restores
  the previous state afterwards, so the same audio always gets the same score and the caller's
  random stream is untouched. The model is cut (with the ``onnx`` package) into its audio path, run
  once per clip, and the small rater head, run per rater: identical scores, ~10 times faster than
  speechmos' loop over the whole model (which remains the fallback). Sessions are created once per
  process, single-threaded by default (sweeps run one process per core; TRANSLAB_ORT_THREADS=0
  for all cores).
* PESQ (package ``pesq``, an optional extra: the wrapper is MIT but the bundled ITU-T P.862 code is
  licensed for evaluation only, not commercial use): :func:`pesq_score` returns None when it is
  not installed, NaN when P.862 finds no utterance.
* STOI / ESTOI (pystoi).
* Alignment: :func:`align` (one global lag, cross-correlation on 4 kHz copies refined to the
  sample) and :func:`align_piecewise` (a lag per 0.5 s block, for audio a jitter buffer stretched,
  shrank or stalled); :func:`quality` uses the first for PESQ / ViSQOL and the second for STOI.
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
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import signal

from translab.errors import ConfigError, TranslabError, check_choice
from translab.jsonio import write_json

__all__ = [
    "METRICS",
    "PLCMOS_SEED",
    "VisqolUnavailable",
    "align",
    "align_piecewise",
    "plcmos",
    "pesq_score",
    "quality",
    "score",
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
    out: np.ndarray = signal.resample_poly(x, to_rate // g, from_rate // g).astype(np.float64)
    return out


# --- alignment ------------------------------------------------------------------------------------

_COARSE_RATE = 4000  # Hz: lags are searched on copies at this rate, then refined at full rate


def _coarse_copies(r: np.ndarray, d: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    crate = min(_COARSE_RATE, rate)
    return _resample(r, rate, crate), _resample(d, rate, crate), crate


def _global_lag(
    r: np.ndarray, d: np.ndarray, rate: int, max_lag_s: float | None,
    coarse: tuple[np.ndarray, np.ndarray, int] | None = None,
) -> int:
    """Lag (samples at ``rate``) maximising the cross-correlation of ``d`` against ``r``: searched
    on 4 kHz copies (a full-rate FFT of two 10 s signals at 48 kHz costs ~0.4 s), then refined to
    the sample within +-2 coarse samples by direct dot products at ``rate``."""
    rc, dc, crate = coarse if coarse is not None else _coarse_copies(r, d, rate)
    corr = signal.correlate(dc, rc, mode="full", method="fft")
    lags = signal.correlation_lags(dc.size, rc.size, mode="full")
    if max_lag_s is not None:
        keep = np.abs(lags) <= int(round(max_lag_s * crate))
        corr, lags = corr[keep], lags[keep]
    if not corr.size or not np.any(corr != 0):
        return 0
    f = rate / crate
    centre = int(round(int(lags[int(np.argmax(corr))]) * f))
    if f == 1:
        return centre
    span = int(np.ceil(2 * f)) + 1
    best, best_v = centre, -np.inf
    for lag in range(centre - span, centre + span + 1):
        if max_lag_s is not None and abs(lag) > max_lag_s * rate:
            continue
        r0, d0 = max(0, -lag), max(0, lag)
        n = min(r.size - r0, d.size - d0)
        if n <= 0:
            continue
        v = float(np.einsum("i,i->", r[r0 : r0 + n], d[d0 : d0 + n]))  # no BLAS threads to wake
        if v > best_v:
            best, best_v = lag, v
    return best


def align(
    ref: np.ndarray, deg: np.ndarray, rate: int, max_lag_s: float | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Align ``deg`` to ``ref`` by cross-correlation (FFT) and cut both to their overlap.

    Returns ``(ref_seg, deg_seg, lag_samples)`` with equal-length segments, where ``lag_samples``
    (samples at ``rate``) is how much later the content appears in ``deg`` than in ``ref``
    (negative: earlier). ``max_lag_s`` (s) limits the search to |lag| <= max_lag_s. The search
    runs on 4 kHz copies and is refined to the sample at ``rate``. One global lag: for audio whose
    delay changes during the call (time-stretching, stalls) use :func:`align_piecewise`.
    """
    rate = _check_rate(rate)
    r = _as_float(ref, "ref")
    d = _as_float(deg, "deg")
    if max_lag_s is not None and not (max_lag_s >= 0):
        raise ConfigError("max_lag_s", max_lag_s, ">= 0 s or None")
    lag = _global_lag(r, d, rate, max_lag_s)
    r0, d0 = max(0, -lag), max(0, lag)
    n = max(0, min(r.size - r0, d.size - d0))
    if n == 0:
        raise TranslabError(f"align: no overlap between ref and deg at lag {lag} samples")
    return r[r0 : r0 + n], d[d0 : d0 + n], lag


def _ncc_search(
    dp: np.ndarray, csum: np.ndarray, rb: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cross-correlation of block ``rb`` with ``dp[k : k + len(rb)]`` for k in [lo, hi]
    (clipped to ``dp``): returns (k values, NCC values)."""
    n = rb.size
    lo, hi = max(lo, 0), min(hi, dp.size - n)
    if hi < lo:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    c = signal.correlate(dp[lo : hi + n], rb, mode="valid", method="fft")
    k = np.arange(lo, lo + c.size)
    eb = float(np.sum(rb**2))
    ew = np.maximum(csum[k + n] - csum[k], 0.0)
    # windows with (almost) no energy would turn FFT round-off into spurious matches: NCC 0 there
    ok = ew > 1e-4 * eb
    ncc = np.zeros(c.size)
    ncc[ok] = c[ok] / np.sqrt(ew[ok] * eb)
    return k, ncc


def _track_lags(
    r: np.ndarray, d: np.ndarray, blk: int, w: int, max_lag: int | None, lag0: int, start: int,
    min_ncc: float,
) -> list[int]:
    """Per-block lags of ``d`` against ``r`` (see :func:`align_piecewise`), searched everywhere."""
    quiet = 1e-3 * (float(np.max(np.abs(r))) or 1.0)
    pad = blk
    dp = np.concatenate([np.zeros(pad), d, np.zeros(pad + blk)])
    csum = np.concatenate([[0.0], np.cumsum(dp**2)])
    lags: list[int] = []
    lag = lag0
    for a in range(start, r.size, blk):
        rb = r[a : a + blk]
        if np.sqrt(np.mean(rb**2)) > quiet:
            lo, hi = 0, dp.size
            if max_lag is not None:
                lo, hi = a + pad - max_lag, a + pad + max_lag
            k, ncc = _ncc_search(dp, csum, rb, lo, hi)
            if ncc.size:
                cand = k - pad - a
                best = int(np.argmax(ncc))
                near = np.abs(cand - lag) <= w
                best_near = int(np.argmax(np.where(near, ncc, -np.inf))) if near.any() else best
                if ncc[best_near] >= min_ncc and ncc[best_near] >= ncc[best] - 0.05:
                    lag = int(cand[best_near])
                elif ncc[best] >= min_ncc:
                    lag = int(cand[best])
        lags.append(lag)
    return lags


def align_piecewise(
    ref: np.ndarray,
    deg: np.ndarray,
    rate: int,
    block_s: float = 0.5,
    search_s: float = 0.12,
    max_lag_s: float | None = None,
    min_ncc: float = 0.4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align ``deg`` to ``ref`` block by block, following a delay that changes during the call
    (an adaptive jitter buffer stretching or shrinking audio, an elastic one stalling).

    For each ``block_s`` block of ``ref`` (in order), the normalised cross-correlation (NCC) with
    every stretch of ``deg`` (within +-``max_lag_s`` of the block; anywhere if None) is computed on
    a 4 kHz copy of both signals. The best match within +-``search_s`` of the previous block's lag
    is kept when its NCC is within 0.05 of the best match anywhere (continuity), else the best
    anywhere; a block whose best NCC is below ``min_ncc`` (silence, or audio never played) keeps
    the previous lag (the first blocks start from the global lag of :func:`align`). Each lag is
    then refined to the sample at ``rate``. Returns ``(ref_seg, deg_seg, lags)``: ``deg_seg`` is the
    matching stretch of ``deg`` for each block, concatenated (zeros where ``deg`` has none), as long
    as ``ref_seg`` (``ref`` from the first sample ``deg`` can match); ``lags`` are the per-block
    lags in samples at ``rate``. Times in seconds.
    """
    rate = _check_rate(rate)
    r = _as_float(ref, "ref")
    d = _as_float(deg, "deg")
    if not (block_s > 0):
        raise ConfigError("block_s", block_s, "> 0 s")
    if not (search_s >= 0):
        raise ConfigError("search_s", search_s, ">= 0 s")
    if max_lag_s is not None and not (max_lag_s >= 0):
        raise ConfigError("max_lag_s", max_lag_s, ">= 0 s or None")
    rc, dc, crate = _coarse_copies(r, d, rate)
    lag0 = _global_lag(r, d, rate, max_lag_s, (rc, dc, crate))
    blk = max(1, int(round(block_s * rate)))
    start = max(0, -lag0)  # ref samples before deg starts have no match

    # coarse: the whole search on the 4 kHz copies
    f = rate / crate
    cblk = max(1, int(round(block_s * crate)))
    coarse = _track_lags(
        rc, dc, cblk, int(round(search_s * crate)),
        None if max_lag_s is None else int(round(max_lag_s * crate)),
        int(round(lag0 / f)), int(np.ceil(start / f)), min_ncc,
    )
    # fine: refine each block's lag within +-2 coarse samples at the full rate
    pad = blk + int(np.ceil(2 * f)) + 1
    dp = np.concatenate([np.zeros(pad), d, np.zeros(pad + blk)])
    csum = np.concatenate([[0.0], np.cumsum(dp**2)])
    quiet = 1e-3 * (float(np.max(np.abs(r))) or 1.0)
    lags: list[int] = []
    segs: list[np.ndarray] = []
    for i, a in enumerate(range(start, r.size, blk)):
        rb = r[a : a + blk]
        n = rb.size
        ci = min(i, len(coarse) - 1) if coarse else -1
        lag = int(round(coarse[ci] * f)) if ci >= 0 else lag0
        if np.sqrt(np.mean(rb**2)) > quiet:
            span = int(np.ceil(2 * f)) + 1
            k, ncc = _ncc_search(dp, csum, rb, a + lag + pad - span, a + lag + pad + span)
            if ncc.size and np.max(ncc) >= min_ncc:
                lag = int(k[int(np.argmax(ncc))]) - pad - a
        lags.append(lag)
        s0 = a + lag + pad
        seg = dp[s0 : s0 + n] if 0 <= s0 else np.zeros(n)
        segs.append(seg if seg.size == n else np.concatenate([seg, np.zeros(n - seg.size)]))
    d_al = np.concatenate(segs) if segs else np.zeros(0)
    return r[start:], d_al, np.asarray(lags, dtype=np.int64)


# --- PLCMOS ---------------------------------------------------------------------------------------

_plcmos_lock = threading.Lock()
_plcmos_model: Any = None
_plcmos_split: Any = None  # (audio session, head session) or False when unavailable
_plcmos_pid: int | None = None

# PLCMOS v2's graph: the audio path (convolutions + GRUs, ~95 % of the cost) ends in these two
# tensors; the rater embedding joins only afterwards, in a small dense head.
_PLCMOS_AUDIO_OUT = ("onnx::Concat_335", "onnx::Concat_337")


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


def _ort_session(model: str | bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    threads = _ort_threads()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def _plcmos_instance() -> Any:
    """The per-process speechmos PLCMOS object (its features, and its whole-model session for the
    fallback path), plus the split sessions when the model can be split."""
    global _plcmos_model, _plcmos_split, _plcmos_pid
    if _plcmos_model is not None and _plcmos_pid == os.getpid():
        return _plcmos_model
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
        model.session = _ort_session(model.model_path)
    except Exception:  # a speechmos version laid out differently: its own constructor
        model = plcmos_mod.PLCMOS()
    _plcmos_split = _split_plcmos(model.model_path)
    _plcmos_model, _plcmos_pid = model, os.getpid()
    return model


def _split_plcmos(model_path: str) -> Any:
    """Two sessions cut from the PLCMOS model at the audio embedding, so the audio path runs once
    per clip instead of once per virtual rater (15 times): same operations, identical scores,
    about 10 times faster. False if the model cannot be cut (``onnx`` missing, other graph)."""
    try:
        import onnx
        from onnx.utils import Extractor

        graph = onnx.shape_inference.infer_shapes(onnx.load(model_path))
        ex = Extractor(graph)
        audio = ex.extract_model(["degraded_audio"], list(_PLCMOS_AUDIO_OUT))
        head = ex.extract_model([*_PLCMOS_AUDIO_OUT, "rater_embed"], ["plcmos"])
        return _ort_session(audio.SerializeToString()), _ort_session(head.SerializeToString())
    except Exception:
        return False


def _plcmos_score(model: Any, a: np.ndarray) -> float:
    """speechmos's ``PLCMOS.get_mos`` (same features, same raters drawn in the same order from
    NumPy's global RNG, same summation), on the split model when there is one."""
    if not _plcmos_split:
        return float(model(a)["plcmos"])
    audio, head = _plcmos_split
    feats = np.array(model.stft_transform(a), dtype=np.float32)[np.newaxis, np.newaxis, ...]
    emb = dict(zip(_PLCMOS_AUDIO_OUT, audio.run(None, {"degraded_audio": feats})))
    mos = 0.0
    for _ in range(model.embed_rounds):
        rater = np.random.normal(size=(1, 64))
        emb["rater_embed"] = np.array(rater, dtype=np.float32).reshape(1, -1)
        mos += float(head.run(None, emb)[0])
    rounds: int = model.embed_rounds
    return mos / rounds


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
            return _plcmos_score(model, a)
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

#: Environment variable naming the score cache's folder ("off" disables it); default
#: ``$XDG_CACHE_HOME/translab/quality`` (``~/.cache/translab/quality``).
CACHE_ENV = "TRANSLAB_METRIC_CACHE"


def cache_dir() -> Path | None:
    """The folder of :func:`quality`'s score cache, or None when ``TRANSLAB_METRIC_CACHE=off``."""
    v = os.environ.get(CACHE_ENV, "")
    if v.lower() in ("off", "0", "no", "false"):
        return None
    if v:
        return Path(v)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "translab" / "quality"


def _code_key() -> str:
    """What makes a cached score stale: this module's source and the metric packages' versions."""
    import hashlib
    from importlib import metadata

    h = hashlib.sha256(open(__file__, "rb").read())
    for pkg in ("speechmos", "onnxruntime", "pesq", "pystoi", "visqol-python", "numpy", "scipy"):
        try:
            h.update(f"{pkg}={metadata.version(pkg)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{pkg}=none;".encode())
    return h.hexdigest()


_CODE_KEY: list[str] = []


def _cache_key(ref: Any, deg: Any, rate: int, metrics: Sequence[str], max_lag_s: float | None, alignment: str) -> str:
    import hashlib

    if not _CODE_KEY:
        _CODE_KEY.append(_code_key())
    h = hashlib.sha256(_CODE_KEY[0].encode())
    for a in (ref, deg):
        arr = np.ascontiguousarray(np.asarray(a))
        h.update(f"{arr.dtype.str}{arr.shape};".encode())
        h.update(arr.tobytes())
    h.update(repr((int(rate), tuple(metrics), max_lag_s, alignment)).encode())
    return h.hexdigest()


def quality(
    ref: np.ndarray,
    deg: np.ndarray,
    rate: int,
    metrics: Sequence[str] = ("plcmos", "pesq_wb", "stoi"),
    *,
    max_lag_s: float | None = 2.0,
    alignment: str = "auto",
    cache: bool = True,
) -> dict[str, float | None]:
    """:func:`score` with a content-addressed cache on disk (:func:`cache_dir`): identical audio
    (the same reference and degraded samples, rate, metrics and options, this module's code and the
    metric packages' versions) gets the stored scores without recomputing them. Every metric here is
    deterministic (PLCMOS seeds its raters), so a cached score equals a fresh one; a sweep whose
    calls produce identical audio (e.g. seeds of a lossless link) computes it once across worker
    processes and reruns. ``cache=False`` always computes (benchmarks)."""
    import json

    folder = cache_dir() if cache else None
    if folder is None:
        return score(ref, deg, rate, metrics, max_lag_s=max_lag_s, alignment=alignment)
    key = _cache_key(ref, deg, rate, metrics, max_lag_s, alignment)
    path = folder / key[:2] / f"{key}.json"
    try:
        return {k: math.nan if v == "nan" else v for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError):
        pass
    out = score(ref, deg, rate, metrics, max_lag_s=max_lag_s, alignment=alignment)
    if any(v is None for v in out.values()):
        return out  # a metric package is missing here: not a property of the audio, and JSON null reads back as NaN
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic strict JSON; a NaN score is stored as "nan" (null means a metric that is not installed)
        write_json(path, {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()},
                   indent=None)
    except OSError:  # a read-only or full cache folder only costs the speed-up
        pass
    return out


def score(
    ref: np.ndarray,
    deg: np.ndarray,
    rate: int,
    metrics: Sequence[str] = ("plcmos", "pesq_wb", "stoi"),
    *,
    max_lag_s: float | None = 2.0,
    alignment: str = "auto",
) -> dict[str, float | None]:
    """Scores of the played-out ``deg`` against the reference ``ref`` (both at ``rate`` Hz).

    ``metrics``: any of :data:`METRICS` ("plcmos", "pesq_wb", "pesq_nb", "stoi", "estoi",
    "visqol"). PLCMOS scores ``deg`` alone (all of it). The intrusive metrics score aligned audio:
    ``alignment="auto"`` gives PESQ and ViSQOL the globally aligned overlap (:func:`align`, lag
    searched within ``max_lag_s`` s; both re-align utterances / patches themselves, and splices
    would cost them points) and STOI / ESTOI the block-wise alignment (:func:`align_piecewise`;
    STOI has no alignment of its own, so a jitter buffer's time-stretching or stalls would otherwise
    read as lost intelligibility); "global" or "piecewise" use one for all.

    Keys: the metric names (None when an optional package is missing (PESQ), NaN when undefined),
    plus ``align_lag_ms`` (global lag, ms) and, when the block-wise alignment ran,
    ``align_drift_ms`` (range of the per-block lags, ms).
    """
    for m in metrics:
        check_choice("metrics", m, METRICS)
    check_choice("alignment", alignment, ("auto", "global", "piecewise"))
    rate = _check_rate(rate)
    out: dict[str, float | None] = {}
    d_full = _as_float(deg, "deg")
    if "plcmos" in metrics:
        out["plcmos"] = plcmos(d_full, rate)
    intrusive = [m for m in metrics if m != "plcmos"]
    if not intrusive:
        return out
    r_full = _as_float(ref, "ref")
    rg, dg, lag = align(r_full, d_full, rate, max_lag_s=max_lag_s)
    out["align_lag_ms"] = 1000.0 * lag / rate
    want_pw = alignment == "piecewise" or (alignment == "auto" and any(m in ("stoi", "estoi") for m in intrusive))
    if want_pw:
        rp, dp, lags = align_piecewise(r_full, d_full, rate, max_lag_s=max_lag_s)
        out["align_drift_ms"] = 1000.0 * float(lags.max() - lags.min()) / rate if lags.size else 0.0
    for m in intrusive:
        pw = alignment == "piecewise" or (alignment == "auto" and m in ("stoi", "estoi"))
        r, d = (rp, dp) if pw else (rg, dg)
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
