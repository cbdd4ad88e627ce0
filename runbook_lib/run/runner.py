"""Headless runs: validate everything first, then execute the phase notebooks with papermill
in-process, keep our own status per phase, and write the run directory (contract: docs/design.md).

Why the runner keeps its own status: papermill leaves a notebook that looks completed when a cell
times out, and a dead kernel leaves no error cell at all. A phase is "completed" only when papermill
returned normally AND the phase wrote its results file; anything else is ERROR.
"""
from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import os
import shutil
import signal
import tempfile
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_event_loop, run_sync
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from papermill.engines import NBClientEngine, NotebookExecutionManager, catch_nb_assignment, papermill_engines
from papermill.exceptions import PapermillExecutionError
from traitlets import default

from runbook_lib.run.broker import ENV as BROKER_ENV, SecretBroker
from runbook_lib.run.context import Context
from runbook_lib.run.signals import SignalScope
from runbook_lib.errors import InputError
from runbook_lib.params import (PHASES, Params, dump_resolved, load_params, load_waivers, refuse_unsupported_phases,
                                    unknown_phase, with_overrides)
from runbook_lib.results.policy import evaluate
from runbook_lib.results.records import Check, CheckRecord, read_records, utcnow, write_records
from runbook_lib import __version__
from runbook_lib.package_data import NOTEBOOKS
from runbook_lib.results import report
from runbook_lib.results import signing
from runbook_lib.results import verdict as verdicts

if TYPE_CHECKING:
    from runbook_lib.results.frames import Run
    from runbook_lib.run.lock import RunGuard

def destructive_phases() -> tuple[str, ...]:
    """Phases with a check declared as changing the deployment (redeploy; dependency drills). After a
    blocking preflight they are skipped (recorded as SKIP, so the verdict is NO-GO); the read-only
    phases still gather their evidence."""
    from runbook_lib.results.registry import specs

    return tuple(sorted({s.phase for s in specs().values() if s.changes_deployment}))


KERNEL = "python3"


@dataclass
class RunResult:
    run_dir: Path
    verdict: dict     # verdict.json
    summary: dict     # summary.json (derived from the verdict)
    interrupted: str = ""  # the signal that stopped the run, if one did

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return exit_code(self.verdict)


def exit_code(verdict: dict) -> int:
    """The exit code a verdict means: 0 GO, 1 NO-GO."""
    return 0 if verdict["verdict"] == "GO" else 1


