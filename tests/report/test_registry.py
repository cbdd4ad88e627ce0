"""The check registry: one declaration per check, read by the notebooks, the crash handler, the policy
and the sign-off table."""
from __future__ import annotations

import ast
import importlib

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
PACKAGE = "runbook_lib.phases"


def _sections_called(phase: str) -> list[tuple[str, str]]:
    """(module, section) of every `phase.run_section(module.MANIFEST, "section")` call of a phase notebook."""
    out = []
    for node in _code_nodes(phase):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run_section"
                and getattr(node.func.value, "id", "") == "phase"):
            manifest, section = node.args[:2]
            assert isinstance(manifest, ast.Attribute) and manifest.attr == "MANIFEST", ast.unparse(node)
            assert isinstance(section, ast.Constant), ast.unparse(node)
            out.append((manifest.value.id, section.value))
    return out


def _code_nodes(phase: str) -> list[ast.AST]:
    nb = nbformat.read(NOTEBOOKS / f"{phase}.ipynb", as_version=4)
    return [node for cell in nb.cells if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", [])
            for node in ast.walk(ast.parse(cell.source))]


def _notebook_calls(phase: str) -> tuple[set[str], set[str]]:
    """(every `module.function` a phase notebook references, those passed to phase.run / phase.add); a
    `phase.run_section(module.MANIFEST, "section")` references and runs every function of that section."""
    referenced, run = set(), set()
    for node in _code_nodes(phase):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in MODULES:
            referenced.add(f"{node.value.id}.{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("run", "add")
                and getattr(node.func.value, "id", "") == "phase"):
            for arg in node.args:
                target = arg.func if isinstance(arg, ast.Call) else arg
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    run.add(f"{target.value.id}.{target.attr}")
    for module, section in _sections_called(phase):
        for entry in importlib.import_module(f"{PACKAGE}.{module}").MANIFEST.section(section):
            referenced.add(f"{module}.{entry.name}")
            run.add(f"{module}.{entry.name}")
    return referenced, run


def test_every_registered_check_runs_in_its_phase_notebook():
    specs = registry.specs()
    assert len(specs) > 50
    for spec in specs.values():
        if spec.phase in ("lint", "runner", "rollback"):  # records of the runner, of a rollback: no notebook runs them
            continue
        assert spec.phase in PHASES, spec
        module, func = spec.function.split(":")
        referenced, _ = _notebook_calls(spec.phase)
        assert f"{module.split('.')[2]}.{func}" in referenced, \
            f"{spec.id} is declared in {spec.phase} ({spec.function}) but its notebook never calls it"


@pytest.mark.parametrize("phase", [p for p in PHASES], ids=str)
def test_no_notebook_runs_an_undeclared_check(phase):
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


def _manifest_of(phase: str):
    from runbook_lib.catalog import MANIFESTS

    return MANIFESTS[phase]


@pytest.mark.parametrize("phase", [p for p in PHASES], ids=str)
def test_each_notebook_runs_exactly_its_manifest(phase):
    """Every section of the manifest is run by one cell, in the manifest's order; every factory or records
    entry is called by name; and the notebook runs nothing the manifest does not list."""
    manifest = _manifest_of(phase)
    module = manifest.entries[0].fn.__module__.split(".")[2]
    runnable = [name for name, entries in manifest.sections.items() if any(e.kind == "check" for e in entries)]
    assert _sections_called(phase) == [(module, name) for name in runnable]
    _, run = _notebook_calls(phase)
    listed = {f"{module}.{e.name}" for e in manifest.entries}
    assert run <= listed, f"{phase}'s notebook runs {sorted(run - listed)}, which its manifest does not list"
    assert listed <= run, f"{phase}'s manifest lists {sorted(listed - run)}, which its notebook never runs"


