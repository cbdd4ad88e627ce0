"""The demo broken the two ways SecureConnect's redeploy report recorded: the SQL database's schema never
created at start-up (the init step skipped), and the TURN server not serving its clients (here: configured
with another password than theirs). One run on the session's stack sees each FAIL with its id and reason;
the stack is put back afterwards (schema, compose.yaml's configuration)."""
from __future__ import annotations

import pytest

from conftest import ROOT, load_run, run_dir_from, service_container
from runbook_lib.params import load_params

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DROP_SCHEMA = ['sh', '-c', 'PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")" psql -X -q -h /tmp -U postgres -d postgres '
               '-c "DROP DATABASE IF EXISTS secureconnect WITH (FORCE)" -c "DROP ROLE IF EXISTS auth_app"']


def _init_steps(engine, project: str, demo_params) -> None:
    for step in load_params(demo_params).redeploy.init_steps:
        code, out = engine.exec(service_container(engine, step.service, project).id, step.command, timeout=120)
        assert code == 0, (step.name, out[-2000:])


def test_a_skipped_schema_init_step_and_a_turn_server_with_the_wrong_password_each_fail_with_their_reason(
        healthy_demo, demo_params, engine, cli, write_params, tmp_path):
    project = healthy_demo.project
    code, out = engine.exec(service_container(engine, "postgres", project).id, DROP_SCHEMA, timeout=60)
    assert code == 0, out
    steps = [s.model_dump(mode="json", exclude_defaults=True) for s in load_params(demo_params).redeploy.init_steps]
    for s in steps:
        if s["service"] == "postgres":
            s["command"] = ["true"]  # the step "ran" and did nothing: as if nobody had put it in the start-up
    params = write_params({"phases": ["01_controlled_redeployment", "04_smoke_tests"], "redeploy.init_steps": steps,
                           "smoke.drills": []})
    try:
        proc = cli("run", "--params", str(params), "--output", str(tmp_path),
                   "--compose", str(ROOT / "demo" / "compose.yaml"),
                   "--compose", str(ROOT / "demo" / "overrides" / "turn-wrong-credential.yaml"))
    finally:
        healthy_demo.up(progress=lambda s: None)
        _init_steps(engine, project, demo_params)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    summary, records = load_run(run_dir_from(proc.stdout))
    assert summary["verdict"] == "NO-GO"
    by = {(r["id"], r["target"]): r for r in records}
    schema = by[("redeploy.init_step", "user database schema")]
    assert schema["status"] == "FAIL" and "public.app_users" in schema["actual"], schema["actual"]
    assert "redeploy.init_step@user database schema" in summary["blockers"]
    assert by[("redeploy.init_step", "media bucket")]["status"] == "PASS"
    # auth-service fails closed: no user store, no login, no registration
    login = by[("smoke.flow", "log in")]
    assert login["status"] == "FAIL" and "503" in login["actual"], login["actual"]
    # coturn answers STUN, and refuses the secret's credentials with the reason it gave
    assert by[("smoke.turn", "coturn binding")]["status"] == "PASS"
    alloc = by[("smoke.turn", "coturn allocation")]
    assert alloc["status"] == "FAIL" and "401 Unauthorized" in alloc["actual"], alloc["actual"]
    assert "smoke.turn@coturn allocation" in summary["blockers"]
