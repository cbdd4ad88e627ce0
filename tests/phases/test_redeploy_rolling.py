"""``redeploy.strategy: rolling`` on the real engine: a stack of the test's own (the demo's gateway and the four
services behind it, which publish no host port), redeployed by phase 1's checks under the probe load. One run,
several assertions: the plan, each replacement, and the requests that failed during each."""
from __future__ import annotations

import pytest
import yaml

import uuid

from conftest import ROOT, write_compose

from runbook_lib.params import load_params
from runbook_lib.run.context import Context

BEHIND_GATEWAY = ("auth-service", "chat-service", "video-service", "storage-service")


SECRETS = ROOT / "demo" / ".secrets"
APP = """
  {name}:
    image: runbook-demo/app:local
    user: "10001:10001"
    read_only: true
    tmpfs: [/tmp]
    environment: {{ENV: production, SERVICE_NAME: {name}, PORT: "{port}", JWT_SECRET_FILE: /run/secrets/jwt_secret,
                  REDIS_PASSWORD_FILE: /run/secrets/redis_password, DEMO_USER_PASSWORD_FILE: /run/secrets/demo_user_password,
                  MINIO_ACCESS_KEY_FILE: /run/secrets/minio_access_key, MINIO_SECRET_KEY_FILE: /run/secrets/minio_secret_key,
                  REDIS_HOST: 127.0.0.1, REDIS_PORT: "1", MINIO_ENDPOINT: "http://127.0.0.1:1"}}
    secrets: [jwt_secret, redis_password, demo_user_password, minio_access_key, minio_secret_key]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{port}/health"]
      interval: 1s
      timeout: 3s
      retries: 10
      start_period: 10s
"""


@pytest.fixture
def rolling_stack(tmp_path, engine):
    """The gateway (on a free host port) and the four services behind it (no host port), the demo's app image,
    nothing else (redis and minio at a closed port: the services answer degraded at once, which is all the
    gateway's routes need)."""
    import runbook_demo as demo
    from runbook_lib.engine.compose import Compose

    demo.ensure_secrets()
    [port] = demo.free_ports(1)
    services = "".join(APP.format(name=n, port=p) for n, p in zip(BEHIND_GATEWAY, (8081, 8082, 8083, 8084)))
    gateway = APP.format(name="api-gateway", port=8080) + f"""    ports: ["127.0.0.1:{port}:8080"]
    depends_on: {{{", ".join(f"{n}: {{condition: service_healthy}}" for n in BEHIND_GATEWAY)}}}
"""
    secrets = "".join(f"  {n}: {{file: {SECRETS / n}}}\n" for n in
                      ("jwt_secret", "redis_password", "demo_user_password", "minio_access_key", "minio_secret_key"))
    compose_file = write_compose(tmp_path, "services:" + services + gateway + "secrets:\n" + secrets)
    project = f"rbroll-{uuid.uuid4().hex[:8]}"
    compose = Compose([compose_file], project=project)
    try:
        compose.up(wait=True, timeout=120)
        yield project, compose_file, port
    finally:
        compose.down(volumes=True)


