"""Fleets: one run over several engines (``targets:`` in the parameters), one aggregate verdict.

Each target runs as a complete ordinary run (``runbook run``) in a subprocess of its own, with that target's
DOCKER_HOST and a parameters file derived from the fleet's (without ``targets``, loopback URLs pointed at the
target's ``address``); its run directory is ``targets/NAME/`` inside the fleet's. Why a subprocess per target
rather than threads in one process (a choice that is hard to undo, so written down): DOCKER_HOST is process
state that the docker SDK, the Compose CLI and every phase kernel read from the environment; one process per
target isolates it without threading an engine handle through every check, and reuses everything an ordinary
run already guarantees (fresh kernels, the secret broker, SIGINT restoring what a drill broke, the archive).

Order: with no destructive phase asked, every target runs at once. With one (redeploy, drills), the targets
are rolled one at a time in the order listed; after the first target that is NO-GO (or could not run), the
others still run their read-only phases but their destructive phases are recorded SKIP ("rollout stopped:
target X is NO-GO"), unless ``fleet.parallel_destructive: true``.

Before any target runs, each engine is reached once by a short subprocess (:mod:`runbook_lib.run.fleet_targets`, bounded by
``engine.call_timeout_s``): a target whose engine does not answer is an ERROR (``fleet.target_reachable``) and
is not run; the others are. The same subprocess reads the target's secrets (the compose model's secret files
and the files of its containers' secrets mounts, through that target's engine) and hands the values back on
a pipe. Every target's run learns the union of all targets' values before it writes anything (through an
inherited pipe, :data:`SECRETS_FD_ENV`; never a file, an argument or an environment value), so a value of
target A that shows up in target B's output is redacted there too. After the runs, every text file of the
fleet directory is scrubbed again with the union (a backstop; what it changed is listed in run.json).

The fleet directory then gets its own records (results/fleet.json: reachability and each target's verdict),
verdict.json (NO-GO when any target is, listing which; every target's blockers with the target qualified:
``staging/auth-service``), summary.json/.md, junit.xml, report.html (the verification table with a column
per target) and ONE manifest.json (signed with the run's key) covering every file of every target, so
``runbook verify`` and ``runbook report`` work on the fleet directory as on any run.
"""
from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any, Callable

import yaml

from runbook_lib import __version__
from runbook_lib.deploy import open_deployment
from runbook_lib.engine import Engine
from runbook_lib.errors import RunbookError
from runbook_lib.package_data import NOTEBOOKS
from runbook_lib.params import Params, dump_resolved
from runbook_lib.results import fleet_report, report, signing
from runbook_lib.results import verdict as verdicts
from runbook_lib.results.manifest import MANIFEST, write_manifest
from runbook_lib.results.fleet_verdict import FLEET_RESULTS, TARGETS_DIR, judge, write_summary_md
from runbook_lib.results.records import Check, CheckRecord, utcnow, write_records
from runbook_lib.results.redact import Redactor
from runbook_lib.results.registry import CheckSpec, declare
from runbook_lib.run.fleet_targets import TargetRun, learn, resolve_endpoint, run_target, target_params
from runbook_lib.run.rundir import RunResult, new_run_dir
from runbook_lib.run.signals import SignalScope
from runbook_lib.run.validation import (check_notebooks, check_parameters, check_services, choose_phases,
                                        destructive_phases)

declare(CheckSpec("fleet.target_reachable", "The target's engine answers", "runner", "critical", "Run integrity",
                  remediation="Start the engine or fix the target's docker_host/context (ssh: the key, the user's "
                              "access to the engine); `DOCKER_HOST=... docker version` must answer.",
                  function="runbook_lib.run.fleet:run"))
declare(CheckSpec("fleet.target_verdict", "The target's own run is GO", "runner", "critical", "Run integrity",
                  remediation="Open the target's report (targets/NAME/report.html) and fix its blockers.",
                  function="runbook_lib.run.fleet:run"))


class _Signals(SignalScope):
    """SIGINT/SIGTERM while the fleet runs: forwarded as SIGINT to every target's run (each restores what
    it broke and writes its run directory); targets not started yet are not started. The fleet directory is
    still written. A second signal is forwarded as SIGTERM (each target's run then stops at once)."""

    def __init__(self, runs: list[TargetRun], progress: Callable[[str], None]) -> None:
        super().__init__()
        self.runs, self.progress = runs, progress

    def _on_signal(self, signum: int, _frame: Any) -> None:
        again = bool(self.signal)
        self.signal = self.signal or signal.Signals(signum).name
        self.progress(f"runbook: {signal.Signals(signum).name}: interrupting every target's run (each restores what it "
                      "broke); the fleet directory is still written." + ("" if again else " Send it again to stop at once."))
        for t in self.runs:
            if t.proc is not None and t.proc.poll() is None:
                try:
                    t.proc.send_signal(signal.SIGTERM if again else signal.SIGINT)
                except ProcessLookupError:
                    pass


