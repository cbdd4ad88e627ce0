"""Phase 4, smoke tests: probes, Prometheus parsing and flows as pure logic against tiny local HTTP
servers; then the phase against the real demo stack (drills included), a demo override that breaks
chat-service's degraded mode, and a hostile endpoint whose answer must not reach the report raw."""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runbook_lib.drills import faults

from runbook_lib.drills import probes
from runbook_lib.params import load_params
from runbook_lib.params.sections import FlowStep
from runbook_lib.errors import ParametersError

from conftest import PARAMS, ROOT, run_dir_from


# -- a local HTTP server the unit tests talk to -------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        route = self.routes.get((self.command, self.path.split("?")[0]))
        if route is None:
            status, ctype, payload = 404, "application/json", b'{"error": "not found"}'
        else:
            status, ctype, payload = route(self, body)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """Start a threaded HTTP server on 127.0.0.1 with the given routes; returns its base URL."""
    servers = []

    def _serve(routes: dict) -> str:
        handler = type("H", (_Handler,), {"routes": routes})
        server_cls = type("S", (ThreadingHTTPServer,), {"request_queue_size": 128})  # default 5 drops SYNs
        srv = server_cls(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        srv.seen = []
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield _serve
    for s in servers:
        s.shutdown()
        s.server_close()


def _json(status, data):
    return lambda _h, _b: (status, "application/json", json.dumps(data).encode())


# -- templates, JSON paths, excerpts ----------------------------------------------------------------------
def test_templates_fill_captured_values_and_secrets_and_keep_types():
    secret = {"pw": "s3cr3t-value"}.__getitem__
    out = probes.render({"u": "{{ user }}", "n": "{{ n }}", "p": "x-{{ secret:pw }}", "l": ["{{user}}"]},
                        {"user": "demo", "n": 3}, secret)
    assert out == {"u": "demo", "n": 3, "p": "x-s3cr3t-value", "l": ["demo"]}


def test_a_template_naming_an_uncaptured_value_says_which_values_are_known():
    with pytest.raises(probes.TemplateError, match=r"\{\{ token \}\} is not a captured value \(known: run_id\)"):
        probes.render("Bearer {{ token }}", {"run_id": "abc"})


def test_json_paths_find_nested_fields_and_list_items_or_say_missing():
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}, "token": "t"}
    assert probes.json_path(data, "$.token") == "t"
    assert probes.json_path(data, "$.a.b[1].c") == 2
    assert probes.json_path(data, "$.a.b[5]") is probes.MISSING
    assert probes.json_path([{"x": 1}], "$[0].x") == 1
    assert probes.json_path(data, "$") == data


def test_an_excerpt_is_truncated_and_says_how_big_the_body_was():
    text = probes.excerpt(b"A" * 1000, 5_000_000, chars=50)
    assert text.startswith("A" * 50) and "[truncated: 5000000 bytes in total]" in text and len(text) < 120


def test_sensitive_headers_never_enter_evidence():
    h = probes.safe_headers({"Authorization": "Bearer abc.def", "X-Api-Key": "k", "Accept": "text/plain"})
    assert h == {"Authorization": "[REDACTED header]", "X-Api-Key": "[REDACTED header]", "Accept": "text/plain"}


