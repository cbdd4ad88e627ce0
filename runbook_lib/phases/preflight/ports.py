"""Phase 0, ``preflight.ports_free``: every fixed host port the compose model (or stack file) publishes is free,
or held by the project's own containers or the stack's own services (the ones phase 1 replaces), before phase 1
changes anything
(:mod:`runbook_lib.deploy.port_holders`). A port held by another project, a swarm task or a host process is
a critical FAIL naming the holder, so the preflight gate stops phase 1 before ``down``."""
from __future__ import annotations

from runbook_lib.deploy.port_holders import engine_shares_this_network, find_conflicts, model_bindings
from runbook_lib.errors import RunbookError
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context

PHASE = "00_preflight"


@check("preflight.ports_free", "Host ports free for the deployment", phase=PHASE, severity="critical",
       category="Preflight",
       remediation="Stop what holds the port (`docker ps` names the container and its project; `ss -ltnp` a process), "
                   "or publish the service on another port.")
def ports_free(ctx: Context) -> list[CheckRecord]:
    """Each fixed host port of the compose model: PASS when it is free or published by a running container of
    this project (the one being replaced); FAIL naming the container (and its project or stack) or the host
    process (pid, command) that holds it. A host process is looked for only when the engine runs on this
    machine. SKIP in a read-only run, which deploys nothing."""
    c = Check("preflight.ports_free", command="docker ps --format '{{.Names}} {{.Ports}}'; ss -ltnp")
    expected = "free, or held by this project's own container"
    if ctx.params.read_only:
        return [c.record(ctx.params.project, "SKIP", expected=expected, actual="a read-only run deploys nothing",
                         evidence={}, severity="info")]
    try:
        bindings = model_bindings(ctx.model.get("services") or {})
        published = ctx.engine.published_ports() + ctx.engine.ingress_ports() if bindings else []
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected=expected)]
    local = engine_shares_this_network()
    own = ctx.deployment.variant(compose=lambda p: p["project"] == ctx.params.project,
                                 swarm=lambda p: p["stack"] == ctx.params.stack)
    conflicts = {cf.binding: cf for cf in find_conflicts(published, bindings, local=local, own=own)}
    if not bindings:
        return [c.record(ctx.params.project, "PASS", expected=expected, evidence={"bindings": []},
                         actual="the compose model publishes no fixed host port")]
    out = []
    for b in bindings:
        ours = sorted({p["container"] for p in published if p["port"] == b.port and own(p)})
        ev = {"binding": b.describe(), "service": b.service, "host_process_checked": local, "own_containers": ours}
        target = f"{b.service} {b.describe()}"
        if b in conflicts:
            out.append(c.record(target, "FAIL", expected=expected, actual=f"held by {conflicts[b].holder}",
                                evidence={**ev, "holder": conflicts[b].holder}))
        else:
            out.append(c.record(target, "PASS", expected=expected, evidence=ev,
                                actual=f"held by this project's {', '.join(ours)} (replaced by phase 1)" if ours else
                                "free" + ("" if local else " of containers (the engine's host was not looked at)")))
    return out
