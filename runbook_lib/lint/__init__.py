"""`runbook lint`: the static audit of compose files, and the rules phase 2 shares with it.

Every rule judges a :class:`ServiceFacts`, which is built either from the resolved compose model
(``docker compose config --format json``: anchors, ``extends``, ``env_file`` and interpolation are
Compose's own) or from ``docker inspect`` of a running container. One function judges, whatever the
source: :func:`judge_environment` is the plaintext-credential rule for both ``runbook lint`` and phase 2,
:func:`judge_file_env` the ``*_FILE`` rule (with a file lookup that reads the host statically and the
container at run time), and so on. The runtime checks live in :mod:`runbook_lib.phases.security`.

Rule severities are defaults; ``policy.severity_overrides`` changes them per check id. Hardening records
carry their CIS Docker Benchmark (v1.6) id in ``evidence["cis"]``.

Output: a table for people, JSON (the check-record contract) for machines, SARIF 2.1.0 for code scanning.
Exit status of ``runbook lint``: 0 no FAIL, 1 any FAIL or ERROR, 2 input error (files that do not resolve,
refused input, Compose's timeout), 3 environment problem (no Compose v2), 4 internal error (a bug: no record
was made; docs/lint.md).
"""
from __future__ import annotations

import importlib

# Every public name of the package, by the module that defines it (a dotted name: a module of another package,
# the service model's, which lint hands on because its rules judge it). They are imported on first use (PEP 562),
# so that `runbook lint` can start Compose (lint.run) before the rules' modules load: it imports them while
# Compose resolves the model.
_EXPORTS = {
    "audit": ("judge_duplicates", "judge_healthcheck", "judge_image", "judge_restart", "lint_model"),
    "project_secrets": ("declared_secrets", "git_tracked", "host_secrets", "judge_committed", "judge_weak_value",
                        "project_names"),
    "runbook_lib.model.facts": ("MAX_SECRET_BYTES", "FileState", "ServiceFacts", "can_read", "dac_override", "host_file_state",
              "parse_user", "read_secret_file", "secret_targets"),
    "judges": ("DANGEROUS_CAPS", "is_pointer", "judge_args", "judge_environment", "judge_file_env",
               "judge_hardening", "judge_mounted", "judge_secret_modes", "judge_unreferenced", "judge_user",
               "leaked_secret"),
    "published": ("ADMIN_PORTS", "HTTP_PORTS", "group_ports", "judge_admin_ports", "judge_ports", "judge_tls"),
    "output": ("FORMATTERS", "format_error", "format_json", "format_sarif", "format_table"),
    "source": ("MAX_EXPANDED_NODES", "MAX_FILE_BYTES", "Source", "read_source"),
    "rules": ("LINT_PHASE", "RULES", "Rule", "Verdict", "make_record"),
    "result": ("LintResult",),
    "run": ("lint_files", "resolve"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module if "." in module else f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
