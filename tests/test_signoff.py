"""Phase 5: waivers, the verdict policy, signatures, machine-readable outputs, and the report as a
browser shows it with the network off."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from runbook_lib.errors import ParametersError
from runbook_lib.params import Policy, Waiver, load_waivers
from runbook_lib.policy import apply_waivers, decide
from runbook_lib.records import CheckRecord

from conftest import ROOT, load_run, run_dir_from

TODAY = date(2026, 11, 29)


def rec(status="FAIL", severity="high", id_="prod.healthcheck", target="loki", evidence=None):
    return CheckRecord(id=id_, phase="03_production_mode", title="t", target=target, status=status,
                       severity=severity, expected="e", actual="a", evidence=evidence or {"seen": 1})


def waiver(**kw):
    base = dict(check="prod.healthcheck", target="loki", justification="log store migrates next sprint",
                owner="sre-team", approver="cto", expires=TODAY + timedelta(days=7))
    return Waiver(**{**base, **kw})


# -- policy, pure ---------------------------------------------------------------------------------
def test_a_fail_with_a_matching_unexpired_waiver_is_waived_and_go():
    recs, outcome = apply_waivers([rec(), rec("PASS", id_="x", target="y")], [waiver()], TODAY)
    assert [r.status for r in recs] == ["WAIVED", "PASS"]
    assert recs[0].evidence["waiver"]["owner"] == "sre-team" and recs[0].evidence["waiver"]["original_status"] == "FAIL"
    d = decide(recs, Policy(), outcome)
    assert d.verdict == "GO" and [r.target for r in d.waived] == ["loki"]


def test_the_same_waiver_expired_is_not_applied_and_no_go_lists_it_as_expired():
    recs, outcome = apply_waivers([rec()], [waiver(expires=TODAY - timedelta(days=1))], TODAY)
    d = decide(recs, Policy(), outcome)
    assert recs[0].status == "FAIL" and d.verdict == "NO-GO"
    assert [w.check for w, _ in outcome.expired] == ["prod.healthcheck"] and "expired" in d.rationale


def test_a_waiver_that_matches_nothing_is_stale_and_one_for_another_target_does_not_apply():
    recs, outcome = apply_waivers([rec(target="turn")], [waiver(target="loki")], TODAY)
    assert recs[0].status == "FAIL" and outcome.stale and not outcome.applied


def test_applying_waivers_twice_gives_the_same_records_and_expiry_undoes_an_earlier_waiver():
    once, _ = apply_waivers([rec()], [waiver()], TODAY)
    twice, _ = apply_waivers(once, [waiver()], TODAY)
    assert once == twice
    later, outcome = apply_waivers(once, [waiver()], TODAY + timedelta(days=30))
    assert later[0].status == "FAIL" and outcome.expired


def test_a_required_check_that_errors_or_is_skipped_is_no_go_whatever_else_passed():
    passing = [rec("PASS", id_=f"c{i}", target="t") for i in range(20)]
    policy = Policy(required_checks=["smoke.*"])
    assert decide(passing + [rec("ERROR", "info", id_="smoke.flow")], policy).verdict == "NO-GO"
    assert decide(passing + [rec("SKIP", "info", id_="smoke.flow")], policy).verdict == "NO-GO"
    assert decide(passing + [rec("SKIP", "info", id_="other.thing")], policy).verdict == "GO"


def test_a_waiver_without_justification_or_expiry_is_refused_naming_the_file_and_key(tmp_path):
    f = tmp_path / "waivers.yaml"
    f.write_text("waivers:\n  - {check: prod.healthcheck, owner: a, approver: b, expires: 2027-01-01}\n")
    with pytest.raises(ParametersError, match=r"waivers.yaml: key 'waivers.0.justification'"):
        load_waivers(f)
    f.write_text("waivers:\n  - {check: prod.healthcheck, justification: long enough text, owner: a, approver: b}\n")
    with pytest.raises(ParametersError, match="expires"):
        load_waivers(f)


def test_the_secureconnect_example_waivers_load_and_each_expires():
    ws = load_waivers(ROOT / "parameters" / "secureconnect-waivers.yaml")
    assert len(ws) == 3 and all(w.expires and w.justification and w.owner and w.approver for w in ws)


# -- through the CLI, on the real engine -----------------------------------------------------------
@pytest.fixture
def planted_fail(tmp_path):
    """A compose override declaring a secret whose host file is world-writable: preflight FAILs
    (critical) on it. Nothing is deployed: the run is preflight and sign-off only."""
    secret = tmp_path / "planted_secret.txt"
    secret.write_text("planted-value-for-waiver-test\n")
    os.chmod(secret, 0o666)
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({  # Compose drops secrets no service uses, so one service lists it
        "services": {"api-gateway": {"secrets": ["planted_secret"]}},
        "secrets": {"planted_secret": {"file": str(secret)}}}))
    return override


def _run_with_waiver(cli, write_params, tmp_path, override, expires: date, key: Path):
    wf = tmp_path / "waivers.yaml"
    wf.write_text(yaml.safe_dump({"waivers": [{
        "check": "preflight.secret_files", "target": "planted_secret",
        "justification": "test fixture: the planted secret is throwaway", "owner": "qa", "approver": "lead",
        "expires": expires.isoformat()}]}))
    params = write_params({"policy.waivers_file": str(wf), "phases": ["00_preflight", "05_signoff"],
                           "signoff.signing_key": str(key), "signoff.generate_missing_key": True,
                           "signoff.approver": "release-manager"}, name=f"p-{expires}.yaml")
    return cli("run", "--params", str(params), "--output", str(tmp_path / "out"),
               "--compose", str(ROOT / "demo" / "compose.yaml"), "--compose", str(override))


@pytest.mark.docker
def test_a_waived_fail_gives_go_and_the_expired_waiver_gives_no_go(demo_stack, cli, write_params, tmp_path, planted_fail):
    key = tmp_path / "keys" / "sign.pem"
    today = date.today()
    ok = _run_with_waiver(cli, write_params, tmp_path, planted_fail, today + timedelta(days=30), key)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run_dir = run_dir_from(ok.stdout)
    summary, records = load_run(run_dir)
    assert summary["verdict"] == "GO" and summary["waived"] == ["preflight.secret_files@planted_secret"]
    assert summary["waivers"]["applied"][0]["check"] == "preflight.secret_files"
    r = next(r for r in records if r["target"] == "planted_secret")
    assert r["status"] == "WAIVED" and r["evidence"]["waiver"]["original_status"] == "FAIL"
    assert "planted-value" not in (run_dir / "report.html").read_text()
    signed = next(r for r in records if r["id"] == "signoff.block")
    assert signed["evidence"]["approver"] == "release-manager" and signed["evidence"]["compose_files"]
    assert cli("verify", str(run_dir), "--key", str(key) + ".pub").returncode == 0

    expired = _run_with_waiver(cli, write_params, tmp_path, planted_fail, today - timedelta(days=1), key)
    assert expired.returncode == 1
    summary, records = load_run(run_dir_from(expired.stdout))
    assert summary["verdict"] == "NO-GO" and "preflight.secret_files@planted_secret" in summary["blockers"]
    assert summary["waivers"]["expired"][0]["would_waive"] == ["preflight.secret_files@planted_secret"]
    assert summary["waived"] == []


@pytest.fixture(scope="module")
def signed_run(demo_stack, tmp_path_factory):
    """One real, signed run (preflight and sign-off) of the demo stack, shared by the tests below."""
    from conftest import run_cli

    demo_stack.up(progress=lambda s: None)
    tmp = tmp_path_factory.mktemp("signed")
    key = tmp / "sign.pem"
    params = demo_stack.write_params(tmp / "p.yaml", {"phases": ["00_preflight", "05_signoff"],
                                                      "signoff": {"signing_key": str(key), "generate_missing_key": True}})
    proc = run_cli("run", "--params", str(params), "--output", str(tmp / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return run_dir_from(proc.stdout), key


@pytest.mark.docker
def test_changing_one_byte_of_any_file_makes_verify_fail_naming_it(signed_run, cli, tmp_path):
    import shutil

    run_dir, key = signed_run
    assert cli("verify", str(run_dir), "--key", str(key) + ".pub").returncode == 0
    files = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file())
    assert Path("manifest.json.sig") in files and Path("manifest.json") in files
    for rel in files:
        copy = tmp_path / f"copy-{len(str(rel))}-{rel.name}"
        shutil.copytree(run_dir, copy)
        target = copy / rel
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        proc = cli("verify", str(copy), "--key", str(key) + ".pub")
        assert proc.returncode == 1, f"tampering with {rel} went unnoticed:\n{proc.stdout}"
        named = str(rel)
        assert named in proc.stdout, proc.stdout
        shutil.rmtree(copy)


@pytest.mark.docker
def test_verify_with_another_key_fails(signed_run, cli, tmp_path):
    run_dir, _ = signed_run
    assert cli("keygen", "--out", str(tmp_path / "other.pem")).returncode == 0
    proc = cli("verify", str(run_dir), "--key", str(tmp_path / "other.pem.pub"))
    assert proc.returncode == 1 and "bad signature" in proc.stdout


@pytest.mark.docker
def test_junit_and_summary_follow_their_contracts(signed_run):
    run_dir, _ = signed_run
    summary, records = load_run(run_dir)
    assert {"schema", "project", "verdict", "started", "finished", "counts", "blockers", "waived", "phases"} <= set(summary)
    assert summary["schema"] == 1 and summary["verdict"] in ("GO", "NO-GO")
    assert sum(summary["counts"].values()) == len(records)
    root = ET.parse(run_dir / "junit.xml").getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(records)
    for suite in root.findall("testsuite"):
        recs = [r for r in records if r["phase"] == suite.get("name")]
        assert int(suite.get("tests")) == len(recs)
        assert int(suite.get("failures")) == sum(r["status"] == "FAIL" for r in recs)
        assert int(suite.get("errors")) == sum(r["status"] == "ERROR" for r in recs)


@pytest.mark.docker
def test_the_report_renders_offline_in_headless_chromium_with_no_request_and_no_console_error(signed_run):
    from browser import open_page

    run_dir, _ = signed_run
    artifacts = Path(os.environ.get("RUNBOOK_TEST_ARTIFACTS", ROOT / "outputs" / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with open_page((run_dir / "report.html").as_uri()) as (page, log):
        banner = page.locator(".rb-banner").first
        assert banner.is_visible() and banner.inner_text().startswith("GO")
        assert page.locator("table.rb-table").count() >= 5
        assert page.locator("text=Verification table").count() >= 1
        page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    assert log.requests == [(run_dir / "report.html").as_uri()], log.requests
    assert log.console_errors == [] and log.page_errors == []
    assert (artifacts / "report.png").stat().st_size > 10_000
