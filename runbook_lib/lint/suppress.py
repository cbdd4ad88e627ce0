"""Inline suppressions in compose files, the way hadolint and checkov read theirs::

    services:
      web:
        # runbook-lint: ignore=hardening.read_only_rootfs reason="nginx writes its cache; tmpfs planned (OPS-12)"
        image: nginx:1.27
        ports:
          - "80:80"  # runbook-lint: ignore=hardening.tls,hardening.published_ports reason="redirect to 443 only"

A comment that shares its line with YAML applies to that line's node; a comment alone on its line applies
to the next line that holds YAML. The node is the key or list item that line starts, with everything
nested under it: a suppression on a service's name covers every finding of that service; one on ``ports:``
covers the findings located at ``ports:`` or at one of its items. A finding's location is the one SARIF
gives it (the key the rule read, else the service's or secret's definition). Rules are named by id, or by
a shell pattern (``hardening.*``).

What a suppression does and does not do:

- it marks the findings it covers as suppressed (``evidence["suppressed"]``): they stay in JSON and SARIF
  (SARIF ``suppressions``, kind ``inSource``) and in the table's count, and no longer decide the exit code;
- without ``reason="..."`` it suppresses nothing, and is itself a finding (``lint.suppression_reason``):
  a finding hidden without a reason is a finding nobody can review;
- one that covers no finding is stale (``lint.suppression_stale``): the problem was fixed, or the comment
  sits on the wrong line, and the next real finding there would be hidden by it.

Suppressions are `runbook lint`'s only. A run's verdict changes only through waivers (an owner, an
approver and an expiry, in the parameters), which are judged and signed with the run.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.lint.rules import LINT_PHASE, Verdict, make_record

if TYPE_CHECKING:
    from runbook_lib.lint.result import LintResult
    from runbook_lib.results.records import CheckRecord

_COMMENT = re.compile(r"#\s*runbook-lint\s*:\s*ignore\s*=\s*(?P<rules>[^\s]+)"
                      r"(?:\s+reason\s*=\s*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'))?")
_KEY_ONLY = re.compile(r"^(?:-\s+)?[^#\s][^#]*:\s*(?:#.*)?$")  # "ports:" / "- target:" with nothing after


@dataclass
class Suppression:
    """One ``# runbook-lint: ignore=...`` comment and the lines of the node it applies to."""

    file: Path
    line: int           # where the comment is
    first: int          # the node it covers: from this line...
    last: int           # ...to this one (inclusive)
    rules: tuple[str, ...]
    reason: str
    ancestors: frozenset[int] = frozenset()  # the keys above the node, up to the service's (or secret's) name
    matched: list[str] = field(default_factory=list)  # "rule@target" of each finding it covered

    @property
    def where(self) -> str:
        try:
            shown = self.file.relative_to(Path.cwd())
        except ValueError:
            shown = self.file
        return f"{shown}:{self.line}"

    def covers(self, rule_id: str, file: Path, line: int | None) -> bool:
        return (line is not None and file == self.file
                and (self.first <= line <= self.last or line in self.ancestors)
                and any(fnmatch.fnmatchcase(rule_id, r) for r in self.rules))


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _is_yaml(text: str) -> bool:
    s = text.strip()
    return bool(s) and not s.startswith("#")


def _node_end(lines: list[str], i: int) -> int:
    """The last line (0-based) of the node that line ``i`` starts: the lines after it indented deeper, and,
    for a key with nothing after its colon, a block sequence written at the key's own indentation."""
    head = lines[i]
    ind = _indent(head)
    key_only = bool(_KEY_ONLY.match(head.strip()))
    end = i
    for j in range(i + 1, len(lines)):
        text = lines[j]
        if not _is_yaml(text):
            continue
        k = _indent(text)
        if k > ind or (k == ind and key_only and text.lstrip().startswith("- ") and not head.lstrip().startswith("- ")):
            end = j
            continue
        break
    return end


def _ancestors(lines: list[str], i: int) -> frozenset[int]:
    """The lines (1-based) of the keys that hold line ``i``, innermost first, up to but not including the
    top-level section (``services:``): a finding located at ``ports:`` or at the service's name is covered
    by a suppression on one of its items."""
    out, ind, item = [], _indent(lines[i]), lines[i].lstrip().startswith("- ")
    for j in range(i - 1, -1, -1):
        text = lines[j]
        if not _is_yaml(text):
            continue
        k = _indent(text)
        if k < ind or (k == ind and item and _KEY_ONLY.match(text.strip()) and not text.lstrip().startswith("- ")):
            if k == 0:
                break
            out.append(j + 1)
            ind, item = k, text.lstrip().startswith("- ")
    return frozenset(out)


def read_suppressions(path: Path) -> list[Suppression]:
    """Every suppression comment of one compose file, with the node each applies to."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):  # lint read the file already; a race is not a suppression
        return []
    out = []
    for i, text in enumerate(lines):
        m = _COMMENT.search(text)
        if not m:
            continue
        target = i if _is_yaml(text[:m.start()]) else next((j for j in range(i + 1, len(lines))
                                                            if _is_yaml(lines[j])), None)
        rules = tuple(r for r in m.group("rules").split(",") if r)
        reason = (m.group("dq") if m.group("dq") is not None else m.group("sq") or "").strip()
        if target is None:
            out.append(Suppression(path, i + 1, 0, -1, rules, reason))  # covers nothing: stale
        else:
            out.append(Suppression(path, i + 1, target + 1, _node_end(lines, target) + 1, rules, reason,
                                   _ancestors(lines, target)))
    return out


def apply_suppressions(result: LintResult) -> list[Suppression]:
    """Mark the findings each reasoned suppression covers (``evidence["suppressed"]``), then add a record
    for each suppression without a reason and each stale one. Returns the suppressions read."""
    from runbook_lib.lint.output import location

    sups = [s for f in result.files for s in read_suppressions(f)]
    if not sups:
        return sups
    for r in result.records:
        if r.status in ("PASS", "INFO") or r.id.startswith("lint.suppression"):
            continue
        file, line = location(result, r)
        for s in sups:
            if s.covers(r.id, file, line):
                s.matched.append(f"{r.id}@{r.target}")
                if s.reason:
                    r.evidence["suppressed"] = {"by": s.where, "reason": s.reason}
                    break
                r.evidence.setdefault("suppression_ignored", f"{s.where}: no reason given")
    for s in sups:
        result.records.extend(_records_for(s))
    return sups


def _records_for(s: Suppression) -> list[CheckRecord]:
    where = {"location": {"file": str(s.file), "line": s.line}, "rules": list(s.rules)}
    out = []
    if not s.reason:
        out.append(make_record("lint.suppression_reason", s.where, Verdict(
            "FAIL", 'reason="..." beside every ignore=', "no reason given: nothing suppressed", where),
            phase=LINT_PHASE))
    if not s.matched:
        out.append(make_record("lint.suppression_stale", s.where, Verdict(
            "WARN", "a finding of the named rules at the commented node",
            f"matches no finding of {', '.join(s.rules)} on lines {s.first}-{s.last}" if s.last >= s.first
            else "no YAML follows the comment", where), phase=LINT_PHASE))
    return out
