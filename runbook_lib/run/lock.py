"""The deploy lock: one run at a time changes a deployment (a compose project on one engine).

Who takes it: a run whose phases change the deployment (phase 1's redeploy, phase 4's drills), and
``runbook demo up|down``. A second one is refused at once with one line naming the holder (:class:`LockHeld`,
exit 3), or waits for it (``--wait N``). A lock whose holder is gone (its pid dead on this host, or older than
its time budget) is taken over, and the takeover is said. A read-only run takes no lock but looks: when a lock
was held by another run at any moment of its own run, :class:`RunGuard` adds a critical FAIL record
(``runner.deploy_lock``) and the verdict cannot be GO.

Where it lives: a state directory per engine and project, **not** in one output directory::

    <state root>/engines/<engine id>/<project>/
        lock.json       the holder: who, host, pid, start time, run directory, command, time budget
        history.jsonl   every take, takeover and release (a read-only run looks for a take during its run)
        drills/         a copy of every drill journal of the project (preflight and `runbook recover` read it)

The state root is ``$RUNBOOK_STATE_DIR``, else ``$XDG_STATE_HOME/runbook``, else ``~/.local/state/runbook``.
The engine id is derived from the engine's own ``docker info`` (ID, name, data root), so every runner reaching
the same engine (a unix socket, ``tcp://``, ``ssh://``: any spelling of DOCKER_HOST) lands in the same
directory, and two engines of one host (which share the daemon key, hence the ID) do not. Why a directory and not an
object on the engine: the drill journals must be files a later preflight can read even when the engine does
not answer, the pid of a holder can only be checked on its own host, and ``flock`` makes taking the lock
atomic. Runners on *other* hosts against the same remote engine share the lock by sharing the state root
(``RUNBOOK_STATE_DIR`` on a shared filesystem).
"""
from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from runbook_lib.errors import EnvironmentProblem
from runbook_lib.state import engine_dir, pid_alive, state_dir

LOCK_FILE, HISTORY_FILE, MUTEX_FILE = "lock.json", "history.jsonl", ".mutex"
POLL_S = 0.5


class LockHeld(EnvironmentProblem):
    """Another live run holds the deploy lock of this deployment (exit 3)."""

    def __init__(self, message: str, holder: "Holder") -> None:
        self.holder = holder
        super().__init__(message)


