"""What one `runbook lint` of a project found: its records, what was linted, and what decides the exit code.

Made by :func:`runbook_lib.lint.run.lint_files`; marked by the baseline (:mod:`.baseline`) and the inline
suppressions (:mod:`.suppress`); printed by :mod:`.output`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the records' module loads while Compose resolves the model, not before it starts
    from runbook_lib.lint.source import Source
    from runbook_lib.results.records import CheckRecord


@dataclass
class LintResult:
    files: list[Path]
    records: list[CheckRecord]
    compose_problem: str = ""
    source: Source | None = None
    # the services linted, the profiles selected ("*" = every profile), the services left out
    services: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # what decides the exit code (`runbook lint --fail-on`; :mod:`runbook_lib.lint.command` says why high)
    fail_on: str = "high"
    baseline: tuple[Path, int] | None = None               # (--baseline file, its findings gone since)
    baseline_written: tuple[Path, int] | None = None       # (--write-baseline file, findings written)

    def decides(self, r: CheckRecord) -> bool:
        """Whether a record fails the lint: an ERROR always; a FAIL at or above :attr:`fail_on` unless an
        inline suppression covers it or the baseline has it."""
        if r.status == "ERROR":
            return True
        if r.status != "FAIL" or r.evidence.get("suppressed") or r.evidence.get("baseline") == "unchanged":
            return False
        from runbook_lib.results.records import SEVERITY_RANK

        return SEVERITY_RANK.get(r.severity, 4) >= SEVERITY_RANK[self.fail_on]

    @property
    def failed(self) -> bool:
        return any(self.decides(r) for r in self.records)

    @property
    def exit_code(self) -> int:
        if self.baseline_written:  # adopting: every current finding is now accepted, an ERROR is not
            return 1 if any(r.status == "ERROR" for r in self.records) else 0
        return 1 if self.failed else 0

    def scope(self) -> str:
        """The summary of what was linted: services, profiles, what a --profile left out."""
        used = sorted({p for r in self.records for p in r.evidence.get("profiles") or []})
        if self.profiles == ["*"]:
            prof = f"all profiles ({', '.join(used)})" if used else "no profiles used"
        else:
            prof = f"profiles {', '.join(self.profiles)}" if self.profiles else "default profile only"
        left = f"; {len(self.skipped)} not linted (not in the selected profiles): {', '.join(self.skipped)}" \
            if self.skipped else ""
        return f"{len(self.services)} services linted, {prof}{left}"
