"""The parameters `runbook lint` reads when it is given no parameters file, without pydantic.

Importing pydantic and building the parameters models (:mod:`runbook_lib.params.core`) costs about a
third of a second, more than `runbook lint` takes on a small project. Without ``--params`` lint only
needs the defaults of ``security`` and ``production.restart_policy``: :func:`default_security` and
:func:`default_production` give them as plain objects that answer like the pydantic models do (the same
attribute names, values and methods). Any other attribute is taken from the real model, imported then,
so nothing can read a default that differs from it. A test compares every field with the models'.
"""
from __future__ import annotations

import fnmatch
from typing import Any

from runbook_lib.params.values import DEFAULT_CREDENTIAL_PATTERNS, any_of

class _Defaults:
    """The defaults of one parameters model; attributes it does not mirror come from the model itself."""

    _model = ""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        from runbook_lib.params import sections as params

        return getattr(getattr(params, self._model)(), name)


class SecurityDefaults(_Defaults):
    """``Security()`` for lint: the fields the rules read, and its methods."""

    _model = "Security"

    def __init__(self) -> None:
        self.internal_services: list[str] = []
        self.publish_interfaces: list[str] = ["127.0.0.1", "::1"]
        self.readable_by_others = "warn"
        self.plaintext_allow: list[str] = []
        self.credential_patterns: list[str] = list(DEFAULT_CREDENTIAL_PATTERNS)
        self.secrets_dir = "/run/secrets"
        self.tls_terminated: list[str] = []
        self.log_tail_lines = 2000
        self.secret_consumers: list[Any] = []

    def allowed(self, name: str) -> bool:
        return bool(self.plaintext_allow) and any(fnmatch.fnmatchcase(name, pat) for pat in self.plaintext_allow)

    def secret_consumer(self, name: str) -> Any:
        return next((c for c in self.secret_consumers if fnmatch.fnmatchcase(name, c.pattern)), None)

    def looks_like_credential(self, name: str) -> bool:
        return bool(any_of(tuple(self.credential_patterns)).search(name))


class ProductionDefaults(_Defaults):
    """``Production()`` for lint: the restart policies service.restart_policy accepts."""

    _model = "Production"

    def __init__(self) -> None:
        self.restart_policy: list[str] = ["always", "unless-stopped"]
        self.restart_policy_overrides: dict[str, list[str]] = {}


def default_security() -> Any:
    return SecurityDefaults()


def default_production() -> Any:
    return ProductionDefaults()
