"""The demo as a Swarm stack, and phases 1 and 4 in swarm mode, for real.

One module-scoped single-node swarm on a second engine in its own network namespace (tests/engines.py; the
main engine is never put in swarm mode, and its docker0, swarm state and containers are compared before and
after). The demo's images are copied in (no registry); `runbook demo up --swarm` creates the secrets and
deploys demo/stack.yaml. Then parameters/demo-swarm.yaml, with its 127.0.0.1 URLs pointed at the engine's
address, runs the whole runbook to GO; planted faults FAIL under the right id and target, and what a drill
broke is restored (or recovered) every time. No secret value reaches a record."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engines import netns_engine, skip_reason  # noqa: F401  (pytest fixture)
from runbook_lib.params import PHASES

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "parameters" / "demo-swarm.yaml"
STACK = "secureconnect-swarm"
IMAGES = ("runbook-demo/app:local", "runbook-demo/redis:local", "runbook-demo/minio:local",
          "runbook-demo/prometheus:local", "runbook-demo/alertmanager:local")
SECRETS = ROOT / "demo" / ".secrets"


def derived(eng, directory: Path, name: str = "demo-swarm-derived.yaml", changes: dict | None = None,
            extra_files: tuple[Path, ...] = ()) -> Path:
    """parameters/demo-swarm.yaml for the engine ``eng``: its URLs on the engine's address (its published ports
    answer there, as they do on 127.0.0.1 for a local engine), paths absolute, ``changes`` by dotted key."""
    data = yaml.safe_load(PARAMS.read_text(encoding="utf-8").replace("127.0.0.1:", f"{eng.address}:"))
    base = PARAMS.parent
    data["compose_files"] = [str((base / f).resolve()) for f in data["compose_files"]] + [str(f) for f in extra_files]
    data["env_files"] = [str((base / f).resolve()) for f in data.get("env_files", [])]
    data["signoff"]["signing_key"] = str((base / data["signoff"]["signing_key"]).resolve())
    data["policy"]["waivers_file"] = str((base / data["policy"]["waivers_file"]).resolve())
    for key, value in (changes or {}).items():
        target = data
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def records(run: Path, phase: str) -> list[dict]:
    return json.loads((run / "results" / f"{phase}.json").read_text())


def only_run(out: Path) -> Path:
    [run] = [p for p in out.iterdir() if p.is_dir()]
    return run


def replicas(eng, service: str) -> str:
    return eng.docker("service", "inspect", f"{STACK}_{service}", "--format", "{{.Spec.Mode.Replicated.Replicas}}").stdout.strip()


def secret_values() -> list[str]:
    return [p.read_text().strip() for p in SECRETS.iterdir() if p.is_file() and not p.name.startswith(("signing", "."))]


def test_demo_up_swarm_refuses_an_engine_that_is_no_swarm_manager(netns_engine, cli):
    proc = cli("demo", "up", "--swarm", env=netns_engine.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"the engine at {netns_engine.host} is not a swarm manager (swarm state: inactive)" in proc.stderr
    assert "never turns an engine into one by itself" in proc.stderr and "--init-swarm" in proc.stderr
    assert "Nothing was changed" in proc.stderr
    assert netns_engine.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive"


@pytest.fixture(scope="module")
def swarm(netns_engine, tmp_path_factory):
    """The demo stack deployed by `runbook demo up --swarm` on a single-node swarm (init on the veth address by
    the test: the command itself never inits without --init-swarm)."""
    from conftest import run_cli

    for ref in IMAGES:
        netns_engine.load_image(ref)
    netns_engine.docker("swarm", "init", "--advertise-addr", netns_engine.address)
    proc = run_cli("demo", "up", "--swarm", env=netns_engine.env(), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "9/9 services converged" in out and "secret secureconnect-demo_jwt_secret: created" in out, out
    assert not any(v in out for v in secret_values())
    return netns_engine


def test_the_whole_runbook_on_the_demo_stack_is_go(swarm, cli, tmp_path):
    """Every phase (parameters/demo-swarm.yaml lists none: all six), GO; phases 1 and 4, this module's, with
    nothing but PASS and INFO records. (Phases 2, 3 and 5 are tests/swarm/test_swarm_phases.py's; their medium
    findings that Swarm cannot avoid are waived in parameters/demo-swarm-waivers.yaml.)"""
    params = derived(swarm, tmp_path)
    out = tmp_path / "out"
    proc = cli("run", "--params", str(params), "--output", str(out), env=swarm.env(), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = only_run(out)
    assert json.loads((run / "verdict.json").read_text())["verdict"] == "GO"
    assert sorted(p.name for p in (run / "results").glob("*.json")) == [f"{p}.json" for p in PHASES]
    p1, p4 = records(run, "01_controlled_redeployment"), records(run, "04_smoke_tests")
    bad = [(r["id"], r["target"], r["status"], r["actual"]) for r in p1 + p4 if r["status"] not in ("PASS", "INFO")]
    assert not bad, bad
    ids = {(r["id"], r["target"]) for r in p1}
    services = {"api-gateway", "auth-service", "chat-service", "video-service", "storage-service", "redis", "minio",
                "prometheus", "alertmanager"}
    assert {t for i, t in ids if i == "redeploy.service_converged"} == services
    for cid in ("redeploy.inventory_before", "redeploy.stack_deploy", "redeploy.services_pruned", "redeploy.init_step",
                "redeploy.inventory_after"):
        assert any(i == cid for i, _ in ids), cid
    assert {t for i, t in ids if i == "redeploy.volumes_preserved"} == {f"{STACK}_redis-data", f"{STACK}_minio-data"}
    deploy = next(r for r in p1 if r["id"] == "redeploy.stack_deploy")
    assert deploy["command"].startswith("docker stack deploy --prune --resolve-image never -c ")
    conv = next(r for r in p1 if r["id"] == "redeploy.service_converged" and r["target"] == "redis")
    assert conv["evidence"]["running"] == conv["evidence"]["desired"] == 1 and conv["evidence"]["tasks"][0]["state"] == "running"
    assert conv["evidence"]["tasks"][0]["container_health"] == "healthy" and "(healthy on this engine)" in conv["actual"]
    # the drills scaled each dependency to 0 and back, judged as in compose mode
    drills = {(r["id"], r["target"]): r for r in p4 if r["id"].startswith("smoke.drill.")}
    assert set(drills) == {("smoke.drill.redis", t) for t in ("auth-service login", "chat-service message",
                                                              "video-service call", "redis")} | \
        {("smoke.drill.minio", t) for t in ("storage-service store", "storage-service health", "minio")}
    dep = drills[("smoke.drill.redis", "redis")]
    assert dep["evidence"]["restore_actions"] == [f"docker service scale {STACK}_redis=1"]
    assert dep["evidence"]["service_after"][0]["converged"] and dep["evidence"]["dependency_ready_s"] is not None
    assert drills[("smoke.drill.redis", "video-service call")]["evidence"]["during_fault"]["probes"] >= 2
    for j in (run / "drills").glob("*.journal.json"):
        assert json.loads(j.read_text())["state"] == "restored"
    assert replicas(swarm, "redis") == replicas(swarm, "minio") == "1"
    everything = "".join(p.read_text(errors="replace") for p in run.rglob("*") if p.is_file())
    assert not any(v in everything for v in secret_values())


def test_a_drill_against_the_designed_degraded_behaviour_fails_and_the_replicas_come_back(swarm, cli, tmp_path):
    """Planted: the video call is declared available while redis is down; the demo answers 503 there."""
    drill = yaml.safe_load(PARAMS.read_text())["smoke"]["drills"][0]
    assert drill["dependency"] == "redis"
    for ep in drill["endpoints"]:
        ep["url"] = ep["url"].replace("127.0.0.1:", f"{swarm.address}:")
        if ep["name"] == "video-service call":
            ep["expect"] = "available"
    params = derived(swarm, tmp_path, changes={"smoke.drills": [drill]})
    out = tmp_path / "out"
    proc = cli("run", "--params", str(params), "--output", str(out), "--phase", "00_preflight", "--phase", "04_smoke_tests",
               env=swarm.env(), timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = only_run(out)
    recs = {(r["id"], r["target"]): r for r in records(run, "04_smoke_tests") if r["id"] == "smoke.drill.redis"}
    planted = recs[("smoke.drill.redis", "video-service call")]
    assert planted["status"] == "FAIL" and "not available while redis was down" in planted["actual"], planted["actual"]
    assert recs[("smoke.drill.redis", "redis")]["status"] == "PASS"  # restored, converged, flow passes again
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["verdict"] == "NO-GO"
    assert replicas(swarm, "redis") == "1"
    [journal] = (run / "drills").glob("redis-*.journal.json")
    assert json.loads(journal.read_text())["state"] == "restored"


def test_a_changed_service_spec_and_a_0444_secret_on_the_demo_stack_fail_then_a_redeploy_restores_them(swarm, cli, tmp_path):
    """The planted faults on the demo stack itself: api-gateway's spec changed by hand (`docker service
    update --env-add ENV=staging`: drift and the wrong ENV), and auth-service's jwt_secret mounted again without
    a mode (the swarm's 0444) where the policy says fail. Phases 2 and 3 FAIL each under its id and target;
    `runbook demo up --swarm` (the stack file deployed again) puts both back."""
    gw, auth = f"{STACK}_api-gateway", f"{STACK}_auth-service"
    swarm.docker("service", "update", "--quiet", "--detach=false", "--env-add", "ENV=staging", gw, timeout=300)
    secret = "secureconnect-demo_jwt_secret"
    swarm.docker("service", "update", "--quiet", "--detach=false", "--secret-rm", secret,
                 "--secret-add", f"source={secret},target=jwt_secret", auth, timeout=300)
    try:
        params = derived(swarm, tmp_path, changes={"security.readable_by_others": "fail"})
        out = tmp_path / "out"
        proc = cli("run", "--params", str(params), "--output", str(out), "--phase", "00_preflight",
                   "--phase", "02_secrets_security", "--phase", "03_production_mode", env=swarm.env(), timeout=900)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        run = only_run(out)
        recs = records(run, "02_secrets_security") + records(run, "03_production_mode")
        failed = {(r["id"], r["target"]) for r in recs if r["status"] == "FAIL"}
        assert ("prod.drift", "api-gateway") in failed and ("prod.env", "api-gateway") in failed, sorted(failed)
        assert ("secrets.file_mode", "auth-service") in failed, sorted(failed)
        drift = next(r for r in recs if (r["id"], r["target"], r["status"]) == ("prod.drift", "api-gateway", "FAIL"))
        assert "ENV" in drift["actual"] and "staging" in json.dumps(drift["evidence"]), drift["actual"]
        mode = next(r for r in recs if (r["id"], r["target"], r["status"]) == ("secrets.file_mode", "auth-service", "FAIL"))
        assert "0444" in json.dumps(mode["evidence"]) and "jwt_secret" in mode["actual"], mode["actual"]
        # nothing else in the stack FAILs at high or critical severity: the faults are the planted ones
        others = {(r["id"], r["target"]) for r in recs if r["status"] == "FAIL" and r["severity"] in ("high", "critical")
                  and r["target"] not in ("api-gateway", "auth-service", gw, auth)}
        assert not others, sorted(others)
        assert json.loads((run / "verdict.json").read_text())["verdict"] == "NO-GO"
        everything = "".join(p.read_text(errors="replace") for p in run.rglob("*") if p.is_file())
        assert not any(v in everything for v in secret_values())
    finally:
        from conftest import run_cli

        proc = run_cli("demo", "up", "--swarm", env=swarm.env(), timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    env = swarm.docker("service", "inspect", gw, "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}").stdout
    assert "ENV=production" in env and "ENV=staging" not in env
    mounts = json.loads(swarm.docker("service", "inspect", auth, "--format",
                                     "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}").stdout)
    assert {m["File"]["Mode"] for m in mounts} == {0o400}


def test_an_unrecovered_scale_drill_blocks_preflight_and_runbook_recover_restores_it(swarm, cli, tmp_path, monkeypatch):
    """A drill killed after scaling minio to 0 (no restore ran: as after SIGKILL) leaves its journal; phase 0
    FAILs on it, `runbook recover` scales the service back, waits until it converged, and marks it recovered."""
    from runbook_lib.drills.faults import Fault
    from runbook_lib.engine import Engine

    monkeypatch.setenv("DOCKER_HOST", swarm.host)
    out = tmp_path / "out"
    crashed = out / "20261130T000000Z-secureconnect-swarm"
    fault = Fault(Engine(), "secureconnect-swarm", "minio", "scale", crashed / "drills", stack=STACK)
    fault.__enter__()
    fault._uninstall_signals()  # the process "dies" here: nothing restores
    assert replicas(swarm, "minio") == "0"
    [journal] = (crashed / "drills").glob("minio-*.journal.json")
    data = json.loads(journal.read_text())
    assert data["state"] == "active" and data["service"] == {"name": f"{STACK}_minio", "replicas_before": 1}
    assert data["undo"] == [f"docker service scale {STACK}_minio=1"]

    params = derived(swarm, tmp_path)
    proc = cli("run", "--params", str(params), "--output", str(out), "--phase", "00_preflight", env=swarm.env())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = next(p for p in out.iterdir() if p != crashed)
    [rec] = [r for r in records(run, "00_preflight") if r["id"] == "preflight.drill_journal"]
    assert rec["status"] == "FAIL" and "scale of minio" in rec["actual"], rec["actual"]

    proc = cli("recover", str(crashed), env=swarm.env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"recovered: minio (scale) of secureconnect-swarm: docker service scale {STACK}_minio=1" in proc.stdout
    assert replicas(swarm, "minio") == "1"
    assert json.loads(journal.read_text())["state"] == "recovered"
    from runbook_lib.engine.stack import service_states

    assert service_states(Engine(), STACK, ["minio"])["minio"].converged


def test_a_scale_drill_restores_the_replicas_on_an_exception_and_on_sigint(swarm, tmp_path, monkeypatch):
    """The Fault context manager in scale mode: whatever ends the block (an exception, SIGINT), the service is
    back at its replicas before control leaves it, and the journal says restored."""
    import os
    import signal

    from runbook_lib.drills.faults import DrillInterrupted, Fault
    from runbook_lib.engine import Engine

    monkeypatch.setenv("DOCKER_HOST", swarm.host)
    for n, (exc, trigger) in enumerate(((RuntimeError, lambda: (_ for _ in ()).throw(RuntimeError("boom"))),
                                        (DrillInterrupted, lambda: os.kill(os.getpid(), signal.SIGINT)))):
        directory = tmp_path / f"run{n}" / "drills"
        with pytest.raises(exc):
            with Fault(Engine(), "secureconnect-swarm", "redis", "scale", directory, stack=STACK):
                assert replicas(swarm, "redis") == "0"
                trigger()
                import threading
                threading.Event().wait(5)  # SIGINT is handled here, in the main thread
        assert replicas(swarm, "redis") == "1"
        [journal] = directory.glob("redis-*.journal.json")
        data = json.loads(journal.read_text())
        assert data["state"] == "restored" and data["restore_actions"] == [f"docker service scale {STACK}_redis=1"]


def test_a_service_that_cannot_converge_fails_phase1_naming_it(swarm, cli, tmp_path):
    """Planted (last: it leaves video-service broken): an image that does not exist on the node. Its task is
    rejected; phase 1 FAILs redeploy.service_converged for that service, with the task's error, and does not
    wait out the timeout; the other services converge."""
    override = tmp_path / "missing-image.yaml"
    override.write_text(yaml.safe_dump({"services": {"video-service": {"image": "runbook-demo/missing:local"}}}))
    params = derived(swarm, tmp_path, extra_files=(override,), changes={"redeploy.healthy_timeout_s": 90})
    out = tmp_path / "out"
    proc = cli("run", "--params", str(params), "--output", str(out), "--phase", "00_preflight",
               "--phase", "01_controlled_redeployment", env=swarm.env(), timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = only_run(out)
    conv = {r["target"]: r for r in records(run, "01_controlled_redeployment") if r["id"] == "redeploy.service_converged"}
    bad = conv["video-service"]
    assert bad["status"] == "FAIL", bad
    assert "rejected" in bad["actual"] and "No such image" in bad["actual"], bad["actual"]
    assert bad["evidence"]["rejected_since_deploy"] and bad["evidence"]["waited_s"] < 90
    assert all(r["status"] == "PASS" for t, r in conv.items() if t != "video-service"), conv
    # only video-service changed: every other service kept its tasks, also redis and minio, which the drills above
    # scaled to 0 and back (a scale that rewrote more of the spec than the replicas made this deploy replace them)
    p1 = {r["id"]: r for r in records(run, "01_controlled_redeployment") if r["id"].startswith("redeploy.inventory_")}
    before, after = p1["redeploy.inventory_before"]["evidence"], p1["redeploy.inventory_after"]["evidence"]
    others = {s["id"] for s in before["services"] if s["service"] != "video-service"}
    tasks = lambda inv: {t["id"] for t in inv["tasks"] if t["service"] in others}  # noqa: E731
    assert tasks(before) == tasks(after) and len(tasks(before)) == 8
    blockers = json.loads((run / "verdict.json").read_text())
    assert blockers["verdict"] == "NO-GO"
