"""Where runbook keeps state on this machine, per engine and project, and whether a process of this host lives.

The state directory of a deployment (a compose project or a swarm stack on one engine)::

    <state root>/engines/<engine id>/<project>/
        lock.json, history.jsonl   the deploy lock (:mod:`runbook_lib.run.lock`)
        drills/                    a copy of every drill journal of the project (:mod:`runbook_lib.drills`)

The state root is ``$RUNBOOK_STATE_DIR``, else ``$XDG_STATE_HOME/runbook``, else ``~/.local/state/runbook``.
The engine id is derived from the engine's own ``docker info`` (ID, name, data root), so every runner reaching
the same engine (any spelling of DOCKER_HOST) lands in the same directory, and two engines of one host (which
share the daemon key, hence the ID) do not.

Both the deploy lock and the drill guardian need these, and neither is above the other, so they live here,
below both; this module imports nothing of runbook but its errors.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from runbook_lib.errors import RunbookError


def state_root() -> Path:
    """Where runbook keeps state shared by every run on this machine (see the module docstring)."""
    if os.environ.get("RUNBOOK_STATE_DIR"):
        return Path(os.environ["RUNBOOK_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runbook"


def engine_key(engine: Any) -> str:
    """The engine's identity as a directory name: its host name, then a digest of ``docker info``'s ID, Name
    and DockerRootDir (the ID alone is the daemon's key file, which two engines of one host share; the data
    root tells them apart). When the engine does not answer, its endpoint (DOCKER_HOST) instead: such a run
    fails on the engine anyway, and must not fail here first."""
    try:
        info = engine.info()
        ident = "|".join(str(info.get(k) or "") for k in ("ID", "Name", "DockerRootDir"))
        key = f"{info.get('Name') or 'engine'}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"
    except RunbookError:
        key = "endpoint-" + (os.environ.get("DOCKER_HOST") or "default")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", key)[:80]


def engine_dir(engine: Any) -> Path:
    """The state directory of one engine: one subdirectory per project."""
    d = state_root() / "engines" / engine_key(engine)
    d.mkdir(parents=True, exist_ok=True)
    endpoint = d / "endpoint.txt"  # for a person reading the directory: which DOCKER_HOST reached it last
    with contextlib.suppress(OSError):
        endpoint.write_text((os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock") + "\n", encoding="utf-8")
    return d


def state_dir(engine: Any, project: str) -> Path:
    """The state directory of a deployment: its lock, its history, its drill journals."""
    d = engine_dir(engine) / project
    d.mkdir(parents=True, exist_ok=True)
    return d


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs under ``pid`` (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
