"""The rules the dedicated compose scanners (compose-lint, KICS, semgrep) have, in `runbook lint`
and phase 2 through the same judges.

Each new rule has a planted compose file (a hardened service with one thing changed) that FAILs or WARNs
with the rule's id, its CIS id and the line of the key it judges (SARIF), and a clean twin, the real
exemption where the rule has one, that PASSes. The runtime halves are judged on the session's demo
stack in tests/phases/test_security_scanner_rules.py."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from runbook_lib.lint import RULES, ServiceFacts, judge_unreferenced, lint_files
from runbook_lib.lint.output import format_sarif
from runbook_lib.params.sections import Security

HARDENED = {
    "image": "nginx:1.25.3", "user": "101:101", "read_only": True, "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"], "mem_limit": "128m", "pids_limit": 64, "cpus": 0.5,
    "restart": "always", "healthcheck": {"test": ["CMD", "true"]},
}
DELETE = object()

# rule -> (planted changes, planted status, the key its line is at (None: the service's line),
#          clean changes: the twin that passes)
CASES = {
    "hardening.cap_drop": ({"cap_drop": DELETE}, "FAIL", None,
                           {"cap_drop": ["ALL"], "cap_add": ["NET_BIND_SERVICE", "CHOWN"]}),
    "hardening.cpu_limit": ({"cpus": DELETE}, "FAIL", None,
                            {"cpus": DELETE, "deploy": {"resources": {"limits": {"cpus": "0.25"}}}}),
    "hardening.privileged_ports": ({"ports": ["127.0.0.1:22:22"]}, "WARN", "ports", {"ports": ["127.0.0.1:8022:22"]}),
    "hardening.sensitive_mounts": ({"volumes": ["/etc:/host-etc"]}, "FAIL", "volumes",
                                   {"volumes": ["/etc/timezone:/etc/timezone:ro", "/etc:/host-etc:ro"]}),
    "hardening.seccomp": ({"security_opt": ["no-new-privileges:true", "seccomp:unconfined"]}, "FAIL",
                          "security_opt", {}),
    "hardening.apparmor": ({"security_opt": ["no-new-privileges:true", "apparmor:unconfined"]}, "FAIL",
                           "security_opt", {"security_opt": ["no-new-privileges:true", "apparmor:docker-default"]}),
    "hardening.selinux": ({"security_opt": ["no-new-privileges:true", "label:disable"]}, "FAIL", "security_opt",
                          {"security_opt": ["no-new-privileges:true", "label:type:svirt_apache_t"]}),
    "hardening.host_userns": ({"userns_mode": "host"}, "FAIL", "userns_mode", {}),
    "hardening.cgroup": ({"cgroup_parent": "/custom-parent"}, "FAIL", "cgroup_parent", {"cgroup": "private"}),
    "hardening.mount_propagation": ({"volumes": [{"type": "bind", "source": "./data", "target": "/data",
                                                  "bind": {"propagation": "rshared"}}]}, "FAIL", "volumes",
                                    {"volumes": [{"type": "bind", "source": "./data", "target": "/data",
                                                  "bind": {"propagation": "rprivate"}}]}),
}


def service(changes: dict) -> dict:
    spec = copy.deepcopy(HARDENED)
    for k, v in changes.items():
        if v is DELETE:
            spec.pop(k, None)
        else:
            spec[k] = v
    return spec


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text))


def sarif_results(result) -> list[dict]:
    return json.loads(format_sarif(result))["runs"][0]["results"]


@pytest.mark.parametrize("rule", sorted(CASES))
def test_a_planted_file_is_found_with_id_line_and_cis_and_its_clean_twin_passes(rule, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planted, status, key, clean = CASES[rule]
    bad = write(tmp_path, "planted.yaml", {"services": {"web": service(planted)}})
    result = lint_files([bad])
    [rec] = [r for r in result.records if r.id == rule and r.target == "web"]
    assert rec.status == status, (rec.actual, rec.evidence)
    assert rec.evidence["cis"] == RULES[rule].cis and RULES[rule].cis
    [found] = [s for s in sarif_results(result) if s["ruleId"] == rule]
    want_line = line_of(bad, f"    {key}:") if key else line_of(bad, "  web:")
    assert found["locations"][0]["physicalLocation"]["region"]["startLine"] == want_line
    assert found["properties"]["cis"] == RULES[rule].cis
    # the clean twin: that rule passes, and no other new rule fires
    good = write(tmp_path, "clean.yaml", {"services": {"web": service(clean)}})
    twin = {r.id: r for r in lint_files([good]).records if r.target == "web"}
    assert twin[rule].status == "PASS", (twin[rule].actual, twin[rule].evidence)
    assert not [r.id for r in twin.values() if r.id in CASES and r.status != "PASS"]


def test_a_writable_named_volume_shared_by_two_services_warns_at_the_volume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = {"services": {"a": service({"volumes": ["shared:/data"]}), "b": service({"volumes": ["shared:/var/data"]}),
                        "c": service({"volumes": ["own:/data"]})},
           "volumes": {"shared": {}, "own": {}}}
    bad = write(tmp_path, "planted.yaml", doc)
    result = lint_files([bad])
    recs = {r.target: r for r in result.records if r.id == "hardening.shared_volume"}
    assert recs["shared"].status == "WARN" and "written by 2 services: a, b" in recs["shared"].actual
    assert recs["own"].status == "PASS"
    [found] = [s for s in sarif_results(result) if s["ruleId"] == "hardening.shared_volume"]
    assert found["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(bad, "  shared:")
    # the clean twin: one writer, a read-only reader
    doc["services"]["b"]["volumes"] = ["shared:/var/data:ro"]
    twin = {r.target: r for r in lint_files([write(tmp_path, "clean.yaml", doc)]).records
            if r.id == "hardening.shared_volume"}
    assert twin["shared"].status == "PASS" and "read by b" in twin["shared"].actual


def test_cap_drop_all_with_a_long_cap_add_and_partial_drops_warn():
    f = ServiceFacts("s", "compose", cap_drop=["ALL"], cap_add=["CHOWN", "SETUID", "SETGID", "FOWNER", "KILL"])
    from runbook_lib.lint.confinement import judge_cap_drop
    assert judge_cap_drop(f).status == "WARN"
    assert judge_cap_drop(ServiceFacts("s", "compose", cap_drop=["NET_RAW"])).status == "WARN"
    assert judge_cap_drop(ServiceFacts("s", "engine", cap_drop=["CAP_ALL"])).status == "PASS"


def test_sensitive_directories_are_judged_by_tree_and_project_data_is_not():
    from runbook_lib.lint.confinement import sensitive_dir
    assert sensitive_dir("/") == "/" and sensitive_dir("/etc/nginx") == "/etc" and sensitive_dir("/home/alice") == "/home/alice"
    assert sensitive_dir("/var/lib/docker/volumes") == "/var/lib/docker"
    assert sensitive_dir("/home/alice/project/data") is None and sensitive_dir("/var/www") is None
    assert sensitive_dir("/run") is None  # hardening.docker_socket's


def test_privileged_web_ports_warn_low_and_others_medium(tmp_path):
    from runbook_lib.lint.confinement import judge_privileged_ports
    web = ServiceFacts("s", "compose", ports=[{"host_ip": "", "host_port": "443", "container_port": "443", "protocol": "tcp"}])
    ssh = ServiceFacts("s", "compose", ports=[{"host_ip": "", "host_port": "22", "container_port": "22", "protocol": "tcp"}])
    assert judge_privileged_ports(web).severity == "low" and judge_privileged_ports(ssh).severity is None


def test_the_engine_facts_read_hostconfig_and_mounts():
    class View:
        service, name, environment, user, published_ports = "s", "p-s-1", {}, "", []
        entrypoint, command, healthcheck_test, labels = [], [], [], {}
        image, restart_policy, healthcheck_config = "app:1", "always", {}
        host_config = {"CapDrop": ["ALL"], "NanoCpus": 500_000_000, "SecurityOpt": ["seccomp=unconfined"],
                       "UsernsMode": "host", "CgroupParent": "/x", "CgroupnsMode": "host"}
        mounts = [{"Type": "volume", "Name": "p_data", "Destination": "/data", "RW": True, "Propagation": ""},
                  {"Type": "bind", "Source": "/etc", "Destination": "/h", "RW": False, "Propagation": "rshared"}]
    f = ServiceFacts.from_container(View())
    assert f.cap_drop == ["ALL"] and f.cpu_limit == 0.5 and f.userns_mode == "host" and f.cgroup_parent == "/x"
    assert f.cgroup == ""  # the engine's default on cgroup v1 hosts, not asked for by the compose file
    assert f.mounts[0] == {"type": "volume", "source": "p_data", "target": "/data", "read_only": False, "propagation": ""}
    assert f.mounts[1]["read_only"] and f.mounts[1]["propagation"] == "rshared"
    View.host_config = {"CpuQuota": 50_000, "CpuPeriod": 100_000}
    assert ServiceFacts.from_container(View()).cpu_limit == 0.5


def test_secrets_consumed_by_convention_are_shown_as_configured_not_silenced():
    facts = ServiceFacts("app", "compose", secret_targets={"/run/secrets/app__db": "app__db",
                                                          "/run/secrets/other": "other"})
    plain = judge_unreferenced(facts)
    assert plain.status == "WARN" and "app__db, other" in plain.actual
    sec = Security(secret_consumers=[{"pattern": "app__*", "reason": "the image reads /run/secrets/app__*"}])
    v = judge_unreferenced(facts, sec)
    assert v.status == "WARN" and "referenced by nothing: other" in v.actual
    assert "app__db consumed by convention: the image reads /run/secrets/app__*" in v.actual
    only = ServiceFacts("app", "compose", secret_targets={"/run/secrets/app__db": "app__db"})
    info = judge_unreferenced(only, sec)
    assert info.status == "INFO" and info.actual == "app__db consumed by convention: the image reads /run/secrets/app__*"
    assert info.evidence["consumed_by_convention"] == [{"secret": "app__db", "pattern": "app__*",
                                                        "reason": "the image reads /run/secrets/app__*"}]


def test_secret_consumers_from_a_params_file_show_in_the_lint_table(cli, tmp_path, write_params):
    secret = tmp_path / "app__db"
    secret.write_text("x" * 40)
    compose = write(tmp_path, "compose.yaml", {"services": {"app": service({"secrets": ["app__db"]})},
                                               "secrets": {"app__db": {"file": str(secret)}}})
    params = write_params({"security.secret_consumers": [{"pattern": "app__*", "reason": "read by the entrypoint"}]})
    proc = cli("lint", str(compose), "--params", str(params))
    assert "INFO" in proc.stdout and "app__db consumed by convention: read by the entrypoint" in proc.stdout, proc.stdout


def test_the_lint_doc_rule_table_names_every_rule_with_its_anchors():
    readme = (Path(__file__).resolve().parents[2] / "docs" / "lint.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in readme.splitlines() if line.startswith("| `")}
    for rule in RULES.values():
        assert rule.id in rows, rule.id
        cells = [c.strip() for c in rows[rule.id].split("|")[1:-1]]
        assert cells[1] == rule.severity and cells[2] == (rule.cis or "-"), cells
        assert cells[5] == (", ".join(rule.anchors) or "-"), (rule.id, cells)
