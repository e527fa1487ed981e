"""The ``translab`` command line. Each room that offers a command has a module with
``register(subparsers)`` that adds its subcommand and sets ``func`` (taking the parsed args, returning
an exit code). Errors a user caused (:class:`translab.errors.TranslabError`) print one line without a
traceback and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from translab import __version__
from translab.errors import TranslabError

# Modules offering a subcommand, in the order ``translab --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "translab.commands.simulate",
    "translab.commands.profiles",
    "translab.commands.bench",
    "translab.commands.run",
    "translab.commands.report",
    "translab.commands.netns",
    "translab.commands.call",
    "translab.commands.serve",
    "translab.commands.converse",
    "translab.commands.probe",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit 2, like every other error.
    Subcommand parsers inherit the class (add_subparsers uses ``type(parent)``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = _Parser(
        prog="translab",
        description="Measure WebRTC vs WebSocket voice transport under emulated bad networks.",
    )
    parser.add_argument("--version", action="version", version=f"translab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        parser = build_parser()
    except KeyboardInterrupt:  # Ctrl-C while the commands are still being loaded
        print("translab: interrupted", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TranslabError as err:
        print(f"translab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"translab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
