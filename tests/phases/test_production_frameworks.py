"""Phase 3 on containers that behave like real applications, on a real engine: a Python service that logs
tracebacks, Flask's development switch set by the compose file and Node's by the image, the Werkzeug
development banner, a debugger flag on a process's command line and a real Werkzeug interactive debugger
on a published port. Each planted fault FAILs with its check id; where the evidence is taken away (no
switch, no log line) the check does not PASS.

One small compose project of its own (its own name, a free port), built from the demo's app image, with
Werkzeug mounted from this virtual environment for the real debugger."""
from __future__ import annotations

import io
import secrets
from pathlib import Path

import pytest
import yaml

from conftest import load_run, run_dir_from
from runbook_demo import free_ports
from runbook_lib.engine.compose import Compose

APP_IMAGE = "runbook-demo/app:local"
SLEEP = "import time; time.sleep(1000000)"
TRACEBACKS = """
import time, traceback
def handler(n):
    return {}["user"]
for i in range(3):
    try:
        handler(i)
    except Exception:
        traceback.print_exc()
print('172.18.0.1 - - [07/Dec/2026 04:00:00] "GET /items HTTP/1.1" 500 -', flush=True)
time.sleep(1000000)
"""
BANNER = """
import time
print(" * Serving Flask app 'app'")
print(" * Debug mode: on")
print("WARNING: This is a development server. Do not use it in a production deployment. Use a production WSGI server instead.")
print(" * Running on http://127.0.0.1:5000")
print(" * Debugger is active!")
print(" * Debugger PIN: 417-093-552", flush=True)
time.sleep(1000000)
"""
# fails on its first start (a traceback), then runs: the traceback is before this deploy's window
RESTARTED = """
import os, sys, time, traceback
if not os.path.exists("/tmp/started-once"):
    open("/tmp/started-once", "w").close()
    try:
        raise RuntimeError("first start failed")
    except RuntimeError:
        traceback.print_exc()
    sys.exit(1)
print("ready", flush=True)
time.sleep(1000000)
"""
WERKZEUG = """
import sys
sys.path.insert(0, "/opt/wz")
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response
def app(environ, start_response):
    return Response("hello")(environ, start_response)
run_simple("0.0.0.0", 5000, app, use_debugger=True, use_evalex=True, use_reloader=False)
"""


def _site_package(name: str) -> str:
    mod = __import__(name)
    return str(Path(mod.__file__).parent)


def _dist_info(name: str) -> str:
    """The package's metadata directory (Werkzeug reads its own version from it)."""
    from importlib.metadata import distribution

    return str(distribution(name)._path)  # noqa: SLF001 - the directory itself, to mount


@pytest.fixture(scope="module")
def fw(tmp_path_factory, engine):
    """The project up: (its parameters file, the image with a development switch in its ENV)."""
    d = tmp_path_factory.mktemp("frameworks")
    project = f"rbpf-{secrets.token_hex(3)}"
    image = f"{project}-imgenv:local"
    for _ in engine.api.build(fileobj=io.BytesIO(f"FROM {APP_IMAGE}\nENV NODE_ENV=development\n".encode()),
                              tag=image, rm=True, decode=True):
        pass

    def svc(code: str, **extra) -> dict:
        return {"image": APP_IMAGE, "entrypoint": ["python3", "-c", code], "command": [], "restart": "always",
                **extra}

    [port] = free_ports(1)
    services = {
        "tracebacks": svc(TRACEBACKS),
        "flask-env": svc("print('ready', flush=True); " + SLEEP, environment={"FLASK_ENV": "development"}),
        "image-env": {**svc("print('ready', flush=True); " + SLEEP), "image": image},
        "banner": svc(BANNER),
        "inspect": {**svc(SLEEP), "command": ["--inspect=0.0.0.0:9229"]},
        "debugger": svc(WERKZEUG, ports=[f"127.0.0.1:{port}:5000"], volumes=[
            f"{_site_package('werkzeug')}:/opt/wz/werkzeug:ro", f"{_site_package('markupsafe')}:/opt/wz/markupsafe:ro",
            f"{_dist_info('werkzeug')}:/opt/wz/{Path(_dist_info('werkzeug')).name}:ro"]),
        "clean": svc("print('ready', flush=True); " + SLEEP, environment={"NODE_ENV": "production"}),
        "quiet": svc(SLEEP),
        "restarted": svc(RESTARTED, restart="on-failure"),
    }
    compose_file = d / "compose.yaml"
    compose_file.write_text(yaml.safe_dump({"services": services}))
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump({"project": project, "compose_files": [str(compose_file)],
                                      "app_services": sorted(services), "dependencies": []}))
    compose = Compose([compose_file], project)
    try:
        compose.up(wait=False, timeout=300)
        _wait_for_logs(engine, project)
        yield params, image
    finally:
        compose.down(volumes=True)
        engine.api.remove_image(image, force=True)


