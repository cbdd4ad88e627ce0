"""The processes running in a container, with the uid each one runs as (phase 2's ``hardening.non_root``).

The configured user (``Config.User``) says who the container starts as; many images start as root and
drop to an unprivileged user in their entrypoint (gosu, su-exec, setpriv) before the server starts, as the
official database images do. What runs is what counts: the container's main process (``State.Pid``) and
every process it started, each with its effective uid. Read through /proc when the engine runs on this
host (:func:`runbook_lib.engine.procfs.processes`: microseconds, the container's cgroup checked), else
through ``docker top`` (the engine runs ``ps`` on its host), keeping the main process's tree only, so a
``docker exec`` (a healthcheck) running as another user does not count. Names only: never the command
line, which may hold a credential.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runbook_lib.engine.containers import ContainerView

TOP_ARGS = "-o pid,ppid,uid,comm"


@dataclass
class Process:
    pid: int
    ppid: int
    uid: int  # effective uid
    name: str

    def evidence(self) -> dict[str, Any]:
        return {"pid": self.pid, "uid": self.uid, "name": self.name}


@dataclass
class ProcessReading:
    """What was read of a container's processes: the processes (empty when it is not running), how
    (``via``: "procfs" or "docker top"), and why nothing could be read (``error``)."""

    processes: list[Process] = field(default_factory=list)
    via: str = ""
    error: str = ""
    running: bool = True


def tree(rows: list[Process], root: int) -> list[Process]:
    """``root`` and its descendants among ``rows`` (all rows when ``root`` is not among them)."""
    if not any(p.pid == root for p in rows):
        return rows
    keep, grew = {root}, True
    while grew:
        more = {p.pid for p in rows if p.ppid in keep} - keep
        keep |= more
        grew = bool(more)
    return [p for p in rows if p.pid in keep]


def _from_top(top: dict[str, Any]) -> list[Process]:
    titles = [t.upper() for t in top.get("Titles") or []]
    col = {name: titles.index(name) for name in ("PID", "PPID", "UID") if name in titles}
    if len(col) < 3:
        raise ValueError(f"docker top gave columns {titles}, not PID, PPID and UID")
    out = []
    for row in top.get("Processes") or []:
        rest = [v for i, v in enumerate(row) if i not in col.values()]
        out.append(Process(int(row[col["PID"]]), int(row[col["PPID"]]), int(row[col["UID"]]), " ".join(rest)))
    return out


def container_processes(engine: Any, view: ContainerView) -> ProcessReading:
    """The processes of a container's main process tree, each with its effective uid (see the module
    docstring). A stopped container has none (``running`` False); a read that failed says why in
    ``error``."""
    if view.state not in ("running", "paused") or view.pid <= 0:  # stopped or restarting (a crash loop): none to judge
        return ProcessReading(running=False, error=f"the container is {view.state or 'not running'}")
    from runbook_lib.engine import procfs

    if engine.procfs_allowed():
        try:
            rows = procfs.processes(view.pid, view.id)
            return ProcessReading([Process(*r) for r in rows], via="procfs")
        except procfs.Unavailable:
            pass
    try:
        rows = tree(_from_top(engine.api.top(view.id, ps_args=TOP_ARGS)), view.pid)
    except Exception as exc:  # noqa: BLE001 - an engine or parse failure is what the record says
        return _stopped_meanwhile(engine, view) or ProcessReading(error=f"docker top {view.name} {TOP_ARGS}: {exc}")
    if not rows:  # its main process ended between the inspect and the read (a crash loop): say so
        return _stopped_meanwhile(engine, view) or ProcessReading(via="docker top")
    return ProcessReading(rows, via="docker top")


def _stopped_meanwhile(engine: Any, view: ContainerView) -> ProcessReading | None:
    """The reading of a container that stopped or began restarting since ``view`` was read, as if it had been
    seen so; None when it is still running (its main process the same or not)."""
    try:
        now = engine.container(view.id)
    except Exception:  # noqa: BLE001
        now = view
    if now.state not in ("running", "paused"):
        return ProcessReading(running=False, error=f"the container is {now.state or 'not running'}")
    if now.pid != view.pid:
        return ProcessReading(running=False, error=f"the container restarted while it was read (main process "
                                                   f"{view.pid}, now {now.pid})")
    return None
