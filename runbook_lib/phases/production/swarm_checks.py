"""Phase 3 in swarm mode: what a stack's services are, read from the swarm itself.

A swarm task's container carries no compose config-hash label and no restart policy (the swarm replaces a
task instead of restarting its container), so the compose-mode readings of drift and restart policy would
judge nothing there. Their swarm equivalents are here:

- ``prod.drift``: each service spec (``docker service inspect``) against the stack file as ``docker stack
  config`` (the loader ``docker stack deploy`` uses) resolves it, field by field: image (and digest when the
  file pins one), environment, replicas, ``deploy.resources``, ``restart_policy``, ``update_config``,
  ``rollback_config``, healthcheck, placement, secrets (swarm name, target, uid, gid, mode), user, read-only
  root filesystem, published ports, command, entrypoint, added and dropped capabilities. A key the file leaves
  unset takes Swarm's default and is not compared (but a port published by hand is drift).
- ``prod.env``: the expected variables in the service spec AND in every running task container here.
- ``prod.restart_policy``: the spec's restart policy, judged as ``runbook lint --swarm`` judges the file's.
- ``prod.replicas``: running tasks == desired replicas, and the last rolling update completed.
- ``prod.task_history``: no task failed, was rejected or exited (and so was replaced) since the last deploy
  (the spec's UpdatedAt).
- ``prod.orphans``: a service carrying the stack's label that the stack file does not declare.

Nothing here changes the deployment. A difference names the service and the field, expected and actual;
values of credential-named variables are masked, and secrets are named, never read.
"""
from __future__ import annotations

from typing import Any, Callable

from runbook_lib.engine.stack import (SwarmService, field_differences, parse_time, stack_command, stack_config,
                                      stack_file_fields, task_evidence)
from runbook_lib.errors import RunbookError
from runbook_lib.lint.swarm import judge_restart_policy
from runbook_lib.phases.production.common import (PHASE, app_services, by_service, expected_env_for, inspect_cmd,
                                                  mask_credential)
from runbook_lib.phases.production.switches import judge_switches
from runbook_lib.results.records import Check, CheckRecord, plural
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context


def _service_cmd(ctx: Context, svc: str, fmt: str = "json .Spec") -> str:
    return f"docker service inspect --format '{{{{{fmt}}}}}' {ctx.params.stack}_{svc}"


def _services(ctx: Context, c: Check, expected: str) -> tuple[dict[str, SwarmService] | None, list[CheckRecord]]:
    try:
        return ctx.deployment.service_specs(), []
    except RunbookError as exc:
        return None, [c.error(ctx.params.stack, exc, expected=expected)]


def _not_deployed(c: Check, ctx: Context, svc: str, expected: str) -> CheckRecord:
    return c.record(svc, "FAIL", expected=expected, actual=f"no service {ctx.params.stack}_{svc} in the swarm: the "
                    "stack file's service is not deployed", evidence={"read": "docker service ls (stack label)",
                                                                      "service": svc, "stack": ctx.params.stack},
                    command=f"docker stack services {ctx.params.stack}")


def _each_service(ctx: Context, c: Check, expected: str,
                  judge: Callable[[str, SwarmService], CheckRecord]) -> list[CheckRecord]:
    """``judge(stack-file service, its swarm service)`` for each service of the stack file, once the services
    and every task have been read (an ERROR on the stack when they cannot be); a service the swarm does not
    have is a FAIL."""
    services, errs = _services(ctx, c, expected)
    if services is None:
        return errs
    try:
        ctx.deployment.tasks()
    except RunbookError as exc:
        return [c.error(ctx.params.stack, exc, expected=expected)]
    return [judge(svc, services[svc]) if svc in services else _not_deployed(c, ctx, svc, expected)
            for svc in ctx.services]


