"""Experiments: TOML experiment files, grid expansion, the resumable runner, result store, provenance."""
