"""Phase 1, controlled redeployment: take the project down completely, bring it up, prove it is ready.

Order matters and each step records what it saw: inventory before → (archive volumes, only when their
removal is confirmed) → ``down --remove-orphans`` → remove leftover containers the parameters name →
nothing of the project runs → ``up -d`` → every service ready (events, bounded) → post-deploy init
steps → inventory after → no volume destroyed by accident. Throughout, from before the inventory to the
end, a bounded probe load asks the gateway (or the endpoints the parameters name) and the phase's last
check judges the outage users saw (:mod:`.downtime`). With ``redeploy.strategy: rolling`` nothing is taken
down: ``down`` and ``up`` give way to ``redeploy.rolling``, one service at a time (:mod:`.rolling`).

Swarm mode (``mode: swarm``): a stack is not taken down, it is redeployed the way Swarm does it, service
by service. Inventory before (services, tasks, this engine's volumes and containers) →
``docker stack deploy --prune`` (``redeploy.stack_deploy``) → every service of the stack file converged:
desired replicas running (healthy where it has a healthcheck), update completed, no task rejected, bounded
by ``redeploy.healthy_timeout_s`` (``redeploy.service_converged``) → services no longer in the file removed
and named (``redeploy.services_pruned``) → init steps in a running task's container → inventory after → no
volume destroyed. The ids shared with compose mode mean the same thing.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from runbook_lib.phases.anonymous_volumes import anonymous_mounts, judge_anonymous
from runbook_lib.phases.redeploy.downtime import outage, start_probe_load, timeline_image  # noqa: F401
from runbook_lib.phases.redeploy.rolling import rolling_update
from runbook_lib.phases.redeploy.swarm_checks import (describe_stack, describe_stack_after, services_converged,  # noqa: F401
                                               services_pruned, stack_deploy, stack_inventory, tail)
from runbook_lib.run.context import Context
from runbook_lib.engine import ContainerView
from runbook_lib.errors import ComposeError, RunbookError
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check

PHASE = "01_controlled_redeployment"

def _volumes(ctx: Context) -> list[dict]:
    """The deployment's named volumes on this engine: the compose project's, or the stack's."""
    return ctx.deployment.volumes()


def _inventory(ctx: Context) -> dict:
    eng = ctx.engine
    containers = ctx.containers()
    images = {}
    for v in containers:
        if v.image_id and v.image_id not in images:
            images[v.image_id] = {"ref": v.image, **eng.image_summary(v.image_id)}
    now = time.time()
    inv = {
        "taken": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "taken_unix": round(now, 6),
        "containers": [v.summary() for v in containers],
        "images": list(images.values()),
        "volumes": _volumes(ctx),
    }
    # a swarm: the manager's view of every node (services, the tasks meant to run now) instead of leftovers
    inv.update(ctx.deployment.variant(compose=_project_inventory, swarm=stack_inventory)(ctx, containers))
    return inv


def _project_inventory(ctx: Context, containers: list[ContainerView]) -> dict:
    """What a compose project's inventory adds: leftover containers the parameters name, anonymous volumes."""
    leftovers = ctx.engine.containers_matching(ctx.params.redeploy.leftover_containers)
    return {"leftovers": [v.summary() for v in leftovers], "anonymous_volumes": anonymous_mounts(containers)}


def _inventory_command(ctx: Context) -> str:
    return ctx.deployment.inventory_command()


def _describe_project(inv: dict) -> str:
    return (f"{len(inv['containers'])} containers, {len(inv['images'])} images, {len(inv['volumes'])} volumes, "
            f"{len(inv['leftovers'])} leftovers")


@check("redeploy.inventory_before", "Inventory before redeployment", phase=PHASE, severity="info", category="Startup and restart stability")
def inventory_before(ctx: Context) -> list[CheckRecord]:
    """Containers, images (with digests) and volumes of the project before anything is touched (swarm mode:
    the stack's services and current tasks too)."""
    c = Check("redeploy.inventory_before", command=_inventory_command(ctx))
    try:
        inv = _inventory(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="an inventory")]
    ctx.state.inventory_before = inv
    actual = ctx.deployment.variant(compose=_describe_project, swarm=describe_stack)(inv)
    return [c.record(ctx.params.project, "INFO", expected="the starting state is recorded", actual=actual, evidence=inv)]


