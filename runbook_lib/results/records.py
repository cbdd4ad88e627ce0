"""Check records: the unit of evidence (contract: docs/design.md, "a check record").

A check is a plain function that returns records; failing is data, not an exception. A check that
could not gather its evidence is ERROR, never PASS, and a PASS without evidence is refused at
construction, so no code path can produce one.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

# PASS: a value was observed and judged good. FAIL/WARN: observed and judged bad. ERROR: the evidence
# could not be gathered. SKIP: not looked at (the reason is in the record). INFO: a fact recorded for the
# archive (an inventory, the current state, sign-off metadata): never counted as PASS, never blocking.
# WAIVED: a FAIL or WARN accepted by a valid waiver (the verdict file says which).
STATUSES = ("PASS", "FAIL", "WARN", "ERROR", "SKIP", "INFO", "WAIVED")
# A headline status (a check over its targets, a category, a phase, a service in the explorer) is the worst
# *judged* status: ERROR (could not look, and it blocks) first, then FAIL, WARN, a waived problem, PASS; SKIP and
# INFO only when nothing was judged (two PASS and two SKIP read PASS, with the mix beside it). One order, here,
# for the notebooks' tables, the verdict's categories, the report and the explorer.
HEADLINE_ORDER = ("ERROR", "FAIL", "WARN", "WAIVED", "PASS", "SKIP", "INFO")
# Severities, least to most severe (a threshold such as `runbook lint --fail-on` compares by this rank).
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
# Schema version of the record JSON and of summary.json.
SCHEMA = 1


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class CheckRecord:
    """One check on one target. Serialised as-is to the JSON contract (docs/design.md, "a check record")."""

    id: str
    phase: str
    title: str
    target: str
    status: str
    severity: str
    expected: str
    actual: str
    evidence: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    remediation: str = ""
    started: str = field(default_factory=utcnow)
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        if self.status == "PASS" and not self.evidence:
            raise ValueError(f"check {self.id} on {self.target}: a PASS needs evidence")
        if self.status == "PASS" and str(self.actual).strip().lower() in ("", "n/a", "none", "unknown"):
            raise ValueError(f"check {self.id} on {self.target}: a PASS needs an observed value, not {self.actual!r}")

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def problem(self) -> bool:
        """FAIL or ERROR: something is wrong or could not be shown to be right."""
        return self.status in ("FAIL", "ERROR")

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, a deep copy (``dataclasses.asdict``). The hot paths (redaction, writing)
        use :meth:`fields`, which copies nothing."""
        return asdict(self)

    def fields(self) -> dict[str, Any]:
        """The record's fields as a dict, their values as they are (not copied): for a caller that rebuilds
        them anyway (redaction) or serialises them (JSON, with dataclasses turned into dicts)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CheckRecord":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class Check:
    """Builds records for one check id, timing it; used inside check functions::

        c = Check("redeploy.service_ready", command="docker compose ps")
        return [c.record(target, "PASS", expected=..., actual=..., evidence=...)]

    Title, phase, default severity and remediation come from the check's declaration in
    :mod:`runbook_lib.results.registry`; passing them explicitly is for ids declared elsewhere (lint rules) and
    tests. An id that is neither declared nor fully described is refused.
    """

    def __init__(self, check_id: str, title: str | None = None, *, phase: str | None = None,
                 severity: str | None = None, command: str = "", remediation: str | None = None) -> None:
        spec = None
        if title is None or phase is None or severity is None or remediation is None:
            from runbook_lib.results import registry

            spec = registry.get(check_id)
            if spec is None and (title is None or phase is None or severity is None):
                registry.require(check_id)  # raises, naming the closest declared id
        self.id = check_id
        self.title = title if title is not None else spec.title
        self.phase = phase if phase is not None else spec.phase
        self.severity = severity if severity is not None else spec.severity
        self.command = command
        self.remediation = remediation if remediation is not None else (spec.remediation if spec else "")
        self._t0 = time.monotonic()
        self._started = utcnow()

    def record(self, target: str, status: str, *, expected: str, actual: str,
               evidence: dict[str, Any] | None = None, command: str | None = None,
               remediation: str | None = None, severity: str | None = None) -> CheckRecord:
        return CheckRecord(
            id=self.id, phase=self.phase, title=self.title, target=target, status=status,
            severity=severity or self.severity, expected=expected, actual=actual,
            evidence=evidence or {}, command=self.command if command is None else command,
            remediation=("" if status == "PASS" else (self.remediation if remediation is None else remediation)),
            started=self._started, duration_s=round(time.monotonic() - self._t0, 3),
        )

    def error(self, target: str, exc: BaseException, *, expected: str) -> CheckRecord:
        """An ERROR record: the evidence could not be gathered."""
        return self.record(
            target, "ERROR", expected=expected,
            actual=f"could not check: {type(exc).__name__}: {exc}",
            evidence={"exception": type(exc).__name__, "message": str(exc),
                      "traceback": traceback.format_exception_only(type(exc), exc)[-1].strip()},
        )


def headline(statuses: Iterable[str], default: str = "INFO") -> str:
    """The headline of these statuses (:data:`HEADLINE_ORDER`): the worst judged one; SKIP or INFO only when
    nothing was judged; ``default`` when there is none at all."""
    present = set(statuses)
    return next((s for s in HEADLINE_ORDER if s in present), default)


def mix(statuses: Iterable[str]) -> str:
    """What a headline stands over, in headline order: ``2 PASS · 2 SKIP``."""
    tally: dict[str, int] = {}
    for s in statuses:
        tally[s] = tally.get(s, 0) + 1
    return " · ".join(f"{tally[s]} {s}" for s in HEADLINE_ORDER if tally.get(s))


def counts(records: Iterable[CheckRecord]) -> dict[str, int]:
    out = {s: 0 for s in STATUSES}
    for r in records:
        out[r.status] += 1
    return out


def json_default(obj: Any) -> Any:
    """``json.dumps``'s ``default`` for record fields: a dataclass as a dict (as ``dataclasses.asdict``), anything
    else as its text."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return str(obj)


def encode_record(record: CheckRecord) -> str:
    """One record as the line :func:`write_records` writes for it."""
    return json.dumps(record.fields(), default=json_default)


def write_records(path: Path, records: list[CheckRecord], encoded: list[str] | None = None) -> None:
    """Write a phase's records atomically (write to a temp file, then rename): a JSON array, one record per
    line (compact: json's C encoder; an indented dump of 2,500 records took a second of pure Python).
    ``encoded``: the lines of ``records`` already made by :func:`encode_record` (a phase that saves after
    every step encodes each record once)."""
    lines = encoded if encoded is not None else [encode_record(r) for r in records]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text("[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n", encoding="utf-8")
    tmp.replace(path)


def read_records(path: Path) -> list[CheckRecord]:
    return [CheckRecord.from_dict(d) for d in json.loads(path.read_text(encoding="utf-8"))]


def plural(n: int, word: str) -> str:
    """``1 check``, ``2 checks``; ``1 secret``, ``0 secrets`` (here, not in display.py, so `runbook lint`
    can count without loading the HTML renderer)."""
    return f"{n} {word}" + ("" if n == 1 else "s")
