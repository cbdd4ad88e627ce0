"""`runbook init` sorts services from every piece of evidence and writes only endpoints that answered.

The classifier is asked about compose models as `docker compose config` gives them (dicts); the render is
checked through the CLI on compose files of our own; the endpoint probe asks real HTTP servers started
here on free loopback ports (no Docker needed: the probe is plain HTTP)."""
from __future__ import annotations

import http.server
import threading

import pytest

from runbook_lib.params import load_params
from runbook_lib.run.starter import classify, healthcheck_url

from conftest import run_cli

LOCAL_MYSQL = {   # a database built here: its image name has no data-store word
    "image": "acme/records:local",
    "healthcheck": {"test": ["CMD", "mysqladmin", "ping", "-h", "localhost", "-uroot", "-pS3cretPw"]},
    "expose": ["3306"],
    "environment": {"MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/db", "MYSQL_DATABASE": "app"},
    "volumes": [{"type": "volume", "source": "data", "target": "/var/lib/mysql"}],
}


def test_a_database_whose_image_has_no_store_word_is_a_dependency_with_every_clue_in_its_reason():
    kind, why = classify("records", LOCAL_MYSQL)
    assert kind == "dependency"
    for clue in ("MySQL", "healthcheck runs mysqladmin ping", "container port 3306",
                 "environment MYSQL_ROOT_PASSWORD_FILE, MYSQL_DATABASE", "volume on /var/lib/mysql"):
        assert clue in why, (clue, why)
    assert "S3cretPw" not in why and "-uroot" not in why    # the healthcheck's arguments are never quoted


@pytest.mark.parametrize("spec, shown", [
    ({"healthcheck": {"test": ["CMD-SHELL", "pg_isready -U app -d app"]}}, "healthcheck runs pg_isready"),
    ({"command": ["postgres", "-c", "max_connections=200"]}, "starts postgres"),
    ({"volumes": [{"type": "volume", "source": "pg", "target": "/var/lib/postgresql/data"}]},
     "volume on /var/lib/postgresql/data"),
    ({"image": "bitnami/postgresql:16"}, "image bitnami/postgresql:16"),
])
def test_one_strong_clue_makes_a_postgresql_dependency(spec, shown):
    kind, why = classify("store", {"image": "acme/store:1", **spec})
    assert kind == "dependency" and "PostgreSQL" in why and shown in why, why


def test_a_single_weak_hint_is_not_enough_and_two_from_different_places_are():
    kind, why = classify("svc", {"image": "acme/svc:1", "ports": [{"target": 5432, "published": "15432"}]})
    assert kind == "app" and "one weak hint only: container port 5432" in why
    kind, why = classify("svc", {"image": "acme/svc:1", "environment": {"POSTGRES_PASSWORD": "x"}})
    assert kind == "app", why
    kind, why = classify("svc", {"image": "acme/svc:1", "expose": ["5432"], "environment": {"POSTGRES_PASSWORD": "x"}})
    assert kind == "dependency" and "container port 5432; environment POSTGRES_PASSWORD" in why
    kind, why = classify("db", {"image": "acme/svc:1", "expose": ["6379"]})
    assert kind == "dependency" and "service name db" in why


def test_a_client_of_a_database_is_an_app_even_with_its_variables():
    spec = {"image": "acme/web:2", "ports": [{"target": 8000, "published": "8000"}],
            "environment": {"POSTGRES_HOST": "db", "POSTGRES_USER": "app", "POSTGRES_PASSWORD": "x",
                            "REDIS_URL": "redis://cache:6379/0"},
            "command": ["gunicorn", "app:create_app()"], "volumes": [{"type": "bind", "target": "/app"}]}
    assert classify("web", spec)[0] == "app"
    assert classify("redis-commander", {"image": "rediscommander/redis-commander", "expose": ["6379"],
                                        "environment": {"REDIS_HOSTS": "local:cache:6379"}})[0] == "app"


