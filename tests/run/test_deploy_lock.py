"""One run at a time changes a deployment: the deploy lock (runbook_lib.run.lock). Pure logic on a state
directory of the test's own, then real runs on the session's own demo stack and the real engine."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from functools import partial

import pytest

from runbook_lib.run import lock

from conftest import load_run, run_dir_from, start_cli, wait_for


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


_wait_for = partial(wait_for, interval=0.2)


# -- pure logic ----------------------------------------------------------------------------------------------
def test_a_second_holder_is_refused_naming_the_first_and_gets_the_lock_once_it_is_released(tmp_path):
    dl = lock.DeployLock(tmp_path, "shop")
    first = dl.acquire(lock.Holder("shop", "runbook run --params a.yaml", run_dir="/runs/a"))
    with pytest.raises(lock.LockHeld) as refused:
        dl.acquire(lock.Holder("shop", "runbook run --params b.yaml"))
    assert refused.value.exit_code == 3
    msg = str(refused.value)
    assert "\n" not in msg and f"pid {os.getpid()}" in msg and "/runs/a" in msg and "--wait" in msg
    assert dl.release(first).token == first.token and dl.status() is None
    second = dl.acquire(lock.Holder("shop", "runbook run --params b.yaml"))
    assert dl.status().token == second.token


def test_a_lock_whose_pid_is_gone_or_whose_budget_ran_out_is_taken_over_and_the_takeover_is_said(tmp_path):
    dl = lock.DeployLock(tmp_path, "shop")
    said: list[str] = []
    dl.acquire(lock.Holder("shop", "runbook run", pid=_dead_pid()))
    me = dl.acquire(lock.Holder("shop", "runbook run"), progress=said.append)
    assert dl.status().token == me.token
    assert said and "taking over" in said[0] and "is gone on this host" in said[0]
    dl.release(me)
    old = lock.Holder("shop", "runbook run", host="elsewhere", started_unix=time.time() - 7200, budget_s=3600)
    dl.acquire(old)
    dl.acquire(lock.Holder("shop", "runbook run"), progress=said.append)
    assert "older than its time budget (3600 s)" in said[-1]
    events = [json.loads(line)["event"] for line in (tmp_path / lock.HISTORY_FILE).read_text().splitlines()]
    assert events == ["taken", "taken over", "released", "taken", "taken over"]


def test_wait_takes_the_lock_when_the_holder_releases_it_in_time(tmp_path):
    dl = lock.DeployLock(tmp_path, "shop")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    dl.acquire(lock.Holder("shop", "runbook demo up", pid=holder.pid))  # released by dying: a stale pid
    t0 = time.monotonic()
    with pytest.raises(lock.LockHeld):
        dl.acquire(lock.Holder("shop", "runbook run"), wait_s=0.2)
    got = dl.acquire(lock.Holder("shop", "runbook run"), wait_s=60)
    holder.wait()
    assert dl.status().token == got.token and time.monotonic() - t0 < 60


def test_a_read_only_run_sees_a_lock_taken_during_its_run_but_not_its_own(tmp_path):
    dl = lock.DeployLock(tmp_path, "shop")
    since = time.time()
    mine = lock.Holder("shop", "runbook run")
    assert dl.others_since(since, mine.token) == []
    other = dl.acquire(lock.Holder("shop", "runbook run --params other.yaml", host=socket.gethostname()))
    dl.release(other)
    assert [h.token for h in dl.others_since(since, mine.token)] == [other.token]
    assert dl.others_since(time.time() + 1, mine.token) == []  # released before: not during a later run


def test_a_lock_taken_in_the_same_millisecond_as_the_run_started_is_still_seen(tmp_path, monkeypatch):
    # the history rounds its times to the ms: a take 0.03 ms after the run's start was once written as before it
    dl = lock.DeployLock(tmp_path, "shop")
    monkeypatch.setattr(lock.time, "time", lambda: 1_700_000_000.00049)
    other = dl.acquire(lock.Holder("shop", "runbook run --params other.yaml", host=socket.gethostname()))
    dl.release(other)
    assert [h.token for h in dl.others_since(1_700_000_000.00046, "mine")] == [other.token]


# -- real runs on the session's demo stack --------------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.slow
def test_a_second_run_that_changes_the_deployment_is_refused_and_a_read_only_run_cannot_be_go(
        healthy_demo, demo_params, engine, cli, tmp_path):
    project = healthy_demo.project
    first = start_cli("run", "--params", str(demo_params), "--phase", "04_smoke_tests", "--output", str(tmp_path / "a"))
    try:
        [run_dir] = _wait_for(lambda: list((tmp_path / "a").glob("*/run.json")), 300, "the first run to be under way")
        t0 = time.monotonic()
        second = cli("run", "--params", str(demo_params), "--phase", "04_smoke_tests", "--output", str(tmp_path / "b"))
        refused_s = time.monotonic() - t0
        print(f"second run refused after {refused_s:.1f} s")
        assert second.returncode == 3, second.stdout + second.stderr
        [line] = [ln for ln in second.stderr.splitlines() if ln.startswith("runbook: error:")]
        assert f"pid {first.pid}" in line and str(run_dir.parent) in line and "--wait" in line
        assert not (tmp_path / "b").exists(), "a refused run writes no run directory"
        assert refused_s < 30, f"refused only after {refused_s:.1f} s"

        status = cli("lock", "status", "--project", project)
        assert status.returncode == 1 and f"pid {first.pid}" in status.stdout

        ro = cli("run", "--params", str(demo_params), "--phase", "00_preflight", "--output", str(tmp_path / "c"))
        assert ro.returncode == 1, ro.stdout + ro.stderr
        summary, records = load_run(run_dir_from(ro.stdout))
        [rec] = [r for r in records if r["id"] == "runner.deploy_lock"]
        assert rec["status"] == "FAIL" and rec["severity"] == "critical"
        assert rec["actual"].startswith("the deployment was changing during this run (lock held by")
        assert f"pid {first.pid}" in rec["actual"]
        assert summary["verdict"] != "GO"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, 2)  # SIGINT: the drill restores, the run directory is written
        first.wait(300)
    assert lock.DeployLock.for_engine(engine, project).status() is None, "the first run released its lock on the way out"


@pytest.mark.docker
def test_lock_release_removes_a_lock_and_status_says_free(engine, cli, tmp_path):
    project = f"rbtest-lock-{os.getpid()}"
    dl = lock.DeployLock.for_engine(engine, project)
    dl.acquire(lock.Holder(project, "runbook run --params x.yaml", pid=_dead_pid()))
    status = cli("lock", "status", "--project", project)
    assert status.returncode == 1 and "stale" in status.stdout and "is gone on this host" in status.stdout
    released = cli("lock", "release", "--project", project)
    assert released.returncode == 0 and "released the deploy lock" in released.stdout
    free = cli("lock", "status", "--project", project)
    assert free.returncode == 0 and free.stdout.startswith("free:")
    shutil.rmtree(dl.directory)


@pytest.mark.docker
def test_a_read_only_smoke_run_does_not_take_the_lock_and_cannot_be_go_while_another_holds_it(
        healthy_demo, demo_params, engine, cli, tmp_path):
    """`--read-only` runs phase 4 without its drills: it changes nothing, so another holder does not refuse it;
    it only watches the lock, and so cannot be GO while the deployment may be changing."""
    dl = lock.DeployLock.for_engine(engine, healthy_demo.project)
    held = dl.acquire(lock.Holder(healthy_demo.project, "runbook run --params other.yaml (held by the test)"))
    try:
        ro = cli("run", "--params", str(demo_params), "--read-only", "--phase", "04_smoke_tests",
                 "--output", str(tmp_path / "ro"))
        assert ro.returncode == 1, ro.stdout + ro.stderr  # NO-GO, not 3 (refused)
        summary, records = load_run(run_dir_from(ro.stdout))
        [rec] = [r for r in records if r["id"] == "runner.deploy_lock"]
        assert rec["status"] == "FAIL" and "held by the test" in rec["actual"]
        assert summary["verdict"] == "NO-GO"
        assert dl.status().token == held.token, "the read-only run left the other holder's lock alone"
    finally:
        dl.release(held)
