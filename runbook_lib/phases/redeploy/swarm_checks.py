"""Phase 1 of a Swarm stack: it is not taken down, it is redeployed the way Swarm does it, service by service.

``docker stack deploy --prune`` (``redeploy.stack_deploy``) → every service of the stack file converged: desired
replicas running (healthy where it has a healthcheck), update completed, no task rejected, bounded by
``redeploy.healthy_timeout_s`` (``redeploy.service_converged``) → services no longer in the file removed and
named (``redeploy.services_pruned``). The inventory of a stack (:func:`stack_inventory`) adds the manager's view
of every node to what this engine holds. The rest of the phase is :mod:`runbook_lib.phases.redeploy`, shared
with compose mode.
"""
from __future__ import annotations

import time

from runbook_lib.engine import ContainerView
from runbook_lib.engine import stack as swarm
from runbook_lib.errors import ComposeError, EnvironmentProblem, RunbookError
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context

PHASE = "01_controlled_redeployment"  # the phase of runbook_lib.phases.redeploy


def tail(text: str, lines: int = 30) -> str:
    """The last ``lines`` lines of a command's output."""
    return "\n".join(text.strip().splitlines()[-lines:])


def service_summary(stack: str, s: dict) -> dict:
    """One service of the stack as an inventory records it (``docker service inspect``)."""
    spec = s.get("Spec") or {}
    mode = spec.get("Mode") or {}
    cspec = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    name = spec.get("Name", "")
    return {"service": name[len(stack) + 1:] if name.startswith(stack + "_") else name, "name": name,
            "id": (s.get("ID") or "")[:12], "image": cspec.get("Image", ""),
            "mode": "global" if "Global" in mode else "replicated",
            "replicas": (mode.get("Replicated") or {}).get("Replicas"), "version": (s.get("Version") or {}).get("Index"),
            "updated": s.get("UpdatedAt", ""), "update_state": (s.get("UpdateStatus") or {}).get("State"),
            "secrets": sorted(x.get("SecretName", "") for x in cspec.get("Secrets") or [])}


def stack_inventory(ctx: Context, containers: list[ContainerView]) -> dict:
    """What a stack's inventory adds to this engine's containers and volumes: the manager's view of every node,
    its services and the tasks meant to run now (no leftovers: a stack is not taken down)."""
    eng, stack = ctx.engine, ctx.params.stack
    return {"services": [service_summary(stack, s) for s in eng.stack_services(stack)],
            "tasks": [{"service": t.get("ServiceID", "")[:12], **swarm.task_evidence(t)}
                      for t in eng.stack_tasks(stack) if t.get("DesiredState") in ("running", "ready")],
            "leftovers": []}


def describe_stack(inv: dict) -> str:
    """A stack's inventory in a record's words."""
    return (f"{len(inv['services'])} services, {len(inv['tasks'])} current tasks; on this engine "
            f"{len(inv['containers'])} containers, {len(inv['images'])} images, {len(inv['volumes'])} volumes")


def describe_stack_after(inv: dict, before: dict | None) -> str:
    """A stack's inventory after the redeployment in a record's words: how many tasks are new since ``before``."""
    old_tasks = {t["id"] for t in (before or {}).get("tasks", [])}
    new = sum(1 for t in inv["tasks"] if t["id"] not in old_tasks)
    return (f"{len(inv['services'])} services, {len(inv['tasks'])} current tasks ({new} new since the "
            f"inventory before); on this engine {len(inv['containers'])} containers, "
            f"{len(inv['images'])} images, {len(inv['volumes'])} volumes")


# -- `docker stack deploy --prune`, then convergence ------------------------------------------------------

@check("redeploy.stack_deploy", "Stack deployed", phase=PHASE, severity="critical", category="Startup and restart stability",
       changes_deployment=True,
       remediation="Read the stderr in the evidence: a secret or config missing, a key the stack loader refuses, an "
                   "engine that is not a swarm manager.")
def stack_deploy(ctx: Context) -> list[CheckRecord]:
    """``docker stack deploy --prune --resolve-image R -c FILE... STACK`` (R: ``redeploy.resolve_image``): Swarm
    updates the services whose spec changed, creates the new ones and removes those no longer in the file.
    It returns before anything has converged (``redeploy.service_converged`` waits)."""
    st, rd = ctx.params.stack, ctx.params.redeploy
    argv = swarm.deploy_command(ctx.params.compose_files, st, prune=True, resolve_image=rd.resolve_image)
    c = Check("redeploy.stack_deploy", command=" ".join(argv))
    ctx.progress(f"$ {c.command}")
    ctx.state.deploy_started = time.time()
    try:
        proc = swarm.stack_deploy(ctx.params.compose_files, st, prune=True, resolve_image=rd.resolve_image,
                                  timeout=rd.down_timeout_s)
    except ComposeError as exc:
        return [c.record(st, "FAIL", expected="exit status 0", actual=f"exit status {exc.exit_status}: "
                         + (tail(exc.stderr, 1) or "(no stderr)"), evidence={"stderr": tail(exc.stderr)})]
    except EnvironmentProblem as exc:
        return [c.error(st, exc, expected="exit status 0")]
    return [c.record(st, "PASS", expected="exit status 0", actual="exit status 0",
                     evidence={"exit_status": 0, "output": tail(proc.stdout + proc.stderr)})]


