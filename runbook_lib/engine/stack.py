"""The docker CLI's stack loader (issue 15): `docker stack config`, the way `docker stack deploy` itself reads
a stack file. It is not Compose: it refuses keys Compose accepts (``mem_limit``, ``cpus``...), does not read
``.env`` or env files, and warns about keys it ignores. Compose still resolves the model the rules judge
(``docker compose config``, as in compose mode); this is the check that the stack would be accepted."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from runbook_lib.errors import ComposeConfigError, EnvironmentProblem

STACK_CONFIG_TIMEOUT_S = 30


@dataclass
class StackConfig:
    command: list[str]
    model: dict[str, Any]
    stderr: str


def stack_command(files: Sequence[Path]) -> list[str]:
    return ["docker", "stack", "config", *[a for f in files for a in ("-c", str(f))]]


def stack_config(files: Sequence[Path], timeout: float = STACK_CONFIG_TIMEOUT_S) -> StackConfig:
    """The stack file(s) as `docker stack config` resolves them (the environment of this process is what
    it interpolates from, as for `docker stack deploy`). Raises ComposeConfigError (its stderr kept) when
    the loader refuses them, EnvironmentProblem when there is no docker CLI."""
    docker = shutil.which("docker")
    argv = stack_command(files)
    if not docker:
        raise EnvironmentProblem("the docker CLI is not installed: `docker stack config` (the loader `docker stack "
                                 "deploy` uses) cannot check the stack file")
    try:
        proc = subprocess.run([docker, *argv[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ComposeConfigError(f"`{' '.join(argv)}` timed out after {timeout:.0f} s", files=[str(f) for f in files]) from exc
    if proc.returncode != 0:
        cause = " ".join(proc.stderr.split()) or "(no stderr)"
        raise ComposeConfigError(f"`{' '.join(argv)}` exited {proc.returncode}: {cause}",
                                 files=[str(f) for f in files], stderr=proc.stderr)
    try:
        model = yaml.safe_load(proc.stdout) or {}
    except yaml.YAMLError as exc:
        raise ComposeConfigError(f"`{' '.join(argv)}` printed no YAML: {exc}", files=[str(f) for f in files]) from exc
    return StackConfig(argv, model if isinstance(model, dict) else {}, proc.stderr)
