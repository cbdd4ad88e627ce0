"""The hand-written truth about each real-world application, and how a run is held against it.

``<app>/expected-problems.txt``: every FAIL or ERROR a correct runbook gives on the application, found by reading
its files (compose file, the images' documented behaviour), one per line::

    PHASE CHECK_ID TARGET  reason, in a few words

PHASE is the phase's number (``02`` for ``02_secrets_security``), TARGET the service (as :func:`service_of`
writes it). ``#`` starts a comment.

``<app>/known-gaps.txt``: where this checkout's runbook is known to disagree with that truth, each with the
issue that explains it; ``+`` a FAIL/ERROR the runbook gives that is not a true problem, ``-`` a true problem it
misses::

    + PHASE CHECK_ID TARGET  what is wrong

A gap that no longer shows is itself reported (delete its line), so the file only ever lists live gaps.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

BAD = ("FAIL", "ERROR")


@dataclass(frozen=True, order=True)
class Finding:
    phase: str   # "02"
    check: str   # "hardening.memory_limit"
    target: str  # the service, "db"

    def __str__(self) -> str:
        return f"{self.phase} {self.check} {self.target}"


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            yield n, line


def load_truth(path: Path) -> dict[Finding, str]:
    """{finding: reason} from an expected-problems file; a malformed line raises ValueError naming it."""
    out: dict[Finding, str] = {}
    for n, line in _lines(path):
        parts = line.split(None, 3)
        if len(parts) < 4 or not re.fullmatch(r"\d\d", parts[0]):
            raise ValueError(f"{path}:{n}: expected 'PHASE CHECK_ID TARGET reason', got {line!r}")
        out[Finding(*parts[:3])] = parts[3]
    return out


def load_gaps(path: Path) -> dict[Finding, tuple[str, str]]:
    """{finding: ("+" or "-", reason)} from a known-gaps file (absent: none)."""
    out: dict[Finding, tuple[str, str]] = {}
    if not path.exists():
        return out
    for n, line in _lines(path):
        parts = line.split(None, 4)
        if len(parts) < 5 or parts[0] not in "+-" or not re.fullmatch(r"\d\d", parts[1]):
            raise ValueError(f"{path}:{n}: expected '+|- PHASE CHECK_ID TARGET reason', got {line!r}")
        out[Finding(*parts[1:4])] = (parts[0], parts[4])
    return out


def service_of(target: str, project: str) -> str:
    """The name a record's target stands for, without the project's prefix: ``<project>-db-1`` and ``db`` are
    ``db``, ``<project>_db_data`` is ``db_data``, the project itself is ``project``; spaces become ``_`` (a drill
    endpoint ``wordpress health`` is ``wordpress_health``)."""
    if target == project:
        return "project"
    m = re.fullmatch(re.escape(project) + r"[-_](.+?)(?:[-_]\d+)?", target)
    return (m.group(1) if m else target).replace(" ", "_")


def findings(records: Iterable[dict], project: str) -> set[Finding]:
    """The FAIL and ERROR records of a run, as findings."""
    return {Finding(r["phase"][:2], r["id"], service_of(r["target"], project)) for r in records if r["status"] in BAD}


def crashes(records: Iterable[dict]) -> list[str]:
    """Records of a check that raised (the phase session records the traceback) or of a phase that broke."""
    return [f"{r['phase']} {r['id']} {r['target']}: {r['actual']}" for r in records
            if r.get("evidence", {}).get("traceback")
            or (r["id"] in ("runner.phase", "runner.undeclared_check") and r["status"] in BAD)]


def disagreements(got: set[Finding], truth: dict[Finding, str], gaps: dict[Finding, tuple[str, str]],
                  phases: Iterable[str]) -> list[str]:
    """Every difference between a run's findings and the truth (as corrected by the live known gaps), within
    the phases that ran. Empty when the run says exactly the truth."""
    ran = set(phases)
    truth = {f: why for f, why in truth.items() if f.phase in ran}
    gaps = {f: g for f, g in gaps.items() if f.phase in ran}
    out = []
    for f in sorted(got - set(truth) - {g for g, (kind, _) in gaps.items() if kind == "+"}):
        out.append(f"FAIL/ERROR that is not a true problem of the application: {f}")
    for f in sorted(set(truth) - got - {g for g, (kind, _) in gaps.items() if kind == "-"}):
        out.append(f"true problem not reported: {f} ({truth[f]})")
    for f, (kind, why) in sorted(gaps.items()):
        if (kind == "+") != (f in got):
            out.append(f"known gap no longer seen, delete it from known-gaps.txt: {kind} {f} ({why})")
    return out