class _OwnPythonKernelSpecs(KernelSpecManager):
    """Kernel specs where ``python3`` (KERNEL) is always the interpreter running runbook, the one this
    runbook_lib was imported into. Jupyter would otherwise take the first ``python3`` spec on its path
    (``$JUPYTER_PATH``, the user's Jupyter directory: an ``ipykernel install --user`` made from a
    checkout's venv or another environment) and run the notebooks with another Python, importing
    another runbook_lib or none. Any other kernel name is looked up as Jupyter does."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == KERNEL:
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="Python 3 (runbook)", language="python", metadata={"debugger": True})
        return super().get_kernel_spec(kernel_name)


class OwnPythonKernelManager(AsyncKernelManager):
    """The kernel manager for every notebook runbook executes headless (phases, compare.ipynb)."""

    @default("kernel_spec_manager")
    def _own_python_specs(self) -> KernelSpecManager:
        return _OwnPythonKernelSpecs(data_dir=self.data_dir)


class _TrackedKernelManager(OwnPythonKernelManager):
    """The kernel manager papermill uses, remembered so a signal can reach the kernel: Jupyter starts
    kernels in their own session, so a Ctrl-C or a SIGTERM to the runner never reaches the cell that
    is, say, holding a dependency stopped in a drill."""

    # the kernel of the phase that is running (a kernel started ahead for the next phase is not in it)
    live: list["_TrackedKernelManager"] = []

    def kernel_pid(self) -> int | None:
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        return getattr(process, "pid", None)


# What a phase kernel imports before it answers, done while the previous phase still runs: the notebooks' own
# first import (runbook_lib.run.phase: parameters, the engine client, the records), the phase's module, and
# matplotlib where the phase draws with it (the drills' timelines: 0.6 s of a 2-core machine). Imports only, by __import__ so no name
# is bound in the notebook's namespace; no history, no execution count: the executed notebook is the same as
# with a cold kernel.
_KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]
_WARM_UP: dict[str, tuple[str, ...]] = {
    "00_preflight": ("runbook_lib.phases.preflight",),
    "01_controlled_redeployment": ("runbook_lib.phases.redeploy",),
    "02_secrets_security": ("runbook_lib.phases.security",),
    "03_production_mode": ("runbook_lib.phases.production",),
    "04_smoke_tests": ("runbook_lib.phases.smoke", "matplotlib.figure", "matplotlib.backends.backend_agg"),
    "05_signoff": ("runbook_lib.phases.signoff",),
}


def _kernel_args(phase: str | None) -> list[str]:
    modules = ("runbook_lib.run.phase",) + _WARM_UP.get(phase or "", ())
    return _KERNEL_ARGS + [f"--IPKernelApp.exec_lines={'; '.join(f'__import__({m!r})' for m in modules)};"]


class _Kernels:
    """A fresh kernel for each phase, started ahead: while phase N runs, the kernels of phases N+1 and N+2
    start and import what their notebooks import (1-2 s of a 2-core machine that phase N mostly spends
    waiting on the engine; two ahead, because a short phase such as phase 2 on a small project ends before
    the next kernel would be ready). Each kernel runs one notebook and is shut down after it, exactly as
    papermill would: no state crosses phases. ``env`` is added to each kernel's environment (the secret
    broker's address). A kernel started for a phase that is then skipped serves the next one; one left over
    is shut down."""

    AHEAD = 2

    def __init__(self, kernel: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.kernel, self.cwd, self.env = kernel, cwd, env or {}
        self._ahead: list[_TrackedKernelManager] = []  # started for the phases that follow, in their order
        # The kernels talk over Unix sockets in a private directory, not TCP ports on 127.0.0.1: Jupyter picks a
        # kernel's five ports by binding port 0 and letting go, and the kernel binds them a moment later, so two
        # runs starting kernels at once (a fleet's targets, test workers) took the same port ("Address already in
        # use": the kernel died before replying, the phase was an ERROR). A socket path is this run's own.
        # (A $TMPDIR too deep for AF_UNIX's 108 bytes keeps TCP.)
        self._ipc: Path | None = Path(tempfile.mkdtemp(prefix="rbk-"))
        if len(str(self._ipc)) > 90:
            shutil.rmtree(self._ipc, ignore_errors=True)
            self._ipc = None
        self._n = 0
        self._retiring: list[asyncio.Task] = []

    def _start(self, phase: str | None) -> "_TrackedKernelManager":
        self._n += 1
        ipc = {"transport": "ipc", "ip": str(self._ipc / f"k{self._n}")} if self._ipc else {}
        km = _TrackedKernelManager(kernel_name=self.kernel, **ipc)
        run_sync(km.start_kernel)(cwd=str(self.cwd), extra_arguments=_kernel_args(phase),
                                  env={**os.environ, **self.env})
        return km

    def take(self, phase: str | None = None, upcoming: Sequence[str] = ()) -> "_TrackedKernelManager":
        """The kernel for ``phase``, about to run; then kernels for the next ``AHEAD`` of ``upcoming`` (the phases
        after it) are started if they are not yet. (A kernel warmed up for another phase serves all the same:
        warming up only imports; a skipped phase's kernel serves the next.)"""
        km = self._ahead.pop(0) if self._ahead else self._start(phase)
        for nxt in list(upcoming)[len(self._ahead):self.AHEAD]:
            try:
                self._ahead.append(self._start(nxt))
            except Exception:  # noqa: BLE001 - that phase starts its own kernel then (and reports why)
                break
        return km

    def __enter__(self) -> "_Kernels":
        return self

    def retire(self, km: "_TrackedKernelManager") -> None:
        """Shut a finished phase's kernel down without waiting for it (a graceful shutdown takes about 0.4 s):
        a task on this thread's event loop, the one papermill runs the next phase on, so it completes while
        that phase runs, and at the latest when this object exits."""
        _request_shutdown(km)  # the kernel starts exiting now
        self._retiring.append(ensure_event_loop().create_task(_finish_shutdown(km)))

    def __exit__(self, *exc: Any) -> None:
        for km in self._ahead:
            _shutdown(km)
        self._ahead = []
        if self._retiring:
            ensure_event_loop().run_until_complete(asyncio.gather(*self._retiring))
            self._retiring = []
        if self._ipc is not None:
            shutil.rmtree(self._ipc, ignore_errors=True)


class _FewerSaves(NotebookExecutionManager):
    """papermill's record of an executing notebook, written to the output file at most every ``EVERY_S`` while
    it runs, and always at its start and its end (papermill writes it before and after every cell: 40 writes of
    a growing notebook for phase 2 on 80 containers, each a JSON dump of up to 2 MB on the path between two
    cells). What a phase found is never at stake: its records are written by the kernel after every
    ``phase.run``; only a runner killed outright leaves an executed notebook up to ``EVERY_S`` behind."""

    EVERY_S = 2.0
    _must_save = True  # the first write (notebook_start) and the last (notebook_complete) always happen

    @catch_nb_assignment
    def save(self, **kwargs: Any) -> None:
        if self._must_save or (self.now() - self.last_save_time).total_seconds() >= self.EVERY_S:
            super().save()
            self._must_save = False

    @catch_nb_assignment
    def notebook_complete(self, **kwargs: Any) -> None:
        self._must_save = True
        super().notebook_complete()


class _RunbookEngine(NBClientEngine):
    """papermill's nbclient engine with :class:`_FewerSaves` (papermill's Engine.execute_notebook, with that
    class instead of NotebookExecutionManager)."""

    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: Any = None, progress_bar: bool = True,
                         log_output: bool = False, autosave_cell_every: int = 30, **kwargs: Any) -> Any:
        nb_man = _FewerSaves(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                             autosave_cell_every=autosave_cell_every)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


