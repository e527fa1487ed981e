"""Test-session set-up shared by every test file."""

import signal

# A test run started from a non-interactive shell's background job (as CI may start .ci/run) inherits
# SIGINT *ignored*, and exec'd children keep ignored signals: a child Python then never raises
# KeyboardInterrupt, so the Ctrl-C tests would test nothing real. Give this process Python's handler
# back; children it starts get SIGINT at its default again, as under a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