def _masked(diffs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in diffs:
        if d["field"].startswith("environment."):
            name = d["field"].split(".", 1)[1]
            d = {**d, "expected": mask_credential(name, d["expected"]), "actual": mask_credential(name, d["actual"])}
        out.append(d)
    return out


def drift(ctx: Context) -> list[CheckRecord]:
    """prod.drift in swarm mode: every service of the stack file against its service spec, field by field
    (see the module's docstring). PASS only when every field the file sets holds in the spec; FAIL listing
    each difference; a service of the file not deployed is a FAIL; ERROR when the stack file or the specs
    cannot be read."""
    c = Check("prod.drift", command=" ".join(stack_command(ctx.params.compose_files)) + "; docker service inspect "
              f"$(docker stack services -q {ctx.params.stack})")
    expected = "the service spec matches the stack file"
    try:
        cfg = stack_config(ctx.params.compose_files)
    except RunbookError as exc:
        return [c.error(ctx.params.stack, exc, expected="`docker stack config` resolves the stack file")]
    services, errs = _services(ctx, c, expected)
    if services is None:
        return errs
    model = cfg.model.get("services") or {}
    top = cfg.model.get("secrets") or {}
    out = []
    for svc in sorted(model):
        if svc not in services:
            out.append(_not_deployed(c, ctx, svc, expected))
            continue
        s = services[svc]
        want = stack_file_fields(ctx.params.stack, svc, model[svc] or {}, top)
        have = s.fields()
        diffs = _masked(field_differences(want, have))
        ev = {"read": f"docker stack config (the stack file) and docker service inspect {s.name}",
              "service": s.name, "spec_version": s.version, "spec_updated_at": s.updated_at,
              "image": {"file": (model[svc] or {}).get("image"), "spec": s.image},
              "compared": sorted(want), "not_compared": "keys the stack file leaves unset (Swarm's defaults apply)",
              "differences": diffs}
        cmd = _service_cmd(ctx, svc)
        if diffs:
            actual = f"{plural(len(diffs), 'difference')}: " + "; ".join(
                f"{d['field']}: expected {d['expected']!r}, the spec has {d['actual']!r}" for d in diffs)
            out.append(c.record(svc, "FAIL", expected=expected, actual=actual[:900], evidence=ev, command=cmd))
        else:
            out.append(c.record(svc, "PASS", expected=expected, evidence=ev, command=cmd,
                                actual=f"every field the stack file sets matches ({', '.join(sorted(want))})"))
    return out


def env(ctx: Context) -> list[CheckRecord]:
    """prod.env in swarm mode, one record per app service: each expected variable holds its expected value
    in the service spec (what every new task gets) and in every running task container on this engine, and
    no framework switch (:mod:`.switches`) there has a development value. FAIL naming where; PASS when a
    production value was seen; SKIP when nothing is expected and no switch is set; ERROR when the spec
    cannot be read."""
    p = ctx.params.production
    c = Check("prod.env")
    services, errs = _services(ctx, c, "the expected environment")
    if services is None:
        return errs
    try:
        views_of = by_service(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.stack, exc, expected="the expected environment")]
    out = []
    for svc in [s for s in app_services(ctx) if s not in p.env_excluded]:
        want = expected_env_for(ctx, svc)
        expected = ", ".join(f"{k}={w}" for k, w in want.items()) or "(nothing expected)"
        cmd = f"{_service_cmd(ctx, svc, 'json .Spec.TaskTemplate.ContainerSpec.Env')}; " + "; ".join(
            inspect_cmd(v, "{{json .Config.Env}}") for v in views_of.get(svc, []))
        if svc not in services:
            out.append(_not_deployed(c, ctx, svc, expected))
            continue
        places = {f"service spec {services[svc].name}": services[svc].environment}
        places.update({f"container {v.name}": v.environment for v in views_of.get(svc, [])})
        seen = {where: {k: e.get(k) for k in want} for where, e in places.items()}
        bad = {where: {k: {"expected": w, "actual": got[k]} for k, w in want.items() if got[k] != w}
               for where, got in seen.items()}
        bad = {w: d for w, d in bad.items() if d}
        switches = {where: judge_switches(e) for where, e in places.items()}
        ev = {"read": "docker service inspect (ContainerSpec.Env) and docker inspect Config.Env of each running task "
                      "container (expected variables and known framework switches only)", "expected": want,
              "actual": seen, "switches": switches, "containers_here": len(places) - 1}
        dev = [f"{where}: {sw['name']}={sw['value']!r} ({sw['framework']} in development mode)"
               for where, found in switches.items() for sw in found["development"]]
        prod_seen = sorted({f"{sw['name']}={sw['value']}" for found in switches.values() for sw in found["production"]})
        expected = ", ".join([f"{k}={w}" for k, w in want.items()] + ["no framework switch set to a development value"])
        if bad or dev:
            ev["differences"] = bad
            actual = "; ".join([f"{where}: " + ", ".join(
                f"{k} is {'unset' if d['actual'] is None else repr(d['actual'])}, expected {d['expected']!r}"
                for k, d in diffs.items()) for where, diffs in bad.items()] + dev)
            out.append(c.record(svc, "FAIL", expected=expected, actual=actual, evidence=ev, command=cmd))
        elif want or prod_seen:
            shown = ", ".join([f"{k}={w}" for k, w in want.items()] + prod_seen)
            out.append(c.record(svc, "PASS", expected=expected, evidence=ev, command=cmd,
                                actual=f"production values ({shown}) in the service spec and "
                                       f"{plural(len(places) - 1, 'running task container')}"))
        else:  # nothing asked, no switch set: nothing was judged
            out.append(c.record(svc, "SKIP", expected="a production value to observe", severity="info", evidence=ev,
                                command=cmd, actual="nothing to judge: production.expected_env asks for nothing here "
                                                    "and no known framework switch is set"))
    return out


