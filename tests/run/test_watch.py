"""`runbook watch` on the session's demo stack, as a process a user starts: a SIGTERM ends it cleanly (between
runs at once; during a run after the runner has interrupted it, the cut-short run not published); a parameters
file made invalid while it runs is logged and counted and the loop goes on. The watched phase is preflight alone
(the loop is the subject, not the checks). The engine restarting under the watcher: on a second engine of the
test's own, in tests/engine/test_engine_restart.py (the shared engine is never restarted)."""
from __future__ import annotations

import pytest

from conftest import wait_for
from watchers import Watcher, free_port, runs_in

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
        wait_for(lambda: set(runs_in(out)) - before, 300, "the second watcher's run to start", interval=0.2)
        assert w2.get("/healthz").text.startswith("running run 1")
        rc, _ = w2.terminate(300)
        assert rc == 0 and "was cut short (not published)" in w2.text, w2.text
        [cut] = set(runs_in(out)) - before
        assert (out / "latest").resolve() != cut  # the cut-short run is not what the watcher published
        assert "stopped (SIGTERM)" in w2.text
    finally:
        w2.kill()


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
