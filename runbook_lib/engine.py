"""The Docker engine, through the docker SDK.

Every docker SDK error is wrapped here (``raise ... from exc``); none reaches a notebook raw. Raw
inspect output is wrapped once in :class:`ContainerView`, whose properties the checks read, instead of
digging ``attrs["State"]["Health"]["Status"]`` out in every check. Waiting uses the engine's event
stream, bounded by a deadline, never a sleep loop.
"""
from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import docker
import docker.errors
import requests.exceptions

from .errors import EngineUnavailable, RunbookError

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"


class EngineError(RunbookError):
    """An engine call failed in a way the run cannot continue past (wraps docker SDK errors)."""


@dataclass
class ContainerView:
    """A container's inspect output with the properties checks need."""

    attrs: dict[str, Any]

    @property
    def id(self) -> str:
        return self.attrs["Id"]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return self.attrs.get("Name", "").lstrip("/")

    @property
    def labels(self) -> dict[str, str]:
        return self.attrs.get("Config", {}).get("Labels") or {}

    @property
    def service(self) -> str:
        return self.labels.get(SERVICE_LABEL, "")

    @property
    def project(self) -> str:
        return self.labels.get(PROJECT_LABEL, "")

    @property
    def state(self) -> str:
        """created | running | paused | restarting | removing | exited | dead"""
        return self.attrs.get("State", {}).get("Status", "unknown")

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def health(self) -> str | None:
        """starting | healthy | unhealthy, or None when the container has no healthcheck."""
        h = self.attrs.get("State", {}).get("Health")
        return h.get("Status") if h else None

    @property
    def health_log(self) -> list[dict[str, Any]]:
        """The engine's last health-check results (up to 5), output trimmed."""
        h = self.attrs.get("State", {}).get("Health") or {}
        return [
            {"start": e.get("Start"), "exit_code": e.get("ExitCode"), "output": (e.get("Output") or "").strip()[-500:]}
            for e in (h.get("Log") or [])
        ]

    @property
    def has_healthcheck(self) -> bool:
        test = (self.attrs.get("Config", {}).get("Healthcheck") or {}).get("Test") or []
        return bool(test) and test[0] != "NONE"

    @property
    def restart_policy(self) -> str:
        rp = self.attrs.get("HostConfig", {}).get("RestartPolicy") or {}
        name = rp.get("Name") or "no"
        return f"{name}:{rp['MaximumRetryCount']}" if name == "on-failure" and rp.get("MaximumRetryCount") else name

    @property
    def completed(self) -> bool:
        """A one-shot container (restart policy "no") that exited 0: done, as designed."""
        return self.state == "exited" and self.exit_code == 0 and self.restart_policy == "no"

    @property
    def ready(self) -> bool:
        """Running and healthy (when it has a healthcheck), or a one-shot container that completed."""
        return (self.running and (self.health is None or self.health == "healthy")) or self.completed

    @property
    def restart_count(self) -> int:
        return int(self.attrs.get("RestartCount", 0))

    @property
    def started_at(self) -> str:
        return self.attrs.get("State", {}).get("StartedAt", "")

    @property
    def exit_code(self) -> int:
        return int(self.attrs.get("State", {}).get("ExitCode", 0))

    @property
    def image(self) -> str:
        """The image reference the container was created from (as written in the compose file)."""
        return self.attrs.get("Config", {}).get("Image", "")

    @property
    def image_id(self) -> str:
        return self.attrs.get("Image", "")

    @property
    def mounts(self) -> list[dict[str, Any]]:
        return self.attrs.get("Mounts") or []

    @property
    def volume_names(self) -> list[str]:
        return [m["Name"] for m in self.mounts if m.get("Type") == "volume" and m.get("Name")]

    def summary(self) -> dict[str, Any]:
        """A small, JSON-friendly description for inventories and evidence."""
        return {
            "name": self.name, "id": self.short_id, "service": self.service, "project": self.project,
            "state": self.state, "health": self.health, "image": self.image, "image_id": self.image_id[:19],
            "started_at": self.started_at, "restart_count": self.restart_count,
        }


