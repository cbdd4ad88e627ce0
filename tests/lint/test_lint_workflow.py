"""`runbook lint` where linters live: a failure threshold, inline suppressions, a baseline, GitHub and
GitLab output, one project per directory, the pre-commit hook run by pre-commit itself, and the CI jobs
of docs/lint.md run command by command. Compose resolves every file for real (`docker compose config`)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli, track

WEB = """services:
  web:
    image: nginx:1.27.3
    ports:
      - "127.0.0.1:8080:80"
"""

DB = """services:
  db:
    image: postgres:16.4
    environment:
      POSTGRES_PASSWORD: hunter2-but-longer
"""


def lint(tmp_path: Path, text: str, *args: str, name: str = "compose.yaml") -> subprocess.CompletedProcess:
    f = tmp_path / name
    f.write_text(text)
    return run_cli("lint", str(f), *args, cwd=tmp_path)


def records(proc: subprocess.CompletedProcess) -> list[dict]:
    return json.loads(proc.stdout)["records"]


def test_medium_findings_print_but_fail_only_at_or_above_the_threshold(tmp_path):
    proc = lint(tmp_path, WEB)
    assert proc.returncode == 0, proc.stdout
    assert "hardening.cap_drop" in proc.stdout and "medium" in proc.stdout  # still printed
    assert "exit 0: nothing fails (--fail-on high" in proc.stdout.splitlines()[-1]
    assert lint(tmp_path, WEB, "--fail-on", "medium").returncode == 1
    assert lint(tmp_path, WEB, "--fail-on", "critical").returncode == 0
    crit = lint(tmp_path, DB, "--fail-on", "critical", "--format", "json")
    assert crit.returncode == 1 and json.loads(crit.stdout)["fail_on"] == "critical"


def test_a_reasoned_inline_ignore_suppresses_and_stays_in_json_and_sarif(tmp_path):
    text = DB.replace("      POSTGRES_PASSWORD: hunter2-but-longer",
                      '      # runbook-lint: ignore=secrets.no_plaintext_env reason="throwaway CI database"\n'
                      "      POSTGRES_PASSWORD: hunter2-but-longer")
    proc = lint(tmp_path, text, "--format", "json")
    assert proc.returncode == 0, proc.stdout
    [rec] = [r for r in records(proc) if r["id"] == "secrets.no_plaintext_env"]
    assert rec["status"] == "FAIL" and rec["evidence"]["suppressed"] == {
        "by": "compose.yaml:5", "reason": "throwaway CI database"}
    sarif = json.loads(lint(tmp_path, text, "--format", "sarif").stdout)
    [res] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "secrets.no_plaintext_env"]
    assert res["suppressions"] == [{"kind": "inSource", "status": "accepted", "justification": "throwaway CI database"}]
    table = lint(tmp_path, text)
    assert "secrets.no_plaintext_env" not in table.stdout and "1 suppressed inline" in table.stdout


def test_an_ignore_on_a_list_item_covers_the_finding_located_at_its_key(tmp_path):
    text = """services:
  web:
    image: nginx:1.27.3
    ports:
      - "80:80"  # runbook-lint: ignore=hardening.tls,hardening.published_ports reason="redirects to 443"