# -- the fleet run -----------------------------------------------------------------------------------------

def run(params: Params, *, output: str | Path = "outputs", phases: list[str] | None = None, kernel: str = "python3",
        show_code: bool = False, progress: Callable[[str], None] = print, notebooks: Path = NOTEBOOKS,
        run_dir: Path | None = None) -> RunResult:
    """The runbook over every target of ``params.targets``; returns the fleet directory's RunResult."""
    chosen, endpoints, key = _validate(params, phases, notebooks)
    destructive = [] if params.read_only else [p for p in chosen if p in destructive_phases()]
    rolling = bool(destructive) and not params.fleet.parallel_destructive
    run_dir = _new_fleet_dir(params, output, run_dir)
    started = utcnow()
    (run_dir / TARGETS_DIR).mkdir()
    runs = [TargetRun(t.name, endpoints[i], i) for i, t in enumerate(params.targets)]
    progress(f"runbook: fleet of {len(runs)} targets ({', '.join(f'{t.name} at {t.endpoint}' for t in runs)}); "
             f"phases {', '.join(chosen)}; " + (f"destructive phases ({', '.join(destructive)}) rolled one target at a "
                                                "time" if rolling else "every target at once"))
    progress(f"runbook: run directory {run_dir}")
    files = _write_target_params(params, runs, run_dir)
    union, redactor = _reach(runs, files, params.engine.call_timeout_s * 2 + 30, key, progress)

    def go(t: TargetRun) -> None:
        if signals.signal:  # interrupted before this target started: not started
            t.skipped = f"the fleet run was interrupted ({signals.signal})"
            return
        run_target(t, files[t.name], run_dir / TARGETS_DIR / t.name, chosen, union, redactor, kernel=kernel,
                   show_code=show_code, timeout_s=params.fleet.target_timeout_s, progress=progress,
                   interrupted=lambda: signals.signal)

    signals = _Signals(runs, progress)
    with signals:
        if rolling:
            _roll_out(runs, go, run_dir, progress)
        else:
            _all_at_once(runs, go)
        interrupted = signals.signal
    changed = scrub_tree(run_dir, redactor, key)
    result = finish(run_dir, params, runs, started, chosen, rolling=rolling, show_code=show_code, key=key,
                    redacted=changed, progress=progress)
    result.interrupted = interrupted
    return result


def _validate(params: Params, phases: list[str] | None,
              notebooks: Path) -> tuple[list[str], list[str], Path | None]:
    """What every target's run would refuse, refused once, before any engine is touched (exit 2): the checks of
    an ordinary run (:mod:`runbook_lib.run.validation`; the services against the model of the deployment every
    target runs, resolved here without an engine), then each target's endpoint. Returns the phases to run, the
    endpoints and the signing key. Each target's run opens the same deployment in its own process, reading its
    own engine."""
    checked = choose_phases(params.model_copy(), phases)
    check_parameters(checked)
    deployment = open_deployment(params, _engine_of_each_target)
    check_services(checked, set(deployment.declared_services))
    check_notebooks(checked, notebooks)
    endpoints = [resolve_endpoint(params, i) for i in range(len(params.targets))]  # InputError: nothing touched
    key = signing.resolve_key(params.signoff.signing_key, generate_missing=params.signoff.generate_missing_key)
    return list(checked.phases), endpoints, key


def _engine_of_each_target() -> Engine:
    """The fleet process reads no engine: DOCKER_HOST is process state, so each target's engine is read by
    that target's own run (see the module's docstring)."""
    raise RunbookError("a fleet reads each target's engine in that target's own run, not in the fleet process")


def _new_fleet_dir(params: Params, output: str | Path, run_dir: Path | None) -> Path:
    """The fleet's directory: a new one under ``output``, or ``run_dir`` (new); no ``notebooks/`` of its own."""
    if run_dir is None:
        run_dir = new_run_dir(Path(output).resolve(), f"{params.project}-fleet")
        (run_dir / "notebooks").rmdir()
    else:
        (run_dir / "results").mkdir(parents=True, exist_ok=False)
    return run_dir


def _write_target_params(params: Params, runs: list[TargetRun], run_dir: Path) -> dict[str, Path]:
    """Each target's parameters, kept in the fleet directory as ``inputs/NAME.yaml`` (what its run was given;
    no secret values)."""
    (run_dir / "inputs").mkdir()
    files = {}
    for t in runs:
        files[t.name] = run_dir / "inputs" / f"{t.name}.yaml"
        files[t.name].write_text(f"# The parameters of target {t.name} ({t.endpoint}), derived from {params.source}\n"
                                 + yaml.safe_dump(target_params(params, t.index), sort_keys=False), encoding="utf-8")
    return files


