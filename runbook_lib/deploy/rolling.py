"""A rolling redeployment (``redeploy.strategy: rolling``), one service at a time, as each mode does it.

Compose (docker-rollout's method), per service in dependency order (:func:`plan`):

1. ``docker compose up -d --no-deps --scale S=2 --no-recreate --no-start S``: the new container is created
   beside the old; it joins its networks without the service name as an alias (Docker's DNS answers a
   service name with every container carrying it, ready or not), and starts;
2. wait until it is ready (healthy where it has a healthcheck: its check is what says it serves), then give
   it its service name back: from now on callers reach it;
3. the old container leaves its networks first (the service name no longer resolves to it: a caller that
   resolves per request, the demo's gateway, stops sending it anything), ``drain_s`` later it is stopped and
   removed, and the service is scaled back to 1.

A service users reach only through a proxy in front (``redeploy.behind_proxy``: the demo's services behind its
gateway) may roll even with a fixed host port, through a stand-in (:func:`roll_through_stand_in`): a one-off
container of the service without the published port (``docker compose run -d --no-deps``) takes the service
name while the old container leaves, then the service's own container (port included) replaces the stand-in
the same way. Requests through the proxy never find nothing; the host port itself is unanswered from the old
container's removal until the new one is ready (a probe of that port records it).

A service that cannot run two containers at once is recreated instead (``up -d --no-deps --force-recreate``,
with the outage that costs), and :func:`plan` says why before anything starts: a fixed host port (two
containers cannot bind it), a ``container_name`` (one name), a named volume mounted read-write (two
processes would write the same data). A new container that never gets ready is removed and the old one
kept: the service is not replaced and the rolling stops there.

Swarm: the rolling is Swarm's own (``docker stack deploy`` updates each service by its ``update_config``);
:func:`judge_update_config` judges what a service's spec says against ``order: start-first`` and
``failure_action: rollback``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from runbook_lib.engine import ContainerView, Engine
from runbook_lib.engine.compose import Compose
from runbook_lib.engine.containers import ONEOFF_LABEL
from runbook_lib.errors import RunbookError


@dataclass
class ServicePlan:
    """How one service is replaced: ``rolling`` or ``recreate``, and why it cannot roll."""

    service: str
    method: str
    reasons: list[str] = field(default_factory=list)
    proxy: str = ""  # rolling through a stand-in: the proxy in front that users reach the service through
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        why = self.reasons or self.notes
        return self.method + (" through a stand-in" if self.proxy else "") + (f" ({'; '.join(why)})" if why else "")


def dependency_order(services: dict[str, Any]) -> list[str]:
    """The services of a compose model, each after every service it ``depends_on`` (ties by name)."""
    out: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen or name not in services or name in path:
            return
        for dep in sorted((services[name] or {}).get("depends_on") or {}):
            visit(dep, path + (name,))
        seen.add(name)
        out.append(name)

    for name in sorted(services):
        visit(name, ())
    return out


def fixed_ports(spec: dict[str, Any]) -> list[str]:
    """The service's fixed host ports (``ip:port->target``): two containers cannot bind one."""
    out = []
    for p in spec.get("ports") or []:
        published = str(p.get("published") or "")
        if published and "-" not in published:
            out.append(f"{p.get('host_ip') or '0.0.0.0'}:{published}->{p.get('target')}")
    return out


def why_not_rolling(spec: dict[str, Any], proxy: str = "") -> list[str]:
    """Why two containers of this compose service cannot run at once (empty: they can). ``proxy``: the service
    is reached through that proxy (``redeploy.behind_proxy``), so its fixed host ports do not stop it: a
    stand-in without them serves meanwhile."""
    reasons = [] if proxy else [f"fixed host port {p}: two containers cannot bind it" for p in fixed_ports(spec)]
    if spec.get("container_name"):
        reasons.append(f"container_name {spec['container_name']!r}: one container only")
    for v in spec.get("volumes") or []:
        if v.get("type") == "volume" and v.get("source") and not v.get("read_only"):
            reasons.append(f"named volume {v['source']} mounted read-write at {v.get('target')}: two containers "
                           "would write it at once")
    return reasons


