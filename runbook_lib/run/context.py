"""The run context a phase's checks share: parameters, the compose project, the engine, redaction.

Built once per notebook by :func:`runbook_lib.run.phase.open_phase`; checks receive it as their only
argument so they stay plain functions that are easy to call from a test.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from runbook_lib.deploy import Deployment, open_deployment
from runbook_lib.engine.compose import Compose
from runbook_lib.engine import ContainerView, Engine, FileEntry
from runbook_lib.errors import RunbookError
from runbook_lib.params import Params
from runbook_lib.results.redact import Redactor

T = TypeVar("T")


@dataclass
class PhaseState:
    """What one check of a phase hands to a later one in the same kernel, field by field (who writes it →
    who reads it). Nothing here is written to disk; secret values never are."""

    # redeploy.inventory (before `down`) → redeploy.nothing_running, data_preserved
    inventory_before: dict[str, Any] | None = None
    # redeploy.up (after `up`) → redeploy.data_preserved
    inventory_after: dict[str, Any] | None = None
    # redeploy.archive_volumes → redeploy.down: only archived volumes may be removed
    volumes_archived: bool = False
    # redeploy.stack_deploy (swarm) → redeploy.service_converged: tasks rejected before it are history (Unix s)
    deploy_started: float | None = None
    # security.targets: the containers phase 2 judges, read once (ContainerTarget list)
    security_targets: list[Any] | None = None
    # Context.learn_container_secrets: {container name: {path: FileEntry}} (contents dropped once learned)
    container_secret_files: dict[str, dict[str, FileEntry]] | None = None
    # ... and why a container's secrets could not be read: {container name: error}
    container_secret_errors: dict[str, str] = field(default_factory=dict)
    # ... and the id of the container each was read from (the secret broker serves them by id)
    container_secret_ids: dict[str, str] = field(default_factory=dict)
    # prod.resources → resource_chart: one row per sampled container, and the threshold drawn
    resource_rows: list[dict[str, Any]] = field(default_factory=list)
    resource_threshold: float | None = None
    # smoke.flow → the drills: variables the flow captured (a login token...), reused by the drills' probes
    flow_variables: dict[str, Any] = field(default_factory=dict)
    # the drills → timeline_image: dependency -> the timeline PNG's path
    timelines: dict[str, Path] = field(default_factory=dict)
    # swarm mode, the Deployment's service_specs / tasks: the stack's services and tasks, read once per phase
    swarm_services: dict[str, Any] | None = None
    swarm_tasks: list[dict[str, Any]] | None = None
    # Context.containers while ``keep_reads`` is on: the one reading of the deployment's containers the checks
    # of a read-only phase share (prod.stability drops it after its observation window, to judge a new one)
    containers: list[ContainerView] | None = None
    # production.sample_stats_ahead → prod.resources: (container ids, the Future of their stats samples)
    stats_ahead: tuple[list[str], Any] | None = None
    # redeploy.probe_load → redeploy.outage (and PhaseSession.run, which stops it on an interrupt): the running
    # probe load (downtime.RunningLoad); redeploy.outage → downtime.timeline_image: the timeline PNG
    probe_load: Any = None
    downtime_timeline: Path | None = None
    # redeploy.rolling → redeploy.outage: each service's replacement (service, method, started/ended monotonic, ok)
    redeploy_steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Context:
    params: Params
    run_dir: Path | None = None
    progress: Callable[[str], None] = print
    redactor: Redactor = field(default_factory=Redactor)
    _engine: Engine | None = None
    # Facts one check hands to a later one in the same phase (e.g. the inventory before redeploy).
    state: PhaseState = field(default_factory=PhaseState)
    # Secret value -> where it was learned (a secret name or a path in a container). Held in memory only,
    # to say WHICH secret leaked; never stored, shown or passed to a notebook.
    secret_values: dict[str, str] = field(default_factory=dict, repr=False)
    # On in a read-only phase (see PhaseSession): the deployment's containers are listed and inspected once
    # and every check judges that reading (one `docker inspect` of each container per phase in a run, per
    # `phase.run` call interactively), not a reading of its own. Off: every call reads anew (the phases
    # that change the deployment, whose checks must see what their previous step did).
    keep_reads: bool = False

    @property
    def compose(self) -> Compose:
        """The Compose CLI over the deployment's files (:attr:`Deployment.compose`)."""
        return self.deployment.compose

    @functools.cached_property
    def model(self) -> dict[str, Any]:
        """The resolved compose model (``docker compose config --format json``), the deployment's."""
        return self.deployment.model

    @property
    def engine(self) -> Engine:
        """The engine, connected on first use (raises EngineUnavailable), with the parameters' pool
        size and per-call deadline."""
        if self._engine is None:
            e = self.params.engine
            self._engine = Engine(timeout=e.call_timeout_s, pool_size=e.pool_size, stats_pool_size=e.stats_pool_size,
                                  procfs_reads=e.procfs_reads)
        return self._engine

    def map_containers(self, fn: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
        """``fn`` over per-container items on the engine's bounded pool (``engine.pool_size``), results in
        the order of ``items``; a RunbookError raised for one item is returned in its place."""
        return self.engine.map(fn, items)

    @property
    def services(self) -> list[str]:
        return sorted(self.model.get("services", {}))

    @functools.cached_property
    def deployment(self) -> Deployment:
        """The deployment the checks judge (:mod:`runbook_lib.deploy`): the compose project, or in swarm mode the
        stack ``params.stack``; its shared readings are kept in ``state`` for the phase."""
        return open_deployment(self.params, lambda: self.engine, self.state)

    def containers(self) -> list[ContainerView]:
        """The deployment's containers on this engine, running or not: the compose project's, or in swarm
        mode the stack's task containers that this engine holds. Raises RunbookError when the engine
        cannot list them."""
        if self.state.containers is not None:
            return list(self.state.containers)
        views = self.deployment.containers()
        if self.keep_reads:
            self.state.containers = views
        return list(views)

    def stop_background(self) -> None:
        """Stop whatever a check left running in the background for a later one (the probe load)."""
        if self.state.probe_load is not None:
            self.state.probe_load.stop()

    def forget_containers(self) -> None:
        """Drop the kept reading of the containers (``keep_reads``): the next :meth:`containers` reads anew."""
        self.state.containers = None

    def current_containers(self) -> list[ContainerView]:
        """The containers that ARE the deployment now: in compose mode every container of the project (as
        :meth:`containers`); in swarm mode the containers this engine holds of the tasks the scheduler wants
        running, not those of past tasks, which a swarm keeps for its task history."""
        return self.deployment.current(self.containers())

    def service_containers(self, service: str) -> list[ContainerView]:
        """The containers of one service (of the compose file / stack file), as :meth:`containers`."""
        if self.keep_reads:
            return [v for v in self.containers() if v.service == service]
        return self.deployment.service_containers(service)

    def list_command(self, service: str | None = None) -> str:
        """The docker CLI command that lists what :meth:`containers` reads (for a record's ``command``)."""
        return self.deployment.list_command(service)

    def orphan_containers(self) -> list[ContainerView]:
        """Containers carrying the project's compose label whose service is not in the compose model
        (not declared, or disabled by an inactive profile): started by hand with the project's labels,
        or left from an older compose file. Raises RunbookError when the engine cannot list them."""
        services = set(self.services)
        return [v for v in self.containers() if v.service not in services]

    def secret_files(self) -> dict[str, Path]:
        """File-based secrets of the compose model: name -> host path."""
        out: dict[str, Path] = {}
        for name, spec in (self.model.get("secrets") or {}).items():
            if spec.get("file"):
                out[name] = Path(spec["file"])
        return out

    def learn_secrets(self, containers: bool = True) -> None:
        """Teach the redactor every secret value the run can read: the compose model's secret files on
        the host and, when an engine answers and ``containers`` is true, the files under each project
        container's secrets mount (:meth:`learn_container_secrets`)."""
        for name, path in self.secret_files().items():
            try:
                self.learn_value(path.read_text(encoding="utf-8", errors="surrogateescape"), name)
            except OSError:
                continue  # preflight.secret_files reports an unreadable secret file
        if containers:
            try:
                self.learn_container_secrets()
            except RunbookError:
                pass  # no engine: nothing more to learn; the checks that need it report the reason

    def learn_value(self, value: str, source: str) -> None:
        self.redactor.learn([value])
        if value.strip():
            self.secret_values.setdefault(value.strip(), source)

    def learn_container_secrets(self) -> dict[str, dict[str, FileEntry]]:
        """Read, through the archive API (no exec), every file under the secrets mount
        (``security.secrets_dir``) of each project container, plus any secret target the compose model
        puts elsewhere; teach the redactor their contents. Returns ``{container name: {path: FileEntry}}``
        (cached in ``state``; phase 2 judges mode, owner and size from it). A container whose files
        cannot be read is left out; the checks that need them say so. In a phase the runner started, the
        files of every container the runner read (same container id) come from the runner's secret broker
        (:mod:`runbook_lib.run.broker`: one read per deployment state, not one per process); any other
        container is read here."""
        cached = self.state.container_secret_files
        if cached is not None:
            return cached
        from runbook_lib.run import broker

        shared = broker.fetch()
        for value, source in (shared or {}).get("values", []):
            self.learn_value(value, source)
        known = (shared or {}).get("containers") or {}
        secrets_dir = self.params.security.secrets_dir.rstrip("/") or "/"
        services = self.model.get("services") or {}
        self.deployment.tasks()  # a swarm task's secret references: read once, before the concurrent reads

        def read(view: ContainerView) -> dict[str, FileEntry]:
            return self.deployment.read_secret_files(view, services.get(view.service) or {}, secrets_dir)

        views = self.containers()
        served = {v.name: known[v.name]["files"] for v in views if known.get(v.name, {}).get("id") == v.id}
        todo = [v for v in views if v.name not in served]
        read_here = dict(zip((v.name for v in todo), self.map_containers(read, todo)))  # concurrently
        found: dict[str, dict[str, FileEntry]] = {}
        for view in views:  # learned in the containers' order
            files = served[view.name] if view.name in served else read_here[view.name]
            if isinstance(files, RunbookError):
                self.state.container_secret_errors[view.name] = str(files)
                continue
            self.state.container_secret_ids[view.name] = view.id
            for entry in files.values():
                if entry.content:
                    self.learn_value(entry.content.decode("utf-8", "surrogateescape"),
                                      f"{entry.path} in {view.name}")
            found[view.name] = files
        self.state.container_secret_files = found
        return found

