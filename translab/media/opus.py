"""Opus through the libopus C API (ctypes).

Which libopus is loaded (first that works):

1. ``$TRANSLAB_LIBOPUS`` - an explicit path to a libopus shared library;
2. the libopus bundled in the installed PyAV wheel (``<site-packages>/av.libs/libopus-*.so*``),
   so every machine with the same ``av`` version runs the same libopus;
3. the system library (``ctypes.util.find_library("opus")``).

``libopus_version()`` and ``libopus_path()`` say which one it was (they go into result provenance).

Units: sample rates in Hz, frame durations in ms (names end in ``_ms``), bitrates in bit/s,
packet sizes in bytes, sample counts per channel.

libopus error codes become :class:`OpusError` subclasses carrying libopus' own message
(``opus_strerror``). Settings outside what libopus accepts raise
:class:`translab.errors.ConfigError` before libopus is called.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from translab.errors import ConfigError, check_choice, check_range

__all__ = [
    "SAMPLE_RATES",
    "FRAME_MS_CHOICES",
    "APPLICATIONS",
    "BANDWIDTHS",
    "MAX_PACKET_BYTES",
    "OpusEncoder",
    "OpusDecoder",
    "OpusError",
    "OpusBadArgError",
    "OpusBufferTooSmallError",
    "OpusInternalError",
    "OpusInvalidPacketError",
    "OpusUnimplementedError",
    "OpusInvalidStateError",
    "OpusAllocFailError",
    "packet_has_fec",
    "packet_has_fec_toc",
    "libopus_version",
    "libopus_path",
    "capabilities",
]

SAMPLE_RATES: tuple[int, ...] = (8000, 12000, 16000, 24000, 48000)
FRAME_MS_CHOICES: tuple[float, ...] = (2.5, 5, 10, 20, 40, 60)
APPLICATIONS: dict[str, int] = {"voip": 2048, "audio": 2049, "restricted-lowdelay": 2051}
BANDWIDTHS: dict[str, int] = {
    "narrowband": 1101,  # 4 kHz audio bandwidth
    "mediumband": 1102,  # 6 kHz
    "wideband": 1103,  # 8 kHz
    "superwideband": 1104,  # 12 kHz
    "fullband": 1105,  # 20 kHz
}
#: Largest packet libopus can produce (RFC 6716: 1275 bytes per frame, up to 120 ms; 3*1275+7).
MAX_PACKET_BYTES = 4000
_MAX_FRAME_MS = 120  # longest packet duration a decoder may be handed

# Encoder/decoder CTL request numbers (opus_defines.h).
_SET_BITRATE = 4002
_GET_BITRATE = 4003
_SET_MAX_BANDWIDTH = 4004
_SET_VBR = 4006
_SET_COMPLEXITY = 4010
_SET_INBAND_FEC = 4012
_SET_PACKET_LOSS_PERC = 4014
_SET_DTX = 4016
_GET_LOOKAHEAD = 4027
_GET_IN_DTX = 4049
_SET_DRED_DURATION = 4050

_OPUS_OK = 0
_OPUS_BAD_ARG = -1
_OPUS_UNIMPLEMENTED = -5


# ---------------------------------------------------------------------------------------------
# errors


class OpusError(RuntimeError):
    """libopus returned an error code. ``code`` is the libopus code, ``str()`` its own message."""

    code: int = 0

    def __init__(self, code: int, message: str, where: str = "") -> None:
        self.code = code
        self.libopus_message = message
        self.where = where
        text = f"{where}: {message} (libopus error {code})" if where else f"{message} (libopus error {code})"
        super().__init__(text)


class OpusBadArgError(OpusError):
    """OPUS_BAD_ARG (-1): one or more invalid/out of range arguments."""


class OpusBufferTooSmallError(OpusError):
    """OPUS_BUFFER_TOO_SMALL (-2): not enough bytes allocated in the buffer."""


class OpusInternalError(OpusError):
    """OPUS_INTERNAL_ERROR (-3): an internal error was detected."""


class OpusInvalidPacketError(OpusError):
    """OPUS_INVALID_PACKET (-4): the compressed data passed is corrupted."""


class OpusUnimplementedError(OpusError):
    """OPUS_UNIMPLEMENTED (-5): invalid/unsupported request number."""


class OpusInvalidStateError(OpusError):
    """OPUS_INVALID_STATE (-6): an encoder or decoder structure is invalid or already freed."""


class OpusAllocFailError(OpusError):
    """OPUS_ALLOC_FAIL (-7): memory allocation has failed."""


_ERROR_TYPES: dict[int, type[OpusError]] = {
    -1: OpusBadArgError,
    -2: OpusBufferTooSmallError,
    -3: OpusInternalError,
    -4: OpusInvalidPacketError,
    -5: OpusUnimplementedError,
    -6: OpusInvalidStateError,
    -7: OpusAllocFailError,
}


def _raise(code: int, where: str) -> None:
    """Raise the typed OpusError for a negative libopus return ``code``."""
    lib = _lib()
    msg = lib.opus_strerror(code)
    text = msg.decode("ascii", "replace") if msg else "unknown error"
    raise _ERROR_TYPES.get(code, OpusError)(code, text, where)


# ---------------------------------------------------------------------------------------------
# loading


_LIB: ctypes.CDLL | None = None
_LIB_PATH: str = ""


def _bundled_av_libopus() -> Path | None:
    """The libopus shipped inside the installed PyAV wheel, or None (no import of ``av``)."""
    import importlib.util

    spec = importlib.util.find_spec("av")
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(list(spec.submodule_search_locations)[0])
    # auditwheel puts vendored libraries next to the package as "<pkg>.libs"; delocate (macOS)
    # puts them in "<pkg>/.dylibs".
    for d in (pkg.parent / "av.libs", pkg / ".dylibs"):
        if d.is_dir():
            found = sorted(d.glob("libopus*.so*")) + sorted(d.glob("libopus*.dylib"))
            if found:
                return found[0]
    return None


def _candidates() -> list[tuple[str, str]]:
    """(source, path) pairs to try, in load order."""
    out: list[tuple[str, str]] = []
    env = os.environ.get("TRANSLAB_LIBOPUS")
    if env:
        return [("env", env)]  # an explicit choice must not silently fall back
    av_lib = _bundled_av_libopus()
    if av_lib is not None:
        out.append(("av", str(av_lib)))
    sys_name = ctypes.util.find_library("opus")
    if sys_name:
        out.append(("system", sys_name))
    if sys.platform.startswith("linux"):
        out.append(("system", "libopus.so.0"))
    return out


def _declare(lib: ctypes.CDLL) -> None:
    """Set argtypes/restype for the functions used (c_void_p args take plain ints: fast)."""
    c_int, c_int32, vp = ctypes.c_int, ctypes.c_int32, ctypes.c_void_p
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_get_version_string.argtypes = []
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [c_int]
    lib.opus_encoder_create.restype = vp
    lib.opus_encoder_create.argtypes = [c_int32, c_int, c_int, ctypes.POINTER(c_int)]
    lib.opus_encoder_destroy.restype = None
    lib.opus_encoder_destroy.argtypes = [vp]
    lib.opus_encode.restype = c_int32
    lib.opus_encode.argtypes = [vp, vp, c_int, vp, c_int32]
    lib.opus_encode_float.restype = c_int32
    lib.opus_encode_float.argtypes = [vp, vp, c_int, vp, c_int32]
    lib.opus_decoder_create.restype = vp
    lib.opus_decoder_create.argtypes = [c_int32, c_int, ctypes.POINTER(c_int)]
    lib.opus_decoder_destroy.restype = None
    lib.opus_decoder_destroy.argtypes = [vp]
    lib.opus_decode.restype = c_int
    lib.opus_decode.argtypes = [vp, ctypes.c_char_p, c_int32, vp, c_int, c_int]
    lib.opus_encoder_ctl.restype = c_int
    lib.opus_decoder_ctl.restype = c_int
    lib.opus_packet_get_nb_samples.restype = c_int
    lib.opus_packet_get_nb_samples.argtypes = [ctypes.c_char_p, c_int32, c_int32]
    if hasattr(lib, "opus_packet_has_lbrr"):
        lib.opus_packet_has_lbrr.restype = c_int
        lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, c_int32]


def _lib() -> ctypes.CDLL:
    """Load libopus once (see module docstring for the order)."""
    global _LIB, _LIB_PATH
    if _LIB is not None:
        return _LIB
    tried: list[str] = []
    for source, path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            _declare(lib)
        except (OSError, AttributeError) as e:
            tried.append(f"{source}:{path} ({e})")
            continue
        _LIB, _LIB_PATH = lib, path
        return lib
    if os.environ.get("TRANSLAB_LIBOPUS"):
        raise ConfigError("TRANSLAB_LIBOPUS", os.environ["TRANSLAB_LIBOPUS"],
                          "a path to a loadable libopus shared library; " + "; ".join(tried))
    raise OSError("libopus not found (tried: " + ("; ".join(tried) or "nothing") +
                  "); install PyAV (pip install av) or set TRANSLAB_LIBOPUS")


def libopus_version() -> str:
    """The loaded library's version string, e.g. ``"libopus 1.6.1"``."""
    version: bytes = _lib().opus_get_version_string()
    return version.decode("ascii", "replace")


