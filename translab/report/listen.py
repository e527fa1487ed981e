"""Listening pairs: for a profile, two exact configurations run on the same seed and clip, with their
output audio, so a reader hears a like-for-like difference (report and notebooks 02-05).

The pair's seed and clip are chosen as the representative unit: the one whose PLCMOS difference is
closest to the median difference over all pairs (not the most dramatic one). The report embeds each
output as a FLAC data URI (lossless, 24 kHz mono, about 40 % of a WAV), so it stays one offline file.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from translab.report.claims import (OPUS_PLC, OPUS_ZERO, WEBRTC, WS_BINARY, Setting, _num, _units, is_clean,
                                    ok_rows, profile_name)

#: Sample rate (Hz) of the embedded audio: keeps everything the shipped clips contain.
EMBED_RATE = 24000


@dataclass
class ListeningPair:
    """Two cells of one profile, same seed and clip: their settings, hashes, PLCMOS and output WAVs."""

    profile: str
    seed: int
    clip: str
    a: Setting
    b: Setting
    a_hash: str
    b_hash: str
    a_plcmos: float
    b_plcmos: float
    a_wav: Path
    b_wav: Path


def listening_pair(df: pd.DataFrame, run_dir: str | Path, profile: str, a: Setting = WEBRTC,
                   b: Setting = WS_BINARY) -> ListeningPair | None:
    """The representative pair of ``a`` and ``b`` on ``profile`` whose output WAVs exist (None if
    none)."""
    ra, rb = a.rows(df, profile), b.rows(df, profile)
    if not len(ra) or not len(rb):
        return None
    ra = ra.assign(unit=_units(ra).to_numpy())
    rb = rb.assign(unit=_units(rb).to_numpy())
    m = ra.merge(rb, on="unit", suffixes=("_a", "_b"))
    if not len(m):
        return None
    run = Path(run_dir)
    m = m[[(run / "cells" / str(ha) / "output.wav").exists() and (run / "cells" / str(hb) / "output.wav").exists()
           for ha, hb in zip(m["cell_hash_a"], m["cell_hash_b"])]]
    if not len(m):
        return None
    diff = _num(m["plcmos_a"]) - _num(m["plcmos_b"]) if "plcmos_a" in m.columns else pd.Series(0.0, index=m.index)
    pick = (diff - diff.median()).abs().fillna(np.inf).sort_values(kind="stable").index[0]
    r = m.loc[pick]
    return ListeningPair(profile, int(r["seed_a"]), str(r["clip_a"]), a, b, str(r["cell_hash_a"]),
                         str(r["cell_hash_b"]), float(r.get("plcmos_a", np.nan)), float(r.get("plcmos_b", np.nan)),
                         run / "cells" / str(r["cell_hash_a"]) / "output.wav",
                         run / "cells" / str(r["cell_hash_b"]) / "output.wav")


def listening_pairs(df: pd.DataFrame, run_dir: str | Path) -> list[ListeningPair]:
    """Per profile: WebRTC vs WebSocket (the transport decision); on impaired profiles also Opus PLC
    vs zero-fill (the concealment claim) when the run has both."""
    d = ok_rows(df)
    if "profile" not in d.columns:
        return []
    out = []
    for p in sorted(set(d["profile"].map(profile_name)), key=lambda p: (not is_clean(p), p)):
        for a, b in ((WEBRTC, WS_BINARY), (OPUS_PLC, OPUS_ZERO)):
            if is_clean(p) and b is OPUS_ZERO:
                continue
            pair = listening_pair(d, run_dir, p, a, b)
            if pair is not None:
                out.append(pair)
    return out


def flac_bytes(x: np.ndarray, rate: int) -> bytes:
    """Mono PCM16 samples as a FLAC file (lossless; PyAV's libavcodec encoder)."""
    import av

    from translab.media.audio import to_int16

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="flac") as c:
        s = c.add_stream("flac", rate=rate)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(to_int16(x).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in s.encode(frame):
            c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    return buf.getvalue()


def flac_data_uri(wav: str | Path, rate: int = EMBED_RATE) -> str:
    """The WAV at ``rate`` Hz as a ``data:audio/flac;base64,...`` URI (lossless)."""
    from translab.media.audio import load_wav

    x, r = load_wav(wav, rate=rate, dtype="int16")
    return "data:audio/flac;base64," + base64.b64encode(flac_bytes(x, r)).decode("ascii")
