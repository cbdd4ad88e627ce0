"""What the engine says about containers, read once: :class:`ContainerView` wraps one ``docker inspect``
so checks read ``view.health`` instead of digging ``attrs["State"]["Health"]["Status"]`` out each time,
and :class:`FileEntry` is one file read out of a container (never its content in evidence)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"
ONEOFF_LABEL = "com.docker.compose.oneoff"  # "True" on a `docker compose run` container
# What `docker stack deploy` puts on a stack's services and on each task's container: the stack's
# name, the swarm service ("STACK_SERVICE") and the task a container runs.
STACK_LABEL = "com.docker.stack.namespace"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
SWARM_TASK_LABEL = "com.docker.swarm.task.id"


@dataclass
class FileEntry:
    """One file read from inside a container (see :meth:`Engine.read_path`)."""

    path: str
    kind: str  # file | dir | link | other
    size: int
    mode: int
    uid: int
    gid: int
    content: bytes | None = field(default=None, repr=False)  # a secret's value: never in a repr, a traceback, a log
    # how it was read: "archive" (the engine's archive API) or "procfs" (/proc/PID/root on the engine's host)
    via: str = "archive"

    def stat(self) -> dict[str, Any]:
        """Evidence about the file: never its content."""
        return {"path": self.path, "size": self.size, "mode": f"{self.mode:04o}", "uid": self.uid, "gid": self.gid}


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
        """The compose service; for a swarm task's container, the stack file's service name (the swarm
        service's name without its ``STACK_`` prefix)."""
        if SERVICE_LABEL in self.labels:
            return self.labels[SERVICE_LABEL]
        stack, swarm_service = self.labels.get(STACK_LABEL, ""), self.labels.get(SWARM_SERVICE_LABEL, "")
        if stack and swarm_service.startswith(stack + "_"):
            return swarm_service[len(stack) + 1:]
        return swarm_service

    @property
    def project(self) -> str:
        """The compose project, or the stack a swarm task's container belongs to."""
        return self.labels.get(PROJECT_LABEL) or self.labels.get(STACK_LABEL, "")

    @property
    def pid(self) -> int:
        """The main process's PID in the engine's PID namespace (0 when not running)."""
        return int(self.attrs.get("State", {}).get("Pid") or 0)

    @property
    def task_id(self) -> str:
        """The swarm task this container runs ("" outside swarm)."""
        return self.labels.get(SWARM_TASK_LABEL, "")

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

    @property
    def networks(self) -> dict[str, dict[str, Any]]:
        """Networks the container is connected to: name -> {"aliases": [...], "ip": ...}. The aliases
        (the compose service name among them) are what a reconnect must restore for DNS to work."""
        nets = (self.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return {name: {"aliases": [a for a in (n.get("Aliases") or []) if a], "ip": n.get("IPAddress", "")}
                for name, n in sorted(nets.items())}

    # -- security-relevant configuration (phase 2 and `runbook lint` judge these) --------------------
    @property
    def environment(self) -> dict[str, str]:
        """``Config.Env`` as a mapping (image ENV merged with the service's environment)."""
        out: dict[str, str] = {}
        for item in self.attrs.get("Config", {}).get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    @property
    def user(self) -> str:
        """``Config.User``: "" means the image's default, root unless the image says otherwise."""
        return self.attrs.get("Config", {}).get("User") or ""

    @property
    def command(self) -> list[str]:
        return list(self.attrs.get("Config", {}).get("Cmd") or [])

    @property
    def entrypoint(self) -> list[str]:
        return list(self.attrs.get("Config", {}).get("Entrypoint") or [])

    @property
    def healthcheck_test(self) -> list[str]:
        return list((self.attrs.get("Config", {}).get("Healthcheck") or {}).get("Test") or [])

    @property
    def host_config(self) -> dict[str, Any]:
        return self.attrs.get("HostConfig") or {}

    @property
    def published_ports(self) -> list[dict[str, Any]]:
        """Ports bound on the host: ``{host_ip, host_port, container_port, protocol}``. The live bindings
        (NetworkSettings.Ports) of a running container, else what HostConfig asks for. host_ip "" is
        every interface."""
        live = (self.attrs.get("NetworkSettings") or {}).get("Ports")
        bindings = live if self.running and live is not None else (self.host_config.get("PortBindings") or {})
        out = []
        for spec, binds in sorted(bindings.items()):
            port, _, proto = spec.partition("/")
            for b in binds or []:
                out.append({"host_ip": b.get("HostIp") or "", "host_port": b.get("HostPort") or "",
                            "container_port": port, "protocol": proto or "tcp"})
        return out

    # -- production mode (phase 3 judges these) ----------------------------------------------------
    @property
    def config_hash(self) -> str:
        """The compose config-hash label: Compose's hash of the service config it created this from."""
        return self.labels.get(CONFIG_HASH_LABEL, "")

    @property
    def config_files(self) -> list[str]:
        """The compose files this container was created from (the config_files label)."""
        return [f for f in self.labels.get(CONFIG_FILES_LABEL, "").split(",") if f]

    @property
    def memory_limit(self) -> int:
        """HostConfig.Memory in bytes; 0 means no limit."""
        return int(self.host_config.get("Memory") or 0)

    @property
    def cpu_limit(self) -> float:
        """CPUs the container may use (HostConfig.NanoCpus, or CpuQuota/CpuPeriod); 0 means no limit."""
        hc = self.host_config
        if hc.get("NanoCpus"):
            return hc["NanoCpus"] / 1e9
        if hc.get("CpuQuota") and hc.get("CpuQuota") > 0:
            return hc["CpuQuota"] / (hc.get("CpuPeriod") or 100_000)
        return 0.0

    @property
    def pids_limit(self) -> int:
        return int(self.host_config.get("PidsLimit") or 0)

    @property
    def healthcheck_config(self) -> dict[str, Any]:
        """Config.Healthcheck as the engine stores it (durations in nanoseconds), {} when none."""
        return dict(self.attrs.get("Config", {}).get("Healthcheck") or {})

    @property
    def restart_policy_name(self) -> str:
        return (self.host_config.get("RestartPolicy") or {}).get("Name") or "no"

    @property
    def oom_killed(self) -> bool:
        return bool(self.attrs.get("State", {}).get("OOMKilled"))

    @property
    def created(self) -> str:
        return self.attrs.get("Created", "")

    @property
    def finished_at(self) -> str:
        return self.attrs.get("State", {}).get("FinishedAt", "")

    def summary(self) -> dict[str, Any]:
        """A small, JSON-friendly description for inventories and evidence."""
        return {
            "name": self.name, "id": self.short_id, "service": self.service, "project": self.project,
            "state": self.state, "health": self.health, "image": self.image, "image_id": self.image_id[:19],
            "started_at": self.started_at, "restart_count": self.restart_count,
        }
