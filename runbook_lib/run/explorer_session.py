"""The explorer's session table: every re-run's records, kept, filtered, and saved as evidence.

Each "Re-run" in the explorer (:mod:`runbook_lib.run.explorer`) adds its records here instead of replacing the
previous ones: a FAIL seen at 10:02 is still in the table after a later re-run of another phase. The table is
shown newest first, filtered by status and by service; the overview's "worst seen" column is its
:meth:`SessionTable.worst_by_service`. :meth:`SessionTable.export` writes the session as a run directory like
any other (results per phase, verdict.json, summary, report.html, manifest.json, signed with the parameters'
key): the runner's own :func:`~runbook_lib.run.runner.finish` does it, so `runbook verify`, `runbook report` and
`runbook diff` treat it as any run. Every record of the session is kept, so a FAIL seen once is a blocker of
the export even when a later re-run passed: the archive says what was seen.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from runbook_lib.results.display import badge, esc, id_html, records_table, simple_table
from runbook_lib.results.records import HEADLINE_ORDER, CheckRecord, headline, mix, plural, utcnow, write_records

#: The status filter's choices: (label, the statuses it keeps; empty: all).
STATUS_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all statuses", ()), ("problems (ERROR, FAIL, WARN)", ("ERROR", "FAIL", "WARN")), ("FAIL", ("FAIL",)),
    ("ERROR", ("ERROR",)), ("WARN", ("WARN",)), ("PASS", ("PASS",)), ("SKIP", ("SKIP",)), ("INFO", ("INFO",)))
#: Rows shown at most (the rest are counted; the export keeps all).
SHOWN_ROWS = 300


@dataclass
class Rerun:
    """One press of a "Re-run" button: which phase, when, for which selected service, how many records."""

    n: int
    phase: str
    title: str
    at: str
    service: str
    records: int


@dataclass
class Row:
    run: int
    service: str  # the service the record's target belongs to ("" for the engine, the project...)
    record: CheckRecord


@dataclass
class SessionTable:
    reruns: list[Rerun] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    def add(self, phase: str, title: str, selected: str, records: Iterable[CheckRecord],
            service_of: Callable[[str], str]) -> Rerun:
        """Keep a re-run's records (all of them, every target); ``service_of`` names a target's service."""
        records = list(records)
        run = Rerun(len(self.reruns) + 1, phase, title, utcnow(), selected, len(records))
        self.reruns.append(run)
        self.rows += [Row(run.n, service_of(r.target), r) for r in records]
        return run

    def filtered(self, statuses: tuple[str, ...] = (), service: str = "") -> list[Row]:
        """The rows kept by the filters: the worst statuses first (a FAIL of the first re-run stays on top after
        hundreds of PASS records), each status newest first."""
        rank = {s: i for i, s in enumerate(HEADLINE_ORDER)}
        kept = [row for row in reversed(self.rows)
                if (not statuses or row.record.status in statuses) and (not service or row.service == service)]
        return sorted(kept, key=lambda row: rank.get(row.record.status, len(rank)))  # stable: newest first within

    def worst_by_service(self) -> dict[str, tuple[str, str]]:
        """Each service's headline over every record about it this session, and the mix: (``FAIL``,
        ``3 FAIL · 20 PASS``)."""
        by: dict[str, list[str]] = {}
        for row in self.rows:
            if row.service:
                by.setdefault(row.service, []).append(row.record.status)
        return {svc: (headline(st), mix(st)) for svc, st in by.items()}

    def html(self, statuses: tuple[str, ...] = (), service: str = "") -> str:
        """The table: re-run, time, phase, check, target, status; problems first, newest first, with a count."""
        if not self.rows:
            return "<p><i>No re-run yet: the records of every re-run are kept here.</i></p>"
        rows = self.filtered(statuses, service)
        titles = {r.n: r for r in self.reruns}
        body = [[esc(row.run), esc(titles[row.run].at[11:19]), esc(titles[row.run].title), id_html(row.record.id),
                 esc(row.record.target), badge(row.record.status), esc(row.record.actual[:200])]
                for row in rows[:SHOWN_ROWS]]
        count = (f"{len(rows)} of {plural(len(self.rows), 'record')} from {plural(len(self.reruns), 're-run')}"
                 + (f"; the newest {SHOWN_ROWS} shown" if len(rows) > SHOWN_ROWS else ""))
        return (f"<div class='rb-session'><div class='rb-count'>{esc(count)} · problems first, newest first</div>"
                + simple_table(["#", "time (UTC)", "phase", "check", "target", "status", "what was seen"], body,
                               raw_columns=tuple(range(7))) + "</div>")

    def by_phase(self) -> dict[str, list[CheckRecord]]:
        out: dict[str, list[CheckRecord]] = {}
        for row in self.rows:
            out.setdefault(row.record.phase, []).append(row.record)
        return out

    def export(self, params, output: Path, *, redactor=None, progress: Callable[[str], None] = lambda s: None) -> Path:
        """Write the session as a run directory under ``output``: each phase's records (every re-run's),
        a notebook per phase holding their table (what the report shows), then what the runner writes for
        any run: verdict.json, summary.json/.md, junit.xml, report.html, manifest.json, signed with the
        parameters' key (``signoff.signing_key``) like any run. Returns the run directory."""
        from runbook_lib.errors import InputError
        from runbook_lib.results import signing
        from runbook_lib.run.rundir import new_run_dir
        from runbook_lib.run.runner import archive_inputs, finish

        if not self.rows:
            raise InputError("nothing to save yet: re-run a phase first")
        key = signing.resolve_key(params.signoff.signing_key, generate_missing=params.signoff.generate_missing_key)
        if key and redactor is not None:
            redactor.learn_files([key])  # a private key never reaches an output
        phases = self.by_phase()
        run_dir = new_run_dir(Path(output).resolve(), params.project)
        started = self.reruns[0].at
        params = archive_inputs(params.model_copy(update={"phases": sorted(phases)}), run_dir, started, show_code=False)
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        info["source"] = "explorer"
        info["reruns"] = [r.__dict__ for r in self.reruns]
        (run_dir / "run.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        entries = []
        for phase, recs in sorted(phases.items()):
            write_records(run_dir / "results" / f"{phase}.json", recs)
            _write_notebook(run_dir / "notebooks" / f"{phase}.ipynb", phase, recs,
                            [r for r in self.reruns if r.phase == phase])
            entries.append({"phase": phase, "status": "completed", "records": len(recs), "duration_s": 0.0,
                            "detail": f"kept by the explorer: {plural(sum(r.phase == phase for r in self.reruns), 're-run')}"})
        finish(run_dir, params, started, entries, progress=progress, signing_key=key)
        return run_dir


def _write_notebook(path: Path, phase: str, records: list[CheckRecord], reruns: list[Rerun]) -> None:
    """The phase's page of the report: when each re-run happened, then its records as the phase notebooks show
    them."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    when = ", ".join(f"{r.at[11:19]} UTC (for {r.service or 'every service'})" for r in reruns)
    nb.cells.append(nbformat.v4.new_markdown_cell(
        f"## {reruns[0].title if reruns else phase}\n\nRe-run from the explorer: {when}. Every re-run's records are "
        "kept, the earlier ones too."))
    cell = nbformat.v4.new_code_cell(source="")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": records_table(records, phase)})]
    nb.cells.append(cell)
    nbformat.write(nb, path)


def worst_cell(worst: tuple[str, str] | None) -> str:
    """The overview's "worst seen" cell: the badge and the mix, or a dash before any re-run."""
    return f"{badge(worst[0])} <small>{esc(worst[1])}</small>" if worst else "<small>not checked yet</small>"