def _wrap(exc: Exception, what: str) -> RunbookError:
    if isinstance(exc, (requests.exceptions.ConnectionError, docker.errors.DockerException)) and "Connection" in type(exc).__name__ + str(exc):
        return EngineUnavailable(f"the Docker engine stopped answering while {what}: {exc}")
    return EngineError(f"engine call failed while {what}: {exc}")


class Engine:
    """A connection to one Docker engine (DOCKER_HOST or the default socket)."""

    def __init__(self, timeout: float = 60) -> None:
        try:
            self.client = docker.from_env(timeout=int(timeout))
            self.client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            raise EngineUnavailable(
                f"no Docker engine answers ({exc.__class__.__name__}: {str(exc)[:200]}). "
                "Start one (as root: `bash scripts/setup.sh`, which starts dockerd) or point DOCKER_HOST at it."
            ) from exc

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def version(self) -> dict[str, Any]:
        try:
            return self.client.version()
        except Exception as exc:  # noqa: BLE001 - wrapped at the boundary
            raise _wrap(exc, "reading the engine version") from exc

    def info(self) -> dict[str, Any]:
        try:
            return self.client.info()
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, "reading engine info") from exc

    # -- containers -------------------------------------------------------------------------------
    def _inspect_all(self, filters: dict[str, Any]) -> list[ContainerView]:
        try:
            summaries = self.api.containers(all=True, filters=filters)
            views = []
            for s in summaries:
                try:
                    views.append(ContainerView(self.api.inspect_container(s["Id"])))
                except docker.errors.NotFound:
                    continue  # removed between list and inspect
            return sorted(views, key=lambda v: (v.service, v.name))
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, "listing containers") from exc

    def project_containers(self, project: str) -> list[ContainerView]:
        """Every container (running or not) carrying the compose project label."""
        return self._inspect_all({"label": f"{PROJECT_LABEL}={project}"})

    def containers_matching(self, patterns: Iterable[str]) -> list[ContainerView]:
        """Containers whose name matches any of the shell-style patterns."""
        pats = list(patterns)
        if not pats:
            return []
        return [v for v in self._inspect_all({}) if any(fnmatch.fnmatchcase(v.name, p) for p in pats)]

    def container(self, id_or_name: str) -> ContainerView:
        try:
            return ContainerView(self.api.inspect_container(id_or_name))
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"inspecting container {id_or_name}") from exc

    def stop_and_remove(self, id_or_name: str, timeout: int = 10) -> None:
        try:
            self.api.stop(id_or_name, timeout=timeout)
            self.api.remove_container(id_or_name, v=False, force=True)
        except docker.errors.NotFound:
            return
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"removing container {id_or_name}") from exc

    def exec(self, id_or_name: str, cmd: list[str], timeout: float = 120) -> tuple[int | None, str]:
        """Run a command in a running container. Returns (exit code, combined output); exit code None
        on timeout (the process is left to finish inside the container; the engine has no exec kill)."""
        try:
            exec_id = self.api.exec_create(id_or_name, cmd, stdout=True, stderr=True)["Id"]
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"starting `{' '.join(cmd)}` in {id_or_name}") from exc
        result: dict[str, Any] = {}

        def _run() -> None:
            try:
                result["out"] = self.api.exec_start(exec_id, stream=False, demux=False)
            except Exception as exc:  # noqa: BLE001
                result["exc"] = exc

        t = threading.Thread(target=_run, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            return None, f"(timed out after {timeout}s)"
        if "exc" in result:
            raise _wrap(result["exc"], f"running `{' '.join(cmd)}` in {id_or_name}") from result["exc"]
        code = self.api.exec_inspect(exec_id).get("ExitCode")
        out = result.get("out") or b""
        return code, out.decode("utf-8", "replace")

    # -- images and volumes -----------------------------------------------------------------------
    def image_summary(self, image_id: str) -> dict[str, Any]:
        try:
            a = self.api.inspect_image(image_id)
        except docker.errors.NotFound:
            return {"id": image_id[:19], "missing": True}
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"inspecting image {image_id}") from exc
        return {"id": a["Id"][:19], "tags": a.get("RepoTags") or [], "digests": a.get("RepoDigests") or [],
                "created": a.get("Created", "")[:19], "size_mb": round(a.get("Size", 0) / 1e6, 1)}

    def project_volumes(self, project: str) -> list[dict[str, Any]]:
        try:
            vols = self.api.volumes(filters={"label": f"{PROJECT_LABEL}={project}"}).get("Volumes") or []
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, "listing volumes") from exc
        return sorted(
            ({"name": v["Name"], "created": v.get("CreatedAt", ""), "driver": v.get("Driver", ""),
              "volume": v.get("Labels", {}).get("com.docker.compose.volume", "")} for v in vols),
            key=lambda v: v["name"],
        )

    def volume_events(self, since: float, until: float, actions: Iterable[str] = ("create", "destroy")) -> list[dict[str, Any]]:
        """Volume events between two times (Unix seconds): the engine's own account of what was
        created and destroyed. (A local volume's CreatedAt is its directory's ctime, which changes on
        every write, so it cannot prove a volume was kept; the event log can.)"""
        try:
            stream = self.api.events(since=f"{since:.9f}", until=f"{until:.9f}", decode=True,
                                     filters={"type": "volume", "event": list(actions)})
            try:
                return [{"action": e.get("Action"), "volume": (e.get("Actor") or {}).get("ID"),
                         "time": e.get("time")} for e in stream]
            finally:
                stream.close()
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, "reading volume events") from exc

    def archive_volume(self, volume: str, image: str, dest) -> int:
        """Copy a volume's content into ``dest`` (a tar file) without starting anything: a container
        is created (never started) with the volume mounted, and the engine streams the mount as tar."""
        try:
            c = self.api.create_container(image, command=["true"], volumes=["/volume"],
                                          host_config=self.api.create_host_config(binds={volume: {"bind": "/volume", "mode": "ro"}}),
                                          labels={"org.runbook.purpose": "volume-archive"})
            try:
                stream, _ = self.api.get_archive(c["Id"], "/volume")
                size = 0
                with open(dest, "wb") as fh:
                    for chunk in stream:
                        fh.write(chunk)
                        size += len(chunk)
                return size
            finally:
                self.api.remove_container(c["Id"], force=True)
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"archiving volume {volume}") from exc

    # -- waiting ----------------------------------------------------------------------------------
    def wait_ready(self, project: str, services: Iterable[str], timeout: float,
                   progress: Callable[[str], None] | None = None) -> tuple[bool, list[ContainerView]]:
        """Wait until every listed service has a running container that is healthy (when it has a
        healthcheck). Driven by the engine's event stream, bounded by ``timeout`` seconds.
        Returns (all ready, the containers as last seen)."""
        wanted = set(services)
        deadline = time.time() + timeout
        since = f"{time.time():.9f}"
        last_line = ""

        def evaluate() -> tuple[bool, list[ContainerView]]:
            nonlocal last_line
            views = [v for v in self.project_containers(project) if v.service in wanted]
            ready = {v.service for v in views if v.ready}
            waiting = sorted(wanted - ready)
            line = f"{len(ready)}/{len(wanted)} ready" + (f"; waiting for {', '.join(waiting)}" if waiting else "")
            if progress and line != last_line:
                progress(line)
            last_line = line
            return not waiting, views

        ok, views = evaluate()
        if ok:
            return ok, views
        try:
            stream = self.api.events(since=since, until=f"{deadline:.9f}", decode=True,
                                     filters={"type": "container", "label": f"{PROJECT_LABEL}={project}"})
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, "subscribing to engine events") from exc
        try:
            for _event in stream:
                ok, views = evaluate()
                if ok or time.time() >= deadline:
                    break
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, "reading engine events") from exc
        finally:
            stream.close()
        return evaluate()
