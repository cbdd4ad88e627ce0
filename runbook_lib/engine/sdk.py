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
import struct
import time
from typing import Any, Iterator

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


def exec_output(api: Any, exec_id: str, timeout: float | None, demux: bool = True) -> tuple[int | None, bytes, bytes]:
    """Start the exec ``exec_id`` (created attached, no TTY) and return its (exit code, stdout, stderr), read whole;
    with ``demux`` false, (exit code, stdout and stderr as they came, b"").

    Not the SDK's ``exec_start``: it asks the engine to upgrade the connection and then reads the frames from the
    socket under the HTTP response, so output that arrived in the same read as the response's headers (taken into
    http.client's buffer) is lost, and a fast command returns nothing with exit status 0 (docker/docker-py#2042,
    #3332; more often the busier the machine): a secret file would read as empty, a verification as silent.
    Without the upgrade header the engine answers 200 and streams until it closes the connection; reading through
    the response keeps what was buffered. Only public attributes of the SDK's APIClient (a requests Session) are
    used: ``base_url``, ``api_version``, ``post``."""
    url = f"{api.base_url}/v{api.api_version}/exec/{exec_id}/start"
    res = api.post(url, json={"Detach": False, "Tty": False}, stream=True, timeout=timeout)
    try:
        if res.status_code >= 400:
            err = EngineError(f"the engine refused to start exec {exec_id[:12]}: HTTP {res.status_code}: "
                              f"{res.text.strip()[:300]}")
            err.status_code = res.status_code
            raise err
        data = res.raw.read()
    finally:
        res.close()
    out, errs, i = bytearray(), bytearray(), 0
    while i + 8 <= len(data):  # frames: stream (1 stdout, 2 stderr), 3 zero bytes, length (big-endian uint32)
        kind, n = struct.unpack_from(">BxxxL", data, i)
        (errs if kind == 2 and demux else out).extend(data[i + 8:i + 8 + n])
        i += 8 + n
    if i != len(data):
        raise EngineError(f"the output of exec {exec_id[:12]} ended inside a frame ({len(data)} bytes read)")
    return _exit_code(api, exec_id), bytes(out), bytes(errs)


def _exit_code(api: Any, exec_id: str, wait_s: float = 5.0) -> int | None:
    """The exec's exit code. Its output ends when the process does, but the engine records the exit a moment
    later: until then the inspect says Running with no code, so ask again for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        state = api.exec_inspect(exec_id)
        if not state.get("Running") or state.get("ExitCode") is not None or time.monotonic() > deadline:
            return state.get("ExitCode")
        time.sleep(0.05)
