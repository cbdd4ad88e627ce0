"""Phase 2, secrets & security: what a careful security reviewer checks in the running containers.

Per service container: its secrets are mounted, non-empty, readable and not writable or readable by
others; every ``*_FILE`` variable names a real file; no credential sits in the environment in clear
(by name AND by value: a secret copied under an innocent name is found because the run knows every
secret value); secret values appear nowhere in the container or image configuration nor in the logs;
and the container is hardened (each record carries its CIS Docker Benchmark id).

The judging is :mod:`runbook_lib.lint`'s: the same functions judge the compose model statically
(``runbook lint``, phase 0) and ``docker inspect`` here. Files inside containers are read through the
archive API (``docker cp``), so no exec is needed and distroless images work. Secret values never leave
memory: evidence holds names, paths, sizes, modes and owners, and ``[REDACTED sha256:...]`` markers.
Nothing here changes the deployment.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from runbook_lib.engine.stack import SwarmService
from runbook_lib.run.context import Context
from runbook_lib.results.records import plural
from runbook_lib.engine import ContainerView, FileEntry
from runbook_lib.engine.processes import TOP_ARGS, container_processes
from runbook_lib.errors import RunbookError
from runbook_lib.lint.confinement import PROJECT_RULES, judge_shared_volumes
from runbook_lib.lint import (RULES, FileState, ServiceFacts, Verdict, leaked_secret, can_read, dac_override, judge_environment,
                    judge_file_env, judge_hardening, judge_mounted, judge_secret_modes, judge_unreferenced,
                    make_record, parse_user)
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check, runs

PHASE = "02_secrets_security"
# The hardening rules of lint.RULES: judge_hardening() gives a verdict for each, per container.
HARDENING_RULES = tuple(r for r in RULES if r.startswith("hardening.") and r not in PROJECT_RULES)


@dataclass
class ContainerTarget:
    """One container to judge: its record target (the service, or the container name when scaled),
    its inspect view, its service in the compose model, and the facts the rules read."""

    name: str
    view: ContainerView
    spec: dict[str, Any]
    facts: ServiceFacts


def targets(ctx: Context) -> list[ContainerTarget]:
    """The project's containers, one ContainerTarget each (cached for the phase). In swarm mode: the
    containers of the stack's running tasks that this engine holds (:meth:`Context.current_containers`),
    each judged against the secrets its own task mounts (the task's spec, not the stack file)."""
    if ctx.state.security_targets is None:
        services = ctx.model.get("services") or {}
        views = ctx.current_containers()
        per_service: dict[str, int] = {}
        for v in views:
            per_service[v.service] = per_service.get(v.service, 0) + 1
        # a swarm task is judged against the secrets its own task mounts (Deployment.judged_spec)
        specs = {v.name: ctx.deployment.judged_spec(v, services.get(v.service) or {}) for v in views}
        # the container name when its service is scaled, or not in the compose model (an orphan)
        ctx.state.security_targets = [
            ContainerTarget(v.service if per_service[v.service] == 1 and v.service in services else v.name, v,
                   specs[v.name], ServiceFacts.from_container(v, specs[v.name]))
            for v in views]
    return ctx.state.security_targets


@dataclass
class SpecTarget:
    """Swarm mode: one service spec to judge (``docker service inspect``), whether or not a task of it runs
    on this engine. Its records' target is the swarm service's name (``STACK_service``), so they stand apart
    from those of its task containers."""

    name: str
    service: SwarmService
    facts: ServiceFacts


def spec_targets(ctx: Context) -> list[SpecTarget]:
    """Swarm mode: the stack's services, one SpecTarget each; [] in compose mode (a compose project has no
    service spec beyond its containers). Raises RunbookError when the engine cannot list them."""
    return [SpecTarget(s.name, s, ServiceFacts.from_service_spec(s, ctx.params.security.secrets_dir))
            for _, s in sorted(ctx.deployment.service_specs().items())]


def _spec_cmd(t: SpecTarget, fmt: str = "json .Spec.TaskTemplate.ContainerSpec") -> str:
    return f"docker service inspect --format '{{{{{fmt}}}}}' {t.name}"


def _spec_record(rule: str, t: SpecTarget, v: Verdict, command: str) -> CheckRecord:
    v.evidence.setdefault("read", f"the service spec (docker service inspect {t.name})")
    v.evidence.setdefault("service", t.service.service)
    return make_record(rule, t.name, v, phase=PHASE, command=command)


def _spec_records(ctx: Context, rule: str, judge: Callable[[SpecTarget], Verdict], fmt: str) -> list[CheckRecord]:
    """``rule``'s record for every service spec of the stack (swarm mode; nothing in compose mode), an
    ERROR when the specs cannot be read."""
    try:
        ts = spec_targets(ctx)
    except RunbookError as exc:
        return [_error(rule, ctx.params.stack, exc, "the stack's service specs")]
    return [_spec_record(rule, t, judge(t), _spec_cmd(t, fmt)) for t in ts]



def _record(rule: str, t: ContainerTarget, v: Verdict, command: str) -> CheckRecord:
    v.evidence.setdefault("container", t.view.name)
    return make_record(rule, t.name, v, phase=PHASE, command=command)


_VIA = {"procfs": "/proc/PID/root of the container's main process (on the engine's host; its cgroup names the container)",
        "archive": "the engine's archive API (docker cp)",
        "exec": "stat and cat run inside the running container (a swarm task's secrets: the archive API sees only "
                "their empty mount points)"}


def _read_via(files: dict[str, FileEntry]) -> str:
    """How the container's files were read, for the evidence (runbook_lib.engine.procfs or the archive API)."""
    if not files:
        return "nothing to read: no file under the secrets mount or at a secret's target"
    return "; ".join(_VIA.get(v, v) for v in sorted({e.via for e in files.values()}))


def _error(rule: str, target: str, exc: BaseException | str, expected: str) -> CheckRecord:
    c = Check(rule)
    if isinstance(exc, str):
        exc = RunbookError(exc)
    return c.error(target, exc, expected=expected)


def _state(entry: FileEntry | None, path: str, who: tuple[int, int] | None, dac: bool) -> FileState:
    if entry is None:
        return FileState(path, exists=False)
    return FileState(path, True, entry.kind, entry.size, entry.mode, entry.uid, entry.gid,
                     can_read(entry.mode, entry.uid, entry.gid, who, dac_override=dac))


def _who(ctx: Context, t: ContainerTarget) -> tuple[int, int] | None:
    """The container user's (uid, gid); a user name is resolved in the container's /etc/passwd."""
    name = t.view.user.split(":")[0]
    passwd = ""
    if name and not name.isdigit():
        entries = ctx.engine.read_path(t.view.id, "/etc/passwd", pid=t.view.pid) or []
        passwd = next(((e.content or b"").decode("utf-8", "replace") for e in entries if e.kind == "file"), "")
    return parse_user(t.view.user, passwd)


def _secret_files(ctx: Context, t: ContainerTarget) -> dict[str, FileEntry]:
    """The files under the container's secrets mount (read once per phase; values taught to the redactor).
    Raises RunbookError when the container's files could not be read."""
    found = ctx.learn_container_secrets()
    if t.view.name not in found:
        why = ctx.state.container_secret_errors.get(t.view.name, "not read")
        raise RunbookError(f"could not read the secrets mount of {t.view.name}: {why}")
    return found[t.view.name]


def _secrets_view(ctx: Context, t: ContainerTarget) -> tuple[dict[str, FileEntry], Callable[[FileEntry | None, str], FileState]]:
    """The files under the container's secrets mount, and how any file looks to the container's user
    (its uid and gid, and whether CAP_DAC_OVERRIDE lets it read anyway). Raises RunbookError when the
    container's files could not be read."""
    files, who, dac = _secret_files(ctx, t), _who(ctx, t), dac_override(t.facts)
    return files, lambda entry, path: _state(entry, path, who, dac)


@check("security.containers", "Containers to judge", phase=PHASE, severity="high", category="Container hardening",
       remediation="Deploy the project (phase 1) before judging its security.")
def containers_present(ctx: Context) -> list[CheckRecord]:
    """Every service of the compose model has a container to judge; records which containers this
    phase judges (the evidence every other record of the phase refers to)."""
    c = Check("security.containers", command=ctx.list_command())
    return ctx.deployment.variant(compose=_compose_containers_present, swarm=_swarm_containers_present)(ctx, c)


def _compose_containers_present(ctx: Context, c: Check) -> list[CheckRecord]:
    """Compose: a container of the project for every service of the compose model."""
    try:
        ts = targets(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="the project's containers")]
    missing = sorted(set(ctx.services) - {t.view.service for t in ts})
    ev = {"containers": [t.view.summary() for t in ts], "services_without_container": missing,
          "not_in_compose_model": [t.view.name for t in ts if t.view.service not in ctx.services]}
    if missing:
        return [c.record(ctx.params.project, "ERROR", expected="a container for every service",
                         actual=f"no container for {', '.join(missing)}: its security cannot be judged", evidence=ev)]
    return [c.record(ctx.params.project, "PASS", expected="a container for every service",
                     actual=f"{plural(len(ts), 'container')} for {plural(len(ctx.services), 'service')}", evidence=ev)]


