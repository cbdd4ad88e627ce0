"""Pure logic: check records, the verdict policy, redaction, and the run directory's outputs."""
from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from runbook_lib.results import report
from runbook_lib.results.display import records_table
from runbook_lib.params import load_params
from runbook_lib.params.sections import Policy
from runbook_lib.results.policy import decide
from runbook_lib.results.records import Check, CheckRecord, write_records
from runbook_lib.results.redact import Redactor, marker

from conftest import ROOT


def rec(status="PASS", severity="high", id_="x.check", target="svc", evidence=None):
    return CheckRecord(id=id_, phase="00_preflight", title="t", target=target, status=status, severity=severity,
                       expected="e", actual="a", evidence={"seen": 1} if evidence is None else evidence)


def test_a_pass_without_evidence_cannot_be_built():
    with pytest.raises(ValueError, match="needs evidence"):
        rec("PASS", evidence={})


def test_record_serialises_to_the_contract_fields():
    d = Check("a.b", "T", phase="00_preflight", severity="low", command="cmd").record(
        "t", "FAIL", expected="x", actual="y", evidence={"k": 1}).to_dict()
    assert set(d) == {"id", "phase", "title", "target", "status", "severity", "expected", "actual", "evidence",
                      "command", "remediation", "started", "duration_s"}
    assert d["started"].endswith("Z")


def test_all_passing_records_are_go():
    assert decide([rec(), rec(target="b")], Policy()).verdict == "GO"


def test_high_fail_blocks_but_a_low_fail_does_not():
    assert decide([rec("FAIL", "high")], Policy()).verdict == "NO-GO"
    assert decide([rec("FAIL", "low"), rec()], Policy()).verdict == "GO"


def test_an_error_blocks_whatever_its_severity():
    d = decide([rec(), rec("ERROR", "info", evidence={})], Policy())
    assert d.verdict == "NO-GO" and "ERROR always blocks" in d.rationale


def test_no_records_is_no_go():
    assert decide([], Policy()).verdict == "NO-GO"


def test_redactor_replaces_values_their_base64_and_bearer_tokens():
    secret = "s3cr3t-Value-42"
    r = Redactor([secret + "\n"])
    text = f"env X={secret} b64={base64.b64encode(secret.encode()).decode()} Authorization: Bearer abcdefghijkl.mnop"
    out = r.scrub_text(text)
    assert secret not in out and base64.b64encode(secret.encode()).decode() not in out
    assert marker(secret) in out and "abcdefghijkl" not in out


def test_redactor_scrubs_nested_structures_and_keys():
    r = Redactor(["topsecretvalue"])
    out = r.scrub({"topsecretvalue": ["a topsecretvalue b", ("topsecretvalue",)], "n": 3})
    assert "topsecretvalue" not in json.dumps(out) and out["n"] == 3


def test_short_values_are_not_learned_so_evidence_stays_readable():
    r = Redactor(["yes", "1"])
    assert r.scrub_text("yes 1") == "yes 1" and len(r) == 0


def test_table_escapes_markup_from_evidence():
    html = records_table([rec(evidence={"body": "<script>alert(1)</script>"})])
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_junit_failures_are_exactly_the_blockers(tmp_path):
    """Failures and errors are the verdict's blockers; a non-blocking FAIL passes with its status as a
    property; SKIP is skipped."""
    from runbook_lib.params.sections import Policy
    from runbook_lib.results.policy import decide
    from runbook_lib.results.verdict import build

    recs = [rec(), rec("FAIL", severity="critical"), rec("FAIL", severity="low"), rec("ERROR", evidence={}),
            rec("SKIP", evidence={}, severity="low")]
    for i, r in enumerate(recs):
        r.target = f"t{i}"
    (tmp_path / "results").mkdir()
    write_records(tmp_path / "results" / "00_preflight.json", recs)
    params = load_params(ROOT / "parameters" / "demo.yaml")
    v = build(recs, decide(recs, Policy()), params, started="2026-11-29T00:00:00Z", on=date(2026, 11, 29), inputs={})
    report.write_junit(tmp_path, v, [{"phase": "00_preflight", "duration_s": 2.5}])
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped"), suite.get("time")) == \
        ("5", "1", "1", "1", "2.500")
    low = suite.findall("testcase")[2]
    assert low.find("failure") is None and low.find("properties/property[@name='status']").get("value") == "FAIL"


def test_manifest_detects_a_changed_added_and_removed_file(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    report.write_manifest(tmp_path)
    assert report.verify_manifest(tmp_path) == {"changed": [], "added": [], "removed": []}
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").unlink()
    (tmp_path / "c.txt").write_text("c")
    assert report.verify_manifest(tmp_path) == {"changed": ["a.txt"], "added": ["c.txt"], "removed": ["b.txt"]}
