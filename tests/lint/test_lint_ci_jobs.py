"""The CI jobs of docs/ci.md, run command by command as their runners would, against this session's demo
stack (`runbook lint` in every format, a read-only run with its summary and artifacts)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, track

# The install step compiles no bytecode (pandas, matplotlib...: most of a fresh install's time, and nothing this
# test looks at); Python compiles what the commands import when they import it. pip reads PIP_NO_COMPILE as the
# value of the option it negates: "0" means --no-compile.
NO_BYTECODE_AT_INSTALL = {"PIP_NO_COMPILE": "0"}


def _ci_commands() -> list[str]:
    """Every shell command of the two CI definitions in docs/ci.md, in order (GitHub `run:`, GitLab
    `script:`)."""
    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    github = next(b for b in blocks if isinstance(b, dict) and "jobs" in b)
    gitlab = next(b for b in blocks if isinstance(b, dict) and "runbook-lint" in b)
    out = [s["run"] for job in github["jobs"].values() for s in job["steps"] if "run" in s]
    out += [line for job in gitlab.values() for line in job["script"]]
    return out


def test_the_ci_jobs_use_every_documented_command_shape():
    cmds = _ci_commands()
    assert len(cmds) == 11
    assert any("--format github" in c for c in cmds) and any("--format gitlab" in c for c in cmds)
    assert any("--format sarif" in c for c in cmds) and sum(" run --params" in c for c in cmds) == 2


@pytest.mark.slow
@pytest.mark.docker
def test_every_command_of_the_ci_jobs_runs(tmp_path, tmp_path_factory, demo_stack, demo_params):
    """docs/ci.md's jobs, run as their runners would (bash -eo pipefail per step), against this session's
    demo stack: the install from a wheel of this tree into a fresh venv (once: GitHub's and GitLab's venvs
    are the same directory here), lint in every format, a read-only run with its summary and artifacts."""
    from wheel import session_wheel

    project = tmp_path / "project"
    (project / "parameters").mkdir(parents=True)
    shutil.copy(demo_params, project / "parameters" / "prod.yaml")
    venv_dir = tmp_path / "tmp" / "runbook"
    venv_dir.parent.mkdir()
    (project / ".runbook").symlink_to(venv_dir)
    summary = tmp_path / "step-summary.md"
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path / "tmp"), "CI_PROJECT_DIR": str(project),
           "RUNBOOK_SOURCE": str(session_wheel(tmp_path_factory)), "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("VIRTUAL_ENV", None)
    env.update(NO_BYTECODE_AT_INSTALL)
    installed = False
    for cmd in _ci_commands():
        if "pip\" install" in cmd:
            if installed:
                continue
            installed = True
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", cmd]
        proc = track(argv, subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=1200))
        assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
    sarif = json.loads((project / "runbook-lint.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert isinstance(json.loads((project / "gl-code-quality.json").read_text()), list)
    github_run, gitlab_run = sorted((project / "outputs").iterdir())  # one read-only run per CI system
    for run_dir in (github_run, gitlab_run):
        assert {"junit.xml", "summary.md", "report.html", "manifest.json"} <= {p.name for p in run_dir.iterdir()}
    assert summary.read_text() == (github_run / "summary.md").read_text()  # the job summary step
