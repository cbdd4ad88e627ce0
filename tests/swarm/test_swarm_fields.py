"""How a swarm service spec and a stack file's service are put in one shape for
phase 3's drift (runbook_lib/engine/stack.py), and how lint --swarm judges a file secret's mode (the swarm's,
not the host file's). The specs are `docker service inspect` output as engine 20.10 gives it (trimmed)."""
from __future__ import annotations

import yaml

from runbook_lib.engine.stack import SwarmService, field_differences, secret_mode, stack_file_fields

STACK = "shop"


def inspect(**changes) -> dict:
    cs = {"Image": "runbook-demo/app:local@sha256:" + "a" * 64, "Env": ["ENV=production", "PORT=8080"],
          "User": "10001:10001", "ReadOnly": True,
          "Healthcheck": {"Test": ["CMD", "true"], "Interval": 3_000_000_000, "Retries": 5},
          "Secrets": [{"File": {"Name": "db", "UID": "10001", "GID": "10001", "Mode": 256}, "SecretName": "shop_db"}]}
    cs.update(changes.pop("container", {}))
    spec = {"Name": f"{STACK}_web", "TaskTemplate": {
        "ContainerSpec": cs,
        "Resources": {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 128 << 20, "Pids": 64},
                      "Reservations": {"MemoryBytes": 32 << 20}},
        "RestartPolicy": {"Condition": "any", "Delay": 2_000_000_000, "MaxAttempts": 3, "Window": 60_000_000_000},
        "Placement": {"Constraints": ["node.role == manager"]}},
        "Mode": {"Replicated": {"Replicas": 2}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "rollback", "Order": "start-first", "Monitor": 5_000_000_000},
        "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Order": "stop-first"}}
    spec.update(changes)
    return {"ID": "x", "Version": {"Index": 7}, "CreatedAt": "2026-11-30T01:00:00.1Z", "UpdatedAt": "2026-11-30T01:00:00.2Z",
            "Spec": spec}


FILE = yaml.safe_load("""
image: runbook-demo/app:local
environment: {ENV: production, PORT: "8080"}
user: "10001:10001"
read_only: true
healthcheck: {test: [CMD, "true"], interval: 3s, retries: 5}
secrets: [{source: db, uid: "10001", gid: "10001", mode: 256}]
deploy:
  replicas: 2
  resources: {limits: {cpus: "0.5", memory: "134217728", pids: 64}, reservations: {memory: 32M}}
  restart_policy: {condition: any, delay: 2s, max_attempts: 3, window: 1m0s}
  update_config: {parallelism: 1, failure_action: rollback, order: start-first, monitor: 5s}
  rollback_config: {parallelism: 1, failure_action: pause, order: stop-first}
  placement: {constraints: [node.role == manager]}
""")
TOP = {"db": {"file": "/x/db.txt"}}


def test_a_spec_deployed_from_the_file_has_no_difference_and_an_unpinned_image_ignores_the_resolved_digest():
    svc = SwarmService(inspect(), STACK)
    assert svc.service == "web" and svc.replicas == 2 and svc.deployed_at == "2026-11-30T01:00:00.1Z"  # never updated
    want = stack_file_fields(STACK, "web", FILE, TOP)
    assert "image_digest" not in want  # the file pins none: the digest the swarm resolved is not drift
    assert field_differences(want, svc.fields()) == []


def test_each_field_changed_by_hand_is_named_with_expected_and_actual():
    svc = SwarmService(inspect(container={"Env": ["ENV=staging", "PORT=8080", "DEBUG=1"],
                                          "Secrets": [{"File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292},
                                                       "SecretName": "shop_db"}]},
                               Mode={"Replicated": {"Replicas": 1}}), STACK)
    svc.attrs["PreviousSpec"] = {"Name": "shop_web"}
    assert svc.deployed_at == "2026-11-30T01:00:00.2Z"  # updated: judged from the update
    diffs = {d["field"]: d for d in field_differences(stack_file_fields(STACK, "web", FILE, TOP), svc.fields())}
    assert diffs["environment.ENV"] == {"field": "environment.ENV", "expected": "production", "actual": "staging"}
    assert diffs["environment.DEBUG"]["expected"] is None  # added by hand: drift too
    assert diffs["replicas"]["actual"] == 1
    assert diffs["secrets"]["actual"][0]["mode"] == 0o444 and diffs["secrets"]["expected"][0]["mode"] == 0o400
    assert set(diffs) == {"environment.ENV", "environment.DEBUG", "replicas", "secrets"}


