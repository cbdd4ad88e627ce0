"""The engine restarting in the middle of a run: a second engine in its own network namespace (tests/engines.py,
as the fleet tests use), the demo deployed on it, and `systemctl restart docker` played on it while phase 3 runs
and while a drill of phase 4 has redis stopped. The run must end, with ERROR records, never GO; and what the
drill broke must be running again once the engine is back. And `runbook watch` on that engine: the restart is an
ERROR run, and the loop goes on to GO."""
from __future__ import annotations

import json
import os
import signal
import time
from functools import partial

import pytest
import yaml

from conftest import load_run, run_dir_from, start_cli, wait_for
from engines import netns_engine, restart_engine, skip_reason  # noqa: F401  (pytest fixture)

pytestmark = [pytest.mark.docker, pytest.mark.slow,
              pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")]

# Published on every interface of the engine's namespace, so the parameters' URLs, pointed at its address, reach
# the services from the host (the demo publishes on 127.0.0.1 only: inside a namespace, that namespace's loopback).
ALL_INTERFACES = "services:\n" + "".join(
    f"  {svc}:\n    ports: !override\n      - \"${{{var}:-{port}}}:{port}\"\n" for svc, var, port in (
        ("api-gateway", "RB_API_GATEWAY_PORT", 8080), ("auth-service", "RB_AUTH_SERVICE_PORT", 8081),
        ("chat-service", "RB_CHAT_SERVICE_PORT", 8082), ("video-service", "RB_VIDEO_SERVICE_PORT", 8083),
        ("storage-service", "RB_STORAGE_SERVICE_PORT", 8084), ("prometheus", "RB_PROMETHEUS_PORT", 9090),
        ("alertmanager", "RB_ALERTMANAGER_PORT", 9093)))


@pytest.fixture(scope="module")
def restartable(netns_engine, stack, tmp_path_factory):
    """The demo on the second engine (this session's project name and ports), its images copied from the main
    engine, and parameters for it (its compose files, every URL at the engine's address)."""
    import runbook_demo as demo
    from runbook_lib.engine.compose import Compose
    from runbook_lib.params import load_params

    demo.ensure_secrets()
    demo.build_images(progress=lambda s: None)
    for line in demo.ENV_FILE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            netns_engine.load_image(line.split("=", 1)[1].strip())
    d = tmp_path_factory.mktemp("restart")
    override = d / "all-interfaces.yaml"
    override.write_text(ALL_INTERFACES)
    compose = Compose(files=[demo.COMPOSE_FILE, override], project=stack.project, env_files=stack.env_files,
                      env={"DOCKER_HOST": netns_engine.host})
    compose.up(wait=True, timeout=300)
    data = stack.params({"compose_files": [str(demo.COMPOSE_FILE), str(override)]})
    text = yaml.safe_dump(data, sort_keys=False).replace("127.0.0.1", netns_engine.address)
    params = d / "params.yaml"
    params.write_text(text, encoding="utf-8")
    for step in load_params(params).redeploy.init_steps:  # the media bucket phase 4's flow needs
        netns_engine.docker("exec", f"{stack.project}-{step.service}-1", *step.command, timeout=step.timeout_s)
    yield netns_engine, params, compose
    compose.down(volumes=True)


def _start_on(engine, *args: str):
    return start_cli(*args, env={"DOCKER_HOST": engine.host})


_wait_for = partial(wait_for, interval=0.2)


def _finish(proc, timeout: float) -> str:
    """The run's output once it ended by itself within ``timeout`` (a hang fails the test)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"the run did not end within {timeout:.0f} s of the engine's restart: a hang")
    return out


def _state(engine, project: str, service: str) -> str:
    out = engine.docker("ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                        "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.State}}",
                        check=False).stdout.split()
    return out[0] if out else "absent"


def _restart_and_see_errors(engine, proc, when: str) -> None:
    """Restart the engine under the running ``proc``: the run must end NO-GO (exit 1) with ERROR records."""
    restart_engine(engine)
    t0 = time.monotonic()
    text = _finish(proc, 900)
    assert proc.returncode == 1, text
    summary, records = load_run(run_dir_from(text))
    assert summary["verdict"] != "GO"
    errors = [r for r in records if r["status"] == "ERROR"]
    assert errors, [(r["id"], r["status"]) for r in records]
    print(f"{when}: the run ended {time.monotonic() - t0:.0f} s after the engine was back, {summary['verdict']}, "
          f"ERROR: {sorted({r['id'] for r in errors})}")


def test_the_engine_restarting_during_phase_3_ends_the_run_with_errors_never_go(restartable, stack, tmp_path):
    engine, params, _ = restartable
    out = tmp_path / "out"
    proc = _start_on(engine, "run", "--params", str(params), "--phase", "03_production_mode", "--output", str(out))
    _wait_for(lambda: list(out.glob("*/notebooks/03_production_mode.ipynb")), 300, "phase 3 to be running")
    _restart_and_see_errors(engine, proc, "phase 3")


def test_the_engine_restarting_during_a_drill_ends_the_run_with_errors_and_redis_runs_again(restartable, stack, tmp_path):
    engine, params, compose = restartable
    project = stack.project
    _wait_for(lambda: _state(engine, project, "redis") == "running", 180, "redis running on the second engine")
    out = tmp_path / "out"
    proc = _start_on(engine, "run", "--params", str(params), "--phase", "04_smoke_tests", "--output", str(out))

    def active():
        for p in out.glob("*/drills/redis-*.journal.json"):
            try:
                if json.loads(p.read_text()).get("state") == "active":
                    return p
            except ValueError:
                pass
        return None

    journal = _wait_for(active, 600, "the redis drill to be active")
    _restart_and_see_errors(engine, proc, "drill")
    # the engine is back: what the drill stopped runs again (the drill itself, or its guardian once it ended)
    _wait_for(lambda: _state(engine, project, "redis") == "running", 120, "redis running again after the restart")
    done = _wait_for(lambda: (d := json.loads(journal.read_text())).get("state") in ("restored", "recovered") and d,
                     120, "the journal marked restored")
    assert done["state"] in ("restored", "recovered")
    print(f"drill: journal {done['state']} by {done.get('recovered_by') or 'the drill itself'}")


def test_runbook_watch_goes_on_through_an_engine_restart_with_an_error_run_between(restartable, tmp_path):
    """The watcher on the second engine (preflight only, every 2 s): the engine restarting makes a NO-GO run with
    ERROR records (a signed run directory), the loop goes on, and once the engine is back it publishes GO again."""
    from watchers import Watcher, free_port

    engine, params, _ = restartable
    out = tmp_path / "out"
    w = Watcher("--params", str(params), "--every", "2s", "--phase", "00_preflight", "--output", str(out),
                listen=f"127.0.0.1:{free_port('127.0.0.1')}", env={"DOCKER_HOST": engine.host})
    try:
        _wait_for(lambda: any(ln.startswith("runbook watch: GO") for ln in w.lines), 300, "a GO from the watcher")
        mark = len(w.lines)
        # away for longer than a run (10-20 s here): a run reads the engine only in moments (validation, the
        # phase's one reading), so a shorter outage can fall between them and no run sees it
        restart_engine(engine, down_s=30)
        t0 = time.monotonic()
        w.wait_line("runbook watch: GO", 300, w.lines.index(w.wait_line("runbook watch: NO-GO", 120, mark)))
        # the NO-GO runs still kept (an ERROR run takes a second: many were made, the oldest removed, --keep 10)
        runs = [d for ln in w.lines[mark:] if ln.startswith("runbook watch: NO-GO")
                if (d := out / ln.rsplit("/", 1)[1]).is_dir()]
        errors = [r for d in runs for p in (d / "results").glob("*.json") for r in json.loads(p.read_text())
                  if r["status"] == "ERROR"]
        assert errors and all((d / "manifest.json.sig").is_file() for d in runs), runs
        assert len([d for d in out.iterdir() if not d.is_symlink()]) <= 11  # the newest 10 and the last GO
        assert w.proc.poll() is None and w.metric("runbook_run_errors_total") >= 1
        print(f"watch: an ERROR run ({sorted({r['id'] for r in errors})}), then GO "
              f"{time.monotonic() - t0:.0f} s after the engine was back")
        rc, _ = w.terminate(120)
        assert rc == 0
    finally:
        w.kill()