def _wait_for_logs(engine, project: str, timeout: float = 60) -> None:
    """Until the services that log have logged (the debugger's banner, the restarted one's second start)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = {v.service: v for v in engine.project_containers(project)}
        logs = {s: engine.logs(v.id) for s, v in views.items() if s in ("debugger", "restarted", "tracebacks", "banner")}
        if (len(logs) == 4 and "CTRL+C" in logs["debugger"] and "ready" in logs["restarted"]
                and "500 -" in logs["tracebacks"] and "PIN" in logs["banner"]):
            return
        time.sleep(1)
    raise AssertionError(f"the services did not log in time: { {s: text[-600:] for s, text in logs.items()} }")


def _phase3(cli, params: Path, tmp_path: Path) -> dict:
    proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"), "--phase", "03_production_mode",
               timeout=600)
    run_dir = run_dir_from(proc.stdout)
    _, records = load_run(run_dir)
    recs = {(r["id"], r["target"]): r for r in records if r["phase"] == "03_production_mode"}
    assert not [r for r in recs.values() if r["status"] == "ERROR"], proc.stdout
    return recs


@pytest.fixture(scope="module")
def recs(fw, tmp_path_factory):
    from conftest import run_cli

    return _phase3(run_cli, fw[0], tmp_path_factory.mktemp("run"))


@pytest.mark.docker
def test_python_tracebacks_and_a_5xx_access_line_fail_the_logs_check_grouped_and_redacted(recs):
    r = recs[("prod.logs", "tracebacks")]
    assert r["status"] == "FAIL" and r["severity"] == "high", r["actual"]
    groups = {g["signature"]: g for g in r["evidence"]["groups"]}
    tb = groups["KeyError at <string>:4 in handler"]
    assert tb["kind"] == "python" and tb["count"] == 3 and tb["first_at"] <= tb["last_at"]
    assert tb["sample"][0] == "Traceback (most recent call last):" and tb["sample"][-1] == "KeyError: 'user'"
    assert groups["500 GET /items"]["count"] == 1 and r["evidence"]["access_log"]["fraction_5xx"] == 1.0
    assert "Python traceback: KeyError" in r["actual"] and "since this deploy" in r["evidence"]["window"]


@pytest.mark.docker
def test_the_logs_window_is_this_deploy_and_a_silent_log_is_not_a_pass(recs, fw, cli, tmp_path):
    r = recs[("prod.logs", "restarted")]  # its traceback was written before its last start
    assert r["status"] == "PASS" and r["evidence"]["lines_read"] == 1, r["actual"]
    assert "1 restart(s) earlier, their lines not read" in r["actual"]  # and said so
    assert recs[("prod.logs", "quiet")]["status"] == "SKIP"
    assert recs[("prod.logs", "clean")]["status"] == "PASS"
    # every line the engine holds: the first start's traceback is there
    wide = Path(tmp_path / "wide.yaml")
    wide.write_text(yaml.safe_dump({**yaml.safe_load(fw[0].read_text()), "production": {"log_since": "created"}}))
    r = _phase3(cli, wide, tmp_path)[("prod.logs", "restarted")]
    assert r["status"] == "FAIL" and r["evidence"]["groups"][0]["signature"].startswith("RuntimeError at <string>")


@pytest.mark.docker
def test_framework_development_switches_fail_from_the_compose_file_and_from_the_image(recs):
    r = recs[("prod.env", "flask-env")]
    assert r["status"] == "FAIL" and "FLASK_ENV='development'" in r["actual"], r["actual"]
    assert r["evidence"]["switches"]["development"] == [
        {"name": "FLASK_ENV", "framework": "Flask", "value": "development", "source": "compose environment/env_file"}]
    r = recs[("prod.env", "image-env")]
    assert r["status"] == "FAIL" and "NODE_ENV='development'" in r["actual"] and "image ENV" in r["actual"]
    # a production value is evidence; no switch and nothing expected is not a PASS; ENV is asked of nobody
    assert recs[("prod.env", "clean")]["status"] == "PASS" and "NODE_ENV=production" in recs[("prod.env", "clean")]["actual"]
    assert recs[("prod.env", "quiet")]["status"] == "SKIP"
    assert all("ENV is unset" not in r["actual"] for (cid, _), r in recs.items() if cid == "prod.env")


@pytest.mark.docker
def test_a_development_server_or_debugger_fails_by_banner_command_line_and_port_probe(recs):
    r = recs[("prod.dev_server", "banner")]
    assert r["status"] == "FAIL" and r["severity"] == "high"
    assert {b["banner"] for b in r["evidence"]["banners"]} >= {"Flask debug mode", "the Werkzeug development server",
                                                               "the Werkzeug interactive debugger"}
    assert "417-093-552" not in str(r), "the debugger PIN reached the record"
    r = recs[("prod.dev_server", "inspect")]
    assert r["status"] == "FAIL" and r["evidence"]["commands"][0]["process"] == "the Node.js inspector (--inspect)"
    assert r["evidence"]["banners"] == [] and r["actual"].startswith("command line:")
    r = recs[("prod.dev_server", "debugger")]
    assert r["status"] == "FAIL" and "published on 127.0.0.1:" in r["actual"]
    [probe] = r["evidence"]["probes"]
    assert probe["debugger"] == "the Werkzeug interactive debugger" and probe["status"] == 200
    assert any(s.startswith("port probe:") for s in r["evidence"]["signals"])
    # no signal: the command line was read and judged; the flag in the environment alone is prod.env's
    for svc in ("clean", "quiet", "flask-env", "tracebacks"):
        r = recs[("prod.dev_server", svc)]
        assert r["status"] == "PASS" and r["evidence"]["processes"], (svc, r["actual"])


@pytest.mark.docker
def test_a_container_whose_process_list_came_back_empty_is_not_judged(fw, monkeypatch):
    """`docker top` listing nothing (the main process ended between the inspect and the read: a crash loop
    caught between two starts) is no evidence of "no development server": SKIP saying so, never a PASS of
    "0 process(es) read". The empty listing is planted for one service; the others are read for real."""
    from runbook_lib.params import load_params
    from runbook_lib.phases.production import devserver
    from runbook_lib.run.context import Context

    real = devserver.processes
    monkeypatch.setattr(devserver, "processes", lambda ctx, v: [] if v.service == "quiet" else real(ctx, v))
    recs = {r.target: r for r in devserver.dev_server(Context(params=load_params(fw[0]), progress=lambda s: None))}
    quiet = recs["quiet"]
    assert quiet.status == "SKIP" and "docker top listed no process" in quiet.actual, quiet.actual
    assert recs["clean"].status == "PASS" and recs["clean"].evidence["processes"]
