"""Phase 0 in swarm mode, for real, on a single-node swarm that is not the main engine.

The swarm is a second engine started by the test in its own network namespace (tests/engines.py); the
main engine is never put in swarm mode, and its docker0, swarm state and containers are compared before
and after. Each check PASSes only with what it observed; planted faults FAIL under the right id and
target; an engine that cannot be read gives ERROR, never PASS. No secret value reaches a record."""
from __future__ import annotations

import json
import secrets as pysecrets
from pathlib import Path

import pytest
import yaml

from engines import netns_engine, netns_swarm, skip_reason  # noqa: F401  (pytest fixtures)

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

STACK = "rbtest-swarm-p0"
DB, SITE = "rbtest-swarm-db", "rbtest-swarm-site"


@pytest.fixture(scope="module")
def values():
    """The values of the secrets this module creates: held only to prove none reaches a record."""
    return {"db": pysecrets.token_urlsafe(24), "api": pysecrets.token_urlsafe(24)}


@pytest.fixture(scope="module")
def project(netns_swarm, tmp_path_factory, values):
    """A stack file with an external secret and config (created in the swarm by name), a file secret,
    and its parameters file in swarm mode."""
    d = tmp_path_factory.mktemp("swarm")
    (d / "api.txt").write_text(values["api"])
    (d / "api.txt").chmod(0o400)
    stack = {"services": {"web": {
        "image": "runbook-demo/app:local", "command": ["sleep", "3600"],
        "secrets": ["db", "api"], "configs": ["site"],
        "environment": {"DB_FILE": "/run/secrets/db", "API_FILE": "/run/secrets/api"},
        "deploy": {"replicas": 1}}},
        "secrets": {"db": {"external": True, "name": DB}, "api": {"file": "./api.txt"}},
        "configs": {"site": {"external": True, "name": SITE}}}
    (d / "stack.yaml").write_text(yaml.safe_dump(stack, sort_keys=False))
    netns_swarm.docker("secret", "create", DB, "-", input=values["db"])
    netns_swarm.docker("config", "create", SITE, "-", input="site-config")
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump({"project": STACK, "mode": "swarm", "stack": STACK,
                                      "compose_files": ["stack.yaml"], "phases": ["00_preflight"]}))
    return d, params


def swarm_records(params: Path, monkeypatch, host: str):
    """Phase 0's swarm checks against ``host``, called as the notebook calls them."""
    from runbook_lib.phases import preflight
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params

    monkeypatch.setenv("DOCKER_HOST", host)
    ctx = Context(params=load_params(params))
    out = []
    for fn in (preflight.swarm_active, preflight.swarm_nodes, preflight.swarm_objects, preflight.swarm_stack_file):
        out += fn(ctx)
    return out


def by_target(records, check_id):
    return {r.target: r for r in records if r.id == check_id}


def test_phase0_passes_on_a_healthy_single_node_swarm(netns_swarm, project, monkeypatch, values):
    d, params = project
    recs = swarm_records(params, monkeypatch, netns_swarm.host)
    [active] = by_target(recs, "preflight.swarm_active").values()
    assert active.status == "PASS" and active.actual.startswith("active, manager node") and active.evidence["cluster_id"]
    [node] = by_target(recs, "preflight.swarm_nodes").values()
    assert node.status == "PASS" and node.actual.startswith("ready, active, manager"), node.actual
    objs = by_target(recs, "preflight.swarm_objects")
    assert set(objs) == {f"secret {DB}", f"config {SITE}"}  # the file secret is not external: not looked up
    assert all(r.status == "PASS" and r.evidence["found"][0]["id"] for r in objs.values()), objs
    [stack] = by_target(recs, "preflight.swarm_stack_file").values()
    assert stack.status == "PASS" and stack.actual == "1 service, 2 secrets, 1 config", stack.actual
    text = json.dumps([r.to_dict() for r in recs])
    assert values["db"] not in text and values["api"] not in text and "site-config" not in text


