"""Executing notebooks headless: the papermill engine and the kernels it runs, for the runner's phases and the
comparison page (compare.ipynb).

- :class:`OwnPythonKernelManager`: the kernel is always the Python running runbook, whatever ``python3``
  kernelspec Jupyter would find on its path.
- :class:`KernelPool`: a fresh kernel per phase, started ahead of time while the phase before runs.
- the ``runbook`` papermill engine: papermill's nbclient engine, saving the executing notebook less often.
- :func:`execute`: one notebook, through that engine; :func:`interrupt_running` forwards a Ctrl-C to the kernel
  of the phase that runs.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import papermill
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_event_loop, run_sync
from papermill.engines import NBClientEngine, NotebookExecutionManager, catch_nb_assignment, papermill_engines
from traitlets import default

KERNEL = "python3"


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


class TrackedKernelManager(OwnPythonKernelManager):
    """The kernel manager papermill uses for a phase, remembered so a signal can reach the kernel: Jupyter
    starts kernels in their own session, so a Ctrl-C or a SIGTERM to the runner never reaches the cell that
    is, say, holding a dependency stopped in a drill."""

    # the kernel of the phase that is running (a kernel started ahead for the next phase is not in it)
    live: list["TrackedKernelManager"] = []

    def kernel_pid(self) -> int | None:
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        return getattr(process, "pid", None)


def interrupt_running() -> None:
    """Send SIGINT to the kernel of the phase that runs (its cell then fails after restoring whatever it had
    broken)."""
    for km in list(TrackedKernelManager.live):
        pid = km.kernel_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass


# What a phase kernel imports before it answers, done while the previous phase still runs: the notebooks' own
# first import (runbook_lib.run.phase: parameters, the engine client, the records), the phase's module, and
# matplotlib where the phase draws with it (the drills' and the downtime's timelines). Imports only, by __import__ so no name is
# bound in the notebook's namespace; no history, no execution count: the executed notebook is the same as with
# a cold kernel.
_KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]
_WARM_UP: dict[str, tuple[str, ...]] = {
    "00_preflight": ("runbook_lib.phases.preflight",),
    "01_controlled_redeployment": ("runbook_lib.phases.redeploy", "matplotlib.figure", "matplotlib.backends.backend_agg"),
    "02_secrets_security": ("runbook_lib.phases.security",),
    "03_production_mode": ("runbook_lib.phases.production",),
    "04_smoke_tests": ("runbook_lib.phases.smoke", "matplotlib.figure", "matplotlib.backends.backend_agg"),
    "05_signoff": ("runbook_lib.phases.signoff",),
}


def _kernel_args(phase: str | None) -> list[str]:
    modules = ("runbook_lib.run.phase",) + _WARM_UP.get(phase or "", ())
    return _KERNEL_ARGS + [f"--IPKernelApp.exec_lines={'; '.join(f'__import__({m!r})' for m in modules)};"]


class KernelPool:
    """A fresh kernel for each phase, started ahead: while phase N runs, the kernels of phases N+1 and N+2
    start and import what their notebooks import, in the time phase N mostly spends waiting on the engine (two
    ahead, because a short phase can end before the next kernel would be ready). Each kernel runs one notebook
    and is shut down after it, exactly as papermill would: no state crosses phases. ``env`` is added to each
    kernel's environment (the secret broker's address). A kernel started for a phase that is then skipped
    serves the next one; one left over is shut down.

    The kernels talk over Unix sockets in a private directory, not TCP ports on 127.0.0.1: Jupyter picks a
    kernel's ports by binding port 0 and letting go, and the kernel binds them a moment later, so two runs
    starting kernels at once (a fleet's targets, test workers) could take the same port. A socket path is this
    pool's own. (A $TMPDIR too deep for AF_UNIX's 108 bytes keeps TCP.)"""

    AHEAD = 2

    def __init__(self, kernel: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.kernel, self.cwd, self.env = kernel, cwd, env or {}
        self._ahead: list[TrackedKernelManager] = []  # started for the phases that follow, in their order
        self._ipc: Path | None = Path(tempfile.mkdtemp(prefix="rbk-"))
        if len(str(self._ipc)) > 90:
            shutil.rmtree(self._ipc, ignore_errors=True)
            self._ipc = None
        self._n = 0
        self._retiring: list[asyncio.Task] = []

    def _start(self, phase: str | None) -> TrackedKernelManager:
        self._n += 1
        ipc = {"transport": "ipc", "ip": str(self._ipc / f"k{self._n}")} if self._ipc else {}
        km = TrackedKernelManager(kernel_name=self.kernel, **ipc)
        run_sync(km.start_kernel)(cwd=str(self.cwd), extra_arguments=_kernel_args(phase),
                                  env={**os.environ, **self.env})
        return km

    def take(self, phase: str | None = None, upcoming: Sequence[str] = ()) -> TrackedKernelManager:
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

    def __enter__(self) -> "KernelPool":
        return self

    def retire(self, km: TrackedKernelManager) -> None:
        """Shut a finished phase's kernel down without waiting for it: a task on this thread's event loop, the
        one papermill runs the next phase on, so it completes while that phase runs, and at the latest when this
        object exits."""
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


def _shutdown(km: TrackedKernelManager) -> None:
    """Shut a kernel down gracefully and wait for it (killed if it does not exit): a kernel started ahead for
    a phase that did not run. A finished phase's kernel is shut down without waiting (:meth:`KernelPool.retire`)."""
    _request_shutdown(km)
    run_sync(_finish_shutdown)(km)


