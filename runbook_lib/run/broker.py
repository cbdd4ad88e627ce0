"""One read of the containers' secrets per deployment state, shared by the runner with its phase kernels.

Every phase needs the deployment's secret values, to redact them from what it writes; phase 2 also judges
the secret files themselves (mode, owner, size). Reading a container's secrets mount goes through the
Engine API's archive endpoint, which costs the engine a process start per container: read again by the
runner and by every phase kernel, it would dominate a read-only run's cost on a large project.

So the runner reads them (:meth:`Context.learn_container_secrets`, at validation, and again after a phase
that changes the deployment) and serves what it read to the kernels it starts. The channel:

- a Unix socket in a directory only the runner's user can enter (mode 0700, made by ``tempfile.mkdtemp``),
  removed when the run ends;
- a client presents the run's random token first (compared in constant time), or gets nothing;
- the address and token reach the kernels only, in their environment (:data:`ENV`), never a file, a
  log line or a compose command;
- nothing is written to disk; the values travel as they would between two threads of one process.

A kernel uses a container's files from the broker only when the container is the one the runner read
(same id); any other container it reads itself, as before. Without a broker (a notebook opened by hand,
papermill on one notebook) every phase reads the engine itself.
"""
from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from runbook_lib.engine import FileEntry

ENV = "RUNBOOK_SECRET_BROKER"  # "<socket path> <token>", in the phase kernels' environment only
_TIMEOUT_S = 10.0
_PREFIX = "runbook-secrets-"


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the directories of brokers whose runner is gone (killed with SIGKILL, so it could not remove
    its own): this user's ``runbook-secrets-*`` directories whose socket no longer accepts a connection.
    A live broker (another run) answers and is left alone; a directory without a socket is removed only
    when older than a minute (a broker between mkdtemp and bind). They never held a secret on disk."""
    import time

    removed = []
    for d in Path(root or tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            if d.stat().st_uid != os.getuid() or not d.is_dir():
                continue
            sock = d / "broker.sock"
            if sock.exists():
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    try:
                        s.connect(str(sock))
                        continue  # a live broker
                    except (ConnectionRefusedError, FileNotFoundError):
                        pass
            elif time.time() - d.stat().st_mtime < 60:
                continue
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        except OSError:
            continue
    return removed


def _entry_dict(e: FileEntry) -> dict[str, Any]:
    return {"path": e.path, "kind": e.kind, "size": e.size, "mode": e.mode, "uid": e.uid, "gid": e.gid, "via": e.via,
            "content": None if e.content is None else base64.b64encode(e.content).decode("ascii")}


def _entry(d: dict[str, Any]) -> FileEntry:
    content = d.get("content")
    return FileEntry(path=d["path"], kind=d["kind"], size=d["size"], mode=d["mode"], uid=d["uid"], gid=d["gid"], via=d.get("via", "archive"),
                     content=None if content is None else base64.b64decode(content))


class SecretBroker:
    """The runner's side: holds the run's context, serves its secret values and container secret files."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.token = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._closed = False
        sweep_stale()
        self._dir = Path(tempfile.mkdtemp(prefix=_PREFIX))  # 0700
        self.path = self._dir / "broker.sock"
        self._sock: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(str(self.path))  # OSError when $TMPDIR makes the path longer than AF_UNIX allows
            os.chmod(self.path, 0o600)
            self._sock.listen(8)
        except OSError:
            # no broker then: every phase reads the engine itself, as a notebook opened by hand does
            self._sock.close()
            self._sock = None
            shutil.rmtree(self._dir, ignore_errors=True)
            return
        self._thread = threading.Thread(target=self._serve, name="runbook-secret-broker", daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        """What a kernel's environment needs to reach this broker (nothing when it could not start)."""
        return {ENV: f"{self.path} {self.token}"} if self._sock is not None else {}

    def refresh(self) -> None:
        """Read the containers' secrets again (after a phase that changed the deployment): the next kernels
        get the new containers' files. Values learned before stay learned (redaction only grows)."""
        with self._lock:
            self.ctx.state.container_secret_files = None
            self.ctx.state.container_secret_errors.clear()
            self.ctx.state.container_secret_ids.clear()
            try:
                self.ctx.learn_container_secrets()
            except Exception:  # noqa: BLE001 - no engine now: the kernels read (and report) themselves
                self.ctx.state.container_secret_files = None

    def payload(self) -> bytes:
        with self._lock:
            files = self.ctx.state.container_secret_files
            ids = self.ctx.state.container_secret_ids
            return json.dumps({
                "values": list(self.ctx.secret_values.items()),
                "containers": None if files is None else {
                    name: {"id": ids.get(name, ""), "files": [_entry_dict(e) for e in entries.values()]}
                    for name, entries in files.items()},
            }).encode("utf-8")

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(_TIMEOUT_S)
                    token = conn.makefile("rb").readline().strip().decode("ascii", "replace")
                    if hmac.compare_digest(token, self.token):
                        conn.sendall(self.payload())
                except Exception:  # noqa: BLE001 - one bad client never stops the broker
                    continue

    def close(self) -> None:
        self._closed = True
        try:
            if self._sock is not None:
                self._sock.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "SecretBroker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def fetch() -> dict[str, Any] | None:
    """The kernel's side: what the runner read, or None when no broker is configured or it cannot be
    reached (the caller then reads the engine itself). ``containers``: {name: {"id", "files": {path:
    FileEntry}}}, or None when the runner could not read them."""
    address = os.environ.get(ENV, "")
    if not address or " " not in address:
        return None
    path, token = address.rsplit(" ", 1)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(_TIMEOUT_S)
            s.connect(path)
            s.sendall(token.encode("ascii") + b"\n")
            s.shutdown(socket.SHUT_WR)
            data = b"".join(iter(lambda: s.recv(1 << 16), b""))
        doc = json.loads(data)
    except (OSError, ValueError):
        return None
    containers = doc.get("containers")
    if containers is not None:
        containers = {name: {"id": c["id"], "files": {e["path"]: _entry(e) for e in c["files"]}}
                      for name, c in containers.items()}
    return {"values": [tuple(v) for v in doc.get("values", [])], "containers": containers}
