"""What every phase-3 check shares: the phase's name, the services it looks at, and running a judge on
every container of a service (concurrently, records in service order)."""
from __future__ import annotations

import re
from typing import Any, Callable

from runbook_lib.deploy.compose import no_container_record
from runbook_lib.engine import ContainerView
from runbook_lib.errors import RunbookError
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.redact import marker
from runbook_lib.run.context import Context

PHASE = "03_production_mode"

# Names whose values are masked in drift evidence even before redaction (a literal credential the
# redactor has not learned must not be printed while pointing at a difference).
_CREDENTIAL_NAME = re.compile(r"(?i)(secret|passw|token|api_?key|private_?key|credential|auth)")


def mask_credential(name: str, value: Any) -> Any:
    """``value``, masked when ``name`` looks like a credential's (a variable's name)."""
    if value is None or not _CREDENTIAL_NAME.search(name):
        return value
    return marker(str(value))


def expected_env_for(ctx: Context, service: str) -> dict[str, str]:
    """The variables ``service`` must carry: ``expected_env`` merged with its ``env_overrides``."""
    p = ctx.params.production
    return {**p.expected_env, **p.env_overrides.get(service, {})}


def app_services(ctx: Context) -> list[str]:
    """The parameters' app services, or (when none are listed) every service that publishes a port."""
    if ctx.params.app_services:
        return list(ctx.params.app_services)
    return sorted(n for n, s in ctx.model.get("services", {}).items() if s.get("ports"))


def by_service(ctx: Context, current: bool = True) -> dict[str, list[ContainerView]]:
    """The containers of each service: the deployment's current ones (in swarm mode the containers of the
    running tasks, :meth:`Context.current_containers`), or with ``current`` False every container the
    engine holds (in swarm mode past tasks' too)."""
    out: dict[str, list[ContainerView]] = {s: [] for s in ctx.services}
    for v in (ctx.current_containers() if current else ctx.containers()):
        out.setdefault(v.service, []).append(v)
    return out


def inspect_cmd(v: ContainerView | str, fmt: str) -> str:
    name = v.name if isinstance(v, ContainerView) else v
    return f"docker inspect --format '{fmt}' {name}"


def no_container(c: Check, svc: str, expected: str, ctx: Context | None = None) -> CheckRecord:
    """The record of a service with no container to judge (:meth:`Deployment.missing_service`). In swarm mode:
    a FAIL when no task of the service runs anywhere, an ERROR when its running tasks are on nodes whose engines
    this run cannot read (nothing was looked at: never a PASS, not a FAIL either)."""
    if ctx is not None:
        return ctx.deployment.missing_service(c, svc, expected)
    return no_container_record(c, svc, expected)


def each_container(ctx: Context, c: Check, services: list[str], expected: str,
                    judge: Callable[[ContainerView], CheckRecord], current: bool = True) -> list[CheckRecord]:
    """Run ``judge`` on every container of ``services`` (concurrently, :meth:`Context.map_containers`);
    a missing container is a FAIL (see :func:`no_container`), an engine error an ERROR for that service.
    ``current``: as :func:`by_service`."""
    try:
        views_of = by_service(ctx, current)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected=expected)]
    # judged concurrently on the engine's bounded pool; records in service order whatever the pool size
    judged = iter(ctx.map_containers(judge, [v for svc in services for v in views_of.get(svc, [])]))
    out = []
    for svc in services:
        views = views_of.get(svc, [])
        if not views:
            out.append(no_container(c, svc, expected, ctx))
            continue
        for v in views:
            r = next(judged)
            out.append(c.error(svc, r, expected=expected) if isinstance(r, RunbookError) else r)
    return out


def skip_unset(c: Check, target: str, parameter: str, expected: str) -> CheckRecord:
    """The SKIP of a component whose URL the parameters leave empty: nothing was looked at."""
    return c.record(target, "SKIP", expected=expected, actual=f"no {parameter}",
                    evidence={"parameter": parameter}, severity="info")
