"""`mode: swarm` in the parameters. `stack` is required there (an error naming the key otherwise),
compose mode is unchanged, and the runner refuses every phase not implemented for swarm yet, before
anything is touched: never a compose-mode run of a phase against a swarm."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbook_lib.errors import InputError, ParametersError
from runbook_lib.params import PHASES, SWARM_PHASES, load_params


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
    assert p.mode == "swarm" and p.stack == "shop" and SWARM_PHASES == PHASES  # every phase has its swarm checks


# Every phase is implemented for swarm now; the refusal stays for a phase added later without its swarm checks.
@pytest.mark.parametrize("asked, listed", [(None, []), (["01_controlled_redeployment"], []),
                                           (None, ["00_preflight", "05_signoff", "04_smoke_tests"])])
def test_a_phase_without_swarm_checks_is_refused_before_touching_anything(tmp_path, monkeypatch, asked, listed):
    from runbook_lib.params import core as params_module

    monkeypatch.setattr(params_module, "SWARM_PHASES", ("00_preflight", "02_secrets_security", "03_production_mode",
                                                        "05_signoff"))
    p = load_params(write(tmp_path, {"mode": "swarm", "stack": "rbtest-swarm-mode", "phases": listed}))
    with pytest.raises(InputError, match=r"mode: swarm: phases? .*not implemented for swarm stacks yet.*Nothing was touched"):
        params_module.refuse_unsupported_phases(p, asked)


def test_a_phase_notebook_opened_in_swarm_mode_refuses_too(tmp_path, monkeypatch):
    from runbook_lib.params import core as params_module
    from runbook_lib.run.phase import open_phase

    monkeypatch.setattr(params_module, "SWARM_PHASES", ("00_preflight",))
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


DRILL = {"dependency": "redis", "endpoints": [{"name": "probe", "url": "http://127.0.0.1:1/"}]}


@pytest.mark.parametrize("doc, message", [
    ({"mode": "swarm", "stack": "shop", "smoke": {"drills": [{**DRILL, "mode": "stop"}]}},
     r"smoke\.drills\[0\]\.mode: 'stop' breaks a compose container; in swarm mode a drill scales .* mode: scale \(redis\)"),
    ({"smoke": {"drills": [{**DRILL, "mode": "scale"}]}},
     r"smoke\.drills\[0\]\.mode: 'scale' is for swarm services \(mode: swarm\)"),
    ({"mode": "swarm", "stack": "shop", "redeploy": {"remove_volumes": True, "confirm_volume_removal": "rbtest-swarm-mode"}},
     r"redeploy\.remove_volumes: not available in swarm mode"),
])
def test_what_only_one_mode_can_do_is_refused_naming_the_file_and_key(tmp_path, doc, message):
    with pytest.raises(ParametersError, match=message) as err:
        load_params(write(tmp_path, doc))
    assert str(err.value).startswith(str(tmp_path / "p.yaml"))
    assert err.value.key and err.value.key.split("[")[0] in ("smoke.drills", "redeploy.remove_volumes")
    p = load_params(write(tmp_path, {"mode": "swarm", "stack": "shop", "smoke": {"drills": [{**DRILL, "mode": "scale"}]}}))
    assert p.smoke.drills[0].mode == "scale"


def test_phase1_swarm_checks_that_cannot_look_are_not_a_pass(tmp_path, monkeypatch):
    """No engine answers: convergence is an ERROR (never a PASS, never a FAIL it did not see); without an
    inventory before, the pruned-services check is an ERROR too."""
    from runbook_lib.phases import redeploy
    from runbook_lib.run.context import Context

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    ctx = Context(params=load_params(write(tmp_path, {"mode": "swarm", "stack": "rbtest-swarm-mode"})), progress=lambda _s: None)
    [rec] = redeploy.services_converged(ctx)
    assert (rec.id, rec.status, rec.target) == ("redeploy.service_converged", "ERROR", "rbtest-swarm-mode"), rec
    [rec] = redeploy.services_pruned(ctx)
    assert (rec.id, rec.status) == ("redeploy.services_pruned", "ERROR") and "no inventory" in rec.actual


def test_lint_swarm_names_tmpfs_which_docker_stack_deploy_drops_without_a_word(tmp_path):
    """Found building demo/stack.yaml: `tmpfs: [/tmp]` reached no service spec (no mount; Prometheus then failed
    on its read-only root), so the stack file mounts a volume of type tmpfs, which lint accepts."""
    from runbook_lib.lint import lint_files

    svc = {"image": "nginx:1.25.3", "read_only": True, "deploy": {"replicas": 1}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"services": {"web": {**svc, "tmpfs": ["/tmp"]}}}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"services": {"web": {**svc, "volumes": [{"type": "tmpfs", "target": "/tmp"}]}}}))
    [a] = [r for r in lint_files([tmp_path / "a.yaml"], swarm=True).records if r.id == "swarm.unsupported_keys"]
    [b] = [r for r in lint_files([tmp_path / "b.yaml"], swarm=True).records if r.id == "swarm.unsupported_keys"]
    assert a.status == "WARN" and "tmpfs" in a.actual, a.actual
    assert b.status == "PASS", b.actual