def libopus_path() -> str:
    """Path (or soname, for a system library found by name) of the loaded libopus."""
    _lib()
    if os.path.sep in _LIB_PATH:
        return str(Path(_LIB_PATH).resolve())
    return _LIB_PATH


_CAPS: dict[str, Any] | None = None


def capabilities() -> dict[str, Any]:
    """What the loaded libopus can do beyond RFC 6716, probed at run time (never assumed).

    - ``dred``: an encoder accepts ``OPUS_SET_DRED_DURATION`` (request 4050) with value 0.
      libopus compiled without ``ENABLE_DRED`` returns OPUS_UNIMPLEMENTED (the request falls to
      the ``default`` branch of ``opus_encoder_ctl``). The ``opus_dred_*`` symbols alone are not
      evidence: libopus >= 1.5 always exports them, stubbed when DRED is off.
    - ``deep_plc``: behavioural. Deep PLC runs when compiled with ``ENABLE_DEEP_PLC`` and the
      decoder complexity is >= 5. We decode the same 16 kHz SILK packets with two decoders at
      decoder complexity 0 and 5, check the normal decoded audio is identical (OSCE, which
      also changes the output, starts at complexity 6), then conceal 40 ms in each: if the
      concealment differs, deep PLC is active. A library whose decoder rejects
      ``OPUS_SET_COMPLEXITY`` (libopus < 1.5) has no deep PLC. (``OPUS_SET_DNN_BLOB`` is not
      used as a probe: it exists only in builds with ``USE_WEIGHTS_FILE``.)
    - ``packet_has_lbrr``: the library exports ``opus_packet_has_lbrr`` (libopus >= 1.5).
    """
    global _CAPS
    if _CAPS is not None:
        return dict(_CAPS)
    lib = _lib()
    enc = OpusEncoder(16000, 1, 20, 24000)
    dred = lib.opus_encoder_ctl(ctypes.c_void_p(enc._st), ctypes.c_int(_SET_DRED_DURATION), ctypes.c_int32(0)) == _OPUS_OK
    _CAPS = {
        "dred": bool(dred),
        "deep_plc": _probe_deep_plc(),
        "packet_has_lbrr": hasattr(lib, "opus_packet_has_lbrr"),
        "version": libopus_version(),
    }
    return dict(_CAPS)