def restart_policy(ctx: Context) -> list[CheckRecord]:
    """prod.restart_policy in swarm mode: the service spec's restart policy (a task container's own restart
    policy is always "no": the swarm replaces the task), judged as ``runbook lint --swarm`` judges the file's
    ``deploy.restart_policy`` (condition any = always; ``production.restart_policy`` says what is accepted)."""
    p = ctx.params.production
    c = Check("prod.restart_policy")
    services, errs = _services(ctx, c, "an accepted restart policy")
    if services is None:
        return errs
    out = []
    for svc in ctx.services:
        if svc not in services:
            out.append(_not_deployed(c, ctx, svc, "an accepted restart policy"))
            continue
        rp = services[svc].task_template.get("RestartPolicy")
        as_file = None if rp is None else {
            "condition": rp.get("Condition") or "any", "max_attempts": rp.get("MaxAttempts") or 0,
            "window": f"{(rp.get('Window') or 0) / 1e9:g}s" if rp.get("Window") else None,
            "delay": f"{(rp.get('Delay') or 0) / 1e9:g}s" if rp.get("Delay") is not None else None}
        v = judge_restart_policy({"deploy": {"restart_policy": as_file}} if as_file else {},
                                 list(p.restart_policy_overrides.get(svc) or p.restart_policy))
        v.evidence.update({"read": f"docker service inspect {services[svc].name} (TaskTemplate.RestartPolicy)",
                           "spec_restart_policy": rp})
        out.append(c.record(svc, v.status, expected=v.expected, actual=v.actual, evidence=v.evidence,
                            command=_service_cmd(ctx, svc, "json .Spec.TaskTemplate.RestartPolicy"),
                            severity=v.severity))
    return out


def _tasks_of(ctx: Context, s: SwarmService) -> list[dict[str, Any]]:
    return [t for t in ctx.deployment.tasks() if t.get("ServiceID") == s.id]


