"""Dependency drills always restore: on leaving the block, on an exception, on SIGINT; and after SIGKILL,
`runbook recover` restores from the journal and preflight refuses to go on until it has. Real engine,
real demo stack, real runner processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from runbook_lib.drills import faults
from runbook_lib.drills.journal import Journal, find_journals
from runbook_lib.phases import preflight
from runbook_lib.run.context import Context
from runbook_lib.params import load_params

from conftest import PARAMS, load_run, run_dir_from, service_container, start_cli, wait_for

PROJECT = "secureconnect-demo"


_dep = service_container


_wait_for = partial(wait_for, interval=0.05)


def _active_journal(out: Path, dependency: str):
    for p in out.glob(f"*/drills/{dependency}-*.journal.json"):
        try:
            data = json.loads(p.read_text())
        except ValueError:  # being replaced right now
            continue
        if data.get("state") == "active":
            return p, data
    return None


def _start_run(out: Path, params: Path) -> subprocess.Popen:
    return start_cli("run", "--params", str(params), "--phase", "04_smoke_tests", "--output", str(out))


# -- pure logic: journals and the preflight check ---------------------------------------------------------
def _journal(dir_: Path, state: str, dependency: str = "redis") -> Path:
    j = Journal(dir_ / "drills" / f"{dependency}-20260101T000000Z.journal.json",
                {"schema": 1, "project": PROJECT, "dependency": dependency, "mode": "stop", "state": state,
                 "pid": 1, "host": "h", "containers": [], "undo": [f"docker start {PROJECT}-{dependency}-1"]})
    j.write()
    return j.path


def test_preflight_fails_on_an_unrecovered_journal_and_points_at_runbook_recover(tmp_path):
    _journal(tmp_path / "20260101T000000Z-old", "active")
    _journal(tmp_path / "20260101T000000Z-older", "restored", "minio")
    ctx = Context(params=load_params(PARAMS / "demo.yaml"), run_dir=tmp_path / "20260102T000000Z-new")
    [rec] = preflight.drill_journal(ctx)
    assert rec.status == "FAIL" and rec.severity == "critical"
    assert "1 unrecovered drill journal" in rec.actual and "stop of redis" in rec.actual
    assert "runbook recover" in rec.remediation and "20260101T000000Z-old" in rec.remediation
    ctx2 = Context(params=load_params(PARAMS / "demo.yaml"), run_dir=tmp_path / "elsewhere" / "run")
    assert preflight.drill_journal(ctx2)[0].status == "PASS"


def test_no_journal_found_is_an_error_not_a_pass_when_the_state_directory_cannot_be_opened(tmp_path, monkeypatch):
    """A drill keeps a copy of its journal in the deployment's state directory whatever its --output: when
    that directory cannot be opened, "none found" covers only the run directories, so it is not a PASS."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state root should be\n")
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(blocker))
    ctx = Context(params=load_params(PARAMS / "demo.yaml"), run_dir=tmp_path / "runs" / "20260102T000000Z-new")
    [rec] = preflight.drill_journal(ctx)
    assert rec.status == "ERROR", rec.actual
    assert "state directory" in rec.actual and "could not be opened" in rec.actual
    assert "NotADirectoryError" in rec.evidence["state_dir_error"] and "RUNBOOK_STATE_DIR" in rec.remediation
    _journal(tmp_path / "runs" / "20260101T000000Z-old", "active")  # a journal that is found still fails
    assert preflight.drill_journal(ctx)[0].status == "FAIL"
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path / "state"))  # openable: every place searched
    (tmp_path / "runs" / "20260101T000000Z-old" / "drills").rename(tmp_path / "runs" / "gone")
    [rec] = preflight.drill_journal(ctx)
    assert rec.status == "PASS" and str(tmp_path / "state") in " ".join(rec.evidence["searched"])


def test_journals_of_other_projects_and_restored_drills_are_not_unrecovered(tmp_path):
    _journal(tmp_path / "run", "restored")
    p = _journal(tmp_path / "run2", "applying")
    data = json.loads(p.read_text())
    p.write_text(json.dumps({**data, "project": "another"}))
    assert find_journals([tmp_path], project=PROJECT) == []
    assert [j.path for j in find_journals([tmp_path])] == [p]


