"""Headless runs: validate everything first, then execute the phase notebooks with papermill
in-process, keep our own status per phase, and write the run directory (contract: docs/design.md).

Why the runner keeps its own status: papermill leaves a notebook that looks completed when a cell
times out, and a dead kernel leaves no error cell at all. A phase is "completed" only when papermill
returned normally AND the phase wrote its results file; anything else is ERROR.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import nbformat
from papermill.exceptions import PapermillExecutionError

from runbook_lib import __version__
from runbook_lib.errors import InputError
from runbook_lib.package_data import NOTEBOOKS
from runbook_lib.params import Params, dump_resolved, load_params, with_overrides
from runbook_lib.results import report, signing
from runbook_lib.results.manifest import write_manifest
from runbook_lib.results import verdict as verdicts
from runbook_lib.results.policy import evaluate
from runbook_lib.results.records import Check, CheckRecord, read_records, utcnow, write_records
from runbook_lib.run import deployed, kernels as nb_kernels
from runbook_lib.run.broker import ENV as BROKER_ENV, SecretBroker
from runbook_lib.run.context import Context
from runbook_lib.run.kernels import KERNEL, KernelPool
from runbook_lib.run.rundir import RunResult, new_run_dir
from runbook_lib.run.signals import SignalScope
from runbook_lib.run.validation import (check_notebooks, check_parameters, check_services, choose_phases,
                                        destructive_phases)

if TYPE_CHECKING:
    from runbook_lib.results.frames import Run
    from runbook_lib.run.lock import RunGuard


class _Interrupts(SignalScope):
    """SIGINT/SIGTERM while the runner runs: forward SIGINT to the running kernel (whose cell then
    fails after restoring whatever it had broken: faults.Fault handles SIGINT), stop before the next
    phase, and still write the run directory. A second signal stops at once."""

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.signal:  # the second one: stop now
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        print(f"runbook: {self.signal}: interrupting the running phase (it restores what it broke); "
              "the run directory is still written. Send it again to stop at once.", file=sys.stderr, flush=True)
        nb_kernels.interrupt_running()


def validate(params: Params, progress: Callable[[str], None], notebooks: Path = NOTEBOOKS) -> tuple[Context, Path | None]:
    """Everything that can be checked before a container is touched (:mod:`runbook_lib.run.validation`, and the
    engine answers): the run's context, and the signing key the manifest will be signed with (None: unsigned).
    Raises InputError (exit 2) or EnvironmentProblem (exit 3) with one clear message."""
    check_parameters(params)
    os.environ.pop(BROKER_ENV, None)  # a run started from inside another run's phase reads for itself
    ctx = Context(params=params, progress=progress)
    ctx.engine  # EngineUnavailable -> exit 3
    check_services(params, set(ctx.services))  # ComposeConfigError -> exit 2; ComposeNotFound -> exit 3
    check_notebooks(params, notebooks)
    key = signing.resolve_key(params.signoff.signing_key, generate_missing=params.signoff.generate_missing_key)
    ctx.learn_secrets()
    from runbook_lib.run.fleet_targets import learn_inherited

    learn_inherited(ctx)  # a fleet's target: every other target's secrets too (before anything is written)
    if key:
        ctx.redactor.learn_files([key])  # a private key never reaches an output
    return ctx, key


def runner_record(phase: str, status: str, actual: str, evidence: dict, severity: str = "critical") -> CheckRecord:
    """The runner's own record of a phase (``runner.phase``): SKIP or ERROR when the notebook did not run to the end."""
    c = Check("runner.phase", phase=phase, severity=severity, command=f"papermill notebooks/{phase}.ipynb ...")
    return c.record(phase, status, expected="the phase notebook runs to completion and saves its records",
                    actual=actual, evidence=evidence)


