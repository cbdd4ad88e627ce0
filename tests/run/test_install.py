"""The runbook-lib wheel, installed as a user would: built from this working tree, installed into a fresh
virtual environment outside the checkout (no system site-packages; dependencies from the package index
or pip's cache), then used from a project directory of its own: `runbook lint`, `runbook init`, `runbook
run --phase 00_preflight`. Nothing may come from the checkout: not runbook_lib, not the notebooks, not the
template, not the demo builder, not the kernel's Python.

The project is a one-service compose file under its own ``rbtest-install-*`` project name (never the
user's ``secureconnect-demo``), not the demo: phase 0 only reads (the engine, the compose model, the
secret files), so nothing is deployed and no port is published.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from runbook_lib.package_data import NOTEBOOKS

from conftest import ROOT, USER_PROJECT, snapshot, track
from wheel import session_wheel

INSTALL_TIMEOUT_S = 1500

COMPOSE = """services:
  web:
    image: registry.example/rbtest/web:1.0.0
    user: "10001:10001"
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    restart: unless-stopped
    environment:
      ENV: production
    healthcheck:
      test: ["CMD", "true"]
      interval: 10s
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M, pids: 64}
"""


def _run(argv: list[str], *, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return track(argv, subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return session_wheel(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment (no --system-site-packages) with the wheel and its dependencies."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    assert not root.resolve().is_relative_to(ROOT.resolve())
    proc = _run([sys.executable, "-m", "venv", str(root)], cwd=root.parent, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "include-system-site-packages = false" in (root / "pyvenv.cfg").read_text()
    proc = _run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 # no bytecode compiled at install (pandas, matplotlib...: most of the install's time);
                 # Python compiles what the commands below import, as it would for a user
                 "--no-compile", str(wheel)],
                cwd=root.parent, timeout=INSTALL_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def _user_env(venv: Path, **extra: str) -> dict:
    """The environment of a user who installed the wheel: its bin/ first on PATH, nothing of the checkout
    (no PYTHONPATH, no active virtual environment, no PATH entry inside the checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RUNBOOK_PARAMS")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(ROOT.resolve())]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env.update(extra)
    return env


def test_the_wheel_names_every_package_of_runbook_lib():
    """pyproject.toml lists the packages (its package-dir mapping of notebooks/ needs the list): none is left out."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "runbook_lib").rglob("__init__.py")}
    assert listed == found | {"runbook_lib.notebooks"}


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_the_wheel_holds_the_notebooks_and_the_template_and_not_the_demo(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("runbook_lib/notebooks/")}
    assert shipped == {p.name for p in NOTEBOOKS.glob("*.ipynb")} and "00_preflight.ipynb" in shipped
    with zipfile.ZipFile(wheel) as z:  # the build maps notebooks/ into the package: the same bytes, no copy by hand
        assert NOTEBOOKS == ROOT / "notebooks"
        assert all(z.read(f"runbook_lib/notebooks/{n}") == (ROOT / "notebooks" / n).read_bytes() for n in shipped)
    assert {"runbook_lib/templates/runbook/index.html.j2", "runbook_lib/templates/runbook/conf.json"} <= set(names)
    assert not [n for n in names if n.startswith(("runbook_demo", "demo/", "tests/", "notebooks/", "parameters/"))], names
    assert {n.split("/", 1)[0] for n in names if not n.startswith("runbook_lib-")} == {"runbook_lib"}
    print(f"{wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB, {len(names)} files")


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_installed_runbook_lints_inits_and_runs_preflight_from_a_project_directory(venv, engine, tmp_path):
    project = f"rbtest-install-{secrets.token_hex(4)}"
    assert project != USER_PROJECT
    proj = tmp_path / "project"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE)
    runbook, python = str(venv / "bin" / "runbook"), str(venv / "bin" / "python")
    # A python3 kernelspec first on Jupyter's path that is not the venv's Python (as one left by an
    # `ipykernel install --user` from a checkout's venv would be): Jupyter alone would start it.
    trap = tmp_path / "jupyter"
    marker = tmp_path / "the-wrong-kernel-started"
    fake = trap / "not-this-python"
    (trap / "kernels" / "python3").mkdir(parents=True)
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake.chmod(0o755)
    (trap / "kernels" / "python3" / "kernel.json").write_text(json.dumps(
        {"argv": [str(fake), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "not this one",
         "language": "python"}))
    env = _user_env(venv, JUPYTER_PATH=str(trap))

    where = _run([python, "-c", "import runbook_lib, sys; from jupyter_client.kernelspec import KernelSpecManager as K; "
                  "print(runbook_lib.__file__); print(sys.prefix); print(K().get_kernel_spec('python3').argv[0])"],
                 cwd=proj, env=env)
    pkg_file, prefix, jupyter_would = where.stdout.split()
    pkg = Path(pkg_file).parent
    assert Path(prefix) == venv and pkg.is_relative_to(venv), "runbook_lib comes from the wheel, not the checkout"
    assert jupyter_would == str(fake), "the trap is live: Jupyter's own lookup would take it"
    assert _run([python, "-c", "import runbook_demo"], cwd=proj, env=env).returncode == 1
    installed_before = sorted(p.relative_to(pkg) for p in pkg.rglob("*") if "__pycache__" not in p.parts)

    lint = _run([runbook, "lint", "compose.yaml"], cwd=proj, env=env)
    assert lint.returncode == 0 and "1 services linted" in lint.stdout, lint.stdout + lint.stderr

    init = _run([runbook, "init", "compose.yaml", "--project", project, "--out", "params.yaml"], cwd=proj, env=env)
    assert init.returncode == 0 and (proj / "params.yaml").is_file(), init.stderr

    run = _run([runbook, "run", "--phase", "00_preflight", "--params", "params.yaml"], cwd=proj, env=env, timeout=600)
    assert run.returncode == 0 and run.stdout.startswith(f"GO: {project}"), run.stdout + run.stderr
    assert not marker.exists(), "the notebooks ran on a kernel of Jupyter's path, not the venv's Python"
    [run_dir] = (proj / "outputs").iterdir()  # the run directory, under the project's directory (cwd)
    assert run_dir.name.endswith(f"-{project}")
    assert f"report: {run_dir / 'report.html'}" in run.stdout
    records = json.loads((run_dir / "results" / "00_preflight.json").read_text())
    ids = {r["id"] for r in records}
    assert {"preflight.engine", "preflight.compose_config", "preflight.static_audit"} <= ids, ids
    assert not [r for r in records if r["status"] in ("FAIL", "ERROR")], records
    assert json.loads((run_dir / "verdict.json").read_text())["verdict"] == "GO"
    assert json.loads((run_dir / "run.json").read_text())["params_source"] == str(proj / "params.yaml")
    for name in ("report.html", "summary.json", "manifest.json", "notebooks/00_preflight.ipynb"):
        assert (run_dir / name).is_file(), name
    verify = _run([runbook, "verify", str(run_dir)], cwd=proj, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Nothing was written into the installed package, and phase 0 deployed nothing.
    assert sorted(p.relative_to(pkg) for p in pkg.rglob("*") if "__pycache__" not in p.parts) == installed_before
    assert snapshot(engine, project) == {}

    # What belongs to the source checkout says so in one line, without a traceback.
    demo = _run([runbook, "demo", "status"], cwd=proj, env=env)
    assert demo.returncode == 2 and "the demo comes with the source checkout" in demo.stderr, demo.stderr
    assert "Traceback" not in demo.stderr and len(demo.stderr.strip().splitlines()) == 1
    doc = _run([python, "-m", "runbook_lib.params.doc", "--check"], cwd=proj, env=env)
    assert doc.returncode == 2 and "belongs to the source checkout" in doc.stderr and "Traceback" not in doc.stderr


def test_runbook_demo_without_the_demo_builder_is_one_line_and_exit_2(tmp_path):
    """In the checkout the demo builder is installed; hide it to see what an installed wheel says."""
    argv = [sys.executable, "-c", "import sys; sys.modules['runbook_demo'] = None; "
            "from runbook_lib.cli import main; sys.exit(main(['demo', 'up']))"]
    proc = _run(argv, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "runbook demo: the demo comes with the source checkout (clone the runbook repository and run `make demo` "
        "there); it is not part of the installed runbook-lib package"]