def _request_shutdown(km: TrackedKernelManager) -> None:
    try:
        run_sync(km.request_shutdown)()
    except Exception:  # noqa: BLE001 - gone already; finishing the shutdown cleans up
        pass


async def _finish_shutdown(km: TrackedKernelManager) -> None:
    """The rest of a graceful shutdown whose request was sent: wait for the kernel to exit (killed after
    the manager's ``shutdown_wait_time``), then remove its connection files."""
    try:
        await km.finish_shutdown()
        await km.cleanup_resources()
    except Exception:  # noqa: BLE001 - a kernel that is gone already
        pass


# -- the papermill engine ---------------------------------------------------------------------------------

class _FewerSaves(NotebookExecutionManager):
    """papermill's record of an executing notebook, written to the output file at most every ``EVERY_S`` while
    it runs, and always at its start and its end (papermill writes it before and after every cell, a JSON dump
    of a growing notebook each time). What a phase found is never at stake: its records are written by the
    kernel after every ``phase.run``; only a runner killed outright leaves an executed notebook up to
    ``EVERY_S`` behind."""

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


ENGINE = "runbook"
papermill_engines.register(ENGINE, _RunbookEngine)


def execute(notebook: Path, out: Path, parameters: dict[str, Any], *, cwd: Path, kernel: str = KERNEL,
            km: TrackedKernelManager | None = None, timeout_s: int | None = None, stderr: bool = False) -> None:
    """Run ``notebook`` headless into ``out`` with ``parameters`` injected, in ``cwd``: in the kernel ``km``
    (started already, from a :class:`KernelPool`) or else in a fresh :class:`OwnPythonKernelManager` kernel.
    ``timeout_s``: per cell. ``stderr``: the cells' stderr relayed to this process's. Raises papermill's
    errors (:class:`papermill.exceptions.PapermillExecutionError` for a cell that raised)."""
    papermill.execute_notebook(
        str(notebook), str(out), parameters=parameters, kernel_name=kernel, progress_bar=False, log_output=False,
        cwd=str(cwd), engine_name=ENGINE, **({"stderr_file": sys.stderr} if stderr else {}),
        **({"execution_timeout": timeout_s} if timeout_s is not None else {}),
        **({"km": km} if km is not None else {"kernel_manager_class": OwnPythonKernelManager}),
    )
