"""Issue 17: `runbook lint` starts like a small tool. Without a parameters file it imports neither pydantic
(the parameters models), nor the docker SDK, nor importlib.metadata; the defaults it reads instead
(runbook_lib/run/defaults.py) are the parameters models' own, field by field."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import PARAMS, ROOT

from runbook_lib.run.defaults import default_production, default_security
from runbook_lib.run.params import Production, Security

HEAVY = ("pydantic", "docker", "requests", "importlib.metadata", "runbook_lib.run.params", "matplotlib", "pandas")

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
    assert rc in (0, 1) and "runbook_lib.run.params" in modules and "pydantic" in modules


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
