"""`runbook init`: a starter parameters file from a compose model, validated by load_params, and run to a
verdict. Real Compose resolves every file; the integration test brings up its OWN copy of the demo (a
random project name, every published port removed but one, on a free port) and takes it down again."""
from __future__ import annotations

import re
import secrets
import socket

import pytest
import yaml

from runbook_lib.params import load_params

from conftest import ROOT, run_cli

DEMO = ROOT / "demo" / "compose.yaml"
OFFLINE = ROOT / "demo" / "offline.env"
FIXTURES = ROOT / "tests" / "fixtures" / "compose"
APPS = ["api-gateway", "auth-service", "chat-service", "storage-service", "video-service"]


def _todos(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith("# TODO:")]


def test_init_on_the_demo_compose_file_validates(tmp_path):
    import runbook_demo as demo

    out = tmp_path / "params" / "generated.yaml"
    out.parent.mkdir()
    r = run_cli("init", str(DEMO), "--env-file", str(OFFLINE), "--project", f"rbinit-{secrets.token_hex(4)}",
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout and "next: runbook run --params" in r.stdout
    p = load_params(out)
    assert p.app_services == APPS
    assert p.dependencies == ["coturn", "minio", "postgres", "redis"]
    why = out.read_text()
    assert "#   postgres: dependency, PostgreSQL database" in why
    assert "#   coturn: dependency, TURN/STUN server" in why and "coturn" not in p.security.internal_services
    assert p.compose_files == [DEMO.resolve()] and p.env_files == [OFFLINE.resolve()]
    # health endpoints: each healthcheck's URL, mapped to the port published for it
    assert {e.name: e.url for e in p.smoke.endpoints} == {
        "api-gateway": "http://127.0.0.1:8080/health", "auth-service": "http://127.0.0.1:8081/health",
        "chat-service": "http://127.0.0.1:8082/health", "video-service": "http://127.0.0.1:8083/health",
        "storage-service": "http://127.0.0.1:8084/health"}
    # a drill per dependency, probing the services that depend on it, expect left at the least claim
    drills = {d.dependency: d for d in p.smoke.drills}
    assert sorted(drills) == ["coturn", "minio", "postgres", "redis"]
    assert [e.name for e in drills["postgres"].endpoints] == ["auth-service health"]
    assert [e.name for e in drills["minio"].endpoints] == ["storage-service health"]
    assert {e.name for e in drills["redis"].endpoints} == {"auth-service health", "chat-service health",
                                                           "video-service health"}
    assert all(e.expect == "may_fail" for d in drills.values() for e in d.endpoints)
    assert p.production.prometheus_url == "http://127.0.0.1:9090"
    assert p.production.alertmanager_url == "http://127.0.0.1:9093"
    assert p.security.internal_services == ["minio", "postgres", "redis"]
    text = out.read_text()
    todos = _todos(text)
    assert any("while redis is down" in t for t in todos) and any("expected_env" in t for t in todos)
    # the project was not running: no /metrics invented, a TODO instead
    assert p.smoke.metrics == [] and any("/metrics" in t for t in todos)
    # file secrets: named, with their path relative to the parameters file, never their value
    for name in demo.SECRET_NAMES:
        assert (out.parent / text.split(f"#   {name}: ")[1].split("\n")[0]).resolve() == demo.SECRETS_DIR / name
    for path in demo.ensure_secrets():
        assert path.read_text().strip() not in text
    assert f"{len(todos)} decision(s) are left to a person" in text


@pytest.mark.parametrize("fixture", ["compose-v3-full.yaml", "compose-healthcheck.yaml"])
def test_init_on_public_compose_projects_validates(tmp_path, fixture):
    out = tmp_path / "starter.yaml"
    r = run_cli("init", str(FIXTURES / fixture), "--out", str(out), "--no-probe")
    assert r.returncode == 0, r.stderr
    p = load_params(out)
    model = yaml.safe_load((FIXTURES / fixture).read_text())
    assert sorted(p.app_services) == sorted(model["services"])  # busybox everywhere: all app services
    assert p.dependencies == [] and p.smoke.drills == [] and p.smoke.endpoints == []
    assert p.project == "compose"  # Compose's own name for the directory tests/fixtures/compose
    assert "drills: []    # no dependency was recognised" in out.read_text()


OWN = """services:
  web:
    image: example/shop-web:1.4
    ports: ["127.0.0.1:18000:8000", "127.0.0.1:18443:8443"]
    healthcheck:
      test: ["CMD-SHELL", "curl -fsS http://localhost:8000/healthz?full=1 || exit 1"]
    depends_on: [db, cache]
    secrets: [db_password, api_token]
  worker:
    image: example/shop-worker:1.4
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:9100/ready"]
    depends_on: [broker]
  db:
    image: bitnami/postgresql:16
  cache:
    image: redis:7-alpine
    ports: ["6379"]
  broker:
    image: rabbitmq:3-management
  cache-exporter:
    image: oliver006/redis_exporter:v1.62.0
  db-admin:
    image: mongo-express:1.0
  grafana:
    image: grafana/grafana:11.0.0
    ports: ["127.0.0.1:13000:3000"]
  debug:
    image: busybox:1.36
    profiles: [debug]
secrets:
  db_password:
    file: ./missing/db_password
  api_token:
    environment: SHOP_API_TOKEN
"""


def test_init_sorts_services_maps_ports_and_names_profiles(tmp_path):
    """The classification rule, healthcheck URL -> published host URL, unpublished health, profiles."""
    (tmp_path / "shop").mkdir()
    compose = tmp_path / "shop" / "compose.yaml"
    compose.write_text(OWN)
    out = tmp_path / "shop.yaml"
    r = run_cli("init", str(compose), "--out", str(out), "--no-probe")
    assert r.returncode == 0, r.stderr
    p = load_params(out)
    assert p.project == "shop"
    assert p.app_services == ["db-admin", "web", "worker"]       # mongo-express is a tool, not a store
    assert p.dependencies == ["broker", "cache", "db"]           # rabbitmq, redis, postgresql
    assert p.production.grafana_url == "http://127.0.0.1:13000"
    assert [(e.name, e.url) for e in p.smoke.endpoints] == [("web", "http://127.0.0.1:18000/healthz?full=1")]
    text = out.read_text()
    assert "# worker: not in endpoints: its healthcheck asks http://127.0.0.1:9100/ready inside the container, " \
           "and port 9100 is not published" in text
    assert "debug (profiles: debug)" in text and "debug" not in p.app_services
    assert "#   db_password: shop/missing/db_password" in text
    assert "#   api_token: (from the environment variable SHOP_API_TOKEN)" in text
    assert "cache-exporter: observability" in text
    drills = {d.dependency: [e.url for e in d.endpoints] for d in p.smoke.drills}
    assert drills == {"broker": ["http://127.0.0.1:18000/healthz?full=1"],    # worker has no host URL: all
                      "cache": ["http://127.0.0.1:18000/healthz?full=1"],
                      "db": ["http://127.0.0.1:18000/healthz?full=1"]}


def test_init_refuses_to_overwrite_and_names_bad_input(tmp_path):
    out = tmp_path / "existing.yaml"
    out.write_text("# mine\n")
    r = run_cli("init", str(FIXTURES / "compose-healthcheck.yaml"), "--out", str(out), "--no-probe")
    assert r.returncode == 2
    assert f"{out} already exists; nothing was written. Pass --force" in r.stderr
    assert out.read_text() == "# mine\n"
    r = run_cli("init", str(FIXTURES / "compose-healthcheck.yaml"), "--out", str(out), "--no-probe", "--force")
    assert r.returncode == 0, r.stderr
    load_params(out)
    r = run_cli("init", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x.yaml"))
    assert r.returncode == 2 and f"{tmp_path / 'nope.yaml'}: no such file" in r.stderr
    r = run_cli("init", str(FIXTURES / "compose-healthcheck.yaml"), "--project", "Bad Name", "--out", str(tmp_path / "y.yaml"))
    assert r.returncode == 2 and "--project 'Bad Name'" in r.stderr
    assert not (tmp_path / "x.yaml").exists() and not (tmp_path / "y.yaml").exists()


def test_init_in_a_fresh_project_directory_creates_parameters_there(tmp_path):
    """The README's "your own project" flow: `runbook init compose.yaml` in a directory that has no
    parameters/ yet writes parameters/<project>.yaml there (and with a bad project name, creates nothing)."""
    compose = tmp_path / "compose.yaml"
    compose.write_text((FIXTURES / "compose-healthcheck.yaml").read_text())
    r = run_cli("init", "compose.yaml", "--project", "Bad Name", "--no-probe", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "parameters").exists()
    r = run_cli("init", "compose.yaml", "--project", "myapp", "--no-probe", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "wrote parameters/myapp.yaml" in r.stdout
    load_params(tmp_path / "parameters" / "myapp.yaml")


# -- integration: our own copy of the demo, one published port ------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


OVERRIDE = """services:
  api-gateway: {{ports: !override ["127.0.0.1:{port}:8080"]}}
  auth-service: {{ports: !reset []}}
  chat-service: {{ports: !reset []}}
  video-service: {{ports: !reset []}}
  storage-service: {{ports: !reset []}}
  prometheus: {{ports: !reset []}}
  alertmanager: {{ports: !reset []}}
  coturn: {{ports: !reset []}}
"""


@pytest.fixture(scope="module")
def own_stack(engine, tmp_path_factory):
    """The demo under a random project name, only api-gateway published (on a free port)."""
    import runbook_demo as demo
    from runbook_lib.engine.compose import Compose

    demo.ensure_secrets()
    demo.build_images(progress=lambda s: None)
    port = _free_port()
    override = tmp_path_factory.mktemp("rbinit") / "one-port.yaml"
    override.write_text(OVERRIDE.format(port=port))
    project = f"rbinit-{secrets.token_hex(4)}"
    stack = Compose([DEMO, override], project=project, env_files=[OFFLINE])
    try:
        stack.up(wait=True, timeout=240)
        yield project, override, port
    finally:
        stack.down(volumes=True)


@pytest.mark.docker
@pytest.mark.slow
def test_init_probes_metrics_and_its_parameters_run_to_a_verdict(own_stack, tmp_path):
    project, override, port = own_stack
    out = tmp_path / "generated.yaml"
    r = run_cli("init", str(DEMO), str(override), "--env-file", str(OFFLINE), "--project", project, "--out", str(out))
    assert r.returncode == 0, r.stderr
    p = load_params(out)
    assert p.project == project
    # the one published app port answered Prometheus text for real; nothing else was published
    assert [(m.name, m.url, m.families) for m in p.smoke.metrics] == [
        ("api-gateway", f"http://127.0.0.1:{port}/metrics", [])]
    assert re.search(r"seen: .*http_requests_total", out.read_text())
    assert [(e.name, e.url) for e in p.smoke.endpoints] == [("api-gateway", f"http://127.0.0.1:{port}/health")]
    assert p.production.prometheus_url == ""    # not published in this copy: a TODO, not a guess
    # ...and the second command: the generated parameters run to a verdict
    r = run_cli("run", "--params", str(out), "--phase", "00_preflight", "--phase", "02_secrets_security",
                "--phase", "05_signoff", "--output", str(tmp_path / "outputs"), timeout=900)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    assert re.search(rf"^(GO|NO-GO): {project} \(", r.stdout, re.M), r.stdout
