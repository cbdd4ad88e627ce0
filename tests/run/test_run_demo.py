"""End to end through the CLI, against the real demo stack on a real engine: `runbook run` redeploys it,
proves it healthy, and writes a run directory that follows the contract."""
from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, load_run, run_dir_from, snapshot

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RECORD_KEYS = {"id", "phase", "title", "target", "status", "severity", "expected", "actual", "evidence",
               "command", "remediation", "started", "duration_s"}


def _run_beside_a_user_demo(healthy_demo, demo_params, engine, cli, tmp_path):
    """`runbook run` on the session's stack (with an ad-hoc container to clean up) while a stand-in user's demo
    runs beside it, which must come out untouched. Returns the run's process and the stack's containers before."""
    import runbook_demo as demo

    project = healthy_demo.project
    (tmp_path / "user").mkdir()
    user = demo.Stack.isolated(tmp_path / "user", prefix="rbuser")
    assert user.project != project and not set(user.ports.values()) & set(healthy_demo.ports.values())
    user.up(progress=lambda s: None)
    try:
        user_before = snapshot(engine, user.project)
        assert len(user_before) == 11, user_before
        before = snapshot(engine, project)
        adhoc = engine.client.containers.run("runbook-demo/app:local", ["300"], entrypoint=["sleep"], detach=True,
                                             name=f"{project}-adhoc-1")
        try:
            proc = cli("run", "--params", str(demo_params), "--output", str(tmp_path))
        finally:
            try:
                adhoc.remove(force=True)
            except Exception:  # noqa: BLE001 - the run is expected to have removed it already
                pass
        assert snapshot(engine, user.project) == user_before, "the user's demo was touched"
        assert all(v.ready for v in engine.project_containers(user.project))
    finally:
        user.down(volumes=True)
    return proc, before


def test_full_run_redeploys_the_demo_stack_and_says_go(healthy_demo, demo_params, engine, cli, tmp_path):
    """The whole runbook on the session's stack, while a user's demo is up beside it.

    The suite owns its stack: the most invasive things it does to it (a redeployment: down, leftovers
    removed, up --remove-orphans; the dependency drills: stop redis, stop minio) never reach a user's demo.
    The "user's" demo here is a stand-in deployed by this test under a name of its own on free ports:
    exactly what `make demo` in another checkout looks like to the suite. A stand-in, not the real
    ``secureconnect-demo``: on a shared engine other people redeploy that one at any moment, so comparing
    it would fail this test for their reasons (``conftest`` still compares the real one, when it is up,
    over the whole session; with ``--user-stack-must-stay`` a change there fails the run)."""
    project = healthy_demo.project
    proc, before = _run_beside_a_user_demo(healthy_demo, demo_params, engine, cli, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"GO: {project}")
    run_dir = run_dir_from(proc.stdout)
    summary, records = load_run(run_dir)

    assert summary["schema"] == 1 and summary["verdict"] == "GO" and summary["blockers"] == []
    assert [p["phase"] for p in summary["phases"]][:2] == ["00_preflight", "01_controlled_redeployment"]
    assert all(p["status"] == "completed" for p in summary["phases"])
    for r in records:
        assert set(r) == RECORD_KEYS, r
        assert r["status"] != "PASS" or r["evidence"], f"PASS without evidence: {r['id']}"
        assert r["status"] != "PASS" or r["actual"].strip().lower() not in ("", "n/a"), f"PASS without a value: {r}"
        assert "n/a" not in r["actual"] or r["status"] != "PASS", f"PASS on a value not observed: {r['id']}@{r['target']}"
    by_id = {(r["id"], r["target"]): r for r in records}
    # every service was found ready, with the health it was judged on
    for svc in ("api-gateway", "auth-service", "chat-service", "video-service", "storage-service", "redis", "minio",
                "postgres", "coturn"):
        r = by_id[("redeploy.service_ready", svc)]
        assert r["status"] == "PASS" and r["evidence"]["container"]["health"] == "healthy"
    assert by_id[("redeploy.init_step", "media bucket")]["status"] == "PASS"
    assert by_id[("redeploy.init_step", "user database schema")]["status"] == "PASS"
    # auth-service's users are rows in PostgreSQL: one written and read back; without the database, no login
    assert all(by_id[("smoke.flow", s)]["status"] == "PASS" for s in ("register a user", "log in as the new user"))
    assert by_id[("smoke.drill.postgres", "auth-service login")]["evidence"]["during_fault"]["statuses"].keys() == {"503"}
    assert by_id[("smoke.drill.postgres", "chat-service message")]["status"] == "PASS"
    # the TURN server spoken to: binding answered, the secret's credentials granted, a wrong password refused
    assert [by_id[("smoke.turn", f"coturn {t}")]["status"] for t in ("binding", "allocation", "wrong password")] == ["PASS"] * 3
    assert by_id[("redeploy.leftovers_removed", f"{project}-adhoc-1")]["status"] == "PASS"
    assert all(r["status"] == "PASS" for r in records if r["id"] == "redeploy.volumes_preserved")
    # it really redeployed: every container is new
    after = snapshot(engine, project)
    assert set(after) == set(before) and all(after[n][0] != before[n][0] for n in after)
    # what users saw: recreate's outage, measured and kept a WARN by the demo's parameters, with its timeline
    outage = by_id[("redeploy.outage", project)]
    assert outage["status"] == "WARN" and outage["evidence"]["failed"] > 0, outage["actual"]
    assert outage["evidence"]["longest_failure_ms"] > 0 and (run_dir / outage["evidence"]["timeline"]).is_file()
    print(f"recreate outage: {outage['actual']}")

    html = (run_dir / "report.html").read_text()
    assert "<script" not in html and not re.search(r"""(src|href)=["']https?://""", html)
    assert ">GO<" in html and "01_controlled_redeployment" in html and "redeploy.service_ready" in html
    downtime = html.index("User-visible downtime")
    assert "data:image/png" in html[downtime:html.index("02_secrets_security", downtime)], "phase 1 shows its timeline"
    assert "phase.run(" not in html, "code cells are hidden by default"
    assert set(p.name for p in run_dir.iterdir()) >= {"params.yaml", "notebooks", "results", "summary.json",
                                                      "report.html", "junit.xml", "summary.md", "manifest.json"}
    # no secret value of the demo in any file of the run directory
    secrets = [p.read_text().strip() for p in (ROOT / "demo" / ".secrets").iterdir()]
    for f in run_dir.rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            assert not any(s in text for s in secrets), f"secret value in {f}"

    _assert_signed_rerendered_and_tamper_evident(run_dir, summary, html, cli)