@check("redeploy.volume_archive", "Volumes archived before removal", phase=PHASE, severity="critical", category="Startup and restart stability", changes_deployment=True)
def archive_volumes(ctx: Context) -> list[CheckRecord]:
    """Only when volume removal is asked AND confirmed: archive each named volume into the run
    directory before ``down --volumes`` deletes it. A volume that cannot be archived stops the removal."""
    rd = ctx.params.redeploy
    c = Check("redeploy.volume_archive")
    if not rd.remove_volumes:
        return []
    ctx.params.ensure_safe()  # defence in depth: the runner already refused an unconfirmed request
    inv = ctx.state.inventory_before or _inventory(ctx)
    image = next((i["id"] for i in inv["images"] if not i.get("missing")), None)
    out = []
    dest_dir = (ctx.run_dir or Path.cwd()) / "volumes"
    dest_dir.mkdir(parents=True, exist_ok=True)
    ctx.state.volumes_archived = True
    for vol in inv["volumes"]:
        dest = dest_dir / f"{vol['name']}.tar"
        if image is None:
            out.append(c.record(vol["name"], "FAIL", expected="archived", actual="no local image to mount the volume with",
                                evidence={"volume": vol}))
            ctx.state.volumes_archived = False
            continue
        try:
            size = ctx.engine.archive_volume(vol["name"], image, dest)
        except RunbookError as exc:
            out.append(c.error(vol["name"], exc, expected="archived"))
            ctx.state.volumes_archived = False
            continue
        out.append(c.record(vol["name"], "PASS", expected="archived into the run directory",
                            actual=f"{size} bytes in {dest.name}", evidence={"volume": vol, "archive": str(dest), "bytes": size},
                            command=f"docker cp <container with {vol['name']} mounted>:/volume - > {dest}"))
    return out


@check("redeploy.down", "Project taken down", phase=PHASE, severity="critical", category="Startup and restart stability", changes_deployment=True,
       remediation="Read the stderr in the evidence; a container that will not stop may need `docker rm -f`.")
def compose_down(ctx: Context) -> list[CheckRecord]:
    """``docker compose down --remove-orphans`` (plus ``--volumes`` only when confirmed and archived).
    Containers of the project outside the compose model (orphans) are listed first; one that Compose
    leaves behind (a container started by hand with the project's labels: Compose 2.40 does not treat
    it as its own) is removed by the runbook. The record names every orphan removed, and by whom."""
    if ctx.params.redeploy.strategy == "rolling":
        return []  # the project is not taken down: redeploy.rolling replaces each service
    rd = ctx.params.redeploy
    volumes = rd.remove_volumes and ctx.state.volumes_archived
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    c = Check("redeploy.down", command=ctx.compose.display(*args))
    try:
        orphans = ctx.orphan_containers()
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="the project's containers can be listed")]
    ctx.progress(f"$ {c.command}")
    try:
        proc = ctx.compose.down(remove_orphans=True, volumes=volumes, timeout=rd.down_timeout_s)
    except ComposeError as exc:
        return [c.record(ctx.params.project, "FAIL", expected="exit status 0", actual=f"exit status {exc.exit_status}",
                         evidence={"stderr": tail(exc.stderr), "orphans": [v.summary() for v in orphans]})]
    ev = {"exit_status": 0, "output": tail(proc.stderr + proc.stdout), "volumes_removed": volumes}
    if not orphans:
        return [c.record(ctx.params.project, "PASS", expected="exit status 0", actual="exit status 0; no orphan container",
                         evidence={**ev, "orphans": []})]
    by_compose, by_runbook, failed = _remove_orphans(ctx, orphans)
    ev["orphans"] = {"removed_by_compose": by_compose, "removed_by_runbook": by_runbook, "not_removed": failed}
    actual = (f"exit status 0; removed {len(by_compose) + len(by_runbook)} orphan container(s) outside the compose "
              f"model: {', '.join(by_compose + by_runbook) or 'none'}"
              + (f" ({', '.join(by_runbook)} by the runbook: Compose left it)" if by_runbook else ""))
    if failed:
        return [c.record(ctx.params.project, "FAIL", expected="exit status 0 and no orphan container left",
                         actual=actual + "; could not remove " + "; ".join(f"{n}: {e}" for n, e in failed.items()),
                         evidence=ev)]
    return [c.record(ctx.params.project, "PASS", expected="exit status 0 and no orphan container left",
                     actual=actual, evidence=ev)]


