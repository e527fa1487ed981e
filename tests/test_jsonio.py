"""Strict JSON (issue 15): every JSON file translab writes parses with a strict parser; non-finite
floats are null; NumPy values become plain numbers; writes are atomic."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from translab.jsonio import dumps, to_json_value, write_json


def strict_loads(text: str):  # type: ignore[no-untyped-def]
    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_becomes_null_and_numpy_plain() -> None:
    data = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "np_nan": np.float32("nan"),
            "np_int": np.int64(7), "np_float": np.float64(0.25), "arr": np.array([1.0, np.nan]),
            "nested": [{"x": (1, math.nan)}], "path": Path("/a/b"), 3: "int key", "ok": 1.5, "b": True}
    out = strict_loads(dumps(data))
    assert out == {"nan": None, "inf": None, "ninf": None, "np_nan": None, "np_int": 7, "np_float": 0.25,
                   "arr": [1.0, None], "nested": [{"x": [1, None]}], "path": "/a/b", "3": "int key",
                   "ok": 1.5, "b": True}
    assert type(to_json_value(np.int64(7))) is int


def test_plain_json_dumps_would_not_be_strict() -> None:
    """What the issue saw: the standard library writes bare NaN, which a strict parser refuses."""
    with pytest.raises(ValueError, match="not strict"):
        strict_loads(json.dumps({"m2e_p50_ms": math.nan}))


def test_write_json_is_atomic_and_strict(tmp_path: Path) -> None:
    p = tmp_path / "summary.json"
    p.write_text('{"old": 1}\n')
    write_json(p, {"status": "failed", "m2e_p50_ms": math.nan}, sort_keys=True)
    assert strict_loads(p.read_text()) == {"m2e_p50_ms": None, "status": "failed"}
    assert [f.name for f in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left
    assert oct(os.stat(p).st_mode & 0o777) != oct(0o600)  # readable like any output, not mkstemp's 0600


def test_store_rows_and_manifest_are_strict(tmp_path: Path) -> None:
    from translab.lab.store import ResultStore, flatten

    store = ResultStore(tmp_path)
    store.prepare()
    tmp = store.temp_dir("abc")
    store.commit(tmp, "abc", {"cell_hash": "abc", "x": math.nan, "v": flatten({"l": [math.inf, 1]})})
    store.write_manifest({"counts": {"x": math.inf}})
    assert strict_loads((tmp_path / "cells" / "abc" / "row.json").read_text())["x"] is None
    assert strict_loads((tmp_path / "manifest.json").read_text()) == {"counts": {"x": None}}
    assert store.read_row("abc")["v"] == {"l": "[null, 1]"}


def test_no_module_writes_json_around_the_strict_writer() -> None:
    """Every JSON file and every --json print goes through translab.jsonio: a new ``json.dump`` to a
    file, ``write_text(json.dumps(...))`` or ``print(json.dumps(...))`` would write bare NaN again.
    (Wire messages, HTTP bodies and the forwarder's stdin config are not files and may use json.)"""
    import re

    import translab

    pkg = Path(translab.__file__).parent
    pattern = re.compile(r"json\.dump\(|write_text\(json\.dumps|print\(json\.dumps")
    offenders = [f"{f.relative_to(pkg)}:{i}" for f in sorted(pkg.rglob("*.py")) if f.name != "jsonio.py"
                 for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == [], offenders