def run_phase(phase: str, ctx: Context, run_dir: Path, *, kernel: str = KERNEL, notebooks: Path = NOTEBOOKS,
              kernels: KernelPool | None = None, upcoming: Sequence[str] = ()) -> dict:
    """Execute one phase notebook in a fresh kernel (from ``kernels``, started ahead, or started now);
    returns the phase's entry of summary.json."""
    out_nb = run_dir / "notebooks" / f"{phase}.ipynb"
    results = run_dir / "results" / f"{phase}.json"
    t0 = time.monotonic()
    status, detail, extra = "completed", "", []
    km = None
    own = kernels is None
    kernels = kernels or KernelPool(kernel, run_dir)
    try:
        # the kernel works in the run directory, never in the notebooks' (an installed package)
        km = kernels.take(phase, upcoming)
        nb_kernels.TrackedKernelManager.live.append(km)
        nb_kernels.execute(notebooks / f"{phase}.ipynb", out_nb,
                           {"params_file": str(run_dir / "params.yaml"), "run_dir": str(run_dir)},
                           cwd=run_dir, kernel=kernel, km=km, timeout_s=int(ctx.params.cell_timeout_s), stderr=True)
    except PapermillExecutionError as exc:
        status, detail = "error", f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - dead kernel, cell timeout, papermill I/O: all ERROR
        status, detail = "error", f"{type(exc).__name__}: {exc}"
    finally:
        nb_kernels.TrackedKernelManager.live.clear()
        if km is not None:
            kernels.retire(km)
        if own:
            kernels.__exit__(None, None, None)
    if status == "completed" and not results.exists():
        status, detail = "error", "the notebook finished without writing its results"
    if status == "error":
        extra.append(runner_record(phase, "ERROR", detail, {"notebook": str(out_nb.relative_to(run_dir)), "error": detail}))
    written = read_records(results) if results.exists() else []
    recs = [CheckRecord.from_dict(ctx.redactor.scrub(r.fields())) for r in written + extra]
    if extra or recs != written:  # the phase's file is final once the phase ends: written again only when
        write_records(results, recs)  # the runner adds its record or the backstop redaction changed a value
    _scrub_notebook(out_nb, ctx)
    return {"phase": phase, "status": status, "detail": detail, "records": len(recs),
            "duration_s": round(time.monotonic() - t0, 1)}


def _scrub_notebook(path: Path, ctx: Context) -> None:
    """Backstop: redact every string of the executed notebook (outputs included). Written again only when
    that changed something (reading it as JSON and comparing costs a tenth of nbformat's validated write)."""
    if not path.exists() or not len(ctx.redactor):
        return
    raw = json.loads(path.read_text(encoding="utf-8"))
    scrubbed = ctx.redactor.scrub(raw)
    if scrubbed != raw:
        nbformat.write(nbformat.from_dict(scrubbed), path)


def _skip_phase(phase: str, run_dir: Path, why: str) -> dict:
    rec = runner_record(phase, "SKIP", f"not run: {why}", {"reason": why})
    write_records(run_dir / "results" / f"{phase}.json", [rec])
    return {"phase": phase, "status": "skipped", "detail": why, "records": 1, "duration_s": 0.0}