def _swarm_containers_present(ctx: Context, c: Check) -> list[CheckRecord]:
    """Swarm mode: every service of the stack file has a running task whose container this engine holds.
    A service whose running tasks are all on other nodes is judged from its spec only: its container
    checks are not run (ERROR, naming the nodes: what could not be looked at is never a PASS)."""
    target = ctx.params.stack
    expected = "a running task container on this engine for every service of the stack file"
    try:
        ts = targets(ctx)
        tasks = ctx.deployment.tasks()
        services = ctx.deployment.service_specs()
    except RunbookError as exc:
        return [c.error(target, exc, expected=expected)]
    here = {t.view.service for t in ts}
    running = {}
    for t in tasks:
        if t.get("DesiredState") == "running" and (t.get("Status") or {}).get("State") == "running":
            svc = next((s.service for s in services.values() if s.id == t.get("ServiceID")), "")
            running.setdefault(svc, []).append(t.get("NodeID", "")[:12])
    elsewhere = {s: running[s] for s in ctx.services if s not in here and running.get(s)}
    missing = sorted(s for s in ctx.services if s not in here and not running.get(s))
    ev = {"containers": [t.view.summary() | {"task": t.view.task_id} for t in ts],
          "services_without_running_task": missing, "services_running_elsewhere": elsewhere,
          "not_in_stack_file": [t.view.name for t in ts if t.view.service not in ctx.services],
          "past_task_containers_not_judged": len(ctx.containers()) - len(ts)}
    problems = ([f"no running task of {', '.join(missing)}"] if missing else []) + (
        [f"the running tasks of {', '.join(elsewhere)} are on other nodes ({', '.join(n for v in elsewhere.values() for n in v)}): "
         "their containers cannot be read from this engine, only their service specs are judged"] if elsewhere else [])
    if problems:
        return [c.record(target, "ERROR", expected=expected, actual="; ".join(problems), evidence=ev)]
    return [c.record(target, "PASS", expected=expected, evidence=ev,
                     actual=f"{plural(len(ts), 'running task container')} for {plural(len(ctx.services), 'service')}")]


