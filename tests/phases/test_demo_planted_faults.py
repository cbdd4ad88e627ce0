"""The demo broken the two ways SecureConnect's redeploy report recorded: the SQL database's schema never
created at start-up (the init step skipped), and the TURN server not serving its clients (here: configured
with another password than theirs). One run on the session's stack sees each FAIL with its id and reason;
the stack is put back afterwards (schema, compose.yaml's configuration)."""
from __future__ import annotations

import pytest

from conftest import ROOT, load_run, run_dir_from, service_container
from runbook_lib.params import load_params

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# what a fresh cluster has before its init step: the database and the login role, no table
DROP_TABLE = ['sh', '-c', 'PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")" psql -X -q -h /tmp -U postgres -d secureconnect '
              '-c "DROP TABLE IF EXISTS public.app_users"']

WAIVER = """waivers:
  - check: smoke.turn
    target: coturn allocation
    justification: The TURN server refuses allocations; video calls fall back to peer-to-peer until it is fixed.
    owner: video-team
    approver: head-of-engineering
    expires: 2099-01-15
"""


def _init_steps(engine, project: str, demo_params) -> None:
    for step in load_params(demo_params).redeploy.init_steps:
        code, out = engine.exec(service_container(engine, step.service, project).id, step.command, timeout=120)
        assert code == 0, (step.name, out[-2000:])


def test_a_skipped_schema_init_step_and_a_turn_server_with_the_wrong_password_each_fail_with_their_reason(
        healthy_demo, demo_params, engine, cli, write_params, tmp_path):
    project = healthy_demo.project
    code, out = engine.exec(service_container(engine, "postgres", project).id, DROP_TABLE, timeout=60)
    assert code == 0, out
    steps = [s.model_dump(mode="json", exclude_defaults=True) for s in load_params(demo_params).redeploy.init_steps]
    for s in steps:
        if s["service"] == "postgres":
            s["command"] = ["true"]  # the step "ran" and did nothing: as if nobody had put it in the start-up
    # the TURN failure accepted the way the seed's was, but with an owner, an approver and an expiry
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVER, encoding="utf-8")
    params = write_params({"phases": ["01_controlled_redeployment", "04_smoke_tests"], "redeploy.init_steps": steps,
                           "smoke.drills": [], "policy.waivers_file": str(waivers)})
    try:
        proc = cli("run", "--params", str(params), "--output", str(tmp_path),
                   "--compose", str(ROOT / "demo" / "compose.yaml"),
                   "--compose", str(ROOT / "demo" / "overrides" / "turn-wrong-credential.yaml"))
    finally:
        healthy_demo.up(progress=lambda s: None)
        _init_steps(engine, project, demo_params)
    # the stack is back as compose.yaml says, provenance included: phase 1 recreated every container with the
    # override among its files, and a plain `up` left those whose config it does not change (prod.drift's INFO)
    assert {v.service: v.config_files for v in engine.project_containers(project)} == \
           {v.service: [str((ROOT / "demo" / "compose.yaml").resolve())] for v in engine.project_containers(project)}
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    run_dir = run_dir_from(proc.stdout)
    summary, records = load_run(run_dir)
    assert summary["verdict"] == "NO-GO"
    by = {(r["id"], r["target"]): r for r in records}
    schema = by[("redeploy.init_step", "user database schema")]
    assert schema["status"] == "FAIL" and schema["actual"].endswith("it said: missing: table public.app_users"), schema["actual"]
    assert "redeploy.init_step@user database schema" in summary["blockers"]
    assert by[("redeploy.init_step", "media bucket")]["status"] == "PASS"
    # auth-service fails closed: no user store, no login, and says why
    login = by[("smoke.flow", "log in")]
    assert login["status"] == "FAIL" and "503" in login["actual"], login["actual"]
    assert "schema missing: table public.app_users" in login["evidence"]["body_excerpt"]
    # coturn answers STUN, and refuses the secret's credentials with the reason it gave
    assert by[("smoke.turn", "coturn binding")]["status"] == "PASS"
    alloc = by[("smoke.turn", "coturn allocation")]
    assert alloc["status"] == "FAIL" and "401 Unauthorized" in alloc["actual"], alloc["actual"]
    # ... and accepted: not a blocker, and the report's first screen lists it with its owner and approver
    assert "smoke.turn@coturn allocation" not in summary["blockers"]
    assert "smoke.turn@coturn allocation" in summary["waived"]
    html = (run_dir / "report.html").read_text()
    risks = html.split("id='accepted-risks'")[1].split("<h2")[0]
    assert "smoke.turn@coturn allocation" in risks and "video-team" in risks and "head-of-engineering" in risks
