"""A fleet on the main engine alone (the session's own demo stack, ``rbtest-*``), beside unreachable and hung
targets: a fleet's directory verified file by file, an unreachable or hung target an ERROR for it, quickly, a
rollout that stops at the first NO-GO target, SIGINT reaching every target, a target's time budget. The fleets
over two engines: test_fleet.py."""
from __future__ import annotations

import json
import time

from conftest import run_dir_from
from fleets import MAIN_HOST, PHASES, fleet_params, records_of, run_no_go


def test_tampering_with_a_target_file_or_a_targets_manifest_fails_the_fleet_verify(demo_stack, stack, tmp_path, cli):
    import shutil

    params = fleet_params(stack, tmp_path / "fleet.yaml", [{"name": "main", "docker_host": MAIN_HOST}],
                          {"phases": ["00_preflight"]})
    proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"), timeout=600)
    run = run_dir_from(proc.stdout)
    assert cli("verify", str(run)).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    f = run / "targets" / "main" / "results" / "00_preflight.json"
    f.write_text(f.read_text() + " ")
    bad = cli("verify", str(run))
    assert bad.returncode == 1 and "changed: targets/main/results/00_preflight.json" in bad.stdout, bad.stdout
    m = copy / "targets" / "main" / "manifest.json"  # not listed in the fleet's manifest: checked on its own
    m.write_text(m.read_text().replace('"sha256"', '"sha256" ', 1))
    bad = cli("verify", str(copy))
    assert bad.returncode == 1 and "changed: targets/main/manifest.json" in bad.stdout, bad.stdout


def test_an_unreachable_target_is_an_error_for_it_quickly_and_the_other_still_runs(demo_stack, stack, tmp_path, cli):
    params = fleet_params(stack, tmp_path / "fleet.yaml", [
        {"name": "main", "docker_host": MAIN_HOST},
        {"name": "gone", "docker_host": f"unix://{tmp_path}/no-such-engine.sock"}], {"phases": ["00_preflight"]})
    proc, run, took = run_no_go(cli, params, tmp_path / "out", timeout=300)
    v = json.loads((run / "verdict.json").read_text())
    assert v["verdict"] == "NO-GO" and v["fleet"]["no_go"] == ["gone"], v["fleet"]
    own = {(r["id"], r["target"]): r for r in records_of(run)}
    reach = own[("fleet.target_reachable", "gone")]
    assert reach["status"] == "ERROR" and "no-such-engine.sock" in reach["actual"] + json.dumps(reach["evidence"])
    assert own[("fleet.target_verdict", "gone")]["status"] == "ERROR"
    assert own[("fleet.target_reachable", "main")]["status"] == "PASS"
    assert own[("fleet.target_verdict", "main")]["status"] == "PASS", own[("fleet.target_verdict", "main")]
    assert not (run / "targets" / "gone").exists()
    assert (run / "targets" / "main" / "results" / "00_preflight.json").is_file()
    assert cli("verify", str(run)).returncode == 0
    assert "identical" in cli("report", str(run)).stdout
    assert took < 120, f"an unreachable target took {took:.0f} s"
    print(f"unreachable target: fleet run of phase 0 in {took:.1f} s")


def test_a_rollout_stops_at_the_first_no_go_target_and_the_rest_skip_only_their_destructive_phases(
        demo_stack, stack, tmp_path, cli, engine):
    """Phases 0 and 1 (a redeploy): targets one at a time, in order. The first is unreachable (NO-GO), so the
    second runs its preflight but its redeploy is recorded SKIP with the reason, and its stack is untouched."""
    from conftest import snapshot

    before = snapshot(engine, stack.project)
    params = fleet_params(stack, tmp_path / "fleet.yaml", [
        {"name": "gone", "docker_host": f"unix://{tmp_path}/no-such-engine.sock"},
        {"name": "main", "docker_host": MAIN_HOST}], {"phases": ["00_preflight", "01_controlled_redeployment"]})
    proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"), timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "rolled one target at a time" in proc.stderr
    run = run_dir_from(proc.stdout)
    recs = {r["phase"]: r for r in records_of(run / "targets" / "main") if r["id"] == "runner.phase"}
    skip = recs["01_controlled_redeployment"]
    assert skip["status"] == "SKIP" and "rollout stopped: target gone is NO-GO" in skip["actual"], skip
    main_pre = [r for r in records_of(run / "targets" / "main") if r["phase"] == "00_preflight"]
    assert main_pre and "00_preflight" not in recs  # preflight ran (its own records), no runner record for it
    assert snapshot(engine, stack.project) == before  # nothing redeployed
    v = json.loads((run / "verdict.json").read_text())
    assert v["fleet"]["no_go"] == ["gone", "main"]
    verdict_rec = next(r for r in records_of(run) if r["id"] == "fleet.target_verdict" and r["target"] == "main")
    assert verdict_rec["evidence"]["rollout_stopped"] == "rollout stopped: target gone is NO-GO (unreachable)"


