"""The run's one verdict: ``verdict.json`` (contract: docs/design.md, "the verdict file").

The policy (waivers, severities, required checks) is applied exactly once per run, by :func:`judge`, over
the records every phase wrote (which nothing rewrites). The sign-off phase writes the file; when it did
not run (``--phase`` subsets, an interrupted run) the runner writes it with the same function. The report
banner, the sign-off section, summary.json, summary.md, junit.xml and the exit code all read this file.

Layout (schema 1)::

    {"schema": 1, "project", "verdict": "GO"|"NO-GO", "rationale",
     "started", "decided_at", "judged_on": "YYYY-MM-DD",          # the date waivers are judged on
     "policy": {"blocking_severities", "required_checks", "severity_overrides", "waivers_file"},
     "records": N, "counts": {PASS, FAIL, WARN, ERROR, SKIP, INFO, WAIVED},   # WAIVED: FAIL/WARN a waiver covers
     "blockers":  [{"ref", "id", "target", "phase", "status", "severity", "actual"}],
     "waived":    [{"ref", "id", "target", "phase", "status", "severity", "waiver", "expires", "note"}],
     "waivers":   [{"id", "check", "target", "owner", "approver", "justification", "expires", "state", "refs"}],
     "not_verified": [{"ref", "id", "target", "phase", "status", "actual"}],   # every SKIP and ERROR
     "degraded":  [{"ref", "target", "line"}],   # FAILs saying production is degraded now (after a drill)
     "categories": [{"name", "status", "counts", "checks", "info"}],
     "phases": {"00_preflight": {"records", "counts", "blockers"}},
     "targets_per_check": {"prod.env": 5, ...},   # records per check id: "FAIL on 3 of 5 targets"
     "inputs": {"results/00_preflight.json": "<sha256>", ...}}
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from runbook_lib.results import registry
from runbook_lib.params.sections import Policy, Signoff
from runbook_lib.results.policy import Decision, WaiverOutcome, effective_status, evaluate, ref, tally
from runbook_lib.results.records import HEADLINE_ORDER, SCHEMA, CheckRecord, headline, read_records, utcnow

VERDICT_FILE = "verdict.json"
RUN_FILE = "run.json"
ONLY_WHEN_PRESENT = ("Run integrity", "Sign-off", "Static audit")
# The worst status first: a category's status is the headline of its records (records.headline: the worst
# judged one; SKIP only when nothing in it was judged).
WORST_FIRST = tuple(s for s in HEADLINE_ORDER if s != "INFO")


def run_started(run_dir: Path) -> str:
    """The run's start time (run.json, written by the runner; else the directory name's UTC stamp)."""
    try:
        return json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))["started"]
    except (OSError, ValueError, KeyError):
        try:
            stamp = datetime.strptime(run_dir.name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
        except ValueError:
            return utcnow()


def results_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "results").glob("*.json"))


def load_records(run_dir: Path) -> list[CheckRecord]:
    """Every record of the run, phase by phase, in the order the phases wrote them."""
    return [r for p in results_files(run_dir) for r in read_records(p)]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _row(r: CheckRecord, **extra: Any) -> dict[str, Any]:
    return {"ref": ref(r), "id": r.id, "target": r.target, "phase": r.phase, "status": r.status,
            "severity": r.severity, "actual": r.actual[:500], **extra}


def degraded(records: list[CheckRecord]) -> list[dict[str, Any]]:
    """The FAILs whose evidence says production is degraded now (``evidence["degraded"]``, the one line
    :mod:`runbook_lib.phases.smoke.aftermath` writes after a drill): what the console and the report's
    first screen say before anything else."""
    return [{"ref": ref(r), "target": r.target, "line": str(r.evidence["degraded"])}
            for r in records if r.status == "FAIL" and r.evidence.get("degraded")]


class Judging(Protocol):
    """What a verdict reads of the parameters: the project's name, ``policy`` and ``signoff``'s categories (a
    :class:`~runbook_lib.params.Params` is one; the verdict never reads anything else of it)."""

    project: str
    policy: Policy
    signoff: Signoff


def category_of(check_id: str, signoff: Signoff) -> str:
    """The verification-table row of a check: the parameters' own categories (``signoff.categories``,
    patterns) first, then the check's declaration."""
    import fnmatch

    for name, patterns in signoff.categories.items():
        if any(fnmatch.fnmatchcase(check_id, p) for p in patterns):
            return name
    return registry.category_of(check_id)


def _categories(records: list[CheckRecord], outcome: WaiverOutcome, signoff: Signoff) -> list[dict[str, Any]]:
    # The rows always shown (NOT VERIFIED when no judged record falls in them); the others appear only
    # when they hold a judged record (a crashed phase's runner.phase ERROR, a sign-off ERROR).
    names = list(signoff.categories) or [c for c in registry.CATEGORIES if c not in ONLY_WHEN_PRESENT]
    by: dict[str, list[CheckRecord]] = {n: [] for n in names}
    for r in records:
        by.setdefault(category_of(r.id, signoff), []).append(r)
    out = []
    for name, recs in by.items():
        judged = [r for r in recs if r.status != "INFO"]
        if not judged and name not in names:
            continue
        statuses = [effective_status(r, outcome) for r in judged]
        status = headline(statuses, "NOT VERIFIED")
        out.append({"name": name, "status": status, "counts": {s: statuses.count(s) for s in WORST_FIRST if s in statuses},
                    "checks": sorted({r.id for r in judged}), "info": len(recs) - len(judged)})
    return out


