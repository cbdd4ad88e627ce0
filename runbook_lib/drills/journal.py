"""A drill's journal: the file that says what a drill broke, written *before* the fault is applied and updated
at every step, so that whoever finds it (the drill itself, its guardian, ``runbook recover``, the next
preflight) can tell whether the deployment may still be broken and undo it.

``<run_dir>/drills/<dependency>-<UTC time>.journal.json`` holds the project, the dependency, the mode, each
container with its networks and aliases (mode ``scale``: the stack, the swarm service and the replicas it had),
who broke it (pid, host, DOCKER_HOST) and when. Each journal is also copied to the deployment's state directory
(:mod:`runbook_lib.state`), so a later run finds it whatever ``--output`` it is given.

Journal states: ``applying`` → ``active`` → ``restoring`` → ``restored`` (by the drill itself) or
``recovered`` (by ``runbook recover`` or the guardian). Anything but the last two means the deployment may
still be broken.

This module is the drills' ground floor: the fault (:mod:`.faults`), its undoing (:mod:`.undo`), recovery
(:mod:`.recovery`) and the guardian (:mod:`.guardian`) all read and write journals through it.

Exception tree::

    RunbookError
    └── DrillError          a drill cannot start (no running container, an unrecovered journal) or
                            cannot restore (the container is gone): run ``runbook recover``
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

from runbook_lib.errors import RunbookError
from runbook_lib.results.records import utcnow

JOURNAL_SCHEMA = 1
DRILLS_DIR = "drills"
DONE_STATES = ("restored", "recovered")


class DrillError(RunbookError):
    """A drill could not start, or could not restore what it broke (see ``runbook recover``)."""


def journal_dir(run_dir: Path | None, params_source: Path | None = None) -> Path:
    """Where a run's drill journals (and timelines) go: ``<run_dir>/drills``, or, for a notebook run
    without a run directory, ``outputs/interactive/drills`` in the directory of the parameters file
    ``params_source`` (:func:`runbook_lib.params.core.default_outputs`: the user's project, never the
    installed package), where ``runbook recover`` and the next preflight look."""
    if run_dir:
        return Path(run_dir) / DRILLS_DIR
    from runbook_lib.params import default_outputs

    return default_outputs(params_source) / "interactive" / DRILLS_DIR


class Journal:
    """One drill's journal file, rewritten atomically (temp file + rename) at every change."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    @classmethod
    def load(cls, path: Path) -> "Journal":
        try:
            return cls(path, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise DrillError(f"cannot read drill journal {path}: {exc}") from exc

    @property
    def state(self) -> str:
        return self.data.get("state", "unknown")

    @property
    def unrecovered(self) -> bool:
        return self.state not in DONE_STATES

    def write(self) -> None:
        """Write the journal to its path and to every copy it names (``copies``: the deployment's state
        directory, :mod:`runbook_lib.run.lock`), so whichever one is found and updated says the same."""
        for path in dict.fromkeys([self.path, *map(Path, self.data.get("copies", []))]):
            try:
                _write_json(path, self.data)
            except OSError:
                if path == self.path:
                    raise

    def refresh(self) -> None:
        """Take the file's content when another process (the guardian, `runbook recover`) marked it done."""
        try:
            disk = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if disk.get("state") in DONE_STATES and self.unrecovered:
            self.data = disk

    def event(self, what: str, state: str | None = None, **fields: Any) -> None:
        if state:
            self.data["state"] = state
        self.data.update(fields)
        self.data.setdefault("events", []).append({"at": utcnow(), "unix": round(time.time(), 3), "what": what})
        self.write()

    def describe(self) -> str:
        d = self.data
        return (f"{d.get('mode')} of {d.get('dependency')} ({d.get('project')}) started {d.get('broken_at') or d.get('created')} "
                f"by pid {d.get('pid')} on {d.get('host')}, state {self.state}")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def find_journals(roots: Iterable[Path], *, project: str | None = None, unrecovered_only: bool = True) -> list[Journal]:
    """Journals under each root, which may be a run directory (``root/drills/*``) or a directory of run
    directories (``root/*/drills/*``). Unreadable journals count as unrecovered (state ``unknown``)."""
    seen: set[Path | str] = set()
    out: list[Journal] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for pattern in (f"{DRILLS_DIR}/*.journal.json", f"*/{DRILLS_DIR}/*.journal.json"):
            for p in sorted(root.glob(pattern)):
                rp = p.resolve()
                if rp in seen:
                    continue
                seen.add(rp)
                try:
                    j = Journal.load(p)
                except DrillError:
                    j = Journal(p, {"state": "unknown", "project": project})
                if project and j.data.get("project") not in (project, None):
                    continue
                if j.data.get("id") in seen:  # the same drill's copy in the state directory (or the other way)
                    continue
                seen.add(j.data.get("id") or rp)
                if unrecovered_only and not j.unrecovered:
                    continue
                out.append(j)
    return out