def test_a_healthcheck_that_asks_another_host_is_a_client_waiting_for_its_database():
    spec = {"image": "acme/api:3", "healthcheck": {"test": ["CMD-SHELL", "pg_isready -h db -U app && curl -f localhost"]}}
    assert classify("api", spec)[0] == "app"
    spec = {"image": "acme/store:3", "healthcheck": {"test": ["CMD-SHELL", "pg_isready -h localhost -U app"]}}
    assert classify("store", spec)[0] == "dependency"


@pytest.mark.parametrize("name, spec, label", [
    # awesome-compose wordpress-mysql's db, its image built here under a name of its own
    ("db", {"image": "acme/wp-store:local", "command": ["--default-authentication-plugin=mysql_native_password"],
            "volumes": [{"type": "volume", "source": "db_data", "target": "/var/lib/mysql"}],
            "environment": {"MYSQL_ROOT_PASSWORD": "x", "MYSQL_DATABASE": "wordpress"}, "expose": ["3306", "33060"]},
     "MySQL/MariaDB database"),
    # the postgres image documentation's compose file: nothing but the password and the name db
    ("db", {"image": "acme/pg-store:local", "environment": {"POSTGRES_PASSWORD": "example"}, "shm_size": "128mb"},
     "PostgreSQL database"),
])
def test_public_compose_databases_are_dependencies_whatever_their_image_is_called(name, spec, label):
    kind, why = classify(name, spec)
    assert kind == "dependency" and why.startswith(label), why


def test_the_image_own_config_is_evidence_where_the_compose_model_does_not_override_it():
    from runbook_lib.run.starter_evidence import classify as classify_with_image

    config = {"Cmd": ["redis-server", "--dir", "/data"], "ExposedPorts": {"6379/tcp": {}}, "Env": ["PATH=/bin"]}
    c = classify_with_image("kv", {"image": "acme/kv:local"}, config)
    assert c.role == "dependency" and "starts redis-server (in the image); container port 6379 (in the image)" in c.why
    # the compose model's command replaces the image's: what the image would start is no longer evidence
    c = classify_with_image("kv", {"image": "acme/kv:local", "command": ["gunicorn", "app"]}, config)
    assert c.role == "app" and "one weak hint only: container port 6379 (in the image)" in c.why


@pytest.mark.parametrize("name, spec", [
    ("turn", {"image": "coturn/coturn:4.6", "ports": [{"target": 3478, "published": "3478", "protocol": "udp"}]}),
    ("relay", {"image": "runbook-demo/turn:local"}),
    ("relay", {"image": "acme/relay:local", "command": ["turnserver", "-n", "--listening-port=3478"]}),
    ("relay", {"image": "acme/relay:local", "entrypoint": ["/bin/sh", "-c", "exec /usr/bin/turnserver -c /etc/t.conf"]}),
])
def test_a_turn_server_is_a_dependency_of_its_own_kind(name, spec):
    kind, why = classify(name, spec)
    assert kind == "dependency" and why.startswith("TURN/STUN server") and "not an internal service" in why


def test_observability_is_recognised_by_what_it_runs_too():
    assert classify("metrics", {"image": "acme/metrics:local", "command": ["/bin/prometheus", "--config.file=/p.yml"],
                                "expose": ["9090"]})[0] == "observability"
    assert classify("cache-exporter", {"image": "oliver006/redis_exporter:v1.62.0", "expose": ["6379"]})[0] \
        == "observability"


TURN_AND_PROXY = """services:
  proxy:
    image: nginx:1.27
    ports: ["127.0.0.1:18080:80"]
    depends_on: [backend]
  backend:
    image: acme/backend:local
    environment: {FLASK_APP: app, NODE_ENV: production}
    depends_on: [records]
  records:
    image: acme/records:local
    healthcheck: {test: ["CMD", "mysqladmin", "ping", "-h", "localhost"]}
    environment: {MYSQL_DATABASE: app}
    volumes: ["data:/var/lib/mysql"]
  pg:
    image: acme/pg:local
    healthcheck: {test: ["CMD-SHELL", "pg_isready -U app"]}
  turn:
    image: coturn/coturn:4.6
    ports: ["3478:3478/udp"]
volumes: {data: {}}
"""


