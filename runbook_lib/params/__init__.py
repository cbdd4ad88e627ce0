"""The run parameters: the ground floor of the toolkit.

Every other package reads its parameters from here, and this package imports nothing else of the project
but :mod:`runbook_lib.errors` (whose errors name the file and the key). :mod:`.core` holds the whole file
(:class:`Params`) and its loading, :mod:`.sections` its sections, :mod:`.defaults` the pydantic-free defaults
`runbook lint` starts with, :mod:`.doc` the generator of docs/parameters.md.

The names below are handed on lazily: importing :mod:`.defaults` must not import pydantic (lint's start-up).
"""
from __future__ import annotations

import importlib
from typing import Any

_CORE = ("CHANGES_DEPLOYMENT", "DEFAULT_PARAMS", "PARAMS_ENV", "PHASES", "SWARM_PHASES", "Params", "default_outputs",
         "dump_resolved", "load_params", "load_waivers", "project_dir", "refuse_unsupported_phases",
         "resolve_params_file", "unknown_phase", "with_overrides")
_SECTIONS = ("EngineParams", "Fleet", "Policy", "Production", "Redeploy", "Security", "Signoff", "Smoke", "Target",
             "Waiver", "WaiverFile")
__all__ = [*_CORE, *_SECTIONS]


def __getattr__(name: str) -> Any:
    if name in _CORE:
        return getattr(importlib.import_module("runbook_lib.params.core"), name)
    if name in _SECTIONS:
        return getattr(importlib.import_module("runbook_lib.params.sections"), name)
    raise AttributeError(f"module 'runbook_lib.params' has no attribute {name!r}")
