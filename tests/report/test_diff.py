"""Runs as pandas frames, `runbook diff`, compare.ipynb and `runbook run --baseline`.

Two real runs of the demo (phases 00, 03 and 05: read-only), on a compose project of this module's own
(`rbdiff-<random>`, no published port) so the shared demo stack is never touched: a GO, then the same
stack with chat-service on another image (a new image id) and ENV=staging."""
from __future__ import annotations

import io
import json
import re
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli, run_dir_from

PUBLISHED = ("api-gateway", "auth-service", "chat-service", "video-service", "storage-service", "prometheus", "alertmanager",
             "coturn")
PHASES = ("--phase", "00_preflight", "--phase", "03_production_mode", "--phase", "05_signoff")


def _params(tmp: Path, name: str, project: str, files: list[Path], key: Path) -> Path:
    data = yaml.safe_load((ROOT / "parameters" / "demo.yaml").read_text())
    data["project"] = project
    data["compose_files"] = [str(f) for f in files]
    data["env_files"] = [str(ROOT / "demo" / "offline.env")]
    for k in ("prometheus_url", "alertmanager_url"):
        data["production"].pop(k, None)
    data["redeploy"]["leftover_containers"] = [f"{project}-adhoc-*"]
    data["signoff"] = {"signing_key": str(key), "generate_missing_key": True}
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def two_runs():
    """(GO run, NO-GO run made with --baseline GO run, the changed image's id, the fault override)."""
    import docker

    import runbook_demo as demo
    from runbook_lib.engine.compose import Compose

    demo.ensure_secrets()
    demo.build_images(progress=lambda s: None)
    # its own directory, not pytest's basetemp: other sessions on this machine rotate those away
    tmp = Path(tempfile.mkdtemp(prefix="rbdiff-"))
    project = f"rbdiff-{secrets.token_hex(3)}"
    tag = f"runbook-demo/app:{project}"
    noports = tmp / "no-ports.yaml"
    noports.write_text("services:\n" + "".join(f"  {s}:\n    ports: !reset []\n" for s in PUBLISHED))
    fault = tmp / "chat-staging.yaml"
    fault.write_text(f"services:\n  chat-service:\n    image: {tag}\n    environment:\n      ENV: staging\n")
    base = [ROOT / "demo" / "compose.yaml", noports]
    client = docker.from_env()
    image, _ = client.images.build(fileobj=io.BytesIO(b"FROM runbook-demo/app:local\nLABEL runbook.test=rbdiff\n"),
                                   tag=tag, rm=True, pull=False)
    stack = Compose(base, project=project, env_files=[ROOT / "demo" / "offline.env"])
    changed = Compose([*base, fault], project=project, env_files=[ROOT / "demo" / "offline.env"])
    key = tmp / "sign.pem"
    try:
        stack.up(wait=True, timeout=180)
        out = tmp / "out"
        proc = run_cli("run", "--params", str(_params(tmp, "go.yaml", project, base, key)), *PHASES, "--output", str(out))
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        go = run_dir_from(proc.stdout)
        # every container recreated from the three files (else each one's config_files label is drift)
        changed.run("up", "-d", "--force-recreate", "--wait", "--wait-timeout", "180", timeout=240)
        proc = run_cli("run", "--params", str(_params(tmp, "nogo.yaml", project, [*base, fault], key)), *PHASES,
                       "--output", str(out), "--baseline", str(go))
        assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
        yield go, run_dir_from(proc.stdout), image.id, fault
    finally:
        changed.down(volumes=True)
        try:
            client.images.remove(tag)
        except docker.errors.APIError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.docker
