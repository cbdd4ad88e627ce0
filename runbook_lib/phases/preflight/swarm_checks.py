"""Phase 0 of a Swarm stack: the swarm the stack is deployed on (the engine is an active manager, every node
Ready and Active, every external secret and config exists) and the stack file as ``docker stack``'s own loader
reads it. The rest of the phase is :mod:`runbook_lib.phases.preflight`, shared with compose mode.
"""
from __future__ import annotations

from runbook_lib.errors import ComposeConfigError, RunbookError
from runbook_lib.results.records import Check, CheckRecord, plural
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context

PHASE = "00_preflight"  # the phase of runbook_lib.phases.preflight


@check("preflight.swarm_active", "Swarm active on the engine, which is a manager", phase=PHASE, severity="critical",
       category="Preflight",
       remediation="Point DOCKER_HOST at a manager of the swarm the stack runs on (or `docker swarm init` on a new one).")
def swarm_active(ctx: Context) -> list[CheckRecord]:
    """The engine is in an active swarm and is a manager (only a manager deploys stacks and lists nodes,
    secrets and services). Evidence: the node's state, its id, the cluster id, nodes and managers."""
    c = Check("preflight.swarm_active", command="docker info --format '{{json .Swarm}}'")
    expected = "LocalNodeState active, ControlAvailable (a manager)"
    try:
        sw = ctx.engine.swarm_state()
    except RunbookError as exc:
        return [c.error("swarm", exc, expected=expected)]
    if sw["state"] != "active":
        return [c.record("swarm", "FAIL", expected=expected, evidence=sw,
                         actual=f"swarm {sw['state'] or 'state unknown'}" + (f": {sw['error']}" if sw["error"] else "")
                                + ": this engine is not part of an active swarm")]
    if not sw["manager"]:
        return [c.record("swarm", "FAIL", expected=expected, evidence=sw,
                         actual=f"node {sw['node_id']} is a worker: stacks, nodes and secrets are read on a manager")]
    return [c.record("swarm", "PASS", expected=expected, evidence=sw,
                     actual=f"active, manager node {sw['node_id']} ({sw['nodes']} nodes, {sw['managers']} managers)")]


@check("preflight.swarm_nodes", "Every swarm node Ready and Active", phase=PHASE, severity="high", category="Preflight",
       remediation="Bring the node back (`docker node inspect NODE` says why it is down) or remove it "
                   "(`docker node rm`); `docker node update --availability active NODE` ends a drain or a pause.")
def swarm_nodes(ctx: Context) -> list[CheckRecord]:
    """Every node of the swarm is Ready (its engine answers the managers) and Active (the scheduler may
    place tasks on it): one record per node, named by hostname and id."""
    c = Check("preflight.swarm_nodes", command="docker node ls")
    expected = "status ready, availability active"
    try:
        nodes = ctx.engine.swarm_nodes()
    except RunbookError as exc:
        return [c.error("nodes", exc, expected=expected)]
    if not nodes:
        return [c.record("nodes", "ERROR", expected=expected, actual="the manager listed no node", evidence={"nodes": []})]
    out = []
    for n in nodes:
        target = f"{n['hostname']} ({n['id'][:12]})"
        problems = [f"status {n['state']}" + (f" ({n['message']})" if n["message"] else "")] if n["state"] != "ready" else []
        if n["availability"] != "active":
            problems.append(f"availability {n['availability']}: no new task is placed on it")
        actual = "; ".join(problems) if problems else f"ready, active, {n['role']}, engine {n['engine']}"
        out.append(c.record(target, "FAIL" if problems else "PASS", expected=expected, actual=actual, evidence=n))
    return out


def external_objects(model: dict) -> list[tuple[str, str, str]]:
    """(kind, key in the file, name in the swarm) of every external secret and config of the model."""
    out = []
    for kind, section in (("secret", "secrets"), ("config", "configs")):
        for key, spec in sorted((model.get(section) or {}).items()):
            if (spec or {}).get("external"):
                ext = spec.get("external")
                name = spec.get("name") or (ext.get("name") if isinstance(ext, dict) else None) or key
                out.append((kind, key, str(name)))
    return out


