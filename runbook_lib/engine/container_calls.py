"""The :class:`~runbook_lib.engine.client.Engine`'s container calls: listing and inspecting containers (a compose
project's, a stack's tasks', by name pattern), running a command in one, and the life-cycle and network calls a
drill breaks and restores a dependency with (:mod:`runbook_lib.drills.faults` journals and undoes them).

:meth:`ContainerCalls._inspect_all` is the one place containers are listed and inspected: every reading of a
deployment goes through it (a test counts its calls per phase)."""
from __future__ import annotations

import fnmatch
import threading
from typing import Any, Callable, Iterable

import docker.errors

from runbook_lib.engine.containers import PROJECT_LABEL, SERVICE_LABEL, STACK_LABEL, SWARM_SERVICE_LABEL, ContainerView
from runbook_lib.engine.sdk import exec_output, sdk_call, wrap_error
from runbook_lib.errors import RunbookError


class ContainerCalls:
    """Mixed into :class:`~runbook_lib.engine.client.Engine`: uses its ``api`` (the SDK's APIClient) and
    :meth:`map` (the bounded pool)."""

    api: Any

    def _inspect_all(self, filters: dict[str, Any], names: Callable[[str], bool] | None = None) -> list[ContainerView]:
        """Every container the engine lists with ``filters`` (and, given ``names``, whose name it accepts:
        judged on the listing, so only those are inspected), inspected concurrently, sorted by service and name."""
        with sdk_call("listing containers"):
            summaries = self.api.containers(all=True, filters=filters)
        if names is not None:
            summaries = [s for s in summaries if any(names(n.lstrip("/")) for n in s.get("Names") or [])]

        def inspect(summary: dict[str, Any]) -> ContainerView | None:
            try:
                return ContainerView(self.api.inspect_container(summary["Id"]))
            except docker.errors.NotFound:
                return None  # removed between list and inspect
            except Exception as exc:  # noqa: BLE001
                raise wrap_error(exc, f"inspecting container {summary['Id'][:12]}") from exc

        views = self.map(inspect, summaries)
        for v in views:
            if isinstance(v, RunbookError):
                raise v
        return sorted((v for v in views if v is not None), key=lambda v: (v.service, v.name))

    def project_containers(self, project: str) -> list[ContainerView]:
        """Every container (running or not) carrying the compose project label."""
        return self._inspect_all({"label": f"{PROJECT_LABEL}={project}"})

    def stack_containers(self, stack: str, service: str | None = None) -> list[ContainerView]:
        """Every container (running or not) of a swarm stack's tasks that THIS engine holds (a node sees only
        its own tasks' containers), optionally of one stack-file service."""
        labels = [f"{STACK_LABEL}={stack}"] + ([f"{SWARM_SERVICE_LABEL}={stack}_{service}"] if service else [])
        return self._inspect_all({"label": labels})

    def service_containers(self, project: str, service: str) -> list[ContainerView]:
        """The containers (running or not) of one compose service."""
        return self._inspect_all({"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]})

    def published_ports(self) -> list[dict[str, Any]]:
        """Every host port a running container publishes, from one listing (no inspect): ``{container, id,
        project, stack, ip, port, protocol}`` (``ip`` "" or 0.0.0.0/:: for every interface)."""
        with sdk_call("listing containers"):
            summaries = self.api.containers(all=False)
        out = []
        for s in summaries:
            labels = s.get("Labels") or {}
            for p in s.get("Ports") or []:
                if p.get("PublicPort"):
                    out.append({"container": (s.get("Names") or ["/?"])[0].lstrip("/"), "id": s.get("Id", ""),
                                "project": labels.get(PROJECT_LABEL, ""), "stack": labels.get(STACK_LABEL, ""),
                                "ip": p.get("IP") or "", "port": int(p["PublicPort"]), "protocol": p.get("Type") or "tcp"})
        return out

    def containers_matching(self, patterns: Iterable[str]) -> list[ContainerView]:
        """Containers whose name matches any of the shell-style patterns."""
        pats = list(patterns)
        if not pats:
            return []
        def match(name: str) -> bool:
            return any(fnmatch.fnmatchcase(name, p) for p in pats)

        return [v for v in self._inspect_all({}, names=match) if match(v.name)]

    def container(self, id_or_name: str) -> ContainerView:
        with sdk_call(f"inspecting container {id_or_name}"):
            return ContainerView(self.api.inspect_container(id_or_name))

    def stop_and_remove(self, id_or_name: str, timeout: int = 10) -> None:
        try:
            self.api.stop(id_or_name, timeout=timeout)
            self.api.remove_container(id_or_name, v=False, force=True)
        except docker.errors.NotFound:
            return
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(exc, f"removing container {id_or_name}") from exc

    def exec(self, id_or_name: str, cmd: list[str], timeout: float = 120) -> tuple[int | None, str]:
        """Run a command in a running container. Returns (exit code, combined output); exit code None
        on timeout (the process is left to finish inside the container; the engine has no exec kill)."""
        with sdk_call(f"starting `{' '.join(cmd)}` in {id_or_name}"):
            exec_id = self.api.exec_create(id_or_name, cmd, stdout=True, stderr=True)["Id"]
        result: dict[str, Any] = {}

        def _run() -> None:
            try:  # no read timeout of its own: the join below bounds it
                result["code"], result["out"], _ = exec_output(self.api, exec_id, None, demux=False)
            except Exception as exc:  # noqa: BLE001
                result["exc"] = exc

        t = threading.Thread(target=_run, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            return None, f"(timed out after {timeout}s)"
        if "exc" in result:
            raise wrap_error(result["exc"], f"running `{' '.join(cmd)}` in {id_or_name}") from result["exc"]
        return result["code"], result["out"].decode("utf-8", "replace")

    def stop_container(self, id_or_name: str, timeout: int = 10) -> None:
        """Stop a container (SIGTERM, SIGKILL after ``timeout`` s). The engine does not restart a
        container stopped this way, whatever its restart policy."""
        with sdk_call(f"stopping container {id_or_name}"):
            self.api.stop(id_or_name, timeout=timeout)

    def start_container(self, id_or_name: str) -> None:
        with sdk_call(f"starting container {id_or_name}"):
            self.api.start(id_or_name)

    def pause_container(self, id_or_name: str) -> None:
        with sdk_call(f"pausing container {id_or_name}"):
            self.api.pause(id_or_name)

    def unpause_container(self, id_or_name: str) -> None:
        with sdk_call(f"unpausing container {id_or_name}"):
            self.api.unpause(id_or_name)

    def disconnect_network(self, id_or_name: str, network: str) -> None:
        with sdk_call(f"disconnecting {id_or_name} from network {network}"):
            self.api.disconnect_container_from_network(id_or_name, network, force=True)

    def connect_network(self, id_or_name: str, network: str, aliases: list[str] | None = None) -> None:
        """Connect a container to a network with the given DNS aliases (the compose service name)."""
        with sdk_call(f"connecting {id_or_name} to network {network}"):
            self.api.connect_container_to_network(id_or_name, network, aliases=aliases or None)
