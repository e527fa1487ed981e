"""The README's promise about wrong input, for every command (issue 15): one line on stderr naming the
option, the value and what is allowed; exit code 2; no traceback; refused BEFORE any long work (no
call made, no port bound, no cell run).

One table of the bad inputs a hostile afternoon of use found (each failed before: a traceback, or
accepted without a check), run through ``translab.cli.main`` in this process (an exception escaping
``main`` fails the test), plus a few through a real subprocess to see the exact stderr."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import scipy.io.wavfile as wavfile

from translab.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    f: dict[str, Path] = {}
    f["file"] = d / "afile"
    f["file"].write_text("not a directory\n")
    f["latin1"] = d / "latin1.toml"
    f["latin1"].write_bytes('name = "caf\xe9"\ndescription = "x"\n[[grid]]\nseed = [1]\n'.encode("latin-1"))
    f["big"] = d / "big.toml"  # 10^7 combinations, the grid
    f["big"].write_text('name = "big"\ndescription = "x"\n[[grid]]\n'
                        f"seed = {list(range(10_000))}\nexpected_loss_pct = {list(range(100))}\n"
                        f"complexity = {list(range(10))}\n")
    x = (0.1 * np.sin(np.arange(48000) / 10)).astype(np.float32)
    x[1234] = np.nan
    f["nan"] = d / "nan.wav"
    wavfile.write(f["nan"], 48000, x)
    y = x.copy()
    y[1234] = 0.0
    y[777] = np.inf
    f["inf"] = d / "inf.wav"
    wavfile.write(f["inf"], 48000, y)
    f["long"] = d / "long.wav"  # 1201 s at 8 kHz: over MAX_CLIP_S
    wavfile.write(f["long"], 8000, np.zeros(8000 * 1201, dtype=np.int16))
    f["truncated_wav"] = d / "truncated.wav"
    f["truncated_wav"].write_bytes(b"RIFF\x00\x00")
    f["garbage_run"] = d / "garbage_run"
    f["garbage_run"].mkdir()
    (f["garbage_run"] / "results.parquet").write_bytes(b"PAR1\x00\x00")  # 6 bytes
    return f


@pytest.fixture(scope="module")
def busy_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]  # type: ignore[misc]
    s.close()


# (id, argv from (files, busy port, tmp), words the one line must contain)
Case = tuple[str, Callable[[dict[str, Path], int, Path], list[str]], list[str]]
CASES: list[Case] = [
    ("run: experiment not UTF-8", lambda f, p, t: ["run", str(f["latin1"]), "--out", str(t / "o")],
     ["file", "UTF-8", "byte"]),
    ("run: --out is a file", lambda f, p, t: ["run", "smoke", "--out", str(f["file"])],
     ["--out", "afile", "existing file"]),
    ("run: --out below a file", lambda f, p, t: ["run", "smoke", "--out", str(f["file"] / "x")],
     ["--out", "a parent of this path is a file"]),
    ("run: --report in a missing folder", lambda f, p, t: ["run", "smoke", "--out", str(t / "o"), "--report",
                                                           str(t / "missing" / "r.html")],
     ["--report", "does not exist"]),
    ("run: --workers 0", lambda f, p, t: ["run", "smoke", "--out", str(t / "o"), "--workers", "0"],
     ["--workers", "1 or more"]),
    ("run: grid of 10^7 cells", lambda f, p, t: ["run", str(f["big"]), "--out", str(t / "o")],
     ["grid", "10,000,000 combinations", "at most 20,000"]),
    ("run --dry-run: grid of 10^7 cells", lambda f, p, t: ["run", str(f["big"]), "--out", str(t / "o"),
                                                            "--dry-run"],
     ["grid", "10,000,000 combinations"]),
    ("report: 6-byte results.parquet", lambda f, p, t: ["report", str(f["garbage_run"])],
     ["results", "cannot be read"]),
    ("report: missing directory", lambda f, p, t: ["report", str(t / "nowhere")],
     ["dir", "does not exist"]),
    ("simulate: --no-fec --conceal opus-fec", lambda f, p, t: ["simulate", "--no-fec", "--conceal", "opus-fec",
                                                                "--out", str(t / "o")],
     ["conceal", "opus-fec", "fec is off"]),
    ("simulate: --out is a file", lambda f, p, t: ["simulate", "--out", str(f["file"])], ["--out", "existing file"]),
    ("simulate: NaN sample", lambda f, p, t: ["simulate", "--clip", str(f["nan"]), "--out", str(t / "o")],
     ["sample 1234 is nan", "finite samples"]),
    ("simulate: Inf sample", lambda f, p, t: ["simulate", "--clip", str(f["inf"]), "--out", str(t / "o")],
     ["sample 777 is inf", "finite samples"]),
    ("simulate: truncated WAV", lambda f, p, t: ["simulate", "--clip", str(f["truncated_wav"]), "--out",
                                                 str(t / "o")], ["path", "truncated.wav", "could not read it"]),
    ("simulate: 20-minute clip limit", lambda f, p, t: ["simulate", "--clip", str(f["long"]), "--out", str(t / "o")],
     ["clip length", "1201 s", "at most 1200 s"]),
    ("call: --out is a file", lambda f, p, t: ["call", "--out", str(f["file"]), "--quiet"], ["--out", "existing file"]),
    ("call: --pcap in a missing folder", lambda f, p, t: ["call", "--out", str(t / "o"), "--pcap",
                                                          str(t / "missing" / "x.pcap"), "--quiet"],
     ["--pcap", "x.pcap", "does not exist"]),
    ("call: --no-fec --conceal opus-fec", lambda f, p, t: ["call", "--no-fec", "--conceal", "opus-fec",
                                                            "--out", str(t / "o")], ["conceal", "fec is off"]),
    ("serve: --pcap in a missing folder", lambda f, p, t: ["serve", "--http-port", "0", "--ws-port", "0",
                                                           "--out", str(t / "o"), "--pcap", str(t / "missing" / "x.pcap")],
     ["--pcap", "does not exist"]),
    ("serve: port in use", lambda f, p, t: ["serve", "--http-port", str(p), "--ws-port", "0", "--out", str(t / "o")],
     ["--http-port", "is in use"]),
    ("serve: --host not of this machine", lambda f, p, t: ["serve", "--host", "8.8.8.8", "--http-port", "0",
                                                            "--ws-port", "0", "--out", str(t / "o")],
     ["--host", "8.8.8.8", "address of this machine"]),
    ("serve: --http-port 70000", lambda f, p, t: ["serve", "--http-port", "70000", "--out", str(t / "o")],
     ["--http-port", "70000", "0 to 65535"]),
    ("serve: --for -3", lambda f, p, t: ["serve", "--http-port", "0", "--ws-port", "0", "--for", "-3",
                                         "--out", str(t / "o")], ["--for", "-3", "positive"]),
    ("serve: --playout fixed:abc", lambda f, p, t: ["serve", "--playout", "fixed:abc", "--out", str(t / "o")],
     ["playout", "fixed:abc", "fixed:<ms>"]),
    ("nat-matrix: --duration -1", lambda f, p, t: ["nat-matrix", "--duration", "-1", "--out", str(t / "m")],
     ["duration_s", "-1", "0.1 to 3600"]),
    ("nat-matrix: --profile nowhere", lambda f, p, t: ["nat-matrix", "--profile", "nowhere", "--out", str(t / "m")],
     ["nowhere"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_before_any_work(case: Case, files: dict[str, Path], busy_port: int,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, argv, words = case
    t0 = time.monotonic()
    code = main(argv(files, busy_port, tmp_path))
    wall = time.monotonic() - t0
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert wall < 20, f"refused only after {wall:.1f} s: the check must come before the long work"
    assert not (tmp_path / "m" / "matrix.csv").exists()


def test_dry_run_of_a_huge_grid_counts_from_the_axes(files: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's 10^7-cell grid ran for 150 s and grew past 1.27 GB with --dry-run; now the counts come
    from the axes (no cell is built)."""
    import resource

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    assert main(["run", str(files["big"]), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    assert time.monotonic() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100_000  # KB: < 100 MB more
    out = capsys.readouterr().out
    assert "10,000,000 combinations in 1 block(s)" in out
    assert "seed 10000 x expected_loss_pct 100 x complexity 10" in out


def test_error_line_through_a_real_process(files: dict[str, Path], busy_port: int) -> None:
    """The exact stderr of a subprocess: one line, exit 2 (the in-process table cannot see a traceback
    printed by the interpreter itself)."""
    r = subprocess.run([sys.executable, "-m", "translab.cli", "serve", "--http-port", str(busy_port),
                        "--ws-port", "0"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert r.stderr.strip().splitlines() == [
        f"translab serve: error: --http-port: {busy_port} is not allowed (allowed: a free port "
        f"(port {busy_port} on 127.0.0.1 is in use))"]


@pytest.mark.netns
def test_nat_matrix_whose_every_cell_failed_writes_no_finished_looking_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep whose every cell raised (as --duration -1 made all 105 do) leaves matrix.jsonl (the log)
    but no matrix.csv / matrix.png, and exits 1. The cell function is replaced by one that raises
    through the same error path as run_cell's (a row with status "error")."""
    import dataclasses

    import translab.lab.nat_matrix as matrix

    def broken(cell, base_cfg, connect_timeout_s):  # type: ignore[no-untyped-def]
        return {"key": cell.key, **dataclasses.asdict(cell), "expected_connected": True,
                "status": "error", "reason": "ConfigError: broken on purpose", "connected": False,
                "matches_expectation": False}

    monkeypatch.setattr(matrix, "run_cell", broken)
    code = main(["nat-matrix", "--quick", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "every one of the 13 cells failed" in err and "broken on purpose" in err
    assert (tmp_path / "matrix.jsonl").exists()
    assert not (tmp_path / "matrix.csv").exists() and not (tmp_path / "matrix.png").exists()


def test_failed_call_summary_is_strict_json(tmp_path: Path) -> None:
    """A call that cannot connect (every packet lost) writes a summary.json a strict parser reads: the
    NaN figures of a call that measured nothing are null."""
    from translab.config import CallConfig
    from translab.link.loss import BernoulliLoss
    from translab.live import live_call

    cfg = CallConfig(transport="webrtc", profile="clean-lan", duration_s=1, metrics=())
    res = live_call(cfg, tmp_path, connect_timeout_s=1, chain_factory=lambda d: BernoulliLoss(1.0))
    assert res.summary["status"] == "failed"
    assert any(isinstance(v, float) and math.isnan(v) for v in res.summary.values())  # NaN was there

    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    s = json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse)
    nan_keys = [k for k, v in res.summary.items() if isinstance(v, float) and math.isnan(v)]
    assert all(s[k] is None for k in nan_keys)