def _probe_deep_plc() -> bool:
    """True when concealment changes with decoder complexity 0 -> 5 (see ``capabilities``)."""
    lib = _lib()
    rate, n = 16000, 320
    t = np.arange(n * 10) / rate
    x = (8000 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.int16)
    enc = OpusEncoder(rate, 1, 20, 24000, max_bandwidth="wideband")
    packets = [enc.encode(x[i * n:(i + 1) * n]) for i in range(10)]
    decs = [OpusDecoder(rate, 1), OpusDecoder(rate, 1)]
    for d, cx in zip(decs, (0, 5)):
        r = lib.opus_decoder_ctl(ctypes.c_void_p(d._st), ctypes.c_int(_SET_COMPLEXITY), ctypes.c_int32(cx))
        if r != _OPUS_OK:
            return False
    normal = [[d.decode(p) for p in packets] for d in decs]
    if not all(np.array_equal(a, b) for a, b in zip(*normal)):
        return False  # something else (not PLC) depends on complexity; cannot tell
    plc = [np.concatenate([d.conceal(n), d.conceal(n)]) for d in decs]
    return not np.array_equal(plc[0], plc[1])


# ---------------------------------------------------------------------------------------------
# validation helpers


def _frame_samples(sample_rate: int, frame_ms: float) -> int:
    """Samples per channel in one frame of ``frame_ms`` at ``sample_rate`` (exact for Opus choices)."""
    return int(round(sample_rate * frame_ms / 1000.0))


