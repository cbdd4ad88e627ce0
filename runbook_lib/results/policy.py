"""From check records to a GO / NO-GO verdict, by an explicit policy (contract: docs/design.md, "the verdict").

Records are never rewritten: a waiver does not change a record's status. The policy is applied once per
run, by :func:`evaluate`, and its outcome is written as the run's ``verdict.json``
(:mod:`runbook_lib.results.verdict`); everything that shows a verdict reads that file.

Blocking: a FAIL whose severity is in ``policy.blocking_severities`` (default critical and high) and no
valid waiver covers. Uncertainty blocks too: an ERROR (evidence could not be gathered) of any severity,
and a SKIP of a blocking severity or of a check the policy lists as required. INFO records (facts) never
block and never count as PASS. No judged record at all is NO-GO.

Waivers cover a matching FAIL or WARN while they are valid on the run's date (not the date someone
re-renders the report: a verdict must be reproducible). An expired waiver covers nothing and is listed
as expired; one that matches no FAIL or WARN is listed as stale.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import date

from runbook_lib.params.sections import Policy, Waiver
from runbook_lib.results.records import STATUSES, CheckRecord

WAIVABLE = ("FAIL", "WARN")
JUDGED = ("PASS", "FAIL", "WARN", "ERROR", "SKIP")  # statuses that are a judgement (INFO is a fact)


def ref(r: CheckRecord) -> str:
    """How a record is named in blockers and waivers: ``check.id@target``."""
    return f"{r.id}@{r.target}"


def waiver_id(w: Waiver, index: int) -> str:
    """A waiver's name in the report: its own ``id`` or ``W-<position in the file, from 1>``."""
    return w.id or f"W-{index + 1}"


@dataclass
class WaiverOutcome:
    """What the waivers did to a run's records (records themselves are untouched)."""

    applied: list[tuple[str, Waiver, list[str]]] = field(default_factory=list)  # id, waiver, refs it covers
    expired: list[tuple[str, Waiver, list[str]]] = field(default_factory=list)  # id, waiver, refs it would cover
    stale: list[tuple[str, Waiver]] = field(default_factory=list)
    covering: dict[str, tuple[str, Waiver]] = field(default_factory=dict)  # ref -> (id, waiver) covering it

    def note(self, r: CheckRecord) -> str:
        """"waived by W-1 until 2027-03-01", or "" when no valid waiver covers the record."""
        hit = self.covering.get(ref(r))
        return f"waived by {hit[0]} until {hit[1].expires.isoformat()}" if hit else ""


@dataclass
class Decision:
    verdict: str
    blockers: list[CheckRecord] = field(default_factory=list)
    waived: list[CheckRecord] = field(default_factory=list)
    rationale: str = ""
    waivers: WaiverOutcome = field(default_factory=WaiverOutcome)

    @property
    def go(self) -> bool:
        return self.verdict == "GO"


def is_required(r: CheckRecord, policy: Policy) -> bool:
    return any(fnmatch.fnmatchcase(r.id, pat) for pat in policy.required_checks)


def is_blocking(r: CheckRecord, policy: Policy) -> bool:
    """Whether a record blocks when no waiver covers it."""
    if r.status == "ERROR":
        return True
    if r.status == "FAIL":
        return r.severity in policy.blocking_severities
    if r.status == "SKIP":
        return r.severity in policy.blocking_severities or is_required(r, policy)
    return False


def apply_waivers(records: list[CheckRecord], waivers: list[Waiver], on: date) -> WaiverOutcome:
    """Which records each waiver covers, as of ``on``. A record is covered by the first valid waiver
    that matches it; the records are not changed."""
    outcome = WaiverOutcome()
    for i, w in enumerate(waivers):
        wid = waiver_id(w, i)
        hits = [r for r in records if r.status in WAIVABLE and w.matches(r.id, r.target)]
        refs = [ref(r) for r in hits]
        if not hits:
            outcome.stale.append((wid, w))
        elif w.expires < on:
            outcome.expired.append((wid, w, refs))
        else:
            outcome.applied.append((wid, w, refs))
            for x in refs:
                outcome.covering.setdefault(x, (wid, w))
    return outcome


def effective_status(r: CheckRecord, outcome: WaiverOutcome) -> str:
    """The status a record counts as: WAIVED when a valid waiver covers it, else its own."""
    return "WAIVED" if ref(r) in outcome.covering else r.status


def tally(records: list[CheckRecord], outcome: WaiverOutcome) -> dict[str, int]:
    out = {s: 0 for s in STATUSES}
    for r in records:
        out[effective_status(r, outcome)] += 1
    return out


def decide(records: list[CheckRecord], policy: Policy, outcome: WaiverOutcome | None = None) -> Decision:
    """Apply the policy to records and what the waivers cover. The rationale says why, from the data."""
    outcome = outcome or WaiverOutcome()
    judged = [r for r in records if r.status in JUDGED]
    if not judged:
        return Decision("NO-GO", rationale="No check was judged: nothing supports a GO.", waivers=outcome)
    waived = [r for r in records if ref(r) in outcome.covering]
    blockers = [r for r in records if ref(r) not in outcome.covering and is_blocking(r, policy)]
    c = tally(records, outcome)
    words = ", ".join(f"{n} {s}" for s, n in c.items() if n)
    notes = []
    if waived:
        notes.append(f"{len(waived)} problem(s) accepted by {len(outcome.applied)} valid waiver(s)")
    if outcome.expired:
        notes.append(f"{len(outcome.expired)} expired waiver(s) not applied: "
                     + ", ".join(f"{wid} {w.check}{'@' + w.target if w.target else ''} (expired {w.expires})"
                                 for wid, w, _ in outcome.expired))
    extra = (" " + "; ".join(notes) + ".") if notes else ""
    if blockers:
        kinds = sorted({r.status for r in blockers})
        return Decision("NO-GO", blockers, waived,
                        f"{len(blockers)} blocking record(s) ({'/'.join(kinds)}) among {len(records)}: {words}. "
                        f"Blocking severities: {', '.join(policy.blocking_severities)}; ERROR always blocks.{extra}",
                        outcome)
    return Decision("GO", [], waived, f"No blocking record among {len(records)}: {words}.{extra}", outcome)


def evaluate(records: list[CheckRecord], policy: Policy, on: date) -> Decision:
    """Load the policy's waivers, judge them as of ``on`` (the run's date) and decide. The one function
    behind every verdict of a run (the preflight gate, verdict.json)."""
    from runbook_lib.params import load_waivers

    waivers = load_waivers(policy.waivers_file) if policy.waivers_file else []
    return decide(records, policy, apply_waivers(records, waivers, on))
