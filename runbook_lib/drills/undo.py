"""Undoing what a drill journal says was broken: start, unpause, reconnect with the aliases, scale back. Used by
the drill itself (:meth:`runbook_lib.drills.faults.Fault.restore`), by ``runbook recover`` and by the guardian
(:mod:`.recovery`). Idempotent: what is already fine is left alone."""
from __future__ import annotations

import os
from typing import Any

from runbook_lib.drills.journal import DrillError
from runbook_lib.engine import ContainerView, Engine, EngineError


def service_replicas(engine: Engine, name: str) -> int | None:
    """The replicas a replicated swarm service is set to; None for a global one."""
    mode = (engine.service(name).get("Spec") or {}).get("Mode") or {}
    return int((mode.get("Replicated") or {}).get("Replicas", 0)) if "Replicated" in mode else None


def _undo_scale(engine: Engine, data: dict[str, Any]) -> list[str]:
    svc = data.get("service") or {}
    name, want = svc.get("name"), svc.get("replicas_before")
    if not name or not want:
        raise DrillError(f"the journal names no service and replicas to restore ({data.get('dependency')}); "
                         "restore by hand with `docker service scale NAME=N`")
    try:
        now = service_replicas(engine, name)
    except EngineError as exc:
        if exc.status_code == 404:
            raise DrillError(f"service {name} does not exist on the engine at {os.environ.get('DOCKER_HOST') or 'the default socket'} "
                             f"(the drill ran against {data.get('docker_host') or 'the default socket'}): point DOCKER_HOST at a "
                             f"manager of that swarm, or redeploy the stack") from exc
        raise
    if now == want:
        return []
    engine.scale_service(name, want)
    return [f"docker service scale {name}={want}"]


def _find(engine: Engine, cid: str) -> ContainerView | None:
    try:
        return engine.container(cid)
    except EngineError as exc:
        if exc.status_code == 404:  # the engine has no such container
            return None
        raise


def undo(engine: Engine, data: dict[str, Any]) -> list[str]:
    """Undo what a journal says was broken; idempotent (what is already fine is left alone).
    Returns what was done, one line each. Raises DrillError when a container cannot be restored."""
    mode, done = data.get("mode"), []
    if mode == "scale":
        return _undo_scale(engine, data)
    for c in data.get("containers", []):
        view = _find(engine, c["id"])
        if view is None:
            others = [v for v in engine.service_containers(data["project"], data["dependency"]) if v.running]
            if others:
                done.append(f"{c['name']}: gone, but {others[0].name} runs the service")
                continue
            raise DrillError(f"container {c['name']} of {data['dependency']} no longer exists and none replaces it; "
                             f"run `docker compose -p {data['project']} up -d {data['dependency']}`")
        if view.state == "paused":
            engine.unpause_container(c["id"])
            done.append(f"docker unpause {c['name']}")
        if mode == "stop" and view.state not in ("running", "paused", "restarting"):
            engine.start_container(c["id"])
            done.append(f"docker start {c['name']}")
        if mode == "disconnect":
            current = view.networks
            for net, info in c.get("networks", {}).items():
                if net not in current:
                    aliases = [a for a in info.get("aliases", []) if a != view.short_id]
                    engine.connect_network(c["id"], net, aliases=aliases)
                    done.append(f"docker network connect {' '.join('--alias ' + a for a in aliases)} {net} {c['name']}".replace("  ", " "))
    return done


def undo_commands(data: dict[str, Any]) -> list[str]:
    """The CLI a person would type to undo a journal by hand."""
    mode, out = data.get("mode"), []
    if mode == "scale":
        svc = data.get("service") or {}
        return [f"docker service scale {svc.get('name')}={svc.get('replicas_before')}"]
    for c in data.get("containers", []):
        if mode == "stop":
            out.append(f"docker start {c['name']}")
        elif mode == "pause":
            out.append(f"docker unpause {c['name']}")
        else:
            for net, info in c.get("networks", {}).items():
                aliases = " ".join(f"--alias {a}" for a in info.get("aliases", []) if a != c["id"][:12])
                out.append(f"docker network connect {aliases} {net} {c['name']}".replace("  ", " "))
    return out
