"""``hardening.non_root`` judges the uid the container's processes run as, not only the user it is
configured to start as: an entrypoint that drops to an unprivileged user (as gosu, su-exec and setpriv do
in the official database images) is not root; a process running as root is. ``runbook lint`` still judges
the configured user, the only thing it can see. Real engine, a compose project of this test's own."""
from __future__ import annotations

import secrets
import subprocess
import time

import pytest
import yaml

from runbook_lib.engine import Engine
from runbook_lib.engine.compose import Compose
from runbook_lib.engine.processes import Process, ProcessReading
from runbook_lib.lint import ServiceFacts, judge_user

# Starts as root, drops to uid/gid 100 (what gosu does), then execs the server, which starts a child.
DROP = ("import os; os.setgroups([]); os.setgid(100); os.setuid(100); "
        "os.execvp('python3', ['python3', '-c', 'import subprocess, time; subprocess.Popen([\"sleep\", \"900\"]); time.sleep(900)'])")
STAY = "import time; time.sleep(900)"


def _service(code: str, user: str) -> dict:
    return {"image": "runbook-demo/app:local", "user": user, "entrypoint": ["python3", "-c", code]}


@pytest.fixture(scope="module")
def users_stack(tmp_path_factory):
    """Three services: ``db`` configured root whose entrypoint drops to uid 100; ``rooted`` configured
    root and running as root; ``plain`` configured and running as uid 10001."""
    root = tmp_path_factory.mktemp("running-user")
    compose = root / "compose.yaml"
    compose.write_text(yaml.safe_dump({"services": {
        "db": _service(DROP, "0:0"), "rooted": _service(STAY, "0:0"), "plain": _service(STAY, "10001:10001")}}))
    project = f"rbtest-users-{secrets.token_hex(4)}"
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"project": project, "compose_files": [str(compose)]}))
    stack = Compose(files=[compose], project=project)
    try:
        stack.up(wait=False, timeout=300)
        eng = Engine()
        for _ in range(300):  # the dropping entrypoint has exec'd the server and the server started its child
            views = eng.project_containers(project)
            db = [v for v in views if v.service == "db"]
            if len(views) == 3 and db and len(eng.api.top(db[0].id)["Processes"] or []) >= 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the test project {project} did not start")
        yield project, params, compose
    finally:
        stack.down(volumes=True)


def _non_root(params, procfs_reads: bool = True) -> dict:
    from runbook_lib.phases.security import hardening
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params

    ctx = Context(params=load_params(params))
    if not procfs_reads:
        ctx._engine = Engine(procfs_reads=False)
    return {r.target: r for r in hardening(ctx) if r.id == "hardening.non_root"}


@pytest.mark.docker
@pytest.mark.parametrize("procfs_reads", [True, False], ids=["proc", "docker-top"])
def test_a_service_whose_entrypoint_drops_to_an_unprivileged_uid_is_not_root(users_stack, procfs_reads):
    project, params, _ = users_stack
    eng = Engine()
    [db] = eng.service_containers(project, "db")
    # a `docker exec` as root (what a healthcheck of a root-configured service is) is not the service's process
    subprocess.run(["docker", "exec", "-d", db.name, "sleep", "60"], check=True, capture_output=True)
    recs = _non_root(params, procfs_reads)
    rec = recs["db"]
    assert rec.status == "PASS", (rec.actual, rec.evidence)
    assert rec.evidence["uid"] == 0 and rec.evidence["user"] == "0:0"
    assert {p["uid"] for p in rec.evidence["processes"]} == {100} and rec.evidence["process_count"] == 2
    assert {p["name"] for p in rec.evidence["processes"]} == {"python3", "sleep"}
    assert rec.evidence["read"] == ("procfs" if procfs_reads else "docker top")
    assert "configured user '0:0' (uid 0)" in rec.actual and "drops privileges" in rec.actual
    assert recs["plain"].status == "PASS" and recs["plain"].evidence["uid"] == 10001


@pytest.mark.docker
def test_a_service_configured_as_root_whose_process_runs_as_root_fails(users_stack):
    _, params, _ = users_stack
    rec = _non_root(params)["rooted"]
    assert rec.status == "FAIL" and rec.severity == "medium", (rec.actual, rec.evidence)
    assert rec.actual.startswith("1 of 1 running processes run as uid 0 (python3)")
    assert "configured user '0:0' (uid 0)" in rec.actual and rec.evidence["cis"] == "4.1"


