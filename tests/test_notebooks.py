"""Every notebook runs top to bottom with small parameters (papermill), so none can rot.

Each is executed in a fresh kernel from the venv with outputs discarded; the committed notebooks must
carry no outputs and must have a papermill ``parameters`` cell.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

SMALL: dict[str, dict[str, object]] = {
    "01_quickstart": {"duration_s": 2.0},
    "02_latency": {"profiles": ["clean-lan", "4g-handoff"], "duration_s": 2.0,
                   "playouts": ["fixed:80", "elastic"], "live_calls": True, "live_duration_s": 1.0},
    "03_plc_quality": {"profiles": ["4g-handoff"], "bitrates": ["12k", "64k"], "duration_s": 2.0,
                       "metrics": ["plcmos"]},
    "04_bandwidth": {"bitrates": ["24k", "64k"], "opus_frames_ms": [20], "pcm_frames_ms": [20],
                     "duration_s": 1.0},
    "05_claims": {"duration_s": 2.0},
    # live calls on the netns backend (root): 3 matrix cells and 2 relayed bitrates, 1 s each
    "06_nat_traversal": {"limit": 3, "duration_s": 1.0, "bitrates": ["12k", "64k"], "relay_duration_s": 1.0},
    "07_conversation": {"topologies": ["direct-ws", "twilio"], "access_profiles": ["broadband"], "seeds": [1],
                        "turns": 2, "bargein_every": 1},
    "08_protection": {"profiles": ["sfu-10pct-loss"], "seeds": [1], "clips": ["rms-order"], "duration_s": 2.0,
                      "metrics": []},
    # reads the checked-in results of data/experiments/browser.toml (no browser needed)
    "09_browser": {"run_dir": None},
}


def test_every_notebook_has_small_parameters() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("0[1-9]_*.ipynb")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_committed_without_outputs_and_parameterised(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for key in SMALL[name]:
        assert f"{key} =" in params[0].source, f"{name}: parameter {key} not in the parameters cell"


#: notebooks that make live calls on the netns backend (root, coturn) carry its markers (tests/conftest.py skips)
NETNS_NOTEBOOKS = ("06_nat_traversal",)
RUNS = [pytest.param(n, marks=[pytest.mark.netns, pytest.mark.coturn, pytest.mark.live]) if n in NETNS_NOTEBOOKS else n
        for n in sorted(SMALL)]


@pytest.mark.parametrize("name", RUNS)
def test_notebook_runs(name: str, tmp_path: Path) -> None:
    if name in ("01_quickstart", "02_latency", "06_nat_traversal"):
        pytest.importorskip("aiortc")
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=SMALL[name],
                               kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                               execution_timeout=120)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{name} drew no figure"