def _remove_orphans(ctx: Context, orphans: list[ContainerView]) -> tuple[list[str], list[str], dict[str, str]]:
    """After ``down``: which orphans Compose removed, which the runbook then removed, which could not be."""
    try:
        left = {v.id for v in ctx.engine.project_containers(ctx.params.project)}
    except RunbookError as exc:
        return [], [], {v.name: f"could not list the project's containers: {exc}" for v in orphans}
    by_compose = [v.name for v in orphans if v.id not in left]
    by_runbook, failed = [], {}
    for v in orphans:
        if v.id not in left:
            continue
        ctx.progress(f"$ docker rm -f {v.name}   # orphan: service {v.service or '(none)'!r} is not in the compose model")
        try:
            ctx.engine.stop_and_remove(v.id)
            by_runbook.append(v.name)
        except RunbookError as exc:
            failed[v.name] = str(exc)
    return by_compose, by_runbook, failed


@check("redeploy.leftovers_removed", "Leftover containers removed", phase=PHASE, severity="high", category="Startup and restart stability", changes_deployment=True,
       remediation="Remove the container by hand (`docker rm -f NAME`) and find what keeps starting it.")
def remove_leftovers(ctx: Context) -> list[CheckRecord]:
    """Stop and remove containers matching the parameters' leftover patterns (other compose files of
    the same system). Their volumes are kept."""
    pats = ctx.params.redeploy.leftover_containers
    c = Check("redeploy.leftovers_removed")
    if not pats:
        return []
    try:
        found = ctx.engine.containers_matching(pats)
    except RunbookError as exc:
        return [c.error("leftovers", exc, expected="leftovers listed")]
    if not found:
        return [c.record("leftovers", "PASS", expected="no leftover container", actual="none found",
                         evidence={"patterns": pats, "found": []}, command=f"docker ps -a (names matching {', '.join(pats)})")]
    out = []
    for v in found:
        cmd = f"docker rm -f {v.name}"
        try:
            ctx.engine.stop_and_remove(v.id)
        except RunbookError as exc:
            out.append(c.error(v.name, exc, expected="removed"))
            continue
        out.append(c.record(v.name, "PASS", expected="stopped and removed", actual="removed",
                            evidence={"container": v.summary(), "patterns": pats}, command=cmd))
    return out


@check("redeploy.nothing_running", "Nothing of the project left", phase=PHASE, severity="critical", category="Startup and restart stability",
       remediation="Remove the listed containers; a container that survives `down` belongs to another project or was started by hand.")
def nothing_running(ctx: Context) -> list[CheckRecord]:
    """After ``down``: no container of the project exists, and no leftover matches the patterns."""
    if ctx.params.redeploy.strategy == "rolling":
        return []  # the project is not taken down: redeploy.rolling replaces each service
    c = Check("redeploy.nothing_running", command=f"docker ps -a --filter label=com.docker.compose.project={ctx.params.project}")
    try:
        left = ctx.engine.project_containers(ctx.params.project)
        left += [v for v in ctx.engine.containers_matching(ctx.params.redeploy.leftover_containers) if v.id not in {x.id for x in left}]
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="no container")]
    ev = {"remaining": [v.summary() for v in left]}
    if left:
        return [c.record(ctx.params.project, "FAIL", expected="no container of the project",
                         actual="still there: " + ", ".join(f"{v.name} ({v.state})" for v in left), evidence=ev)]
    return [c.record(ctx.params.project, "PASS", expected="no container of the project",
                     actual="0 containers of the project, 0 leftovers", evidence=ev)]


