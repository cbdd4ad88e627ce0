"""From check records to a GO / NO-GO verdict, by an explicit policy.

Blocking: a FAIL whose severity is in ``policy.blocking_severities`` (default critical and high).
Uncertainty blocks too ("any uncertainty results in NO-GO"): an ERROR (evidence could not be
gathered) of any severity, and a SKIP of a blocking severity or of a check the policy lists as
required. No records at all is NO-GO.

Waivers turn a matching FAIL or WARN into WAIVED while they are valid on the run's date (not the
date someone re-renders the report: a verdict must be reproducible). An expired waiver does not
apply and is listed as expired; one that matches no problem is listed as stale.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from datetime import date

from .params import Policy, Waiver
from .records import CheckRecord, counts

WAIVABLE = ("FAIL", "WARN")


def ref(r: CheckRecord) -> str:
    """How a record is named in blockers and waivers: ``check.id@target``."""
    return f"{r.id}@{r.target}"


@dataclass
class WaiverOutcome:
    """What the waivers did to a run's records."""

    applied: list[tuple[Waiver, list[str]]] = field(default_factory=list)  # waiver, refs it waived
    expired: list[tuple[Waiver, list[str]]] = field(default_factory=list)  # waiver, refs it would have waived
    stale: list[Waiver] = field(default_factory=list)


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
    if r.status == "ERROR":
        return True
    if r.status == "FAIL":
        return r.severity in policy.blocking_severities
    if r.status == "SKIP":
        return r.severity in policy.blocking_severities or is_required(r, policy)
    return False


def apply_waivers(records: list[CheckRecord], waivers: list[Waiver], on: date) -> tuple[list[CheckRecord], WaiverOutcome]:
    """Return the records with valid waivers applied, and what each waiver did. A record already
    WAIVED keeps its original status in ``evidence.waiver.original_status``, so applying twice (a
    re-rendered report) gives the same result."""
    outcome = WaiverOutcome()
    out = list(records)
    for w in waivers:
        hits = [i for i, r in enumerate(out) if w.matches(r.id, r.target)
                and (r.status in WAIVABLE or r.status == "WAIVED")]
        if not hits:
            outcome.stale.append(w)
            continue
        refs = [ref(out[i]) for i in hits]
        if w.expires < on:
            outcome.expired.append((w, refs))
            for i in hits:  # an expired waiver never hides a problem, even one waived on an earlier render
                r = out[i]
                if r.status == "WAIVED":
                    original = r.evidence.get("waiver", {}).get("original_status", "FAIL")
                    ev = {k: v for k, v in r.evidence.items() if k != "waiver"}
                    out[i] = replace(r, status=original, evidence=ev)
            continue
        outcome.applied.append((w, refs))
        for i in hits:
            r = out[i]
            original = r.evidence.get("waiver", {}).get("original_status", r.status)
            ev = {**r.evidence, "waiver": {"original_status": original, "justification": w.justification,
                                           "owner": w.owner, "approver": w.approver, "expires": w.expires.isoformat()}}
            out[i] = replace(r, status="WAIVED", evidence=ev)
    return out, outcome


def decide(records: list[CheckRecord], policy: Policy, outcome: WaiverOutcome | None = None) -> Decision:
    """Apply the policy to records (waivers already applied). The rationale says why, from the data."""
    outcome = outcome or WaiverOutcome()
    if not records:
        return Decision("NO-GO", rationale="No check ran: nothing supports a GO.", waivers=outcome)
    blockers = [r for r in records if is_blocking(r, policy)]
    waived = [r for r in records if r.status == "WAIVED"]
    c = counts(records)
    tally = ", ".join(f"{n} {s}" for s, n in c.items() if n)
    notes = []
    if waived:
        notes.append(f"{len(waived)} problem(s) accepted by {len(outcome.applied)} valid waiver(s)")
    if outcome.expired:
        notes.append(f"{len(outcome.expired)} expired waiver(s) not applied: "
                     + ", ".join(f"{w.check}{'@' + w.target if w.target else ''} (expired {w.expires})" for w, _ in outcome.expired))
    extra = (" " + "; ".join(notes) + ".") if notes else ""
    if blockers:
        kinds = sorted({r.status for r in blockers})
        return Decision("NO-GO", blockers, waived,
                        f"{len(blockers)} blocking record(s) ({'/'.join(kinds)}) among {len(records)}: {tally}. "
                        f"Blocking severities: {', '.join(policy.blocking_severities)}; ERROR always blocks.{extra}",
                        outcome)
    return Decision("GO", [], waived, f"No blocking record among {len(records)}: {tally}.{extra}", outcome)


def evaluate(records: list[CheckRecord], policy: Policy, on: date) -> tuple[list[CheckRecord], Decision]:
    """Load the policy's waivers, apply them as of ``on`` (the run's date) and decide. The one
    function behind the runner's verdict and the sign-off notebook's, so the two cannot differ."""
    from .params import load_waivers

    waivers = load_waivers(policy.waivers_file) if policy.waivers_file else []
    waived, outcome = apply_waivers(records, waivers, on)
    return waived, decide(waived, policy, outcome)