@runs("secrets.mounted", "secrets.file_mode", phase=PHASE)
def secrets_mounted(ctx: Context) -> list[CheckRecord]:
    """secrets.mounted and secrets.file_mode, per container: every secret the compose model gives the
    service is at its target, a non-empty regular file readable by the container's user; none is
    writable by group or others (FAIL) or readable by others (WARN, or FAIL by ``security.readable_by_others``).
    Evidence: name, path, size, mode, owner, the user judged against. Never content."""
    out = []
    for t in targets(ctx):
        cmd = f"docker cp {t.view.name}:{ctx.params.security.secrets_dir} - | tar -tvf -"
        try:
            files, state = _secrets_view(ctx, t)
        except RunbookError as exc:
            out += [_error(r, t.name, exc, "the secrets mount can be read") for r in ("secrets.mounted", "secrets.file_mode")]
            continue
        states = {target: state(files.get(target), target) for target in t.facts.secret_targets}
        for rule, v in (("secrets.mounted", judge_mounted(t.facts, states)),
                        ("secrets.file_mode", judge_secret_modes(t.facts, states, ctx.params.security))):
            v.evidence.setdefault("read_via", _read_via(files))
            out.append(_record(rule, t, v, cmd))
    return out + _spec_records(ctx, "secrets.file_mode", lambda t: _spec_modes(ctx, t), "json .Spec.TaskTemplate.ContainerSpec.Secrets")


