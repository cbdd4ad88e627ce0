"""A Swarm stack as the :class:`~runbook_lib.deploy.base.Deployment`: the stack's services and tasks as the swarm
holds them, the task containers this engine holds, ``docker stack``/``docker service`` commands, the service
specs as the drift source, and ``scale`` faults.

A task's container carries no restart policy of its own (the swarm replaces a task instead of restarting its
container) and its secrets are mounted where the archive API cannot see them; the service spec says what
every new task gets. The swarm-only checks (``prod.replicas``, ``prod.task_history``, the swarm variants of
drift, env and restart policy) are in :mod:`runbook_lib.phases.production.swarm_checks`; the swarm's preflight and
redeployment checks in :mod:`runbook_lib.phases.preflight.swarm_checks` and :mod:`runbook_lib.phases.redeploy.swarm_checks`.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from runbook_lib.deploy.base import Deployment, T
from runbook_lib.engine import ContainerView, FileEntry
from runbook_lib.engine.containers import STACK_LABEL
from runbook_lib.engine.stack import SwarmService, service_states
from runbook_lib.errors import RunbookError
from runbook_lib.model.facts import secret_targets
from runbook_lib.results.records import Check, CheckRecord

# What a finding of no-new-privileges says in swarm mode (lint --swarm FAILs it for the same reason).
NO_NEW_PRIVILEGES_NOTE = "a swarm stack cannot set no-new-privileges: docker stack deploy ignores security_opt"


def swarm_secret_path(target: str, secrets_dir: str = "/run/secrets") -> str:
    """Where a swarm mounts a secret whose reference names ``target`` (relative: under the secrets directory)."""
    if not target:
        return ""
    return target if target.startswith("/") else f"{secrets_dir.rstrip('/')}/{target}"


def task_secret_refs(task: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The secret references of a task's own spec."""
    return (((task or {}).get("Spec") or {}).get("ContainerSpec") or {}).get("Secrets") or []


