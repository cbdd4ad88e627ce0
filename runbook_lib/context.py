"""The run context a phase's checks share: parameters, the compose project, the engine, redaction.

Built once per notebook by :func:`runbook_lib.phase.open_phase`; checks receive it as their only
argument so they stay plain functions that are easy to call from a test.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .compose import Compose
from .engine import Engine
from .params import Params
from .redact import Redactor


@dataclass
class Context:
    params: Params
    run_dir: Path | None = None
    progress: Callable[[str], None] = print
    redactor: Redactor = field(default_factory=Redactor)
    _engine: Engine | None = None
    # Facts one check hands to a later one in the same phase (e.g. the inventory before redeploy).
    state: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def compose(self) -> Compose:
        return Compose(self.params.compose_files, project=self.params.project, env_files=self.params.env_files)

    @functools.cached_property
    def model(self) -> dict[str, Any]:
        """The resolved compose model (``docker compose config --format json``)."""
        return self.compose.config()

    @property
    def engine(self) -> Engine:
        """The engine, connected on first use (raises EngineUnavailable)."""
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    @property
    def services(self) -> list[str]:
        return sorted(self.model.get("services", {}))

    def secret_files(self) -> dict[str, Path]:
        """File-based secrets of the compose model: name -> host path."""
        out: dict[str, Path] = {}
        for name, spec in (self.model.get("secrets") or {}).items():
            if spec.get("file"):
                out[name] = Path(spec["file"])
        return out

    def learn_secrets(self) -> None:
        """Teach the redactor every secret value readable on the host."""
        self.redactor.learn_files(self.secret_files().values())
