"""The docker CLI's stack loader: `docker stack config`, the way `docker stack deploy` itself reads
a stack file. It is not Compose: it refuses keys Compose accepts (``mem_limit``, ``cpus``...), does not read
``.env`` or env files, and warns about keys it ignores. Compose still resolves the model the rules judge
(``docker compose config``, as in compose mode); this is the check that the stack would be accepted.

Then what the engine API has no word for: deploying and removing a stack (the docker CLI makes one of services,
networks, secrets and configs), and waiting until Swarm has converged on what was deployed."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from runbook_lib.engine.event_calls import engine_time
from runbook_lib.engine.service_spec import (SECRET_DEFAULTS, SwarmService, field_differences, secret_mode,
                                             stack_file_fields)
from runbook_lib.errors import ComposeConfigError, ComposeError, EnvironmentProblem, RunbookError

# The service spec and the stack file in the same terms (phase 3's drift) are :mod:`.service_spec`'s; they are
# named here too, since the phases, the rules and the tests take every swarm-stack name from this module.
__all__ = ["STACK_CONFIG_TIMEOUT_S", "StackConfig", "stack_command", "stack_config", "deploy_command", "stack_deploy",
           "stack_rm", "UPDATE_STUCK", "parse_time", "task_evidence", "ServiceState", "service_states",
           "wait_converged", "SECRET_DEFAULTS", "SwarmService", "field_differences", "secret_mode",
           "stack_file_fields"]

STACK_CONFIG_TIMEOUT_S = 30


@dataclass
class StackConfig:
    command: list[str]
    model: dict[str, Any]
    stderr: str


def stack_command(files: Sequence[Path]) -> list[str]:
    return ["docker", "stack", "config", *[a for f in files for a in ("-c", str(f))]]


def stack_config(files: Sequence[Path], timeout: float = STACK_CONFIG_TIMEOUT_S) -> StackConfig:
    """The stack file(s) as `docker stack config` resolves them (the environment of this process is what
    it interpolates from, as for `docker stack deploy`). Raises ComposeConfigError (its stderr kept) when
    the loader refuses them, EnvironmentProblem when there is no docker CLI."""
    docker = shutil.which("docker")
    argv = stack_command(files)
    if not docker:
        raise EnvironmentProblem("the docker CLI is not installed: `docker stack config` (the loader `docker stack "
                                 "deploy` uses) cannot check the stack file")
    try:
        proc = subprocess.run([docker, *argv[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ComposeConfigError(f"`{' '.join(argv)}` timed out after {timeout:.0f} s", files=[str(f) for f in files]) from exc
    if proc.returncode != 0:
        cause = " ".join(proc.stderr.split()) or "(no stderr)"
        raise ComposeConfigError(f"`{' '.join(argv)}` exited {proc.returncode}: {cause}",
                                 files=[str(f) for f in files], stderr=proc.stderr)
    try:
        model = yaml.safe_load(proc.stdout) or {}
    except yaml.YAMLError as exc:
        raise ComposeConfigError(f"`{' '.join(argv)}` printed no YAML: {exc}", files=[str(f) for f in files]) from exc
    return StackConfig(argv, model if isinstance(model, dict) else {}, proc.stderr)


# -- deploying and removing a stack (the CLI: the engine API has no stacks, the docker CLI makes one of services,
# networks, secrets and configs) ------------------------------------------------------------------------------

def deploy_command(files: Sequence[Path], stack: str, *, prune: bool = True, resolve_image: str = "always") -> list[str]:
    return ["docker", "stack", "deploy", *(["--prune"] if prune else []), "--resolve-image", resolve_image,
            *[a for f in files for a in ("-c", str(f))], stack]


def _docker_cli(argv: list[str], timeout: float, files: Sequence[Path] = ()) -> subprocess.CompletedProcess:
    docker = shutil.which("docker")
    if not docker:
        raise EnvironmentProblem(f"the docker CLI is not installed: `{' '.join(argv)}` cannot run")
    try:
        proc = subprocess.run([docker, *argv[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ComposeError(argv, 124, f"timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise ComposeError(argv, proc.returncode, proc.stderr)
    return proc


def stack_deploy(files: Sequence[Path], stack: str, *, prune: bool = True, resolve_image: str = "always",
                 timeout: float = 300) -> subprocess.CompletedProcess:
    """``docker stack deploy [--prune] --resolve-image R -c FILE... STACK`` on the engine DOCKER_HOST names (the
    environment of this process is what the stack file is interpolated from). Returns at once: Swarm converges
    in the background (:func:`wait_converged`). Raises ComposeError (exit status, stderr) when it is refused."""
    return _docker_cli(deploy_command(files, stack, prune=prune, resolve_image=resolve_image), timeout, files)


def stack_rm(stack: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``docker stack rm STACK``: its services, networks and the configs/secrets it created (external ones stay;
    volumes stay). Returns before the tasks' containers are gone."""
    return _docker_cli(["docker", "stack", "rm", stack], timeout)