def plan(model: dict[str, Any], behind_proxy: dict[str, str] | None = None) -> list[ServicePlan]:
    """Every service of the compose model, in dependency order, with how it will be replaced.
    ``behind_proxy``: service -> the proxy in front of it (a fixed host port then rolls through a stand-in)."""
    services = model.get("services") or {}
    behind_proxy = behind_proxy or {}
    out = []
    for name in dependency_order(services):
        spec = services[name] or {}
        proxy = behind_proxy.get(name, "")
        reasons = why_not_rolling(spec, proxy)
        ports = fixed_ports(spec) if proxy else []
        notes = [f"fixed host port {', '.join(ports)}: users come through {proxy} (redeploy.behind_proxy); a stand-in "
                 "without the port serves while it moves"] if ports else []
        out.append(ServicePlan(name, "recreate" if reasons else "rolling", reasons,
                               proxy=proxy if ports and not reasons else "", notes=notes if not reasons else []))
    return out


@dataclass
class Step:
    """What replacing one service did: times are ``time.monotonic()``; ``ok`` when it is ready and the old
    container is gone (rolling) or the new one is ready (recreate)."""

    service: str
    method: str
    started: float
    ended: float = 0.0
    ok: bool = False
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    ready_after_s: float | None = None
    ready_as: str = ""  # what "ready" was: healthy, or running with no healthcheck to say more
    commands: list[str] = field(default_factory=list)
    problem: str = ""
    health_log: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # what happened when (monotonic)

    def mark(self, what: str) -> None:
        self.marks[what] = time.monotonic()

    def evidence(self, origin: float) -> dict[str, Any]:
        return {"method": self.method, "old_containers": self.old, "new_containers": self.new,
                "ready_after_s": self.ready_after_s, "ready_as": self.ready_as or None, "commands": self.commands, "problem": self.problem or None,
                "window_s": [round(self.started - origin, 3), round(self.ended - origin, 3)],
                "marks_s": {k: round(v - origin, 3) for k, v in self.marks.items()},
                "health_log": self.health_log[-3:]}


def _wait_container(engine: Engine, cid: str, timeout: float) -> tuple[bool, ContainerView | None]:
    """Poll one container until it is ready (running, healthy where it has a healthcheck) or has exited."""
    deadline = time.monotonic() + timeout
    view = None
    while time.monotonic() < deadline:
        view = engine.container(cid)
        if view.ready:
            return True, view
        if view.state in ("exited", "dead"):
            return False, view
        threading.Event().wait(0.5)
    return False, view


def _ready_as(view: ContainerView | None) -> str:
    """What a ready container was seen as: a running container without a healthcheck says nothing of serving."""
    if view is None:
        return ""
    return ("healthy" if view.health == "healthy" else "completed" if view.completed
            else "running (it has no healthcheck: whether it serves is the probe load's to say)")


def _names(views: list[ContainerView]) -> list[str]:
    return sorted(v.name for v in views)


def _unlisted(engine: Engine, view: ContainerView, service: str, step: Step) -> dict[str, list[str]]:
    """Reconnect a created container to each of its networks without the service name among its aliases:
    Docker's DNS answers the service name with every container that carries it, ready or not, and a caller
    would be sent to one that does not listen yet. Returns the aliases to restore (:func:`_listed`)."""
    networks = {net: info["aliases"] for net, info in view.networks.items()}
    for net, aliases in networks.items():
        step.commands.append(f"docker network disconnect {net} {view.name} && docker network connect "
                             f"{' '.join(f'--alias {a}' for a in aliases if a != service)} {net} {view.name}")
        engine.disconnect_network(view.id, net)
        engine.connect_network(view.id, net, aliases=[a for a in aliases if a != service])
    return networks


def _listed(engine: Engine, view: ContainerView, networks: dict[str, list[str]], step: Step) -> None:
    """Give a ready container its service name back on each network (callers now reach it)."""
    for net, aliases in networks.items():
        step.commands.append(f"docker network disconnect {net} {view.name} && docker network connect "
                             f"{' '.join(f'--alias {a}' for a in aliases)} {net} {view.name}")
        engine.disconnect_network(view.id, net)
        engine.connect_network(view.id, net, aliases=aliases)


