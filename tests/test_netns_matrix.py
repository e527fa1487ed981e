"""The outcome matrix: the expected pattern (pure), resumable table and heatmap (no live calls)."""

from __future__ import annotations

import json

import pandas as pd

from translab.lab import nat_matrix as mx
from translab.link.nat import Cell, expected_connected


def test_expected_pattern() -> None:
    w = lambda a, b, ice="stun", fw="open": expected_connected(Cell("webrtc", a, b, fw, ice))  # noqa: E731
    assert not w("symmetric", "port-restricted-cone") and not w("port-restricted-cone", "symmetric")
    assert not w("symmetric", "symmetric")
    assert w("symmetric", "full-cone") and w("restricted-cone", "symmetric") and w("symmetric", "none")
    assert w("symmetric", "symmetric", "turn-udp")
    assert not w("full-cone", "full-cone", "none") and w("none", "symmetric", "none")
    assert not w("none", "none", "turn-udp", "udp-blocked")
    assert w("none", "none", "turn-tcp", "udp-blocked") and not w("none", "none", "turn-tcp", "only-443")
    assert w("symmetric", "symmetric", "turns-443", "only-443")
    assert all(expected_connected(Cell("websocket", n, "none", fw, "none"))
               for n in mx.NAT_CHOICES for fw in mx.FIREWALL_PROFILES)


def test_default_cells_unique_and_cover_patterns() -> None:
    for quick in (False, True):
        cells = mx.default_cells(quick)
        assert len({c.key for c in cells}) == len(cells)
        assert {c.transport for c in cells} == {"webrtc", "websocket"}
        assert {c.firewall for c in cells} == set(mx.FIREWALL_PROFILES)


def test_run_matrix_resumes_and_draws(tmp_path, monkeypatch) -> None:
    calls = []

    def fake(cell, base, timeout):
        calls.append(cell.key)
        ok = expected_connected(cell)
        return {"key": cell.key, **cell.__dict__, "expected_connected": ok, "connected": ok,
                "matches_expectation": True, "netns_pair": "host-srflx" if ok else None}

    monkeypatch.setattr(mx, "run_cell", fake)
    cells = mx.default_cells(quick=True)
    df = mx.run_matrix(cells[:5], tmp_path, None)
    assert len(df) == 5 and (tmp_path / "matrix.png").stat().st_size > 0
    df2 = mx.run_matrix(cells, tmp_path, None)
    assert len(calls) == len(cells)  # the first five were not rerun
    assert len(df2) == len(cells)
    assert len((tmp_path / "matrix.jsonl").read_text().splitlines()) == len(cells)
    assert list(pd.read_csv(tmp_path / "matrix.csv")["key"]) == [c.key for c in cells]
    assert json.loads((tmp_path / "matrix.jsonl").read_text().splitlines()[0])["key"] == cells[0].key
