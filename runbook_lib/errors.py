"""Errors raised by runbook_lib.

A failing *check* is data (a record with status FAIL), never an exception. Exceptions are only for
"the run itself cannot go on", and each one carries what a person needs to act on it. Third-party
errors (docker SDK, httpx, subprocess, YAML) are wrapped at one boundary with ``raise ... from exc``;
none reaches a notebook cell raw.

Exception tree::

    RunbookError                      root; exit status 1 unless a subclass says otherwise
    ├── InputError                    bad parameters, files or arguments  -> exit 2
    │   ├── ParametersError           a parameters file: missing, malformed, unknown key, wrong type
    │   ├── ComposeConfigError        compose files that Compose itself refuses to resolve
    │   └── UnsafeRequestError        a destructive step asked for without its confirmation
    ├── EnvironmentProblem            the machine cannot run the runbook  -> exit 3
    │   ├── EngineUnavailable         no Docker engine answers
    │   └── ComposeNotFound           no Compose v2 CLI (v1 is refused)
    └── ComposeError                  a compose command failed: carries command, exit status, stderr
"""
from __future__ import annotations

from typing import Sequence


class RunbookError(Exception):
    """Root of every error runbook_lib raises on purpose."""

    exit_code = 1


class InputError(RunbookError):
    """Something the user gave us is wrong; nothing has been touched yet."""

    exit_code = 2


class ParametersError(InputError):
    """A parameters file is missing, malformed, or holds an unknown key or a wrong type."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{message}")


class ComposeConfigError(InputError):
    """Compose could not resolve the compose files (syntax, interpolation, unknown service...)."""

    def __init__(self, message: str, *, files: Sequence[str] = (), stderr: str = ""):
        self.files = list(files)
        self.stderr = stderr
        super().__init__(message)


class UnsafeRequestError(InputError):
    """A destructive step (volume removal...) was asked for without the explicit confirmation."""


class EnvironmentProblem(RunbookError):
    """The machine cannot run the runbook: no engine, no Compose v2..."""

    exit_code = 3


class EngineUnavailable(EnvironmentProblem):
    """No Docker engine answers on the configured endpoint."""


class ComposeNotFound(EnvironmentProblem):
    """No Compose v2 CLI: neither the `docker compose` plugin nor a v2 `docker-compose` binary."""


class ComposeError(RunbookError):
    """A compose command failed. Carries the command, its exit status and its stderr."""

    def __init__(self, command: Sequence[str], exit_status: int, stderr: str):
        self.command = list(command)
        self.exit_status = exit_status
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else "(no stderr)"
        super().__init__(f"`{' '.join(self.command)}` exited {exit_status}: {tail}")