def _waivers(outcome: WaiverOutcome) -> list[dict[str, Any]]:
    rows = []
    for state, items in (("applied", outcome.applied), ("expired", outcome.expired)):
        for wid, w, refs in items:
            rows.append({"id": wid, **w.model_dump(mode="json", exclude={"id"}), "state": state, "refs": refs})
    for wid, w in outcome.stale:
        rows.append({"id": wid, **w.model_dump(mode="json", exclude={"id"}), "state": "stale", "refs": []})
    return sorted(rows, key=lambda x: int(x["id"][2:]) if x["id"][2:].isdigit() else 0)


def build(records: list[CheckRecord], decision: Decision, judging: Judging, *, started: str, on: date,
          inputs: dict[str, str]) -> dict[str, Any]:
    """The verdict document for a decision over ``records``."""
    o = decision.waivers
    phases: dict[str, dict[str, Any]] = {}
    blockers = {ref(r) for r in decision.blockers}
    for r in records:
        ph = phases.setdefault(r.phase, {"records": 0, "counts": {}, "blockers": 0})
        ph["records"] += 1
        s = effective_status(r, o)
        ph["counts"][s] = ph["counts"].get(s, 0) + 1
        ph["blockers"] += ref(r) in blockers
    pol = judging.policy
    return {
        "schema": SCHEMA, "project": judging.project, "verdict": decision.verdict, "rationale": decision.rationale,
        "started": started, "decided_at": utcnow(), "judged_on": on.isoformat(),
        "policy": {"blocking_severities": list(pol.blocking_severities), "required_checks": list(pol.required_checks),
                   "severity_overrides": dict(pol.severity_overrides),
                   "waivers_file": str(pol.waivers_file) if pol.waivers_file else None},
        "records": len(records), "counts": tally(records, o),
        "blockers": [_row(r) for r in decision.blockers],
        "waived": [_row(r, waiver=o.covering[ref(r)][0], expires=o.covering[ref(r)][1].expires.isoformat(),
                        note=o.note(r)) for r in decision.waived],
        "waivers": _waivers(o),
        "not_verified": [_row(r) for r in records if r.status in ("SKIP", "ERROR")],
        "degraded": degraded(records),
        "categories": _categories(records, o, judging.signoff),
        "phases": phases,
        "targets_per_check": dict(Counter(r.id for r in records)),
        "inputs": inputs,
    }


def judge(run_dir: Path, judging: Judging) -> dict[str, Any]:
    """Apply the policy to the run's records, once: the verdict document (not yet written)."""
    started = run_started(run_dir)
    on = date.fromisoformat(started[:10])
    records = load_records(run_dir)
    decision = evaluate(records, judging.policy, on)
    inputs = {str(p.relative_to(run_dir)): file_sha256(p) for p in results_files(run_dir)}
    return build(records, decision, judging, started=started, on=on, inputs=inputs)


def write(run_dir: Path, verdict: dict[str, Any]) -> Path:
    out = run_dir / VERDICT_FILE
    out.write_text(json.dumps(verdict, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return out


def read(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / VERDICT_FILE).read_text(encoding="utf-8"))


def current(run_dir: Path) -> dict[str, Any] | None:
    """The run's verdict file when it still describes the run's records (every results file has the
    digest it had when the verdict was made, and no results file was added or removed), else None."""
    try:
        v = read(run_dir)
    except (OSError, ValueError):
        return None
    now = {str(p.relative_to(run_dir)): file_sha256(p) for p in results_files(run_dir)}
    return v if v.get("inputs") == now else None


def grouped(rows: list[dict[str, Any]], v: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], int]]:
    """Rows of the verdict file (blockers, waived, not verified) grouped by check id: (id, its rows,
    how many records that check has in the run). The same problem on 80 containers is one entry."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["id"], []).append(row)
    total = v.get("targets_per_check") or {}
    return [(cid, rs, total.get(cid, len(rs))) for cid, rs in groups.items()]


def describe_group(cid: str, rows: list[dict[str, Any]], total: int, limit: int = 6) -> str:
    """``prod.env: FAIL on 80 of 80 targets (high): api, auth, ... and 74 more`` (one line)."""
    statuses = sorted({r["status"] for r in rows})
    names = ", ".join(r["target"] for r in rows[:limit]) + (f" and {len(rows) - limit} more" if len(rows) > limit else "")
    of = f"{len(rows)} of {total} target{'s' if total != 1 else ''}"
    return f"{cid}: {'/'.join(statuses)} on {of} ({rows[0]['severity']}): {names}"


def same_judgement(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Where two verdict documents disagree on the judgement (verdict, counts, blockers, waived,
    not-verified, waivers); [] when they agree."""
    # The policy's judgement only: the verification table's grouping (categories) is presentation, and a
    # newer toolkit may group differently without the archived verdict being any less true.
    keys = ("verdict", "counts", "records", "blockers", "waived", "not_verified", "waivers")
    return [k for k in keys if a.get(k) != b.get(k)]