# -- the context manager, in-process ------------------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.parametrize("service,mode", [("redis", "stop"), ("minio", "pause"), ("minio", "disconnect")])
def test_a_fault_is_undone_on_leaving_the_block_and_the_journal_says_so(healthy_demo, engine, tmp_path, service, mode):
    project = healthy_demo.project
    before = _dep(engine, service, project)
    with faults.Fault(engine, project, service, mode, tmp_path / "drills") as f:
        during = _dep(engine, service, project)
        journal = json.loads(f.journal.path.read_text())
        assert journal["state"] == "active" and journal["containers"][0]["name"] == before.name
    after = _dep(engine, service, project)
    if mode == "stop":
        assert during.state == "exited"
    elif mode == "pause":
        assert during.state == "paused"
    else:
        assert during.networks == {} and service in before.networks[f"{project}_default"]["aliases"]
    assert after.state == "running"
    assert service in after.networks[f"{project}_default"]["aliases"], "the DNS alias must come back too"
    done = json.loads(f.journal.path.read_text())
    assert done["state"] == "restored" and done["restore_actions"]
    assert [e["what"].split(":")[0] for e in done["events"]][-2:] == ["restoring", "restored"]
    # healthy again (after a pause the engine says "unhealthy" until the next health check)
    assert engine.wait_ready(project, [service], timeout=60)[0]


@pytest.mark.docker
def test_an_exception_inside_a_drill_still_restores_the_dependency(healthy_demo, engine, tmp_path):
    project = healthy_demo.project
    with pytest.raises(ZeroDivisionError):
        with faults.Fault(engine, project, "redis", "pause", tmp_path / "drills"):
            assert _dep(engine, "redis", project).state == "paused"
            1 / 0
    assert _dep(engine, "redis", project).state == "running"
    assert engine.wait_ready(project, ["redis"], timeout=60)[0]


# -- killing the runner ------------------------------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.slow
def test_sigkill_mid_drill_leaves_a_journal_that_runbook_recover_undoes(healthy_demo, demo_params, engine, cli, tmp_path,
                                                                       monkeypatch):
    out = tmp_path / "out"
    project = healthy_demo.project
    monkeypatch.setenv("RUNBOOK_DRILL_GUARDIAN", "off")  # what is left when no guardian restores (see test_drill_guardian)
    proc = _start_run(out, demo_params)
    try:
        path, journal = _wait_for(lambda: _active_journal(out, "redis"), 120, "the redis drill to be active")
        assert _dep(engine, "redis", project).state == "exited"
        os.kill(journal["pid"], signal.SIGKILL)  # the kernel running the drill (its own session)
        os.killpg(proc.pid, signal.SIGKILL)      # and the runner
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert _dep(engine, "redis", project).state == "exited", "nobody restored it: the process was killed"
    assert json.loads(path.read_text())["state"] == "active"

    # the next run's preflight gate stops before touching anything
    blocked = cli("run", "--params", str(demo_params), "--phase", "04_smoke_tests", "--output", str(out))
    assert blocked.returncode == 1
    assert _dep(engine, "redis", project).state == "exited"
    assert "preflight.drill_journal" in blocked.stderr, blocked.stdout + blocked.stderr

    # a read-only run with another --output finds the journal all the same (its copy in the deployment's state
    # directory), and sees redis stopped with or without one
    elsewhere = cli("run", "--params", str(demo_params), "--phase", "00_preflight", "--output", str(tmp_path / "other"))
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr
    _, records = load_run(run_dir_from(elsewhere.stdout))
    [journal_rec] = [r for r in records if r["id"] == "preflight.drill_journal"]
    assert journal_rec["status"] == "FAIL" and "stop of redis" in journal_rec["actual"]
    [intact] = [r for r in records if r["id"] == "preflight.services_intact"]
    assert intact["status"] == "FAIL" and intact["severity"] == "critical" and "redis" in intact["actual"]
    assert "runbook recover" in intact["remediation"] and "docker start" in intact["remediation"]

    rec = cli("recover", cwd=tmp_path)  # no argument, and no run directory under ./outputs: the state directory
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert "recovered: redis (stop)" in rec.stdout
    assert _dep(engine, "redis", project).running and _dep(engine, "redis", project).health == "healthy"
    assert json.loads(path.read_text())["state"] == "recovered"
    again = cli("recover", str(path.parent.parent))
    assert again.returncode == 0 and "nothing to recover" in again.stdout


