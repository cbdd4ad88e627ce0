"""Phase 2, secrets & security, against the real demo stack on a real engine.

Faults are planted with temporary compose overrides (tmp_path), applied with ``healthy_demo.up(overrides=[...])`` (the session's own stack);
the next test's ``healthy_demo`` (and each test's own ``finally``) brings the demo back as compose.yaml
says. Test-owned secrets never touch demo/.secrets, which other tests rely on."""
from __future__ import annotations

import base64
import json
import os
import secrets

import pytest

from conftest import phase2_faults_override, PARAMS, ROOT, load_run, run_dir_from

from runbook_demo import free_ports
from runbook_lib.results.redact import marker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DEMO = ROOT / "demo" / "compose.yaml"
CONTAINER_UID = CONTAINER_GID = 10001


def secret_file(path, value: str, mode: int = 0o400):
    """A test-owned secret file the demo's uid-10001 containers can read (like demo.ensure_secrets)."""
    path.write_text(value)
    if os.geteuid() == 0:
        os.chown(path, CONTAINER_UID, CONTAINER_GID)
    else:
        mode |= 0o044
    os.chmod(path, mode)
    return path



def run_phases(cli, params, tmp_path, override, *phases):
    args = ["run", "--params", str(params), "--output", str(tmp_path / "out"),
            "--compose", str(DEMO)] + (["--compose", str(override)] if override else [])
    for p in phases:
        args += ["--phase", p]
    proc = cli(*args)
    run_dir = run_dir_from(proc.stdout)
    summary, records = load_run(run_dir)
    return proc, run_dir, summary, records


def by_key(records, phase="02_secrets_security"):
    return {(r["id"], r["target"]): r for r in records if r["phase"] == phase}


def test_the_demo_stack_passes_phase_2_with_evidence_on_every_record(healthy_demo, demo_params, cli, tmp_path):
    proc, run_dir, summary, records = run_phases(cli, demo_params, tmp_path, None, "00_preflight", "02_secrets_security")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["verdict"] == "GO"
    phase2 = [r for r in records if r["phase"] == "02_secrets_security"]
    assert phase2 and all(r["status"] == "PASS" and r["evidence"] for r in phase2), \
        [(r["id"], r["target"], r["actual"]) for r in phase2 if r["status"] != "PASS"]
    by = by_key(records)
    services = ("api-gateway", "auth-service", "chat-service", "video-service", "storage-service", "redis", "minio",
                "postgres", "coturn")
    for rule in ("secrets.mounted", "secrets.file_mode", "secrets.file_env", "secrets.no_plaintext_env",
                 "secrets.not_in_config", "secrets.not_in_logs", "hardening.privileged", "hardening.non_root"):
        for svc in services:
            assert (rule, svc) in by, (rule, svc)
    mounted = by[("secrets.mounted", "auth-service")]["evidence"]["secrets"]
    assert {s["secret"] for s in mounted} == {"jwt_secret", "redis_password", "demo_user_password", "auth_db_password"}
    assert all(s["mode"] == "0400" or os.geteuid() != 0 for s in mounted)
    assert all(set(s) >= {"path", "size", "mode", "owner"} for s in mounted)
    assert by[("hardening.read_only_rootfs", "redis")]["evidence"]["cis"] == "5.12"


def test_the_static_audit_in_preflight_judges_fail_warn_and_pass_without_blocking_by_default(tmp_path):
    from runbook_lib.phases.preflight import static_audit
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params, with_overrides
    from runbook_lib.results.policy import is_blocking

    params = load_params(PARAMS / "demo.yaml")
    [clean] = static_audit(Context(params=params))
    assert clean.status == "PASS" and clean.evidence["rules_applied"] > 100 and not clean.evidence["findings"]
    # a lint FAIL (privileged) fails the record, at its non-blocking default severity
    override = tmp_path / "privileged.yaml"
    override.write_text("services:\n  api-gateway:\n    privileged: true\n")
    failing = with_overrides(params, compose_files=[DEMO, override])
    [found] = static_audit(Context(params=failing))
    assert found.status == "FAIL" and found.severity == "medium" and not is_blocking(found, failing.policy)
    assert "hardening.privileged@api-gateway" in found.actual
    assert {"id": "hardening.privileged", "target": "api-gateway", "status": "FAIL", "severity": "critical",
            "actual": "privileged: full access to the host's devices and kernel", "cis": "5.4"} in found.evidence["findings"]
    # only WARN findings (no restart policy): a WARN, not a PASS
    override_warn = tmp_path / "no-restart.yaml"
    override_warn.write_text('services:\n  api-gateway:\n    restart: "no"\n')
    [warned] = static_audit(Context(params=with_overrides(params, compose_files=[DEMO, override_warn])))
    assert warned.status == "WARN", (warned.status, warned.actual)
    assert [f["id"] for f in warned.evidence["findings"]] == ["service.restart_policy"]


def test_a_severity_override_makes_a_static_audit_fail_block_the_run(tmp_path):
    from runbook_lib.run.phase import PhaseSession
    from runbook_lib.phases.preflight import static_audit
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params, with_overrides
    from runbook_lib.results.policy import is_blocking

    override = tmp_path / "privileged.yaml"
    override.write_text("services:\n  api-gateway:\n    privileged: true\n")
    params = with_overrides(load_params(PARAMS / "demo.yaml"), compose_files=[DEMO, override])
    params.policy.severity_overrides["preflight.static_audit"] = "high"
    session = PhaseSession("00_preflight", Context(params=params))
    session.run(static_audit)
    [rec] = session.records
    assert rec.status == "FAIL" and rec.severity == "high" and is_blocking(rec, params.policy)


