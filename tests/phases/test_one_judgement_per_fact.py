"""One judgement per fact. Phase 0's static audit does not judge again, as its own FAILs, what phase 2
judges on the running containers in the same run: it points to phase 2's records. A secret file's mode is
judged in one place, ``secrets.file_mode`` (phase 2, or the static audit when phase 2 is not in the run),
not also by ``preflight.secret_files``. Compose resolves the model; nothing is deployed."""
from __future__ import annotations

import os
import secrets

import yaml

from conftest import PARAMS, ROOT
from runbook_lib.phases.preflight import secret_files, static_audit
from runbook_lib.run.context import Context
from runbook_lib.params import load_params, with_overrides

DEMO = ROOT / "demo" / "compose.yaml"
WITH_PHASE_2 = ["00_preflight", "02_secrets_security", "05_signoff"]
WITHOUT_PHASE_2 = ["00_preflight", "05_signoff"]


def _ctx(tmp_path, override_text: str, phases: list[str], name: str) -> Context:
    override = tmp_path / f"{name}.yaml"
    override.write_text(override_text)
    params = with_overrides(load_params(PARAMS / "demo.yaml"), compose_files=[DEMO, override])
    run_dir = tmp_path / f"run-{name}"
    run_dir.mkdir()
    return Context(params=params.model_copy(update={"phases": phases}), run_dir=run_dir)


def test_the_static_audit_points_to_phase_2_for_the_rules_phase_2_judges_in_the_same_run(tmp_path):
    planted = "services:\n  api-gateway:\n    privileged: true\n"
    [audit] = static_audit(_ctx(tmp_path, planted, WITH_PHASE_2, "with"))
    assert audit.status == "PASS", audit.actual
    assert {"id": "hardening.privileged", "target": "api-gateway"} in audit.evidence["judged_in_phase_2"]
    assert not any(f["id"] == "hardening.privileged" for f in audit.evidence["findings"])
    assert "phase 2 judges on the running containers: see 02_secrets_security's records" in audit.actual
    # without phase 2 in the run, the static audit is the only judge of it
    [alone] = static_audit(_ctx(tmp_path, planted, WITHOUT_PHASE_2, "without"))
    assert alone.status == "FAIL" and "hardening.privileged@api-gateway" in alone.actual
    assert "judged_in_phase_2" not in alone.evidence


def test_a_rule_only_the_static_audit_judges_still_counts_in_a_run_with_phase_2(tmp_path):
    planted = 'services:\n  api-gateway:\n    restart: "no"\n    privileged: true\n'
    [audit] = static_audit(_ctx(tmp_path, planted, WITH_PHASE_2, "restart"))
    assert audit.status == "WARN" and [f["id"] for f in audit.evidence["findings"]] == ["service.restart_policy"]
    assert audit.evidence["judged_in_phase_2"] == [{"id": "hardening.privileged", "target": "api-gateway"}]


def test_a_secret_files_mode_is_judged_once_by_secrets_file_mode_not_by_preflight(tmp_path):
    files = {}
    for name, mode in (("rb_readable", 0o644), ("rb_writable", 0o666)):
        f = tmp_path / f"{name}.txt"
        f.write_text(secrets.token_urlsafe(16))
        os.chmod(f, mode)
        files[name] = {"file": str(f)}
    planted = yaml.safe_dump({"services": {"api-gateway": {"secrets": list(files)}}, "secrets": files})
    ctx = _ctx(tmp_path, planted, WITHOUT_PHASE_2, "modes")
    by = {r.target: r for r in secret_files(ctx)}
    for name, mode in (("rb_readable", "0644"), ("rb_writable", "0666")):
        rec = by[name]
        assert rec.status == "PASS" and f"mode {mode}: judged by secrets.file_mode" in rec.actual, rec.actual
        assert "mode" not in rec.expected.replace("its mode is judged by secrets.file_mode", "")
        assert rec.evidence["mode"] == mode and rec.evidence["mode_judged_by"] == "secrets.file_mode"
    # where it is judged: secrets.file_mode (here in the static audit, phase 2 not being in the run)
    [audit] = static_audit(ctx)
    [mode_finding] = [f for f in audit.evidence["findings"] if f["id"] == "secrets.file_mode"]
    assert mode_finding["status"] == "FAIL" and "rb_writable is writable by others (mode 0666)" in mode_finding["actual"]
    assert "rb_readable is readable by others (mode 0644)" in mode_finding["actual"]
    # with phase 2 in the run, phase 2 alone judges it
    [deferred] = static_audit(_ctx(tmp_path, planted, WITH_PHASE_2, "modes2"))
    assert {"id": "secrets.file_mode", "target": "api-gateway"} in deferred.evidence["judged_in_phase_2"]
    assert not any(f["id"] == "secrets.file_mode" for f in deferred.evidence["findings"])



def test_facts_of_the_static_audit_are_listed_and_never_make_it_a_warning(tmp_path):
    """A tag without a digest is an INFO of `runbook lint` (a fact): the demo's `:local` images. The static
    audit lists them in its evidence and stays PASS (they made it WARN: the demo's only WARN)."""
    [audit] = static_audit(_ctx(tmp_path, "services:\n  api-gateway: {}\n", WITH_PHASE_2, "facts"))
    assert audit.status == "PASS", audit.actual
    infos = [f for f in audit.evidence["facts"] if f["id"] == "images.pinned"]
    assert infos and {f["status"] for f in infos} == {"INFO"} and "fact" in audit.actual
    assert not audit.evidence["findings"]