papermill_engines.register("runbook", _RunbookEngine)


def _shutdown(km: "_TrackedKernelManager") -> None:
    """Shut a kernel down gracefully and wait for it (killed if it does not exit): a kernel started ahead for
    a phase that did not run. A finished phase's kernel is shut down without waiting (:meth:`_Kernels.retire`)."""
    _request_shutdown(km)
    run_sync(_finish_shutdown)(km)


def _request_shutdown(km: "_TrackedKernelManager") -> None:
    try:
        run_sync(km.request_shutdown)()
    except Exception:  # noqa: BLE001 - gone already; finishing the shutdown cleans up
        pass


async def _finish_shutdown(km: "_TrackedKernelManager") -> None:
    """The rest of a graceful shutdown whose request was sent: wait for the kernel to exit (killed after
    the manager's ``shutdown_wait_time``), then remove its connection files."""
    try:
        await km.finish_shutdown()
        await km.cleanup_resources()
    except Exception:  # noqa: BLE001 - a kernel that is gone already
        pass


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
        for km in list(_TrackedKernelManager.live):
            pid = km.kernel_pid()
            if pid:
                try:
                    os.kill(pid, signal.SIGINT)
                except ProcessLookupError:
                    pass


def validate(params: Params, progress: Callable[[str], None], notebooks: Path = NOTEBOOKS) -> tuple[Context, Path | None]:
    """Everything that can be checked before a container is touched: the run's context, and the signing
    key the manifest will be signed with (None: unsigned). Raises InputError (exit 2) or
    EnvironmentProblem (exit 3) with one clear message."""
    params.ensure_safe()
    refuse_unsupported_phases(params)
    os.environ.pop(BROKER_ENV, None)  # a run started from inside another run's phase reads for itself
    _check_ids_known(params)
    ctx = Context(params=params, progress=progress)
    ctx.engine  # EngineUnavailable -> exit 3
    check_services(params, set(ctx.services))  # ComposeConfigError -> exit 2; ComposeNotFound -> exit 3
    if not params.phases:
        params.phases = [p for p in PHASES if (notebooks / f"{p}.ipynb").exists()]
    for p in params.phases:
        if not (notebooks / f"{p}.ipynb").exists():
            raise InputError(f"{params.source}: phase {p!r} has no notebook in {notebooks}; "
                             "remove it from `phases:` (this toolkit version does not ship it yet).")
    key = signing.resolve_key(params.signoff.signing_key, generate_missing=params.signoff.generate_missing_key)
    ctx.learn_secrets()
    from runbook_lib.run.fleet import learn_inherited

    learn_inherited(ctx)  # a fleet's target: every other target's secrets too (before anything is written)
    if key:
        ctx.redactor.learn_files([key])  # a private key never reaches an output
    return ctx, key