@check("redeploy.up", "Project brought up", phase=PHASE, severity="critical", category="Startup and restart stability", changes_deployment=True,
       remediation="Read the stderr in the evidence and fix the compose file or the images it names.")
def compose_up(ctx: Context) -> list[CheckRecord]:
    """``docker compose up -d --remove-orphans``: creates and starts every service."""
    if ctx.params.redeploy.strategy == "rolling":
        return []  # the project is not taken down: redeploy.rolling replaces each service
    c = Check("redeploy.up", command=ctx.compose.display("up", "-d", "--remove-orphans"))
    ctx.progress(f"$ {c.command}")
    try:
        proc = ctx.compose.up(detach=True, remove_orphans=True, timeout=ctx.params.redeploy.healthy_timeout_s + 300)
    except ComposeError as exc:
        return [c.record(ctx.params.project, "FAIL", expected="exit status 0", actual=f"exit status {exc.exit_status}",
                         evidence={"stderr": tail(exc.stderr)})]
    return [c.record(ctx.params.project, "PASS", expected="exit status 0", actual="exit status 0",
                     evidence={"exit_status": 0, "output": tail(proc.stderr + proc.stdout)})]


@check("redeploy.service_ready", "Service running and healthy", phase=PHASE, severity="critical", category="Startup and restart stability",
       remediation="Read the health-check log in the evidence, then `docker logs` of the container.")
def services_ready(ctx: Context) -> list[CheckRecord]:
    """Every service is running, and healthy where it has a healthcheck, within the timeout. Waits on
    the engine's events. A service that never gets healthy FAILs with its last health-check log."""
    timeout = ctx.params.redeploy.healthy_timeout_s
    c = Check("redeploy.service_ready", command=f"docker ps --filter label=com.docker.compose.project={ctx.params.project} --format '{{{{.Names}}}} {{{{.Status}}}}'")
    try:
        services = ctx.services
        ctx.progress(f"waiting up to {timeout:.0f}s for {len(services)} services to be ready")
        t0 = time.monotonic()
        ok, views = ctx.engine.wait_ready(ctx.params.project, services, timeout, progress=ctx.progress)
        waited = round(time.monotonic() - t0, 1)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="every service ready")]
    out = []
    by_service: dict[str, list] = {}
    for v in views:
        by_service.setdefault(v.service, []).append(v)
    for svc in services:
        cs = by_service.get(svc, [])
        expected = "running and healthy" if any(v.has_healthcheck for v in cs) else "running"
        if not cs:
            out.append(c.record(svc, "FAIL", expected=expected, actual="no container was created",
                                evidence={"service": svc, "waited_s": waited}))
            continue
        for v in cs:
            ev = {"container": v.summary(), "waited_s": waited, "timeout_s": timeout,
                  "health_log": v.health_log[-3:] if v.has_healthcheck else None}
            actual = v.state + (f", {v.health}" if v.health else "") + (" (one-shot, exited 0)" if v.completed else "")
            status = "PASS" if v.ready else "FAIL"
            if status == "FAIL":
                last = v.health_log[-1] if v.health_log else None
                if last:
                    actual += f"; last health check exited {last['exit_code']}: {last['output'][:200] or '(no output)'}"
                actual += f" after {waited}s"
            out.append(c.record(svc, status, expected=f"{expected} within {timeout:.0f}s", actual=actual, evidence=ev))
    from runbook_lib.phases.redeploy.rollback import on_failed_gate  # redeploy.on_failure: rollback

    return out + on_failed_gate(ctx, out)


@check("redeploy.init_step", "Post-deploy init step", phase=PHASE, severity="high", category="Startup and restart stability", changes_deployment=True,
       remediation="Run the command by hand in the container and read its output.")