def test_lint_still_judges_the_configured_user_which_is_all_it_can_see(users_stack):
    from runbook_lib.lint import lint_files

    _, _, compose = users_stack
    result = lint_files([compose])
    by = {r.target: r for r in result.records if r.id == "hardening.non_root"}
    assert by["db"].status == "FAIL" and by["rooted"].status == "FAIL" and by["plain"].status == "PASS"


def test_a_configured_non_root_user_whose_process_runs_as_root_fails():
    facts = ServiceFacts(service="app", source="engine", user="10001")
    seen = ProcessReading([Process(40, 1, 10001, "app"), Process(41, 40, 0, "helper")], via="procfs")
    v = judge_user(facts, (10001, 10001), "", seen)
    assert v.status == "FAIL" and v.actual.startswith("1 of 2 running processes run as uid 0 (helper)")


def test_processes_that_could_not_be_read_are_an_error_not_a_pass():
    facts = ServiceFacts(service="db", source="engine", user="10001")
    for reading in (ProcessReading(error="docker top db: engine call failed"), ProcessReading(via="procfs")):
        v = judge_user(facts, (10001, 10001), "", reading)
        assert v.status == "ERROR" and v.actual.startswith("could not check"), v.actual


class _Engine:
    """What container_processes asks of an engine, answering as one whose container's main process ended
    between the inspect and `docker top` (a crash loop): top lists nothing, the inspect after says ``now``."""

    def __init__(self, now: dict):
        self.now = now
        self.api = self

    def procfs_allowed(self) -> bool:
        return False

    def top(self, container_id: str, ps_args: str = "") -> dict:
        return {"Titles": ["PID", "PPID", "UID", "COMMAND"], "Processes": []}

    def container(self, container_id: str):
        from runbook_lib.engine.containers import ContainerView

        return ContainerView({"Id": container_id, "Name": "/app", "State": self.now})


def test_a_container_whose_process_ended_while_it_was_read_is_read_as_not_running_not_as_no_process():
    """A crash-looping root container caught between two starts: judged by its configured user (uid 0: FAIL),
    never an ERROR "no process seen"; one still running the same process with none listed stays an ERROR."""
    from runbook_lib.engine.containers import ContainerView
    from runbook_lib.engine.processes import container_processes

    seen = ContainerView({"Id": "c1", "Name": "/app", "State": {"Status": "running", "Running": True, "Pid": 40}})
    facts = ServiceFacts(service="app", source="engine", user="toor")
    restarting = container_processes(_Engine({"Status": "restarting", "Restarting": True, "Pid": 0}), seen)
    assert not restarting.running and restarting.error == "the container is restarting"
    restarted = container_processes(_Engine({"Status": "running", "Running": True, "Pid": 41}), seen)
    assert not restarted.running and "restarted while it was read (main process 40, now 41)" in restarted.error
    for reading in (restarting, restarted):
        v = judge_user(facts, (0, 0), "", reading)
        assert v.status == "FAIL" and "uid 0" in v.actual and "configured user is judged" in v.evidence["processes"]
    same = container_processes(_Engine({"Status": "running", "Running": True, "Pid": 40}), seen)
    assert same.running and not same.processes
    assert judge_user(facts, (0, 0), "", same).status == "ERROR"


@pytest.mark.docker
def test_a_container_that_logged_nothing_is_not_a_pass_of_no_secret_in_its_logs(users_stack):
    """The three services here only sleep: `docker logs` is empty. That proves nothing about secrets in logs
    that go to files inside them (as prod.logs says of a silent log): SKIP, never a PASS of "0 lines searched".
    (The demo's services, which log, PASS: tests/phases/test_security.py.)"""
    from runbook_lib.params import load_params
    from runbook_lib.phases.security import secrets_not_in_logs
    from runbook_lib.run.context import Context

    _, params, _ = users_stack
    ctx = Context(params=load_params(params), progress=lambda s: None)
    ctx.learn_value("rbtest-a-secret-value-7f3a", "a test secret")
    recs = {r.target: r for r in secrets_not_in_logs(ctx)}
    assert set(recs) == {"db", "rooted", "plain"}
    for rec in recs.values():
        assert rec.status == "SKIP" and rec.severity == "info", (rec.target, rec.status, rec.actual)
        assert "has logged no line" in rec.actual and rec.evidence["lines_searched"] == 0
