"""Parameters: loading, validation and the errors a user sees."""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from runbook_lib.errors import ParametersError, UnsafeRequestError
from runbook_lib.params import PHASES, load_params

from conftest import PARAMS, ROOT


def test_demo_parameters_load_with_paths_relative_to_the_file():
    p = load_params(PARAMS / "demo.yaml")
    assert p.project == "secureconnect-demo"
    assert p.compose_files[0] == (PARAMS.parent / "demo" / "compose.yaml").resolve()
    assert p.redeploy.init_steps[0].service == "storage-service"
    assert [(s.service, s.command) for s in p.redeploy.init_steps[1:]] == [("postgres", ["db-init"])]


def test_secureconnect_parameters_validate_without_their_compose_file():
    p = load_params(PARAMS / "secureconnect.yaml")
    assert p.project == "secureconnect"
    assert p.dependencies == ["redis", "minio"]
    assert p.redeploy.leftover_containers == ["secureconnect_promtail"]
    assert p.policy.waivers_file == (PARAMS / "secureconnect-waivers.yaml").resolve()
    step = p.redeploy.init_steps[0]
    assert "secureconnect_ks" in " ".join(step.command) and step.expect


def test_secureconnect_swarm_parameters_validate_without_their_stack_file():
    """parameters/secureconnect-swarm.yaml: SecureConnect's main-branch production file, as a stack."""
    p = load_params(PARAMS / "secureconnect-swarm.yaml")
    assert (p.project, p.mode, p.stack) == ("secureconnect", "swarm", "secureconnect")
    assert p.compose_files[0].name == "docker-compose.production.yml"
    assert p.security.readable_by_others == "fail"  # the file sets no mode: the swarm's 0444 is a blocker
    assert p.unsupported_phases(list(PHASES)) == []  # every phase runs in swarm mode
    assert p.policy.waivers_file == (PARAMS / "secureconnect-waivers.yaml").resolve()
    assert "secureconnect_ks" in " ".join(p.redeploy.init_steps[0].command)


def _service_part(container: str, project: str) -> str:
    """A container name (or pattern) without the compose project prefix and the replica suffix:
    secureconnect_loki, secureconnect-loki-1, secureconnect_loki_1 -> loki."""
    core = re.sub(rf"^{re.escape(project)}[_-]", "", container.lstrip("/"))
    return re.sub(r"[_-]\d+$", "", core)


def leftover_conflicts(project: str, leftovers: list[str], targets: list[str]) -> list[tuple[str, str]]:
    """(pattern, waiver target) pairs where a leftover pattern would remove what a waiver accepts.

    The rule: waiver targets are service names (coturn, loki); leftover patterns are container names
    (secureconnect_turn). A pattern conflicts with a target when it matches one of the target's container
    names (``T``, ``<project>_T``, ``<project>-T``, ``<project>-T-1``, ``<project>_T_1``), or when, with the
    project prefix and replica suffix removed, one contains the other (turn / coturn: the same TURN server
    under a short name)."""
    out = []
    for pat in leftovers:
        core = _service_part(pat, project).replace("*", "").replace("?", "")
        for t in targets:
            names = [t, f"{project}_{t}", f"{project}-{t}", f"{project}-{t}-1", f"{project}_{t}_1"]
            if any(fnmatch.fnmatchcase(n, pat) for n in names) or (core and (core in t or t in core)):
                out.append((pat, t))
    return out