"""
    recs = {r["id"]: r for r in records(lint(tmp_path, text, "--format", "json"))}
    assert recs["hardening.tls"]["evidence"]["suppressed"]["reason"] == "redirects to 443"
    assert "lint.suppression_stale" not in recs


def test_an_ignore_without_a_reason_suppresses_nothing_and_is_a_finding(tmp_path):
    text = DB.replace("  db:", "  db:  # runbook-lint: ignore=secrets.*")
    proc = lint(tmp_path, text, "--format", "json")
    assert proc.returncode == 1  # the critical finding still fails
    recs = records(proc)
    [secret] = [r for r in recs if r["id"] == "secrets.no_plaintext_env"]
    assert "suppressed" not in secret["evidence"] and "no reason" in secret["evidence"]["suppression_ignored"]
    [bare] = [r for r in recs if r["id"] == "lint.suppression_reason"]
    assert bare["status"] == "FAIL" and bare["target"] == "compose.yaml:2"


def test_a_suppression_that_matches_nothing_is_reported_stale(tmp_path):
    text = WEB.replace("    image:", '    # runbook-lint: ignore=secrets.no_plaintext_env reason="was a literal"\n    image:')
    recs = records(lint(tmp_path, text, "--format", "json"))
    [stale] = [r for r in recs if r["id"] == "lint.suppression_stale"]
    assert stale["status"] == "WARN" and stale["target"] == "compose.yaml:3"
    assert "matches no finding of secrets.no_plaintext_env" in stale["actual"]


def test_a_baseline_survives_moved_lines_and_only_new_findings_fail(tmp_path):
    both = DB + WEB.replace("services:\n", "")
    proc = lint(tmp_path, both, "--write-baseline", str(tmp_path / "base.json"))
    assert proc.returncode == 0 and "baseline written" in proc.stdout
    base = json.loads((tmp_path / "base.json").read_text())
    assert "hunter2" not in (tmp_path / "base.json").read_text() and base["findings"]
    moved = "services:\n\n\n" + WEB.replace("services:\n", "") + DB.replace("services:\n", "")  # lines move
    proc = lint(tmp_path, moved, "--baseline", str(tmp_path / "base.json"), "--format", "json")
    assert proc.returncode == 0, proc.stdout
    states = {r["evidence"].get("baseline") for r in records(proc) if r["status"] in ("FAIL", "WARN")}
    assert states == {"unchanged"}
    new = moved + "      API_TOKEN: another-literal-token-value\n"
    proc = lint(tmp_path, new, "--baseline", str(tmp_path / "base.json"))
    assert proc.returncode == 1 and "1 new" in proc.stdout.splitlines()[-1]
    assert lint(tmp_path, new, "--baseline", str(tmp_path / "nope.json")).returncode == 2


ANNOTATION = re.compile(r"^::(error|warning|notice) (?:file=(?P<file>[^,]+),line=(?P<line>\d+),)?title=(?P<title>[^:]+)::(?P<msg>.+)$")


def test_github_annotations_point_at_the_lines_of_the_findings(tmp_path):
    proc = lint(tmp_path, DB + WEB.replace("services:\n", ""), "--format", "github")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    parsed = [ANNOTATION.match(ln) for ln in lines]
    assert all(parsed), [ln for ln, m in zip(lines, parsed) if not m]
    text = (tmp_path / "compose.yaml").read_text().splitlines()
    [secret] = [m for m in parsed if m["title"].startswith("secrets.no_plaintext_env")]
    assert secret.group(1) == "error" and secret["file"] == "compose.yaml"
    assert text[int(secret["line"]) - 1].strip().startswith("environment")
    assert "hunter2" not in proc.stdout
    assert parsed[-1].group(1) == "notice" and "exit 1" in parsed[-1]["msg"]
    assert {m.group(1) for m in parsed[:-1]} == {"error", "warning"}


def test_gitlab_code_quality_is_a_valid_report(tmp_path):
    proc = lint(tmp_path, DB, "--format", "gitlab")
    issues = json.loads(proc.stdout)
    assert isinstance(issues, list) and issues
    for i in issues:
        assert set(i) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert i["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert i["location"]["path"] == "compose.yaml" and i["location"]["lines"]["begin"] >= 1
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert {i["severity"] for i in issues if i["check_name"] == "secrets.no_plaintext_env"} == {"blocker"}


def test_per_directory_lints_each_project_once_with_its_override(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "compose.yaml").write_text(WEB)
    (a / "compose.override.yaml").write_text("services:\n  web:\n    environment:\n      API_TOKEN: literal-token-value-1\n")
    (b / "docker-compose.yml").write_text(WEB)
    proc = run_cli("lint", "--per-directory", str(a / "compose.yaml"), str(a / "compose.override.yaml"),
                   str(b / "docker-compose.yml"), cwd=tmp_path)
    assert proc.returncode == 1  # a's override adds a literal credential
    heads = [ln for ln in proc.stdout.splitlines() if ln.startswith("== ")]
    assert heads == [f"== {a / 'compose.yaml'}, {a / 'compose.override.yaml'}", f"== {b / 'docker-compose.yml'}"]
    assert run_cli("lint", "--per-directory", "--format", "json", str(b / "docker-compose.yml")).returncode == 2


@pytest.mark.slow
def test_the_pre_commit_hook_runs_under_pre_commit_itself(tmp_path):
    repo = tmp_path / "project"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "compose.yaml").write_text(DB)
    (repo / "README").write_text("not a compose file\n")
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    # pip compiles no bytecode when pre-commit installs the hook's environment (most of the install's time,
    # nothing this test looks at); pip reads PIP_NO_COMPILE as the value of the option it negates: "0" is --no-compile
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PIP_NO_COMPILE": "0"}
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "runbook-lint", "--all-files"]
    proc = track(pre_commit, subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=1200))
    assert proc.returncode == 1, proc.stdout[-3000:]  # the literal password is critical
    assert "secrets.no_plaintext_env" in proc.stdout and "README" not in proc.stdout.split("runbook lint")[-1]
    (repo / "app" / "compose.yaml").write_text(DB.replace(
        "  db:", '  # runbook-lint: ignore=secrets.no_plaintext_env reason="local throwaway"\n  db:'))
    proc = track(pre_commit, subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=600))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Passed" in proc.stdout


def _ci_commands() -> list[str]:
    """Every shell command of the two CI definitions in docs/lint.md, in order (GitHub `run:`, GitLab
    `script:`)."""
    text = (ROOT / "docs" / "lint.md").read_text()
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
def test_every_command_of_the_ci_jobs_runs(tmp_path, demo_stack, demo_params):
    """docs/lint.md's jobs, run as their runners would (bash -eo pipefail per step), against this session's
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
           "RUNBOOK_SOURCE": str(session_wheel(tmp_path.parent)), "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("VIRTUAL_ENV", None)
    env["PIP_NO_COMPILE"] = "0"  # no bytecode compiled at install (as in the pre-commit test above)
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
