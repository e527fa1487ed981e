"""The one error type users see: a wrong input, named by field, value and what is allowed."""

from __future__ import annotations

from typing import Any


class TranslabError(ValueError):
    """A user-facing error. The CLI prints ``str(err)`` on one line and exits 2."""


class ConfigError(TranslabError):
    """A configuration value is not allowed.

    ``ConfigError("bitrate", 3000, "6000 to 510000 bit/s")`` reads
    ``bitrate: 3000 is not allowed (allowed: 6000 to 510000 bit/s)``.
    ``where`` (a file name, a line) is prefixed when given.
    """

    def __init__(self, field: str, value: Any, allowed: str, where: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field}: {value!r} is not allowed (allowed: {allowed})")


def check_range(field: str, value: float, lo: float, hi: float, unit: str = "") -> None:
    """Raise ConfigError unless ``lo <= value <= hi``."""
    if not (lo <= value <= hi):
        u = f" {unit}" if unit else ""
        raise ConfigError(field, value, f"{lo} to {hi}{u}")


def check_choice(field: str, value: Any, choices: "list[Any] | tuple[Any, ...]") -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(field, value, ", ".join(str(c) for c in choices))