# -- convergence: what `docker stack deploy` leaves Swarm to do -------------------------------------------------
# The engine sends no task events, so convergence is read from the services and tasks (a manager's view of
# every node) once a second until it holds or the deadline passes.

#: UpdateStatus states after which a service will not converge without a person (a rollback is a failed update).
UPDATE_STUCK = ("paused", "rollback_paused", "rollback_completed")


def parse_time(value: str | None) -> float | None:
    """An engine timestamp (RFC 3339 with nanoseconds) as Unix seconds; None when absent or unreadable."""
    at = engine_time(value or "")
    return None if at is None else at.timestamp()


def task_evidence(t: dict[str, Any], nodes: dict[str, str] | None = None) -> dict[str, Any]:
    """One task as a record keeps it: slot, node, desired and current state, its error and message, its
    container and exit code, when it was created. No secret is in a task (only references)."""
    st = t.get("Status") or {}
    cs = st.get("ContainerStatus") or {}
    node = t.get("NodeID") or ""
    return {"id": (t.get("ID") or "")[:12], "slot": t.get("Slot"), "node": (nodes or {}).get(node, node[:12]),
            "desired": t.get("DesiredState", ""), "state": st.get("State", ""), "message": st.get("Message", ""),
            "error": st.get("Err", ""), "container": (cs.get("ContainerID") or "")[:12],
            "exit_code": cs.get("ExitCode"), "created": t.get("CreatedAt", ""), "updated": t.get("UpdatedAt", "")}


@dataclass
class ServiceState:
    """One stack-file service as Swarm has it now. ``converged``: its desired replicas running (a task with a
    healthcheck is "running" only once healthy: before, Swarm says "starting"), its update completed (or none),
    and no task rejected since ``since``. ``stuck``: why waiting longer cannot help (a rejected task, an update
    paused or rolled back, no such service), or ""."""

    service: str
    name: str
    exists: bool = True
    mode: str = "replicated"
    desired: int = 0
    running: int = 0
    update_state: str = ""
    update_message: str = ""
    tasks: list[dict[str, Any]] = field(default_factory=list)     # the tasks meant to run now
    rejected: list[dict[str, Any]] = field(default_factory=list)  # rejected since `since`
    failed: list[dict[str, Any]] = field(default_factory=list)    # failed since `since` (replaced or not)
    image: str = ""

    @property
    def converged(self) -> bool:
        # a global service's desired count is its tasks: none (the first poll after the deploy, or no node fits
        # its placement) is not "0 of 0 running, converged"
        return (self.exists and self.running == self.desired and not self.rejected
                and self.update_state in ("", "completed") and (self.mode != "global" or self.desired > 0))

    @property
    def stuck(self) -> str:
        if not self.exists:
            return "no such service in the swarm"
        if self.rejected:
            r = self.rejected[-1]
            return f"task {r['id']} rejected: {r['error'] or r['message']}"
        if self.update_state in UPDATE_STUCK:
            return f"update {self.update_state}" + (f": {self.update_message}" if self.update_message else "")
        return ""

    def describe(self) -> str:
        """One line: replicas, update state, what the tasks are doing."""
        if not self.exists:
            return "no such service in the swarm"
        text = f"{self.running}/{self.desired} running"
        if self.mode == "global" and not self.desired:
            text += " (global: no task yet; no node may fit its placement constraints)"
        if self.update_state:
            text += f", update {self.update_state}"
        waiting = [t for t in self.tasks if t["state"] != "running"]
        if waiting:
            def why(t: dict[str, Any]) -> str:
                said = t["error"] or t["message"]
                return f" ({said})" if said and said != t["state"] else ""
            text += "; " + ", ".join(f"task {t['id']} {t['state']}{why(t)}" for t in waiting[:3])
        if self.rejected:
            text += f"; {len(self.rejected)} task(s) rejected, last: {self.rejected[-1]['error'] or self.rejected[-1]['message']}"
        elif self.failed:
            text += f"; {len(self.failed)} task(s) failed since the deploy, last: {self.failed[-1]['error'] or self.failed[-1]['message']}"
        return text

    def evidence(self) -> dict[str, Any]:
        return {"service": self.service, "name": self.name, "exists": self.exists, "mode": self.mode,
                "image": self.image, "desired": self.desired, "running": self.running,
                "update_state": self.update_state or None, "update_message": self.update_message or None,
                "tasks": self.tasks, "rejected_since_deploy": self.rejected[-5:], "failed_since_deploy": self.failed[-5:],
                "converged": self.converged}