def test_init_writes_each_reason_and_invents_neither_an_endpoint_nor_an_env_requirement(tmp_path):
    """No running stack: a published port without an HTTP healthcheck gets a TODO, not /health; ENV is not
    required of services whose compose model never sets it; the TURN server is not marked internal."""
    (tmp_path / "compose.yaml").write_text(TURN_AND_PROXY)
    out = tmp_path / "p.yaml"
    r = run_cli("init", str(tmp_path / "compose.yaml"), "--project", "evidence", "--out", str(out), "--no-probe")
    assert r.returncode == 0, r.stderr
    p = load_params(out)
    assert p.app_services == ["backend", "proxy"]
    assert p.dependencies == ["pg", "records", "turn"]
    assert p.security.internal_services == ["pg", "records"]
    assert p.smoke.endpoints == [] and p.smoke.drills == []
    assert p.production.expected_env == {} and p.production.env_overrides == {"backend": {"NODE_ENV": "production"}}
    text = out.read_text()
    assert "/health" not in [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")].__str__()
    assert "#   records: dependency, MySQL/MariaDB database: healthcheck runs mysqladmin ping" in text
    assert "#   pg: dependency, PostgreSQL database: healthcheck runs pg_isready" in text
    assert "TODO: proxy publishes http://127.0.0.1:18080 but has no HTTP healthcheck" in text
    assert "Not internal, being reached from outside by design: turn." in text


# -- the endpoint probe, on real HTTP servers of our own ------------------------------------------------
def _server(paths: dict[str, int], catch_all: int | None = None):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status = paths.get(self.path, catch_all or 404)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/login")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize("paths, catch_all, expected", [
    ({"/": 200}, None, ("/", 200)),                          # serves only /: / (not /health)
    ({"/": 200, "/healthz": 200}, None, ("/healthz", 200)),   # a health path is preferred
    ({"/": 302}, None, ("/", 302)),                          # a login redirect, written with its status
    ({}, 200, ("/", 200)),                                   # a catch-all: its "/health" proves nothing
    ({"/": 404}, None, None),                                # nothing answered: no endpoint, a TODO
])
def test_init_keeps_only_the_path_that_answered_with_its_status(paths, catch_all, expected):
    from runbook_lib.run.starter_probe import probe

    srv = _server(paths, catch_all)
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        h = probe("web", None, {8000: base})
    finally:
        srv.shutdown()
    if expected is None:
        assert h.url is None and "nothing answered" in h.note and "/ 404" in h.note and h.todo
    else:
        assert (h.url, h.status) == (base + expected[0], expected[1]) and f"answered {expected[1]}" in h.note


def test_a_healthcheck_path_that_answers_is_asked_first():
    from runbook_lib.run.starter_probe import probe

    srv = _server({"/": 200, "/health": 200, "/live?full=1": 204})
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        spec = {"healthcheck": {"test": ["CMD", "curl", "-f", "http://localhost:8000/live?full=1"]}}
        h = probe("web", healthcheck_url(spec), {8000: base})
    finally:
        srv.shutdown()
    assert (h.url, h.status) == (base + "/live?full=1", 204)
    assert "answered 204" in h.note


# -- integration: a stack of our own on the real engine ------------------------------------------------
SERVE_ROOT_ONLY = """import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"hello\\n" if ok else b"not found\\n")
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""

HARDENED = """    restart: unless-stopped
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    mem_limit: 128m
    cpus: 0.5
    pids_limit: 64
"""
OWN_STACK = """services:
  web:
    image: runbook-demo/app:local
    entrypoint: ["python3", "-c", {script}]
    ports: ["127.0.0.1:{port}:8000"]
    environment: {{RECORDS_HOST: records}}
    depends_on: [records]
{hardened}  records:
    image: {db_image}
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      timeout: 3s
      retries: 30
    volumes: ["records-data:/data"]
{hardened}volumes:
  records-data: {{}}