def _bring_in(engine: Engine, view: ContainerView, service: str, step: Step, timeout: float, *,
              listed: bool = False) -> bool:
    """Start a created container (``listed``: one already running without the service name), wait until it is
    ready and give it the service name. False (and ``step.problem``) when it never gets ready: it is removed."""
    if listed:
        networks = {net: [a for a in info["aliases"] if a != service] + [service] for net, info in view.networks.items()}
    else:
        networks = _unlisted(engine, view, service, step)  # the service name must not resolve to it yet
        step.commands.append(f"docker start {view.name}")
        engine.start_container(view.id)
    step.mark(f"{view.name} started")
    t0 = time.monotonic()
    ok, seen = _wait_container(engine, view.id, timeout)
    step.health_log = seen.health_log if seen is not None else []
    if not ok:
        step.problem = (f"the new container {view.name} is not ready after {time.monotonic() - t0:.1f}s "
                        f"({seen.state if seen else 'gone'}{', ' + seen.health if seen and seen.health else ''}): "
                        f"removed, {', '.join(step.old) or 'nothing'} kept")
        engine.stop_and_remove(view.id)
        return False
    step.ready_after_s, step.ready_as = round(time.monotonic() - t0, 1), _ready_as(seen)
    step.mark(f"{view.name} ready")
    _listed(engine, view, networks, step)  # ready: now the service name resolves to it too
    step.mark(f"{view.name} named")
    return True


def _retire(engine: Engine, old: list[ContainerView], step: Step, drain_s: float) -> None:
    """The old containers leave their networks (their service name stops resolving to them before they stop
    answering), ``drain_s`` later they are stopped and removed."""
    for v in old:
        for net in v.networks:
            step.commands.append(f"docker network disconnect {net} {v.name}")
            engine.disconnect_network(v.id, net)
    names = ", ".join(_names(old)) or "nothing old"
    step.mark(f"{names} left the networks")
    threading.Event().wait(drain_s)
    for v in old:
        step.commands.append(f"docker rm -f {v.name}")
        engine.stop_and_remove(v.id)
    step.mark(f"{names} removed")


def _own(views: list[ContainerView]) -> list[ContainerView]:
    """The service's own containers, not one-off ones (``compose run``: a stand-in)."""
    return [v for v in views if v.labels.get(ONEOFF_LABEL) != "True"]


def roll_service(compose: Compose, engine: Engine, project: str, service: str, *, timeout: float,
                 drain_s: float, progress: Callable[[str], None]) -> Step:
    """Replace one service's container by a new one started beside it (module docstring). Raises
    RunbookError (ComposeError, EngineError) when a command fails; the Step says how far it got."""
    step = Step(service, "rolling", time.monotonic())
    try:
        old = [v for v in _own(engine.service_containers(project, service)) if v.running]
        step.old = _names(old)
        args = ["up", "-d", "--no-deps", "--scale", f"{service}={len(old) + 1}", "--no-recreate", "--no-start", service]
        step.commands.append(compose.display(*args))
        progress(f"$ {step.commands[-1]}")
        compose.run(*args, timeout=timeout + 60)
        new = [v for v in _own(engine.service_containers(project, service)) if v.name not in step.old]
        step.new = _names(new)
        if not new:
            step.problem = "compose created no new container"
            return step
        if not _bring_in(engine, new[0], service, step, timeout):
            return step
        _retire(engine, old, step, drain_s)
        args = ["up", "-d", "--no-deps", "--scale", f"{service}={max(len(old), 1)}", "--no-recreate", service]
        step.commands.append(compose.display(*args))
        compose.run(*args, timeout=120)
        step.ok = True
        return step
    finally:
        step.ended = time.monotonic()