def _spec_modes(ctx: Context, t: SpecTarget) -> Verdict:
    """secrets.file_mode from a service spec: the mode, uid and gid the swarm mounts each secret with in
    every task (0444, owner 0:0, when the stack file leaves ``mode`` unset)."""
    refs = {s["target"] if s["target"].startswith("/") else f"{ctx.params.security.secrets_dir.rstrip('/')}/{s['target']}": s
            for s in t.service.secrets}
    states = {p: FileState(p, True, "file", 0, r["mode"], int(r["uid"]) if r["uid"].isdigit() else 0,
                           int(r["gid"]) if r["gid"].isdigit() else 0) for p, r in refs.items()}
    v = judge_secret_modes(t.facts, states, ctx.params.security)
    v.evidence["secrets"] = [{"secret": r["name"], "path": p, "mode": f"{r['mode']:04o}", "owner": f"{r['uid']}:{r['gid']}"}
                             for p, r in sorted(refs.items())]
    v.evidence["note"] = "the mode each task's secret file is created with (a swarm's default: 0444, owner 0:0)"
    return v


@runs("secrets.file_env", "secrets.unreferenced", phase=PHASE)
def secret_file_env(ctx: Context) -> list[CheckRecord]:
    """secrets.file_env and secrets.unreferenced, per container: every ``*_FILE`` variable names an
    existing, non-empty file the container's user can read (read inside the container); a mounted
    secret that no variable and no command references is a WARN."""
    out = []
    secrets_dir = ctx.params.security.secrets_dir.rstrip("/") + "/"
    for t in targets(ctx):
        cmd = f"docker inspect -f '{{{{json .Config.Env}}}}' {t.view.name}"
        try:
            files, state = _secrets_view(ctx, t)
        except RunbookError as exc:
            out.append(_error("secrets.file_env", t.name, exc, "the container's files can be read"))
            continue

        def lookup(path: str, t: ContainerTarget = t, files: dict = files, state=state) -> FileState:
            if path in files or path.startswith(secrets_dir):
                return state(files.get(path), path)
            entries = ctx.engine.read_path(t.view.id, path, pid=t.view.pid) or []
            entry = next((e for e in entries if e.path == path.rstrip("/")), None)
            if entry is not None and entry.content:
                ctx.learn_value(entry.content.decode("utf-8", "surrogateescape"), f"{path} in {t.view.name}")
            return state(entry, path)

        try:
            verdict = judge_file_env(t.facts, ctx.params.security, lookup)
        except RunbookError as exc:
            out.append(_error("secrets.file_env", t.name, exc, "the container's files can be read"))
            continue
        out.append(_record("secrets.file_env", t, verdict, cmd))
        out.append(_record("secrets.unreferenced", t, judge_unreferenced(t.facts, ctx.params.security),
                           f"docker inspect -f '{{{{json .Config}}}}' {t.view.name}"))
    return out


@runs("secrets.no_plaintext_env", phase=PHASE)
def no_plaintext_env(ctx: Context) -> list[CheckRecord]:
    """secrets.no_plaintext_env, per container, on ``Config.Env`` (the image's ENV included): no variable
    with a credential-like name holds a literal value, and no variable holds a known secret's value."""
    return [_record("secrets.no_plaintext_env", t, judge_environment(t.facts, ctx.params.security, ctx.secret_values),
                    f"docker inspect -f '{{{{json .Config.Env}}}}' {t.view.name}")
            for t in targets(ctx)] + _spec_records(
        ctx, "secrets.no_plaintext_env", lambda t: judge_environment(t.facts, ctx.params.security, ctx.secret_values),
        "json .Spec.TaskTemplate.ContainerSpec.Env")


def _no_secrets(ctx: Context, rule: str, target: str, what: str) -> CheckRecord | None:
    """A SKIP when the run knows no secret value: the search would prove nothing."""
    if ctx.secret_values:
        return None
    c = Check(rule)
    return c.record(target, "SKIP", severity="info", expected=f"no secret value in {what}",
                    actual="the run knows no secret value to search for", evidence={"known_secret_values": 0})


def _leaks(ctx: Context, places: dict[str, str]) -> list[dict[str, str]]:
    """Which of ``places`` (where -> text) contain a known secret value (or its base64 forms)."""
    found = []
    for where, text in places.items():
        if text and ctx.redactor.contains_secret(text):
            found.append({"where": where, "secret": leaked_secret(text, ctx.secret_values) or "a known secret (encoded)"})
    return found


