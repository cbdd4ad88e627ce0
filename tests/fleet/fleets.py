"""What the fleet tests share: the main engine's address, the phases a fleet runs, a fleet's parameters for
this session's stack, and its records."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml

from conftest import run_dir_from

MAIN_HOST = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
PHASES = ["00_preflight", "02_secrets_security", "03_production_mode"]


def fleet_params(stack, path: Path, targets: list[dict], changes: dict | None = None) -> Path:
    data = stack.params({"phases": PHASES, **(changes or {})})
    data["targets"] = targets
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_no_go(cli, params: Path, out: Path, timeout: float) -> tuple:
    """`runbook run` on a fleet expected to end NO-GO (exit 1): (the process, its run directory, seconds taken)."""
    t0 = time.monotonic()
    proc = cli("run", "--params", str(params), "--output", str(out), timeout=timeout)
    took = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return proc, run_dir_from(proc.stdout), took


def records_of(run_dir: Path) -> list[dict]:
    return [r for p in sorted((run_dir / "results").glob("*.json")) for r in json.loads(p.read_text())]
