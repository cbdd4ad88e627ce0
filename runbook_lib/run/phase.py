"""One phase notebook's session: loads the parameters, runs checks, redacts, saves, displays.

A phase notebook calls :func:`open_phase` once, then :meth:`PhaseSession.run_section` for each section
of the phase's manifest (:mod:`runbook_lib.run.manifest`), or :meth:`PhaseSession.run` for checks it
names. Records are redacted and written to ``<run_dir>/results/<phase>.json`` after every call, so a
phase that dies half-way keeps the evidence it had gathered. Interactively (no run directory) the
records are only shown.
"""
from __future__ import annotations

import sys
import traceback
from datetime import date
from pathlib import Path
from typing import Callable, Iterable

from runbook_lib.run.context import Context
from runbook_lib.run.manifest import Manifest
from runbook_lib.results.display import Html, RecordTable, esc, summary_table, worst
from runbook_lib.errors import RunbookError
from runbook_lib.params import CHANGES_DEPLOYMENT, PHASES, load_params, refuse_unsupported_phases, resolve_params_file
from runbook_lib.results.policy import apply_waivers, ref
from runbook_lib.results.records import Check, CheckRecord, encode_record, read_records, write_records
from runbook_lib.results.verdict import run_started

CheckFn = Callable[[Context], list[CheckRecord]]


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ProgressLine:
    """Progress in a notebook opened by hand: one muted line under the cell, updated in place ("watching the
    engine's events for 3s"), and cleared when the cell's checks are done; not a stream on stderr, which
    JupyterLab draws as an error box. Headless (papermill) and outside a kernel, lines go to stderr, which the
    report leaves out."""

    def __init__(self) -> None:
        self._handle = None

    @staticmethod
    def _in_kernel() -> bool:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
        return shell is not None and hasattr(shell, "kernel")

    def __call__(self, line: str) -> None:
        if not self._in_kernel():
            _progress(line)
            return
        from IPython.display import display

        shown = Html(f"<div class='rb-progress' style='color:#57606a;font-size:90%'>{esc(line)}</div>", line)
        if self._handle is None:
            self._handle = display(shown, display_id=True)
        else:
            self._handle.update(shown)

    def done(self) -> None:
        """The cell's checks are done: the line goes (the next cell starts its own)."""
        if self._handle is not None:
            self._handle.update(Html("", " "))
            self._handle = None