def assert_first_screen(run_dir, summary):
    """The report's first screen at 1400×900 tells the story: the verdict, the final verification table,
    the blockers, the accepted risks, what was not verified and who signed are all inside it, and every
    number it shows is summary.json's. The screenshot is kept (outputs/test-artifacts/report-first-screen.png;
    docs/report-first-screen.png in the README is a copy of it)."""
    import os
    from pathlib import Path

    from browser import open_page

    artifacts = Path(os.environ.get("RUNBOOK_TEST_ARTIFACTS", ROOT / "outputs" / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with open_page((run_dir / "report.html").as_uri(), width=1400, height=900) as (page, log):
        for sel in (".rb-banner", "#verification-table", "#blockers", "#accepted-risks", "#not-verified", "#signed"):
            box = page.locator(sel).first.bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= 900, f"{sel} is not in the first screen: {box}"
        table = page.locator(".rb-cover table.rb-table").first
        box = table.bounding_box()
        assert box["y"] + box["height"] <= 900, f"the verification table runs past the first screen: {box}"
        page.screenshot(path=str(artifacts / "report-first-screen.png"))
        banner = page.locator(".rb-banner").first.inner_text()
        rows = [[c.inner_text().strip() for c in row.locator("td").all()] for row in table.locator("tbody tr").all()]
    assert log.requests == [(run_dir / "report.html").as_uri()] and not log.console_errors
    assert banner.startswith(summary["verdict"])
    counts_line = " · ".join(f"{s} {n}" for s, n in summary["counts"].items() if n)
    assert counts_line in banner, banner
    shown = {r[0]: (r[1], r[2]) for r in rows}
    assert list(shown) == [c["name"] for c in summary["categories"]]
    for cat in summary["categories"]:
        status, records = shown[cat["name"]]
        assert status == cat["status"]
        expect = " · ".join(f"{s} {n}" for s, n in cat["counts"].items()) or "no judged record"
        assert records == expect + (f" · {cat['info']} INFO" if cat["info"] else ""), (cat, records)
    assert (artifacts / "report-first-screen.png").stat().st_size > 20_000


def test_a_service_that_never_gets_healthy_is_no_go_with_its_health_log(healthy_demo, cli, write_params, tmp_path):
    # phases 0 and 1 only: the NO-GO is phase 1's; the later phases would only add minutes to the suite
    params = write_params({"redeploy.healthy_timeout_s": 40, "phases": ["00_preflight", "01_controlled_redeployment"]})
    proc = cli("run", "--params", str(params), "--output", str(tmp_path),
               "--compose", str(ROOT / "demo" / "compose.yaml"),
               "--compose", str(ROOT / "demo" / "overrides" / "broken-health.yaml"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_dir = run_dir_from(proc.stdout)
    summary, records = load_run(run_dir)
    assert summary["verdict"] == "NO-GO"
    assert "redeploy.service_ready@chat-service" in summary["blockers"]
    r = next(r for r in records if r["id"] == "redeploy.service_ready" and r["target"] == "chat-service")
    assert r["status"] == "FAIL" and "unhealthy" in r["actual"]
    assert r["expected"].startswith("running and healthy")
    assert r["evidence"]["health_log"], "the failing health checks are the evidence"
    html = (run_dir / "report.html").read_text()
    assert "chat-service" in html and "last health check exited" in html and "NO-GO" in html


def test_volume_removal_without_confirmation_exits_2_and_touches_nothing(healthy_demo, engine, cli, write_params, tmp_path):
    before = snapshot(engine, healthy_demo.project)
    params = write_params({"redeploy.remove_volumes": True})
    proc = cli("run", "--params", str(params), "--output", str(tmp_path))
    assert proc.returncode == 2
    assert "confirm_volume_removal" in proc.stderr and "Nothing was touched" in proc.stderr
    assert snapshot(engine, healthy_demo.project) == before
    assert not any(tmp_path.glob(f"*-{healthy_demo.project}")), "no run directory for a refused run"


def test_confirmed_volume_removal_archives_every_volume_first(healthy_demo, engine, cli, write_params, tmp_path):
    vols_before = {v["name"]: v["created"] for v in engine.project_volumes(healthy_demo.project)}
    assert vols_before, "the demo stack has named volumes"
    # phases 0 and 1: the archive, the removal and the re-creation are phase 1's (the full run covers the rest)
    params = write_params({"redeploy.remove_volumes": True, "redeploy.confirm_volume_removal": healthy_demo.project,
                           "phases": ["00_preflight", "01_controlled_redeployment"]})
    proc = cli("run", "--params", str(params), "--output", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = run_dir_from(proc.stdout)
    _, records = load_run(run_dir)
    archived = {r["target"] for r in records if r["id"] == "redeploy.volume_archive" and r["status"] == "PASS"}
    assert archived == set(vols_before)
    for name in vols_before:
        assert (run_dir / "volumes" / f"{name}.tar").stat().st_size > 0
    vols_after = {v["name"]: v["created"] for v in engine.project_volumes(healthy_demo.project)}
    assert all(vols_after[n] != c for n, c in vols_before.items()), "the volumes were really re-created"


def _assert_signed_rerendered_and_tamper_evident(run_dir, summary, html, cli):
    # the demo signs its archive by default, and a second person verifies it with the public key
    assert (run_dir / "manifest.json.sig").is_file()
    ok = cli("verify", str(run_dir), "--key", str(ROOT / "demo" / ".secrets" / "signing.pem.pub"))
    assert ok.returncode == 0 and "made by the trusted key" in ok.stdout, ok.stdout
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "GO" and verdict["counts"] == summary["counts"]
    # what this run could not look at is named as not verified: the demo has no Grafana and no Loki
    assert {"prod.observability@grafana", "prod.observability@loki"} <= {n["ref"] for n in verdict["not_verified"]}
    assert "prod.observability@loki" in html and "Not verified by this run" in html
    rerendered = cli("report", str(run_dir))
    assert rerendered.returncode == 0 and "identical to the archived one" in rerendered.stdout, rerendered.stdout
    assert cli("verify", str(run_dir)).returncode == 0
    assert_first_screen(run_dir, summary)
    target = run_dir / "results" / "00_preflight.json"
    data = bytearray(target.read_bytes())
    data[10] ^= 1
    target.write_bytes(bytes(data))
    bad = cli("verify", str(run_dir))
    assert bad.returncode == 1 and "changed: results/00_preflight.json" in bad.stdout