@check("prod.replicas", "Replicas converged (running == desired)", phase=PHASE, severity="high",
       category="Startup and restart stability",
       remediation="Read `docker service ps --no-trunc SERVICE` (the tasks' errors: no node fits the placement or "
                   "the reservations, the image is missing, the container exits), fix it and redeploy.")
def replicas(ctx: Context) -> list[CheckRecord]:
    """prod.replicas (swarm mode), per service: as many tasks running as desired (``Replicas``; for a global
    service, one per eligible node: the tasks the scheduler wants running), and the last rolling update (if
    any) completed, neither paused nor rolled back nor still updating."""
    c = Check("prod.replicas")
    expected = "running tasks == desired replicas; the last update completed"

    def judge(svc: str, s: SwarmService) -> CheckRecord:
        tasks = _tasks_of(ctx, s)
        wanted = [t for t in tasks if t.get("DesiredState") == "running"]
        running = [t for t in wanted if (t.get("Status") or {}).get("State") == "running"]
        desired = s.replicas if s.mode == "replicated" else len(wanted)
        upd = s.update_status
        ev = {"read": f"docker service inspect {s.name} (Mode, UpdateStatus); docker service ps {s.name}",
              "mode": s.mode, "desired": desired, "running": len(running),
              "update_status": {"state": upd.get("State"), "message": upd.get("Message"), "completed_at": upd.get("CompletedAt")},
              "not_running": [task_evidence(t) for t in wanted if t not in running]}
        cmd = f"docker service ps {s.name} --filter desired-state=running"
        problems = []
        if s.mode == "global" and not wanted:  # 0 of 0 is no evidence: the scheduler placed it nowhere
            problems.append("no task wanted running: no node fits its placement (constraints, node labels, "
                            "every node drained?)")
        if len(running) != desired:
            problems.append(f"{len(running)} of {desired} tasks running")
            problems += [f"task {x['id']} (slot {x['slot']}) {x['state']}{': ' + x['error'] if x['error'] else ''}"
                         for x in ev["not_running"][:5]]
        if upd.get("State") and upd["State"] != "completed":
            problems.append(f"last update {upd['State']}" + (f": {upd.get('Message')}" if upd.get("Message") else ""))
        if problems:
            return c.record(svc, "FAIL", expected=expected, actual="; ".join(problems), evidence=ev, command=cmd)
        return c.record(svc, "PASS", expected=expected, evidence=ev, command=cmd,
                        actual=f"{len(running)}/{desired} running ({s.mode})"
                               + (f"; last update {upd['State']}" if upd.get("State") else ""))

    return _each_service(ctx, c, expected, judge)


# Task states that mean the task did not do what it was started for; "complete" counts too for a service
# restarted on any exit (condition any): its process ended and the swarm replaced it.
_BAD_STATES = ("failed", "rejected", "orphaned")


@check("prod.task_history", "No task failed or was replaced since the deploy", phase=PHASE, severity="high",
       category="Startup and restart stability",
       remediation="Read `docker service ps --no-trunc SERVICE` and the failed task's container logs (its exit code "
                   "and error are in the evidence); fix the cause and redeploy.")
