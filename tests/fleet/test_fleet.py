"""One run over several engines, for real (no mocks).

Two engines on one machine: the main engine (the session's own demo stack, ``rbtest-*``) and a second engine
started by the test in its own network namespace (tests/engines.py), with the demo deployed on it under the same
project name and a fault planted (auth-service started with ENV=staging). The fleet run must be NO-GO naming that
target, with the fault's id and the qualified target, the other target GO with all its records, and the main
engine's docker0 and containers as they were. A secret of one target that shows up in another target's output is
redacted there (a canary). A rollout over both stops after the first target's failed redeploy. (A fleet on the
main engine alone, with unreachable and hung targets: test_fleet_one_engine.py.)"""
from __future__ import annotations

import json
import secrets as pysecrets

import pytest
import yaml

from conftest import run_dir_from
from engines import netns_engine, skip_reason  # noqa: F401  (pytest fixture)
from fleets import MAIN_HOST, PHASES, fleet_params, records_of, run_no_go

needs_netns = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

# The fault on the second engine: auth-service runs with ENV=staging. Its Prometheus and Alertmanager are
# published on every interface of its namespace, so the loopback URLs of the parameters, rewritten to the
# target's address, reach them from the host (the demo publishes on 127.0.0.1 only, which inside a network
# namespace is that namespace's loopback).
REMOTE_OVERRIDE = """services:
  auth-service:
    environment:
      ENV: staging
  prometheus:
    ports: !override
      - "${RB_PROMETHEUS_PORT:-9090}:9090"
  alertmanager:
    ports: !override
      - "${RB_ALERTMANAGER_PORT:-9093}:9093"
"""


@pytest.fixture(scope="module")
def remote(netns_engine, stack, tmp_path_factory):
    """The demo on the second engine (same project name and ports as this session's stack on the main
    engine), with the fault planted; images copied from the main engine (no registry)."""
    import runbook_demo as demo
    from runbook_lib.engine.compose import Compose

    demo.ensure_secrets()
    demo.build_images(progress=lambda s: None)  # on the main engine (cached builds are a no-op)
    from runbook_demo.images import image_name

    for line in demo.ENV_FILE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            netns_engine.load_image(image_name(line.split("=", 1)[0].strip()))  # the names build_images used
    override = tmp_path_factory.mktemp("remote") / "fault.yaml"
    override.write_text(REMOTE_OVERRIDE)
    compose = Compose(files=[demo.COMPOSE_FILE, override], project=stack.project, env_files=stack.env_files,
                      env={"DOCKER_HOST": netns_engine.host})
    compose.up(wait=True, timeout=240)
    yield netns_engine
    compose.down(volumes=True)


@needs_netns
def test_two_engines_fault_on_one_is_no_go_naming_it_and_the_other_target_is_complete(
        remote, healthy_demo, stack, tmp_path, cli):
    params = fleet_params(stack, tmp_path / "fleet.yaml", [
        {"name": "main", "docker_host": MAIN_HOST},
        {"name": "edge", "docker_host": remote.host, "address": remote.address}])
    proc, run, took = run_no_go(cli, params, tmp_path / "out", timeout=1200)
    v = json.loads((run / "verdict.json").read_text())
    # (the blockers in the message: once in CI, under load, main had one too, and its tmp directory was gone)
    assert v["verdict"] == "NO-GO" and v["fleet"]["no_go"] == ["edge"], \
        [(b["target"], b["id"], b["status"], b["actual"][:300]) for b in v["target_blockers"]]
    assert "edge" in v["rationale"] and "main" not in v["fleet"]["no_go"]
    by = {t["name"]: t for t in v["fleet"]["targets"]}
    assert by["main"]["verdict"] == "GO" and by["edge"]["verdict"] == "NO-GO", by
    assert by["edge"]["engine_docker_host"] == remote.host and by["main"]["engine_docker_host"] == MAIN_HOST
    # the fault: FAIL under its id, on the right target, qualified with the engine
    env_fail = [b for b in v["target_blockers"] if b["id"] == "prod.env"]
    assert [(b["target"], b["engine"], b["status"]) for b in env_fail] == [("edge/auth-service", "edge", "FAIL")], env_fail
    assert "staging" in env_fail[0]["actual"]
    assert all(b["engine"] == "edge" for b in v["target_blockers"]), v["target_blockers"]
    assert {(b["id"], b["target"]) for b in v["blockers"]} == {("fleet.target_verdict", "edge")}, v["blockers"]
    # the other target's records all present: every phase ran to completion and wrote its records
    main_dir = run / "targets" / "main"
    main_sum = json.loads((main_dir / "summary.json").read_text())
    assert [(p["phase"], p["status"]) for p in main_sum["phases"]] == [(p, "completed") for p in PHASES]
    main_recs = records_of(main_dir)
    assert {r["phase"] for r in main_recs} == set(PHASES)
    assert not [r for r in main_recs if r["status"] in ("FAIL", "ERROR") and r["severity"] in ("critical", "high")]
    assert {r["target"] for r in main_recs if r["id"] == "prod.env"} == {
        "api-gateway", "auth-service", "chat-service", "video-service", "storage-service"}
    # the address: edge's URLs were rewritten, and its Prometheus answered there (evidence, not a guess)
    edge_params = yaml.safe_load((run / "targets" / "edge" / "params.yaml").read_text())
    assert edge_params["production"]["prometheus_url"] == f"http://{remote.address}:{stack.ports['prometheus']}"
    edge_recs = records_of(run / "targets" / "edge")
    obs = [r for r in edge_recs if r["id"] == "prod.observability" and "prometheus" in r["target"].lower()]
    assert obs and all(r["status"] == "PASS" for r in obs), obs
    # one archive: the fleet's manifest covers every target's files; verify and report agree
    manifest = json.loads((run / "manifest.json").read_text())["files"]
    assert "targets/main/results/03_production_mode.json" in manifest and "targets/edge/verdict.json" in manifest
    ok = cli("verify", str(run))
    assert ok.returncode == 0, ok.stdout
    again = cli("report", str(run))
    assert "identical" in again.stdout, again.stdout
    # the report: one column per target, the fault's row FAIL for edge and PASS for main
    html = (run / "report.html").read_text()
    assert 'href="targets/main/report.html"' in html and 'href="targets/edge/report.html"' in html
    print(f"fleet of 2 engines, phases {PHASES}: {took:.0f} s")