@runs("secrets.not_in_config", phase=PHASE)
def secrets_not_in_config(ctx: Context) -> list[CheckRecord]:
    """secrets.not_in_config, per container: no known secret value (nor its base64 form) in
    ``docker inspect`` (environment, command, entrypoint, labels, healthcheck) nor in the image's
    labels, ENV and build history."""
    out = []
    ids = sorted({t.view.image_id for t in targets(ctx)}) if ctx.secret_values else []
    images: dict[str, Any] = dict(zip(ids, ctx.map_containers(ctx.engine.image_metadata, ids)))  # concurrently
    for t in targets(ctx):
        skip = _no_secrets(ctx, "secrets.not_in_config", t.name, "the configuration")
        if skip:
            out.append(skip)
            continue
        img = images[t.view.image_id]
        if isinstance(img, RunbookError):
            out.append(_error("secrets.not_in_config", t.name, img, "container and image configuration read"))
            continue
        cfg = t.view.attrs.get("Config") or {}
        places = {f"Config.Env[{k}]": v for k, v in t.view.environment.items()}
        places.update({"Config.Cmd": json.dumps(cfg.get("Cmd")), "Config.Entrypoint": json.dumps(cfg.get("Entrypoint")),
                       "Path/Args": json.dumps([t.view.attrs.get("Path"), t.view.attrs.get("Args")]),
                       "Config.Healthcheck": json.dumps(cfg.get("Healthcheck"))})
        places.update({f"Config.Labels[{k}]": v for k, v in t.view.labels.items()})
        places.update({f"image label {k}": v for k, v in img["labels"].items()})
        places.update({f"image ENV {e.split('=', 1)[0]}": e for e in img["env"]})
        places.update({f"image history step {i}": h for i, h in enumerate(img["history"])})
        leaks = _leaks(ctx, places)
        ev = {"places_searched": len(places), "known_secret_values": len(ctx.secret_values),
              "image": t.view.image, "history_steps": len(img["history"])}
        cmd = f"docker inspect {t.view.name}; docker image history --no-trunc {t.view.image}"
        if leaks:
            ev["found"] = leaks
            v = Verdict("FAIL", "no secret value in container or image configuration",
                        "; ".join(f"{l['secret']} in {l['where']}" for l in leaks), ev)
        else:
            v = Verdict("PASS", "no secret value in container or image configuration",
                        f"{len(places)} places searched for {len(ctx.secret_values)} secret values: none found", ev)
        out.append(_record("secrets.not_in_config", t, v, cmd))
    return out


@runs("secrets.not_in_logs", phase=PHASE)
def secrets_not_in_logs(ctx: Context) -> list[CheckRecord]:
    """secrets.not_in_logs, per container: no known secret value (nor its base64 form) in the last
    ``security.log_tail_lines`` log lines. Evidence: lines searched, and for a leak the line numbers
    and the lines themselves with the value redacted. A container that logged nothing is SKIP, as in prod.logs."""
    out = []
    tail = ctx.params.security.log_tail_lines
    ts = targets(ctx) if ctx.secret_values else []
    texts = dict(zip(map(id, ts), ctx.map_containers(lambda t: ctx.engine.logs(t.view.id, tail=tail), ts)))
    for t in targets(ctx):
        skip = _no_secrets(ctx, "secrets.not_in_logs", t.name, "the logs")
        if skip:
            out.append(skip)
            continue
        text = texts[id(t)]
        if isinstance(text, RunbookError):
            out.append(_error("secrets.not_in_logs", t.name, text, "the container's logs read"))
            continue
        lines = text.splitlines()
        hits = [i for i, line in enumerate(lines, 1) if ctx.redactor.contains_secret(line)]
        ev = {"lines_searched": len(lines), "tail": tail, "known_secret_values": len(ctx.secret_values),
              "first_line": lines[0][:40] if lines else "", "last_line": lines[-1][:40] if lines else ""}
        expected = f"no secret value in the last {tail} log lines"
        if hits:
            ev["lines_with_secrets"] = hits[:50]
            ev["excerpt"] = [ctx.redactor.scrub_text(lines[i - 1])[:300] for i in hits[:3]]
            v = Verdict("FAIL", expected, f"{len(hits)} of {len(lines)} log lines hold a secret value", ev)
        elif not lines:  # as prod.logs: a silent log may mean logs go elsewhere (files), so it proves nothing
            v = Verdict("SKIP", expected, "nothing to search: the container has logged no line to Docker (its logs "
                                          "may go to files inside it)", ev, severity="info")
        else:
            v = Verdict("PASS", expected, f"{len(lines)} lines searched: no secret value", ev)
        out.append(_record("secrets.not_in_logs", t, v, f"docker logs --tail {tail} {t.view.name}"))
    return out


