"""Check a NAT from outside the code: run coturn's ``turnutils_natdiscovery`` (RFC 5780 tests)
inside a LAN namespace against the lab's coturn (two public addresses) and parse its verdicts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from translab.link.nat import AD, APD, EI

if TYPE_CHECKING:
    from translab.emulate.netns.lab import Lab

_WORDS = {
    "Endpoint Independent": EI,
    "Address Dependent": AD,
    "Address and Port Dependent": APD,
}
_VERDICT = re.compile(r"NAT with (Endpoint Independent|Address and Port Dependent|Address Dependent) "
                      r"(Mapping|Filtering)!")


def parse_report(text: str) -> dict[str, str | None]:
    """``{"mapping": ..., "filtering": ...}`` in RFC 4787 words (``endpoint-independent``...), or
    None for a behaviour the report does not state (e.g. no NAT found, or a test failed)."""
    out: dict[str, str | None] = {"mapping": None, "filtering": None}
    for words, kind in _VERDICT.findall(text):
        out[kind.lower()] = _WORDS[words]
    return out


def discover(lab: "Lab", side: str = "a", server: str | None = None, timeout_s: float = 30.0) -> dict[str, str | None]:
    """Run mapping and filtering discovery from ``side``'s namespace; the parsed verdicts plus
    ``report`` (the tool's full output)."""
    server = server or lab.config.server_ips[0]
    p = lab.run_in(side, ["turnutils_natdiscovery", "-m", "-f", server], timeout=timeout_s)
    res: dict[str, str | None] = dict(parse_report(p.stdout))
    res["report"] = p.stdout + p.stderr
    return res


def parse_hairpin(text: str) -> bool:
    """Whether ``turnutils_natdiscovery -H`` saw its own request come back through the NAT."""
    return "successful hairpinning" in text


def discover_hairpin(lab: "Lab", side: str = "a", server: str | None = None, timeout_s: float = 30.0) -> bool:
    """Run the hairpinning test from ``side``'s namespace: a second socket sends to the first
    socket's reflexive address. Needs endpoint-independent filtering to see the packet (the
    hairpinned source is the second socket's mapping, which the first never contacted)."""
    server = server or lab.config.server_ips[0]
    p = lab.run_in(side, ["turnutils_natdiscovery", "-H", server], timeout=timeout_s)
    return parse_hairpin(p.stdout)
