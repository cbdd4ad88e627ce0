"""The one boundary between the docker SDK and the rest of runbook: every SDK or transport error raised by an
:class:`~runbook_lib.engine.client.Engine` call passes through :func:`sdk_call` or :func:`wrap_error` and
leaves as a :class:`~runbook_lib.errors.RunbookError` (``raise ... from exc``), classified by its type and
HTTP status, never by its message.

Exception tree (the part this module adds)::

    RunbookError
    ├── EnvironmentProblem
    │   └── EngineUnavailable   the engine did not answer (refused, reset, no socket, read timeout)
    └── EngineError             the engine answered with an error; ``status_code`` is its HTTP status
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import requests.exceptions

from runbook_lib.errors import EngineUnavailable, RunbookError


class EngineError(RunbookError):
    """An engine call failed in a way the run cannot continue past (wraps docker SDK errors).
    ``status_code`` is the engine's HTTP status (404: no such object, 409: conflict), None without one."""

    status_code: int | None = None


def transport_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) is the engine not answering: a refused or reset connection, a
    missing socket, a read timeout. The docker SDK raises these as ``DockerException`` around a
    ``requests`` error, so the chain of causes is walked, by type only."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def wrap_error(exc: Exception, what: str) -> RunbookError:
    """A docker SDK or transport error as a RunbookError: :class:`EngineUnavailable` when the engine did
    not answer, :class:`EngineError` (with the HTTP status the engine gave, if any) otherwise."""
    if transport_failure(exc):
        return EngineUnavailable(f"the Docker engine stopped answering while {what}: {exc}")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    err = EngineError(f"engine call failed while {what}: {exc}")
    err.status_code = status
    return err


@contextlib.contextmanager
def sdk_call(what: str) -> Iterator[None]:
    """Where docker SDK and transport errors become RunbookErrors, naming ``what`` the call was doing.
    RunbookErrors raised inside pass through unchanged."""
    try:
        yield
    except RunbookError:
        raise
    except Exception as exc:  # noqa: BLE001 - wrapped, never swallowed
        raise wrap_error(exc, what) from exc