def _check_rate_channels(sample_rate: int, channels: int) -> None:
    check_choice("sample_rate", sample_rate, SAMPLE_RATES)
    check_choice("channels", channels, (1, 2))


def _check_multiple_of_2_5ms(field: str, n_samples: int, sample_rate: int,
                             longest_ms: int | None = _MAX_FRAME_MS) -> None:
    """Decoder frame sizes must be a positive multiple of 2.5 ms (libopus rule for PLC and FEC)
    and, unless ``longest_ms`` is None, at most ``longest_ms``."""
    step = sample_rate // 400
    hi = None if longest_ms is None else sample_rate * longest_ms // 1000
    if (isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples <= 0
            or n_samples % step or (hi is not None and n_samples > hi)):
        upto = "" if hi is None else f" up to {hi}"
        raise ConfigError(field, n_samples,
                          f"a multiple of {step} samples (2.5 ms at {sample_rate} Hz){upto}")


# ---------------------------------------------------------------------------------------------
# encoder


class _LibopusState:
    """Owns one libopus state pointer (``_st``) and its destroy function (``_destroy``): freed by
    :meth:`close` or on garbage collection. Shared by the encoder and the decoder."""

    _st: int | None = None
    _destroy: Any = None

    def close(self) -> None:
        """Free the libopus state now (also done on garbage collection); safe to call twice."""
        st, self._st = self._st, None
        if st:
            self._destroy(st)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


