"""``runbook watch``: the read-only run (``runbook run --read-only``: phases 0, 2, 3, phase 4's health, metrics
and safe flow steps, 5) on a schedule, each run a normal signed run directory, published as Prometheus metrics
(:mod:`runbook_lib.run.exporter`).

What the loop promises:

- it never changes the deployment: every run is read-only (phase 1 and the drills are never run), and a run
  waits for no deploy lock (a read-only run only watches it);
- after each run it compares with the previous one (:func:`runbook_lib.results.compare.compare_runs`, what
  ``runbook diff`` prints) and logs each new blocker in one line: the check, the target, what it was, what it is;
- it keeps the newest ``keep`` run directories of its output directory and the last GO (``latest`` and
  ``last-go`` link to them), and removes older ones: only run directories of the watched project, in a
  directory of the watcher's own (default ``outputs/watch``), never the runs a person made;
- a run the engine could not serve (the engine restarting, its socket gone) is an ERROR run: a signed run
  directory whose phases are recorded ERROR (NO-GO), and the loop goes on;
- a parameters file made invalid while it runs: the run is not made (there is nothing valid to run), the
  error is logged naming the file and key and counted (``runbook_run_errors_total``), the last published
  verdict stays and ages (the staleness alert fires after three intervals), and the loop goes on, so a fix of
  the file is picked up by the next run. Invalid at start: an input error (exit 2), nothing runs;
- SIGTERM or SIGINT stops it: between runs at once; during a run the runner interrupts the running phase
  (it writes its directory, which is not published), then the loop ends; exit 0.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from runbook_lib.errors import InputError, RunbookError
from runbook_lib.results.metrics import Published, WatchMetrics
from runbook_lib.run.signals import SignalScope
from runbook_lib.run.watch_cli import DEFAULT_LISTEN

LATEST, LAST_GO = "latest", "last-go"
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_every(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h`` as seconds (at least 1)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m or float(m.group(1)) * _UNITS[m.group(2) or "s"] < 1:
        raise InputError(f"--every {text!r}: give a duration of at least 1 s, e.g. 5m, 60s or 1h")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass
class WatchOptions:
    params: Path
    every_s: float = 300
    keep: int = 10
    output: Path = Path("outputs/watch")
    phases: list[str] | None = None
    compose_files: list[Path] | None = None
    listen: str = DEFAULT_LISTEN     # "" : no exporter
    count: int = 0                   # stop after this many runs (0: never)
    kernel: str = "python3"
    verbose: bool = False


class _Loop(SignalScope):
    """The loop's state, and its signal scope: a signal sets ``stop`` (waking the wait between runs)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()
        self.state = "starting"

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signal = signal.Signals(signum).name
        self.stop.set()


