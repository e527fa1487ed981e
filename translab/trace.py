"""The arrival trace: the seam between whoever moved the packets (simulator or live call) and the
receiver (playout, metrics). One row per media packet (RTP packet or WebSocket message).

Columns (units in the name or stated):

==================  =========  ==============================================================
seq                 int64      sender's sequence number, 0-based, +1 per packet actually sent
media_ts            int64      media timestamp of the first sample, in samples at ``sample_rate``
frame_samples       int64      samples of audio this packet carries (per channel)
capture_s           float64    when the packet's last sample was captured (s, call clock)
send_s              float64    when the packet was handed to the transport (s, call clock)
arrival_s           float64    when the receiver got it (s, call clock); NaN if lost
payload_bytes       int64      codec payload (Opus packet, PCM16 or mu-law bytes)
message_bytes       int64      application message (RTP payload, or WebSocket message incl. JSON)
wire_bytes          int64      bytes on the wire for this packet under the header model
transport           string     "webrtc" or "websocket"
direction           string     "up" (caller to callee) or "down"
fec                 bool       Opus packet carries in-band FEC (LBRR) for the previous frame
duplicates          int64      extra copies that arrived (link duplication), not played twice
payload             binary     the codec payload itself, so playout can decode it
==================  =========  ==============================================================

The call clock starts at 0 s when the first sample of the clip is captured. Metadata about the call
(codec, sample rate, frame length, clip, ...) travels in ``df.attrs`` and in the Parquet schema
metadata as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from translab.errors import TranslabError

COLUMNS: dict[str, str] = {
    "seq": "int64",
    "media_ts": "int64",
    "frame_samples": "int64",
    "capture_s": "float64",
    "send_s": "float64",
    "arrival_s": "float64",
    "payload_bytes": "int64",
    "message_bytes": "int64",
    "wire_bytes": "int64",
    "transport": "string",
    "direction": "string",
    "fec": "bool",
    "duplicates": "int64",
    "payload": "object",
}

_META_KEY = b"translab"


def empty_trace() -> pd.DataFrame:
    """A trace with no rows and the documented columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


def make_trace(rows: dict[str, Any], attrs: dict[str, Any] | None = None) -> pd.DataFrame:
    """Build a trace from column arrays (or lists), checking columns and casting dtypes."""
    missing = [c for c in COLUMNS if c not in rows]
    if missing:
        raise TranslabError(f"trace: missing columns {missing}")
    df = pd.DataFrame({c: rows[c] for c in COLUMNS})
    df = df.astype({c: t for c, t in COLUMNS.items() if t != "object"})
    df.attrs.update(attrs or {})
    return df


def validate(df: pd.DataFrame) -> None:
    """Raise TranslabError if ``df`` does not follow the schema."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TranslabError(f"trace: missing columns {missing}")
    arr = df["arrival_s"].to_numpy(dtype=float)
    send = df["send_s"].to_numpy(dtype=float)
    ok = ~np.isnan(arr)
    if np.any(arr[ok] < send[ok] - 1e-9):
        raise TranslabError("trace: a packet arrives before it was sent")


def save(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the trace to Parquet with ``df.attrs`` as JSON schema metadata. Written to a temporary
    name first and renamed, so a half-written file never looks complete."""
    path = Path(path)
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META_KEY] = json.dumps(df.attrs, default=str).encode()
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(path.name + ".partial")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def load(path: str | Path) -> pd.DataFrame:
    """Read a trace written by :func:`save`, restoring ``df.attrs``."""
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    df = table.to_pandas()
    if _META_KEY in meta:
        df.attrs.update(json.loads(meta[_META_KEY]))
    for c, t in COLUMNS.items():
        if t != "object" and c in df:
            df[c] = df[c].astype(t)
    return df
