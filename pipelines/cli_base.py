"""What every `illuminate-sync` command shares: its exit codes, its parser class and the argument types more than one
command uses.

A module of its own because `cli.py` imports the write-back commands from `writeback.py`, and both need these.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and failed (an API error, a setting that is missing, rows not sent, a model test that failed)."""
EXIT_USAGE = 2
"""The command line or the command's input is wrong; argparse's own code for a usage error."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: 128 + SIGINT (2), what a shell reports for a process killed by the signal."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # `prog` is "illuminate-sync" for the command itself and "illuminate-sync run" for a subcommand
        print(f"illuminate-sync: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def positive_int(text: str) -> int:
    """A whole number of at least 1, in plain digits (`--workers`, `--batch-size`, `--assessment-id`, ...)."""
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