@check("preflight.swarm_objects", "Every external secret and config of the stack exists in the swarm", phase=PHASE,
       severity="critical", category="Preflight",
       remediation="Create it by name on a manager (`docker secret create NAME FILE`, `docker config create NAME "
                   "FILE`), or fix its name in the stack file; then re-run.")
def swarm_objects(ctx: Context) -> list[CheckRecord]:
    """Each secret and config the stack file declares ``external: true`` exists in the swarm, read by
    name through the Swarm API (metadata only: id, creation and update times; never a value). One
    record per object, targeted ``secret NAME`` / ``config NAME``."""
    expected = "exists in the swarm (read by name)"
    try:
        wanted = external_objects(ctx.model)
    except RunbookError as exc:
        return [Check("preflight.swarm_objects").error("stack", exc, expected=expected)]
    if not wanted:
        return [Check("preflight.swarm_objects").record(
            "stack", "SKIP", expected="external secrets and configs", actual="the stack file declares none",
            evidence={"secrets": sorted(ctx.model.get("secrets") or {}), "configs": sorted(ctx.model.get("configs") or {})},
            severity="info")]
    out = []
    for kind, key, name in wanted:
        c = Check("preflight.swarm_objects", command=f"docker {kind} ls --filter name={name}")
        target = f"{kind} {name}"
        try:
            found = ctx.engine.swarm_objects_named(kind, name)
        except RunbookError as exc:
            out.append(c.error(target, exc, expected=expected))
            continue
        ev = {"kind": kind, "key": key, "name": name, "read": "Swarm API, by name; metadata only", "found": found}
        if not found:
            out.append(c.record(target, "FAIL", expected=expected, evidence=ev,
                                actual=f"no {kind} named {name} in the swarm: the stack cannot be deployed"))
        else:
            o = found[0]
            out.append(c.record(target, "PASS", expected=expected, evidence=ev,
                                actual=f"{kind} {name} exists (id {o['id'][:12]}, created {o['created'][:19]})"))
    return out


@check("preflight.swarm_stack_file", "The stack file resolves with docker stack's own loader", phase=PHASE,
       severity="critical", category="Preflight",
       remediation="Run the command shown and fix what it reports (`runbook lint --swarm` names every key "
                   "`docker stack deploy` refuses or ignores).")
def swarm_stack_file(ctx: Context) -> list[CheckRecord]:
    """`docker stack config -c FILE...`: the docker CLI loader `docker stack deploy` uses (not Compose)
    accepts the stack file(s). It refuses keys Compose accepts (mem_limit, cpus...) and reads no env
    file. Evidence: the services and their images as that loader resolves them."""
    from runbook_lib.engine.stack import stack_command, stack_config

    c = Check("preflight.swarm_stack_file", command=" ".join(stack_command(ctx.params.compose_files)))
    expected = "docker stack config accepts the stack file"
    target = ctx.params.stack or "stack"
    try:
        cfg = stack_config(ctx.params.compose_files)
    except ComposeConfigError as exc:
        # the loader's message may not name the key ("Configuration contains forbidden properties"): name the
        # keys of the model that docker stack deploy refuses
        from runbook_lib.lint.swarm import REJECTED

        try:
            refused = sorted({f"{svc}.{k}" for svc, spec in (ctx.model.get("services") or {}).items()
                              for k in spec or {} if k in REJECTED})
        except RunbookError:
            refused = []
        cause = " ".join(str(exc).split()).split(" exited ", 1)[-1]
        return [c.record(target, "FAIL", expected=expected, evidence={"stderr": exc.stderr, "files": exc.files,
                                                                      "refused_keys": refused},
                         actual=cause[:400] + (f" (refused keys: {', '.join(refused)})" if refused else ""))]
    except RunbookError as exc:
        return [c.error(target, exc, expected=expected)]
    services = cfg.model.get("services") or {}
    ev = {"services": {n: (s or {}).get("image") for n, s in sorted(services.items())},
          "secrets": sorted(cfg.model.get("secrets") or {}), "configs": sorted(cfg.model.get("configs") or {}),
          "warnings": cfg.stderr.strip(), "env_files_not_read": [str(f) for f in ctx.params.env_files]}
    return [c.record(target, "PASS", expected=expected, evidence=ev,
                     actual=f"{plural(len(services), 'service')}, {plural(len(ev['secrets']), 'secret')}, "
                            f"{plural(len(ev['configs']), 'config')}")]