def test_a_pinned_digest_and_nested_limits_are_compared_key_by_key():
    pinned = {**FILE, "image": "runbook-demo/app:local@sha256:" + "b" * 64}
    limits = inspect()
    limits["Spec"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] = 256 << 20
    diffs = {d["field"]: d for d in field_differences(stack_file_fields(STACK, "web", pinned, TOP),
                                                      SwarmService(limits, STACK).fields())}
    assert diffs["image_digest"]["expected"] == "sha256:" + "b" * 64 and diffs["image_digest"]["actual"] == "sha256:" + "a" * 64
    assert diffs["resources.limits.memory"] == {"field": "resources.limits.memory", "expected": 128 << 20,
                                                "actual": 256 << 20}


def test_secret_names_targets_and_modes_as_the_swarm_resolves_them():
    f = stack_file_fields(STACK, "web", {"secrets": ["db", {"source": "api", "target": "key", "mode": "0440"}, "ext"]},
                          {"db": {"file": "x"}, "api": {"file": "y"}, "ext": {"external": True, "name": "prod-ext"}})
    assert f["secrets"] == [
        {"name": "shop_db", "target": "db", "uid": "0", "gid": "0", "mode": 0o444},      # defaults: 0444, 0:0
        {"name": "prod-ext", "target": "ext", "uid": "0", "gid": "0", "mode": 0o444},    # external: its own name
        {"name": "shop_api", "target": "key", "uid": "0", "gid": "0", "mode": 0o440}]
    assert secret_mode(256) == 0o400 and secret_mode("0400") == 0o400 and secret_mode(None) == 0o444


def test_lint_swarm_judges_a_file_secret_with_the_mode_the_swarm_gives_it(tmp_path, monkeypatch):
    """Compose bind-mounts a file secret (the host file's mode and owner); a swarm copies it into a file with
    the reference's mode, uid and gid: a 0400 root-owned host file is readable by uid 10001 under Swarm when
    the reference gives it uid 10001, and a reference without mode is 0444 (readable by others)."""
    from runbook_lib.lint import lint_files

    monkeypatch.chdir(tmp_path)
    (tmp_path / "db.txt").write_text("k" * 12 + "Zq7-Lm2pX9vR4tYw")
    (tmp_path / "db.txt").chmod(0o400)
    svc = {"image": "runbook-demo/app:local", "user": "10001:10001", "environment": {"DB_FILE": "/run/secrets/db"},
           "deploy": {"replicas": 1}}
    for name, ref, mounted, mode in (("owned", {"source": "db", "uid": "10001", "gid": "10001", "mode": 0o400}, "PASS", "PASS"),
                                     ("default", "db", "PASS", "WARN")):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"services": {"web": {**svc, "secrets": [ref]}},
                                                               "secrets": {"db": {"file": "./db.txt"}}}))
        recs = {r.id: r for r in lint_files([tmp_path / f"{name}.yaml"], swarm=True).records if r.target == "web"}
        assert recs["secrets.mounted"].status == mounted, (name, recs["secrets.mounted"].actual)
        assert recs["secrets.file_mode"].status == mode, (name, recs["secrets.file_mode"].actual)
    assert "readable by others (mode 0444)" in recs["secrets.file_mode"].actual


