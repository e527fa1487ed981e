"""Provenance: what produced a figure (code version, library versions, machine, config hash)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import translab

_REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The repository's HEAD commit (with ``+dirty`` when the work tree has changes), or "unknown"."""
    try:
        head = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of translab and of every component whose behaviour shapes a figure."""
    try:
        from translab.media.opus import libopus_version

        opus = libopus_version()
    except Exception as err:  # libopus missing is reported, not fatal, for provenance
        opus = f"unavailable ({err})"
    return {
        "translab": translab.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "libopus": opus,
        "aiortc": _version("aiortc"),
        "websockets": _version("websockets"),
        "av": _version("av"),
        "numpy": _version("numpy"),
        # the quality metrics' implementations (PLCMOS model + runtime, PESQ, STOI, ViSQOL)
        "speechmos": _version("speechmos"),
        "onnxruntime": _version("onnxruntime"),
        "pesq": _version("pesq"),
        "pystoi": _version("pystoi"),
        "visqol-python": _version("visqol-python"),
    }


def machine() -> dict[str, Any]:
    """A short description of the machine a run was measured on."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "python_executable": sys.executable,
    }


def config_hash(config: dict[str, Any]) -> str:
    """A stable short hash (16 hex digits) of a JSON-serialisable config dict (key order ignored)."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