@dataclass
class Holder:
    """Who holds (or held) a deploy lock."""

    project: str
    command: str
    user: str = field(default_factory=lambda: _user())
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    started_unix: float = field(default_factory=lambda: round(time.time(), 3))
    run_dir: str = ""
    budget_s: float = 3600
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Holder":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{"project": "", "command": "", **known})

    def describe(self) -> str:
        where = f", run directory {self.run_dir}" if self.run_dir else ""
        return f"`{self.command}` of {self.user}@{self.host} pid {self.pid}, started {self.started}{where}"

    def stale(self, now: float | None = None) -> str:
        """Why this holder is gone ("" while it may still be at work)."""
        now = time.time() if now is None else now
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return f"its pid {self.pid} is gone on this host"
        if now - self.started_unix > self.budget_s:
            return f"it is older than its time budget ({self.budget_s:.0f} s)"
        return ""


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class DeployLock:
    """The lock of one deployment, in its state directory (see the module docstring)."""

    def __init__(self, directory: Path, project: str) -> None:
        self.directory, self.project = Path(directory), project

    @classmethod
    def for_engine(cls, engine: Any, project: str) -> "DeployLock":
        return cls(state_dir(engine, project), project)

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / MUTEX_FILE, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def status(self) -> Holder | None:
        """The holder, or None when the lock is free (an unreadable lock file counts as free)."""
        try:
            return Holder.from_dict(json.loads((self.directory / LOCK_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def _write(self, holder: Holder) -> None:
        tmp = self.directory / (LOCK_FILE + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(holder), indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.directory / LOCK_FILE)

    def _history(self, event: str, holder: Holder, **extra: Any) -> None:
        line = {"event": event, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "unix": round(time.time(), 3),
                **asdict(holder), **extra}
        with open(self.directory / HISTORY_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def try_acquire(self, holder: Holder, progress: Callable[[str], None] = lambda _s: None) -> Holder | None:
        """Take the lock for ``holder``; returns the live holder in the way (None: taken)."""
        with self._mutex():
            current = self.status()
            if current is not None and current.token != holder.token:
                why = current.stale()
                if not why:
                    return current
                progress(f"runbook: taking over the deploy lock of {self.project} from {current.describe()}: {why}")
                self._history("taken over", holder, previous=asdict(current), reason=why)
            else:
                self._history("taken", holder)
            self._write(holder)
            return None

    def acquire(self, holder: Holder, *, wait_s: float = 0, progress: Callable[[str], None] = lambda _s: None) -> Holder:
        """Take the lock, waiting up to ``wait_s`` for a live holder to release it; raises :class:`LockHeld`."""
        deadline, said = time.monotonic() + max(wait_s, 0), False
        while True:
            other = self.try_acquire(holder, progress)
            if other is None:
                return holder
            if time.monotonic() >= deadline:
                hint = (f"waited {wait_s:.0f} s; " if wait_s else "wait for it with --wait SECONDS, or ")
                raise LockHeld(f"the deployment {self.project} is being changed by {other.describe()}: {hint}if that run is "
                               f"gone, `runbook lock release --project {self.project}` (state: {self.directory})", other)
            if not said:
                progress(f"runbook: waiting up to {wait_s:.0f} s for the deploy lock of {self.project}, held by {other.describe()}")
                said = True
            time.sleep(POLL_S)

    def update(self, holder: Holder) -> None:
        """Rewrite the holder (e.g. once its run directory is known), if it still holds the lock."""
        with self._mutex():
            current = self.status()
            if current is not None and current.token == holder.token:
                self._write(holder)

    def release(self, holder: Holder | None = None, *, reason: str = "released") -> Holder | None:
        """Release the lock: ``holder``'s own (a no-op when another holds it now), or whoever holds it
        (``holder`` None: the operator's ``runbook lock release``). Returns the holder released."""
        with self._mutex():
            current = self.status()
            if current is None or (holder is not None and current.token != holder.token):
                return None
            (self.directory / LOCK_FILE).unlink(missing_ok=True)
            self._history(reason, current)
            return current

    def others_since(self, since_unix: float, token: str) -> list[Holder]:
        """Holders other than ``token`` that took the lock at or after ``since_unix`` (history) or hold it now
        (unless that holder is stale)."""
        found: dict[str, Holder] = {}
        since_ms = round(since_unix, 3)  # history times are rounded to the ms: compare like with like
        try:
            lines = (self.directory / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") in ("taken", "taken over") and ev.get("unix", 0) >= since_ms and ev.get("token") != token:
                found[ev["token"]] = Holder.from_dict(ev)
        now = self.status()
        if now is not None and now.token != token and not now.stale():  # a dead holder changes nothing any more
            found.setdefault(now.token, now)
        return list(found.values())


@contextlib.contextmanager
def holding(engine: Any, project: str, command: str, *, wait_s: float = 0, budget_s: float = 900,
            progress: Callable[[str], None] = lambda _s: None) -> Iterator[Holder]:
    """Hold the deploy lock of ``project`` for a block (``runbook demo up|down``)."""
    lock = DeployLock.for_engine(engine, project)
    holder = lock.acquire(Holder(project, command, budget_s=budget_s), wait_s=wait_s, progress=progress)
    try:
        yield holder
    finally:
        lock.release(holder)


class RunGuard:
    """A run's part in the deploy lock. A run that changes the deployment holds the lock from before its run
    directory exists until its verdict is written; a read-only run holds nothing, and at the end
    (:meth:`record_into`) adds a critical FAIL when another run held the lock at any moment of its own."""

    def __init__(self, engine: Any, params: Any, *, destructive: bool, wait_s: float = 0,
                 progress: Callable[[str], None] = lambda _s: None) -> None:
        self.destructive, self.wait_s, self.progress = destructive, wait_s, progress
        self.lock = DeployLock.for_engine(engine, params.project)
        budget = float(params.cell_timeout_s) * max(len(params.phases or ()), 1)
        self.holder = Holder(params.project, f"runbook run --params {params.source}", budget_s=budget)
        self.at_start: list[Holder] = []

    def __enter__(self) -> "RunGuard":
        if self.destructive:
            self.lock.acquire(self.holder, wait_s=self.wait_s, progress=self.progress)
        else:
            self.at_start = self.lock.others_since(time.time() + 1, self.holder.token)  # who holds it now
        return self

    def attach(self, run_dir: Path) -> None:
        """The run directory is known: the holder names it."""
        self.holder.run_dir = str(run_dir)
        if self.destructive:
            self.lock.update(self.holder)

    def concurrent(self) -> list[Holder]:
        """Other holders of the lock during this (read-only) run: at its start, since, or now."""
        if self.destructive:
            return []
        seen = {h.token: h for h in self.at_start}
        for h in self.lock.others_since(self.holder.started_unix, self.holder.token):
            seen.setdefault(h.token, h)
        return list(seen.values())

    def record_into(self, results: Path) -> bool:
        """Append ``runner.deploy_lock`` FAIL to a phase's results file when the deployment was changing
        during this run; returns whether it did."""
        others = self.concurrent()
        if not others:
            return False
        from runbook_lib.results.records import Check, read_records, write_records

        c = Check("runner.deploy_lock", phase="runner", severity="critical", command=f"runbook lock status --project {self.lock.project}")
        rec = c.record(self.lock.project, "FAIL", expected="no run changed the deployment during this read-only run",
                       actual=f"the deployment was changing during this run (lock held by {others[0].describe()})"
                       + (f" and {len(others) - 1} other run(s)" if len(others) > 1 else ""),
                       evidence={"holders": [asdict(h) for h in others], "state": str(self.lock.directory)})
        write_records(results, (read_records(results) if results.exists() else []) + [rec])
        self.progress(f"runbook: {rec.actual}: this run's verdict cannot be GO")
        return True

    def __exit__(self, *exc: Any) -> None:
        if self.destructive:
            self.lock.release(self.holder)


def this_engine_state() -> list[Path]:
    """The state directory of the engine DOCKER_HOST names (every project's journals are under it), as a
    list for `runbook recover`'s roots: empty when no engine answers."""
    from runbook_lib.engine import Engine
    from runbook_lib.errors import RunbookError

    try:
        return [engine_dir(Engine(timeout=20))]
    except (RunbookError, OSError):
        return []