class OpusEncoder(_LibopusState):
    """An Opus encoder (one ``OpusEncoder*``), freed when garbage-collected.

    Args:
        sample_rate: input sampling rate in Hz (8000, 12000, 16000, 24000, 48000).
        channels: 1 or 2.
        frame_ms: frame duration in ms (2.5, 5, 10, 20, 40, 60).
        bitrate: target bitrate in bit/s (6000 to 510000).
        vbr: variable bitrate (True) or constant (False).
        complexity: encoder complexity 0 to 10.
        application: "voip", "audio" or "restricted-lowdelay".
        fec: in-band FEC (LBRR). Only used when ``packet_loss_perc > 0``, in SILK/hybrid modes,
            and when the bitrate leaves room for it; it comes out of ``bitrate``, not on top.
            Measured with libopus 1.6.1 (48 kHz, voip, 20 ms, speech): no LBRR at all below
            24000 bit/s for 1-5 % loss, below 18000 for 10-20 %, below 16000 for 30 %.
        packet_loss_perc: expected packet loss in percent (0 to 100).
        dtx: discontinuous transmission (1-2 byte packets during silence).
        max_bandwidth: None (libopus decides) or one of ``BANDWIDTHS``.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        frame_ms: float = 20,
        bitrate: int = 32000,
        vbr: bool = True,
        complexity: int = 9,
        application: str = "voip",
        fec: bool = False,
        packet_loss_perc: int = 0,
        dtx: bool = False,
        max_bandwidth: str | None = None,
    ) -> None:
        self._st: int | None = None
        _check_rate_channels(sample_rate, channels)
        check_choice("frame_ms", frame_ms, FRAME_MS_CHOICES)
        _check_int("bitrate", bitrate)
        check_range("bitrate", bitrate, 6000, 510000, "bit/s")
        _check_int("complexity", complexity)
        check_range("complexity", complexity, 0, 10)
        check_choice("application", application, tuple(APPLICATIONS))
        _check_int("packet_loss_perc", packet_loss_perc)
        check_range("packet_loss_perc", packet_loss_perc, 0, 100, "%")
        if max_bandwidth is not None:
            check_choice("max_bandwidth", max_bandwidth, tuple(BANDWIDTHS))
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.frame_ms = float(frame_ms)
        self.bitrate = int(bitrate)
        self.vbr = bool(vbr)
        self.complexity = int(complexity)
        self.application = application
        self.fec = bool(fec)
        self.packet_loss_perc = int(packet_loss_perc)
        self.dtx = bool(dtx)
        self.max_bandwidth = max_bandwidth
        #: samples per channel in one frame
        self.frame_samples = _frame_samples(sample_rate, frame_ms)

        lib = self._lib = _lib()
        err = ctypes.c_int(0)
        st = lib.opus_encoder_create(self.sample_rate, self.channels, APPLICATIONS[application],
                                     ctypes.byref(err))
        if err.value != _OPUS_OK or not st:
            _raise(err.value or -7, "opus_encoder_create")
        self._st = st
        self._destroy = lib.opus_encoder_destroy
        self._ctl(_SET_BITRATE, self.bitrate)
        self._ctl(_SET_VBR, int(self.vbr))
        self._ctl(_SET_COMPLEXITY, self.complexity)
        self._ctl(_SET_INBAND_FEC, int(self.fec))
        self._ctl(_SET_PACKET_LOSS_PERC, self.packet_loss_perc)
        self._ctl(_SET_DTX, int(self.dtx))
        if max_bandwidth is not None:
            self._ctl(_SET_MAX_BANDWIDTH, BANDWIDTHS[max_bandwidth])
        #: encoder algorithmic delay in samples per channel (OPUS_GET_LOOKAHEAD)
        self.lookahead_samples = self._get(_GET_LOOKAHEAD)
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        self._out_addr = ctypes.addressof(self._out)
        self._n_in = self.frame_samples * self.channels
        self._encode = lib.opus_encode
        self._encode_float = lib.opus_encode_float

    @property
    def lookahead_ms(self) -> float:
        """Encoder algorithmic delay in ms (lookahead_samples / sample_rate)."""
        return 1000.0 * self.lookahead_samples / self.sample_rate

    def _ctl(self, request: int, value: int) -> None:
        r = self._lib.opus_encoder_ctl(ctypes.c_void_p(self._st), ctypes.c_int(request), ctypes.c_int32(value))
        if r < 0:
            _raise(r, f"opus_encoder_ctl({request}, {value})")

    def _get(self, request: int) -> int:
        v = ctypes.c_int32(0)
        r = self._lib.opus_encoder_ctl(ctypes.c_void_p(self._st), ctypes.c_int(request), ctypes.byref(v))
        if r < 0:
            _raise(r, f"opus_encoder_ctl({request})")
        return int(v.value)

    def reconfigure(self, bitrate: int | None = None, fec: bool | None = None,
                    packet_loss_perc: int | None = None, frame_ms: float | None = None) -> None:
        """Change the bitrate (bit/s), in-band FEC, expected loss (%) and frame length (ms) mid-stream,
        as a sender's rate controller does between two frames (OPUS_SET_BITRATE / _INBAND_FEC /
        _PACKET_LOSS_PERC; libopus takes the frame size per ``opus_encode`` call, so the next
        :meth:`encode` expects the new ``frame_samples``). ``None`` leaves a setting as it is; values
        are checked as in the constructor."""
        if frame_ms is not None:
            check_choice("frame_ms", frame_ms, FRAME_MS_CHOICES)
            self.frame_ms = float(frame_ms)
            self.frame_samples = _frame_samples(self.sample_rate, self.frame_ms)
            self._n_in = self.frame_samples * self.channels
        if bitrate is not None:
            _check_int("bitrate", bitrate)
            check_range("bitrate", bitrate, 6000, 510000, "bit/s")
            if int(bitrate) != self.bitrate:
                self.bitrate = int(bitrate)
                self._ctl(_SET_BITRATE, self.bitrate)
        if fec is not None and bool(fec) != self.fec:
            self.fec = bool(fec)
            self._ctl(_SET_INBAND_FEC, int(self.fec))
        if packet_loss_perc is not None:
            _check_int("packet_loss_perc", packet_loss_perc)
            check_range("packet_loss_perc", packet_loss_perc, 0, 100, "%")
            if int(packet_loss_perc) != self.packet_loss_perc:
                self.packet_loss_perc = int(packet_loss_perc)
                self._ctl(_SET_PACKET_LOSS_PERC, self.packet_loss_perc)

    @property
    def in_dtx(self) -> bool:
        """True when the last encoded frame was a DTX (silence) frame (OPUS_GET_IN_DTX)."""
        return bool(self._get(_GET_IN_DTX))

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode one frame; returns the Opus packet (bytes).

        ``pcm``: int16 (or float32 in [-1, 1]) samples, ``frame_samples`` per channel, either
        flat (interleaved for stereo) or shaped ``(frame_samples, channels)``.
        """
        a = pcm if isinstance(pcm, np.ndarray) else np.asarray(pcm)
        if a.size != self._n_in:
            raise ConfigError("pcm samples", int(a.size),
                              f"{self._n_in} ({self.frame_samples} per channel x {self.channels})")
        if a.dtype == np.int16:
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)
            n = self._encode(self._st, a.ctypes.data, self.frame_samples, self._out_addr, MAX_PACKET_BYTES)
        elif a.dtype.kind == "f":
            a = np.ascontiguousarray(a, dtype=np.float32)
            n = self._encode_float(self._st, a.ctypes.data, self.frame_samples, self._out_addr,
                                   MAX_PACKET_BYTES)
        else:
            raise ConfigError("pcm dtype", str(a.dtype), "int16, float32")
        if n < 0:
            _raise(n, "opus_encode")
        return ctypes.string_at(self._out_addr, n)

    def __repr__(self) -> str:
        return (f"OpusEncoder(sample_rate={self.sample_rate}, channels={self.channels}, "
                f"frame_ms={self.frame_ms:g}, bitrate={self.bitrate}, vbr={self.vbr}, "
                f"complexity={self.complexity}, application={self.application!r}, fec={self.fec}, "
                f"packet_loss_perc={self.packet_loss_perc}, dtx={self.dtx}, "
                f"max_bandwidth={self.max_bandwidth!r})")