def test_a_host_port_another_stack_publishes_through_the_routing_mesh_is_named_before_a_deploy(
        netns_swarm, project, monkeypatch, tmp_path):
    from runbook_lib.params import load_params
    from runbook_lib.phases.preflight import ports_free
    from runbook_lib.run.context import Context

    d, params = project
    stack = yaml.safe_load((d / "stack.yaml").read_text())
    stack["services"]["web"]["ports"] = ["18181:8080"]
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(stack))
    (tmp_path / "api.txt").write_text("x" * 40)
    (tmp_path / "params.yaml").write_text(params.read_text())
    monkeypatch.setenv("DOCKER_HOST", netns_swarm.host)
    [free] = ports_free(Context(params=load_params(tmp_path / "params.yaml")))
    assert (free.target, free.status) == ("web *:18181/tcp", "PASS"), free.actual
    # another stack's service publishes the same port through the routing mesh: no container lists it
    netns_swarm.docker("service", "create", "--detach", "--name", "rbtest-other_web", "--label",
                       "com.docker.stack.namespace=rbtest-other", "--publish", "18181:8080",
                       "runbook-demo/app:local", "sleep", "3600")
    try:
        [held] = ports_free(Context(params=load_params(tmp_path / "params.yaml")))
    finally:
        netns_swarm.docker("service", "rm", "rbtest-other_web")
    assert (held.id, held.status, held.severity) == ("preflight.ports_free", "FAIL", "critical")
    assert held.actual == "held by swarm service rbtest-other_web (stack rbtest-other)", held.actual


def test_runbook_run_phase0_in_swarm_mode_is_go_and_archives_the_swarm_records(netns_swarm, project, cli, tmp_path, values):
    d, params = project
    proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"), env={"DOCKER_HOST": netns_swarm.host})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run] = list((tmp_path / "out").iterdir())
    recs = json.loads((run / "results" / "00_preflight.json").read_text())
    ids = {(r["id"], r["status"]) for r in recs}
    for cid in ("preflight.swarm_active", "preflight.swarm_nodes", "preflight.swarm_objects", "preflight.swarm_stack_file"):
        assert (cid, "PASS") in ids, (cid, sorted(ids))
    assert not {i for i, _ in ids} & {"preflight.current_state", "preflight.orphans"}  # compose-only: not run
    audit = next(r for r in recs if r["id"] == "preflight.static_audit")
    assert audit["command"].startswith("runbook lint --swarm ")
    assert not any(f["id"] == "secrets.external" and f["status"] == "FAIL" for f in audit["evidence"]["findings"])
    assert json.loads((run / "verdict.json").read_text())["verdict"] == "GO"
    everything = "".join(p.read_text(errors="replace") for p in run.rglob("*") if p.is_file())
    assert values["db"] not in everything and values["api"] not in everything


