"""Simulated calls stay byte-identical across refactoring: every simulated cell of the default
experiment (one seed and clip: every configuration once) gives the output.wav and the figures stored in
tests/data/default_digest.json (written by tests/digest_default.py; first from the code before the
call-layer refactor, then rewritten where a change was intended, as the commits say).

Rows may gain columns (later issues add figures); every stored figure must be unchanged. Floats are
compared to 1e-9 relative (summation order), everything else exactly."""

from __future__ import annotations

import json
import math

import pytest

from digest_default import DIGEST, digest_cell, simulated_cells

STORED = json.loads(DIGEST.read_text())


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def test_digest_covers_the_default_experiment():
    # the stored cells are the default experiment's simulated cells (no cell added or lost)
    stored = [json.dumps(e["cell"], sort_keys=True) for e in STORED]
    now = [json.dumps(c, sort_keys=True) for c in simulated_cells()]
    assert stored == now


def test_simulated_cells_unchanged():
    diffs = []
    for entry in STORED:
        got = digest_cell(entry["cell"])
        if got["output_wav_sha256"] != entry["output_wav_sha256"]:
            diffs.append((entry["cell"], "output.wav"))
        for k, v in entry["figures"].items():
            if k not in got["figures"] or not _same(got["figures"][k], v):
                diffs.append((entry["cell"], k, v, got["figures"].get(k, "<missing>")))
    assert not diffs, f"{len(diffs)} differences, first: {diffs[:5]}"


def test_comparison_detects_a_change():
    # the comparison can fail: a figure off by 1e-6 relative is a difference
    assert not _same(1.0, 1.000001) and _same(1.0, 1.0 + 1e-12) and not _same("nb", "wb")
    with pytest.raises(AssertionError):
        assert _same(0.5, 0.6)