def init_steps(ctx: Context) -> list[CheckRecord]:
    """Post-deploy init steps: run each command in its service's container, then the verification
    command, whose output must match the step's pattern."""
    c = Check("redeploy.init_step")
    out = []
    for step in ctx.params.redeploy.init_steps:
        try:
            running = [v for v in ctx.service_containers(step.service) if v.running]
        except RunbookError as exc:
            out.append(c.error(step.name, exc, expected="the step runs"))
            continue
        if not running:
            # a swarm task running on another node cannot be exec'd from here: that is not knowing, not a failure
            try:
                elsewhere = ctx.deployment.running_tasks(step.service)
            except RunbookError as exc:
                out.append(c.error(step.name, exc, expected="the step runs"))
                continue
            if elsewhere:
                out.append(c.record(step.name, "ERROR", expected=f"a running task container of {step.service} on this engine",
                                    actual=f"{step.service} runs on node(s) {', '.join(sorted({t['node'] for t in elsewhere}))}, "
                                           "not on this engine: point DOCKER_HOST at a manager that runs one, or place a task here",
                                    evidence={"step": step.model_dump(), "tasks": elsewhere}))
                continue
        if not running:
            out.append(c.record(step.name, "FAIL", expected=f"a running {step.service} container",
                                actual="none running", evidence={"step": step.model_dump()}))
            continue
        v = running[0]
        ev = {"step": step.name, "service": step.service, "container": v.name}
        try:
            code, output = ctx.engine.exec(v.id, step.command, timeout=step.timeout_s)
            ev.update(command=step.command, exit_code=code, output=tail(output))
            cmd = f"docker exec {v.name} {' '.join(step.command)}"
            if code != 0:
                out.append(c.record(step.name, "FAIL", expected="exit status 0",
                                    actual=f"exit status {code}", evidence=ev, command=cmd))
                continue
            if step.verify:
                vcode, voutput = ctx.engine.exec(v.id, step.verify, timeout=step.timeout_s)
                cmd += f" && docker exec {v.name} {' '.join(step.verify)}"
                ev.update(verify=step.verify, verify_exit_code=vcode, verify_output=tail(voutput), expect=step.expect)
                matched = vcode == 0 and any(re.search(step.expect, line) for line in voutput.splitlines())
                if not matched:
                    # the verification's own last word names what is missing (a table, a bucket...)
                    said = next((ln.strip() for ln in reversed(voutput.splitlines()) if ln.strip()), "")
                    out.append(c.record(step.name, "FAIL", expected=f"verification output matches {step.expect!r}",
                                        actual=f"exit status {vcode}; no line matches"
                                               + (f"; it said: {said[:200]}" if said else ""), evidence=ev, command=cmd))
                    continue
                out.append(c.record(step.name, "PASS", expected=f"exit 0 and output matching {step.expect!r}",
                                    actual="done and verified", evidence=ev, command=cmd))
            else:
                out.append(c.record(step.name, "PASS", expected="exit status 0", actual="exit status 0 (no verification given)",
                                    evidence=ev, command=cmd))
        except RunbookError as exc:
            out.append(c.error(step.name, exc, expected="the step runs"))
    return out


@check("redeploy.inventory_after", "Inventory after redeployment", phase=PHASE, severity="info", category="Startup and restart stability")
def inventory_after(ctx: Context) -> list[CheckRecord]:
    """Containers, images (with digests) and volumes after redeployment (swarm mode: services and tasks too)."""
    c = Check("redeploy.inventory_after", command=_inventory_command(ctx))
    try:
        inv = _inventory(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="an inventory")]
    ctx.state.inventory_after = inv
    describe = ctx.deployment.variant(compose=_describe_project_after, swarm=describe_stack_after)
    return [c.record(ctx.params.project, "INFO", expected="the final state is recorded",
                     actual=describe(inv, ctx.state.inventory_before), evidence=inv)]