def task_history(ctx: Context) -> list[CheckRecord]:
    """prod.task_history (swarm mode), per service: no task that was created or changed state since the last
    deploy (:attr:`SwarmService.deployed_at`: the service's last update, or its creation) failed, was rejected or orphaned, or (for a service
    restarted on any exit) completed: each of those is a restart the swarm did, the swarm's counterpart of a
    container's restart count. FAIL naming each task (id, slot, state, error, exit code)."""
    c = Check("prod.task_history")
    expected = "no task failed, was rejected or replaced since the last deploy"

    def judge(svc: str, s: SwarmService) -> CheckRecord:
        since = parse_time(s.deployed_at)
        cond = (s.task_template.get("RestartPolicy") or {}).get("Condition") or "any"
        bad_states = _BAD_STATES + (("complete",) if cond == "any" else ())

        def after(t: dict[str, Any]) -> bool:  # created, or reached its state, since the deploy
            return any((x or since) >= since for x in (parse_time(t.get("CreatedAt", "")),
                                                         parse_time((t.get("Status") or {}).get("Timestamp", ""))))

        recent = [t for t in _tasks_of(ctx, s) if since is None or after(t)]
        bad = [task_evidence(t) for t in recent if (t.get("Status") or {}).get("State") in bad_states]
        ev = {"read": f"docker service ps --no-trunc {s.name} (every task, past ones included)",
              "since": s.deployed_at, "since_is": "the service's last update" if s.attrs.get("PreviousSpec") else
              "the service's creation (never updated)", "spec_version": s.version, "restart_condition": cond,
              "tasks_since": len(recent), "bad_states": list(bad_states), "bad_tasks": bad,
              "tasks": [task_evidence(t) for t in recent][-20:]}
        cmd = f"docker service ps --no-trunc {s.name}"
        if since is None:
            return c.record(svc, "ERROR", expected=expected, evidence=ev, command=cmd,
                            actual=f"could not check: the service's deploy time {s.deployed_at!r} is unreadable")
        if bad:
            actual = f"{plural(len(bad), 'task')} since the deploy at {s.deployed_at[:19]}: " + "; ".join(
                f"task {b['id']} (slot {b['slot']}) {b['state']}" + (f" (exit code {b['exit_code']})" if b["exit_code"] else "")
                + (f": {b['error']}" if b["error"] else "") for b in bad[:5])
            return c.record(svc, "FAIL", expected=expected, actual=actual, evidence=ev, command=cmd)
        return c.record(svc, "PASS", expected=expected, evidence=ev, command=cmd,
                        actual=f"{plural(len(recent), 'task')} since the deploy at {s.deployed_at[:19]}, none "
                               f"{'/'.join(bad_states)}")

    return _each_service(ctx, c, expected, judge)


def orphans(ctx: Context) -> list[CheckRecord]:
    """prod.orphans in swarm mode: the stack's task containers outside the stack file (as in compose mode) and
    its services outside it (:func:`orphan_services`); a SKIP when nothing of the stack is there to look at."""
    from runbook_lib.phases.preflight import orphan_records

    c = Check("prod.orphans", command=ctx.list_command())
    try:
        deployed = bool(ctx.deployment.service_specs()) or bool(ctx.containers())
    except RunbookError as exc:
        return [c.error(ctx.params.stack, exc, expected="every service and task of the stack is in the stack file")]
    if not deployed:  # nothing of the stack to look at: no claim
        return [c.record(ctx.params.stack, "SKIP", expected="every service and task of the stack is in the stack "
                         "file", actual="the stack has no service and no task container on this engine",
                         evidence={"stack": ctx.params.stack, "services": 0, "containers": 0}, severity="info")]
    return orphan_records(ctx, c) + orphan_services(ctx, c)


def orphan_services(ctx: Context, c: Check) -> list[CheckRecord]:
    """prod.orphans in swarm mode, for services: a service carrying the stack's label that the stack file does
    not declare (left by an older stack file deployed without --prune, or created by hand with the label)
    runs unreviewed. A FAIL per service (target: its swarm name); nothing when there is none."""
    try:
        services = ctx.deployment.service_specs()
    except RunbookError as exc:
        return [c.error(ctx.params.stack, exc, expected="every service of the stack is in the stack file")]
    declared = set(ctx.services)
    return [c.record(s.name, "FAIL", expected="every service of the stack is in the stack file",
                     actual=f"service {s.name} (image {s.image}) carries the stack's label but is not in the stack file",
                     evidence={"read": f"docker service ls --filter label=com.docker.stack.namespace={ctx.params.stack}",
                               "service": s.name, "created": s.attrs.get("CreatedAt"), "declared": sorted(declared)},
                     command=f"docker stack services {ctx.params.stack}")
            for name, s in sorted(services.items()) if name not in declared]