def _reach(runs: list[TargetRun], files: dict[str, Path], deadline_s: float, key: Path | None,
           progress: Callable[[str], None]) -> tuple[list[tuple[str, str]], Redactor]:
    """Reach every target's engine at once (:func:`~runbook_lib.run.fleet_targets.learn`); returns the union of
    every target's secret values (with where each was found) and a redactor that knows them and the key."""
    probes = [threading.Thread(target=learn, args=(t, files[t.name], deadline_s)) for t in runs]
    for th in probes:
        th.start()
    for th in probes:
        th.join()
    union: list[tuple[str, str]] = []
    seen: set[str] = set()
    for t in runs:
        progress(f"{t.name}: " + (f"engine {t.engine.get('version', '?')} answers at {t.endpoint}" if t.reachable
                                  else f"UNREACHABLE: {t.error}"))
        for value, source in t.values:
            if value not in seen:
                seen.add(value)
                union.append((value, f"target {t.name}: {source}"))
    redactor = Redactor(v for v, _ in union)
    if key:
        redactor.learn_files([key])
    return union, redactor


def _roll_out(runs: list[TargetRun], go: Callable[[TargetRun], None], run_dir: Path,
              progress: Callable[[str], None]) -> None:
    """One target at a time, in the order listed; after the first that is NO-GO (or unreachable) the others run
    with their destructive phases skipped."""
    stop = ""
    for t in runs:
        if not t.reachable:
            stop = stop or f"rollout stopped: target {t.name} is NO-GO (unreachable)"
            continue
        t.rollout_stopped = stop
        go(t)
        if _target_verdict(run_dir, t.name) != "GO" and not stop:
            stop = f"rollout stopped: target {t.name} is NO-GO"
            progress(f"runbook: {stop}; the remaining targets run their read-only phases only")


def _all_at_once(runs: list[TargetRun], go: Callable[[TargetRun], None]) -> None:
    """Every reachable target at once, each in a thread."""
    threads = [threading.Thread(target=go, args=(t,)) for t in runs if t.reachable]
    for th in threads:
        th.start()
    for th in threads:
        while th.is_alive():
            th.join(0.5)  # the main thread stays responsive to signals


def _target_verdict(run_dir: Path, name: str) -> str:
    try:
        return verdicts.read(run_dir / TARGETS_DIR / name)["verdict"]
    except (OSError, ValueError, KeyError):
        return ""


_TEXT_SUFFIXES = {".json", ".md", ".xml", ".html", ".ipynb", ".yaml", ".yml", ".txt", ".log", ".csv", ".svg"}


def scrub_tree(run_dir: Path, redactor: Redactor, key: Path | None) -> list[str]:
    """The backstop: scrub every text file of the fleet directory with the union of every target's secrets.
    A target whose files changed gets its verdict re-judged (only when a results file changed: redaction
    changes no status) and its manifest rewritten and re-signed. Returns the files changed (relative)."""
    from runbook_lib.params import load_params

    changed: list[str] = []
    for p in sorted(run_dir.rglob("*")):
        if not p.is_file() or p.suffix not in _TEXT_SUFFIXES or p.name == MANIFEST:
            continue
        text = p.read_text(encoding="utf-8", errors="surrogateescape")
        clean = redactor.scrub_known(text)
        if clean != text and p.suffix in (".yaml", ".yml"):  # a marker starts with "[": re-dumped, not spliced
            header = "".join(ln for ln in text.splitlines(keepends=True) if ln.startswith("#"))
            clean = header + yaml.safe_dump(redactor.scrub(yaml.safe_load(text)), sort_keys=False)
        if clean != text:
            p.write_text(clean, encoding="utf-8", errors="surrogateescape")
            changed.append(str(p.relative_to(run_dir)))
    for sub in sorted((run_dir / TARGETS_DIR).iterdir()) if (run_dir / TARGETS_DIR).is_dir() else []:
        mine = [c for c in changed if c.startswith(f"{TARGETS_DIR}/{sub.name}/")]
        if not mine or not (sub / MANIFEST).exists():
            continue
        if any("/results/" in c for c in mine) and (sub / verdicts.VERDICT_FILE).exists():
            verdicts.write(sub, verdicts.judge(sub, load_params(sub / "params.yaml")))
        signing.sign_file(write_manifest(sub), key) if key else write_manifest(sub)
    return changed