class SwarmDeployment(Deployment):
    mode = "swarm"
    file_kind = "stack file"
    readiness_key = "service"
    nothing_deployed = "no service of the stack"
    lints_as_stack = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading = threading.RLock()  # one reading of the services and tasks, whichever thread asks first

    @property
    def name(self) -> str:
        return self.params.stack

    # -- what runs ------------------------------------------------------------------------------------------
    def containers(self) -> list[ContainerView]:
        return self.engine.stack_containers(self.params.stack)

    def service_containers(self, service: str) -> list[ContainerView]:
        return self.engine.stack_containers(self.params.stack, service)

    def current(self, views: list[ContainerView]) -> list[ContainerView]:
        """The containers of the tasks the scheduler wants running (desired state "running"), not those of past
        tasks (replaced by an update, failed, shut down), which a swarm keeps for its task history."""
        wanted = {t.get("ID") for t in self.tasks() if t.get("DesiredState") == "running"}
        return [v for v in views if v.task_id in wanted]

    def service_specs(self) -> dict[str, SwarmService]:
        """The stack's services (``docker service inspect``), by their name in the stack file; read once per phase."""
        with self._reading:
            if self.cache.swarm_services is None:
                found = [SwarmService(a, self.params.stack) for a in self.engine.stack_services(self.params.stack)]
                self.cache.swarm_services = {s.service: s for s in found}
        return self.cache.swarm_services

    def tasks(self) -> list[dict[str, Any]]:
        """Every task of the stack's services (every node's, current and past, oldest first); read once per phase."""
        with self._reading:
            if self.cache.swarm_tasks is None:
                self.cache.swarm_tasks = self.engine.stack_tasks(self.params.stack)
        return self.cache.swarm_tasks

    def running_task_nodes(self, service: str) -> list[str]:
        """The nodes (short ids) where a task of ``service`` the scheduler wants running runs, from the phase's reading."""
        services = self.service_specs()
        sid = services[service].id if service in services else None
        return sorted({t.get("NodeID", "")[:12] for t in self.tasks() if t.get("ServiceID") == sid
                       and t.get("DesiredState") == "running" and (t.get("Status") or {}).get("State") == "running"})

    def running_tasks(self, service: str) -> list[dict[str, Any]]:
        """A fresh reading (:func:`~runbook_lib.engine.stack.service_states`): the running tasks of ``service``,
        each with its node (a task on another node cannot be exec'd from here)."""
        return [t for t in service_states(self.engine, self.params.stack, [service])[service].tasks
                if t["state"] == "running"]

    def volumes(self) -> list[dict[str, Any]]:
        return self.engine.stack_volumes(self.params.stack)

    # -- the commands a human would type ---------------------------------------------------------------------
    def list_command(self, service: str | None = None) -> str:
        label = (f"com.docker.swarm.service.name={self.params.stack}_{service}" if service else
                 f"{STACK_LABEL}={self.params.stack}")
        return f"docker ps -a --filter label={label}"

    def inventory_command(self) -> str:
        st = self.params.stack
        return f"docker stack services {st}; docker stack ps {st}; docker volume ls --filter label={STACK_LABEL}={st}"

    # -- how a service is read ---------------------------------------------------------------------------------
    @property
    def events_label(self) -> str | None:
        return f"{STACK_LABEL}={self.params.stack}"

    def restart_note(self) -> str | None:
        return "a swarm replaces a task instead of restarting its container: prod.task_history judges them"

    def container_detail(self, v: ContainerView) -> str:
        return f", task {v.task_id[:12]}"

    def unhealthy_consequence(self, v: ContainerView) -> str:
        return "in a swarm, the scheduler replaces an unhealthy task (as its restart policy allows)"

    def judged_spec(self, view: ContainerView, spec: dict[str, Any]) -> dict[str, Any]:
        tasks = {t.get("ID"): t for t in self.tasks()}
        refs = task_secret_refs(tasks.get(view.task_id))
        return {**spec, "secrets": [
            {"source": r.get("SecretName", ""), "target": swarm_secret_path((r.get("File") or {}).get("Name", ""),
                                                                           self.params.security.secrets_dir)}
            for r in refs]}

    def note_verdict(self, rule: str, verdict: T) -> T:
        if rule == "hardening.no_new_privileges" and verdict.status != "PASS":  # type: ignore[attr-defined]
            verdict.actual += f"; {NO_NEW_PRIVILEGES_NOTE}"  # type: ignore[attr-defined]
            verdict.evidence["swarm"] = NO_NEW_PRIVILEGES_NOTE  # type: ignore[attr-defined]
        return verdict

    def read_secret_files(self, view: ContainerView, service_spec: dict[str, Any],
                          secrets_dir: str) -> dict[str, FileEntry]:
        """Each secret the container's own task mounts. A swarm mounts them where the archive API cannot see
        them (it returns the empty mount points): read through /proc/PID/root on the engine's host (the
        container's own view), else inside the container; only while it runs (a stopped task's secrets are
        gone with it). Raises RunbookError when the container's task is in neither the phase's reading of the
        tasks nor a fresh one: its secret references are unknown, which is not "it mounts none"."""
        if not view.running:
            return {}
        task = next((t for t in self.tasks() if t.get("ID") == view.task_id), None)
        if task is None:  # a task that started after the phase's reading (the swarm replaced one meanwhile)
            task = next((t for t in self.engine.stack_tasks(self.params.stack) if t.get("ID") == view.task_id), None)
        if task is None:
            raise RunbookError(f"{view.name}: its task {view.task_id or '(no task label)'} is not among the tasks of "
                               f"stack {self.params.stack}, so which secrets it mounts is unknown; run the phase again "
                               f"(`docker stack ps {self.params.stack}` shows the tasks)")
        paths = sorted({swarm_secret_path((s.get("File") or {}).get("Name") or "", secrets_dir)
                        for s in task_secret_refs(task)} - {""})
        found: dict[str, FileEntry] = {}
        for path in paths:
            entries = self.engine.read_path(view.id, path, pid=view.pid)
            if entries is not None and any(e.via != "procfs" for e in entries):
                break  # not the container's own view: read inside it
            found.update({e.path: e for e in entries or []})
        else:
            return found
        exec_read = self.engine.read_mounted_files(view.id, paths)
        for e in exec_read:
            e.via = "exec"
        return {e.path: e for e in exec_read}

    @property
    def serves_secrets_from_containers(self) -> bool:
        return True

    def secret_from_containers(self, name: str, model: dict[str, Any], secrets_dir: str,
                               containers_of: Callable[[str], list[ContainerView]] | None = None) -> str | None:
        """The value of the stack's secret NAME (an ``external`` one has no file on this host), read from a
        running task container on this engine that mounts it, the way phase 2 reads a task's secrets. None
        when no service of the stack file mounts it or none of its containers runs here. Raises RunbookError
        when the read fails."""
        for svc, spec in sorted((model.get("services") or {}).items()):
            paths = [p for p, src in secret_targets(spec, secrets_dir).items() if src == name]
            if not paths:
                continue
            for view in (containers_of or self.service_containers)(svc):
                if not view.running:
                    continue
                entries = self.engine.read_path(view.id, paths[0], pid=view.pid)
                if entries is None or any(e.via != "procfs" for e in entries):  # not the container's own view
                    entries = self.engine.read_mounted_files(view.id, paths[:1])
                for e in entries:
                    if e.kind == "file" and e.content is not None:
                        return e.content.decode("utf-8", "surrogateescape")
        return None

    def endpoint_host(self) -> str | None:
        """The node's address: host-mode ports answer there (a single-node swarm's: the manager's)."""
        try:
            return self.engine.swarm_state().get("node_addr") or None
        except RunbookError:
            return None

    def running_images(self, current: list[ContainerView]) -> dict[str, dict[str, Any]]:
        """The image of each service of the stack as the swarm runs it: the service spec's reference (with the
        digest the swarm resolved, when it did) and, for the running task containers this engine holds, the
        image id and digests they run. A service whose running tasks are all on other nodes is recorded from
        its spec alone (``tasks_here`` 0)."""
        out: dict[str, dict[str, Any]] = {}
        for name, svc in sorted(self.service_specs().items()):
            views = [v for v in current if v.service == name]
            ids = sorted({v.image_id for v in views})
            infos = [self.engine.image_summary(i) for i in ids]
            out[name] = {"image": svc.image, "id": " ".join(str(i.get("id")) for i in infos) or None,
                         "digests": sorted({d for i in infos for d in i.get("digests", [])}),
                         "service": svc.name, "spec_version": svc.version, "tasks_here": len(views)}
        return out

    def missing_service(self, c: Check, svc: str, expected: str) -> CheckRecord:
        """A FAIL when no task of the service runs anywhere, an ERROR when its running tasks are on nodes whose
        engines this run cannot read (nothing was looked at: never a PASS, not a FAIL either)."""
        cmd = f"docker service ps {self.params.stack}_{svc}; {self.list_command(svc)}"
        try:
            nodes = self.running_task_nodes(svc)
        except RunbookError as exc:
            return c.error(svc, exc, expected=expected)
        ev = {"read": "docker service ps; docker ps (stack labels)", "service": svc, "containers": [],
              "nodes_running_tasks": nodes}
        if nodes:
            return c.record(svc, "ERROR", expected=expected, evidence=ev, command=cmd,
                            actual=f"could not check: its running tasks are on node(s) {', '.join(nodes)}, whose "
                                   "containers this engine does not hold")
        return c.record(svc, "FAIL", expected=expected, actual="no task of this service is running", evidence=ev,
                        command=cmd)

    # -- the fault modes a drill uses --------------------------------------------------------------------------
    def replicas_of(self, service: str) -> str:
        """The replicas a service is set to, for the command shown ("N" when it cannot be read)."""
        try:
            mode = (self.engine.service(f"{self.params.stack}_{service}").get("Spec") or {}).get("Mode") or {}
            return str((mode.get("Replicated") or {}).get("Replicas", "N"))
        except RunbookError:
            return "N"

    def fault_command(self, dependency: str, mode: str, duration_s: float) -> str:
        svc = f"{self.params.stack}_{dependency}"
        return (f"docker service scale {svc}=0; sleep {duration_s:g}; "
                f"docker service scale {svc}={self.replicas_of(dependency)}")

    @property
    def fault_stack(self) -> str:
        return self.params.stack

    def dependency_ready(self, service: str, since: float | None = None) -> tuple[bool, list[dict[str, Any]]]:
        """The service converged (its replicas running, healthy where a healthcheck exists, update completed,
        no task rejected since ``since``, Unix seconds, default now): a task's old containers are history."""
        st = service_states(self.engine, self.params.stack, [service],
                            since if since is not None else time.time())[service]
        return st.converged, [st.evidence()]

    def variant(self, compose: T, swarm: T) -> T:
        return swarm
