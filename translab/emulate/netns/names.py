"""Names of everything a lab run creates. All start with ``tl-<runid>-`` so that
``translab netns cleanup`` can find leftovers of a crashed run by prefix.
Linux interface names are limited to 15 characters, so run ids are 6 hex digits."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

PREFIX = "tl-"
_RUNID = re.compile(r"^[0-9a-f]{6}$")


def new_run_id() -> str:
    """A fresh random 6-hex-digit run id."""
    return secrets.token_hex(3)


@dataclass(frozen=True)
class LabNames:
    """Namespace and device names of one run (``runid`` 6 hex digits)."""

    runid: str

    def __post_init__(self) -> None:
        if not _RUNID.match(self.runid):
            raise ValueError(f"run id {self.runid!r} is not 6 lowercase hex digits")

    @property
    def prefix(self) -> str:
        """``tl-<runid>-``: every namespace and device of this run starts with it."""
        return f"{PREFIX}{self.runid}-"

    def netns(self, port: str) -> str:
        """Namespace of a port (``a``, ``b`` LANs or ``pub``)."""
        return f"{self.prefix}{port}"

    def tun(self, port: str) -> str:
        """TUN device of a port (at most 15 characters)."""
        name = f"{self.prefix}{port}"
        assert len(name) <= 15, name
        return name