def _fleet_records(runs: list[TargetRun], run_dir: Path) -> list[CheckRecord]:
    recs = []
    reach, verdict = Check("fleet.target_reachable"), Check("fleet.target_verdict")
    for t in runs:
        ev = {"docker_host": t.endpoint, "probe": "docker version through the target's DOCKER_HOST, bounded by "
                                                   "engine.call_timeout_s"}
        if t.reachable:
            recs.append(reach.record(t.name, "PASS", expected="the engine answers", evidence={**ev, "engine": t.engine},
                                     actual=f"Docker {t.engine.get('version', '?')} ({t.engine.get('os', '')}/"
                                            f"{t.engine.get('arch', '')}) answered at {t.endpoint}",
                                     command=f"DOCKER_HOST={t.endpoint} docker version"))
        else:
            recs.append(reach.record(t.name, "ERROR", expected="the engine answers", evidence={**ev, "error": t.error},
                                     actual=t.error or "not reached", command=f"DOCKER_HOST={t.endpoint} docker version"))
        sub = run_dir / TARGETS_DIR / t.name
        cmd = f"DOCKER_HOST={t.endpoint} runbook run --params <{t.name}'s parameters> --run-dir {TARGETS_DIR}/{t.name}"
        try:
            v = verdicts.read(sub)
        except (OSError, ValueError):
            v = None
        if v is None:
            why = (t.skipped or (f"not run: its engine is unreachable ({t.error})" if not t.reachable else "")
                   or f"the target's run exited {t.exit_code} without a verdict" + (f" ({t.error})" if t.error else "")
                   + (f": {t.stderr_tail[-1]}" if t.stderr_tail else ""))
            status = "SKIP" if t.skipped else "ERROR"
            recs.append(verdict.record(t.name, status, expected="GO", actual=why, command=cmd,
                                       evidence={"exit_code": t.exit_code, "stderr_tail": t.stderr_tail[-5:]}))
            continue
        ev = {"run_dir": f"{TARGETS_DIR}/{t.name}", "verdict": v["verdict"], "counts": v["counts"],
              "blockers": [b["ref"] for b in v["blockers"]], "exit_code": t.exit_code,
              "verdict_sha256": verdicts.file_sha256(sub / verdicts.VERDICT_FILE)}
        if t.rollout_stopped:
            ev["rollout_stopped"] = t.rollout_stopped
        if t.error:  # interrupted for overrunning fleet.target_timeout_s (its verdict says what was not run)
            ev["interrupted"] = t.error
        if v["verdict"] == "GO":
            recs.append(verdict.record(t.name, "PASS", expected="GO", actual=f"GO ({v['records']} records)",
                                       evidence=ev, command=cmd))
        else:
            recs.append(verdict.record(t.name, "FAIL", expected="GO", evidence=ev, command=cmd,
                                       actual=(f"{t.error}; " if t.error else "") + f"NO-GO: {len(v['blockers'])} blocker(s): "
                                              + ", ".join(b["ref"] for b in v["blockers"][:6])
                                              + (f" and {len(v['blockers']) - 6} more" if len(v["blockers"]) > 6 else "")))
    return recs


def finish(run_dir: Path, params: Params, runs: list[TargetRun], started: str, phases: list[str], *, rolling: bool,
           show_code: bool, key: Path | None, redacted: list[str], progress: Callable[[str], None]) -> RunResult:
    write_records(run_dir / "results" / f"{FLEET_RESULTS}.json", _fleet_records(runs, run_dir))
    dump_resolved(params, run_dir / "params.yaml")
    (run_dir / verdicts.RUN_FILE).write_text(json.dumps({
        "schema": 1, "fleet": True, "project": params.project, "started": started, "toolkit_version": __version__,
        "params_source": str(params.source), "phases": phases, "show_code": show_code, "rolling": rolling,
        "targets": [{"name": t.name, "docker_host": t.endpoint, "duration_s": t.duration_s, "exit_code": t.exit_code}
                    for t in runs],
        "redacted_after_run": redacted,
    }, indent=1) + "\n", encoding="utf-8")
    v = judge(run_dir, params)
    verdicts.write(run_dir, v)
    entries = [{"phase": "runner", "status": "completed", "detail": "the fleet's own records (results/fleet.json)",
                "records": len(runs),
                "duration_s": max([t.duration_s for t in runs] or [0.0])}]
    summary = report.build_summary(v, entries)
    summary["targets"] = v["fleet"]["targets"]
    summary["target_blockers"] = [b["ref"] for b in v["target_blockers"]]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_summary_md(run_dir, v)
    report.write_junit(run_dir, v, entries)
    fleet_report.write_html(run_dir, v)
    manifest = write_manifest(run_dir)
    if key:
        signing.sign_file(manifest, key)
        progress(f"runbook: fleet manifest signed with {key}")
    for t in v["fleet"]["targets"]:
        progress(f"runbook: {t['name']}: {t['verdict']}")
    return RunResult(run_dir, v, summary)