@pytest.mark.slow
def test_diff_names_exactly_the_new_blocker_the_changed_service_and_the_changed_digest(two_runs):
    go, nogo, image_id, fault = two_runs
    proc = run_cli("diff", str(go), str(nogo), "--format", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    d = json.loads(proc.stdout)
    assert (d["old"]["verdict"], d["new"]["verdict"]) == ("GO", "NO-GO")
    assert [b["ref"] for b in d["new_blockers"]] == ["prod.env@chat-service"]
    assert d["resolved_blockers"] == []
    assert d["services"] == {"new": [], "removed": [], "changed": ["chat-service"]}
    [img] = d["images"]
    assert img["service"] == "chat-service" and img["digest_changed"]
    # the sign-off block records the short image id (sha256:<12 hex>): the content digest of a local image
    assert image_id.startswith(img["new_id"]) and not image_id.startswith(img["old_id"])
    assert [c["service"] for c in d["config_hashes"]] == ["chat-service"]
    assert {"kind": "compose_file", "file": str(fault), "old": None} == {k: v for k, v in d["compose_files"][0].items() if k != "new"}
    assert {(c["ref"], c["old"], c["new"]) for c in d["status_changes"]} >= {("prod.env@chat-service", "PASS", "FAIL")}
    text = run_cli("diff", str(go), str(nogo))
    assert text.returncode == 1 and "prod.env@chat-service" in text.stdout and image_id[:19] in text.stdout
    md = run_cli("diff", str(go), str(nogo), "--format", "md")
    assert md.stdout.startswith("## runbook diff: GO → NO-GO") and "| prod.env@chat-service | FAIL |" in md.stdout


@pytest.mark.docker
@pytest.mark.slow
def test_exit_1_means_the_new_run_has_blockers_the_old_one_did_not(two_runs):
    go, nogo, _, _ = two_runs
    back = run_cli("diff", str(nogo), str(go), "--format", "json")  # the fault fixed: resolved, nothing new
    assert back.returncode == 0, back.stdout + back.stderr
    d = json.loads(back.stdout)
    assert d["new_blockers"] == [] and [b["ref"] for b in d["resolved_blockers"]] == ["prod.env@chat-service"]
    assert d["resolved_blockers"][0]["now"] == "PASS"
    same = run_cli("diff", str(nogo), str(nogo), "--format", "json")  # blockers, but none new
    assert same.returncode == 0 and json.loads(same.stdout)["new_blockers"] == []


@pytest.mark.docker
@pytest.mark.slow
def test_the_report_of_a_baseline_run_says_what_changed_since_the_last_go(two_runs):
    go, nogo, _, _ = two_runs
    b = json.loads((nogo / "baseline.json").read_text())
    assert b["new_blockers"] == ["prod.env@chat-service"] and b["fixed"] == [] and b["images_changed"] == ["chat-service"]
    assert b["baseline"]["run_id"] == go.name and b["baseline"]["verdict"] == "GO"
    assert "baseline.json" in json.loads((nogo / "manifest.json").read_text())["files"]
    assert "baseline" not in json.loads((nogo / "verdict.json").read_text())
    html = (nogo / "report.html").read_text()
    first_screen = html[html.index("class='rb-banner'"):html.index("id='verification-table'")]
    assert "Since the last GO" in first_screen and "1 new blocker, 0 fixed, 1 image changed" in first_screen
    assert run_cli("verify", str(nogo)).returncode == 0
    again = run_cli("report", str(nogo))  # the line comes from the archived baseline.json: re-renders identically
    assert again.returncode == 1 and "identical" in again.stdout, again.stdout + again.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_compare_notebook_renders_offline_in_headless_chromium(two_runs, tmp_path):
    from browser import open_page

    go, nogo, image_id, _ = two_runs
    page_file = tmp_path / "compare.html"
    proc = run_cli("diff", str(go), str(nogo), "--html", str(page_file))
    assert proc.returncode == 1 and page_file.is_file(), proc.stdout + proc.stderr[-3000:]
    html = page_file.read_text()
    assert not re.search(r"<script|<iframe|<link[^>]+href=|src=[\"']?(https?:|//)", html, re.I)
    with open_page(page_file.as_uri()) as (page, log):
        banner = page.locator(".rb-banner").first
        assert banner.is_visible() and banner.inner_text().startswith("GO → NO-GO")
        assert page.locator("table.rb-table").count() >= 5
        body = page.inner_text("body")
        assert "prod.env@chat-service" in body and image_id[:19] in body
    assert log.requests == [page_file.as_uri()], log.requests
    assert log.console_errors == [] and log.page_errors == []


@pytest.mark.docker
@pytest.mark.slow
def test_diff_refuses_a_tampered_run_naming_the_file_and_a_baseline_that_does_not_verify(two_runs, tmp_path):
    go, nogo, _, _ = two_runs
    copy = tmp_path / nogo.name
    shutil.copytree(nogo, copy)
    target = copy / "results" / "03_production_mode.json"
    target.write_text(target.read_text().replace('"FAIL"', '"PASS"', 1))
    proc = run_cli("diff", str(go), str(copy))
    assert proc.returncode == 1 and "results/03_production_mode.json" in proc.stderr, proc.stdout + proc.stderr
    assert proc.stdout == ""  # nothing compared
    proc = run_cli("run", "--params", str(ROOT / "parameters" / "demo.yaml"), "--baseline", str(copy),
                   "--output", str(tmp_path / "never"))
    assert proc.returncode == 2 and "results/03_production_mode.json" in proc.stderr
    assert not (tmp_path / "never").exists()
    proc = run_cli("diff", str(go), str(tmp_path))
    assert proc.returncode == 2 and "manifest.json" in proc.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_runs_load_as_one_frame_one_row_per_record(two_runs):
    from runbook_lib.results.frames import COLUMNS, load_records

    go, nogo, _, _ = two_runs
    df = load_records(go, nogo)
    assert list(df.columns) == list(COLUMNS)
    n = [len(json.loads(p.read_text())) for run in (go, nogo) for p in (run / "results").glob("*.json")]
    assert len(df) == sum(n)
    assert set(df.run_id) == {go.name, nogo.name} and set(df.engine) == {"local"}
    assert str(df.started.dtype).startswith("datetime64") and df.duration_s.dtype == float
    row = df[(df.run_id == nogo.name) & (df.check_id == "prod.env") & (df.target == "chat-service")].iloc[0]
    assert row.status == "FAIL" and row.waived_by is None and isinstance(row.evidence, dict)


# -- pure: the comparison of records the demo's read-only phases do not make --------------------------
def _run(name: str, records: list, verdict: dict):
    from runbook_lib.results.frames import Run

    base = {"project": "p", "verdict": "GO", "counts": {}, "blockers": [], "waived": [], "waivers": []}
    return Run(Path(f"/runs/{name}"), {**base, **verdict}, records, {"docker_host": "tcp://10.0.0.5:2376"})


def _rec(id_, target, status="PASS", **evidence):
    from runbook_lib.results.records import CheckRecord

    return CheckRecord(id=id_, phase="04_smoke_tests", title="t", target=target, status=status, severity="high",
                       expected="e", actual="a", evidence=evidence or {"seen": 1})


def test_drill_recovery_times_waivers_and_services_are_compared_with_the_ratio():
    from runbook_lib.results.compare import diff_runs
    from runbook_lib.results.diffview import to_markdown, to_text
    from runbook_lib.results.frames import frame

    w = {"id": "W-1", "check": "prod.healthcheck", "target": "loki", "expires": "2026-12-01", "owner": "sre"}
    old = _run("a", [_rec("smoke.drill.redis", "redis", recovery_s=1.5), _rec("prod.drift", "chat", config_hash={"compose": "h1"}),
                     _rec("prod.drift", "gone", config_hash={"compose": "h9"})],
               {"waivers": [{**w, "state": "applied"}]})
    new = _run("b", [_rec("smoke.drill.redis", "redis", recovery_s=4.5), _rec("prod.drift", "chat", config_hash={"compose": "h2"}),
                     _rec("prod.drift", "turn", config_hash={"compose": "h3"})],
               {"waivers": [{**w, "state": "expired"}, {**w, "id": "W-2", "target": "turn", "state": "applied"}]})
    d = diff_runs(old, new)
    assert d.drills == [{"ref": "smoke.drill.redis@redis", "old_s": 1.5, "new_s": 4.5, "ratio": 3.0}]
    assert [x["id"] for x in d.waivers["new"]] == ["W-2"] and [x["id"] for x in d.waivers["expired"]] == ["W-1"]
    assert d.services == {"new": ["turn"], "removed": ["gone"], "changed": ["chat"]}
    assert d.exit_code == 0 and "×3" in to_text(d) and "| smoke.drill.redis@redis | 1.5 | 4.5 | ×3 |" in to_markdown(d)
    assert set(frame([old]).engine) == {"tcp://10.0.0.5:2376"}


def test_status_changes_are_per_check_and_target_and_a_run_compared_with_itself_changes_nothing():
    from runbook_lib.results.compare import diff_runs

    old = _run("a", [_rec("prod.env", "chat"), _rec("prod.env", "video"), _rec("prod.env", "gone")], {})
    new = _run("a", [_rec("prod.env", "chat", "FAIL"), _rec("prod.env", "video"), _rec("prod.env", "turn", "SKIP")],
               {"verdict": "NO-GO", "blockers": [{"ref": "prod.env@chat", "id": "prod.env", "target": "chat",
                                                  "status": "FAIL", "severity": "high", "actual": "ENV is 'staging'"}]})
    d = diff_runs(old, new)
    assert [(c["ref"], c["old"], c["new"]) for c in d.status_changes] == [("prod.env@chat", "PASS", "FAIL")]
    assert (d.only_old, d.only_new, d.exit_code) == (["prod.env@gone"], ["prod.env@turn"], 1)
    same = diff_runs(new, new)
    assert same.status_changes == [] and same.new_blockers == [] and same.exit_code == 0
    back = diff_runs(new, old)
    assert back.exit_code == 0 and back.resolved_blockers[0]["now"] == "PASS"


def test_the_compare_notebook_opened_by_hand_compares_the_newest_run_with_the_newest_go_before_it(tmp_path):
    from runbook_lib.results.compare import latest_pair
    from runbook_lib.errors import InputError

    for name, verdict in (("20261101T000000Z-p", "GO"), ("20261102T000000Z-p", "GO"), ("20261103T000000Z-p", "NO-GO"),
                          ("20261104T000000Z-p", "NO-GO")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
        (tmp_path / name / "verdict.json").write_text(json.dumps({"verdict": verdict}))
    assert [p.name for p in latest_pair(tmp_path)] == ["20261102T000000Z-p", "20261104T000000Z-p"]
    with pytest.raises(InputError, match="fewer than two"):
        latest_pair(tmp_path / "20261101T000000Z-p")