def check_services(params: Params, services: set[str]) -> None:
    """Every service the parameters name is one the compose files define (InputError naming where, with a
    did-you-mean)."""
    unknown = {s: w for s, w in params.service_names_used().items() if s not in services}
    if unknown:
        parts = []
        for s, where in unknown.items():
            hint = difflib.get_close_matches(s, services, n=1)
            parts.append(f"{s!r} (in {', '.join(where)})" + (f", did you mean {hint[0]!r}?" if hint else ""))
        raise InputError(f"{params.source}: unknown service {'; '.join(parts)}. "
                         f"The compose files define: {', '.join(sorted(services))}.")


def _check_ids_known(params: Params) -> None:
    """Every check id the policy names (waivers, severity overrides, required checks) is declared in the
    registry: a typo would otherwise silently waive or override nothing. Raises InputError naming the
    file, the key and the closest declared id. Also loads the waivers file (malformed: an input error)."""
    from runbook_lib.results.registry import unknown_ids

    named: dict[str, str] = {}
    if params.policy.waivers_file:
        for i, w in enumerate(load_waivers(params.policy.waivers_file)):
            named.setdefault(w.check, f"{params.policy.waivers_file}: waivers[{i}].check")
    for cid in params.policy.severity_overrides:
        named.setdefault(cid, f"{params.source}: policy.severity_overrides")
    for pat in params.policy.required_checks:
        named.setdefault(pat, f"{params.source}: policy.required_checks")
    bad = unknown_ids(named)
    if bad:
        raise InputError("; ".join(f"{where}: {cid!r} is not a check id of this toolkit"
                                   + (f" (did you mean {hint!r}?)" if hint else "") for cid, hint in bad.items()
                                   for where in [named[cid]]) + ". `runbook checks` lists them.")


