"""The arrival trace: documented schema (columns, dtypes, units), Parquet round trip with attrs."""

import math

import numpy as np
import pandas as pd
import pytest

from translab import trace as trace_mod
from translab.errors import TranslabError


def _rows(n: int = 4) -> dict:
    return {
        "seq": np.arange(n), "media_ts": np.arange(n) * 960, "frame_samples": [960] * n,
        "capture_s": (np.arange(n) + 1) * 0.02, "send_s": (np.arange(n) + 1) * 0.02,
        "arrival_s": [0.07, math.nan, 0.11, 0.13][:n], "payload_bytes": [60] * n,
        "message_bytes": [60] * n, "wire_bytes": [110] * n, "transport": ["webrtc"] * n,
        "direction": ["up"] * n, "fec": [True, False, True, True][:n], "duplicates": [0, 0, 1, 0][:n],
        "payload": [bytes([i]) * 60 for i in range(n)],
    }


ATTRS = {"codec": "opus", "sample_rate": 48000, "channels": 1, "frame_ms": 20.0, "framing": "rtp",
         "clip": "slt-weather", "seed": 7, "profile": "4g", "mode": "simulate"}


def test_every_column_is_documented_with_its_dtype():
    doc = trace_mod.__doc__
    for col, dtype in trace_mod.COLUMNS.items():
        line = next((ln for ln in doc.splitlines() if ln.startswith(col + " ")), None)
        assert line is not None, f"{col} not documented"
        assert (dtype if dtype != "object" else "binary") in line, line
    for unit in ("samples", "(s, call clock)", "NaN if lost"):
        assert unit in doc


def test_parquet_round_trip_keeps_dtypes_nan_bytes_and_attrs(tmp_path):
    df = trace_mod.make_trace(_rows(), ATTRS)
    path = trace_mod.save(df, tmp_path / "t.parquet")
    assert path.read_bytes()[:4] == b"PAR1"
    assert not list(tmp_path.glob("*.partial"))
    back = trace_mod.load(path)
    assert back.attrs == ATTRS
    assert list(back.columns) == list(trace_mod.COLUMNS)
    for col, dtype in trace_mod.COLUMNS.items():
        if dtype != "object":
            assert str(back[col].dtype) == str(df[col].dtype), col
    assert math.isnan(back["arrival_s"].iloc[1])
    assert list(back["payload"]) == list(df["payload"])
    pd.testing.assert_frame_equal(back.drop(columns="payload"), df.drop(columns="payload"))


def test_empty_trace_has_the_schema():
    e = trace_mod.empty_trace()
    assert len(e) == 0 and list(e.columns) == list(trace_mod.COLUMNS)


def test_missing_column_and_time_travel_are_refused():
    rows = _rows()
    del rows["wire_bytes"]
    with pytest.raises(TranslabError, match="wire_bytes"):
        trace_mod.make_trace(rows)
    df = trace_mod.make_trace(_rows())
    trace_mod.validate(df)
    df.loc[0, "arrival_s"] = 0.0  # before it was sent at 0.02 s
    with pytest.raises(TranslabError, match="before it was sent"):
        trace_mod.validate(df)