class PhaseSession:
    def __init__(self, phase: str, ctx: Context) -> None:
        self.phase = phase
        self.ctx = ctx
        self.records: list[CheckRecord] = []
        self.results_path: Path | None = None
        self._encoded: list[str] = []  # save(): records[:len] as written
        # The run's date: waivers are judged on it (today, interactively).
        self.on = date.fromisoformat(run_started(ctx.run_dir)[:10]) if ctx.run_dir else date.today()
        # A read-only phase judges one reading of the containers (Context.keep_reads): in a run, the whole
        # phase's (read when the phase opens); interactively, each `run` call's, so a cell run later sees
        # what runs then. A phase that changes the deployment reads anew in every check.
        self.read_only = phase not in CHANGES_DEPLOYMENT or ctx.params.read_only
        ctx.keep_reads = self.read_only and bool(ctx.run_dir)
        self._waivers: list | None = None
        if ctx.run_dir:
            (ctx.run_dir / "results").mkdir(parents=True, exist_ok=True)
            self.results_path = ctx.run_dir / "results" / f"{phase}.json"
            write_records(self.results_path, [])

    @property
    def params(self):
        return self.ctx.params

    def run(self, *checks: CheckFn, caption: str = "") -> RecordTable:
        """Run checks in order; an unexpected exception in a check becomes an ERROR record."""
        new: list[CheckRecord] = []
        per_call = self.read_only and not self.ctx.run_dir
        if per_call:
            self.ctx.keep_reads = True
        try:
            for fn in checks:
                try:
                    got = fn(self.ctx)
                except Exception as exc:  # noqa: BLE001 - a crashing check is recorded, not raised
                    got = [self._crash_record(fn, exc)]
                for r in got:
                    r.severity = self.params.severity_for(r.id, r.severity)
                new.extend(self._redact(got))
        except BaseException:  # an interrupt: nothing a check started may go on running
            self.ctx.stop_background()
            raise
        finally:
            if per_call:
                self.ctx.keep_reads = False
                self.ctx.forget_containers()
            if isinstance(self.ctx.progress, ProgressLine):
                self.ctx.progress.done()
        self.records.extend(new)
        self.save()
        return self.table(new, caption)

    def run_section(self, manifest: Manifest, section: str, caption: str = "") -> RecordTable | None:
        """Run one section of a phase's manifest: its checks that apply to this run's mode, in order. None
        (nothing shown) when none applies (a swarm-only section in compose mode)."""
        checks = manifest.checks(self.params.mode, section)
        return self.run(*checks, caption=caption) if checks else None

    def _crash_record(self, fn: CheckFn, exc: BaseException) -> CheckRecord:
        """A check function raised: an ERROR under the crashing check's own declared id (so waivers,
        severity overrides and the verification table find it), with the exception as evidence."""
        ids = getattr(fn, "check_ids", ())
        name = getattr(fn, "__name__", "check")
        if ids:
            c = Check(ids[0])
        else:  # an undeclared function (a test's, an interactive user's): say so in the record
            c = Check("runner.undeclared_check", phase=self.phase)
        rec = c.error(self.params.project, exc, expected="the check runs and gathers its evidence")
        rec.evidence["function"] = f"{getattr(fn, '__module__', '?')}.{name}"
        rec.evidence["check_ids"] = list(ids)
        rec.evidence["traceback"] = "".join(traceback.format_exception(exc)[-3:])
        return rec

    def add(self, records: Iterable[CheckRecord]) -> RecordTable:
        """Add records produced elsewhere (already-run checks)."""
        new = self._redact(list(records))
        self.records.extend(new)
        self.save()
        return self.table(new)

    def table(self, records: list[CheckRecord], caption: str = "") -> RecordTable:
        """Records as a table; a record a valid waiver covers says so ("FAIL — waived by W-1 until ...").
        The record itself is not changed: the verdict file is where the policy is applied."""
        if self._waivers is None:
            from runbook_lib.params import load_waivers

            wf = self.params.policy.waivers_file
            self._waivers = load_waivers(wf) if wf and Path(wf).is_file() else []
        outcome = apply_waivers(records, self._waivers, self.on) if self._waivers else None
        return RecordTable(records, caption, notes={k: outcome.note(r) for r in records
                                                    if (k := ref(r)) in outcome.covering} if outcome else {})

    def _redact(self, records: list[CheckRecord]) -> list[CheckRecord]:
        scrub = self.ctx.redactor.scrub
        return [CheckRecord.from_dict(scrub(r.fields())) for r in records]  # scrub rebuilds: no copy needed first

    def save(self) -> None:
        """Write every record of the phase so far (after each step: a phase that dies keeps what it found);
        each record is encoded once, when first saved (records are only ever appended)."""
        if self.results_path:
            for r in self.records[len(self._encoded):]:
                self._encoded.append(encode_record(r))
            write_records(self.results_path, self.records, self._encoded)

    def summary(self) -> Html:
        """The phase's short summary: one line per check, its headline status and mix, the targets not PASS
        (:func:`~runbook_lib.results.display.summary_table`); the records above hold the evidence."""
        notes = self.table(self.records).notes
        lines = [f"{worst(r.status for r in rs):6} {cid}" for cid, rs in _by_check(self.records).items()]
        return Html(summary_table(self.records, "One line per check (its evidence is in the tables above)", notes),
                    "\n".join(lines) or "(no records)")

    def require_preflight(self, preflight: Manifest) -> Html:
        """Refuse to go on when preflight has blocking problems. Uses the run's preflight records when
        there are some; otherwise (interactive, or papermill on one notebook) runs the checks of the
        ``preflight`` manifest for this mode now, without storing them. Raises RunbookError naming the
        blockers; otherwise says in one line what it was judged on (the preflight records are shown in
        their own phase, not again here)."""
        from runbook_lib.results.policy import evaluate

        if self.params.read_only:
            line = ("Read-only run: nothing in this phase changes the deployment (what would is recorded SKIP), "
                    "so the preflight gate does not hold it back.")
            return Html(f"<p>{esc(line)}</p>", line)
        recs = self.previous(preflight.phase)
        source = "this run's preflight records"
        if recs is None:
            source = "preflight checks run now (not stored)"
            recs = []
            for fn in preflight.checks(self.params.mode):
                recs.extend(self._redact(fn(self.ctx)))
        blockers = evaluate(recs, self.params.policy, self.on).blockers
        if blockers:
            raise RunbookError("preflight has blocking problems, so this phase will not touch the deployment: "
                               + "; ".join(f"{r.id}@{r.target}: {r.actual}" for r in blockers))
        line = f"Preflight gate: no blocking problem among {len(recs)} records ({source})."
        return Html(f"<p>{esc(line)}</p>", line)

    def previous(self, phase: str) -> list[CheckRecord] | None:
        """Records of an earlier phase of the same run, or None when there is no run directory or file."""
        if not self.ctx.run_dir:
            return None
        p = self.ctx.run_dir / "results" / f"{phase}.json"
        return read_records(p) if p.exists() else None


def _by_check(records: Iterable[CheckRecord]) -> dict[str, list[CheckRecord]]:
    out: dict[str, list[CheckRecord]] = {}
    for r in records:
        out.setdefault(r.id, []).append(r)
    return out


def open_phase(phase: str, params_file: str | Path | None = "", run_dir: str | Path | None = None) -> PhaseSession:
    """Start a phase: load parameters, teach the redactor the deployment's secrets, prepare the
    results file. Empty means "opened by hand": ``run_dir`` empty, interactive (nothing is written);
    ``params_file`` empty, ``$RUNBOOK_PARAMS``, else ``parameters/demo.yaml`` found from the current
    directory upward (:func:`~runbook_lib.params.core.resolve_params_file`)."""
    if phase not in PHASES:
        raise RunbookError(f"unknown phase {phase!r}; known: {', '.join(PHASES)}")
    params = load_params(resolve_params_file(params_file))
    refuse_unsupported_phases(params, [phase])  # swarm mode: a notebook run by hand or by papermill refuses too
    if params.targets:  # a fleet: which engine would this notebook check? Never silently DOCKER_HOST's.
        from runbook_lib.errors import InputError

        raise InputError(f"{params.source} names {len(params.targets)} targets (a fleet): run it with `runbook run`, "
                         "or open this notebook on one target's parameters (inputs/NAME.yaml of a fleet run) with "
                         "that target's DOCKER_HOST.")
    ctx = Context(params=params, run_dir=Path(run_dir).resolve() if run_dir else None,
                  progress=_progress if run_dir else ProgressLine())
    session = PhaseSession(phase, ctx)  # first: in a run, a read-only phase's reading of the containers starts here
    try:
        ctx.learn_secrets()
    except RunbookError:
        pass  # compose files that do not resolve are reported by the preflight checks
    return session
