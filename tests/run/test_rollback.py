"""Rollback to the last GO (runbook_lib.run.rollback): what differs is named and refused, pure logic on files of the
test's own; then two real-engine tests on the session's demo stack: a GO run, a deploy of an image whose health
check fails, the automatic rollback, `runbook rollback --to` by hand, and the refusals that cost a CLI call; and a
deploy whose health gate passes but whose smoke tests fail, rolled back after phase 4."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runbook_lib.results.redact import marker
from runbook_lib.phases.redeploy import rollback as rollback_checks
from runbook_lib.run import deployed, rollback

from conftest import PARAMS, load_run, run_dir_from, service_container, write_compose


def _target(tmp_path: Path, **doc) -> rollback.Target:
    run_dir = tmp_path / "20261207T100000Z-shop"
    run_dir.mkdir(exist_ok=True)
    return rollback.Target(run_dir, {"project": "shop", "mode": "compose", "model": {"services": {}},
                                     "images": {}, "secret_files": {}, **doc})


# -- pure logic ----------------------------------------------------------------------------------------------
def test_an_image_gone_from_the_engine_or_a_secret_file_changed_is_named_in_one_line_each(tmp_path):
    kept, changed = tmp_path / "kept.txt", tmp_path / "changed.txt"
    kept.write_text("s3cr3t-kept-value")
    changed.write_text("s3cr3t-old-value")
    t = _target(tmp_path, images={"api": {"id": "sha256:" + "a" * 64}, "db": {"id": "sha256:" + "b" * 64}},
                secret_files={"kept": {"path": str(kept), "sha256": deployed.sha256_of(kept)},
                              "changed": {"path": str(changed), "sha256": deployed.sha256_of(changed)},
                              "gone": {"path": str(tmp_path / "gone.txt"), "sha256": "0" * 64}})
    changed.write_text("s3cr3t-new-value")
    assert rollback.missing_images(t, lambda i: None if i.endswith("b" * 64) else i) == [
        "the image of db (sha256:bbbbbbbbbbbb) is gone from this engine"]
    problems = rollback.changed_secrets(t)
    assert problems == [f"the secret file changed ({changed}) changed since the GO run (its SHA-256 differs)",
                        f"the secret file gone ({tmp_path / 'gone.txt'}) is gone or unreadable"]
    plan = rollback.Plan(t, {}, problems, [])
    assert "\n" not in plan.refusal() and "nothing changed" in plan.refusal()
    assert "s3cr3t" not in plan.refusal()


def test_a_secret_value_of_the_model_is_filled_back_only_when_it_gives_the_same_marker():
    archived = {"services": {"api": {"environment": {"DB_PASSWORD": marker("same-pass-123"), "X": "1"},
                                     "command": ["run", f"--token={marker('tok-old-456')}"]}}}
    raw = {"services": {"api": {"environment": {"DB_PASSWORD": "same-pass-123", "X": "2"},
                                "command": ["run", "--token=tok-new-789"]}}}
    hidden = {"services": {"api": {"environment": {"DB_PASSWORD": marker("same-pass-123"), "X": "2"},
                                   "command": ["run", f"--token={marker('tok-new-789')}"]}}}
    model, problems = rollback.fill_markers(archived, hidden, raw)
    assert model["services"]["api"]["environment"] == {"DB_PASSWORD": "same-pass-123", "X": "1"}
    assert problems == ["services.api.command[1] held a secret value that is not the same now (or is gone)"]
    assert rollback.model_changes(archived, hidden) == ["api: command, environment"]


def test_the_deployed_model_pins_every_service_to_the_rollback_reference_and_never_builds(tmp_path):
    t = _target(tmp_path, images={"api": {"id": "sha256:" + "a" * 64}})
    model = rollback.deploy_model(t, {"name": "other", "services": {"api": {"image": "shop/api:2", "build": {"context": "."}},
                                                                     "db": {"image": "postgres:16", "build": {"context": "."}}}},
                                  {"api": t.reference("api"), "db": "postgres:16"})
    assert model["name"] == "shop"
    assert model["services"]["api"] == {"image": "runbook-rollback/api:20261207t100000z-shop", "pull_policy": "never"}
    assert model["services"]["db"] == {"image": "postgres:16", "build": {"context": "."}}  # as it was: not recreated


def test_a_directory_that_is_not_a_verified_go_run_is_refused_in_one_line(tmp_path):
    with pytest.raises(rollback.RollbackRefused) as refused:
        rollback.open_target(tmp_path)
    assert refused.value.exit_code == 2 and "\n" not in str(refused.value)
    assert rollback.last_go(tmp_path, "shop") is None


def test_a_failed_health_gate_with_no_go_run_to_return_to_is_a_rollback_fail_and_stop_does_nothing(tmp_path):
    from types import SimpleNamespace

    from runbook_lib.results.records import Check

    gate = [Check("redeploy.service_ready").record("api", "FAIL", expected="healthy", actual="unhealthy",
                                                   evidence={"health": "unhealthy"})]
    (tmp_path / "outputs" / "20261207T100000Z-shop").mkdir(parents=True)
    ctx = SimpleNamespace(params=SimpleNamespace(project="shop", source=None,
                                                 redeploy=SimpleNamespace(on_failure="stop")),
                          run_dir=tmp_path / "outputs" / "20261207T100000Z-shop", progress=lambda s: None)
    assert rollback_checks.on_failed_gate(ctx, gate) == []
    ctx.params.redeploy.on_failure = "rollback"
    [rec] = rollback_checks.on_failed_gate(ctx, gate)
    assert (rec.id, rec.status, rec.severity) == ("rollback.target", "FAIL", "critical")
    assert "no GO run of shop" in rec.actual and "nothing was rolled back" in rec.actual


def test_a_rollback_brings_the_go_model_up_whole_even_when_phase_1_rolls(tmp_path):
    """With ``redeploy.strategy: rolling`` phase 1's ``compose_up`` does nothing (each service is replaced
    by redeploy.rolling); the rollback's context runs it as ``up -d`` of the GO run's model all the same."""
    from runbook_lib.params import load_params
    from runbook_lib.run.context import Context

    params = load_params(PARAMS / "demo.yaml").model_copy(deep=True)
    params.redeploy = params.redeploy.model_copy(update={"strategy": "rolling", "on_failure": "rollback"})
    rb = rollback_checks._context(Context(params=params, progress=lambda s: None), tmp_path / "model.json")
    assert (rb.params.redeploy.strategy, rb.params.redeploy.on_failure) == ("recreate", "stop")
    assert rb.params.compose_files == [tmp_path / "model.json"] and rb.params.env_files == []


def test_a_container_on_another_image_than_the_go_runs_fails_rollback_images(tmp_path):
    from types import SimpleNamespace

    t = _target(tmp_path, images={"api": {"id": "sha256:" + "a" * 64}, "db": {"id": "sha256:" + "b" * 64}})
    views = [SimpleNamespace(service="api", image_id="sha256:" + "a" * 64),
             SimpleNamespace(service="db", image_id="sha256:" + "c" * 64)]
    ctx = SimpleNamespace(params=SimpleNamespace(project="shop"),
                          deployment=SimpleNamespace(containers=lambda: views, list_command=lambda: "docker ps -a"))
    rec = rollback_checks.images_match(ctx, t)
    assert (rec.id, rec.status) == ("rollback.images", "FAIL")
    assert rec.actual == "db runs sha256:cccccccccccc, not sha256:bbbbbbbbbbbb"
    views[1].image_id = "sha256:" + "b" * 64
    assert rollback_checks.images_match(ctx, t).status == "PASS"


def test_smoke_tests_with_a_blocker_after_a_redeploy_roll_back_and_the_records_go_to_results_rollback(tmp_path):
    from runbook_lib.params import load_params
    from runbook_lib.results.records import Check, read_records, write_records
    from runbook_lib.run.context import Context
    from runbook_lib.run.rollback_run import after_smoke_tests

    run_dir = tmp_path / "outputs" / "20261207T100000Z-secureconnect-demo"
    (run_dir / "results").mkdir(parents=True)
    (run_dir / "notebooks").mkdir()
    ready = Check("redeploy.service_ready").record("api-gateway", "PASS", expected="healthy", actual="healthy",
                                                  evidence={"health": "healthy"})
    down = Check("smoke.health").record("api-gateway", "FAIL", expected="200", actual="answered 502",
                                        evidence={"status": 502})
    write_records(run_dir / "results" / "01_controlled_redeployment.json", [ready])
    write_records(run_dir / "results" / "04_smoke_tests.json", [down])
    params = load_params(PARAMS / "demo.yaml")
    ctx = Context(params=params)
    assert not after_smoke_tests(ctx, run_dir, progress=lambda s: None)  # on_failure: stop
    ctx = Context(params=params.model_copy(update={"redeploy": params.redeploy.model_copy(update={"on_failure": "rollback"})}))
    assert after_smoke_tests(ctx, run_dir, progress=lambda s: None)
    [rec] = read_records(run_dir / "results" / "rollback.json")
    assert (rec.id, rec.status) == ("rollback.target", "FAIL") and rec.actual.startswith("the smoke tests failed and no GO run")
    assert (run_dir / "notebooks" / "rollback.ipynb").is_file()


# -- the real engine -----------------------------------------------------------------------------------------
CURRENT = "runbook-rbtest-rollback/app:current"  # the gateway's image reference, moved on to a broken image


def _running_images(engine, project: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for v in engine.project_containers(project):
        out.setdefault(v.service, set()).add(v.image_id)
    return out


def _go_baseline(tmp_path: Path, write_params, cli, ref: str, out: Path) -> tuple[list[str], Path, dict]:
    """A GO run of phase 1 with the gateway on image reference ``ref``: (its compose files, its run directory,
    the deployment it recorded)."""
    override = write_compose(tmp_path, f"services:\n  api-gateway:\n    image: {ref}\n", "gateway.yaml")
    files = load_yaml(write_params())["compose_files"] + [str(override)]
    base = write_params({"compose_files": files, "redeploy.healthy_timeout_s": 60}, name="base.yaml")
    r = cli("run", "--params", str(base), "--phase", "01_controlled_redeployment", "--output", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    baseline = run_dir_from(r.stdout)
    return files, baseline, json.loads((baseline / deployed.DEPLOYED_FILE).read_text())


def test_a_deploy_whose_health_gate_fails_rolls_back_to_the_last_go_run_verified_and_recorded(
        tmp_path, healthy_demo, write_params, engine, cli):
    """Baseline GO (phase 1 only, the gateway on ``CURRENT``) → ``CURRENT`` moved to an image that never serves
    (its health check fails) and redeployed with ``on_failure: rollback`` → NO-GO, rolled back (the gateway's
    old image tagged for Compose), the containers run the baseline's image ids and the run verifies; then
    `runbook rollback --to` the baseline by hand (GO, verifies) and to the NO-GO run (refused)."""
    out = tmp_path / "outputs"
    subprocess.run(["docker", "tag", "runbook-demo/app:local", CURRENT], check=True)
    tags: list[str] = [CURRENT]
    try:
        files, baseline, doc = _go_baseline(tmp_path, write_params, cli, CURRENT, out)
        assert set(doc["images"]) >= {"api-gateway", "redis"} and doc["secret_files"]
        assert all(len(s["sha256"]) == 64 for s in doc["secret_files"].values())
        secrets_dir = Path(next(iter(doc["secret_files"].values()))["path"]).parent
        values = [p.read_text().strip() for p in secrets_dir.iterdir() if p.is_file() and p.stat().st_size > 6]
        text = (baseline / deployed.DEPLOYED_FILE).read_text()
        assert values and not any(v in text for v in values)
        tags.append(f"runbook-rollback/api-gateway:{baseline.name.lower()}")

        subprocess.run(["docker", "build", "-q", "-t", CURRENT, "-"], check=True, capture_output=True,
                       input=b'FROM runbook-demo/app:local\nENTRYPOINT ["sleep", "3600"]\n')
        failing = write_params({"compose_files": files, "redeploy.healthy_timeout_s": 25,
                                "redeploy.on_failure": "rollback"}, name="failing.yaml")
        r = cli("run", "--params", str(failing), "--phase", "01_controlled_redeployment", "--output", str(out))
        assert r.returncode == 1, r.stdout + r.stderr
        failed_run = run_dir_from(r.stdout)
        _, records = load_run(failed_run)
        by = {(x["id"], x["target"]): x for x in records}
        assert by[("redeploy.service_ready", "api-gateway")]["status"] == "FAIL"
        rolled = [x for x in records if x["id"].startswith("rollback.")]
        assert {x["id"] for x in rolled} == {"rollback.target", "rollback.up", "rollback.service_ready",
                                             "rollback.endpoint", "rollback.images"}, rolled
        assert all(x["status"] == "PASS" for x in rolled), [(x["id"], x["target"], x["actual"]) for x in rolled]
        ev = by[("rollback.target", healthy_demo.project)]["evidence"]
        assert ev["run_dir"] == str(baseline) and ev["references"]["api-gateway"] == tags[-1]
        assert ev["references"]["redis"] == doc["images"]["redis"]["ref"]  # still that id: used as it is
        gate_redis = by[("redeploy.service_ready", "redis")]["evidence"]["container"]["id"]
        assert service_container(engine, "redis", healthy_demo.project).id.startswith(gate_redis)  # not recreated
        running = _running_images(engine, healthy_demo.project)
        assert {s: running.get(s) for s in doc["images"]} == {s: {i["id"]} for s, i in doc["images"].items()}
        assert cli("verify", str(failed_run)).returncode == 0
        assert "rollback.images" in (failed_run / "report.html").read_text()

        r = cli("rollback", "--to", str(baseline), "--output", str(out))
        assert r.returncode == 0, r.stdout + r.stderr
        by_hand = run_dir_from(r.stdout)
        v = cli("verify", str(by_hand))
        assert v.returncode == 0, v.stdout
        assert json.loads((by_hand / "run.json").read_text())["rollback_of"] == str(baseline)
        assert "rollback.images" in (by_hand / "report.html").read_text()

        r = cli("rollback", "--to", str(failed_run))
        assert r.returncode == 2 and "NO-GO, not GO" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    finally:
        healthy_demo.up(progress=lambda s: None)
        subprocess.run(["docker", "rmi", *tags], capture_output=True)


def load_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


ANSWERS_500 = """import http.server, signal, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500); self.send_header("Content-Length", "5"); self.end_headers(); self.wfile.write(b"oops\\n")
    do_POST = do_GET
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
"""
SMOKE_CURRENT = "runbook-rbtest-rollback/app:smoke"  # the gateway's reference, moved on to an image answering 500


def test_a_deploy_that_passes_its_health_gate_but_fails_the_smoke_tests_is_rolled_back_after_phase_4(
        tmp_path, healthy_demo, write_params, engine, cli):
    """Baseline GO (phase 1, the gateway on ``SMOKE_CURRENT``) → ``SMOKE_CURRENT`` moved to an image that answers
    500 to everything, deployed with a health check that only asks whether the process runs (so phase 1's gate
    passes) and ``on_failure: rollback``, phases 1 and 4 → phase 4's blockers trigger the rollback: NO-GO,
    ``results/rollback.json`` all PASS, the containers run the baseline's image ids and its compose model (the
    lax health check gone), and the run verifies."""
    out = tmp_path / "outputs"
    subprocess.run(["docker", "tag", "runbook-demo/app:local", SMOKE_CURRENT], check=True)
    tags: list[str] = [SMOKE_CURRENT]
    try:
        files, baseline, doc = _go_baseline(tmp_path, write_params, cli, SMOKE_CURRENT, out)
        tags.append(f"runbook-rollback/api-gateway:{baseline.name.lower()}")

        context = tmp_path / "answers-500"
        context.mkdir()
        (context / "answers500.py").write_text(ANSWERS_500)
        (context / "Dockerfile").write_text('FROM runbook-demo/app:local\nCOPY answers500.py /answers500.py\n'
                                            'ENTRYPOINT ["python3", "/answers500.py"]\nCMD []\n')
        subprocess.run(["docker", "build", "-q", "-t", SMOKE_CURRENT, str(context)], check=True, capture_output=True)
        lax = write_compose(tmp_path, "services:\n  api-gateway:\n    healthcheck:\n"
                                      "      test: [\"CMD\", \"python3\", \"-c\", \"pass\"]\n", "lax-health.yaml")
        failing = write_params({"compose_files": files + [str(lax)], "redeploy.healthy_timeout_s": 60,
                                "redeploy.on_failure": "rollback", "smoke.drills": []}, name="failing.yaml")
        r = cli("run", "--params", str(failing), "--phase", "01_controlled_redeployment", "--phase", "04_smoke_tests",
                "--output", str(out))
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"rollback: the smoke tests failed; rolling back to {baseline}" in r.stdout + r.stderr
        failed_run = run_dir_from(r.stdout)
        _, records = load_run(failed_run)
        by = {(x["id"], x["target"]): x for x in records}
        assert by[("redeploy.service_ready", "api-gateway")]["status"] == "PASS"  # the gate passed: phase 1 kept it
        assert not any(x["id"].startswith("rollback.") for x in json.loads(
            (failed_run / "results" / "01_controlled_redeployment.json").read_text()))
        assert by[("smoke.health", "api-gateway")]["status"] == "FAIL"
        assert "answered 500" in by[("smoke.health", "api-gateway")]["actual"]
        rolled = json.loads((failed_run / "results" / "rollback.json").read_text())
        assert {x["id"] for x in rolled} >= {"rollback.target", "rollback.up", "rollback.service_ready",
                                             "rollback.images"}, rolled
        assert all(x["status"] == "PASS" for x in rolled), [(x["id"], x["target"], x["actual"]) for x in rolled]
        target = next(x for x in rolled if x["id"] == "rollback.target")
        assert target["evidence"]["run_dir"] == str(baseline), target
        running = _running_images(engine, healthy_demo.project)
        assert {s: running.get(s) for s in doc["images"]} == {s: {i["id"]} for s, i in doc["images"].items()}
        gateway = service_container(engine, "api-gateway", healthy_demo.project)
        health = subprocess.run(["docker", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", gateway.id],
                                capture_output=True, text=True, check=True).stdout
        assert "wget" in health, health  # the GO run's compose model again, not the lax check
        v = cli("verify", str(failed_run))
        assert v.returncode == 0, v.stdout + v.stderr
        assert "rollback.images" in (failed_run / "report.html").read_text()
        assert json.loads((failed_run / "verdict.json").read_text())["verdict"] == "NO-GO"
    finally:
        healthy_demo.up(progress=lambda s: None)
        subprocess.run(["docker", "rmi", *tags], capture_output=True)
