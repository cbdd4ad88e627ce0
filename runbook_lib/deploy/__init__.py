"""The deployment a run verifies, behind one interface (:class:`~runbook_lib.deploy.base.Deployment`):
a Compose project (:mod:`.compose`) or a Swarm stack (:mod:`.swarm`). :func:`open_deployment` builds the one
the parameters name."""
from __future__ import annotations

from typing import Any, Callable

from runbook_lib.deploy.base import Deployment
from runbook_lib.deploy.compose import ComposeDeployment
from runbook_lib.deploy.swarm import SwarmDeployment
from runbook_lib.engine import Engine
from runbook_lib.params import Params

IMPLEMENTATIONS: dict[str, type[Deployment]] = {c.mode: c for c in (ComposeDeployment, SwarmDeployment)}


def open_deployment(params: Params, engine: Engine | Callable[[], Engine], cache: Any = None) -> Deployment:
    """The deployment ``params.mode`` names (``compose`` or ``swarm``), reading through ``engine`` (an Engine, or
    a getter that connects on first use). ``cache``: where readings a phase shares are kept (see :mod:`.base`)."""
    getter = engine if callable(engine) and not isinstance(engine, Engine) else (lambda: engine)
    return IMPLEMENTATIONS[params.mode](params, getter, cache)


__all__ = ["ComposeDeployment", "Deployment", "SwarmDeployment", "open_deployment"]
