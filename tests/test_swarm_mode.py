"""Issue 15: `mode: swarm` in the parameters. `stack` is required there (an error naming the key otherwise),
compose mode is unchanged, and the runner refuses every phase not implemented for swarm yet, before
anything is touched: never a compose-mode run of a phase against a swarm."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbook_lib.errors import InputError, ParametersError
from runbook_lib.run.params import SWARM_PHASES, load_params


def write(tmp_path: Path, doc: dict, name: str = "p.yaml") -> Path:
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump({"services": {"web": {"image": "nginx:1.25.3"}}}))
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"project": "rbtest-swarm-mode", "compose_files": ["stack.yaml"], **doc}))
    return path


def test_compose_is_the_default_and_swarm_needs_a_stack_named_by_key(tmp_path):
    p = load_params(write(tmp_path, {}))
    assert p.mode == "compose" and p.stack == "" and p.unsupported_phases(["01_controlled_redeployment"]) == []
    with pytest.raises(ParametersError, match=r"p\.yaml: key 'stack': .*mode is swarm, so the stack's name is required"):
        load_params(write(tmp_path, {"mode": "swarm"}))
    with pytest.raises(ParametersError, match=r"key 'stack': .*set only in swarm mode"):
        load_params(write(tmp_path, {"stack": "shop"}))
    with pytest.raises(ParametersError, match=r"key 'mode'"):
        load_params(write(tmp_path, {"mode": "kubernetes", "stack": "shop"}))
    p = load_params(write(tmp_path, {"mode": "swarm", "stack": "shop"}))
    assert p.mode == "swarm" and p.stack == "shop" and SWARM_PHASES == ("00_preflight", "02_secrets_security",
                                                                    "03_production_mode", "05_signoff")


@pytest.mark.parametrize("args, phases", [
    ((), []),                                                   # no phases: every phase, refused
    (("--phase", "01_controlled_redeployment"), []),
    (("--phase", "00_preflight", "--phase", "04_smoke_tests"), []),
    ((), ["00_preflight", "05_signoff", "01_controlled_redeployment"]),
])
def test_the_runner_refuses_phases_not_implemented_for_swarm_before_touching_anything(cli, tmp_path, args, phases):
    params = write(tmp_path, {"mode": "swarm", "stack": "rbtest-swarm-mode", "phases": phases})
    out = tmp_path / "out"
    proc = cli("run", "--params", str(params), "--output", str(out), *args)
    assert proc.returncode == 2, proc.stderr
    assert "mode: swarm" in proc.stderr and "not implemented for swarm stacks yet" in proc.stderr
    assert "--phase 00_preflight" in proc.stderr and "Nothing was touched" in proc.stderr
    assert not out.exists()


def test_a_phase_notebook_opened_in_swarm_mode_refuses_too(tmp_path):
    from runbook_lib.run.phase import open_phase

    params = write(tmp_path, {"mode": "swarm", "stack": "rbtest-swarm-mode"})
    with pytest.raises(InputError, match="04_smoke_tests is not implemented for swarm stacks yet"):
        open_phase("04_smoke_tests", params)


def test_phase0_swarm_checks_that_cannot_look_are_not_a_pass(tmp_path, monkeypatch):
    """No docker CLI: the stack file check is an ERROR; a stack with no external object: SKIP (info), never
    a PASS claiming something was found."""
    from runbook_lib.phases import preflight
    from runbook_lib.run.context import Context

    params = load_params(write(tmp_path, {"mode": "swarm", "stack": "rbtest-swarm-mode"}))
    ctx = Context(params=params)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [rec] = preflight.swarm_stack_file(ctx)
    assert rec.status == "ERROR" and "docker CLI is not installed" in rec.actual
    ctx.__dict__["model"] = {"services": {"web": {"image": "nginx:1.25.3"}}, "secrets": {"f": {"file": "/x"}}}
    [rec] = preflight.swarm_objects(ctx)
    assert rec.status == "SKIP" and rec.severity == "info" and rec.actual == "the stack file declares none"