def _describe_project_after(inv: dict, inventory_before: dict | None) -> str:
    """A project's inventory after the redeployment in a record's words: how many containers were recreated."""
    before = {x["name"]: x["id"] for x in (inventory_before or {}).get("containers", [])}
    recreated = sum(1 for x in inv["containers"] if x["name"] in before and before[x["name"]] != x["id"])
    return (f"{len(inv['containers'])} containers ({recreated} recreated), {len(inv['images'])} images, "
            f"{len(inv['volumes'])} volumes")


@check("redeploy.volumes_preserved", "No volume destroyed", phase=PHASE, severity="critical", category="Startup and restart stability",
       remediation="Restore the volume from its archive or backup; find what removed it (a `down -v` somewhere?).")
def volumes_preserved(ctx: Context) -> list[CheckRecord]:
    """No data destroyed by accident: every named volume that existed before still exists, and the
    engine's event log shows no ``destroy`` of it since the inventory before (a volume removed and
    re-created empty keeps its name but not its data); every anonymous volume is still mounted where it was
    (:mod:`.anonymous_volumes`: ``down`` + ``up`` leaves it behind). Skipped when removal was confirmed."""
    c = Check("redeploy.volumes_preserved", command="docker events --filter type=volume --filter event=destroy --since <inventory before> --until <now>")
    inv = ctx.state.inventory_before
    if inv is None:
        return [c.record(ctx.params.project, "ERROR", expected="an inventory before", actual="no inventory was taken before redeploying",
                         evidence={})]
    before = inv["volumes"]
    if ctx.params.redeploy.remove_volumes:
        return [c.record(ctx.params.project, "SKIP", expected="volumes kept", actual="volume removal was asked for and confirmed",
                         evidence={"before": before, "confirmed_by": ctx.params.redeploy.confirm_volume_removal}, severity="info")]
    after_inv = ctx.state.inventory_after or {}
    try:
        after = {v["name"]: v for v in _volumes(ctx)}
        events = ctx.engine.volume_events(inv["taken_unix"] - 1, time.time())
        # compose mode only (a swarm task's volumes are its node's): the anonymous volumes' mounts after
        anon_after = (after_inv["anonymous_volumes"] if "anonymous_volumes" in after_inv else
                      anonymous_mounts(ctx.containers())) if inv.get("anonymous_volumes") else []
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="volumes listed")]
    anonymous = judge_anonymous(c, inv.get("anonymous_volumes") or [], anon_after)
    if not before:
        return anonymous or [c.record(ctx.params.project, "PASS", expected="every volume that existed before still exists",
                                      actual="the project had no volumes before (named or anonymous)",
                                      evidence={"before": [], "after": sorted(after)})]
    out = anonymous
    for v in before:
        destroyed = [e for e in events if e["volume"] == v["name"] and e["action"] == "destroy"]
        ev = {"before": v, "after": after.get(v["name"]), "volume_events_since_inventory":
              [e for e in events if e["volume"] == v["name"]]}
        if v["name"] not in after:
            out.append(c.record(v["name"], "FAIL", expected="still exists", actual="gone", evidence=ev))
        elif destroyed:
            out.append(c.record(v["name"], "FAIL", expected="never destroyed",
                                actual=f"destroyed and re-created during the redeployment ({len(destroyed)} destroy event(s)): the old data is gone",
                                evidence=ev))
        else:
            out.append(c.record(v["name"], "PASS", expected="still exists, never destroyed",
                                actual="exists; no destroy event since the inventory before", evidence=ev))
    return out


from runbook_lib.run.manifest import Manifest, compose_only, swarm_only  # noqa: E402

MANIFEST = Manifest(PHASE, {
    "inventory before": [start_probe_load, inventory_before],
    "down": [compose_only(archive_volumes), compose_only(compose_down), compose_only(remove_leftovers),
             compose_only(nothing_running)],
    "up": [swarm_only(stack_deploy), swarm_only(services_converged), swarm_only(services_pruned),
           compose_only(compose_up), rolling_update, compose_only(services_ready)],
    "init steps": [init_steps],
    "after": [inventory_after, volumes_preserved],
    "downtime": [outage],
})
