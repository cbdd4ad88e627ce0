"""The check registry: one declaration per check, read by the notebooks, the crash handler, the policy
and the sign-off table."""
from __future__ import annotations

import ast

import nbformat
import pytest

from runbook_lib.package_data import NOTEBOOKS
from runbook_lib.results import registry
from runbook_lib.phases import production
from runbook_lib.run.context import Context
from runbook_lib.params import PHASES, load_params
from runbook_lib.run.phase import PhaseSession

from conftest import PARAMS

MODULES = {"preflight", "redeploy", "security", "production", "smoke", "signoff"}


def _notebook_calls(phase: str) -> tuple[set[str], set[str]]:
    """(every `module.function` a phase notebook references, those passed to phase.run / phase.add)."""
    nb = nbformat.read(NOTEBOOKS / f"{phase}.ipynb", as_version=4)
    referenced, run = set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in MODULES:
                referenced.add(f"{node.value.id}.{node.attr}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("run", "add")
                    and getattr(node.func.value, "id", "") == "phase"):
                for arg in node.args:
                    target = arg.func if isinstance(arg, ast.Call) else arg
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                        run.add(f"{target.value.id}.{target.attr}")
    return referenced, run


def test_every_registered_check_runs_in_its_phase_notebook():
    specs = registry.specs()
    assert len(specs) > 50
    for spec in specs.values():
        if spec.phase in ("lint", "runner"):
            continue
        assert spec.phase in PHASES, spec
        module, func = spec.function.split(":")
        referenced, _ = _notebook_calls(spec.phase)
        assert f"{module.split('.')[2]}.{func}" in referenced, \
            f"{spec.id} is declared in {spec.phase} ({spec.function}) but its notebook never calls it"


@pytest.mark.parametrize("phase", [p for p in PHASES], ids=str)
def test_no_notebook_runs_an_undeclared_check(phase):
    import importlib

    _, run = _notebook_calls(phase)
    assert run, f"{phase} runs no check"
    for ref in run:
        module, func = ref.split(".")
        pkg = "runbook_lib.phases"
        fn = getattr(importlib.import_module(f"{pkg}.{module}"), func)
        ids = getattr(fn, "check_ids", ())
        if func == "drill_for":  # a factory: the functions it makes carry their own ids (tested below)
            continue
        assert ids, f"{phase} runs {ref}, which declares no check"
        for cid in ids:
            assert registry.get(cid) is not None, f"{ref} runs undeclared check {cid}"


def test_a_drill_is_declared_as_changing_the_deployment_and_its_phases_are_the_destructive_ones():
    from runbook_lib.phases.smoke import drill_for
    from runbook_lib.run.runner import destructive_phases

    p = load_params(PARAMS / "demo.yaml")
    fn = drill_for(p.smoke.drills[0])
    spec = registry.get(fn.check_ids[0])
    assert fn.check_ids == ("smoke.drill.redis", "smoke.after_drill.redis") and spec.id == "smoke.drill" and spec.changes_deployment
    assert destructive_phases() == ("01_controlled_redeployment", "04_smoke_tests")
    from runbook_lib.params import CHANGES_DEPLOYMENT  # what a phase kernel reads without the registry
    assert CHANGES_DEPLOYMENT == destructive_phases()


def test_every_category_of_the_table_is_declared_and_each_check_has_one():
    for spec in registry.specs().values():
        assert spec.category in registry.CATEGORIES
    # the Log ingestion row holds log-store checks only, not Prometheus scrapes
    assert registry.category_of("prod.observability.scrape") != "Log ingestion"
    assert registry.category_of("prod.observability.logs") == "Log ingestion"


def test_a_check_that_crashes_is_an_error_under_its_own_id_with_the_exception(tmp_path):
    params = load_params(PARAMS / "demo.yaml")
    ctx = Context(params=params, _engine=object())  # an "engine" the check cannot use: it raises AttributeError
    ctx.__dict__["model"] = {"services": {"chat-service": {}}}
    session = PhaseSession("03_production_mode", ctx)
    table = session.run(production.drift)
    [rec] = table.records
    assert rec.id == "prod.drift" and rec.status == "ERROR" and rec.phase == "03_production_mode"
    assert rec.severity == "high" and rec.evidence["exception"] == "AttributeError" and "Traceback" not in rec.actual
    assert rec.evidence["function"] == "runbook_lib.phases.production.conformance.drift"


def test_check_builds_its_title_and_severity_from_the_declaration_and_refuses_an_unknown_id():
    from runbook_lib.results.records import Check

    c = Check("prod.drift")
    assert (c.title, c.phase, c.severity) == ("Running containers match the compose files", "03_production_mode", "high")
    with pytest.raises(KeyError, match="did you mean 'prod.drift'"):
        Check("prod.drfit")


def test_a_waiver_or_override_naming_an_unknown_check_is_an_input_error_naming_the_file(write_params, tmp_path, cli):
    wf = tmp_path / "w.yaml"
    wf.write_text("waivers:\n  - {check: prod.helthcheck, justification: a typo in the id, owner: a, approver: b, "
                  "expires: 2099-01-01}\n")
    params = write_params({"policy.waivers_file": str(wf)})
    proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and not (tmp_path / "out").exists()
    assert "w.yaml: waivers[0].check: 'prod.helthcheck' is not a check id" in proc.stderr
    assert "did you mean 'prod.healthcheck'" in proc.stderr
    params = write_params({"policy.severity_overrides": {"secrets.file_mod": "low"}}, name="p2.yaml")
    proc = cli("run", "--params", str(params), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "policy.severity_overrides: 'secrets.file_mod'" in proc.stderr
