"""Bad `targets:` / `fleet:` parameters are input errors naming the key, before anything is
touched (no engine is called, no run directory is made)."""
from __future__ import annotations

import pytest
import yaml

from runbook_lib.errors import InputError, ParametersError
from runbook_lib.run.fleet_targets import resolve_endpoint, target_params
from runbook_lib.params import load_params


def write(tmp_path, stack, targets, **more):
    data = stack.params({"phases": ["00_preflight"]})
    data["targets"] = targets
    data.update(more)
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


@pytest.mark.parametrize("targets, key, words", [
    ([{"name": "a", "docker_host": "unix:///x.sock", "adress": "10.0.0.1"}], "targets[0].adress", "did you mean 'address'"),
    ([{"name": "a", "docker_host": "unix:///x.sock", "context": "prod"}], "targets[0]", "exactly one of docker_host"),
    ([{"name": "a"}], "targets[0]", "exactly one of docker_host"),
    ([{"name": "Prod EU", "docker_host": "unix:///x.sock"}], "targets[0].name", "should match pattern"),
    ([{"name": "a", "docker_host": "prod.example.com"}], "targets[0]", "not a Docker endpoint"),
    ([{"name": "a", "docker_host": "unix:///x.sock"}, {"name": "a", "docker_host": "ssh://u@h"}], "targets",
     "used twice"),
    ([{"docker_host": "unix:///x.sock"}], "targets[0].name", "missing required key"),
], ids=["typo", "both", "neither", "bad-name", "not-an-endpoint", "duplicate", "no-name"])
def test_bad_targets_name_the_key(tmp_path, stack, targets, key, words):
    p = write(tmp_path, stack, targets)
    with pytest.raises(ParametersError) as exc:
        load_params(p)
    assert f"'{key}'" in str(exc.value) and words in str(exc.value) and str(p) in str(exc.value), str(exc.value)


def test_bad_fleet_key_names_it(tmp_path, stack):
    p = write(tmp_path, stack, [{"name": "a", "docker_host": "unix:///x.sock"}], fleet={"paralel_destructive": True})
    with pytest.raises(ParametersError, match=r"'fleet.paralel_destructive' \(did you mean 'parallel_destructive'\?\)"):
        load_params(p)


def test_cli_refuses_bad_targets_with_exit_2_and_writes_nothing(tmp_path, stack, cli):
    p = write(tmp_path, stack, [{"name": "a", "docker_host": "unix:///x.sock", "context": "prod"}])
    proc = cli("run", "--params", str(p), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "targets[0]" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_context_is_an_input_error_naming_the_key_and_nothing_is_written(tmp_path, stack, cli):
    p = write(tmp_path, stack, [{"name": "a", "docker_host": "unix:///x.sock"},
                                {"name": "b", "context": "rbtest-no-such-context"}])
    with pytest.raises(InputError, match=r"targets\[1\]\.context: docker context 'rbtest-no-such-context' does not exist"):
        resolve_endpoint(load_params(p), 1)
    proc = cli("run", "--params", str(p), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "targets[1].context" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_service_is_refused_once_for_the_fleet_before_any_engine(tmp_path, stack, cli):
    p = write(tmp_path, stack, [{"name": "a", "docker_host": "unix:///nonexistent.sock"}], app_services=["auth-servise"])
    proc = cli("run", "--params", str(p), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "did you mean 'auth-service'" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_targets_parameters_point_loopback_urls_at_its_address(tmp_path, stack):
    p = write(tmp_path, stack, [{"name": "a", "docker_host": "unix:///x.sock"},
                                {"name": "b", "docker_host": "ssh://ops@b.example", "address": "10.1.2.3"}])
    params = load_params(p)
    a, b = target_params(params, 0), target_params(params, 1)
    assert "targets" not in a and "fleet" not in a
    port = stack.ports["prometheus"]
    assert a["production"]["prometheus_url"] == f"http://127.0.0.1:{port}"
    assert b["production"]["prometheus_url"] == f"http://10.1.2.3:{port}"
    assert all(s["url"].startswith("http://10.1.2.3:") for s in b["smoke"]["flow"])
    assert b["security"]["publish_interfaces"] == a["security"]["publish_interfaces"]  # a policy, not a URL
    assert "127.0.0.1" not in yaml.safe_dump(b["smoke"]) and "localhost" not in yaml.safe_dump(b["production"])


def test_a_phase_notebook_opened_on_a_fleets_parameters_refuses_rather_than_pick_an_engine(tmp_path, stack):
    from runbook_lib.run.phase import open_phase

    p = write(tmp_path, stack, [{"name": "a", "docker_host": "unix:///x.sock"}])
    with pytest.raises(InputError, match=r"names 1 targets \(a fleet\): run it with `runbook run`"):
        open_phase("00_preflight", p)