@pytest.mark.docker
def test_rolling_replaces_the_services_behind_the_gateway_with_no_failed_request(rolling_stack, engine, tmp_path):
    from runbook_lib.phases import redeploy

    project, compose_file, port = rolling_stack
    via = {"auth-service": "/api/auth/verify", "chat-service": "/api/chat/messages",
           "video-service": "/api/video/calls/" + "0" * 32, "storage-service": "/api/storage/objects/probe"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "project": project, "compose_files": [str(compose_file)], "app_services": ["api-gateway", *BEHIND_GATEWAY],
        "redeploy": {"strategy": "rolling", "healthy_timeout_s": 60, "probe": {"endpoints": [
            # 5 s, the gateway's own upstream deadline: on a loaded machine the gateway sometimes answers in 2-3 s
            {"name": f"{svc} via gateway", "url": f"http://127.0.0.1:{port}{path}", "ok_status": [401], "timeout_s": 5}
            for svc, path in via.items()]}}}))
    ctx = Context(params=load_params(tmp_path / "params.yaml"), run_dir=tmp_path / "run", progress=lambda s: None)
    before = {v.service: v.id for v in engine.project_containers(project)}

    recs = redeploy.start_probe_load(ctx)
    try:
        recs += redeploy.compose_down(ctx) + redeploy.nothing_running(ctx) + redeploy.compose_up(ctx)
        recs += redeploy.rolling_update(ctx) + redeploy.services_ready(ctx)
    finally:
        recs += redeploy.outage(ctx)
    by = {(r.id, r.target): r for r in recs}
    assert not [r for r in recs if r.id in ("redeploy.down", "redeploy.nothing_running", "redeploy.up")]

    plan = {p["service"]: p for p in by[("redeploy.rolling", project)].evidence["plan"]}
    assert {s for s, p in plan.items() if p["method"] == "rolling"} == set(BEHIND_GATEWAY)
    assert "fixed host port" in plan["api-gateway"]["reasons"][0]
    assert list(plan)[-1] == "api-gateway"  # dependency order: the services it depends on first
    for svc in plan:
        assert by[("redeploy.rolling", svc)].status == "PASS", by[("redeploy.rolling", svc)].actual
        assert by[("redeploy.service_ready", svc)].status == "PASS"
    after = {v.service: v.id for v in engine.project_containers(project)}
    assert set(after) == set(before) and all(after[s] != before[s] for s in after)  # one new container each

    outage = by[("redeploy.outage", project)]
    steps = {st["service"]: st for st in outage.evidence["by_step"]}
    rolled = [steps[svc] for svc in BEHIND_GATEWAY]
    assert all(st["method"] == "rolling" and st["sent"] > 0 for st in rolled)
    failed = [(n, p) for n, pts in outage.evidence["requests"].items() for p in pts if not p["ok"]
              and any(st["window_s"][0] <= p["t"] <= st["window_s"][1] for st in rolled)]
    # The figure: no request failed while the services behind the gateway were replaced, but for at most one in
    # all: the one race Docker leaves, a caller that resolved the old container's address just before it left the
    # network and connects just after. It hangs: the probe's timeout, or the gateway's own upstream deadline and
    # its 502 (seen once on a loaded machine, after 3.1 s).
    assert len(failed) <= 1, \
        (failed, {svc: by[("redeploy.rolling", svc)].evidence["marks_s"] for svc in BEHIND_GATEWAY})
    assert steps["api-gateway"]["failed"] > 0  # recreated: its outage is measured
    print("rolling:", outage.actual)
    print({s: (st["method"], st["sent"], st["failed"]) for s, st in steps.items()})

    # the planted fault: auth-service's new container never gets healthy; the old one stays, the rolling stops
    broken = write_compose(tmp_path, compose_file.read_text().replace("http://127.0.0.1:8081/health",
                                                                      "http://127.0.0.1:9/health"), "broken.yaml")
    params = ctx.params.model_copy(update={"compose_files": [broken], "redeploy": ctx.params.redeploy.model_copy(
        update={"healthy_timeout_s": 6})})
    recs = redeploy.rolling_update(Context(params=params, progress=lambda s: None))
    by = {r.target: r for r in recs}
    assert (by["auth-service"].id, by["auth-service"].status) == ("redeploy.rolling", "FAIL")
    assert "not ready" in by["auth-service"].actual and "kept" in by["auth-service"].actual
    assert all(by[s].status == "SKIP" for s in ("chat-service", "api-gateway"))
    [auth] = engine.service_containers(project, "auth-service")
    assert auth.id == after["auth-service"] and auth.running  # the old container, still serving


def test_the_plan_says_per_service_why_it_cannot_roll_and_keeps_dependency_order():
    from runbook_lib.deploy import rolling

    model = {"services": {
        "web": {"depends_on": {"api": {}}, "ports": [{"target": 80, "published": "8080", "host_ip": "127.0.0.1"}]},
        "api": {"depends_on": {"db": {}}, "ports": [{"target": 9000, "published": ""}]},  # no host port fixed
        "db": {"volumes": [{"type": "volume", "source": "data", "target": "/data"}]},
        "worker": {"container_name": "the-worker", "depends_on": {"db": {}}},
        "ranged": {"ports": [{"target": 80, "published": "9000-9001"}],
                   "volumes": [{"type": "volume", "source": "cfg", "target": "/cfg", "read_only": True}]}}}
    plans = {p.service: p for p in rolling.plan(model)}
    assert list(plans) == ["db", "api", "ranged", "web", "worker"]
    assert {s for s, p in plans.items() if p.method == "rolling"} == {"api", "ranged"}
    assert plans["web"].reasons == ["fixed host port 127.0.0.1:8080->80: two containers cannot bind it"]
    assert "named volume data mounted read-write" in plans["db"].reasons[0]
    assert "container_name 'the-worker'" in plans["worker"].reasons[0]


def test_swarm_update_config_is_judged_against_start_first_and_rollback():
    from runbook_lib.deploy import rolling

    seen, problems = rolling.judge_update_config({})  # Swarm's defaults
    assert seen["Order"] == "stop-first" and seen["FailureAction"] == "pause" and len(problems) == 2
    _, problems = rolling.judge_update_config({"UpdateConfig": {"Order": "start-first", "FailureAction": "rollback"}})
    assert problems == []
    _, problems = rolling.judge_update_config({"UpdateConfig": {"Order": "start-first"}})
    assert problems == ["update_config.failure_action is pause, not rollback"]


def test_a_rolling_redeployment_refuses_to_remove_volumes():
    from pydantic import ValidationError

    from runbook_lib.params.sections import Redeploy

    with pytest.raises(ValidationError, match="remove_volumes needs strategy: recreate"):
        Redeploy(strategy="rolling", remove_volumes=True, confirm_volume_removal="x")