"""
#: every FAIL the starter file's read-only run may give on OWN_STACK, each a true finding about the stack
TRUE_PROBLEMS = {
    ("prod.healthcheck", "web"): "web has no healthcheck: true, nothing tells the engine when it stops working",
}


def _wait_until_answering(url: str, timeout: float = 120) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def own_stack(engine, tmp_path_factory):
    """web (answers / only, published on a free port) and records (a key-value store built here under a
    name with no data-store word), under a project name of our own; image and stack removed afterwards."""
    import io
    import json
    import secrets
    import socket

    import docker

    from runbook_lib.engine.compose import Compose

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(4)
    db_image = f"rbinit-records-{token}:local"
    client = docker.from_env()
    client.images.build(fileobj=io.BytesIO(b"FROM runbook-demo/redis:local\nLABEL runbook.test=rbinit-evidence\n"),
                        tag=db_image, rm=True, pull=False)
    root = tmp_path_factory.mktemp("rbinit-evidence")
    compose = root / "compose.yaml"
    compose.write_text(OWN_STACK.format(script=json.dumps(SERVE_ROOT_ONLY), port=port, db_image=db_image,
                                        hardened=HARDENED))
    project = f"rbinit-ev-{token}"
    stack = Compose([compose], project=project)
    try:
        stack.up(wait=True, timeout=240)
        _wait_until_answering(f"http://127.0.0.1:{port}/")   # web has no healthcheck: "up" is not "serving"
        yield project, compose, port
    finally:
        stack.down(volumes=True)
        try:
            client.images.remove(db_image)
        except docker.errors.APIError:
            pass


@pytest.mark.docker
@pytest.mark.slow
def test_init_on_a_running_stack_sorts_by_evidence_writes_what_answered_and_its_run_has_no_invented_fail(
        own_stack, tmp_path):
    import json

    from pathlib import Path

    from conftest import load_run

    project, compose, port = own_stack
    out = tmp_path / "starter.yaml"
    r = run_cli("init", str(compose), "--project", project, "--out", str(out))
    assert r.returncode == 0, r.stderr
    p = load_params(out)
    text = out.read_text()
    # the store built here has no data-store word in its image name: its healthcheck says what it is
    assert p.app_services == ["web"] and p.dependencies == ["records"]
    assert "#   records: dependency, Redis-compatible key-value store: healthcheck runs redis-cli ping" in text
    # web serves only /: that is what is written, with the status seen, and no /health anywhere
    assert [(e.name, e.url, e.expect_status) for e in p.smoke.endpoints] == [
        ("web", f"http://127.0.0.1:{port}/", [200])], text
    assert f"answered 200 when `runbook init` asked (before it: /health 404" in text
    assert [[e.url for e in d.endpoints] for d in p.smoke.drills] == [[f"http://127.0.0.1:{port}/"]]
    assert p.production.expected_env == {} and p.production.env_overrides == {}
    # the starter file, run on every phase but the redeployment (the read-only ones, and phase 4: its health
    # endpoint and a drill of records, our own stack's): nothing the starter invented comes back as a FAIL
    r = run_cli("run", "--params", str(out), "--phase", "00_preflight", "--phase", "02_secrets_security",
                "--phase", "03_production_mode", "--phase", "04_smoke_tests", "--phase", "05_signoff",
                "--output", str(tmp_path / "outputs"), "--format", "json", timeout=900)
    assert r.returncode in (0, 1), r.stdout[-3000:] + r.stderr[-3000:]
    _, records = load_run(Path(json.loads(r.stdout)["run_dir"]))
    failed = {(x["id"], x["target"]): x["actual"] for x in records if x["status"] in ("FAIL", "ERROR")}
    assert not set(failed) - set(TRUE_PROBLEMS), failed
    judged = {(x["id"], x["target"]): x["status"] for x in records}
    assert judged[("smoke.health", "web")] == "PASS"           # the endpoint written is one that answers