@pytest.mark.docker
@pytest.mark.slow
def test_sigint_mid_drill_restores_the_dependency_before_the_process_exits(healthy_demo, demo_params, engine, tmp_path):
    out = tmp_path / "out"
    project = healthy_demo.project
    proc = _start_run(out, demo_params)
    try:
        path, _ = _wait_for(lambda: _active_journal(out, "redis"), 120, "the redis drill to be active")
        assert _dep(engine, "redis", project).state == "exited"
        os.kill(proc.pid, signal.SIGINT)
        seen_running_while_alive = False
        while proc.poll() is None:
            if _dep(engine, "redis", project).running:
                seen_running_while_alive = proc.poll() is None
                break
            time.sleep(0.05)
        assert seen_running_while_alive, "redis was still down when the runner exited"
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    data = json.loads(path.read_text())
    assert data["state"] == "restored"
    assert any("received SIGINT" in e["what"] or "received SIGTERM" in e["what"] for e in data["events"])


# -- journals found wherever they are; services left broken -------------------------------------------------
def test_a_journal_written_with_a_copy_is_found_once_and_marking_either_marks_both(tmp_path):
    copy = tmp_path / "state" / "shop" / "drills" / "redis-20260101T000000Z.journal.json"
    primary = tmp_path / "run" / "drills" / copy.name
    j = Journal(primary, {"schema": 1, "project": PROJECT, "dependency": "redis", "mode": "stop", "state": "active",
                          "id": "1-2", "copies": [str(primary), str(copy)], "containers": []})
    j.write()
    assert json.loads(copy.read_text())["state"] == "active"
    assert len(find_journals([tmp_path, tmp_path / "state" / "shop"], project=PROJECT)) == 1
    [found] = find_journals([tmp_path / "state" / "shop"], project=PROJECT)  # only the copy: where recover looks
    assert found.path == copy
    found.event("recovered by hand", state="recovered")
    assert json.loads(copy.read_text())["state"] == "recovered" == json.loads(j.path.read_text())["state"]
    assert find_journals([tmp_path, tmp_path / "state" / "shop"], project=PROJECT) == []


@pytest.mark.docker
@pytest.mark.parametrize("mode,says", [("pause", "is paused"), ("disconnect", "running but disconnected from")])
def test_preflight_fails_a_paused_or_disconnected_dependency_without_any_journal(healthy_demo, demo_params, engine,
                                                                                 tmp_path, mode, says, monkeypatch):
    monkeypatch.setenv("RUNBOOK_DRILL_GUARDIAN", "off")
    project = healthy_demo.project
    ctx = Context(params=load_params(demo_params))
    assert preflight.services_intact(ctx)[0].status == "PASS"
    with faults.Fault(engine, project, "minio", mode, tmp_path / "drills"):
        ctx = Context(params=load_params(demo_params))
        [rec] = preflight.services_intact(ctx)
    assert rec.status == "FAIL" and rec.id == "preflight.services_intact" and rec.severity == "critical"
    assert says in rec.actual and rec.target.endswith("minio-1")
    assert "runbook recover" in rec.remediation and ("docker unpause" in rec.remediation or "network connect" in rec.remediation)
    assert engine.wait_ready(project, ["minio"], timeout=60)[0]


def test_preflight_services_intact_is_an_error_not_a_pass_when_the_containers_cannot_be_listed(tmp_path, monkeypatch):
    from runbook_lib.errors import EngineUnavailable

    ctx = Context(params=load_params(PARAMS / "demo.yaml"))
    monkeypatch.setattr(Context, "containers", lambda self: (_ for _ in ()).throw(EngineUnavailable("no engine here")))
    [rec] = preflight.services_intact(ctx)
    assert rec.status == "ERROR"
