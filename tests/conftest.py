"""Test-session set-up shared by every test file.

Which tests need what the machine may lack is decided here, once: a test marked ``netns`` is skipped
with :func:`translab.emulate.netns.system.unavailable_reason`'s one line (not root, no ``ip netns``,
no /dev/net/tun); one marked ``coturn`` is skipped when coturn's programs are not installed. Test files
only mark their tests; they never probe the machine themselves."""

from __future__ import annotations

import shutil
import signal
from functools import cache

import pytest

# A test run started from a non-interactive shell's background job (as CI may start .ci/run) inherits
# SIGINT *ignored*, and exec'd children keep ignored signals: a child Python then never raises
# KeyboardInterrupt, so the Ctrl-C tests would test nothing real. Give this process Python's handler
# back; children it starts get SIGINT at its default again, as under a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: the programs of Debian's coturn package the tests run (the server, a TURN client, RFC 5780 discovery)
COTURN_PROGRAMS = ("turnserver", "turnutils_uclient", "turnutils_natdiscovery")


@cache
def netns_unavailable() -> str | None:
    """Why the netns backend cannot run here (one line), or None; asked once a session."""
    from translab.emulate.netns.system import unavailable_reason

    return unavailable_reason()


@cache
def coturn_unavailable() -> str | None:
    """Which coturn programs are missing (one line), or None."""
    missing = [p for p in COTURN_PROGRAMS if shutil.which(p) is None]
    return f"coturn not installed (no {', '.join(missing)})" if missing else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``netns`` / ``coturn`` tests the machine cannot run, saying why."""
    for item in items:
        for marker, reason_of in (("netns", netns_unavailable), ("coturn", coturn_unavailable)):
            if item.get_closest_marker(marker) is not None:
                reason = reason_of()
                if reason is not None:
                    item.add_marker(pytest.mark.skip(reason=reason))
