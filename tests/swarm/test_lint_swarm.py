"""`runbook lint --swarm`, the compose files as `docker stack deploy` applies them.

Each swarm rule has a planted stack file (a hardened swarm service with one thing changed) that FAILs or
WARNs with the rule's id and the line of the key it judges, and a clean twin that PASSes. A hardening key
Swarm ignores is named, and the hardening rule it fed judges the service without it (no false PASS).
Compose mode (no --swarm) is unchanged: external secrets FAIL there."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from runbook_lib.lint import RULES, lint_files
from runbook_lib.lint.output import format_sarif

# A swarm service that passes every swarm rule and every hardening rule.
HARDENED = {
    "image": "nginx:1.25.3", "user": "101:101", "read_only": True, "cap_drop": ["ALL"],
    "healthcheck": {"test": ["CMD", "true"]},
    "deploy": {"replicas": 2,
               "resources": {"limits": {"memory": "128M", "cpus": "0.5", "pids": 64}},
               "restart_policy": {"condition": "any", "max_attempts": 3, "window": "2m", "delay": "5s"},
               "update_config": {"failure_action": "rollback", "order": "start-first", "parallelism": 1,
                                 "monitor": "10s"},
               "rollback_config": {"failure_action": "pause", "order": "stop-first", "parallelism": 1}},
}
DELETE = object()


def service(changes: dict) -> dict:
    spec = copy.deepcopy(HARDENED)
    for path, v in changes.items():
        *parents, key = path.split(".")
        d = spec
        for p in parents:
            d = d.setdefault(p, {})
        if v is DELETE:
            d.pop(key, None)
        else:
            d[key] = v
    return spec


# rule -> (planted changes, status, key its SARIF line is at (None: the service's line), clean changes)
CASES = {
    "swarm.replicas": ({"deploy.replicas": DELETE}, "WARN", "deploy", {"deploy.replicas": DELETE, "deploy.mode": "global"}),
    "swarm.restart_policy": ({"deploy.restart_policy.condition": "none"}, "FAIL", "deploy", {}),
    "swarm.update_config": ({"deploy.update_config.failure_action": "continue"}, "FAIL", "deploy",
                            {"deploy.update_config.failure_action": "pause"}),
    "swarm.rollback_config": ({"deploy.rollback_config": DELETE}, "WARN", "deploy", {}),
    "swarm.unsupported_keys": ({"security_opt": ["no-new-privileges:true"]}, "FAIL", "security_opt", {}),
}


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text))


def by_id(result, target: str = "web") -> dict:
    return {r.id: r for r in result.records if r.target == target}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_a_planted_stack_file_is_found_with_id_and_line_and_its_clean_twin_passes(rule, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planted, status, key, clean = CASES[rule]
    bad = write(tmp_path, "planted.yaml", {"services": {"web": service(planted)}})
    result = lint_files([bad], swarm=True)
    rec = by_id(result)[rule]
    assert rec.status == status, (rec.actual, rec.evidence)
    [found] = [s for s in json.loads(format_sarif(result))["runs"][0]["results"] if s["ruleId"] == rule]
    want = line_of(bad, f"    {key}:") if key else line_of(bad, "  web:")
    assert found["locations"][0]["physicalLocation"]["region"]["startLine"] == want
    twin = by_id(lint_files([write(tmp_path, "clean.yaml", {"services": {"web": service(clean)}})], swarm=True))
    assert twin[rule].status == "PASS", (twin[rule].actual, twin[rule].evidence)
    # the clean twin is clean for every swarm and hardening rule too, but no-new-privileges: a stack file
    # cannot set it (security_opt is ignored), so it FAILs for every swarm service (a truthful finding)
    assert not [(r.id, r.actual) for r in twin.values() if r.status in ("FAIL", "WARN")
                and (r.id.startswith("swarm.") or r.id.startswith("hardening.")) and r.id != "hardening.no_new_privileges"]
    assert twin["hardening.no_new_privileges"].status == "FAIL"


def test_the_hardened_swarm_service_passes_every_swarm_rule_and_the_limits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recs = by_id(lint_files([write(tmp_path, "s.yaml", {"services": {"web": service({})}})], swarm=True))
    for rule in ("swarm.replicas", "swarm.restart_policy", "swarm.update_config", "swarm.rollback_config",
                 "swarm.unsupported_keys", "hardening.memory_limit", "hardening.cpu_limit", "hardening.pids_limit"):
        assert recs[rule].status == "PASS", (rule, recs[rule].actual)
    assert recs["swarm.restart_policy"].actual == "condition any, max_attempts 3 within 2m0s, delay 5s"
    assert recs["hardening.memory_limit"].actual == "128 MiB"
    assert "service.restart_policy" not in recs  # restart: is not what Swarm reads; swarm.restart_policy is


def test_external_secrets_and_configs_are_accepted_under_swarm_and_fail_in_compose_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = service({"secrets": ["db"], "configs": ["site"], "environment": {"DB_FILE": "/run/secrets/db"}})
    doc = {"services": {"web": spec}, "secrets": {"db": {"external": True}},
           "configs": {"site": {"external": True, "name": "site-v2"}}}
    path = write(tmp_path, "s.yaml", doc)
    swarm = lint_files([path], swarm=True)
    ext = {r.target: r for r in swarm.records if r.id == "secrets.external"}
    assert ext["db"].status == "INFO" and "served by the swarm" in ext["db"].actual
    assert ext["config site"].status == "INFO" and "external config site-v2" in ext["config site"].actual
    assert "preflight.swarm_objects" in ext["db"].actual  # says where it is verified
    # the one problem left: no-new-privileges, which a stack file cannot set (security_opt is ignored)
    assert [r.id for r in swarm.records if r.problem] == ["hardening.no_new_privileges"]
    compose = lint_files([path])
    [rec] = [r for r in compose.records if r.id == "secrets.external"]
    assert rec.status == "FAIL" and rec.target == "db" and compose.exit_code == 1


def test_a_hardening_key_swarm_ignores_is_no_protection(tmp_path, monkeypatch):
    """security_opt no-new-privileges, restart and mem_limit: Compose honours them; under --swarm the
    hardening rules judge the service without them and say why, instead of a false PASS."""
    monkeypatch.chdir(tmp_path)
    planted = service({"security_opt": ["no-new-privileges:true"], "restart": "always", "mem_limit": "128m",
                       "deploy.resources": DELETE, "deploy.restart_policy": DELETE})
    path = write(tmp_path, "s.yaml", {"services": {"web": planted}})
    compose = by_id(lint_files([path]))
    assert compose["hardening.no_new_privileges"].status == "PASS" and compose["hardening.memory_limit"].status == "PASS"
    swarm = by_id(lint_files([path], swarm=True))
    nnp = swarm["hardening.no_new_privileges"]
    assert nnp.status == "FAIL" and "the file sets security_opt, which docker stack deploy ignores" in nnp.actual
    mem = swarm["hardening.memory_limit"]
    assert mem.status == "FAIL" and "the file sets mem_limit, which docker stack deploy refuses" in mem.actual
    keys = swarm["swarm.unsupported_keys"]
    assert keys.status == "FAIL" and keys.severity == "high"  # mem_limit: the stack is refused outright
    assert set(keys.evidence["ignored"]) == {"restart", "security_opt"} and set(keys.evidence["rejected"]) == {"mem_limit"}
    rp = swarm["swarm.restart_policy"]
    assert rp.status == "WARN" and "restart: always is ignored by docker stack deploy" in rp.actual


def test_a_build_only_service_is_refused_and_other_ignored_keys_warn(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    built = service({"image": DELETE, "build": "."})
    named = service({"container_name": "web-1", "depends_on": ["db"]})
    db = service({})
    recs = lint_files([write(tmp_path, "s.yaml", {"services": {"built": built, "web": named, "db": db}})], swarm=True)
    b = by_id(recs, "built")["swarm.unsupported_keys"]
    assert b.status == "FAIL" and "no image: docker stack deploy refuses the stack" in b.actual
    w = by_id(recs, "web")["swarm.unsupported_keys"]
    assert w.status == "WARN" and w.actual == "ignored by docker stack deploy: container_name, depends_on"


def test_restart_policy_conditions_and_bounds():
    from runbook_lib.lint.swarm import judge_restart_policy

    accepted = ["always", "unless-stopped"]
    assert judge_restart_policy({"deploy": {"restart_policy": {"condition": "on-failure"}}}, accepted).status == "FAIL"
    assert judge_restart_policy({"deploy": {"restart_policy": {"condition": "on-failure"}}}, ["on-failure"]).status == "PASS"
    v = judge_restart_policy({"deploy": {"restart_policy": {"condition": "any", "max_attempts": 3}}}, accepted)
    assert v.status == "WARN" and "no window" in v.actual
    one_shot = judge_restart_policy({"deploy": {"restart_policy": {"condition": "none"}}}, accepted, "x waits for it")
    assert one_shot.status == "INFO"


def test_update_config_single_replica_stop_first_and_parallelism_zero_warn():
    from runbook_lib.lint.swarm import judge_update_config

    one = {"deploy": {"replicas": 1, "update_config": {"failure_action": "rollback", "order": "stop-first"}}}
    assert judge_update_config(one).status == "WARN" and "downtime" in judge_update_config(one).actual
    zero = {"deploy": {"replicas": 3, "update_config": {"failure_action": "pause", "parallelism": 0}}}
    assert judge_update_config(zero).status == "WARN"
    assert judge_update_config({"deploy": {"replicas": 3}}).status == "WARN"


def test_the_cli_flag_and_a_swarm_params_file_both_lint_as_swarm(cli, tmp_path):
    spec = service({"secrets": ["db"], "environment": {"DB_FILE": "/run/secrets/db"}})
    path = write(tmp_path, "stack.yaml", {"services": {"web": spec}, "secrets": {"db": {"external": True}}})
    proc = cli("lint", str(path), "--swarm", "--format", "json")
    swarm = {(r["id"], r["target"]): r for r in json.loads(proc.stdout)["records"]}
    assert swarm[("secrets.external", "db")]["status"] == "INFO", proc.stdout
    assert ("swarm.replicas", "web") in swarm and ("service.restart_policy", "web") not in swarm
    compose = {(r["id"], r["target"]): r for r in json.loads(cli("lint", str(path), "--format", "json").stdout)["records"]}
    assert compose[("secrets.external", "db")]["status"] == "FAIL" and ("swarm.replicas", "web") not in compose
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"project": "rbtest-swarm-lint", "mode": "swarm", "stack": "rbtest-swarm-lint",
                                      "compose_files": ["stack.yaml"]}))
    proc = cli("lint", "--params", str(params), "--format", "json")
    ids = {(r["id"], r["target"], r["status"]) for r in json.loads(proc.stdout)["records"]}
    assert ("swarm.replicas", "web", "PASS") in ids and ("secrets.external", "db", "INFO") in ids, proc.stdout + proc.stderr


def test_every_swarm_rule_is_declared_with_keys_and_in_the_lint_doc():
    readme = (Path(__file__).resolve().parents[2] / "docs" / "lint.md").read_text()
    for rid in ("swarm.unsupported_keys", "swarm.replicas", "swarm.restart_policy", "swarm.update_config",
                "swarm.rollback_config"):
        assert RULES[rid].keys and RULES[rid].remediation
        assert f"| `{rid}` |" in readme


def test_a_secret_served_by_the_swarm_is_not_claimed_present_by_lint(tmp_path, monkeypatch):
    """No file of an external secret is on the host: lint saw nothing of it, so secrets.mounted and
    secrets.file_env say "not judged here" (INFO), never PASS "present, non-empty, readable"; with a file
    secret beside it, the PASS counts only the file secret."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "api.txt").write_text("k" * 12 + "Zq7-Lm2pX9vR4tYw")
    (tmp_path / "api.txt").chmod(0o444)  # readable by the service's uid 101 (secrets.file_mode WARNs, not judged here)
    only = service({"secrets": ["db"], "environment": {"DB_FILE": "/run/secrets/db"}})
    recs = by_id(lint_files([write(tmp_path, "a.yaml", {"services": {"web": only},
                                                          "secrets": {"db": {"external": True}}})], swarm=True))
    for rule in ("secrets.mounted", "secrets.file_env"):
        assert recs[rule].status == "INFO" and "not judged here: " in recs[rule].actual, recs[rule].actual
    both = service({"secrets": ["db", "api"], "environment": {"DB_FILE": "/run/secrets/db", "API_FILE": "/run/secrets/api"}})
    recs = by_id(lint_files([write(tmp_path, "b.yaml", {"services": {"web": both}, "secrets": {
        "db": {"external": True}, "api": {"file": "./api.txt"}}})], swarm=True))
    assert recs["secrets.mounted"].status == "PASS"
    assert recs["secrets.mounted"].actual == "1 of 2 judged, no problem; not judged here (not a file on this host): db"