def test_sigint_reaches_every_target_and_the_fleet_directory_is_still_written(demo_stack, stack, tmp_path):
    import signal

    from conftest import start_cli

    params = fleet_params(stack, tmp_path / "fleet.yaml", [{"name": "main", "docker_host": MAIN_HOST}])
    proc = start_cli("run", "--params", str(params), "--output", str(tmp_path / "out"))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "main: [1/3] 00_preflight: running" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    lines.append(out)
    text = "".join(lines)
    assert proc.returncode == 130, text
    assert "SIGINT: interrupting every target's run" in text
    run = run_dir_from(text)
    main = json.loads((run / "targets" / "main" / "summary.json").read_text())
    assert [p["status"] for p in main["phases"]][1:] == ["skipped", "skipped"], main["phases"]
    assert json.loads((run / "verdict.json").read_text())["verdict"] == "NO-GO"
    assert (run / "manifest.json").is_file() and (run / "report.html").is_file()


def test_an_engine_that_accepts_but_never_answers_is_an_error_after_the_call_deadline(stack, tmp_path, cli):
    """A hung engine (its socket accepts, nothing ever answers), not a dead one: bounded by engine.call_timeout_s."""
    import socket
    import threading

    sock_path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # held open, never answered
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    params = fleet_params(stack, tmp_path / "fleet.yaml", [{"name": "hung", "docker_host": f"unix://{sock_path}"}],
                          {"phases": ["00_preflight"], "engine": {"call_timeout_s": 3}})
    try:
        t0 = time.monotonic()
        proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"), timeout=120)
        took = time.monotonic() - t0
    finally:
        stop.set()
        server.close()
        for c in held:
            c.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = run_dir_from(proc.stdout)
    [reach] = [r for r in records_of(run) if r["id"] == "fleet.target_reachable"]
    assert reach["status"] == "ERROR" and "timed out" in reach["actual"].lower(), reach["actual"]
    assert took < 30, f"a hung engine held the fleet run for {took:.0f} s"
    print(f"hung engine: ERROR after {took:.1f} s (call_timeout_s 3)")


def test_a_target_overrunning_its_time_budget_is_interrupted_and_recorded(demo_stack, stack, tmp_path, cli):
    # a 60 s observation window in phase 3 and sign-off after it: the 15 s budget always runs out before the
    # last phase, whatever the machine's speed (with the last phase interrupted, nothing is left to skip), and
    # after the target's run has made its run directory even on a loaded machine (a 4 s budget could end it
    # before: the target was then "not run", an ERROR)
    params = fleet_params(stack, tmp_path / "fleet.yaml", [{"name": "main", "docker_host": MAIN_HOST}],
                          {"fleet": {"target_timeout_s": 15}, "phases": PHASES + ["05_signoff"],
                           "production.observe_s": 60})
    proc, run, took = run_no_go(cli, params, tmp_path / "out", timeout=300)
    [rec] = [r for r in records_of(run) if r["id"] == "fleet.target_verdict"]
    assert rec["status"] == "FAIL" and rec["actual"].startswith("interrupted after fleet.target_timeout_s (15 s); NO-GO")
    phases = json.loads((run / "targets" / "main" / "summary.json").read_text())["phases"]
    assert "skipped" in [p["status"] for p in phases], phases
    assert cli("verify", str(run)).returncode == 0
    print(f"target budget 15 s: fleet run ended after {took:.1f} s")