def new_run_dir(output: Path, project: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = output / f"{stamp}-{project}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = output / f"{stamp}-{project}-{n}"
    (run_dir / "notebooks").mkdir(parents=True)
    (run_dir / "results").mkdir()
    return run_dir


def _runner_record(phase: str, status: str, actual: str, evidence: dict, severity: str = "critical") -> CheckRecord:
    c = Check("runner.phase", phase=phase, severity=severity, command=f"papermill notebooks/{phase}.ipynb ...")
    return c.record(phase, status, expected="the phase notebook runs to completion and saves its records",
                    actual=actual, evidence=evidence)


def run_phase(phase: str, ctx: Context, run_dir: Path, *, kernel: str = KERNEL, notebooks: Path = NOTEBOOKS,
              kernels: _Kernels | None = None, upcoming: Sequence[str] = ()) -> dict:
    """Execute one phase notebook in a fresh kernel (from ``kernels``, started ahead, or started now);
    returns the phase's entry of summary.json."""
    out_nb = run_dir / "notebooks" / f"{phase}.ipynb"
    results = run_dir / "results" / f"{phase}.json"
    t0 = time.monotonic()
    status, detail, extra = "completed", "", []
    km = None
    own = kernels is None
    kernels = kernels or _Kernels(kernel, run_dir)
    try:
        # the kernel works in the run directory, never in the notebooks' (an installed package)
        km = kernels.take(phase, upcoming)
        _TrackedKernelManager.live.append(km)
        papermill.execute_notebook(
            str(notebooks / f"{phase}.ipynb"), str(out_nb),
            parameters={"params_file": str(run_dir / "params.yaml"), "run_dir": str(run_dir)},
            kernel_name=kernel, progress_bar=False, log_output=False, stderr_file=sys.stderr,
            execution_timeout=int(ctx.params.cell_timeout_s), cwd=str(run_dir), km=km, engine_name="runbook",
        )
    except PapermillExecutionError as exc:
        status, detail = "error", f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - dead kernel, cell timeout, papermill I/O: all ERROR
        status, detail = "error", f"{type(exc).__name__}: {exc}"
    finally:
        _TrackedKernelManager.live.clear()
        if km is not None:
            kernels.retire(km)
        if own:
            kernels.__exit__(None, None, None)
    if status == "completed" and not results.exists():
        status, detail = "error", "the notebook finished without writing its results"
    if status == "error":
        extra.append(_runner_record(phase, "ERROR", detail, {"notebook": str(out_nb.relative_to(run_dir)), "error": detail}))
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
    rec = _runner_record(phase, "SKIP", f"not run: {why}", {"reason": why})
    write_records(run_dir / "results" / f"{phase}.json", [rec])
    return {"phase": phase, "status": "skipped", "detail": why, "records": 1, "duration_s": 0.0}


def run(params_path: str | Path, *, compose_files: list[Path] | None = None, output: str | Path = "outputs",
        phases: list[str] | None = None, kernel: str = KERNEL, show_code: bool = False,
        progress: Callable[[str], None] = print, notebooks: Path = NOTEBOOKS,
        baseline: Path | None = None, run_dir: Path | None = None, skip_destructive: str = "",
        read_only: bool = False, wait_s: float = 0) -> RunResult:
    """The whole runbook: validate, run each phase, decide, write the run directory. ``baseline``: an
    earlier run (the last GO), verified before anything runs; the report then says what changed since it.
    ``run_dir``: this directory (new or empty) instead of a new one under ``output``. ``skip_destructive``: the
    destructive phases are recorded SKIP for this reason (a fleet's rollout that stopped). ``read_only`` (or
    ``read_only: true`` in the parameters): nothing changes the deployment (:func:`read_only_phases`). Parameters
    with ``targets`` run as a fleet (:mod:`runbook_lib.run.fleet`)."""
    params = with_overrides(load_params(params_path), compose_files=compose_files)
    if read_only:
        params = params.model_copy(update={"read_only": True})
    if params.targets:
        if baseline:
            raise InputError("--baseline is not supported for a fleet run yet (give it to one target's run)")
        from runbook_lib.run import fleet

        return fleet.run(params, output=output, phases=phases, kernel=kernel, show_code=show_code,
                         progress=progress, notebooks=notebooks, run_dir=run_dir)
    base = _open_baseline(baseline) if baseline else None
    if phases:
        problem = unknown_phase(phases)
        if problem:
            raise InputError(f"--phase: {problem}")
        params = params.model_copy(update={"phases": sorted(set(phases), key=PHASES.index)})
    if params.read_only:
        kept = read_only_phases(params.phases)
        if not kept:
            raise InputError("--read-only: phase 01_controlled_redeployment only changes the deployment, so a read-only "
                             "run of it runs nothing; ask for other phases (or none: every read-only one)")
        params = params.model_copy(update={"phases": kept})
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
        params = _archive_inputs(params, run_dir, started, show_code=show_code)
        progress(f"runbook: run directory {run_dir}")
        guard.attach(run_dir)
        phase_entries, stop_reason = [], skip_destructive
        with SecretBroker(ctx) as broker, _Kernels(kernel, run_dir, broker.env) as kernels:
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
            if params.phases:
                guard.record_into(run_dir / "results" / f"{params.phases[-1]}.json")
            # inside: the last phase's kernel exits while the verdict and the report are written
            result = finish(run_dir, params, started, phase_entries, show_code=show_code, progress=progress,
                            signing_key=signing_key, baseline=base)
    result.interrupted = interrupts.signal
    return result


def read_only_phases(phases: list[str]) -> list[str]:
    """The phases a read-only run runs, of ``phases`` (empty: all): every phase but redeployment, which is
    nothing but changing the deployment. Phase 4 runs too: in a read-only run it asks its endpoints and
    records its drills SKIP (:mod:`runbook_lib.phases.smoke.readonly`)."""
    return [p for p in (phases or PHASES) if p != "01_controlled_redeployment"]


def _deploy_lock(ctx: Context, params: Params, skip_destructive: str, wait_s: float,
                 progress: Callable[[str], None]) -> "RunGuard":
    """The run's deploy lock (:mod:`runbook_lib.run.lock`): held when a phase of it changes the deployment (a
    read-only run's phase 4 changes nothing: it only watches the lock, as every read-only run does)."""
    from runbook_lib.run.lock import RunGuard

    destructive = (not skip_destructive and not params.read_only
                   and bool(set(params.phases or ()) & set(destructive_phases())))
    return RunGuard(ctx.engine, params, destructive=destructive, wait_s=wait_s, progress=progress)


def _open_baseline(path: Path) -> "Run":
    """The baseline run, read once and verified (an input error, exit 2, when it does not verify)."""
    from runbook_lib.results.frames import UnverifiedRun, open_run

    try:
        return open_run(path)
    except UnverifiedRun as exc:
        raise InputError(f"--baseline: {exc}") from None


def _archive_inputs(params: Params, run_dir: Path, started: str, *, show_code: bool) -> Params:
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
             stop_reason: str, started: str, *, kernels: _Kernels, notebooks: Path,
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
    manifest = report.write_manifest(run_dir)
    if signing_key:
        signing.sign_file(manifest, signing_key)
        progress(f"runbook: manifest signed with {signing_key}")
    return RunResult(run_dir, v, summary)