@runs(*HARDENING_RULES, phase=PHASE)
def hardening(ctx: Context) -> list[CheckRecord]:
    """The hardening rules per container, from ``docker inspect`` (HostConfig, Config.User, the live port
    bindings): not privileged, no Docker socket, capabilities, no-new-privileges, read-only root
    filesystem, memory and PIDs limits, host namespaces, published interfaces, non-root user (by the
    uid its running processes have, /proc or ``docker top``: an entrypoint that drops to an unprivileged
    user is not root; the configured user, resolved in the container's /etc/passwd, is beside it in the
    evidence). Each record carries its CIS Docker Benchmark id."""
    out = []
    ts = targets(ctx)
    # /proc reads take microseconds; `docker top` (a remote engine) is an engine call each: on the shared pool
    readings = ctx.map_containers(lambda t: container_processes(ctx.engine, t.view), ts)
    for t, procs in zip(ts, readings):
        cmd = (f"docker inspect -f '{{{{json .HostConfig}}}} {{{{.Config.User}}}}' {t.view.name}; "
               f"docker top {t.view.name} {TOP_ARGS}")
        try:
            who, why = _who(ctx, t), ""
        except RunbookError as exc:
            who, why = None, str(exc)
        for rule, v in judge_hardening(t.facts, ctx.params.security, who, why, procs).items():
            out.append(_record(rule, t, ctx.deployment.note_verdict(rule, v), cmd))
    try:  # a swarm's service specs too (a compose project has none)
        specs = spec_targets(ctx)
    except RunbookError as exc:
        return out + [_error(r, ctx.params.stack, exc, "the stack's service specs") for r in HARDENING_RULES]
    for t in specs:
        for rule, v in judge_hardening(t.facts, ctx.params.security).items():
            out.append(_spec_record(rule, t, ctx.deployment.note_verdict(rule, v), _spec_cmd(t, "json .Spec")))
    return out


@runs("hardening.shared_volume", phase=PHASE)
def shared_volumes(ctx: Context) -> list[CheckRecord]:
    """hardening.shared_volume over the project's containers (their Mounts, RW): a named volume mounted
    writable by two or more services is a WARN. Targets are the volumes' keys in the compose file."""
    try:
        ts = targets(ctx)
    except RunbookError as exc:
        return [_error("hardening.shared_volume", ctx.params.project, exc, "the project's containers")]
    if not ts:  # nothing was looked at: not a PASS (security.containers says why)
        return [Check("hardening.shared_volume").record(
            ctx.params.project, "SKIP", expected="each named volume written by one service at most", severity="info",
            actual="no container to judge", evidence={"source": "engine", "containers": 0})]
    names = {str(v.get("name") or k): k for k, v in (ctx.model.get("volumes") or {}).items()}
    cmd = f"docker inspect -f '{{{{json .Mounts}}}}' $(docker ps -aq --filter label=com.docker.compose.project={ctx.params.project})"
    verdicts = judge_shared_volumes([t.facts for t in ts], names, source="engine")
    if not verdicts:
        verdicts = [(ctx.params.project, Verdict("PASS", "each named volume written by one service at most",
                                                 "no named volume mounted", {"source": "engine", "volumes": []}))]
    return [make_record("hardening.shared_volume", vol, v, phase=PHASE, command=cmd) for vol, v in verdicts]


from runbook_lib.run.manifest import Manifest  # noqa: E402

# The notebook's sections, in order (every check runs in both modes).
MANIFEST = Manifest(PHASE, {
    "containers": [containers_present],
    "secrets mounted": [secrets_mounted],
    "file variables": [secret_file_env],
    "plaintext": [no_plaintext_env],
    "config and logs": [secrets_not_in_config, secrets_not_in_logs],
    "hardening": [hardening, shared_volumes],
})
