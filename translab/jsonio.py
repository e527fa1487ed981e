"""Strict JSON, the one writer of every JSON file translab writes (base layer).

Python's ``json`` writes ``NaN``, ``Infinity`` and ``-Infinity`` for non-finite floats, which strict
parsers (JavaScript's ``JSON.parse``, ``jq``, Go, Rust serde) refuse. Here a non-finite float becomes
``null``, NumPy scalars and arrays become plain numbers and lists, paths become strings, and any other
object its ``str``; the encoder runs with ``allow_nan=False`` so a non-finite value can never slip
through.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["to_json_value", "dumps", "write_json"]


def to_json_value(v: Any) -> Any:
    """``v`` as plain JSON data: dicts (keys as strings), lists, str, int, finite float, bool, None.
    Non-finite floats -> None; NumPy scalars/arrays -> Python numbers/lists; other objects -> str."""
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [to_json_value(x) for x in v]
    if hasattr(v, "tolist") and hasattr(v, "dtype"):  # NumPy scalar or array, without importing NumPy
        return to_json_value(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def dumps(data: Any, **kw: Any) -> str:
    """Strict JSON text of ``data`` (see the module docstring); ``kw`` as for :func:`json.dumps`."""
    kw.pop("default", None)
    return json.dumps(to_json_value(data), allow_nan=False, **kw)


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2,
               sort_keys: bool = False) -> Path:
    """Write ``data`` as strict JSON to ``path`` atomically (a temporary file in the same folder, then
    ``os.replace``), so a reader never sees half a file. Returns the path."""
    p = Path(path)
    text = dumps(data, indent=indent, sort_keys=sort_keys) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