@check("redeploy.service_converged", "Service converged", phase=PHASE, severity="critical",
       category="Startup and restart stability",
       remediation="Read the tasks' states and errors in the evidence (`docker service ps --no-trunc STACK_SERVICE`): "
                   "a missing image, a healthcheck that never passes, a placement no node satisfies.")
def services_converged(ctx: Context) -> list[CheckRecord]:
    """Every service of the stack file converged within ``redeploy.healthy_timeout_s`` of the deploy: its desired
    replicas running (a task whose container has a healthcheck counts only once healthy: Swarm keeps it "starting"
    until then), its update completed (or none: a first deploy), and no task of it rejected since the deploy.
    Waiting stops early for a service that cannot converge (a task rejected, an update paused or rolled back).
    Evidence per service: its tasks (node, state, error message, container)."""
    timeout = ctx.params.redeploy.healthy_timeout_s
    st = ctx.params.stack
    c = Check("redeploy.service_converged", command=f"docker stack services {st}; docker stack ps --no-trunc {st}")
    since = ctx.state.deploy_started
    try:
        services = ctx.services
        ctx.progress(f"waiting up to {timeout:.0f}s for {len(services)} services to converge")
        ok, states, waited = swarm.wait_converged(ctx.engine, st, services, timeout, since=since, progress=ctx.progress)
    except RunbookError as exc:
        return [c.error(st, exc, expected="every service converged")]
    try:  # the health of the task containers this engine holds (other nodes' containers are not visible here)
        health = {v.id[:12]: v.health or "no healthcheck" for v in ctx.containers()}
    except RunbookError:
        health = {}
    out = []
    for svc in services:
        s = states[svc]
        for t in s.tasks:
            t["container_health"] = health.get(t["container"])  # None: not on this engine, or not read
        ev = {**s.evidence(), "waited_s": waited, "timeout_s": timeout}
        seen = {t["container_health"] for t in s.tasks}
        expected = (f"{s.desired if s.exists else 'the desired'} replica(s) running (healthy where a healthcheck exists), "
                    f"update completed, no task rejected, within {timeout:.0f}s")
        if s.converged:
            here = f" ({', '.join(sorted(seen))} on this engine)" if seen and None not in seen else ""
            out.append(c.record(svc, "PASS", expected=expected, evidence=ev,
                                actual=f"{s.describe()}{here}; converged (waited {waited}s)"))
        else:
            why = f"; {s.stuck}" if s.stuck else f"; not converged after {waited}s"
            out.append(c.record(svc, "FAIL", expected=expected, evidence=ev, actual=s.describe() + why))
    return out


@check("redeploy.services_pruned", "Services no longer in the stack file removed", phase=PHASE, severity="high",
       category="Startup and restart stability",
       remediation="`docker service rm` the service named, and find who created it outside the stack file.")
def services_pruned(ctx: Context) -> list[CheckRecord]:
    """After ``docker stack deploy --prune``: every service of the stack that is not in the stack file is gone.
    Each one that existed before the deploy is named (PASS: removed; FAIL: still there), and any left over now."""
    st = ctx.params.stack
    c = Check("redeploy.services_pruned", command=f"docker stack services {st}")
    inv = ctx.state.inventory_before
    if inv is None or "services" not in inv:
        return [c.record(st, "ERROR", expected="an inventory before", actual="no inventory of the stack was taken before "
                         "deploying", evidence={})]
    try:
        wanted = set(ctx.services)
        now = [service_summary(st, s) for s in ctx.engine.stack_services(st)]
    except RunbookError as exc:
        return [c.error(st, exc, expected="the stack's services listed")]
    before = {s["service"]: s for s in inv["services"] if s["service"] not in wanted}
    left = {s["service"]: s for s in now if s["service"] not in wanted}
    ev = {"in_stack_file": sorted(wanted), "services_now": sorted(s["service"] for s in now)}
    out = []
    for name in sorted(set(before) | set(left)):
        if name in left:
            out.append(c.record(name, "FAIL", expected="removed (not in the stack file)",
                                actual="still in the stack after `docker stack deploy --prune`",
                                evidence={**ev, "service": left[name]}))
        else:
            out.append(c.record(name, "PASS", expected="removed (not in the stack file)",
                                actual=f"removed by --prune (was {before[name]['name']}, image {before[name]['image']})",
                                evidence={**ev, "service": before[name]}))
    if not out:
        out.append(c.record(st, "PASS", expected="no service outside the stack file",
                            actual=f"none before or after: the stack has exactly the file's {len(wanted)} services",
                            evidence=ev))
    return out
