"""Shared fixtures. Integration tests use the real Docker engine and the real demo stack; nothing
about Docker is mocked. Tests track what they create and remove it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "parameters"


def run_cli(*args: str, env: dict | None = None, timeout: float = 900, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the `runbook` CLI as a user would (a separate process) and capture its output."""
    return subprocess.run([sys.executable, "-m", "runbook_lib.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write_params(tmp_path):
    """Write a parameters file derived from demo.yaml (paths made absolute) with changes applied."""

    def _write(changes: dict | None = None, name: str = "params.yaml", base: Path = PARAMS / "demo.yaml") -> Path:
        data = yaml.safe_load(base.read_text())
        data["compose_files"] = [str((base.parent / f).resolve()) for f in data["compose_files"]]
        data["env_files"] = [str((base.parent / f).resolve()) for f in data.get("env_files", [])]
        for key, value in (changes or {}).items():
            target = data
            *parents, last = key.split(".")
            for p in parents:
                target = target.setdefault(p, {})
            if value is None:
                target.pop(last, None)
            else:
                target[last] = value
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return _write


@pytest.fixture(scope="session")
def engine():
    """The real Docker engine. Missing here means the set-up did not run: that is a failure, not a skip."""
    from runbook_lib.engine import Engine

    return Engine()


@pytest.fixture(scope="session")
def demo_stack(engine):
    """The demo stack, up and healthy, for the whole session; taken down at the end (volumes kept)."""
    from runbook_lib import demo

    demo.ensure_secrets()
    demo.build_images(progress=lambda s: None)
    demo.up()
    yield demo
    demo.down()


@pytest.fixture
def healthy_demo(demo_stack):
    """The demo stack as compose.yaml says, healthy again if an earlier test changed it."""
    demo_stack.up()
    return demo_stack


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [r for p in sorted((run_dir / "results").glob("*.json")) for r in json.loads(p.read_text())]
    return summary, records


def run_dir_from(stdout: str) -> Path:
    for line in stdout.splitlines():
        if line.startswith("report: "):
            return Path(line.split(": ", 1)[1]).parent
    raise AssertionError(f"no report line in output:\n{stdout}")


PHASE2_FAULTS = """services:
  chat-service:
    environment:
      JWT_SECRET: a-literal-jwt-signing-key
  video-service:
    secrets: [jwt_secret, redis_password, rb_test_world]
    environment:
{leak}      RB_TEST_WORLD_FILE: /run/secrets/rb_test_world
  storage-service:
    environment:
      LICENSE_FILE: /run/secrets/no_such_secret
  api-gateway:
    privileged: true
  auth-service:
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
  redis:
    ports:
      - "16379:6379"
secrets:
  rb_test_world:
    file: {world}
"""


def phase2_faults_override(tmp_path: Path, world_secret: Path, leak_value: str | None = None) -> Path:
    """A compose override of the demo planting phase 2's faults, one per service: a literal
    JWT_SECRET (chat), a world-writable secret file (video), a *_FILE variable naming a path no secret
    mounts (storage), privileged (gateway), the Docker socket mounted (auth), redis published on every
    interface. ``leak_value`` also copies a secret's value into an innocently named variable (video)."""
    leak = f'      GREETING_TEXT: "{leak_value}"\n' if leak_value else ""
    override = tmp_path / "faults.yaml"
    override.write_text(PHASE2_FAULTS.format(leak=leak, world=world_secret))
    return override