CANARY_BASE = """services:
  web:
    image: runbook-demo/app:local
    command: ["sleep", "3600"]
    environment:
      ENV: production
"""


@needs_netns
def test_a_secret_of_one_target_is_redacted_in_another_targets_output(remote, tmp_path, cli):
    """The canary is a secret of the second engine's container only (a secret file mounted there); on the main
    engine the same value sits, unannounced, in a container's ENV, which phase 3 reports (prod.env's actual).
    The main engine's run cannot know it is a secret: only the fleet's union of every target's secrets can."""
    from runbook_lib.engine.compose import Compose
    from runbook_lib.results.redact import marker

    canary = "rbcanary-" + pysecrets.token_urlsafe(24)
    project = f"rbtest-canary-{pysecrets.token_hex(4)}"
    (tmp_path / "compose.yaml").write_text(CANARY_BASE)
    (tmp_path / "local.yaml").write_text(f"services:\n  web:\n    environment:\n      ENV: {canary}\n")
    secret = tmp_path / "token.txt"
    secret.write_text(canary)
    secret.chmod(0o400)
    (tmp_path / "edge.yaml").write_text(f"services:\n  web:\n    secrets: [token]\nsecrets:\n  token:\n    file: {secret}\n")
    local = Compose(files=[tmp_path / "compose.yaml", tmp_path / "local.yaml"], project=project)
    edge = Compose(files=[tmp_path / "compose.yaml", tmp_path / "edge.yaml"], project=project,
                   env={"DOCKER_HOST": remote.host})
    params = tmp_path / "fleet.yaml"
    params.write_text(yaml.safe_dump({
        "project": project, "compose_files": ["compose.yaml"], "app_services": ["web"],
        "phases": ["03_production_mode"], "production": {"observe_s": 1, "expected_env": {"ENV": "production"}},
        "targets": [{"name": "main", "docker_host": MAIN_HOST}, {"name": "edge", "docker_host": remote.host}]}))
    try:
        local.up(wait=False, timeout=120)
        edge.up(wait=False, timeout=120)
        proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"), timeout=600)
    finally:
        local.down(volumes=True)
        edge.down(volumes=True)
    run = run_dir_from(proc.stdout)
    assert canary not in proc.stdout + proc.stderr
    leaked = [str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
    assert not leaked, f"the canary reached {leaked}"
    # it was there, and was redacted: main's prod.env reports ENV with the canary's marker in its place
    main_env = [r for r in records_of(run / "targets" / "main") if r["id"] == "prod.env"]
    assert main_env and marker(canary) in main_env[0]["actual"], main_env
    assert json.loads((run / "run.json").read_text())["redacted_after_run"] == []  # learned before anything was written


@needs_netns
def test_a_real_rollout_stops_after_a_failed_redeploy_and_the_next_target_is_not_redeployed(
        remote, demo_stack, stack, tmp_path, cli, engine):
    """Phases 0 and 1 (a redeploy) rolled over two engines, the second engine first: its redis image is gone
    (untagged: the release's image is missing on that host, and there is no registry to pull it from), so its
    redeploy fails and it is NO-GO; the main engine then runs its preflight only, its redeploy recorded SKIP
    naming the target that stopped the rollout, its containers untouched. After every other test that uses the
    second engine's demo: it leaves that demo broken (torn down with the engine)."""
    from conftest import snapshot

    before = snapshot(engine, stack.project)
    remote.docker("rmi", "-f", "runbook-demo/redis:local")
    params = fleet_params(stack, tmp_path / "fleet.yaml", [
        {"name": "edge", "docker_host": remote.host, "address": remote.address},
        {"name": "main", "docker_host": MAIN_HOST}],
        {"phases": ["00_preflight", "01_controlled_redeployment"], "redeploy.healthy_timeout_s": 15})
    proc, run, took = run_no_go(cli, params, tmp_path / "out", timeout=900)
    v = json.loads((run / "verdict.json").read_text())
    edge_blockers = [b for b in v["target_blockers"] if b["engine"] == "edge"]
    assert any(b["phase"] == "01_controlled_redeployment" for b in edge_blockers), edge_blockers
    main = {r["phase"]: r for r in records_of(run / "targets" / "main") if r["id"] == "runner.phase"}
    assert main["01_controlled_redeployment"]["status"] == "SKIP"
    assert "rollout stopped: target edge is NO-GO" in main["01_controlled_redeployment"]["actual"]
    assert [r for r in records_of(run / "targets" / "main") if r["phase"] == "00_preflight" and r["id"] != "runner.phase"]
    assert snapshot(engine, stack.project) == before
    assert v["fleet"]["no_go"] == ["edge", "main"]
    # edge ran first, alone: main's run started after edge's ended
    info = json.loads((run / "run.json").read_text())
    assert info["rolling"] is True
    print(f"rollout over two engines, phases 0-1: {took:.0f} s; edge blockers: "
          + ", ".join(sorted({b['id'] for b in edge_blockers})))
