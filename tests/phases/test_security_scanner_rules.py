"""The compose scanners' rules judged by phase 2 on the session's own demo stack
(real engine), through the same judges as `runbook lint`: the clean stack passes them, and an override
that removes cap_drop and the CPU limit, disables seccomp and makes a second service write a named volume
fails (or warns) each one with the right id, target and CIS id."""
from __future__ import annotations

import pytest

from conftest import ROOT, load_run, run_dir_from

from runbook_lib.lint import RULES

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DEMO = ROOT / "demo" / "compose.yaml"
NEW_RULES = ("hardening.cap_drop", "hardening.cpu_limit", "hardening.privileged_ports", "hardening.sensitive_mounts",
             "hardening.seccomp", "hardening.apparmor", "hardening.selinux", "hardening.host_userns",
             "hardening.cgroup", "hardening.mount_propagation")
PLANTED = """\
services:
  video-service:
    cap_drop: !reset []
    cpus: !reset null
    security_opt:
      - seccomp:unconfined
  minio:
    volumes:
      - redis-data:/shared
"""


def test_the_clean_demo_stack_passes_the_new_rules_from_docker_inspect(healthy_demo, demo_params):
    from runbook_lib.phases import security
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params

    ctx = Context(params=load_params(demo_params))
    records = security.hardening(ctx) + security.shared_volumes(ctx)
    new = [r for r in records if r.id in NEW_RULES + ("hardening.shared_volume",)]
    assert new and all(r.status == "PASS" for r in new), [(r.id, r.target, r.actual) for r in new if r.status != "PASS"]
    assert {r.target for r in new if r.id == "hardening.shared_volume"} == {"redis-data", "minio-data", "postgres-data"}
    cap = next(r for r in new if r.id == "hardening.cap_drop" and r.target == "video-service")
    assert cap.evidence["source"] == "engine" and cap.evidence["cap_drop"] == ["ALL"] and cap.evidence["cis"] == "5.3"
    cpu = next(r for r in new if r.id == "hardening.cpu_limit" and r.target == "video-service")
    assert cpu.evidence["cpus"] == 0.5


def test_planted_confinement_faults_fail_in_phase_2(healthy_demo, demo_params, cli, tmp_path):
    override = tmp_path / "confinement.yaml"
    override.write_text(PLANTED)
    try:
        healthy_demo.up(overrides=[override], progress=lambda s: None)
        proc = cli("run", "--params", str(demo_params), "--output", str(tmp_path / "out"), "--compose", str(DEMO),
                   "--compose", str(override), "--phase", "02_secrets_security")
    finally:
        healthy_demo.up(progress=lambda s: None)
    summary, records = load_run(run_dir_from(proc.stdout))
    by = {(r["id"], r["target"]): r for r in records if r["phase"] == "02_secrets_security"}
    expected = {
        ("hardening.cap_drop", "video-service"): ("FAIL", "no cap_drop"),
        ("hardening.cpu_limit", "video-service"): ("FAIL", "no CPU limit"),
        ("hardening.seccomp", "video-service"): ("FAIL", "unconfined"),
        ("hardening.shared_volume", "redis-data"): ("WARN", "written by 2 services: minio, redis"),
    }
    for key, (status, text) in expected.items():
        r = by[key]
        assert r["status"] == status and text in r["actual"], (key, r["status"], r["actual"])
        assert r["evidence"]["source"] == "engine"
        assert r["evidence"].get("cis", "") == RULES[key[0]].cis
    # the other services keep their confinement: the findings are where they were planted
    assert by[("hardening.cap_drop", "chat-service")]["status"] == "PASS"
    assert by[("hardening.shared_volume", "minio-data")]["status"] == "PASS"
    assert summary["verdict"] == "NO-GO"
