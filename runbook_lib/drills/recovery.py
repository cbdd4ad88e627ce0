"""Recovery after a crash: undo what unrecovered drill journals name, wait until each dependency is ready,
and mark the journal ``recovered`` (``runbook recover``, and the drill guardian for one journal). The journal
is :mod:`runbook_lib.drills.journal`'s, the undo steps :mod:`runbook_lib.drills.undo`'s."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from runbook_lib.drills.journal import DrillError, Journal, find_journals
from runbook_lib.drills.undo import undo
from runbook_lib.engine import Engine
from runbook_lib.errors import RunbookError
from runbook_lib.results.records import utcnow


def recover(roots: Sequence[Path], *, engine: Engine | None = None, healthy_timeout: float = 120,
            progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Undo every unrecovered drill journal under ``roots`` (run directories or directories of them),
    wait until each dependency is ready again, and mark the journal ``recovered``. Returns one result
    per journal: ``{"journal", "dependency", "mode", "actions", "ready", "error"}``; ``error`` is None
    when the dependency is restored and ready."""
    progress = progress or (lambda _s: None)
    journals = find_journals(roots)
    if not journals:
        return []
    engine = engine or Engine()
    results = []
    for j in journals:
        results.append(recover_journal(engine, j, healthy_timeout=healthy_timeout, progress=progress))
    return results


def recover_journal(engine: Engine, j: Journal, *, healthy_timeout: float = 120, by: str = "runbook recover",
                    progress: Callable[[str], None] = lambda _s: None) -> dict[str, Any]:
    """Undo one unrecovered journal, wait until its dependency is ready, mark it ``recovered`` by ``by``
    (``runbook recover``, the guardian). Returns ``{"journal", "dependency", "mode", "actions", "ready",
    "error"}``; ``error`` is None when the dependency is restored and ready."""
    d = j.data
    res: dict[str, Any] = {"journal": str(j.path), "project": d.get("project"), "dependency": d.get("dependency"),
                           "mode": d.get("mode"), "state_before": j.state, "actions": [], "ready": False,
                           "error": None}
    try:
        if not d.get("containers") and not d.get("service"):
            raise DrillError(f"{j.path} names no container or service (state {j.state}); inspect it and restore by hand")
        j.event(f"{by}: restoring")
        res["actions"] = undo(engine, d)
        if d.get("mode") == "scale":
            from runbook_lib.engine.stack import wait_converged

            ok, states, _ = wait_converged(engine, d["stack"], [d["dependency"]], healthy_timeout)
            res["ready"] = ok
            if not ok:
                raise DrillError(f"{d['dependency']} was scaled back but has not converged after {healthy_timeout:.0f}s: "
                                 + states[d["dependency"]].describe())
        else:
            ok, views = engine.wait_ready(d["project"], [d["dependency"]], healthy_timeout)
            res["ready"] = ok
            if not ok:
                raise DrillError(f"{d['dependency']} was restored but is not ready after {healthy_timeout:.0f}s: "
                                 + ", ".join(f"{v.name} {v.state}/{v.health}" for v in views))
        j.event(f"recovered by {by}: " + ("; ".join(res["actions"]) or "nothing left to undo"),
                state="recovered", recovered_at=utcnow(), recover_actions=res["actions"], recovered_by=by)
        progress(f"recovered {d['dependency']} ({d['mode']}): {'; '.join(res['actions']) or 'nothing left to undo'}")
    except RunbookError as exc:
        res["error"] = str(exc)
        progress(f"could not recover {d.get('dependency')} from {j.path}: {exc}")
    return res
