"""Phase 1's probe load and its judgement (``redeploy.probe_load``, ``redeploy.outage``), without an engine: the
load asks an HTTP server of the test's own, which the test stops for a while (the planted outage)."""
from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from conftest import PARAMS

from runbook_lib.params import load_params
from runbook_lib.phases.redeploy import downtime
from runbook_lib.run.context import Context


class _Server:
    """A tiny HTTP server on one loopback port that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.httpd: http.server.HTTPServer | None = None

    def start(self) -> None:
        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        http.server.HTTPServer.allow_reuse_address = True
        self.httpd = http.server.HTTPServer(("127.0.0.1", self.port), Ok)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _ctx(tmp_path, port: int, **redeploy) -> Context:
    params = load_params(PARAMS / "demo.yaml")
    probe = params.redeploy.probe.model_copy(update={
        "rate": 20, "endpoints": [downtime.ProbeEndpoint(name="local", url=f"http://127.0.0.1:{port}/health",
                                                        timeout_s=0.5)]})
    rd = params.redeploy.model_copy(update={"probe": probe, **redeploy})
    return Context(params=params.model_copy(update={"redeploy": rd}), run_dir=tmp_path, progress=lambda s: None)


def test_an_outage_over_budget_fails_redeploy_outage_with_its_window_and_timeline(tmp_path):
    server = _Server()
    server.start()
    ctx = _ctx(tmp_path, server.port, max_outage_s=0.3, over_outage="fail")
    [started] = downtime.start_probe_load(ctx)
    assert started.id == "redeploy.probe_load" and started.status == "INFO"
    try:
        time.sleep(0.5)
        down = time.monotonic()
        server.stop()  # the planted outage: nothing listens for about a second
        time.sleep(1.0)
        server.start()
        down = time.monotonic() - down
        time.sleep(0.5)
    finally:
        [rec] = downtime.outage(ctx)
        server.stop()
    assert not ctx.state.probe_load.loop._thread.is_alive()  # the load stopped with the phase
    assert (rec.id, rec.status, rec.severity) == ("redeploy.outage", "FAIL", "high"), rec.actual
    ev = rec.evidence
    assert 0.5 <= ev["longest_failure_ms"] / 1000 <= down + 1.0, (ev["longest_failure_ms"], down)  # a busy machine
    assert ev["longest_failure_endpoint"] == "local" and ev["failed"] > 0 and ev["sent"] > ev["failed"]
    assert ev["first_failure_ms"] >= 400 and ev["last_failure_ms"] > ev["first_failure_ms"]
    assert "ConnectError" in ev["by_endpoint"]["local"]["failed_by"]
    assert (tmp_path / ev["timeline"]).is_file() and ev["timeline"] == str(downtime.TIMELINE)
    assert "over the 0.3s budget" in rec.actual


def test_no_request_sent_is_an_error_and_no_load_is_a_skip_never_a_pass(tmp_path):
    ctx = _ctx(tmp_path, 9, max_outage_s=5)
    [skip] = downtime.outage(ctx)
    assert skip.status == "SKIP"
    ctx.state.probe_load = downtime.start_load(ctx.params.redeploy.probe.endpoints, rate=1, max_s=0)  # ends at once
    ctx.state.probe_load.loop._thread.join(5)
    [rec] = downtime.outage(ctx)
    assert rec.status == "ERROR" and "sent no request" in rec.actual


def test_the_outage_window_counts_failures_by_status_and_error_and_the_demo_keeps_it_a_warning():
    pts = [{"t": 0.0, "status": 200, "latency_ms": 5, "ok": True},
           {"t": 0.1, "status": 502, "latency_ms": 5, "ok": False},
           {"t": 0.2, "status": None, "latency_ms": 1, "ok": False, "error": "ConnectError: refused"},
           {"t": 0.5, "status": 200, "latency_ms": 5, "ok": True},
           {"t": 0.9, "status": None, "latency_ms": 500, "ok": False, "error": "timed out after 0.5s"}]
    s = downtime.summarize({"gw": pts, "idle": [{"t": 0.0, "status": 200, "latency_ms": 1, "ok": True}]})
    assert (s["sent"], s["failed"]) == (6, 3)
    assert s["by_endpoint"]["gw"]["failed_by"] == {"502": 1, "ConnectError": 1, "timed out": 1}
    assert (s["first_failure_ms"], s["last_failure_ms"], s["longest_failure_ms"]) == (100, 1400, 500)
    assert s["longest_failure_window_ms"] == [900, 1400] and s["by_endpoint"]["idle"]["failed"] == 0
    demo = load_params(PARAMS / "demo.yaml").redeploy
    assert (demo.max_outage_s, demo.over_outage, demo.probe.rate) == (0, "warn", 10)


def test_an_interrupt_during_the_phase_stops_the_probe_load(tmp_path):
    from runbook_lib.run.phase import PhaseSession

    ctx = _ctx(tmp_path, 9)
    session = PhaseSession("01_controlled_redeployment", ctx)

    def interrupted(ctx):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session.run(downtime.start_probe_load, interrupted)
    ctx.state.probe_load.loop._thread.join(5)
    assert not ctx.state.probe_load.loop._thread.is_alive()


def test_a_load_that_stopped_by_itself_before_the_phase_ended_is_not_a_pass(tmp_path):
    """redeploy.probe.max_s shorter than the phase: what came after it was not watched. Within budget so
    far is ERROR naming the unwatched seconds; an outage over budget seen before it stays a FAIL."""
    server = _Server()
    server.start()
    try:
        ctx = _ctx(tmp_path, server.port, max_outage_s=5, over_outage="fail")
        ctx.state.probe_load = downtime.start_load(ctx.params.redeploy.probe.endpoints, rate=20, max_s=0.5)
        time.sleep(1.5)  # the phase goes on for a second after the load stopped
        [rec] = downtime.outage(ctx)
        assert rec.status == "ERROR", rec.actual
        assert 0.5 <= rec.evidence["unobserved_s"] <= 1.5 and rec.evidence["sent"] > 0 and rec.evidence["failed"] == 0
        assert "were not watched" in rec.actual and "redeploy.probe.max_s" in rec.remediation

        ctx = _ctx(tmp_path, server.port, max_outage_s=5, over_outage="fail")  # the whole phase watched: PASS
        ctx.state.probe_load = downtime.start_load(ctx.params.redeploy.probe.endpoints, rate=20, max_s=30)
        time.sleep(0.5)
        [rec] = downtime.outage(ctx)
        assert rec.status == "PASS" and "unobserved_s" not in rec.evidence, rec.actual

        ctx = _ctx(tmp_path, server.port, max_outage_s=0.2, over_outage="fail")  # an outage seen before it stopped
        ctx.state.probe_load = downtime.start_load(ctx.params.redeploy.probe.endpoints, rate=20, max_s=1.5)
        time.sleep(0.3)
        server.stop()
        time.sleep(0.8)
        server.start()
        time.sleep(1.0)
        [rec] = downtime.outage(ctx)
        assert rec.status == "FAIL" and rec.evidence["unobserved_s"] > 0, rec.actual
    finally:
        server.stop()