def run(params_path: str | Path, *, compose_files: list[Path] | None = None, output: str | Path = "outputs",
        phases: list[str] | None = None, kernel: str = KERNEL, show_code: bool = False,
        progress: Callable[[str], None] = print, notebooks: Path = NOTEBOOKS,
        baseline: Path | None = None, run_dir: Path | None = None, skip_destructive: str = "",
        read_only: bool = False, wait_s: float = 0, strategy: str | None = None) -> RunResult:
    """The whole runbook: validate, run each phase, decide, write the run directory. ``baseline``: an
    earlier run (the last GO), verified before anything runs; the report then says what changed since it.
    ``run_dir``: this directory (new or empty) instead of a new one under ``output``. ``skip_destructive``: the
    destructive phases are recorded SKIP for this reason (a fleet's rollout that stopped). ``read_only`` (or
    ``read_only: true`` in the parameters): nothing changes the deployment (:func:`~runbook_lib.run.validation.read_only_phases`). Parameters
    with ``targets`` run as a fleet (:mod:`runbook_lib.run.fleet`). ``strategy``: ``redeploy.strategy`` for this run."""
    params = with_overrides(load_params(params_path), compose_files=compose_files, strategy=strategy)
    if read_only:
        params = params.model_copy(update={"read_only": True})
    if params.targets:
        if baseline or strategy:
            raise InputError(f"--{'baseline' if baseline else 'strategy'} is not supported for a fleet run yet "
                             "(give it to one target's run, or set it in the parameters)")
        from runbook_lib.run import fleet

        return fleet.run(params, output=output, phases=phases, kernel=kernel, show_code=show_code,
                         progress=progress, notebooks=notebooks, run_dir=run_dir)
    base = _open_baseline(baseline) if baseline else None
    params = choose_phases(params, phases)
    # The signal handler from here on: a SIGINT/SIGTERM while validating (a fleet's target interrupted for its
    # time budget early) lets validation finish, then every phase is recorded skipped and the run directory
    # is written, as for one arriving between phases. (A validation error is still raised, writing nothing.)
    with _Interrupts() as interrupts, contextlib.ExitStack() as held:
        progress(f"runbook: validating {params.source} ({params.project})")
        ctx, signing_key = validate(params, progress, notebooks)
        guard = held.enter_context(_deploy_lock(ctx, params, skip_destructive, wait_s, progress))
        logging.getLogger("papermill").setLevel(logging.WARNING)
        if run_dir is None:
            run_dir = new_run_dir(Path(output).resolve(), params.project)
        else:
            run_dir = Path(run_dir).resolve()
            (run_dir / "notebooks").mkdir(parents=True)  # exists already: an error, never a run written over another
            (run_dir / "results").mkdir()
        started = utcnow()
        params = archive_inputs(params, run_dir, started, show_code=show_code)
        deployment = _deployment_record(ctx, params, skip_destructive)
        progress(f"runbook: run directory {run_dir}")
        guard.attach(run_dir)
        phase_entries, stop_reason = [], skip_destructive
        with SecretBroker(ctx) as broker, KernelPool(kernel, run_dir, broker.env) as kernels:
            for i, phase in enumerate(params.phases, 1):
                if interrupts.signal:
                    stop_reason = f"the run was interrupted ({interrupts.signal})"
                    phase_entries.append(_skip_phase(phase, run_dir, stop_reason))
                    progress(f"[{i}/{len(params.phases)}] {phase}: skipped ({stop_reason})")
                    continue
                stop_reason = _run_one(i, phase, params, ctx, run_dir, phase_entries, stop_reason, started,
                                       kernels=kernels, notebooks=notebooks, progress=progress)
                if phase in destructive_phases() and phase_entries[-1]["status"] != "skipped":
                    broker.refresh()  # new containers: the next phases get their secrets read once, here
                if interrupts.signal and phase_entries[-1]["status"] == "completed":
                    phase_entries[-1]["detail"] = f"completed, then {interrupts.signal} arrived"
            if deployment is not None:
                deployed.write(run_dir, deployment, ctx)
                if not interrupts.signal:
                    from runbook_lib.run.rollback_run import after_smoke_tests

                    after_smoke_tests(ctx, run_dir, progress)  # redeploy.on_failure: rollback
            if params.phases:
                guard.record_into(run_dir / "results" / f"{params.phases[-1]}.json")
            # inside: the last phase's kernel exits while the verdict and the report are written
            result = finish(run_dir, params, started, phase_entries, show_code=show_code, progress=progress,
                            signing_key=signing_key, baseline=base)
    result.interrupted = interrupts.signal
    return result


def _deploy_lock(ctx: Context, params: Params, skip_destructive: str, wait_s: float,
                 progress: Callable[[str], None]) -> "RunGuard":
    """The run's deploy lock (:mod:`runbook_lib.run.lock`): held when a phase of it changes the deployment (a
    read-only run's phase 4 changes nothing: it only watches the lock, as every read-only run does)."""
    from runbook_lib.run.lock import RunGuard

    destructive = (not skip_destructive and not params.read_only
                   and bool(set(params.phases or ()) & set(destructive_phases())))
    return RunGuard(ctx.engine, params, destructive=destructive, wait_s=wait_s, progress=progress)


def _deployment_record(ctx: Context, params: Params, skip_destructive: str) -> dict | None:
    """What phase 1 of this run is about to deploy (:mod:`runbook_lib.run.deployed`), taken before it runs;
    None when the run does not redeploy a compose project (then it records no deployment.json)."""
    if (params.mode != "compose" or params.read_only or skip_destructive
            or "01_controlled_redeployment" not in (params.phases or ())):
        return None
    return deployed.describe(ctx)


def _open_baseline(path: Path) -> "Run":
    """The baseline run, read once and verified (an input error, exit 2, when it does not verify)."""
    from runbook_lib.results.frames import UnverifiedRun, open_run

    try:
        return open_run(path)
    except UnverifiedRun as exc:
        raise InputError(f"--baseline: {exc}") from None


