"""Drills that restore themselves: when the runner dies (kill -9) with a fault applied, the drill's guardian
(runbook_lib.drills.guardian) restores it with nothing typed and says so in the journal. A real `runbook run`
of phase 4 on the session's own demo stack, the real engine."""
from __future__ import annotations

import json
import os
import signal
import time
from functools import partial
from pathlib import Path

import pytest

from conftest import service_container, start_cli, wait_for


_dep = service_container


_wait_for = partial(wait_for, interval=0.1)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # being replaced right now
        return {}


def _active_journal(out: Path, dependency: str):
    for p in out.glob(f"*/drills/{dependency}-*.journal.json"):
        data = _read(p)
        if data.get("state") == "active":
            return p, data
    return None


@pytest.mark.docker
@pytest.mark.slow
def test_kill_9_of_the_runner_mid_drill_and_the_guardian_restores_redis_and_says_so(
        healthy_demo, demo_params, engine, tmp_path):
    out = tmp_path / "out"
    project = healthy_demo.project
    proc = start_cli("run", "--params", str(demo_params), "--phase", "04_smoke_tests", "--output", str(out))
    kernel = None
    try:
        path, journal = _wait_for(lambda: _active_journal(out, "redis"), 300, "the redis drill to be active")
        kernel = journal["pid"]
        assert _dep(engine, "redis", project).state == "exited"
        os.killpg(proc.pid, signal.SIGKILL)  # the runner's process group: nothing restores from inside
        t0 = time.monotonic()
        proc.wait(30)
        _wait_for(lambda: _dep(engine, "redis", project).running, 30, "redis running again, with nothing typed")
        restored_s = time.monotonic() - t0
        print(f"redis running again {restored_s:.1f} s after the kill -9")
        done = _wait_for(lambda: (d := _read(path)).get("state") == "recovered" and d, 180, "the journal marked recovered")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if kernel:  # the phase's kernel (its own session) may outlive its runner for a moment
            try:
                os.kill(kernel, signal.SIGKILL)
            except ProcessLookupError:
                pass
    from runbook_lib.drills import guardian
    from runbook_lib.run import lock

    assert journal["runner_pid"] == proc.pid and journal.get("guardian_pid")
    assert done["recovered_by"].startswith("the drill guardian (pid ")
    assert any("guardian: pid(s)" in e["what"] and "gone" in e["what"] for e in done["events"])
    log = guardian.log_path(path)
    assert log.parent == path.parent  # its last line comes just after it marked the journal
    _wait_for(lambda: "restored by the drill guardian" in log.read_text(), 30, "the guardian's log to say so")
    # the copy in the deployment's state directory says the same
    [copy] = [Path(c) for c in done["copies"] if Path(c) != path]
    assert copy.parent.parent == lock.state_dir(engine, project) and _read(copy)["state"] == "recovered"
    assert engine.wait_ready(project, ["redis"], timeout=120)[0]
