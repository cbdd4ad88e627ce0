"""What the command line says to the person at the terminal, shared by `runbook` (:mod:`runbook_lib.cli`) and the
subcommands that live beside their feature (`runbook lint`, `runbook lock`): errors and progress lines on stderr
(stdout carries the result: a verdict, JSON, SARIF), and an input error raised for the CLI to report (exit 2).
Imports nothing heavy: `runbook lint` starts like a small tool."""
from __future__ import annotations

import sys
from typing import NoReturn


def print_error(msg: str) -> None:
    """``runbook: error: MSG`` on stderr."""
    print(f"runbook: error: {msg}", file=sys.stderr)


def print_progress(line: str) -> None:
    """One progress line on stderr, at once."""
    print(line, file=sys.stderr, flush=True)


def raise_input(msg: str) -> NoReturn:
    """Raise an InputError (exit 2) with ``msg``: a usage or input mistake, nothing touched."""
    from runbook_lib.errors import InputError

    raise InputError(msg)
