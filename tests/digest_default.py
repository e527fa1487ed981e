"""The digest of the simulated cells of data/experiments/default.toml for one seed and one clip (every
configuration of the experiment once; all seeds x clips would take minutes): per cell, the SHA-256 of
its output.wav and every figure of its result row except provenance (versions, config hash/JSON).

Used by tests/test_digest.py to check that refactoring leaves simulated calls byte-identical. Run this
module as a script to (re)write tests/data/default_digest.json -- only where a change of behaviour is
intended, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIGEST = Path(__file__).resolve().parent / "data" / "default_digest.json"
EXPERIMENT = ROOT / "data" / "experiments" / "default.toml"

#: row keys that are provenance, not figures of the call
SKIP_PREFIXES = ("v_",)
SKIP_KEYS = ("config_hash", "config")


def figures(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in sorted(row.items()):
        if k in SKIP_KEYS or k.startswith(SKIP_PREFIXES):
            continue
        if isinstance(v, float) and math.isnan(v):
            v = "nan"
        elif hasattr(v, "item"):
            v = v.item()
        out[k] = v
    return out


#: the seed and clip whose cells the digest covers
SEED, CLIP = 1, "slt-weather"


def simulated_cells() -> list[dict[str, Any]]:
    from translab.lab.experiment import load_experiment

    return [c for c in load_experiment(EXPERIMENT).cells() if c.get("mode", "simulate") == "simulate"
            and c.get("backend", "inprocess") == "inprocess" and c.get("seed") == SEED
            and c.get("clip") == CLIP]


def digest_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """``{"cell", "output_wav_sha256", "figures"}`` of one cell, run by the default cell function."""
    from translab.lab.cells import run_cell

    with tempfile.TemporaryDirectory() as d:
        row = run_cell(dict(cell), Path(d))
        wav = hashlib.sha256((Path(d) / "output.wav").read_bytes()).hexdigest()
    return {"cell": cell, "output_wav_sha256": wav, "figures": figures(row)}


if __name__ == "__main__":
    digest = [digest_cell(c) for c in simulated_cells()]
    DIGEST.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGEST} ({len(digest)} cells)", file=sys.stderr)
