"""Where the repository's data lives (speech clips, profiles, experiments, traces)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CLIPS_DIR = DATA_DIR / "clips"
PROFILES_DIR = DATA_DIR / "profiles"
EXPERIMENTS_DIR = DATA_DIR / "experiments"
TRACES_DIR = DATA_DIR / "traces"