def service_states(engine: Any, stack: str, services: Sequence[str], since: float | None = None) -> dict[str, ServiceState]:
    """The state of each stack-file service of ``stack`` (``{stack}_{service}`` in the swarm); ``since`` (Unix
    seconds): tasks rejected or failed before it are history, not counted. Raises RunbookError when the
    engine cannot be read."""
    found = {(s.get("Spec") or {}).get("Name", ""): s for s in engine.stack_services(stack)}
    try:
        nodes = {n["id"]: n["hostname"] for n in engine.swarm_nodes()}
    except RunbookError:
        nodes = {}
    every_task = engine.stack_tasks(stack)  # one listing for all services, each poll
    out: dict[str, ServiceState] = {}
    for svc in services:
        name = f"{stack}_{svc}"
        spec = found.get(name)
        if spec is None:
            out[svc] = ServiceState(svc, name, exists=False)
            continue
        mode = spec.get("Spec", {}).get("Mode") or {}
        us = spec.get("UpdateStatus") or {}
        tasks = [t for t in every_task if t.get("ServiceID") == spec.get("ID")]
        current = [t for t in tasks if t.get("DesiredState") in ("running", "ready")]
        recent = [t for t in tasks if since is None or (parse_time(t.get("CreatedAt")) or 0) >= since - 1]
        st = ServiceState(
            svc, name, mode="global" if "Global" in mode else "replicated",
            desired=int((mode.get("Replicated") or {}).get("Replicas", 0)) if "Replicated" in mode else len(current),
            running=sum(1 for t in current if (t.get("Status") or {}).get("State") == "running"),
            update_state=us.get("State", ""), update_message=us.get("Message", ""),
            tasks=[task_evidence(t, nodes) for t in current],
            rejected=[task_evidence(t, nodes) for t in recent if (t.get("Status") or {}).get("State") == "rejected"],
            failed=[task_evidence(t, nodes) for t in recent if (t.get("Status") or {}).get("State") == "failed"],
            image=((spec.get("Spec", {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
        out[svc] = st
    return out


def wait_converged(engine: Any, stack: str, services: Sequence[str], timeout: float, *, since: float | None = None,
                   progress: Callable[[str], None] | None = None, interval: float = 1.0
                   ) -> tuple[bool, dict[str, ServiceState], float]:
    """Until every listed service has converged (:class:`ServiceState`), every one that has not is stuck, or
    ``timeout`` seconds have passed. Returns (all converged, the states as last seen, seconds waited). Raises
    RunbookError when the engine cannot be read."""
    t0 = time.monotonic()
    last = ""
    while True:
        states = service_states(engine, stack, services, since)
        waiting = [s for s in states.values() if not s.converged]
        line = (f"{len(states) - len(waiting)}/{len(states)} services converged"
                + (f"; waiting for {', '.join(f'{s.service} ({s.describe()})' for s in waiting[:4])}" if waiting else ""))
        if progress and line != last:
            progress(line)
        last = line
        waited = round(time.monotonic() - t0, 1)
        if not waiting or all(s.stuck for s in waiting) or waited >= timeout:
            return not waiting, states, waited
        threading.Event().wait(min(interval, max(timeout - waited, 0.05)))