def test_secureconnect_leftovers_never_remove_what_its_waivers_accept():
    from runbook_lib.params import load_waivers
    from runbook_lib.results.registry import unknown_ids

    p = load_params(PARAMS / "secureconnect.yaml")
    waivers = load_waivers(p.policy.waivers_file)
    assert waivers and unknown_ids([w.check for w in waivers]) == {}   # the runner refuses unknown ids
    targets = sorted({w.target for w in waivers if w.target})
    assert {"coturn", "loki"} <= set(targets)
    assert leftover_conflicts(p.project, p.redeploy.leftover_containers, targets) == []
    # the rule catches the list this file used to have: TURN under a short name, Loki by container name
    old = ["secureconnect_turn", "secureconnect_promtail", "secureconnect_loki", "secureconnect_grafana"]
    assert leftover_conflicts(p.project, old, targets) == [("secureconnect_turn", "coturn"),
                                                           ("secureconnect_loki", "loki")]
    assert leftover_conflicts("x", ["x-*"], ["loki"]) == [("x-*", "loki")]    # a wildcard matches everything


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ParametersError, match="nope.yaml: parameters file not found"):
        load_params(tmp_path / "nope.yaml")


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("project: x\ncompose_files: [a.yaml\n")
    with pytest.raises(ParametersError, match=r"bad.yaml: not valid YAML at line \d+"):
        load_params(f)


def test_unknown_key_suggests_the_key_that_was_meant(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("project: x\ncompose_files: [c.yaml]\nredeploy:\n  healthy_timout_s: 10\n")
    with pytest.raises(ParametersError) as exc:
        load_params(f)
    msg = str(exc.value)
    assert "redeploy.healthy_timout_s" in msg and "did you mean 'healthy_timeout_s'" in msg and "p.yaml" in msg


def test_wrong_type_names_the_key_and_the_value(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("project: x\ncompose_files: [c.yaml]\ncell_timeout_s: soon\n")
    with pytest.raises(ParametersError, match=r"key 'cell_timeout_s'.*'soon'"):
        load_params(f)


def test_unknown_phase_is_refused_with_a_suggestion(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("project: x\ncompose_files: [c.yaml]\nphases: [00_prefligt]\n")
    with pytest.raises(ParametersError, match="did you mean '00_preflight'"):
        load_params(f)


def test_verify_without_expect_is_refused(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("project: x\ncompose_files: [c.yaml]\nredeploy:\n  init_steps:\n"
                 "    - {name: s, service: a, command: ['true'], verify: ['true']}\n")
    with pytest.raises(ParametersError, match="needs `expect`"):
        load_params(f)


def test_volume_removal_without_confirmation_is_unsafe(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("project: demo\ncompose_files: [c.yaml]\nredeploy:\n  remove_volumes: true\n")
    with pytest.raises(UnsafeRequestError, match="confirm_volume_removal: demo"):
        load_params(f).ensure_safe()
    f.write_text("project: demo\ncompose_files: [c.yaml]\nredeploy:\n  remove_volumes: true\n  confirm_volume_removal: demo\n")
    load_params(f).ensure_safe()


def test_an_empty_params_file_is_runbook_params_else_the_demo_found_upward(tmp_path, monkeypatch):
    """A notebook opened by hand has ``params_file = ""``: it needs no path into the package."""
    from runbook_lib.package_data import NOTEBOOKS as NOTEBOOK_DIR
    from runbook_lib.params import default_outputs, resolve_params_file

    monkeypatch.delenv("RUNBOOK_PARAMS", raising=False)
    # in the checkout, from the notebooks' own directory (what `make lab` opens): the demo's
    assert resolve_params_file("", NOTEBOOK_DIR) == ROOT / "parameters" / "demo.yaml"
    assert default_outputs(ROOT / "parameters" / "demo.yaml") == ROOT / "outputs"
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    with pytest.raises(ParametersError, match="RUNBOOK_PARAMS"):
        resolve_params_file("", deep)
    (tmp_path / "parameters").mkdir()
    (tmp_path / "parameters" / "demo.yaml").write_text("project: x\n")
    assert resolve_params_file("", deep) == tmp_path / "parameters" / "demo.yaml"
    monkeypatch.setenv("RUNBOOK_PARAMS", str(tmp_path / "mine.yaml"))
    assert resolve_params_file("", deep) == tmp_path / "mine.yaml"
    assert default_outputs(tmp_path / "mine.yaml") == tmp_path / "outputs", "beside a file not in parameters/"
    assert resolve_params_file("given.yaml", deep) == Path("given.yaml"), "a given path is used as it is"

