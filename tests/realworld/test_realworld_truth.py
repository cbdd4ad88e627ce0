"""How a run is held against a real-world application's hand-written truth (tests/realworld/truth.py), and that
every truth and known-gaps file in tests/realworld/ parses and names checks the registry knows."""
from __future__ import annotations

from pathlib import Path

import pytest

from realworld import truth
from realworld.images import APPS
from runbook_lib.results import registry

REALWORLD = Path(__file__).resolve().parent
F = truth.Finding
TRUTH = {F("02", "hardening.memory_limit", "db"): "no memory limit",
         F("03", "prod.healthcheck", "web"): "no healthcheck"}


def record(phase: str, check: str, target: str, status: str = "FAIL", **evidence) -> dict:
    return {"phase": phase, "id": check, "target": target, "status": status, "actual": "seen", "evidence": evidence}


def test_a_run_that_reports_exactly_the_truth_has_no_disagreement():
    got = truth.findings([record("02_secrets_security", "hardening.memory_limit", "proj-db-1"),
                          record("03_production_mode", "prod.healthcheck", "web"),
                          record("03_production_mode", "prod.env", "web", status="PASS")], "proj")
    assert truth.disagreements(got, TRUTH, {}, ["02", "03"]) == []


def test_a_fail_that_is_no_true_problem_and_a_missed_true_problem_are_both_reported():
    got = {F("02", "hardening.memory_limit", "db"), F("03", "prod.env", "web")}
    assert truth.disagreements(got, TRUTH, {}, ["02", "03"]) == [
        "FAIL/ERROR that is not a true problem of the application: 03 prod.env web",
        "true problem not reported: 03 prod.healthcheck web (no healthcheck)"]


def test_only_the_phases_that_ran_are_compared():
    assert truth.disagreements({F("02", "hardening.memory_limit", "db")}, TRUTH, {}, ["02"]) == []


def test_a_live_known_gap_is_tolerated_and_a_gap_no_longer_seen_is_reported():
    gaps = {F("03", "prod.env", "web"): ("+", "problem 3"), F("03", "prod.healthcheck", "web"): ("-", "problem x")}
    live = {F("02", "hardening.memory_limit", "db"), F("03", "prod.env", "web")}
    assert truth.disagreements(live, TRUTH, gaps, ["02", "03"]) == []
    fixed = {F("02", "hardening.memory_limit", "db"), F("03", "prod.healthcheck", "web")}
    assert truth.disagreements(fixed, TRUTH, gaps, ["02", "03"]) == [
        "known gap no longer seen, delete it from known-gaps.txt: + 03 prod.env web (problem 3)",
        "known gap no longer seen, delete it from known-gaps.txt: - 03 prod.healthcheck web (problem x)"]


def test_a_check_that_raised_or_a_broken_phase_counts_as_a_crash_and_a_plain_error_does_not():
    records = [record("02_secrets_security", "secrets.mounted", "db", status="ERROR", traceback="KeyError: 'x'"),
               record("runner", "runner.phase", "03_production_mode", status="ERROR"),
               record("02_secrets_security", "secrets.not_in_logs", "db", status="ERROR")]
    assert truth.crashes(records) == ["02_secrets_security secrets.mounted db: seen",
                                      "runner runner.phase 03_production_mode: seen"]


def test_targets_are_named_without_the_project_and_without_spaces():
    assert [truth.service_of(t, "rb-x") for t in ("rb-x-db-1", "db", "rb-x_db_data", "rb-x", "web health")] == [
        "db", "db", "db_data", "project", "web_health"]


def test_a_malformed_truth_line_names_its_file_and_line(tmp_path):
    bad = tmp_path / "expected-problems.txt"
    bad.write_text("# fine\n02 hardening.memory_limit db  no limit\nprod.env web\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"expected-problems.txt:3: expected 'PHASE CHECK_ID TARGET reason'"):
        truth.load_truth(bad)


@pytest.mark.parametrize("app", sorted(APPS))
def test_every_application_has_a_truth_list_of_known_checks_each_with_a_reason(app):
    facts = truth.load_truth(REALWORLD / app / "expected-problems.txt")
    gaps = truth.load_gaps(REALWORLD / app / "known-gaps.txt")
    assert facts and all(len(why) > 10 for why in facts.values())
    # a check another branch is adding may be named before it exists, but only as a live "-" gap
    unknown = {f for f in facts if registry.get(f.check) is None}
    assert unknown <= {f for f, (kind, _) in gaps.items() if kind == "-"}, sorted(map(str, unknown))
    assert {f for f, (kind, _) in gaps.items() if kind == "-"} <= set(facts), "a '-' gap must be a listed truth"
    assert not {f for f, (kind, _) in gaps.items() if kind == "+"} & set(facts), "a '+' gap contradicts the truth"