def watch(opts: WatchOptions, log: Callable[[str], None] = print) -> int:
    """Run the read-only runbook every ``opts.every_s`` seconds until a signal (or ``opts.count`` runs);
    returns the exit code (0: stopped cleanly). Raises InputError before the first run for bad input."""
    from runbook_lib.params import load_params
    from runbook_lib.run.exporter import Exporter

    if opts.keep < 1:
        raise InputError(f"--keep {opts.keep}: keep at least 1 run")
    from runbook_lib.run.validation import choose_phases

    params = load_params(opts.params)  # invalid at start: exit 2, nothing runs
    choose_phases(params.model_copy(update={"read_only": True}), opts.phases)  # --phase 01_...: refused here
    project = params.project
    output = Path(opts.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    metrics = WatchMetrics(project, opts.every_s)
    loop = _Loop()
    exporter = Exporter(opts.listen, metrics, lambda: (not loop.stop.is_set(), loop.state)) if opts.listen else None
    with loop, (exporter or _Nothing()):
        if exporter:
            log(f"runbook watch: metrics on http://{exporter.address}/metrics, health on /healthz")
        previous = _link(output, LATEST)
        log(f"runbook watch: {project} every {opts.every_s:g} s, read-only, into {output} (keeping {opts.keep} "
            f"runs and the last GO)" + (f"; comparing with {previous.name}" if previous else ""))
        runs = 0
        while not loop.stop.is_set():
            t0 = time.monotonic()
            loop.state = f"running run {runs + 1} since {time.strftime('%H:%M:%SZ', time.gmtime())}"
            previous = _one_run(opts, output, project, metrics, previous, log, loop)
            runs += 1
            if opts.count and runs >= opts.count:
                break
            wait = max(0.0, opts.every_s - (time.monotonic() - t0))
            loop.state = f"waiting; next run at {time.strftime('%H:%M:%SZ', time.gmtime(time.time() + wait))}"
            loop.stop.wait(wait)
        loop.stop.set()  # /healthz says the loop is over from here on
    log(f"runbook watch: stopped ({loop.signal or f'{runs} run(s) done'})")
    return 0


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _one_run(opts: WatchOptions, output: Path, project: str, metrics: WatchMetrics, previous: Path | None,
             log: Callable[[str], None], loop: _Loop) -> Path | None:
    """One read-only run, published; returns the run the next one compares with."""
    from runbook_lib.run.runner import run

    t0, quiet = time.monotonic(), (log if opts.verbose else (lambda s: None))
    counted = False
    try:
        result = run(opts.params, compose_files=opts.compose_files, output=output, phases=opts.phases,
                     kernel=opts.kernel, progress=quiet, read_only=True)
    except InputError as exc:  # the parameters file (or a compose file) is not valid now: nothing to run
        metrics.count_error()
        log(f"runbook watch: ERROR: no run: {exc} (the last verdict stays published; fix the file, the next run "
            "reads it again)")
        return previous
    except RunbookError as exc:  # the engine away (restarting), Compose missing: an ERROR run
        metrics.count_error()
        counted = True
        log(f"runbook watch: ERROR: the run could not be made: {type(exc).__name__}: {exc} (recorded as an ERROR run)")
        try:
            result = error_run(opts, output, f"{type(exc).__name__}: {exc}")
        except Exception as again:  # noqa: BLE001 - the loop goes on
            log(f"runbook watch: ERROR: no run: {exc}; and its ERROR run could not be written: {again}")
            return previous
    except Exception as exc:  # noqa: BLE001 - whatever broke one run (a full disk...), the loop goes on
        metrics.count_error()
        log(f"runbook watch: ERROR: the run failed: {type(exc).__name__}: {exc}")
        return previous
    except KeyboardInterrupt:  # a second signal during a run: the runner stopped at once
        loop.signal = loop.signal or "a second signal"
        loop.stop.set()
        return previous
    remember(output, result.run_dir)
    if result.interrupted:  # the runner's own handler had the signal during the run
        loop.signal = loop.signal or result.interrupted
        loop.stop.set()
        log(f"runbook watch: {result.interrupted} during a run: {result.run_dir.name} was cut short (not published)")
        return previous
    if not counted and any(p.get("status") == "error" for p in result.summary.get("phases", [])):
        metrics.count_error()  # a phase did not complete (the engine went away during the run)
    duration = time.monotonic() - t0
    new = _compare(previous, result.run_dir, log)
    metrics.publish(Published(result.verdict, _record_keys(result.run_dir), new, time.time(), duration))
    v = result.verdict
    _set_link(output, LATEST, result.run_dir)
    if v["verdict"] == "GO":
        _set_link(output, LAST_GO, result.run_dir)
    removed = prune(output, project, opts.keep)
    # the verdict's line comes once the output directory is settled (links set, old runs removed): whoever
    # reads the log and then the directory sees what the line says
    log(f"runbook watch: {v['verdict']}: {project} ({len(v.get('blockers') or [])} blocker(s), "
        f"{v.get('records', 0)} records) in {duration:.0f} s: {result.run_dir}")
    for gone in removed:
        log(f"runbook watch: removed {gone.name} (older than the {opts.keep} kept)")
    return result.run_dir


def error_run(opts: WatchOptions, output: Path, reason: str):
    """A run the engine could not serve, as a signed run directory: every phase recorded ERROR (``runner.phase``,
    "not run: <reason>"), judged and signed like any run (NO-GO: could not look is never a pass)."""
    from runbook_lib.params import load_params, with_overrides
    from runbook_lib.results import signing
    from runbook_lib.results.records import utcnow, write_records
    from runbook_lib.run.rundir import new_run_dir
    from runbook_lib.run.runner import archive_inputs, runner_record, finish
    from runbook_lib.run.validation import choose_phases

    params = with_overrides(load_params(opts.params), compose_files=opts.compose_files)
    params = choose_phases(params.model_copy(update={"read_only": True}), opts.phases)
    key = signing.resolve_key(params.signoff.signing_key, generate_missing=params.signoff.generate_missing_key)
    run_dir = new_run_dir(output, params.project)
    started = utcnow()
    params = archive_inputs(params, run_dir, started, show_code=False)
    entries = []
    for phase in params.phases:
        rec = runner_record(phase, "ERROR", f"not run: {reason}", {"reason": reason, "by": "runbook watch"})
        write_records(run_dir / "results" / f"{phase}.json", [rec])
        entries.append({"phase": phase, "status": "error", "detail": reason, "records": 1, "duration_s": 0.0})
    return finish(run_dir, params, started, entries, progress=lambda s: None, signing_key=key)


def _record_keys(run_dir: Path) -> list[tuple[str, str, str]]:
    from runbook_lib.results.records import read_records

    return [(r.id, r.target, r.status) for p in sorted((run_dir / "results").glob("*.json")) for r in read_records(p)]


def _compare(previous: Path | None, new: Path, log: Callable[[str], None]) -> list[tuple[str, str]]:
    """Log what changed since ``previous`` (each new blocker in one line: check@target, its status and severity,
    what it was before, what it says now; each resolved one); returns the new blockers' (check, target)."""
    from runbook_lib.results.compare import compare_runs

    if previous is None or not previous.is_dir():
        return []
    try:
        d = compare_runs(previous, new)
    except RunbookError as exc:
        log(f"runbook watch: not compared with {previous.name}: {exc}")
        return []
    was = {c["ref"]: c["old"] for c in d.status_changes}
    only_new = set(d.only_new)
    for b in d.new_blockers:
        before = was.get(b["ref"]) or ("not recorded" if b["ref"] in only_new else "waived")
        log(f"runbook watch: NEW BLOCKER {b['ref']}: {b['status']} ({b['severity']}), was {before}: "
            f"{' '.join(str(b.get('actual', '')).split())[:240]}")
    for b in d.resolved_blockers:
        log(f"runbook watch: resolved {b['ref']}: now {b['now']}")
    return [(b["id"], b["target"]) for b in d.new_blockers]


def _run_dirs(output: Path, project: str) -> list[Path]:
    """The run directories of ``project`` under ``output``, oldest first (by their UTC-stamped names)."""
    pattern = re.compile(r"\d{8}T\d{6}Z-" + re.escape(project) + r"(-\d+)?")
    return sorted(p for p in output.iterdir() if pattern.fullmatch(p.name) and not p.is_symlink()
                  and p.is_dir() and (p / "run.json").is_file())


#: In the watcher's output directory: the names of the run directories the watcher made, one per line. Only
#: those are ever removed, so an --output shared with runs of `runbook run` (a GO run a rollback needs) loses none.
MADE = ".runbook-watch-runs"


def remember(output: Path, run_dir: Path) -> None:
    """Note ``run_dir`` as made by the watcher (see :data:`MADE`)."""
    with open(output / MADE, "a", encoding="utf-8") as fh:
        fh.write(run_dir.name + "\n")


def prune(output: Path, project: str, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` run directories of ``project`` that the watcher made under ``output``
    (:data:`MADE`), sparing the ones ``latest`` and ``last-go`` link to; returns what was removed."""
    spared = {p.resolve() for p in (_link(output, LATEST), _link(output, LAST_GO)) if p}
    made = set((output / MADE).read_text(encoding="utf-8").split()) if (output / MADE).is_file() else set()
    removed = []
    for p in [d for d in _run_dirs(output, project) if d.name in made][:-keep]:
        if p.resolve() not in spared:
            shutil.rmtree(p)
            removed.append(p)
    if removed:
        left = [line for line in (output / MADE).read_text(encoding="utf-8").split() if line not in {p.name for p in removed}]
        (output / MADE).write_text("".join(f"{n}\n" for n in left), encoding="utf-8")
    return removed


def _link(output: Path, name: str) -> Path | None:
    link = output / name
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def _set_link(output: Path, name: str, run_dir: Path) -> None:
    """``output/name`` -> ``run_dir`` (relative), replaced atomically."""
    tmp = output / f".{name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, output / name)
