"""``hardening.non_root`` at run time: judged by the uid of the running processes.

The configured user (``user:`` / the image's USER, ``Config.User``) is who the container *starts* as. An
entrypoint may drop to an unprivileged user before the server starts (gosu, su-exec, setpriv: what the
official database images do), and a setuid binary could do the opposite. What the processes run as is the
fact: :func:`judge_running_user` judges the effective uid of the container's main process and everything it
started (:mod:`runbook_lib.engine.processes`), with the configured user beside it in the evidence.
``runbook lint`` (statically) can only judge the configured user: :func:`runbook_lib.lint.judges.judge_user`.
"""
from __future__ import annotations

from typing import Any

from runbook_lib.model.facts import ServiceFacts
from runbook_lib.lint.rules import Verdict

EXPECTED = "a non-root user (uid != 0)"
_SHOWN = 20  # processes listed in the evidence at most


def _configured(facts: ServiceFacts, who: tuple[int, int] | None) -> str:
    user = facts.user or "image default: root"
    return f"configured user {user!r}" + (f" (uid {who[0]})" if who else " (not resolved in /etc/passwd)")


def _names(procs: list[Any]) -> str:
    names = sorted({p.name for p in procs})
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def judge_running_user(facts: ServiceFacts, who: tuple[int, int] | None, reading: Any) -> Verdict:
    """hardening.non_root from ``reading`` (a :class:`~runbook_lib.engine.processes.ProcessReading` of a
    running container): FAIL when any process of the main process's tree runs as uid 0 (whatever the
    configured user says), PASS when every one runs as a non-zero uid (a configured root that the
    entrypoint dropped is named as such), ERROR when the processes could not be read or none was seen.
    ``who`` is the configured user's (uid, gid) from the container's /etc/passwd, for the evidence."""
    # uid/gid: the configured user's, as :func:`~runbook_lib.lint.judges.judge_user` gives them
    ev: dict[str, Any] = {"source": facts.source, "user": facts.user, "uid": who[0] if who else None,
                          "gid": who[1] if who else None,
                          "read": reading.via or "nothing read",
                          "processes": [p.evidence() for p in reading.processes[:_SHOWN]],
                          "process_count": len(reading.processes)}
    conf = _configured(facts, who)
    if reading.error or not reading.processes:
        why = reading.error or "no process seen"
        return Verdict("ERROR", EXPECTED, f"could not check: the running processes could not be read ({why}); {conf}", ev)
    root = [p for p in reading.processes if p.uid == 0]
    if root:
        return Verdict("FAIL", EXPECTED, f"{len(root)} of {len(reading.processes)} running processes run as uid 0 "
                                         f"({_names(root)}); {conf}", ev)
    uids = sorted({p.uid for p in reading.processes})
    dropped = "; the entrypoint drops privileges before the server starts" if who is None or who[0] == 0 else ""
    return Verdict("PASS", EXPECTED, f"every running process runs as uid {', '.join(map(str, uids))} "
                                     f"({_names(reading.processes)}); {conf}{dropped}", ev)
