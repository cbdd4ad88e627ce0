"""The drill guardian: a small detached process that restores a drill's fault when the process running the
drill dies before restoring it (``kill -9``, an OOM kill, a power-less terminal: what no signal handler sees).

:class:`runbook_lib.drills.faults.Fault` starts one per drill, right after the journal's first write and
before the fault is applied: ``python -m runbook_lib.drills.guardian JOURNAL``. It runs in a session of its
own (a signal to the runner's process group does not reach it), holds the journal's path and watches the
pids the journal names: ``pid`` (the process running the drill: a phase's kernel, or a notebook's) and
``runner_pid`` (its parent: the runner). While both live it only reads the journal, twice a second, and it
exits as soon as the journal says ``restored`` or ``recovered``. When one of them dies with the journal
still unrecovered, it restores what the journal names (:func:`runbook_lib.drills.recovery.recover_journal`: start, unpause,
reconnect with the aliases, scale back), retrying while the engine does not answer, waits until the
dependency is ready, and marks the journal ``recovered`` with ``recovered_by: "guardian pid N on HOST"``.
Its log is beside the journal: ``<dependency>-<time>.guardian.log``.

``RUNBOOK_DRILL_GUARDIAN=off`` starts no guardian (the journal and ``runbook recover`` remain).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runbook_lib.drills.journal import Journal
from runbook_lib.errors import RunbookError
from runbook_lib.state import pid_alive, state_dir

POLL_S = 0.5
RETRY_S = 2.0
GIVE_UP_S = 3600.0  # an engine that does not come back within an hour: the journal stays for `runbook recover`
DONE_STATES = ("restored", "recovered")


def log_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name.replace(".journal.json", "") + ".guardian.log")


def state_of(engine: Any, project: str) -> Path | None:
    """The deployment's state directory (:mod:`runbook_lib.state`), where a copy of each journal goes;
    None when the engine cannot say its ID (the journal then stays in the run directory only)."""
    try:
        return state_dir(engine, project)
    except (RunbookError, OSError):
        return None


def start(journal: Any) -> subprocess.Popen | None:
    """Start the guardian of ``journal`` (a :class:`~runbook_lib.drills.journal.Journal` already written); None
    when switched off."""
    if os.environ.get("RUNBOOK_DRILL_GUARDIAN", "").lower() in ("0", "off", "no", "false"):
        journal.event("no guardian (RUNBOOK_DRILL_GUARDIAN is off)")
        return None
    log = open(log_path(journal.path), "a", encoding="utf-8")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "runbook_lib.drills.guardian", str(journal.path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    finally:
        log.close()
    journal.event(f"guardian started (pid {proc.pid}, log {log_path(journal.path).name})", guardian_pid=proc.pid)
    return proc


def _say(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}", flush=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # being replaced right now: read again at the next poll


def wait_for_death(path: Path) -> tuple[dict[str, Any], list[int]] | None:
    """Poll the journal and its pids; returns (journal, dead pids) once a pid died with the journal
    unrecovered, None once the journal is done (or gone)."""
    misses = 0
    while True:
        data = _read(path)
        if data is None:
            misses += 1
            if misses > 20 and not path.exists():
                return None
        else:
            misses = 0
            if data.get("state") in DONE_STATES:
                return None
            pids = [p for p in (data.get("pid"), data.get("runner_pid")) if isinstance(p, int) and p > 1]
            dead = [p for p in pids if not pid_alive(p)]
            if dead:
                return data, dead
        time.sleep(POLL_S)


def restore(path: Path, dead: list[int]) -> int:
    """Restore what the journal names, retrying while the engine does not answer. Exit status: 0 restored."""
    from runbook_lib.drills.recovery import recover_journal
    from runbook_lib.engine import Engine

    by = f"the drill guardian (pid {os.getpid()} on {socket.gethostname()})"
    deadline = time.monotonic() + GIVE_UP_S
    said = False
    while time.monotonic() < deadline:
        j = Journal.load(path)
        if not j.unrecovered:
            _say(f"{path.name}: {j.state} by someone else meanwhile; nothing to do")
            return 0
        if not said:
            j.event(f"guardian: pid(s) {', '.join(map(str, dead))} gone with the fault {j.state}: restoring")
            said = True
        try:
            res = recover_journal(Engine(timeout=20), j, by=by, progress=_say)
        except Exception as exc:  # noqa: BLE001 - the engine client could not even be made: try again
            res = {"error": f"{type(exc).__name__}: {exc}"}
        if not res["error"]:
            _say(f"{path.name}: restored by {by}")
            return 0
        _say(f"{path.name}: not restored yet ({res['error']}); trying again in {RETRY_S:.0f} s")
        time.sleep(RETRY_S)
    _say(f"{path.name}: gave up after {GIVE_UP_S:.0f} s; run `runbook recover`")
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0])
    data = _read(path) or {}
    _say(f"guarding {path} (pid {data.get('pid')}, runner pid {data.get('runner_pid')})")
    found = wait_for_death(path)
    if found is None:
        _say(f"{path.name}: the drill restored itself; exiting")
        return 0
    _, dead = found
    _say(f"{path.name}: pid(s) {', '.join(map(str, dead))} gone before the fault was restored: restoring")
    return restore(path, dead)


if __name__ == "__main__":  # pragma: no cover - the detached process
    sys.exit(main())
