"""Benchmarks behind `translab bench`: each module has `run() -> dict` of figures (units in key names)."""
