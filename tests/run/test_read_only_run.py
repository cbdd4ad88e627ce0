"""The read-only first look (`runbook run --read-only`) asks the application over HTTP without changing
it: phase 1 is not run; phase 4 asks health and metrics and runs the flow's safe steps, and records its
drills and the flow's writes SKIP. So a broken application (answering 500, while its container reports
healthy) is NO-GO with smoke.health FAIL, where a healthy one is GO. Real engine, the session's own demo
stack."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import ROOT, load_run, run_dir_from, snapshot

ANSWERS_500 = """
import http.server, signal, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500); self.send_header("Content-Length", "5"); self.end_headers(); self.wfile.write(b"oops\\n")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8083), Handler).serve_forever()
"""


def _read_only_run(cli, params, out, *compose):
    args = [a for f in compose for a in ("--compose", str(f))]
    proc = cli("run", "--params", str(params), "--output", str(out), "--read-only", *args, timeout=900)
    run_dir = run_dir_from(proc.stdout)
    return proc, run_dir, json.loads((run_dir / "verdict.json").read_text()), load_run(run_dir)[1]


@pytest.mark.docker
def test_the_read_only_first_look_asks_the_app_and_changes_nothing(healthy_demo, demo_params, engine, cli, tmp_path):
    before = snapshot(engine, healthy_demo.project)
    proc, run_dir, v, records = _read_only_run(cli, demo_params, tmp_path / "out")
    assert proc.returncode == 0 and v["verdict"] == "GO", proc.stdout + proc.stderr
    assert snapshot(engine, healthy_demo.project) == before  # nothing redeployed, stopped or restarted
    assert json.loads((run_dir / "run.json").read_text())["phases"] == [
        "00_preflight", "02_secrets_security", "03_production_mode", "04_smoke_tests", "05_signoff"]
    by = {(r["id"], r["target"]): r for r in records}
    assert {t for (i, t), r in by.items() if i == "smoke.health" and r["status"] == "PASS"} == {
        "api-gateway", "auth-service", "chat-service", "video-service", "storage-service"}
    assert all(r["status"] == "PASS" for (i, _), r in by.items() if i == "smoke.metrics")
    # the flow: the login (marked safe) runs; from the first write on, SKIP saying why
    assert by[("smoke.flow", "log in")]["status"] == "PASS"
    post = by[("smoke.flow", "register a user")]  # the flow's first write (it adds a row to the user database)
    assert post["status"] == "SKIP" and post["severity"] == "info" and "read-only run" in post["actual"]
    assert "POST may change the deployment" in post["actual"]
    later = by[("smoke.flow", "post a chat message")]
    assert later["status"] == "SKIP" and "stops the flow at step 'register a user'" in later["actual"]
    assert by[("smoke.flow", "read the chat room")]["status"] == "SKIP"  # a GET after a skipped write
    drills = [r for (i, _), r in by.items() if i.startswith("smoke.drill.")]
    assert drills and all(r["status"] == "SKIP" and "read-only run" in r["actual"] for r in drills)
    assert not any(i.startswith("smoke.after_drill.") for i, _ in by)


@pytest.mark.docker
def test_an_app_answering_500_is_no_go_in_the_read_only_first_look(healthy_demo, demo_params, cli, tmp_path):
    override = tmp_path / "answers-500.yaml"
    override.write_text(yaml.safe_dump({"services": {"video-service": {
        "entrypoint": ["python3", "-c", ANSWERS_500], "command": [],
        "healthcheck": {"test": ["CMD", "python3", "-c", "pass"], "interval": "1s"}}}}))
    compose = [*yaml.safe_load(demo_params.read_text())["compose_files"]]
    try:
        healthy_demo.up(overrides=[override], progress=lambda s: None)
        proc, _, v, records = _read_only_run(cli, demo_params, tmp_path / "out", *compose, override)
    finally:
        healthy_demo.up(progress=lambda s: None)
    assert proc.returncode == 1 and v["verdict"] == "NO-GO", proc.stdout + proc.stderr
    health = {r["target"]: r for r in records if r["id"] == "smoke.health"}
    assert health["video-service"]["status"] == "FAIL" and "answered 500" in health["video-service"]["actual"]
    assert "smoke.health@video-service" in [b["ref"] for b in v["blockers"]]
    assert health["api-gateway"]["status"] == "PASS"


def test_a_read_only_run_never_runs_the_redeployment_and_refuses_to_run_only_it(demo_params, cli, tmp_path):
    from runbook_lib.run.validation import read_only_phases

    assert read_only_phases([]) == ["00_preflight", "02_secrets_security", "03_production_mode", "04_smoke_tests",
                                    "05_signoff"]
    assert read_only_phases(["00_preflight", "01_controlled_redeployment"]) == ["00_preflight"]
    proc = cli("run", "--params", str(demo_params), "--output", str(tmp_path / "out"), "--read-only",
               "--phase", "01_controlled_redeployment")
    assert proc.returncode == 2 and not (tmp_path / "out").exists(), proc.stdout + proc.stderr
    assert "--read-only: phase 01_controlled_redeployment only changes the deployment" in proc.stderr