def test_what_lint_swarm_says_is_what_docker_stack_deploy_does(netns_swarm, tmp_path, monkeypatch):
    """lint --swarm's claims against the real loader: a service clean for every swarm rule deploys, with its
    limits, restart policy and update/rollback configs in the service spec; restart: and security_opt
    reach nothing; a build-only service and mem_limit are refused, as swarm.unsupported_keys says."""
    from test_lint_swarm import DELETE, service

    from runbook_lib.lint import lint_files

    monkeypatch.chdir(tmp_path)
    clean = service({"image": "runbook-demo/app:local", "command": ["sleep", "3600"], "restart": "no",
                     "security_opt": ["no-new-privileges:true"]})
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({"services": {"web": clean}}))
    recs = {r.id: r for r in lint_files([tmp_path / "ok.yaml"], swarm=True).records if r.target == "web"}
    assert {recs[i].status for i in ("swarm.replicas", "swarm.restart_policy", "swarm.update_config",
                                     "swarm.rollback_config")} == {"PASS"}
    assert recs["swarm.unsupported_keys"].status == "FAIL" and recs["hardening.no_new_privileges"].status == "FAIL"
    proc = netns_swarm.docker("stack", "deploy", "--resolve-image", "never", "-c", str(tmp_path / "ok.yaml"),
                              "rbtest-swarm-lint")
    assert "Ignoring unsupported options: restart, security_opt" in proc.stderr, proc.stderr
    spec = json.loads(netns_swarm.docker("service", "inspect", "rbtest-swarm-lint_web").stdout)[0]["Spec"]
    task = spec["TaskTemplate"]
    assert task["Resources"]["Limits"]["MemoryBytes"] == 128 * 1024 * 1024 and task["Resources"]["Limits"]["NanoCPUs"] == 500_000_000
    assert task["RestartPolicy"]["Condition"] == "any" and task["RestartPolicy"]["MaxAttempts"] == 3  # not restart: no
    assert task["ContainerSpec"]["Privileges"].get("NoNewPrivileges") in (None, False)  # security_opt reached nothing
    assert spec["UpdateConfig"]["FailureAction"] == "rollback" and spec["RollbackConfig"]["FailureAction"] == "pause"
    assert spec["Mode"]["Replicated"]["Replicas"] == 2
    netns_swarm.docker("stack", "rm", "rbtest-swarm-lint")
    for name, changes, said in (("built", {"image": DELETE, "build": "."}, "no image specified"),
                                ("limited", {"mem_limit": "64m"}, "mem_limit")):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"services": {"web": service(changes)}}))
        v = {r.id: r for r in lint_files([tmp_path / f"{name}.yaml"], swarm=True).records}["swarm.unsupported_keys"]
        assert v.status == "FAIL" and v.severity == "high"
        proc = netns_swarm.docker("stack", "deploy", "--resolve-image", "never", "-c", str(tmp_path / f"{name}.yaml"),
                                  f"rbtest-swarm-{name}", check=False)
        assert proc.returncode != 0 and said in proc.stderr, proc.stderr


def test_planted_faults_fail_with_the_right_id_and_target(netns_swarm, project, monkeypatch, tmp_path):
    d, params = project
    # a missing external secret
    netns_swarm.docker("secret", "rm", DB)
    # a drained node
    node = netns_swarm.docker("node", "ls", "--format", "{{.ID}}").stdout.split()[0]
    netns_swarm.docker("node", "update", "--availability", "drain", node)
    # a stack file docker stack deploy refuses (Compose accepts it)
    bad = yaml.safe_load((d / "stack.yaml").read_text())
    bad["services"]["web"]["mem_limit"] = "64m"
    (tmp_path / "api.txt").write_text("x" * 40)
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(bad))
    bad_params = tmp_path / "params.yaml"
    bad_params.write_text((params.read_text()))
    try:
        recs = swarm_records(bad_params, monkeypatch, netns_swarm.host)
    finally:
        netns_swarm.docker("node", "update", "--availability", "active", node)
    objs = by_target(recs, "preflight.swarm_objects")
    assert objs[f"secret {DB}"].status == "FAIL" and f"no secret named {DB}" in objs[f"secret {DB}"].actual
    assert objs[f"config {SITE}"].status == "PASS"
    [n] = by_target(recs, "preflight.swarm_nodes").values()
    assert n.status == "FAIL" and "availability drain" in n.actual
    [s] = by_target(recs, "preflight.swarm_stack_file").values()
    assert s.status == "FAIL" and "mem_limit" in s.actual, s.actual
    # not in a swarm at all (last: the module's swarm ends here)
    netns_swarm.docker("swarm", "leave", "--force")
    recs = swarm_records(params, monkeypatch, netns_swarm.host)
    [a] = by_target(recs, "preflight.swarm_active").values()
    assert a.status == "FAIL" and a.actual.startswith("swarm inactive")
    assert by_target(recs, "preflight.swarm_nodes")["nodes"].status == "ERROR"  # could not look: no PASS
    assert all(r.status == "ERROR" for r in by_target(recs, "preflight.swarm_objects").values())


def test_an_engine_that_cannot_be_read_is_an_error_never_a_pass(project, monkeypatch, tmp_path):
    from runbook_lib.phases import preflight
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params

    d, params = project
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    ctx = Context(params=load_params(params))
    recs = [r for fn in (preflight.swarm_active, preflight.swarm_nodes, preflight.swarm_objects) for r in fn(ctx)]
    assert recs and all(r.status == "ERROR" for r in recs), [(r.id, r.status, r.actual) for r in recs]