def test_a_service_whose_running_tasks_are_on_other_nodes_is_an_error_not_a_fail_nor_a_pass(tmp_path):
    """A node's engine holds only its own tasks' containers: a service running elsewhere could not be looked
    at here (ERROR naming the nodes); one with no running task anywhere is a FAIL. The swarm's answers are
    given to the context as the engine would (its state), no engine is asked."""
    from runbook_lib.phases.production.common import no_container
    from runbook_lib.results.records import Check
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params

    (tmp_path / "stack.yaml").write_text(yaml.safe_dump({"services": {"web": FILE}, "secrets": TOP}))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"project": STACK, "mode": "swarm", "stack": STACK,
                                                     "compose_files": ["stack.yaml"]}))
    ctx = Context(params=load_params(tmp_path / "p.yaml"))
    ctx.state.swarm_services = {"web": SwarmService(inspect(), STACK)}
    task = {"ID": "t1", "ServiceID": "x", "NodeID": "othernode0123456", "DesiredState": "running",
            "Status": {"State": "running"}}
    ctx.state.swarm_tasks = [task]
    rec = no_container(Check("prod.stability"), "web", "a stable container", ctx)
    assert rec.status == "ERROR" and "othernode012" in rec.actual and rec.evidence["nodes_running_tasks"] == ["othernode012"]
    task["Status"]["State"] = "failed"
    rec = no_container(Check("prod.stability"), "web", "a stable container", ctx)
    assert rec.status == "FAIL" and rec.actual == "no task of this service is running"


def test_ports_command_and_capabilities_are_compared_and_a_port_published_by_hand_is_drift():
    svc = inspect(container={"Args": ["serve", "--debug"], "CapabilityDrop": ["ALL"]},
                  EndpointSpec={"Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080, "PublishMode": "ingress"},
                                          {"Protocol": "tcp", "TargetPort": 9229, "PublishedPort": 9229, "PublishMode": "host"}]})
    f = {**FILE, "command": "serve", "cap_drop": ["ALL"],
         "ports": [{"mode": "ingress", "target": 8080, "published": "8080", "protocol": "tcp"}]}
    diffs = {d["field"]: d for d in field_differences(stack_file_fields(STACK, "web", f, TOP), SwarmService(svc, STACK).fields())}
    assert set(diffs) == {"ports", "command"}
    assert diffs["command"] == {"field": "command", "expected": ["serve"], "actual": ["serve", "--debug"]}
    assert diffs["ports"]["actual"][-1] == {"target": 9229, "published": 9229, "protocol": "tcp", "mode": "host"}
    # the short form, as a file may write it
    assert stack_file_fields(STACK, "web", {"ports": ["127.0.0.1:8080:80/udp"]}, {})["ports"] == [
        {"target": 80, "published": 8080, "protocol": "udp", "mode": "ingress"}]


def _task(service_id: str, state: str = "running") -> dict:
    return {"ID": f"t-{service_id}", "ServiceID": service_id, "DesiredState": "running", "Slot": 0,
            "NodeID": "n1", "CreatedAt": "2026-11-30T01:00:01Z", "Status": {"State": state, "Message": state}}


def test_a_global_service_with_no_task_is_neither_converged_nor_a_pass_of_0_of_0():
    """A global service's desired count is the number of its tasks: none (the first poll after a deploy, or a
    placement no node fits) is no evidence of convergence. A replicated service scaled to 0 on purpose is."""
    from types import SimpleNamespace

    from runbook_lib.engine.stack import ServiceState
    from runbook_lib.phases.production.swarm_checks import replicas

    nowhere = ServiceState("agent", f"{STACK}_agent", mode="global", desired=0, running=0)
    assert not nowhere.converged and "no task yet" in nowhere.describe()
    assert ServiceState("agent", f"{STACK}_agent", mode="global", desired=1, running=1).converged
    assert ServiceState("off", f"{STACK}_off", mode="replicated", desired=0, running=0).converged

    def service(name: str, ident: str) -> SwarmService:
        attrs = inspect(Name=f"{STACK}_{name}", Mode={"Global": {}})
        return SwarmService({**attrs, "ID": ident}, STACK)

    specs = {"agent": service("agent", "s-agent"), "web": service("web", "s-web")}
    ctx = SimpleNamespace(params=SimpleNamespace(stack=STACK), services=["agent", "web"],
                          deployment=SimpleNamespace(service_specs=lambda: specs, tasks=lambda: [_task("s-web")]))
    recs = {r.target: r for r in replicas(ctx)}
    assert recs["agent"].status == "FAIL" and "no node fits its placement" in recs["agent"].actual, recs["agent"].actual
    assert recs["web"].status == "PASS" and recs["web"].actual.startswith("1/1 running (global)"), recs["web"].actual