# -- Prometheus text -------------------------------------------------------------------------------------
METRICS = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200"} 3
# HELP up_gauge A gauge.
# TYPE up_gauge gauge
up_gauge 1
"""


def test_prometheus_text_parses_and_a_counter_answers_to_its_total_name():
    m = probes.parse_metrics(METRICS)
    assert m.families == {"http_requests": "counter", "up_gauge": "gauge"}
    assert {"http_requests_total", "up_gauge"} <= m.names and m.samples == 2


def test_text_that_is_not_prometheus_exposition_is_refused():
    with pytest.raises(ValueError, match="not Prometheus text exposition"):
        probes.parse_metrics("<html><body>hello</body></html>\n")


# -- probes and flows against a local server ---------------------------------------------------------------
def test_a_metrics_endpoint_answering_200_with_no_metric_fails_and_one_with_metrics_passes(serve, write_params):
    """An empty 200 (a catch-all route, a registry with nothing in it) parses as text exposition with no family:
    it exposes nothing, so it is no PASS, even when the parameters ask for no family by name."""
    from runbook_lib.params import load_params
    from runbook_lib.phases.smoke.endpoints import metrics
    from runbook_lib.run.context import Context

    text = lambda body: lambda _h, _b: (200, "text/plain; version=0.0.4", body)  # noqa: E731
    base = serve({("GET", "/empty"): text(b""), ("GET", "/comments"): text(b"# nothing here\n"),
                  ("GET", "/metrics"): text(METRICS.encode())})
    params = write_params({"smoke.metrics": [{"name": n, "url": f"{base}/{n}"} for n in ("empty", "comments", "metrics")]})
    recs = {r.target: r for r in metrics(Context(params=load_params(params), progress=lambda s: None))}
    for name in ("empty", "comments"):
        assert recs[name].status == "FAIL" and "answered 200 with no metric" in recs[name].actual, recs[name].actual
    assert recs["metrics"].status == "PASS" and recs["metrics"].evidence["families"] == 2


def test_probing_twenty_slow_endpoints_takes_about_as_long_as_one(serve):
    def slow(_h, _b):
        time.sleep(0.3)
        return 200, "text/plain", b"ok"

    base = serve({("GET", f"/e{i}"): slow for i in range(20)})
    targets = [probes.ProbeTarget(f"e{i}", f"{base}/e{i}") for i in range(20)]
    t0 = time.monotonic()
    one = probes.probe_all(targets[:1])
    t1 = time.monotonic()
    many = probes.probe_all(targets)
    t2 = time.monotonic()
    assert [r.status for r in one + many] == [200] * 21
    assert (t2 - t1) < 3 * (t1 - t0) + 0.3, f"1 endpoint {t1 - t0:.2f}s, 20 endpoints {t2 - t1:.2f}s"


def test_a_refused_connection_is_retried_then_reported_as_data_not_raised():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    [r] = probes.probe_all([probes.ProbeTarget("gone", f"http://127.0.0.1:{port}/health", timeout_s=2)], retries=2)
    assert r.status is None and r.attempts == 3 and "Connect" in r.error


def test_a_flow_captures_a_token_uses_it_later_and_checks_fields(serve):
    def login(_h, body):
        ok = json.loads(body) == {"user": "demo", "password": "pw-value-123"}
        return (200, "application/json", b'{"token": "tok-123456789", "kind": "Bearer"}') if ok else (401, "application/json", b"{}")

    def me(h, _b):
        ok = h.headers.get("Authorization") == "Bearer tok-123456789"
        return (200, "application/json", b'{"user": "demo"}') if ok else (401, "application/json", b"{}")

    base = serve({("POST", "/login"): login, ("GET", "/me"): me})
    steps = [FlowStep.model_validate(s) for s in (
        {"name": "log in", "method": "POST", "url": f"{base}/login",
         "json": {"user": "demo", "password": "{{ secret:pw }}"}, "capture": {"token": "$.token"},
         "expect_json": {"$.kind": "Bearer"}},
        {"name": "who am i", "url": f"{base}/me", "headers": {"Authorization": "Bearer {{ token }}"},
         "expect_json": {"$.user": "demo"}},
        {"name": "wrong field", "url": f"{base}/me", "headers": {"Authorization": "Bearer {{ token }}"},
         "expect_json": {"$.user": "alice"}},
        {"name": "never reached", "url": f"{base}/me"},
    )]
    results, variables = probes.run_flow(steps, secret={"pw": "pw-value-123"}.__getitem__)
    assert [r.status for r in results] == ["PASS", "PASS", "FAIL", "SKIP"]
    assert variables["token"] == "tok-123456789"
    assert "$.user is 'demo', expected 'alice'" in results[2].actual
    ev = json.dumps([r.evidence for r in results])
    # the request as written: the secret's name, never its value; no Authorization value
    assert "{{ secret:pw }}" in ev and "pw-value-123" not in ev and "Bearer tok" not in ev
    assert results[0].evidence["status"] == 200 and "latency_ms" in results[0].evidence


def test_a_flow_step_compares_a_stored_object_read_back_byte_for_byte(serve):
    store: dict = {}

    def put(h, body):
        store[h.path] = body
        return 201, "application/json", b"{}"

    def get(h, _b):
        return 200, "application/octet-stream", store.get(h.path.replace("/get", "/put"), b"")

    base = serve({("PUT", "/put/x"): put, ("GET", "/get/x"): get})
    steps = [FlowStep(name="store", method="PUT", url=f"{base}/put/x", body="object {{ run_id }}", expect_status=[201]),
             FlowStep(name="read back", url=f"{base}/get/x", expect_body="object {{ run_id }}")]
    results, variables = probes.run_flow(steps)
    assert [r.status for r in results] == ["PASS", "PASS"] and results[1].evidence["body_matches"] is True
    steps[1] = FlowStep(name="read back", url=f"{base}/get/x", expect_body="something else")
    results, _ = probes.run_flow(steps)
    assert results[1].status == "FAIL" and "differs" in results[1].actual


def test_smoke_parameters_refuse_json_and_body_together_and_bad_json_paths(write_params):
    with pytest.raises(ParametersError, match="give `json` or `body`, not both"):
        load_params(write_params({"smoke.flow": [{"name": "x", "url": "http://h/", "json": {}, "body": "b"}]}))
    with pytest.raises(ParametersError, match="not a JSON path"):
        load_params(write_params({"smoke.flow": [{"name": "x", "url": "http://h/", "capture": {"t": "token"}}]}))
    with pytest.raises(ParametersError, match=r"unknown key 'smoke.drills\[0\].mod'.*did you mean 'mode'"):
        load_params(write_params({"smoke.drills": [{"dependency": "redis", "mod": "stop",
                                                    "endpoints": [{"name": "e", "url": "http://h/"}]}]}))
    with pytest.raises(ParametersError, match=r"smoke.turn\[0\].url"):
        load_params(write_params({"smoke.turn": [{"name": "t", "url": "stun:h:3478", "username": "u",
                                                  "password_secret": "p"}]}))


def test_demo_parameters_hold_secret_names_never_values():
    text = (PARAMS / "demo.yaml").read_text()
    values = [p.read_text().strip() for p in (ROOT / "demo" / ".secrets").iterdir()] if (ROOT / "demo" / ".secrets").is_dir() else []
    assert "{{ secret:demo_user_password }}" in text and not any(v in text for v in values)
    p = load_params(PARAMS / "demo.yaml")
    assert [d.dependency for d in p.smoke.drills] == ["redis", "minio", "postgres"]
    assert all(d.duration_s <= 5 for d in p.smoke.drills)


def test_a_timeline_png_is_drawn_with_the_fault_window(tmp_path):
    pts = [{"t": i * 0.25, "status": 200 if not 4 <= i < 12 else 503, "latency_ms": 5, "ok": not 4 <= i < 12} for i in range(20)]
    out = faults.draw_timeline(tmp_path / "t.png", title="x", lanes=[("a", "must_fail", pts), ("b", "available", pts)],
                               fault=(1.0, 3.0), restored=3.1, recovered=3.2)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- against the real demo stack ---------------------------------------------------------------------
def _records(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "results" / "04_smoke_tests.json").read_text())


@pytest.mark.docker
@pytest.mark.slow
def test_the_demo_stack_passes_phase_4_with_both_drills_and_their_timelines(healthy_demo, demo_params, engine, cli, tmp_path):
    proc = cli("run", "--params", str(demo_params), "--phase", "04_smoke_tests", "--output", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    run_dir = run_dir_from(proc.stdout)
    recs = _records(run_dir)
    by = {(r["id"], r["target"]): r for r in recs}
    assert all(r["status"] == "PASS" for r in recs), [(r["id"], r["target"], r["actual"]) for r in recs if r["status"] != "PASS"]
    for svc in ("api-gateway", "auth-service", "chat-service", "video-service", "storage-service"):
        assert by[("smoke.health", svc)]["evidence"]["status"] == 200
        assert by[("smoke.metrics", svc)]["evidence"]["missing"] == []
    assert [r["target"] for r in recs if r["id"] == "smoke.flow"] == [
        "log in", "register a user", "log in as the new user", "post a chat message", "read the chat room", "start a video call", "read the video call",
        "store an object", "read the object back"]
    # designed degraded behaviour, observed
    assert by[("smoke.drill.redis", "chat-service message")]["evidence"]["during_fault"]["statuses"] .keys() == {"202"}
    assert by[("smoke.drill.redis", "video-service call")]["evidence"]["during_fault"]["statuses"].keys() == {"503"}
    assert by[("smoke.drill.redis", "auth-service login")]["evidence"]["during_fault"]["statuses"].keys() == {"200"}
    assert by[("smoke.drill.minio", "storage-service store")]["evidence"]["during_fault"]["statuses"].keys() == {"503"}
    for dep in ("redis", "minio"):
        ev = by[(f"smoke.drill.{dep}", dep)]["evidence"]
        assert ev["recovery_s"] is not None and ev["dependency_ready_s"] is not None
        assert (run_dir / ev["timeline"]).read_bytes()[:4] == b"\x89PNG"
        assert json.loads(Path(ev["journal"]).read_text())["state"] == "restored"
    assert all(v.ready for v in engine.project_containers(healthy_demo.project))
    html = (run_dir / "report.html").read_text()
    assert len(re.findall(r"<img[^>]+src=\"data:image/png;base64,", html)) >= 2
    assert "smoke.drill.redis" in html and "smoke.drill.minio" in html
    # no secret, no token, no Authorization value anywhere in the run directory
    secrets = [p.read_text().strip() for p in (ROOT / "demo" / ".secrets").iterdir()]
    for f in run_dir.rglob("*"):
        if f.is_file() and f.suffix != ".png":
            text = f.read_text(errors="replace")
            assert not any(s in text for s in secrets), f"secret value in {f}"
            assert not re.search(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ", text), f"a JWT in {f}"
            assert not re.search(r"Bearer [A-Za-z0-9]", text), f"an Authorization value in {f}"


@pytest.mark.docker
@pytest.mark.slow
def test_the_redis_drill_fails_naming_chat_service_when_it_fails_hard_without_redis(healthy_demo, demo_params, cli, write_params, tmp_path):
    params = load_params(demo_params)
    redis = params.smoke.drills[0].model_dump(mode="json", by_alias=True)
    params_file = write_params({"smoke.drills": [redis]})
    healthy_demo.up(overrides=["chat-fails-without-redis.yaml"], progress=lambda s: None)
    try:
        proc = cli("run", "--params", str(params_file), "--phase", "04_smoke_tests", "--output", str(tmp_path))
    finally:
        healthy_demo.up(progress=lambda s: None)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    run_dir = run_dir_from(proc.stdout)
    fails = [r for r in _records(run_dir) if r["status"] == "FAIL"]
    assert [(r["id"], r["target"]) for r in fails] == [("smoke.drill.redis", "chat-service message")]
    chat = fails[0]
    assert "not available while redis was down" in chat["actual"] and "503" in chat["actual"]
    assert chat["evidence"]["during_fault"]["statuses"].keys() == {"503"}
    assert (run_dir / chat["evidence"]["timeline"]).is_file()
    # the console names it, grouped by check: "blocker: smoke.drill.redis: FAIL on 1 of 4 targets (high): chat-service message"
    assert any(line.strip().startswith("blocker: smoke.drill.redis: FAIL on 1 of") and line.endswith(": chat-service message")
               for line in proc.stdout.splitlines()), proc.stdout


@pytest.mark.docker
def test_a_hostile_endpoint_leaves_its_markup_escaped_and_its_body_truncated_in_the_report(demo_stack, serve, cli, write_params,
                                                                                            tmp_path):
    big = b"<script>alert(1)</script>" + b"A" * (5 * 1024 * 1024)
    base = serve({("GET", "/hostile"): lambda _h, _b: (200, "text/html", big)})
    params = write_params({"smoke": {"endpoints": [{"name": "hostile", "url": f"{base}/hostile"}]}})
    proc = cli("run", "--params", str(params), "--phase", "04_smoke_tests", "--output", str(tmp_path / "out"))
    run_dir = run_dir_from(proc.stdout)
    rec = next(r for r in _records(run_dir) if r["id"] == "smoke.health")
    assert rec["status"] == "PASS" and rec["target"] == "hostile", rec
    assert rec["evidence"]["body_excerpt"].startswith("<script>alert(1)</script>AAA")
    assert f"[truncated: {len(big)} bytes in total]" in rec["evidence"]["body_excerpt"]
    html = (run_dir / "report.html").read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert len(html) < 2_000_000, "the 5 MB body reached the report"
    assert all(f.stat().st_size < 2_000_000 for f in run_dir.rglob("*") if f.is_file())


def test_default_health_endpoints_are_asked_where_the_engine_publishes_them(monkeypatch):
    """A port published on every interface of a remote engine (a fleet target, a swarm manager in its own
    network namespace) answers on that engine's host, not on this machine's loopback (which, with a local
    stack on the same port, answered for the wrong deployment)."""
    from runbook_lib.phases.smoke.endpoints import host_base_url

    port = {"protocol": "tcp", "published": "8080", "host_ip": ""}
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert host_base_url(port) == "http://127.0.0.1:8080"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.231.241.30:2375")
    assert host_base_url(port) == "http://10.231.241.30:8080"
    assert host_base_url({**port, "host_ip": "0.0.0.0"}) == "http://10.231.241.30:8080"
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@prod.example.invalid")
    assert host_base_url(port) == "http://prod.example.invalid:8080"
    assert host_base_url({**port, "host_ip": "::1"}) == "http://[::1]:8080"
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    assert host_base_url(port) == "http://127.0.0.1:8080"
