"""From check records to a GO / NO-GO verdict, by an explicit policy.

Blocking: a FAIL whose severity is in ``policy.blocking_severities`` (default critical and high).
Uncertainty blocks too: an ERROR (evidence could not be gathered) of any severity, and a SKIP of a
blocking severity (a check that should have run did not). No records at all is NO-GO.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .params import Policy
from .records import CheckRecord, counts


def ref(r: CheckRecord) -> str:
    """How a record is named in blockers and waivers: ``check.id@target``."""
    return f"{r.id}@{r.target}"


@dataclass
class Decision:
    verdict: str
    blockers: list[CheckRecord] = field(default_factory=list)
    waived: list[CheckRecord] = field(default_factory=list)
    rationale: str = ""

    @property
    def go(self) -> bool:
        return self.verdict == "GO"


def is_blocking(r: CheckRecord, policy: Policy) -> bool:
    blocking = set(policy.blocking_severities)
    if r.status == "ERROR":
        return True
    if r.status == "FAIL":
        return r.severity in blocking
    if r.status == "SKIP":
        return r.severity in blocking
    return False


def decide(records: list[CheckRecord], policy: Policy) -> Decision:
    """Apply the policy. The rationale says why, from the data."""
    if not records:
        return Decision("NO-GO", rationale="No check ran: nothing supports a GO.")
    blockers = [r for r in records if is_blocking(r, policy)]
    waived = [r for r in records if r.status == "WAIVED"]
    c = counts(records)
    tally = ", ".join(f"{n} {s}" for s, n in c.items() if n)
    if blockers:
        kinds = sorted({r.status for r in blockers})
        return Decision("NO-GO", blockers, waived,
                        f"{len(blockers)} blocking record(s) ({'/'.join(kinds)}) among {len(records)}: {tally}. "
                        f"Blocking severities: {', '.join(policy.blocking_severities)}; ERROR always blocks.")
    return Decision("GO", [], waived, f"No blocking record among {len(records)}: {tally}.")