def test_planted_faults_fail_with_the_right_check_and_target(healthy_demo, demo_params, cli, tmp_path):
    world = secret_file(tmp_path / "world_secret", secrets.token_urlsafe(24))
    os.chmod(world, 0o777)
    port = free_ports(1)[0]
    override = phase2_faults_override(tmp_path, world, redis_port=port)
    try:
        healthy_demo.up(overrides=[override], progress=lambda s: None)
        # phase 2 alone: its own findings, without preflight's (critical) FAIL on the world-writable file.
        proc, run_dir, summary, records = run_phases(cli, demo_params, tmp_path, override, "02_secrets_security")
    finally:
        healthy_demo.up(progress=lambda s: None)
    assert proc.returncode == 1 and summary["verdict"] == "NO-GO"
    by = by_key(records)
    expected = {
        ("secrets.file_mode", "video-service"): "writable by others (mode 0777)",
        ("secrets.no_plaintext_env", "chat-service"): "JWT_SECRET: credential name with a literal value",
        ("secrets.file_env", "storage-service"): "LICENSE_FILE=/run/secrets/no_such_secret: does not exist",
        ("hardening.privileged", "api-gateway"): "privileged",
        ("hardening.docker_socket", "auth-service"): "/var/run/docker.sock",
        ("hardening.published_ports", "redis"): f"internal service published on 0.0.0.0:{port}",
    }
    for key, text in expected.items():
        r = by[key]
        assert r["status"] == "FAIL" and text in r["actual"], (key, r["actual"])
        assert f"{key[0]}@{key[1]}" in summary["blockers"]
    assert by[("hardening.privileged", "api-gateway")]["evidence"]["cis"] == "5.4"
    assert by[("hardening.docker_socket", "auth-service")]["evidence"]["cis"] == "5.31"
    assert by[("hardening.published_ports", "redis")]["evidence"]["ports"][0]["host_ip"] in ("0.0.0.0", "")
    mode = next(s for s in by[("secrets.file_mode", "video-service")]["evidence"]["secrets"] if s["secret"] == "rb_test_world")
    assert mode["mode"] == "0777" and mode["path"] == "/run/secrets/rb_test_world"
    # what was not planted stays PASS: the faults are found where they are, not everywhere
    assert by[("hardening.privileged", "chat-service")]["status"] == "PASS"
    assert by[("secrets.no_plaintext_env", "auth-service")]["status"] == "PASS"
    assert by[("hardening.published_ports", "api-gateway")]["status"] == "PASS"


def _forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {value}
    for enc in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {enc, enc.rstrip("=")}
    return forms


def test_canary_secret_values_never_reach_any_file_of_the_run_directory(healthy_demo, demo_params, cli, tmp_path):
    """Two canaries: one re-points the jwt_secret at a test file (learned from the host), one is a file
    bind-mounted under /run/secrets that no compose secret declares (learned only from inside the
    container). Both are also copied into innocently named variables, so they reach docker inspect and
    the phase's evidence; every file of the run directory, notebooks included, must be free of them."""
    host_canary = secrets.token_urlsafe(32)
    container_canary = secrets.token_urlsafe(32)
    jwt = secret_file(tmp_path / "canary_jwt_secret", host_canary)
    extra = secret_file(tmp_path / "canary_extra_token", container_canary)
    override = tmp_path / "canary.yaml"
    override.write_text(f"""
services:
  video-service:
    environment:
      WELCOME_BANNER: "{host_canary}"
      SESSION_HINT: "{container_canary}"
    volumes:
      - {extra}:/run/secrets/extra_token:ro
secrets:
  jwt_secret:
    file: {jwt}
""")
    try:
        healthy_demo.up(overrides=[override], progress=lambda s: None)
        proc, run_dir, summary, records = run_phases(cli, demo_params, tmp_path, override, "00_preflight", "02_secrets_security")
    finally:
        healthy_demo.up(progress=lambda s: None)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the copies are leaks: NO-GO
    by = by_key(records)
    leak = by[("secrets.no_plaintext_env", "video-service")]
    assert leak["status"] == "FAIL"
    assert "WELCOME_BANNER: holds the value of secret jwt_secret" in leak["actual"]
    assert "SESSION_HINT: holds the value of secret /run/secrets/extra_token" in leak["actual"]
    assert by[("secrets.not_in_config", "video-service")]["status"] == "FAIL"
    # the values were seen and replaced, not merely absent
    text = json.dumps(records)
    assert marker(host_canary) in text and marker(container_canary) in text

    files = [f for f in run_dir.rglob("*") if f.is_file()]
    assert any(f.suffix == ".ipynb" for f in files) and any(f.name == "report.html" for f in files)
    for canary in (host_canary, container_canary):
        for form in _forms(canary):
            for f in files:
                assert form.encode() not in f.read_bytes(), f"a form of a canary secret is in {f.relative_to(run_dir)}"
    assert proc.stdout.count(host_canary) == 0 and host_canary not in proc.stderr
