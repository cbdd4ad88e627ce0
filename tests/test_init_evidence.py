"""`runbook init` sorts services from every piece of evidence and writes only endpoints that answered.

The classifier is asked about compose models as `docker compose config` gives them (dicts); the render is
checked through the CLI on compose files of our own; the endpoint probe asks real HTTP servers started
here on free loopback ports (no Docker needed: the probe is plain HTTP)."""
from __future__ import annotations

import http.server
import threading

import pytest
import yaml

from runbook_lib.run.params import load_params
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


@pytest.mark.parametrize("name, spec", [
    ("turn", {"image": "coturn/coturn:4.6", "ports": [{"target": 3478, "published": "3478", "protocol": "udp"}]}),
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
        h = probe("web", {"image": "acme/web"}, {8000: base}, healthcheck_url)
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
        h = probe("web", spec, {8000: base}, healthcheck_url)
    finally:
        srv.shutdown()
    assert (h.url, h.status) == (base + "/live?full=1", 204)
    assert yaml.safe_load(f"x: {h.status}") == {"x": 204}
