"""A Compose project as the :class:`~runbook_lib.deploy.base.Deployment`: the containers carrying the project's
labels, the compose model as the drift source, ``docker compose``/``docker`` commands, container faults."""
from __future__ import annotations

from typing import Any

from runbook_lib.deploy.base import Deployment, T
from runbook_lib.engine import ContainerView, FileEntry
from runbook_lib.model.facts import secret_targets
from runbook_lib.results.records import Check, CheckRecord


def no_container_record(c: Check, svc: str, expected: str) -> CheckRecord:
    """The FAIL of a compose service with no container."""
    return c.record(svc, "FAIL", expected=expected, actual="no container of this service exists",
                    evidence={"read": "docker ps -a (compose project label)", "service": svc, "containers": []},
                    command=f"docker ps -a --filter label=com.docker.compose.service={svc}")


class ComposeDeployment(Deployment):
    mode = "compose"
    file_kind = "compose"
    readiness_key = "containers"
    nothing_deployed = "no container of the project runs"

    @property
    def name(self) -> str:
        return self.params.project

    def containers(self) -> list[ContainerView]:
        return self.engine.project_containers(self.params.project)

    def service_containers(self, service: str) -> list[ContainerView]:
        return self.engine.service_containers(self.params.project, service)

    def current(self, views: list[ContainerView]) -> list[ContainerView]:
        return views

    def volumes(self) -> list[dict[str, Any]]:
        return self.engine.project_volumes(self.params.project)

    def list_command(self, service: str | None = None) -> str:
        label = f"com.docker.compose.service={service}" if service else f"com.docker.compose.project={self.params.project}"
        return f"docker ps -a --filter label={label}"

    def inventory_command(self) -> str:
        p = self.params.project
        return (f"docker ps -a --filter label=com.docker.compose.project={p}; "
                f"docker volume ls --filter label=com.docker.compose.project={p}")

    def unhealthy_consequence(self, v: ContainerView) -> str:
        if v.restart_policy == "no":
            return "restart policy \"no\": nothing will ever restart it"
        return (f"restart policy {v.restart_policy} acts only when the process exits: while it keeps running "
                "unhealthy, nothing will restart it")

    def read_secret_files(self, view: ContainerView, service_spec: dict[str, Any],
                          secrets_dir: str) -> dict[str, FileEntry]:
        """Through the archive API: the secrets directory, plus each secret target the compose model puts elsewhere."""
        targets = secret_targets(service_spec, secrets_dir)
        paths = {secrets_dir} | {p for p in targets if not p.startswith(secrets_dir + "/")}
        files: dict[str, FileEntry] = {}
        for path in sorted(paths):
            for entry in self.engine.read_path(view.id, path, pid=view.pid) or []:
                files[entry.path] = entry
        return files

    def missing_service(self, c: Check, svc: str, expected: str) -> CheckRecord:
        return no_container_record(c, svc, expected)

    def fault_command(self, dependency: str, mode: str, duration_s: float) -> str:
        project = self.params.project
        box = f"{project}-{dependency}-1"
        return {"stop": f"docker stop {box}; sleep {duration_s:g}; docker start {box}",
                "pause": f"docker pause {box}; sleep {duration_s:g}; docker unpause {box}",
                "disconnect": f"docker network disconnect {project}_default {box}; sleep {duration_s:g}; "
                              f"docker network connect --alias {dependency} {project}_default {box}"}[mode]

    def dependency_ready(self, service: str, since: float | None = None) -> tuple[bool, list[dict[str, Any]]]:
        """Every container of the service running and healthy."""
        views = self.service_containers(service)
        return bool(views) and all(v.ready for v in views), [v.summary() for v in views]

    def variant(self, compose: T, swarm: T) -> T:
        return compose
