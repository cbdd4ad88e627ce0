"""Runs as pandas frames: the check records of one or many run directories, one row per record.

Every reader of a run verifies it first (:func:`runbook_lib.results.manifest.verify_run`: manifest, signature,
verdict re-judged) and refuses one that does not verify; :func:`open_run` does, and so does
:func:`load_records` through it. Records are read as written (a waived FAIL stays FAIL); the waiver that
covers a record comes from the run's ``verdict.json`` (column ``waived_by``).

Columns of :func:`load_records` (:data:`COLUMNS`):

=============  ==========================================================================================
run_id         the run directory's name (``20261129T101500Z-secureconnect-demo``)
project        the compose project the run verified
engine         the Docker host the run used (``DOCKER_HOST`` recorded in run.json), else ``"local"``
phase          ``00_preflight`` ... ``05_signoff``
check_id       ``prod.env``, ``smoke.drill.redis`` ...
target         what the check looked at (a service, an endpoint, a file)
status         PASS FAIL WARN ERROR SKIP INFO (as recorded; never WAIVED)
severity       critical high medium low info
waived_by      the id of the waiver that covers the record (``W-1``), else ``None``
actual         the observed value, as the record states it
started        when the check started (``pandas.Timestamp``, UTC)
duration_s     how long it took (seconds, float)
evidence       the record's evidence, a ``dict`` per row
=============  ==========================================================================================
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from runbook_lib.errors import InputError, RunbookError
from runbook_lib.results.records import CheckRecord

COLUMNS = ("run_id", "project", "engine", "phase", "check_id", "target", "status", "severity", "waived_by",
           "actual", "started", "duration_s", "evidence")


class UnverifiedRun(RunbookError):
    """A run directory that does not match its manifest, signature or verdict: refused (exit 1)."""

    exit_code = 1


@dataclass
class Run:
    """One run directory, read: its verdict file, its records and run.json."""

    path: Path
    verdict: dict[str, Any]
    records: list[CheckRecord]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def project(self) -> str:
        return self.verdict.get("project") or self.info.get("project", "")

    @property
    def engine(self) -> str:
        return self.info.get("docker_host") or "local"

    def waived_by(self) -> dict[str, str]:
        """``check.id@target`` -> the id of the waiver that covers it (from the verdict file)."""
        return {w["ref"]: w["waiver"] for w in self.verdict.get("waived", [])}


def open_run(run_dir: str | Path, *, verify: bool = True, key: Path | None = None) -> Run:
    """Read a run directory. With ``verify`` (the default) it must verify first: raises
    :class:`UnverifiedRun` naming every changed, added or removed file (and a bad signature, or a verdict
    that does not follow from the records); :class:`~runbook_lib.errors.InputError` when ``run_dir`` is
    not a run directory. ``verify=False`` is for the runner reading the run it is still writing."""
    from runbook_lib.results import verdict as verdicts
    from runbook_lib.results.manifest import verify_run

    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(f"{path} is not a directory (give a run directory, e.g. outputs/<time>-<project>)")
    if verify:
        problems = verify_run(path, key)
        if problems:
            raise UnverifiedRun(f"{path} does not verify, so it is not compared: " + "; ".join(problems))
    try:
        verdict = verdicts.read(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path / verdicts.VERDICT_FILE} cannot be read: {exc}") from exc
    try:
        info = json.loads((path / verdicts.RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    try:
        records = verdicts.load_records(path)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"the records of {path} cannot be read: {exc}") from exc
    return Run(path, verdict, records, info)


def frame(runs: Iterable[Run]) -> pd.DataFrame:
    """The records of already opened runs, one row per record (columns: :data:`COLUMNS`)."""
    rows = []
    for run in runs:
        waived = run.waived_by()
        for r in run.records:
            rows.append({"run_id": run.run_id, "project": run.project, "engine": run.engine, "phase": r.phase,
                         "check_id": r.id, "target": r.target, "status": r.status, "severity": r.severity,
                         "waived_by": waived.get(f"{r.id}@{r.target}"), "actual": r.actual,
                         "started": r.started, "duration_s": float(r.duration_s), "evidence": r.evidence})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["started"] = pd.to_datetime(df["started"], utc=True, errors="coerce")
    df["duration_s"] = df["duration_s"].astype(float)
    return df


def load_records(*run_dirs: str | Path, key: Path | None = None) -> pd.DataFrame:
    """The check records of one or many run directories as one DataFrame, one row per record, in the
    order the runs are given and the phases wrote them. Each run is verified first (see
    :func:`open_run`); one that does not verify raises :class:`UnverifiedRun`.

    >>> df = load_records("outputs/20261129T101500Z-secureconnect-demo")      # doctest: +SKIP
    >>> df[df.status.isin(["FAIL", "ERROR"])][["check_id", "target", "actual"]]  # doctest: +SKIP
    """
    if not run_dirs:
        raise InputError("load_records: give at least one run directory")
    return frame(open_run(d, key=key) for d in run_dirs)
