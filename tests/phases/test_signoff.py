"""Phase 5: waivers, the verdict policy, signatures, machine-readable outputs, and the report as a
browser shows it with the network off."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from runbook_lib.errors import ParametersError
from runbook_lib.params import load_waivers
from runbook_lib.params.sections import Policy, Waiver
from runbook_lib.results.policy import apply_waivers, decide, effective_status, tally
from runbook_lib.results.records import CheckRecord

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
def test_a_fail_with_a_matching_unexpired_waiver_counts_as_waived_and_go_and_the_record_is_unchanged():
    recs = [rec(), rec("PASS", id_="x", target="y")]
    before = [r.to_dict() for r in recs]
    outcome = apply_waivers(recs, [waiver()], TODAY)
    assert [r.to_dict() for r in recs] == before  # records are never rewritten
    assert [effective_status(r, outcome) for r in recs] == ["WAIVED", "PASS"]
    assert outcome.note(recs[0]) == f"waived by W-1 until {(TODAY + timedelta(days=7)).isoformat()}"
    d = decide(recs, Policy(), outcome)
    assert d.verdict == "GO" and [r.target for r in d.waived] == ["loki"]


def test_the_same_waiver_expired_is_not_applied_and_no_go_lists_it_as_expired():
    recs = [rec()]
    outcome = apply_waivers(recs, [waiver(expires=TODAY - timedelta(days=1))], TODAY)
    d = decide(recs, Policy(), outcome)
    assert effective_status(recs[0], outcome) == "FAIL" and d.verdict == "NO-GO"
    assert [w.check for _, w, _ in outcome.expired] == ["prod.healthcheck"] and "expired" in d.rationale


def test_a_waiver_that_matches_nothing_is_stale_and_one_for_another_target_does_not_apply():
    outcome = apply_waivers([rec(target="turn")], [waiver(target="loki")], TODAY)
    assert outcome.stale and not outcome.applied and not outcome.covering


def test_waivers_are_judged_on_the_given_date_and_named_by_their_id_or_position():
    recs = [rec(), rec(target="turn")]
    ws = [waiver(), waiver(target="turn", id="TURN-1")]
    now = apply_waivers(recs, ws, TODAY)
    assert [now.note(r).split(" until")[0] for r in recs] == ["waived by W-1", "waived by TURN-1"]
    later = apply_waivers(recs, ws, TODAY + timedelta(days=30))
    assert not later.covering and len(later.expired) == 2


def test_info_records_never_block_never_count_as_pass_and_alone_are_no_go():
    facts = [rec("INFO", "info", id_="preflight.current_state", target="p")]
    assert decide(facts, Policy()).verdict == "NO-GO"  # nothing was judged
    d = decide(facts + [rec("PASS", id_="x", target="y")], Policy())
    assert d.verdict == "GO" and tally(facts, apply_waivers(facts, [], TODAY))["PASS"] == 0


def test_a_pass_needs_evidence_and_an_observed_value():
    with pytest.raises(ValueError, match="evidence"):
        CheckRecord(id="x", phase="p", title="t", target="t", status="PASS", severity="high", expected="e",
                    actual="seen", evidence={})
    for empty in ("", "n/a", "N/A"):
        with pytest.raises(ValueError, match="observed value"):
            CheckRecord(id="x", phase="p", title="t", target="t", status="PASS", severity="high", expected="e",
                        actual=empty, evidence={"seen": 1})


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
def planted_override(tmp_path: Path, *names: str) -> Path:
    """A compose override declaring secrets whose host files are empty: preflight FAILs (critical) on
    each; and one secret holding a value (that passes), which no output may show. Nothing is deployed:
    the runs are preflight and sign-off only."""
    valued = tmp_path / f"valued-{'-'.join(names)}.txt"
    valued.write_text("planted-value-for-waiver-test\n")
    os.chmod(valued, 0o400)
    secrets = {"planted_valued": {"file": str(valued)}}
    for name in names:
        secret = tmp_path / f"{name}.txt"
        secret.write_text("")
        os.chmod(secret, 0o400)
        secrets[name] = {"file": str(secret)}
    override = tmp_path / f"override-{'-'.join(names)}.yaml"
    override.write_text(yaml.safe_dump({  # Compose drops secrets no service uses, so one service lists them
        "services": {"api-gateway": {"secrets": list(secrets)}}, "secrets": secrets}))
    return override


@pytest.fixture
def planted_fail(tmp_path):
    return planted_override(tmp_path, "planted_secret")


def _run_with_waivers(cli, write_params, tmp_path, override, waivers: list[dict], key: Path, name: str):
    wf = tmp_path / f"waivers-{name}.yaml"
    base = {"justification": "test fixture: the planted secret is throwaway", "owner": "qa", "approver": "lead"}
    wf.write_text(yaml.safe_dump({"waivers": [{**base, **w} for w in waivers]}))
    params = write_params({"policy.waivers_file": str(wf), "phases": ["00_preflight", "05_signoff"],
                           "signoff.signing_key": str(key), "signoff.generate_missing_key": True,
                           "signoff.approver": "release-manager"}, name=f"p-{name}.yaml")
    compose = [a for f in yaml.safe_load(params.read_text())["compose_files"] for a in ("--compose", f)]
    return cli("run", "--params", str(params), "--output", str(tmp_path / "out"), *compose, "--compose", str(override))


class _Banners(HTMLParser):
    """The text of every element of class rb-banner (the report's top banner and the sign-off's)."""

    def __init__(self) -> None:
        super().__init__()
        self.banners: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if self._depth:
            self._depth += 1
        elif "rb-banner" in (dict(attrs).get("class") or ""):
            self._depth = 1
            self.banners.append("")

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.banners[-1] += data


def assert_outputs_agree(run_dir: Path, returncode: int) -> dict:
    """Verdict, counts and blockers are the verdict file's in the report's banner, the sign-off section,
    summary.json, summary.md, junit.xml and the exit code."""
    v = json.loads((run_dir / "verdict.json").read_text())
    blockers = [b["ref"] for b in v["blockers"]]
    assert returncode == (0 if v["verdict"] == "GO" else 1)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["verdict"], summary["counts"], summary["blockers"], summary["records"]) == \
        (v["verdict"], v["counts"], blockers, v["records"])
    assert summary["waived"] == [w["ref"] for w in v["waived"]]
    assert sum(p["blockers"] for p in summary["phases"]) == len(blockers)
    md = (run_dir / "summary.md").read_text()
    assert md.startswith(f"## {v['verdict']}: {v['project']}")
    assert " · ".join(f"{s} {n}" for s, n in v["counts"].items() if n) in md
    from runbook_lib.results.verdict import describe_group, grouped

    for cid, rows, total in grouped(v["blockers"], v):
        assert f"- {describe_group(cid, rows, total)}" in md
    for cat in v["categories"]:
        assert f"| {cat['name']} | {cat['status']} |" in md
    assert str(run_dir / "report.html") in md
    root = ET.parse(run_dir / "junit.xml").getroot()
    failing = {f"{c.get('classname').split('.', 1)[1]}@{c.get('name')}" for c in root.iter("testcase")
               if c.find("failure") is not None or c.find("error") is not None}
    assert failing == set(blockers)
    assert sum(1 for _ in root.iter("testcase")) == v["records"]
    # ...and as a JUnit consumer reads it: its failures and errors are the blockers, waived cases are skipped
    # with the waiver named, every other case passes
    from junitparser import Error, Failure, JUnitXml, Skipped

    xml = JUnitXml.fromfile(str(run_dir / "junit.xml"))
    seen = {"failing": set(), "skipped": {}}
    for suite in xml:
        for case in suite:
            ref = f"{case.classname.split('.', 1)[1]}@{case.name}"
            kinds = {type(r) for r in case.result}
            if kinds & {Failure, Error}:
                seen["failing"].add(ref)
            elif Skipped in kinds:
                seen["skipped"][ref] = case.result[0].message
    assert seen["failing"] == set(blockers)
    for w in v["waived"]:
        assert w["note"] in seen["skipped"][w["ref"]]
    parser = _Banners()
    parser.feed((run_dir / "report.html").read_text())
    top, signoff_banner = parser.banners[0], parser.banners[-1]
    assert len(parser.banners) == 2 and top == signoff_banner, parser.banners
    assert top.startswith(v["verdict"]) and " · ".join(f"{s} {n}" for s, n in v["counts"].items() if n) in top
    assert all(b in top for b in blockers)
    return v


@pytest.mark.docker
def test_waivers_valid_and_expired_and_every_output_agrees_with_the_verdict_file(demo_stack, cli, write_params,
                                                                                 tmp_path, planted_fail):
    """GO with a valid waiver; NO-GO with a valid and an expired one. Records keep their FAIL; the verdict
    file says which waiver covers what, and every output says the same as the verdict file."""
    key = tmp_path / "keys" / "sign.pem"
    today = date.today()
    valid = {"check": "preflight.secret_files", "target": "planted_secret", "expires": (today + timedelta(days=30)).isoformat()}
    ok = _run_with_waivers(cli, write_params, tmp_path, planted_fail, [valid], key, "go")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run_dir = run_dir_from(ok.stdout)
    v = assert_outputs_agree(run_dir, ok.returncode)
    assert v["verdict"] == "GO" and [w["ref"] for w in v["waived"]] == ["preflight.secret_files@planted_secret"]
    assert v["waived"][0]["note"] == f"waived by W-1 until {valid['expires']}" and v["waivers"][0]["state"] == "applied"
    _, records = load_run(run_dir)
    r = next(r for r in records if r["target"] == "planted_secret")
    assert r["status"] == "FAIL"  # the record is never rewritten
    html = (run_dir / "report.html").read_text()
    assert f"waived by W-1 until {valid['expires']}" in html and "planted-value" not in html
    signed = next(r for r in records if r["id"] == "signoff.block")
    assert signed["status"] == "INFO" and signed["evidence"]["approver"] == "release-manager"
    assert cli("verify", str(run_dir), "--key", str(key) + ".pub").returncode == 0

    expired = {"check": "preflight.secret_files", "target": "planted_other", "expires": (today - timedelta(days=1)).isoformat()}
    both = planted_override(tmp_path, "planted_secret", "planted_other")
    bad = _run_with_waivers(cli, write_params, tmp_path, both, [valid, expired], key, "nogo")
    run_dir = run_dir_from(bad.stdout)
    v = assert_outputs_agree(run_dir, bad.returncode)
    assert v["verdict"] == "NO-GO" and [b["ref"] for b in v["blockers"]] == ["preflight.secret_files@planted_other"]
    assert [w["ref"] for w in v["waived"]] == ["preflight.secret_files@planted_secret"]
    assert {w["id"]: (w["state"], w["refs"]) for w in v["waivers"]} == {
        "W-1": ("applied", ["preflight.secret_files@planted_secret"]),
        "W-2": ("expired", ["preflight.secret_files@planted_other"])}
    assert "W-2" in v["rationale"] and "expired" in v["rationale"]
    html = (run_dir / "report.html").read_text()
    assert "planted-value" not in html and "waived by W-1" in html


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
    assert {"schema", "project", "verdict", "started", "finished", "counts", "blockers", "waived", "phases",
            "not_verified", "verdict_file", "report"} <= set(summary)
    assert summary["schema"] == 1 and summary["verdict"] in ("GO", "NO-GO")
    assert sum(summary["counts"].values()) == len(records)
    assert_outputs_agree(run_dir, 0 if summary["verdict"] == "GO" else 1)
    root = ET.parse(run_dir / "junit.xml").getroot()
    for suite in root.findall("testsuite"):
        recs = [r for r in records if r["phase"] == suite.get("name")]
        assert int(suite.get("tests")) == len(recs)


def _tree(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.docker
def test_report_rerenders_a_verified_run_identically_and_exits_with_its_verdict(signed_run, cli):
    run_dir, key = signed_run
    before = _tree(run_dir)
    proc = cli("report", str(run_dir))
    assert proc.returncode == 0 and "identical" in proc.stdout, proc.stdout + proc.stderr
    assert _tree(run_dir) == before
    assert cli("verify", str(run_dir), "--key", str(key) + ".pub").returncode == 0


@pytest.mark.docker
def test_report_refuses_a_run_with_any_byte_changed_and_writes_nothing(signed_run, cli, tmp_path):
    """Flip one byte in each file of the run directory: `runbook report` exits 1 naming the file and
    leaves the directory exactly as it was (no laundering by re-rendering)."""
    import shutil

    run_dir, _ = signed_run
    files = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file())
    assert {Path("verdict.json"), Path("manifest.json.sig"), Path("run.json")} <= set(files)
    for rel in files:
        copy = tmp_path / f"copy-{len(str(rel))}-{rel.name}"
        shutil.copytree(run_dir, copy)
        data = bytearray((copy / rel).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / rel).write_bytes(bytes(data))
        before = _tree(copy)
        proc = cli("report", str(copy))
        assert proc.returncode == 1, f"re-rendering a run with {rel} changed succeeded:\n{proc.stdout}{proc.stderr}"
        assert str(rel) in proc.stdout, proc.stdout
        assert _tree(copy) == before, f"`runbook report` changed the run directory after {rel} was tampered with"
        assert not list(tmp_path.glob("*UNVERIFIED*"))
        shutil.rmtree(copy)
    # Deleting the evidence is caught too, and --unverified writes a marked report outside the run.
    copy = tmp_path / "no-notebooks"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "notebooks")
    proc = cli("report", str(copy))
    assert proc.returncode == 1 and "removed: notebooks/" in proc.stdout
    proc = cli("report", str(copy), "--unverified")
    out = tmp_path / "no-notebooks.UNVERIFIED-report.html"
    assert out.is_file() and "UNVERIFIED" in out.read_text() and not (copy / "notebooks").exists()


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


def test_the_signoff_block_is_info_and_an_error_when_the_running_images_cannot_be_recorded(monkeypatch, tmp_path):
    """signoff.block is a fact (INFO), never a PASS; when the engine cannot say which images ran, what
    was signed off is unknown: ERROR, not a PASS with an error inside."""
    from runbook_lib.phases import signoff
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params
    from runbook_lib.run.phase import PhaseSession
    from runbook_lib.results.policy import WaiverOutcome

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    params = load_params(ROOT / "parameters" / "demo.yaml")
    session = PhaseSession("05_signoff", Context(params=params))
    [rec] = signoff.signoff_records(session, signoff.RunView(None, [], TODAY, WaiverOutcome()))
    assert rec.id == "signoff.block" and rec.status == "ERROR" and "could not be recorded" in rec.actual
    assert "no Docker engine answers" in rec.evidence["images_error"]


@pytest.mark.docker
def test_verify_catches_a_forged_verdict_even_with_a_rewritten_manifest(signed_run, cli, tmp_path):
    """An unsigned archive can have its manifest rewritten; the verdict file must still follow from the
    records, the run's parameters and its waivers copy, or verify (and so report) refuses the run."""
    import shutil

    from runbook_lib.results import report

    run_dir, _ = signed_run
    copy = tmp_path / "forged"
    shutil.copytree(run_dir, copy)
    (copy / "manifest.json.sig").unlink()
    v = json.loads((copy / "verdict.json").read_text())
    v["verdict"] = "NO-GO" if v["verdict"] == "GO" else "GO"
    v["blockers"] = []
    (copy / "verdict.json").write_text(json.dumps(v, indent=1) + "\n")
    report.write_manifest(copy)
    proc = cli("verify", str(copy))
    assert proc.returncode == 1 and "verdict.json does not follow from the records" in proc.stdout, proc.stdout
    assert cli("report", str(copy)).returncode == 1
