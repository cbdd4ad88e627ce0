"""Dependency drills that always restore: stop, pause or disconnect a dependency, or (swarm mode) scale its
service to 0, then undo it.

:class:`Fault` is a context manager. Whatever happens inside the ``with`` block (an exception, the
end of the block, SIGINT or SIGTERM), the dependency is restored before control leaves it: ``__exit__``
restores in a ``finally``, and while the fault is active SIGINT and SIGTERM handlers restore first and
only then raise :class:`DrillInterrupted` (a KeyboardInterrupt). A signal that arrives while restoring
waits until the restore is done.

Only SIGKILL (or a power cut) can stop a process before it restores; for that, every drill keeps a
journal (:mod:`.journal`), written *before* the fault is applied and updated at every step. A guardian
process (:mod:`.guardian`) restores it when the drill's process dies first; :func:`.recovery.recover`
(``runbook recover``) reads unrecovered journals and undoes them (:mod:`.undo`); phase 0
(``preflight.drill_journal``) refuses to go on while one exists.

The drills' modules, from the ground up: :mod:`.journal` (the file, :class:`DrillError`), :mod:`.undo`,
:mod:`.recovery`, :mod:`.guardian`, then this one, which starts a guardian per drill. ``journal_dir``,
``find_journals``, ``Journal`` and ``DrillError`` are named here too, for the phases.

Exception tree::

    RunbookError
    └── DrillError          (:mod:`.journal`) a drill cannot start or cannot restore: run ``runbook recover``
    KeyboardInterrupt
    └── DrillInterrupted    SIGINT/SIGTERM arrived during a drill; raised after the restore
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from runbook_lib.drills import guardian
from runbook_lib.drills.journal import DRILLS_DIR, JOURNAL_SCHEMA, DrillError, Journal, find_journals, journal_dir
from runbook_lib.drills.undo import service_replicas, undo, undo_commands
from runbook_lib.engine import Engine, EngineError
from runbook_lib.results.display import png
from runbook_lib.results.records import utcnow

__all__ = ["MODES", "DrillError", "DrillInterrupted", "Fault", "Journal", "draw_timeline", "find_journals",
           "journal_dir", "OUTCOME_COLOURS"]

MODES = ("stop", "pause", "disconnect", "scale")


class DrillInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived during a drill; raised once the dependency is restored."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"drill interrupted by {signal.Signals(signum).name}; the dependency was restored first")


# -- applying ----------------------------------------------------------------------------------------------
# A task in one of these states may still have its container running (stop takes the task's stop grace period).
_TASK_LIVE = ("new", "pending", "assigned", "accepted", "ready", "preparing", "starting", "running")


def _wait_scaled_down(engine: Engine, stack: str, dependency: str, timeout: float) -> float:
    """After scaling to 0: until no task of the service can still be running (Swarm stops them in the
    background, each within its stop grace period). Returns the seconds waited; raises DrillError when a
    task is still live after ``timeout``: the fault has not taken."""
    t0 = time.monotonic()
    while True:
        live = [t for t in engine.stack_tasks(stack, dependency) if (t.get("Status") or {}).get("State") in _TASK_LIVE]
        if not live:
            return round(time.monotonic() - t0, 2)
        if time.monotonic() - t0 > timeout:
            raise DrillError(f"{stack}_{dependency} scaled to 0, but task(s) {', '.join(t['ID'][:12] for t in live)} still "
                             f"{', '.join(sorted({t['Status']['State'] for t in live}))} after {timeout:.0f}s: the fault did not take")
        threading.Event().wait(0.2)


def _apply(engine: Engine, mode: str, c: dict[str, Any], stop_timeout: int) -> None:
    if mode == "stop":
        engine.stop_container(c["id"], timeout=stop_timeout)
    elif mode == "pause":
        engine.pause_container(c["id"])
    else:
        for net in c["networks"]:
            engine.disconnect_network(c["id"], net)


# -- the context manager -----------------------------------------------------------------------------------
class Fault:
    """Break ``dependency`` of ``project`` (every running container of the service) for the duration
    of a ``with`` block, and always restore it::

        with Fault(engine, "shop", "redis", "stop", journal_dir(run_dir)) as f:
            ...  # probe while redis is down
        # redis has been started again here, whatever happened in the block

    ``applied_mono``, ``restore_started_mono`` and ``restored_mono`` (time.monotonic()) time the
    fault window; ``actions`` lists what the restore did."""

    def __init__(self, engine: Engine, project: str, dependency: str, mode: str, directory: Path, *,
                 stop_timeout: int = 5, progress: Callable[[str], None] | None = None, stack: str = "") -> None:
        if mode not in MODES:
            raise DrillError(f"unknown drill mode {mode!r}; known: {', '.join(MODES)}")
        if (mode == "scale") != bool(stack):
            raise DrillError("mode scale breaks a swarm service and needs the stack's name; the other modes break "
                             "compose containers and take none")
        self.engine, self.project, self.dependency, self.mode = engine, project, dependency, mode
        self.stack = stack
        self.directory, self.stop_timeout = Path(directory), stop_timeout
        self.progress = progress or (lambda _s: None)
        self.journal: Journal | None = None
        self.restored = False
        self.actions: list[str] = []
        self.applied_mono = self.restore_started_mono = self.restored_mono = None
        self._restoring = False
        self._pending_signal: int | None = None
        self._old_handlers: dict[int, Any] = {}
        self._guardian: Any = None

    # -- signals
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.journal.event("signal handlers not installed (not the main thread); try/finally only")
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _uninstall_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old_handlers.clear()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._pending_signal = signum
        if self._restoring or self.restored:
            return  # the restore in progress finishes first; __exit__ raises afterwards
        if self.journal:
            self.journal.event(f"received {signal.Signals(signum).name}: restoring before exiting")
        self.restore()
        raise DrillInterrupted(signum)

    # -- life cycle
    def __enter__(self) -> "Fault":
        self.directory.mkdir(parents=True, exist_ok=True)
        state = guardian.state_of(self.engine, self.project)  # the deployment's own copy of its journals
        stale = [j for j in find_journals([self.directory.parent] + ([state] if state else []), project=self.project)
                 if j.data.get("dependency") == self.dependency]
        if stale:
            raise DrillError(f"an unrecovered drill journal exists ({stale[0].path}: {stale[0].describe()}); "
                             f"run `runbook recover {self.directory.parent}` first")
        containers: list[dict[str, Any]] = []
        service: dict[str, Any] | None = None
        if self.mode == "scale":
            name = f"{self.stack}_{self.dependency}"
            try:
                replicas = service_replicas(self.engine, name)
            except EngineError as exc:
                if exc.status_code == 404:
                    raise DrillError(f"no service {name} in the swarm (stack {self.stack}): nothing to break") from exc
                raise
            if replicas is None:
                raise DrillError(f"service {name} is global (one task per node): it cannot be scaled to 0 and back")
            if not replicas:
                raise DrillError(f"service {name} is already at 0 replicas: nothing to break")
            service = {"name": name, "replicas_before": replicas}
        else:
            views = [v for v in self.engine.service_containers(self.project, self.dependency) if v.running]
            if not views:
                raise DrillError(f"no running container of {self.dependency} in project {self.project}: nothing to break")
            containers = [{"id": v.id, "name": v.name, "state_before": v.state, "health_before": v.health,
                           "networks": v.networks} for v in views]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{self.dependency}-{stamp}.journal.json"
        n = 1
        while path.exists():
            n += 1
            path = self.directory / f"{self.dependency}-{stamp}-{n}.journal.json"
        data = {"schema": JOURNAL_SCHEMA, "kind": "runbook-drill", "project": self.project,
                "dependency": self.dependency, "mode": self.mode, "state": "applying", "created": utcnow(),
                "pid": os.getpid(), "runner_pid": os.getppid(), "host": socket.gethostname(),
                "run_dir": str(self.directory.parent), "containers": containers, "id": f"{os.getpid()}-{time.time_ns()}",
                "copies": [str(path), str(state / DRILLS_DIR / path.name)] if state else []}
        if service is not None:
            data.update(stack=self.stack, service=service, docker_host=os.environ.get("DOCKER_HOST", ""))
        data["undo"] = undo_commands(data)
        self.journal = Journal(path, data)
        self.journal.event(f"applying {self.mode} to " + (f"service {service['name']} ({service['replicas_before']} -> 0 replicas)"
                                                          if service else ", ".join(c["name"] for c in containers)))
        self._guardian = guardian.start(self.journal)
        self._install_signals()
        try:
            if service is not None:
                self.engine.scale_service(service["name"], 0)
                # like `docker stop`, applied means down: the window starts when no task can answer any more
                waited = _wait_scaled_down(self.engine, self.stack, self.dependency, self.stop_timeout + 30)
                self.journal.event(f"every task of {service['name']} stopped {waited}s after the scale to 0")
            for c in containers:
                _apply(self.engine, self.mode, c, self.stop_timeout)
        except BaseException:
            try:
                self.restore()
            finally:
                self._uninstall_signals()
            raise
        self.applied_mono = time.monotonic()
        self.journal.event(f"{self.mode} applied: {self.dependency} is broken", state="active", broken_at=utcnow())
        self.progress(f"drill: {self.dependency} {self.mode} applied (journal {path})")
        return self

    def restore(self) -> list[str]:
        """Undo the fault (idempotent). Raises DrillError/EngineError when it cannot: the journal then
        stays unrecovered for ``runbook recover``."""
        if self.restored or self._restoring or self.journal is None:
            return self.actions
        self.journal.refresh()
        if not self.journal.unrecovered:  # the guardian (or `runbook recover`) restored it already
            self.restored, self.restored_mono = True, time.monotonic()
            return self.actions
        self._restoring = True
        try:
            self.restore_started_mono = time.monotonic()
            self.journal.event("restoring", state="restoring")
            self.actions = undo(self.engine, self.journal.data)
            self.restored_mono = time.monotonic()
            self.restored = True
            self.journal.event("restored: " + ("; ".join(self.actions) or "nothing left to undo"),
                               state="restored", restored_at=utcnow(), restore_actions=self.actions)
            self.progress(f"drill: {self.dependency} restored ({'; '.join(self.actions) or 'nothing to undo'})")
        finally:
            self._restoring = False
        return self.actions

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self.restore()
        finally:
            self._uninstall_signals()
        if self._pending_signal is not None and exc_type is None:
            raise DrillInterrupted(self._pending_signal)
        return False


# -- the timeline ------------------------------------------------------------------------------------------
OUTCOME_COLOURS = {"ok": "#2da44e", "failed": "#cf222e", "no answer": "#6e7781"}


SPAN_COLOURS = {"rolling": "#aceebb", "recreate": "#b6c8f0"}


def draw_timeline(path: Path, *, title: str, lanes: Sequence[tuple[str, str, list[dict[str, Any]]]],
                  fault: tuple[float, float] | None, restored: float | None = None,
                  recovered: float | None = None, window: str = "fault",
                  xlabel: str = "seconds since the drill started",
                  spans: Sequence[tuple[str, str, float, float]] = ()) -> Path:
    """A PNG of each endpoint's availability over time (one lane per endpoint: green ok, red an
    unexpected status, grey no answer), the fault window shaded, the restore and the recovery marked.
    ``lanes`` is ``(name, expectation, points)`` with points ``{"t", "status", "latency_ms", "ok"}``; ``fault`` is
    the shaded window (None: none), ``window`` its label (phase 1 shades its outage window). ``spans``:
    ``(label, kind, start, end)`` drawn in a strip above the lanes (phase 1's rolling: which service was being
    replaced when, ``kind`` "rolling" or "recreate"). Uses matplotlib's Agg canvas directly (no pyplot state,
    no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(10, 1.2 + 0.55 * len(lanes) + (0.6 if spans else 0)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    end = max([fault[1] if fault else 0] + [p["t"] + p["latency_ms"] / 1000 for _, _, pts in lanes for p in pts])
    if fault:
        ax.axvspan(fault[0], fault[1], color="#ffd8b5", alpha=0.7, zorder=0)
        ax.text((fault[0] + fault[1]) / 2, len(lanes) - 0.35, window, ha="center", va="bottom", fontsize=8, color="#953800")
    for i, (name, expect, pts) in enumerate(lanes):
        y = len(lanes) - 1 - i
        pts = sorted(pts, key=lambda p: p["t"])
        for k, p in enumerate(pts):
            nxt = pts[k + 1]["t"] if k + 1 < len(pts) else p["t"] + max(p["latency_ms"] / 1000, 0.05)
            kind = "ok" if p["ok"] else ("no answer" if p.get("status") is None else "failed")
            ax.broken_barh([(p["t"], max(nxt - p["t"], 0.02))], (y - 0.3, 0.6), facecolors=OUTCOME_COLOURS[kind],
                           edgecolor="white", linewidth=0.3)
        ax.text(-0.01, y, f"{name}\n({expect})", transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=8)
    for k, (label, kind, a, b) in enumerate(spans):  # two rows of labels, alternating, so short windows stay legible
        ax.broken_barh([(a, max(b - a, 0.02))], (len(lanes) + 0.1, 0.3), facecolors=SPAN_COLOURS.get(kind, "#d0d7de"),
                       edgecolor="white", linewidth=0.8)
        ax.text((a + b) / 2, len(lanes) + 0.45 + 0.3 * (k % 2), label, ha="center", va="bottom", fontsize=6.5)
    if restored is not None:
        ax.axvline(restored, color="#0969da", linestyle="--", linewidth=1)
    if recovered is not None:
        ax.axvline(recovered, color="#1a7f37", linestyle=":", linewidth=1.5)
    ax.set_yticks([])
    ax.set_ylim(-0.6, len(lanes) - 0.1 + (1.3 if spans else 0.4))
    ax.set_xlim(0, end * 1.02 if end > 0 else 1)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    handles = [Patch(color=c, label=k) for k, c in OUTCOME_COLOURS.items()]
    handles += [Patch(color="#ffd8b5", label=f"{window} window")] if fault else []
    handles += [Patch(color=SPAN_COLOURS[k], label=f"{k} (a service replaced)") for k in SPAN_COLOURS
                if any(kind == k for _, kind, _, _ in spans)]
    if restored is not None:
        handles.append(Patch(color="#0969da", label="restored"))
    if recovered is not None:
        handles.append(Patch(color="#1a7f37", label="all endpoints back"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(lanes) < 3 else -0.2),
              ncol=len(handles), fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.22, right=0.98)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(fig))
    return path
