"""A lint baseline: the findings a project already had, so that only new ones fail (how a large existing
project adopts a scanner; semgrep's and checkov's baselines work the same way).

A finding's fingerprint is the SHA-256 of its rule, its target (the service, secret or volume) and its
finding text, with the project's directory written as ``.``. It holds no line number: moving a service, or
adding lines above it, keeps the baseline valid; changing what is wrong (another port published, another
variable with a literal credential) makes a new finding. Finding texts are already redacted (a credential
appears as ``[REDACTED sha256:...]``), so a baseline file holds no secret value and may be committed.

``--write-baseline FILE`` writes every current finding (FAIL and WARN); ``--baseline FILE`` marks each
finding ``evidence["baseline"]`` = ``"unchanged"`` (in the baseline: it no longer decides the exit code) or
``"new"``, and counts the baseline's findings that are gone.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.errors import InputError

if TYPE_CHECKING:
    from runbook_lib.lint.result import LintResult
    from runbook_lib.results.records import CheckRecord

SCHEMA = 1
#: The statuses a baseline records: findings, not facts (INFO) nor failures to look (ERROR: never accepted).
BASELINED = ("FAIL", "WARN")


def fingerprint(r: CheckRecord, project_dir: Path) -> str:
    text = " ".join(str(r.actual).replace(str(project_dir), ".").split())
    return hashlib.sha256(f"{r.id}\0{r.target}\0{text}".encode()).hexdigest()[:24]


def _findings(result: LintResult) -> list[CheckRecord]:
    """The records a baseline holds: FAIL and WARN, not those an inline suppression covers (removing the
    comment must bring the finding back), nor the suppressions' own findings."""
    return [r for r in result.records if r.status in BASELINED and not r.evidence.get("suppressed")
            and not r.id.startswith("lint.suppression")]


def write_baseline(result: LintResult, path: Path) -> int:
    """Write every current finding of ``result`` to ``path``; returns how many."""
    from runbook_lib.results.records import utcnow

    project_dir = result.files[0].parent
    rows = sorted(({"fingerprint": fingerprint(r, project_dir), "id": r.id, "target": r.target,
                    "severity": r.severity, "status": r.status} for r in _findings(result)),
                  key=lambda d: (d["id"], d["target"], d["fingerprint"]))
    doc = {"schema": SCHEMA, "tool": "runbook lint", "written": utcnow(),
           "files": [f.name for f in result.files], "findings": rows}
    try:
        path.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the baseline ({exc.strerror})") from exc
    return len(rows)


def read_baseline(path: Path) -> Counter:
    """The fingerprints of a baseline file (a multiset). InputError naming the file when it is not one."""
    hint = "write one with: runbook lint FILE... --write-baseline " + str(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: baseline file not found; {hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a runbook lint baseline ({exc}); {hint}") from None
    rows = doc.get("findings") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("fingerprint"), str)
                                             for r in rows):
        raise InputError(f'{path}: not a runbook lint baseline (expected an object with a "findings" list of '
                         f'{{"fingerprint": ...}}); {hint}')
    if doc.get("schema") != SCHEMA:
        raise InputError(f"{path}: baseline schema {doc.get('schema')!r}, this runbook reads {SCHEMA}; {hint}")
    return Counter(r["fingerprint"] for r in rows)


def apply_baseline(result: LintResult, known: Counter) -> int:
    """Mark each finding ``unchanged`` (in the baseline) or ``new``; returns how many of the baseline's
    findings are gone (fixed since it was written)."""
    left = Counter(known)
    project_dir = result.files[0].parent
    for r in _findings(result):
        fp = fingerprint(r, project_dir)
        if left[fp] > 0:
            left[fp] -= 1
            r.evidence["baseline"] = "unchanged"
        else:
            r.evidence["baseline"] = "new"
    return sum(left.values())
