"""Real applications nobody here wrote, deployed with their own published compose files (tests/realworld/,
docs/realworld.md): `runbook init`, then `runbook run`, and every FAIL and ERROR is held against the list of the
application's true problems written by hand from reading it; no check may crash.

The images are built offline from Debian's packages (tests/realworld/images.py; cached by their inputs label).
`make test` runs the smoke form (WordPress + MariaDB: init and the read-only phases); `make realworld` sets
RUNBOOK_REALWORLD=full and also runs every phase, drills included, on every application.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import httpx
import pytest
import yaml

from conftest import load_run, run_cli, run_dir_from
from realworld import images as rw_images
from realworld import truth
from runbook_demo import free_ports
from runbook_lib.engine.compose import Compose

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REALWORLD = Path(__file__).resolve().parent
READ_ONLY = ("00_preflight", "02_secrets_security", "03_production_mode", "05_signoff")
FULL = os.environ.get("RUNBOOK_REALWORLD") == "full"
#: Each application's port variable (its compose.local.yaml publishes the web service on it).
PORT_VARIABLE = {"wordpress-mysql": "WORDPRESS_PORT", "postgres-adminer": "ADMINER_PORT"}


@dataclass
class Deployed:
    app: str
    project: str
    port: int
    env_file: Path
    compose: Compose

    @property
    def files(self) -> list[Path]:
        return [REALWORLD / self.app / "compose.yaml", REALWORLD / self.app / "compose.local.yaml"]


def wait_for_http(port: int, timeout: float = 180) -> int:
    """The first HTTP status the published port answers with (any status: the app is up)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(1)
    raise AssertionError(f"nothing answered HTTP on port {port} within {timeout:.0f}s: {last}")


def deploy(app: str, directory: Path) -> Deployed:
    """The application up under a project of its own, its web port on a free host port."""
    rw_images.build_images([app])
    project = f"rbrw-{app}-{uuid.uuid4().hex[:6]}"
    port = free_ports(1)[0]
    env_file = directory / f"{project}.env"
    env_file.write_text(f"{PORT_VARIABLE[app]}={port}\n", encoding="utf-8")
    compose = Compose(files=[REALWORLD / app / "compose.yaml", REALWORLD / app / "compose.local.yaml"],
                      project=project, env_files=[env_file])
    deployed = Deployed(app, project, port, env_file, compose)
    compose.up(wait=True, timeout=300)
    wait_for_http(port)
    return deployed


def volumes_of(project: str) -> set[str]:
    """Every volume mounted by the project's containers (named and anonymous)."""
    client = docker.from_env()
    containers = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    return {m["Name"] for c in containers for m in c.attrs.get("Mounts", []) if m.get("Type") == "volume"}


def remove(deployed: Deployed, volumes: set[str]) -> None:
    """Down with the project's volumes, then the anonymous volumes an earlier container left behind (the
    postgres image's VOLUME gets a new one at every down + up, phase 1's included)."""
    deployed.compose.down(volumes=True)
    client = docker.from_env()
    for name in volumes:
        try:
            client.volumes.get(name).remove()
        except docker.errors.NotFound:
            pass


@pytest.fixture(scope="module")
def wordpress(tmp_path_factory):
    deployed = deploy("wordpress-mysql", tmp_path_factory.mktemp("wordpress-mysql"))
    yield deployed
    remove(deployed, volumes_of(deployed.project))


@pytest.fixture(scope="module")
def adminer(tmp_path_factory):
    if not FULL:
        pytest.skip("the full real-world form runs from `make realworld` (RUNBOOK_REALWORLD=full)")
    deployed = deploy("postgres-adminer", tmp_path_factory.mktemp("postgres-adminer"))
    first = volumes_of(deployed.project)
    yield deployed
    remove(deployed, first | volumes_of(deployed.project))


def init_params(app: Deployed, directory: Path) -> Path:
    out = directory / f"{app.project}.yaml"
    proc = run_cli("init", *map(str, app.files), "--env-file", str(app.env_file), "--project", app.project,
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def run_and_judge(app: Deployed, params: Path, directory: Path, phases: tuple[str, ...]) -> list[str]:
    """`runbook run` on the phases; every crash and every difference from the truth, as lines."""
    args = ["run", "--params", str(params), "--output", str(directory / "outputs")]
    for phase in phases:
        args += ["--phase", phase]
    proc = run_cli(*args, timeout=1800)
    assert proc.returncode in (0, 1), proc.stderr  # GO or NO-GO; 2 and above: the run itself broke
    _, records = load_run(run_dir_from(proc.stdout))
    ran = {r["phase"][:2] for r in records} - {"ru"}  # "runner": the runner's own records
    wanted = {p[:2] for p in phases} or {"00", "01", "02", "03", "04", "05"}
    assert ran >= wanted, f"phases without a record: {sorted(wanted - ran)}"
    crashed = truth.crashes(records)
    got = truth.findings(records, app.project)
    wrong = truth.disagreements(got, truth.load_truth(REALWORLD / app.app / "expected-problems.txt"),
                                truth.load_gaps(REALWORLD / app.app / "known-gaps.txt"), sorted(wanted))
    return [f"check crashed: {c}" for c in crashed] + wrong


def test_init_takes_wordpress_for_the_app_service_and_mariadb_for_a_dependency(wordpress, tmp_path):
    params = yaml.safe_load(init_params(wordpress, tmp_path).read_text(encoding="utf-8"))
    split = {"app_services": params.get("app_services"), "dependencies": params.get("dependencies")}
    assert split == {"app_services": ["wordpress"], "dependencies": ["db"]}, json.dumps(params, indent=1)[:2000]


def test_read_only_run_on_wordpress_and_mariadb_reports_exactly_the_true_problems(wordpress, tmp_path):
    params = init_params(wordpress, tmp_path)
    assert run_and_judge(wordpress, params, tmp_path, READ_ONLY) == []


@pytest.mark.skipif(not FULL, reason="the full real-world form runs from `make realworld` (RUNBOOK_REALWORLD=full)")
def test_every_phase_on_wordpress_and_mariadb_reports_exactly_the_true_problems(wordpress, tmp_path):
    params = init_params(wordpress, tmp_path)
    assert run_and_judge(wordpress, params, tmp_path, ()) == []


def test_read_only_run_on_postgres_and_adminer_reports_exactly_the_true_problems(adminer, tmp_path):
    params = init_params(adminer, tmp_path)
    assert run_and_judge(adminer, params, tmp_path, READ_ONLY) == []


def test_every_phase_on_postgres_and_adminer_reports_exactly_the_true_problems(adminer, tmp_path):
    params = init_params(adminer, tmp_path)
    assert run_and_judge(adminer, params, tmp_path, ()) == []
