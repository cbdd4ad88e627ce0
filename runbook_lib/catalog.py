"""Every check the toolkit declares, gathered in one place for the registry.

The registry (:mod:`runbook_lib.results.registry`) sits low in the package and imports nothing of the
project; this module sits at the top and knows every module that declares checks: importing it imports the
phases (each phase module declares its checks and its manifest places them in their phase), the fleet's own
records, and hands the static rules of ``runbook lint`` to the registry. The registry imports it on first use
(:data:`~runbook_lib.results.registry.CATALOG`).

:data:`MANIFESTS` is every phase's manifest (:mod:`runbook_lib.run.manifest`), by phase.
"""
from __future__ import annotations

from runbook_lib.lint.rules import RULES
from runbook_lib.phases import preflight, production, redeploy, security, signoff, smoke
from runbook_lib.results import registry
from runbook_lib.run import fleet  # noqa: F401 - declares the fleet's records (fleet.target_*)
from runbook_lib.run import rollback  # noqa: F401 - declares the rollback's records (rollback.*)
from runbook_lib.run.manifest import Manifest

MANIFESTS: dict[str, Manifest] = {m.phase: m for m in (preflight.MANIFEST, redeploy.MANIFEST, security.MANIFEST,
                                                       production.MANIFEST, smoke.MANIFEST, signoff.MANIFEST)}

registry.declare_rules(RULES.values(), function="runbook_lib.lint:lint_model")