def _check_int(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(field, value, "an integer")


# ---------------------------------------------------------------------------------------------
# decoder


class OpusDecoder(_LibopusState):
    """An Opus decoder (one ``OpusDecoder*``), freed when garbage-collected.

    Output is int16; mono gives a 1-D array, stereo ``(n_samples, 2)``. Sample counts are per
    channel at the decoder's ``sample_rate`` (Hz).
    """

    def __init__(self, sample_rate: int = 48000, channels: int = 1) -> None:
        self._st: int | None = None
        _check_rate_channels(sample_rate, channels)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        lib = self._lib = _lib()
        err = ctypes.c_int(0)
        st = lib.opus_decoder_create(self.sample_rate, self.channels, ctypes.byref(err))
        if err.value != _OPUS_OK or not st:
            _raise(err.value or -7, "opus_decoder_create")
        self._st = st
        self._destroy = lib.opus_decoder_destroy
        self._decode = lib.opus_decode
        self._max = self.sample_rate * _MAX_FRAME_MS // 1000
        self._buf = np.zeros(self._max * self.channels, dtype=np.int16)
        self._buf_addr = self._buf.ctypes.data

    def _run(self, packet: bytes | None, n_max: int, fec: int, where: str) -> np.ndarray:
        length = 0 if packet is None else len(packet)
        n = self._decode(self._st, packet if length else None, length, self._buf_addr, n_max, fec)
        if n < 0:
            _raise(n, where)
        out = self._buf[: n * self.channels].copy()
        return out if self.channels == 1 else out.reshape(n, self.channels)

    def decode(self, packet: bytes) -> np.ndarray:
        """Decode one Opus packet; returns its samples (int16), up to 120 ms per channel."""
        if not packet:
            raise ConfigError("packet", packet, "a non-empty Opus packet (use conceal() for a lost one)")
        return self._run(bytes(packet), self._max, 0, "opus_decode")

    def conceal(self, n_samples: int) -> np.ndarray:
        """Packet loss concealment: ``n_samples`` per channel (a multiple of 2.5 ms) of PLC audio.

        Calls ``opus_decode`` with a NULL packet (in steps of at most 120 ms). libopus fades
        the concealment out over successive lost frames; after DTX packets it is comfort noise.
        """
        _check_multiple_of_2_5ms("n_samples", n_samples, self.sample_rate, longest_ms=None)
        n = int(n_samples)
        if n <= self._max:
            return self._run(None, n, 0, "opus_decode(PLC)")
        parts, left = [], n  # longer than 120 ms (an outage): conceal in 120 ms steps
        while left:
            step = min(left, self._max)
            parts.append(self._run(None, step, 0, "opus_decode(PLC)"))
            left -= step
        return np.concatenate(parts)

    def decode_fec(self, next_packet: bytes, n_samples: int) -> np.ndarray:
        """Recover the lost frame *before* ``next_packet`` from its in-band FEC (LBRR) data.

        ``n_samples``: duration of the lost frame, per channel (a multiple of 2.5 ms). When
        ``next_packet`` carries no LBRR (CELT mode, FEC off), libopus falls back to PLC.
        Afterwards decode ``next_packet`` itself normally with :meth:`decode`.
        """
        _check_multiple_of_2_5ms("n_samples", n_samples, self.sample_rate)
        if not next_packet:
            raise ConfigError("next_packet", next_packet, "a non-empty Opus packet")
        return self._run(bytes(next_packet), int(n_samples), 1, "opus_decode(FEC)")

    def packet_samples(self, packet: bytes) -> int:
        """Samples per channel ``packet`` decodes to at this decoder's rate."""
        n = self._lib.opus_packet_get_nb_samples(bytes(packet), len(packet), self.sample_rate)
        if n < 0:
            _raise(n, "opus_packet_get_nb_samples")
        return int(n)

    def reset(self) -> None:
        """Reset the decoder state (OPUS_RESET_STATE)."""
        r = self._lib.opus_decoder_ctl(ctypes.c_void_p(self._st), ctypes.c_int(4028))
        if r < 0:
            _raise(r, "opus_decoder_ctl(OPUS_RESET_STATE)")

    def __repr__(self) -> str:
        return f"OpusDecoder(sample_rate={self.sample_rate}, channels={self.channels})"


# ---------------------------------------------------------------------------------------------
# packets


def packet_has_fec(packet: bytes) -> bool:
    """True when the packet's first SILK frame carries LBRR (in-band FEC) data for the previous one.

    Uses libopus' ``opus_packet_has_lbrr`` when the loaded library has it (libopus >= 1.5),
    else :func:`packet_has_fec_toc` (a parser of the TOC and SILK header bits, same logic).
    """
    packet = bytes(packet)
    if not packet:
        return False
    lib = _lib()
    fn = getattr(lib, "opus_packet_has_lbrr", None)
    if fn is None:
        return packet_has_fec_toc(packet)
    r = fn(packet, len(packet))
    if r < 0:
        _raise(r, "opus_packet_has_lbrr")
    return bool(r)


def _first_frame(packet: bytes) -> tuple[int, int]:
    """(offset, size) in bytes of the first frame of an Opus packet (RFC 6716 section 3.2)."""
    n = len(packet)
    code = packet[0] & 0x3
    if code == 0:
        return 1, n - 1
    if code == 1:
        if (n - 1) % 2:
            raise _ERROR_TYPES[-4](-4, "corrupted stream", "packet_has_fec_toc (code 1, odd length)")
        return 1, (n - 1) // 2
    if code == 2:
        size, used = _frame_length(packet, 1)
        return 1 + used, size
    # code 3: frame count byte, optional padding, optional VBR lengths
    if n < 2:
        raise _ERROR_TYPES[-4](-4, "corrupted stream", "packet_has_fec_toc (code 3, no count byte)")
    vbr, padded, count = packet[1] >> 7, (packet[1] >> 6) & 1, packet[1] & 0x3F
    if count == 0:
        raise _ERROR_TYPES[-4](-4, "corrupted stream", "packet_has_fec_toc (code 3, 0 frames)")
    pos, pad = 2, 0
    if padded:
        while True:
            if pos >= n:
                raise _ERROR_TYPES[-4](-4, "corrupted stream", "packet_has_fec_toc (padding)")
            b = packet[pos]
            pos += 1
            pad += 254 if b == 255 else b
            if b != 255:
                break
    if vbr:
        first = None
        for _ in range(count - 1):
            size, used = _frame_length(packet, pos)
            pos += used
            first = size if first is None else first
        if first is None:
            first = n - pos - pad
        return pos, first
    return pos, (n - pos - pad) // count


def _frame_length(packet: bytes, pos: int) -> tuple[int, int]:
    """A 1- or 2-byte frame length at ``pos``: (length, bytes used)."""
    if pos >= len(packet):
        raise _ERROR_TYPES[-4](-4, "corrupted stream", "packet_has_fec_toc (frame length)")
    b = packet[pos]
    if b < 252:
        return b, 1
    if pos + 1 >= len(packet):
        raise _ERROR_TYPES[-4](-4, "corrupted stream", "packet_has_fec_toc (frame length)")
    return b + 4 * packet[pos + 1], 2


def packet_has_fec_toc(packet: bytes) -> bool:
    """Pure-Python LBRR check (fallback for libopus < 1.5), RFC 6716 sections 3.1, 4.2.3, 4.2.5.

    CELT-only packets (TOC config 16..31) carry no LBRR. Otherwise the first SILK frame starts
    with, per channel, one VAD flag per 20 ms SILK frame (1 for 10/20 ms, 2 for 40 ms, 3 for
    60 ms Opus frames) followed by the LBRR flag, all coded with probability 1/2; such
    symbols read as the most significant bits of the first byte. Mid channel: bit ``7 - k``;
    side channel (stereo): bit ``6 - 2k``, where k = number of 20 ms SILK frames.
    """
    packet = bytes(packet)
    if not packet:
        return False
    toc = packet[0]
    config = toc >> 3
    if config >= 16:  # CELT-only
        return False
    stereo = bool(toc & 0x4)
    # frame duration for SILK-only configs cycles 10/20/40/60 ms; hybrid configs are 10/20 ms
    if config < 12:
        dur_ms = (10, 20, 40, 60)[config & 3]
    else:
        dur_ms = (10, 20)[config & 1]
    k = max(1, dur_ms // 20)
    off, size = _first_frame(packet)
    if size <= 0 or off >= len(packet):
        return False
    b = packet[off]
    lbrr = (b >> (7 - k)) & 1
    if stereo:
        lbrr = lbrr or (b >> (6 - 2 * k)) & 1
    return bool(lbrr)
