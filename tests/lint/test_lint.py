"""`runbook lint`: the static audit of compose files, with no engine, and the rules it shares with phase 2.

The CLI tests point DOCKER_HOST at a socket nothing listens on: lint needs the Compose CLI, never an engine.
The rule tests call the judging functions directly (pure logic, no Docker)."""
from __future__ import annotations

import json
import os
import secrets

import pytest

from conftest import phase2_faults_override, PARAMS, ROOT

from runbook_lib.lint import lint_files  # noqa: E402
from runbook_lib.lint import (FileState, ServiceFacts, can_read, judge_environment, judge_file_env, judge_ports,
                              judge_user, parse_user)
from runbook_lib.params.sections import Security
from runbook_lib.results.redact import marker

DEMO = ROOT / "demo" / "compose.yaml"
OFFLINE_ENV = ROOT / "demo" / "offline.env"
FIXTURES = ROOT / "tests" / "fixtures" / "compose"


def lint_json(cli, *args, env=None):
    proc = cli("lint", *map(str, args), "--format", "json", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    return proc, data, {(r["id"], r["target"]): r for r in data["records"]}


def planted_faults(tmp_path) -> tuple:
    """An override of the demo with the static halves of phase 2's planted faults. Returns (path, value)
    where value is the test-owned secret's content, also copied into an innocently named variable."""
    value = secrets.token_urlsafe(24)
    world = tmp_path / "world_secret"
    world.write_text(value)
    os.chmod(world, 0o777)
    override = phase2_faults_override(tmp_path, world, leak_value=value)
    return override, value


def test_the_demo_compose_file_lints_clean_with_no_engine(cli, no_engine):
    proc, data, by = lint_json(cli, DEMO, "--env-file", OFFLINE_ENV, "--params", PARAMS / "demo.yaml", env=no_engine)
    assert proc.returncode == 0, [r for r in data["records"] if r["status"] != "PASS"]
    # every record passes, but the images' tags without a digest: a fact (INFO), not a fault
    assert {(r["id"], r["status"]) for r in data["records"] if r["status"] != "PASS"} == {("images.pinned", "INFO")}
    assert data["counts"]["PASS"] + data["counts"]["INFO"] == len(data["records"]) > 100
    assert all(r["evidence"] for r in data["records"])
    assert by[("hardening.privileged", "api-gateway")]["evidence"]["cis"] == "5.4"


def test_lint_reports_the_static_halves_of_the_planted_faults_with_no_engine(cli, no_engine, tmp_path):
    override, value = planted_faults(tmp_path)
    proc, data, by = lint_json(cli, DEMO, override, "--env-file", OFFLINE_ENV, "--params", PARAMS / "demo.yaml",
                               env=no_engine)
    assert proc.returncode == 1
    expected_fails = [
        ("secrets.file_mode", "video-service"),          # mode 0777
        ("secrets.no_plaintext_env", "chat-service"),    # JWT_SECRET=<literal>
        ("secrets.no_plaintext_env", "video-service"),   # a secret's value under an innocent name
        ("secrets.file_env", "storage-service"),         # *_FILE pointing at a path no secret mounts
        ("hardening.privileged", "api-gateway"),
        ("hardening.docker_socket", "auth-service"),
        ("hardening.published_ports", "redis"),          # internal service on 0.0.0.0
    ]
    for key in expected_fails:
        assert by[key]["status"] == "FAIL", (key, by[key])
    assert "JWT_SECRET" in by[("secrets.no_plaintext_env", "chat-service")]["actual"]
    leak = by[("secrets.no_plaintext_env", "video-service")]
    assert "GREETING_TEXT: holds the value of secret rb_test_world" in leak["actual"]
    assert by[("hardening.privileged", "api-gateway")]["evidence"]["cis"] == "5.4"
    assert by[("hardening.docker_socket", "auth-service")]["evidence"]["cis"] == "5.31"
    assert "0.0.0.0:16379" in by[("hardening.published_ports", "redis")]["actual"]
    # the planted secret value is redacted from the output, in every form
    assert value not in proc.stdout and marker(value) in proc.stdout
    # the faults are where they were planted, nowhere else
    fails = {k for k, r in by.items() if r["status"] == "FAIL"}
    assert fails == set(expected_fails)


def test_lint_table_output_names_each_finding_and_its_cis_id(cli, no_engine, tmp_path):
    override, _ = planted_faults(tmp_path)
    proc = cli("lint", str(DEMO), str(override), "--env-file", str(OFFLINE_ENV), env=no_engine)
    assert proc.returncode == 1
    line = next(l for l in proc.stdout.splitlines() if "hardening.privileged" in l)
    assert line.startswith("FAIL") and "api-gateway" in line and "[CIS 5.4]" in line
    assert "FAIL" in proc.stdout.splitlines()[-1]


def test_lint_sarif_is_sarif_2_1_0_with_a_location_for_each_finding(cli, no_engine, tmp_path):
    override, _ = planted_faults(tmp_path)
    proc = cli("lint", str(DEMO), str(override), "--env-file", str(OFFLINE_ENV), "--format", "sarif", env=no_engine)
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "runbook lint"
    assert all(r["ruleId"] == rules[r["ruleIndex"]]["id"] for r in run["results"])
    priv = next(r for r in run["results"] if r["ruleId"] == "hardening.privileged")
    assert priv["level"] == "error" and priv["message"]["text"].startswith("api-gateway:")
    loc = priv["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("faults.yaml")
    lines = override.read_text().splitlines()
    # the line of the key the rule judges (Rule.keys), in the file that writes it
    assert lines[loc["region"]["startLine"] - 1].strip() == "privileged: true"
    assert {r["level"] for r in run["results"]} <= {"error", "warning"}


def test_a_compose_file_that_does_not_parse_exits_2(cli, no_engine, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("services:\n  web:\n    image: [oops\n")
    proc = cli("lint", str(broken), env=no_engine)
    assert proc.returncode == 2 and "compose files do not resolve" in proc.stderr and "broken.yaml" in proc.stderr


def test_lint_without_files_or_params_is_a_usage_error(cli):
    proc = cli("lint")
    assert proc.returncode == 2 and "give compose files" in proc.stderr


def test_lint_only_rules_find_unpinned_images_and_secret_declaration_problems(cli, no_engine, tmp_path):
    (tmp_path / "s").write_text("a-secret-value-for-lint\n")
    os.chmod(tmp_path / "s", 0o400)
    f = tmp_path / "compose.yaml"
    f.write_text("""
services:
  web:
    image: nginx
    restart: unless-stopped
    secrets:
      - s
      - source: s
        target: /etc/web/s
      - nope
      - s
  worker:
    image: busybox:1.36@sha256:0000000000000000000000000000000000000000000000000000000000000000
    secrets: [ext]
secrets:
  s: {file: ./s}
  unused: {file: ./s}
  ext: {external: true}
""")
    proc, data, by = lint_json(cli, f, env=no_engine)
    assert proc.returncode == 1
    assert by[("compose.consistency", "compose")]["status"] == "FAIL"   # Compose's own complaint, kept
    assert by[("secrets.undeclared", "web")]["status"] == "FAIL" and "nope" in by[("secrets.undeclared", "web")]["actual"]
    assert by[("secrets.duplicate", "web")]["status"] == "FAIL"
    assert by[("secrets.declared_unused", "unused")]["status"] == "WARN"
    assert by[("secrets.external", "ext")]["status"] == "FAIL"
    assert by[("images.pinned", "web")]["status"] == "FAIL" and "no tag" in by[("images.pinned", "web")]["actual"]
    assert by[("images.pinned", "worker")]["status"] == "PASS"
    assert by[("service.healthcheck", "web")]["status"] == "WARN"
    assert by[("service.restart_policy", "worker")]["status"] == "WARN"
    assert by[("service.restart_policy", "web")]["status"] == "PASS"


def test_severity_overrides_in_the_parameters_change_lint_severities(cli, no_engine, write_params, tmp_path):
    override, _ = planted_faults(tmp_path)
    params = write_params({"policy.severity_overrides": {"hardening.privileged": "low"}})
    _, _, by = lint_json(cli, DEMO, override, "--env-file", OFFLINE_ENV, "--params", params, env=no_engine)
    assert by[("hardening.privileged", "api-gateway")]["severity"] == "low"
    assert by[("hardening.docker_socket", "auth-service")]["severity"] == "critical"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_real_public_compose_files_lint_with_findings_and_evidence(cli, no_engine, path):
    assert path.read_text().startswith("# Source: "), "each fixture names where it comes from"
    proc, data, by = lint_json(cli, path, "--fail-on", "low", env=no_engine)
    assert proc.returncode == 1, "none of these public test files is hardened"
    assert data["records"] and all(r["evidence"] for r in data["records"])
    # none of them pins every image
    assert any(r["id"] == "images.pinned" and r["status"] != "PASS" for r in data["records"])


def test_what_a_reviewer_would_flag_in_the_public_files_is_found():
    from runbook_lib.lint import lint_files

    by = {(r.id, r.target): r for r in lint_files([FIXTURES / "compose-v3-full.yaml"]).records}
    assert by[("hardening.memory_limit", "web")].status == "PASS", "deploy.resources.limits counts as a limit"
    by = {(r.id, r.target): r for r in lint_files([FIXTURES / "compose-pid-mode.yaml"]).records}
    assert by[("hardening.host_pid", "host")].status == "FAIL"
    assert by[("hardening.host_pid", "service")].status == "PASS", "sharing another service's PID namespace is not the host's"
    by = {(r.id, r.target): r for r in lint_files([FIXTURES / "compose-healthcheck.yaml"]).records}
    assert by[("service.healthcheck", "disabled")].status != "PASS"
    assert by[("service.healthcheck", "passes")].status == "PASS"


# -- the shared rules, as pure functions ------------------------------------------------------------

def facts(env: dict, targets: dict | None = None, **kw) -> ServiceFacts:
    return ServiceFacts(service=kw.pop("service", "svc"), source="compose", environment=env,
                        secret_targets=targets or {}, **kw)


def test_innocent_names_and_pointers_to_secrets_are_not_plaintext():
    env = {"CORS_ALLOWED_ORIGINS": "https://app.example", "KEYSPACE": "secureconnect_ks",
           "MINIO_ACCESS_KEY_FILE": "/run/secrets/minio_access_key", "DATABASE_PASSWORD": "/run/secrets/db-password",
           "TOKEN_REFRESH_ENABLED": "true", "API_KEY": ""}
    v = judge_environment(facts(env, {"/run/secrets/db-password": "db-password"}), Security(), {})
    assert v.status == "PASS", v.actual
    assert set(v.evidence["pointers"]) == {"MINIO_ACCESS_KEY_FILE", "DATABASE_PASSWORD"}


def test_a_credential_name_with_a_literal_fails_unless_allow_listed():
    v = judge_environment(facts({"JWT_SECRET": "s3cr3t-literal"}), Security(), {})
    assert v.status == "FAIL" and v.evidence["findings"][0]["value"] == marker("s3cr3t-literal")
    assert "s3cr3t-literal" not in json.dumps(v.evidence)
    assert judge_environment(facts({"JWT_SECRET": "s3cr3t-literal"}), Security(plaintext_allow=["JWT_*"]), {}).status == "PASS"


def test_a_secret_value_under_an_innocent_name_fails_even_when_allow_listed():
    sec = Security(plaintext_allow=["*"])
    v = judge_environment(facts({"GREETING": "the-actual-secret-value"}), sec, {"the-actual-secret-value": "jwt_secret"})
    assert v.status == "FAIL" and "holds the value of secret jwt_secret" in v.actual


def test_a_url_with_an_embedded_password_fails():
    v = judge_environment(facts({"DATABASE_URL": "postgres://app:hunter2hunter2@db:5432/app"}), Security(), {})
    assert v.status == "FAIL" and "embedded password" in v.actual


def test_a_file_variable_that_no_secret_mounts_fails_statically():
    v = judge_file_env(facts({"LICENSE_FILE": "/run/secrets/nope"}), Security(), lambda p: None)
    assert v.status == "FAIL" and "no secret is mounted there" in v.actual
    v = judge_file_env(facts({"CONFIG_FILE": "/etc/app.yml"}), Security(), lambda p: None)
    assert v.status == "WARN"
    ok = FileState("/run/secrets/x", True, size=10, mode=0o400, uid=10001, gid=10001, readable=True)
    assert judge_file_env(facts({"X_FILE": "/run/secrets/x"}), Security(), lambda p: ok).status == "PASS"
    empty = FileState("/run/secrets/x", True, size=0, mode=0o400)
    assert "empty" in judge_file_env(facts({"X_FILE": "/run/secrets/x"}), Security(), lambda p: empty).actual


def test_an_internal_service_published_on_every_interface_fails_and_others_warn():
    ports = [{"host_ip": "", "host_port": "6379", "container_port": "6379", "protocol": "tcp"}]
    sec = Security(internal_services=["redis"])
    assert judge_ports(facts({}, service="redis", ports=ports), sec).status == "FAIL"
    assert judge_ports(facts({}, service="web", ports=ports), sec).status == "WARN"
    local = [{**ports[0], "host_ip": "127.0.0.1"}]
    assert judge_ports(facts({}, service="redis", ports=local), sec).status == "PASS"


def test_users_and_file_readability():
    assert parse_user("10001:10001") == (10001, 10001)
    assert parse_user("") == (0, 0)
    assert parse_user("app", "root:x:0:0::/root:/bin/sh\napp:x:999:998::/app:/bin/sh\n") == (999, 998)
    assert parse_user("ghost") is None
    assert can_read(0o400, 10001, 10001, (10001, 10001)) is True
    assert can_read(0o400, 0, 0, (10001, 10001)) is False
    assert can_read(0o444, 0, 0, (10001, 10001)) is True
    assert can_read(0o400, 5, 5, (0, 0), dac_override=False) is False
    assert judge_user(facts({}, user="")).status == "FAIL"
    assert judge_user(facts({}, user=None)).status == "WARN"
    assert judge_user(facts({}, user="10001:10001")).status == "PASS"


def test_one_shot_jobs_floating_tags_and_pwd_names_found_on_the_real_world_corpus(tmp_path):
    """Three imprecisions the corpus showed (tests/fixtures/compose/README.md): an init job others wait for
    was told to get a healthcheck and a restart policy; `:master` and an unfilled `|version|` passed as
    pinned; `POSTGRES_PWD` was no credential name."""
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n"
                 "  init: {image: busybox:1.36, command: ['true']}\n"
                 "  manual: {image: busybox:1.36, deploy: {replicas: 0}}\n"
                 "  app:\n"
                 "    image: ghcr.io/example/app:master\n"
                 "    restart: always\n"
                 "    healthcheck: {test: ['CMD', 'true']}\n"
                 "    environment: {POSTGRES_PWD: s3cret-posthog, PWD: /srv}\n"
                 "    depends_on: {init: {condition: service_completed_successfully}}\n"
                 "  docs: {image: 'apache/airflow:|version|', restart: always, healthcheck: {test: ['CMD', 'true']}}\n"
                 "  pinned: {image: 'busybox:1.36.1', restart: always, healthcheck: {test: ['CMD', 'true']}}\n")
    by = {(r.id, r.target): r for r in lint_files([f]).records}
    for job, why in (("init", "app waits for it to complete"), ("manual", "deploy.replicas is 0")):
        for rule in ("service.healthcheck", "service.restart_policy"):
            assert by[(rule, job)].status == "INFO" and why in by[(rule, job)].actual, (rule, job)
    assert by[("service.restart_policy", "app")].status == "PASS"
    assert by[("images.pinned", "app")].status == "FAIL" and "floating" in by[("images.pinned", "app")].actual
    assert by[("images.pinned", "docs")].status == "FAIL" and "not a valid tag" in by[("images.pinned", "docs")].actual
    assert by[("images.pinned", "pinned")].status == "INFO"  # a version tag, without a digest
    plain = by[("secrets.no_plaintext_env", "app")]
    assert plain.status == "FAIL" and "POSTGRES_PWD" in plain.actual and "PWD:" not in plain.actual.replace("POSTGRES_PWD", "")
