"""After every drill every endpoint is asked again: a service that never reconnects to its dependency
after the drill leaves production broken, and the run says so in one line on the console and on the
report's first screen ("X still failing after the drill: production is degraded now"), stays NO-GO, and
the drill's record names the wait it really made. Real engine, a two-service compose project of this
test's own: ``dep`` holds TCP connections; ``app`` connects to it once at start and answers 500 for good
once that connection is gone."""
from __future__ import annotations

import json
import secrets
from html.parser import HTMLParser

import pytest
import yaml

from conftest import load_run, run_dir_from
from runbook_demo import free_ports
from runbook_lib.engine.compose import Compose

DEP = """
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("", 7000)); s.listen()
held = []
while True:
    held.append(s.accept()[0])
"""
APP = """
import http.server, signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
conn = None
while conn is None:
    try:
        conn = socket.create_connection(("dep", 7000), timeout=2)
    except OSError:
        time.sleep(0.2)
conn.setblocking(False)
state = {"broken": False}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if not state["broken"]:
            try:
                state["broken"] = conn.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                state["broken"] = True
        code = 500 if state["broken"] else 200
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"no")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
"""
LINE = "app still failing after the drill: production is degraded now"


class _FirstScreen(HTMLParser):
    """The text of the report's first screen (the block of class rb-cover-top)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.text = 0, []

    def handle_starttag(self, tag, attrs):
        if self.depth or "rb-cover-top" in (dict(attrs).get("class") or ""):
            self.depth += 1

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


@pytest.fixture
def never_reconnects(tmp_path):
    """The project up (``app`` answering 200), and a parameters file: phases 0 and 4, ``app``'s / as the
    smoke endpoint, and a stop drill of ``dep`` probing it (it may fail while dep is down)."""
    [port] = free_ports(1)
    project = f"rbtest-reconnect-{secrets.token_hex(4)}"
    compose = tmp_path / "compose.yaml"
    image = {"image": "runbook-demo/app:local", "entrypoint": ["python3", "-c"]}
    compose.write_text(yaml.safe_dump({"services": {
        "dep": {**image, "command": [DEP]},
        "app": {**image, "command": [APP], "depends_on": ["dep"], "ports": [f"127.0.0.1:{port}:8080"]}}}))
    url = f"http://127.0.0.1:{port}/"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "project": project, "compose_files": [str(compose)], "app_services": ["app"], "dependencies": ["dep"],
        "phases": ["00_preflight", "04_smoke_tests"],
        "smoke": {"endpoints": [{"name": "app", "url": url}],
                  "drills": [{"dependency": "dep", "mode": "stop", "duration_s": 1, "baseline_s": 0.5,
                              "recovery_budget_s": 2, "healthy_timeout_s": 4, "flow_after": False,
                              "endpoints": [{"name": "app", "url": url, "expect": "may_fail"}]}]}}))
    stack = Compose(files=[compose], project=project)
    try:
        stack.up(wait=False, timeout=300)
        yield params
    finally:
        stack.down(volumes=True)


@pytest.mark.docker
def test_a_service_that_never_reconnects_after_a_drill_is_named_as_production_degraded(never_reconnects, cli, tmp_path):
    proc = cli("run", "--params", str(never_reconnects), "--output", str(tmp_path / "out"), timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the console: the verdict, then the one line before the blockers
    lines = proc.stdout.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("NO-GO: "))
    assert lines[top + 1].strip() == LINE, proc.stdout
    assert LINE in proc.stderr, proc.stderr  # said when seen, during phase 4, too
    run_dir = run_dir_from(proc.stdout)
    v = json.loads((run_dir / "verdict.json").read_text())
    assert v["verdict"] == "NO-GO"
    assert v["degraded"] == [{"ref": "smoke.after_drill.dep@app", "target": "app", "line": LINE}]
    assert "smoke.after_drill.dep@app" in [b["ref"] for b in v["blockers"]]
    # the report's first screen says it
    screen = _FirstScreen()
    screen.feed((run_dir / "report.html").read_text())
    assert LINE in " ".join(screen.text)
    _, records = load_run(run_dir)
    by = {(r["id"], r["target"]): r for r in records}
    assert by[("smoke.health", "app")]["status"] == "PASS"  # healthy before the drill
    after = by[("smoke.after_drill.dep", "app")]
    assert after["status"] == "FAIL" and after["severity"] == "critical" and after["actual"].startswith(LINE + " (answered 500")
    # the drill's records name the wait it really made: the longer of the budget (2 s) and healthy_timeout_s (4 s)
    ep = by[("smoke.drill.dep", "app")]
    waited = ep["evidence"]["waited_after_restore_s"]
    assert ep["status"] == "FAIL" and waited >= 4, ep["evidence"]
    assert f"not back (answering 200/201/202/204) {waited:g}s after the restore, when the drill stopped waiting " \
           "(budget 2s)" in ep["actual"], ep["actual"]
    dep = by[("smoke.drill.dep", "dep")]
    assert f"not every endpoint back {waited:g}s after the restore (budget 2s)" in dep["actual"], dep["actual"]