def archive_inputs(params: Params, run_dir: Path, started: str, *, show_code: bool) -> Params:
    """Write what the run is judged on into its directory, so its verdict can be re-derived from the
    archive alone: the resolved parameters, a copy of the waivers file (the run's params.yaml points at
    the copy) and run.json (start time, toolkit version, phases, how the report was rendered)."""
    archived = params
    if params.policy.waivers_file:
        copy = run_dir / "waivers.yaml"
        copy.write_bytes(Path(params.policy.waivers_file).read_bytes())
        params = params.model_copy(update={"policy": params.policy.model_copy(update={"waivers_file": copy})})
        # relative in the run's params.yaml, so a copied or moved run directory still judges with its own copy
        archived = params.model_copy(update={"policy": params.policy.model_copy(update={"waivers_file": Path(copy.name)})})
    dump_resolved(archived, run_dir / "params.yaml")
    (run_dir / verdicts.RUN_FILE).write_text(json.dumps({
        "schema": 1, "project": params.project, "started": started, "toolkit_version": __version__,
        "params_source": str(params.source), "phases": list(params.phases), "show_code": show_code,
        "docker_host": os.environ.get("DOCKER_HOST", ""),
    }, indent=1) + "\n", encoding="utf-8")
    return params


def _run_one(i: int, phase: str, params: Params, ctx: Context, run_dir: Path, phase_entries: list[dict],
             stop_reason: str, started: str, *, kernels: KernelPool, notebooks: Path,
             progress: Callable[[str], None]) -> str:
    """Run (or skip) one phase and append its summary entry; returns the stop reason for later phases."""
    n = len(params.phases)
    if stop_reason and phase in destructive_phases() and not params.read_only:
        phase_entries.append(_skip_phase(phase, run_dir, stop_reason))
        progress(f"[{i}/{n}] {phase}: skipped ({stop_reason})")
        return stop_reason
    progress(f"[{i}/{n}] {phase}: running")
    entry = run_phase(phase, ctx, run_dir, kernel=kernels.kernel, notebooks=notebooks, kernels=kernels,
                      upcoming=params.phases[i:])
    phase_entries.append(entry)
    results = run_dir / "results" / f"{phase}.json"
    tally = Counter(r.status for r in (read_records(results) if results.exists() else []))
    c = ", ".join(f"{k} {s}" for s, k in tally.items())
    progress(f"[{i}/{n}] {phase}: {entry['status']} in {entry['duration_s']}s ({c})"
             + (f" — {entry['detail']}" if entry["detail"] else ""))
    if phase == "00_preflight":
        recs = read_records(run_dir / "results" / f"{phase}.json")
        gate = evaluate(recs, params.policy, date.fromisoformat(started[:10]))  # waivers apply here too
        if entry["status"] != "completed" or gate.blockers:
            return "preflight failed, so nothing destructive is attempted"
    return stop_reason


def finish(run_dir: Path, params: Params, started: str, phase_entries: list[dict], *,
           show_code: bool = False, progress: Callable[[str], None] = print,
           signing_key: Path | None = None, baseline: "Run | None" = None) -> RunResult:
    """Write the run's verdict (unless the sign-off phase wrote one that still describes the records),
    then what derives from it: summary.json, summary.md, junit.xml, baseline.json (what changed since
    ``baseline``, the run the runner verified before starting), report.html; then manifest.json and its signature.
    Records are never rewritten here."""
    v = verdicts.current(run_dir)
    if v is None:
        v = verdicts.judge(run_dir, params)
        verdicts.write(run_dir, v)
    if baseline is not None:
        from runbook_lib.results.compare import write_baseline

        write_baseline(run_dir, baseline)
    summary = report.build_summary(v, phase_entries)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    report.write_summary_md(run_dir, summary, v)
    report.write_junit(run_dir, v, phase_entries)
    progress("runbook: rendering report.html")
    report.write_html(run_dir, v, show_code=show_code, signer=signing.key_fingerprint(signing_key))
    manifest = write_manifest(run_dir)
    if signing_key:
        signing.sign_file(manifest, signing_key)
        progress(f"runbook: manifest signed with {signing_key}")
    return RunResult(run_dir, v, summary)
