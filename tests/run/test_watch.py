"""`runbook watch` on the session's demo stack, as a process a user starts: a SIGTERM ends it cleanly (between
runs at once; during a run after the runner has interrupted it, the cut-short run not published), the engine
going away makes an ERROR run and the loop goes on, a parameters file made invalid while it runs is logged and
counted and the loop goes on. The watched phase is preflight alone (the loop is the subject, not the checks).

The engine going away: DOCKER_HOST at a socket the test controls that passes every byte to the shared engine
(watchers.SocketProxy); taking it away is what a restarting dockerd looks like from a client (the socket
gone, open connections cut), and the shared engine is never restarted."""
from __future__ import annotations

import json

import pytest

from watchers import SocketProxy, Watcher, free_port, runs_in

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PREFLIGHT = ("--phase", "00_preflight")


def _watch(params, out, *args, env=None) -> Watcher:
    return Watcher("--params", str(params), "--output", str(out), *PREFLIGHT, *args,
                   listen=f"127.0.0.1:{free_port('127.0.0.1')}", env=env)


def test_sigterm_ends_the_watch_cleanly_between_runs_and_during_one(healthy_demo, demo_params, tmp_path):
    out = tmp_path / "out"
    w = _watch(demo_params, out, "--every", "10m")
    try:
        assert w.published(300).startswith("runbook watch: GO"), w.text
        w.wait_line("runbook watch: ", 5)
        assert w.get("/healthz").text.startswith("waiting; next run at")
        rc, took = w.terminate(30)
        assert rc == 0 and took < 10 and "runbook watch: stopped (SIGTERM)" in w.text, w.text
    finally:
        w.kill()
    w2 = _watch(demo_params, out, "--every", "10m")
    try:
        before = set(runs_in(out))
        from conftest import wait_for

        wait_for(lambda: set(runs_in(out)) - before, 300, "the second watcher's run to start", interval=0.2)
        assert w2.get("/healthz").text.startswith("running run 1")
        rc, _ = w2.terminate(300)
        assert rc == 0 and "was cut short (not published)" in w2.text, w2.text
        [cut] = set(runs_in(out)) - before
        assert (out / "latest").resolve() != cut  # the cut-short run is not what the watcher published
        assert "stopped (SIGTERM)" in w2.text
    finally:
        w2.kill()


def test_the_engine_going_away_is_an_error_run_and_the_loop_goes_on(healthy_demo, demo_params, tmp_path):
    proxy = SocketProxy(tmp_path / "engine.sock")
    proxy.start()
    out = tmp_path / "out"
    w = _watch(demo_params, out, "--every", "2s", env={"DOCKER_HOST": proxy.docker_host})
    try:
        assert w.published(300).startswith("runbook watch: GO"), w.text
        proxy.stop()
        mark = len(w.lines)
        line = w.published(300)
        assert line.startswith("runbook watch: NO-GO"), w.text
        run_dir = out / line.rsplit(": ", 1)[1].split("/")[-1]
        records = [r for p in (run_dir / "results").glob("*.json") for r in json.loads(p.read_text())]
        errors = [r for r in records if r["status"] == "ERROR"]
        assert errors, records
        print("ERROR records of the run without an engine:", sorted({(r["id"], r["actual"][:90]) for r in errors}))
        assert (run_dir / "manifest.json.sig").is_file()  # a normal signed run directory
        assert w.metric("runbook_run_errors_total") >= 1 and w.metric("runbook_verdict") == 0
        assert w.get("/healthz").status_code == 200
        proxy.start()  # the engine is back: the loop goes on to a GO
        w.wait_line("runbook watch: GO", 300, mark)
        assert w.metric("runbook_verdict") == 1
        assert w.proc.poll() is None
    finally:
        w.kill()
        proxy.stop()


def test_a_parameters_file_made_invalid_while_watching_is_logged_and_the_loop_goes_on(healthy_demo, demo_params, tmp_path):
    params = tmp_path / "params.yaml"
    good = demo_params.read_text()
    params.write_text(good)
    out = tmp_path / "out"
    w = _watch(params, out, "--every", "2s")
    try:
        assert w.published(300).startswith("runbook watch: GO"), w.text
        params.write_text(good.replace("app_services:", "app_servics:", 1))
        mark = len(w.lines)
        line = w.wait_line("ERROR: no run:", 120, mark)
        assert str(params) in line and "app_servics" in line, line
        runs = set(runs_in(out))
        assert w.metric("runbook_run_errors_total") >= 1
        assert w.metric("runbook_verdict") == 1  # the last verdict stays published (and ages: RunbookStale)
        assert w.get("/healthz").status_code == 200
        params.write_text(good)
        w.wait_line("runbook watch: GO", 300, len(w.lines))
        assert len(set(runs_in(out)) - runs) >= 1
        rc, _ = w.terminate(300)
        assert rc == 0
    finally:
        w.kill()