def roll_through_stand_in(compose: Compose, engine: Engine, project: str, service: str, *, timeout: float,
                          drain_s: float, progress: Callable[[str], None]) -> Step:
    """A service with a fixed host port behind a declared proxy (module docstring): a stand-in without the
    port takes over from the old container, then the service's own new container takes over from the
    stand-in. A stand-in that never gets ready is removed and the old container kept; a new container that
    never gets ready is removed and the stand-in left serving (``step.problem`` names it)."""
    step = Step(service, "rolling", time.monotonic())
    try:
        old = [v for v in _own(engine.service_containers(project, service)) if v.running]
        step.old = _names(old)
        stand_in = f"{project}-{service}-stand-in"
        engine.stop_and_remove(stand_in)  # one left by an interrupted run
        args = ["run", "-d", "--no-deps", "--name", stand_in, service]
        step.commands.append(compose.display(*args))
        progress(f"$ {step.commands[-1]}")
        compose.run(*args, timeout=timeout + 60)
        view = engine.container(stand_in)
        if not _bring_in(engine, view, service, step, timeout, listed=True):
            return step
        _retire(engine, old, step, drain_s)
        step.old = _names(old) + [stand_in]
        args = ["up", "-d", "--no-deps", "--no-recreate", "--no-start", service]
        step.commands.append(compose.display(*args))
        progress(f"$ {step.commands[-1]}")
        compose.run(*args, timeout=timeout + 60)
        gone = {v.id for v in old}  # (by id: the new container may take the old one's name)
        new = [v for v in _own(engine.service_containers(project, service)) if v.id not in gone]
        step.new = _names(new)
        if not new:
            step.problem = f"compose created no new container: the stand-in {stand_in} serves meanwhile"
            return step
        if not _bring_in(engine, new[0], service, step, timeout):
            step.problem += f" (the stand-in {stand_in} serves meanwhile)"
            return step
        _retire(engine, [engine.container(stand_in)], step, drain_s)
        step.ok = True
        return step
    finally:
        step.ended = time.monotonic()


def recreate_service(compose: Compose, engine: Engine, project: str, service: str, *, timeout: float,
                     progress: Callable[[str], None]) -> Step:
    """Recreate one service in place (its old container stops first: an outage the probe load measures)."""
    step = Step(service, "recreate", time.monotonic())
    try:
        step.old = _names(engine.service_containers(project, service))
        args = ["up", "-d", "--no-deps", "--force-recreate", service]
        step.commands.append(compose.display(*args))
        progress(f"$ {step.commands[-1]}")
        compose.run(*args, timeout=timeout + 60)
        new = engine.service_containers(project, service)
        step.new = _names(new)
        if not new:
            step.problem = "compose left no container"
            return step
        t0 = time.monotonic()
        ok, view = _wait_container(engine, new[0].id, timeout)
        step.health_log = view.health_log if view is not None else []
        if not ok:
            step.problem = f"{new[0].name} is not ready after {time.monotonic() - t0:.1f}s"
            return step
        step.ready_after_s, step.ready_as = round(time.monotonic() - t0, 1), _ready_as(view)
        step.ok = True
        return step
    finally:
        step.ended = time.monotonic()


WANTED_UPDATE = {"Order": "start-first", "FailureAction": "rollback"}


def judge_update_config(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A swarm service spec's ``UpdateConfig`` (Swarm's defaults where unset: stop-first, pause) and what
    differs from a rolling update that never drops the service and undoes a failed one."""
    cfg = spec.get("UpdateConfig") or {}
    seen = {"Order": cfg.get("Order") or "stop-first", "FailureAction": cfg.get("FailureAction") or "pause",
            "Parallelism": cfg.get("Parallelism", 1), "Monitor_ns": cfg.get("Monitor")}
    keys = {"Order": "order", "FailureAction": "failure_action"}
    problems = [f"update_config.{keys[k]} is {seen[k]}, not {v}" for k, v in WANTED_UPDATE.items() if seen[k] != v]
    return seen, problems


__all__ = ["RunbookError", "ServicePlan", "Step", "dependency_order", "judge_update_config", "plan",
           "recreate_service", "roll_service", "roll_through_stand_in", "why_not_rolling"]
