"""Bad input gets one clear line naming the problem, exit 2 or 3, and no container is touched."""
from __future__ import annotations

import pytest

from conftest import ROOT, snapshot

pytestmark = pytest.mark.docker


@pytest.fixture
def untouched(demo_stack, engine):
    """Asserts that the session stack's containers (ids and start times) did not change during the test."""
    before = snapshot(engine, demo_stack.project)
    yield
    assert snapshot(engine, demo_stack.project) == before, "a container was touched"


def one_error_line(proc) -> str:
    lines = [l for l in proc.stderr.splitlines() if l.startswith("runbook: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_parameters_file(untouched, cli, tmp_path):
    proc = cli("run", "--params", str(tmp_path / "missing.yaml"), "--output", str(tmp_path))
    assert proc.returncode == 2 and "missing.yaml: parameters file not found" in one_error_line(proc)


def test_malformed_parameters_file(untouched, cli, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("project: [unclosed\n")
    proc = cli("run", "--params", str(f), "--output", str(tmp_path))
    assert proc.returncode == 2 and "bad.yaml: not valid YAML at line" in one_error_line(proc)


def test_unknown_key_with_did_you_mean(untouched, cli, write_params, tmp_path):
    f = write_params({"dependancies": ["redis"]})
    proc = cli("run", "--params", str(f), "--output", str(tmp_path))
    assert proc.returncode == 2
    assert "unknown key 'dependancies' (did you mean 'dependencies'?)" in one_error_line(proc)


def test_compose_file_that_does_not_parse(untouched, cli, demo_params, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("services:\n  api-gateway:\n    image: [oops\n")
    proc = cli("run", "--params", str(demo_params), "--output", str(tmp_path),
               "--compose", str(ROOT / "demo" / "compose.yaml"), "--compose", str(broken))
    assert proc.returncode == 2 and "compose files do not resolve" in one_error_line(proc)
    assert "broken.yaml" in proc.stderr


def test_unknown_service_name_with_did_you_mean(untouched, cli, write_params, tmp_path):
    f = write_params({"dependencies": ["redis", "mini0"]})
    proc = cli("run", "--params", str(f), "--output", str(tmp_path))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "unknown service 'mini0' (in dependencies), did you mean 'minio'?" in line


def test_engine_that_does_not_answer(untouched, cli, demo_params, tmp_path):
    proc = cli("run", "--params", str(demo_params), "--output", str(tmp_path),
               env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert proc.returncode == 3 and "no Docker engine answers" in one_error_line(proc)


def test_no_command_prints_help_and_exits_2(cli):
    proc = cli()
    assert proc.returncode == 2 and "usage: runbook" in proc.stdout
