"""The deployment a run verifies, behind one interface: a Compose project or a Swarm stack.

A check asks the :class:`Deployment` (``ctx.deployment``) what it needs to know about the thing it judges and
never asks which kind it is:

- **what runs**: the containers (a project's, or the stack's task containers this engine holds), the ones that
  are the deployment now, one service's, the orchestrator's own services and tasks (a Compose project has
  none), where a service's tasks run;
- **the commands a human would type** to see what a check read (``docker ps --filter label=...``,
  ``docker stack services ...``), for the records' ``command``;
- **the drift source**: the compose model, or the service specs the swarm holds (:meth:`Deployment.service_specs`);
- **how a service is read**: where its restart policy acts, what an unhealthy container leads to, which file
  defines its healthcheck, what its secrets are and how they are read;
- **the fault modes a drill uses**: the fault by hand, the replicas to restore, when the dependency is ready.

Where a whole check is judged differently (the swarm judges a service spec where a task's container cannot
say), the check names both implementations and the deployment picks its own (:meth:`Deployment.variant`):
the one place the two meet, and no check tests a mode.

Built by :func:`runbook_lib.deploy.open_deployment` from the parameters and an engine getter; readings
that a phase shares (the swarm's services and tasks) are kept in ``cache``, an object with the attributes
``swarm_services`` and ``swarm_tasks`` (the phase's ``PhaseState``), so every check of a phase judges one reading.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from types import SimpleNamespace
from typing import Any, Callable, TypeVar

from runbook_lib.engine import ContainerView, Engine, FileEntry
from runbook_lib.engine.compose import Compose
from runbook_lib.params import Params
from runbook_lib.results.records import Check, CheckRecord

T = TypeVar("T")


class Deployment(ABC):
    """What the checks ask of the deployment; :class:`~runbook_lib.deploy.compose.ComposeDeployment` and
    :class:`~runbook_lib.deploy.swarm.SwarmDeployment` answer the same methods."""

    #: ``params.mode`` this implementation answers for
    mode: str = ""
    #: what declares the services, in a record's words ("compose", "stack file")
    file_kind: str = ""
    #: the evidence key under which a drill records the dependency's readiness ("containers", "service")
    readiness_key: str = ""
    #: a record's words when nothing of the deployment runs
    nothing_deployed: str = ""
    #: whether ``runbook lint`` judges the file as ``docker stack deploy`` applies it (``--swarm``)
    lints_as_stack: bool = False

    def __init__(self, params: Params, engine: Callable[[], Engine], cache: Any = None) -> None:
        self.params = params
        self._engine = engine
        self.cache = cache if cache is not None else SimpleNamespace(swarm_services=None, swarm_tasks=None)

    @property
    def engine(self) -> Engine:
        return self._engine()

    @property
    @abstractmethod
    def name(self) -> str:
        """The deployment's name: the compose project, or the stack (the target of deployment-wide records)."""

    # -- what the files declare (no engine needed) -------------------------------------------------------------
    @functools.cached_property
    def compose(self) -> Compose:
        """The Compose CLI over the deployment's files and env files: what resolves the model (a stack file is
        resolved by Compose too, as ``docker stack deploy`` reads the same format) and runs ``up``/``down``."""
        p = self.params
        return Compose(p.compose_files, project=p.project, env_files=p.env_files)

    @functools.cached_property
    def model(self) -> dict[str, Any]:
        """The resolved model of the files (``docker compose config --format json``), read once. Raises
        ComposeConfigError (invalid files) or ComposeNotFound (no Compose CLI); needs no engine."""
        return self.compose.config()

    @property
    def declared_services(self) -> list[str]:
        """The services the files declare, sorted."""
        return sorted(self.model.get("services") or {})

    # -- what runs ------------------------------------------------------------------------------------------
    @abstractmethod
    def containers(self) -> list[ContainerView]:
        """Every container of the deployment on this engine, running or not (a fresh reading). Raises
        RunbookError when the engine cannot list them."""

    @abstractmethod
    def service_containers(self, service: str) -> list[ContainerView]:
        """The containers of one service (of the compose file / stack file), a fresh reading."""

    @abstractmethod
    def current(self, views: list[ContainerView]) -> list[ContainerView]:
        """Of ``views``, the containers that ARE the deployment now (not those a swarm keeps of past tasks)."""

    def service_specs(self) -> dict[str, Any]:
        """The services as the orchestrator holds them, by their name in the file (a swarm's ``docker service
        inspect``); a Compose project has none beyond its containers: ``{}``."""
        return {}

    def tasks(self) -> list[dict[str, Any]]:
        """Every task of the orchestrator's services (a swarm's, past ones included); ``[]`` for Compose."""
        return []

    def running_tasks(self, service: str) -> list[dict[str, Any]]:
        """The orchestrator's running tasks of ``service`` now (a fresh reading; each with its ``node``): ``[]``
        for Compose, whose containers all run on this engine."""
        return []

    @abstractmethod
    def volumes(self) -> list[dict[str, Any]]:
        """The deployment's named volumes on this engine."""

    # -- the commands a human would type ---------------------------------------------------------------------
    @abstractmethod
    def list_command(self, service: str | None = None) -> str:
        """The docker CLI command that lists what :meth:`containers` reads (for a record's ``command``)."""

    def lint_command(self) -> str:
        """The ``runbook lint`` command that audits the deployment's files as this deployment applies them."""
        return " ".join(["runbook lint", *(["--swarm"] if self.lints_as_stack else []),
                         *(str(f) for f in self.params.compose_files)])

    @abstractmethod
    def inventory_command(self) -> str:
        """The commands that list what an inventory of the deployment records."""

    # -- how a service is read ---------------------------------------------------------------------------------
    @property
    def events_label(self) -> str | None:
        """The label filter of the events that concern the deployment, None: the compose project's."""
        return None

    def restart_note(self) -> str | None:
        """Why a container's restart count is not judged here (None: it is)."""
        return None

    def container_detail(self, v: ContainerView) -> str:
        """A running container's identity in a record's words (", 3 restarts", ", task abc")."""
        return f", {v.restart_count} restarts"

    @abstractmethod
    def unhealthy_consequence(self, v: ContainerView) -> str:
        """Who acts on an unhealthy container that keeps running (a FAIL's explanation)."""

    def judged_spec(self, view: ContainerView, spec: dict[str, Any]) -> dict[str, Any]:
        """The service spec a container is judged against: its service's in the file (Compose), or with the
        secrets its own task mounts (a swarm task of an older spec may still run)."""
        return spec

    def note_verdict(self, rule: str, verdict: T) -> T:
        """A hardening verdict with what this deployment adds to it (a swarm cannot set some keys)."""
        return verdict

    @abstractmethod
    def read_secret_files(self, view: ContainerView, service_spec: dict[str, Any],
                          secrets_dir: str) -> dict[str, FileEntry]:
        """The files under a container's secrets mount (and any secret target its spec puts elsewhere),
        ``{path: FileEntry}``; raises RunbookError when they cannot be read."""

    def secret_from_containers(self, name: str, model: dict[str, Any], secrets_dir: str,
                               containers_of: Callable[[str], list[ContainerView]] | None = None) -> str | None:
        """The value of the deployment's secret ``name`` read from a running container that mounts it, for a
        secret with no file on this host; None when the deployment cannot serve one that way.
        ``containers_of``: a service's containers (default: :meth:`service_containers`, a fresh reading)."""
        return None

    @property
    def serves_secrets_from_containers(self) -> bool:
        """Whether a secret without a file here (``external``) can be read from a running container."""
        return False

    def endpoint_host(self) -> str | None:
        """The address a port published on every interface answers on (None: the engine's host)."""
        return None

    def running_images(self, current: list[ContainerView]) -> dict[str, dict[str, Any]]:
        """The image each service runs, as sign-off records it. Raises RunbookError."""
        images: dict[str, dict[str, Any]] = {}
        for view in current:
            info = self.engine.image_summary(view.image_id)
            images[view.service] = {"image": view.image, "id": info.get("id"), "digests": info.get("digests", [])}
        return images

    @abstractmethod
    def missing_service(self, c: Check, svc: str, expected: str) -> CheckRecord:
        """The record of a service with no container to judge."""

    # -- the fault modes a drill uses --------------------------------------------------------------------------
    @abstractmethod
    def fault_command(self, dependency: str, mode: str, duration_s: float) -> str:
        """The drill's fault by hand (stop/pause/disconnect a container, scale a service), for a record."""

    @property
    def fault_stack(self) -> str:
        """The stack a drill's fault acts on ("" for a compose container)."""
        return ""

    @abstractmethod
    def dependency_ready(self, service: str, since: float | None = None) -> tuple[bool, list[dict[str, Any]]]:
        """Whether a drill's dependency is ready, and what that was judged on. Raises RunbookError."""

    # -- whole checks judged differently ----------------------------------------------------------------------
    @abstractmethod
    def variant(self, compose: T, swarm: T) -> T:
        """Of a check's two implementations, this deployment's."""