def test_each_check_is_in_the_phase_of_the_manifest_that_lists_it_and_in_one_manifest_only():
    from runbook_lib.catalog import MANIFESTS

    assert list(MANIFESTS) == list(PHASES)
    placed: dict[str, str] = {}
    for phase, manifest in MANIFESTS.items():
        for entry in manifest.entries:
            assert entry.fn.check_ids, f"{phase} lists {entry.name}, which declares no check"
            for cid in entry.fn.check_ids:
                assert placed.setdefault(cid, phase) == phase, f"{cid} is listed in {placed[cid]} and {phase}"
                assert registry.get(cid).phase == phase, cid


def test_a_section_runs_only_the_checks_of_the_run_mode(tmp_path):
    from runbook_lib.phases import preflight, redeploy

    assert [f.__name__ for f in redeploy.MANIFEST.checks("compose", "up")] == ["compose_up", "rolling_update",
                                                                                "services_ready"]
    assert [f.__name__ for f in redeploy.MANIFEST.checks("swarm", "up")] == ["stack_deploy", "services_converged",
                                                                              "services_pruned", "rolling_update"]
    assert preflight.MANIFEST.checks("compose", "swarm") == []
    params = load_params(PARAMS / "demo.yaml")
    session = PhaseSession("00_preflight", Context(params=params, _engine=object()))
    assert session.run_section(preflight.MANIFEST, "swarm") is None and session.records == []
    with pytest.raises(KeyError, match="has no section 'swram'"):
        preflight.MANIFEST.section("swram")


def test_the_registry_imports_nothing_above_it():
    import runbook_lib.results.registry as module

    tree = ast.parse(open(module.__file__).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("runbook_lib")}, imported


def test_a_check_declared_without_a_phase_takes_the_phase_of_the_manifest_that_lists_it(monkeypatch):
    from runbook_lib.run.manifest import Manifest, swarm_only

    registry.specs()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # forgotten after the test

    @registry.check("prod.example", "An example check", severity="low", category="Production mode")
    def example(ctx):
        return []

    assert registry.get("prod.example").phase == ""
    manifest = Manifest("03_production_mode", {"example": [swarm_only(example)]})
    assert registry.get("prod.example").phase == "03_production_mode"
    assert manifest.checks("swarm") == [example] and manifest.checks("compose") == []
    with pytest.raises(ValueError, match="listed twice"):
        Manifest("03_production_mode", {"a": [example], "b": [example]})
    with pytest.raises(ValueError, match="declared in phase 03_production_mode but listed in 02_secrets_security"):
        Manifest("02_secrets_security", {"example": [example]})


def test_the_preflight_gate_runs_the_preflight_manifest_for_the_run_mode_when_the_run_has_no_records():
    from runbook_lib.errors import RunbookError
    from runbook_lib.results.records import Check
    from runbook_lib.run.manifest import Manifest, swarm_only

    def answers(ctx):
        return [Check("preflight.engine").record("engine", "PASS", expected="answers", actual="answers",
                                                   evidence={"version": "test"})]

    def not_a_manager(ctx):
        return [Check("preflight.swarm_active").record("engine", "FAIL", expected="a manager", actual="inactive")]

    gate = Manifest("00_preflight", {"engine": [answers], "swarm": [swarm_only(not_a_manager)]})
    params = load_params(PARAMS / "demo.yaml")
    assert params.mode == "compose" and not params.read_only
    session = PhaseSession("01_controlled_redeployment", Context(params=params, _engine=object()))
    assert "no blocking problem among 1 records (preflight checks run now" in session.require_preflight(gate).text
    params.mode = "swarm"
    with pytest.raises(RunbookError, match="preflight.swarm_active@engine: inactive"):
        session.require_preflight(gate)


def test_the_explorer_offers_the_checks_of_the_parameters_mode():
    from runbook_lib.run.explorer import discover_phases

    offered = {m: {p.phase: [f.__name__ for f in p.checks] for p in discover_phases(mode=m)} for m in ("compose", "swarm")}
    assert "swarm_active" in offered["swarm"]["00_preflight"] and "swarm_active" not in offered["compose"]["00_preflight"]
    assert "current_state" in offered["compose"]["00_preflight"] and "current_state" not in offered["swarm"]["00_preflight"]
    assert "replicas" in offered["swarm"]["03_production_mode"] and "replicas" not in offered["compose"]["03_production_mode"]
