"""Facts about one service (from the compose model or from docker inspect), and about the files a
secret rule judges (on the host statically, in the container at run time)."""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

# ----------------------------------------------------------------------------------------------------
# facts about one service, from the compose model or from docker inspect
# ----------------------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def _bytes(value: Any) -> int:
    """A memory size from the compose model ("134217728", "128m", 1024) as bytes; 0 when unset."""
    if value in (None, "", 0):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE_RE.match(str(value))
    if not m:
        return 0
    return int(float(m.group(1)) * 1024 ** "bkmgt".index((m.group(2) or "b").lower()))


@dataclass
class ServiceFacts:
    """What the rules judge about one service. ``source`` is "compose" (the resolved model: what will run)
    or "engine" (docker inspect: what runs). ``user`` is None when the compose file leaves it to the image."""

    service: str
    source: str
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    read_only: bool = False
    memory_limit: int = 0
    pids_limit: int = 0
    network_mode: str = ""
    pid_mode: str = ""
    ipc_mode: str = ""
    ports: list[dict[str, Any]] = field(default_factory=list)
    bind_sources: list[str] = field(default_factory=list)
    # CPUs the service may use (cpus, deploy limits, cpu_quota/cpu_period; NanoCpus, CpuQuota); 0: unlimited
    cpu_limit: float = 0.0
    userns_mode: str = ""
    cgroup_parent: str = ""
    # the cgroup namespace ("host", "private"; "" = the engine's default)
    cgroup: str = ""
    # every mount: {"type", "source" (a named volume's name, a bind's host path), "target", "read_only",
    # "propagation"}
    mounts: list[dict[str, Any]] = field(default_factory=list)
    # secret target path -> secret name, as the compose model gives them to the service
    secret_targets: dict[str, str] = field(default_factory=dict)
    # command, entrypoint and healthcheck test, joined: where a secret path may be referenced
    command_text: str = ""
    # the same, as argv lists by where they come from ("command", "entrypoint", "healthcheck")
    argv: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # the compose profiles the service belongs to (empty: always started)
    profiles: list[str] = field(default_factory=list)

    @classmethod
    def from_compose(cls, name: str, spec: Mapping[str, Any]) -> "ServiceFacts":
        limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        env = {k: ("" if v is None else str(v)) for k, v in (spec.get("environment") or {}).items()}
        ports = [{"host_ip": p.get("host_ip") or "", "host_port": str(p.get("published") or ""),
                  "container_port": str(p.get("target") or ""), "protocol": p.get("protocol") or "tcp"}
                 for p in spec.get("ports") or [] if p.get("published")]
        hc = (spec.get("healthcheck") or {}).get("test") or []
        argv = {"command": _as_list(spec.get("command")), "entrypoint": _as_list(spec.get("entrypoint")),
                "healthcheck": _as_list(hc)}
        labels = spec.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(str(x).partition("=")[::2] for x in labels)
        return cls(
            service=name, source="compose", environment=env,
            user=None if spec.get("user") is None else str(spec.get("user")),
            privileged=bool(spec.get("privileged")), cap_add=list(spec.get("cap_add") or []),
            cap_drop=list(spec.get("cap_drop") or []), security_opt=list(spec.get("security_opt") or []),
            read_only=bool(spec.get("read_only")),
            memory_limit=_bytes(spec.get("mem_limit")) or _bytes(limits.get("memory")),
            pids_limit=int(spec.get("pids_limit") or limits.get("pids") or 0),
            network_mode=spec.get("network_mode") or "", pid_mode=spec.get("pid") or "", ipc_mode=spec.get("ipc") or "",
            ports=ports,
            bind_sources=[v.get("source") or "" for v in spec.get("volumes") or [] if v.get("type") == "bind"],
            secret_targets=secret_targets(spec), command_text=" ".join(a for v in argv.values() for a in v),
            argv=argv, labels={str(k): "" if v is None else str(v) for k, v in labels.items()},
            profiles=[str(p) for p in spec.get("profiles") or []],
            cpu_limit=_compose_cpus(spec, limits), userns_mode=str(spec.get("userns_mode") or ""),
            cgroup_parent=str(spec.get("cgroup_parent") or ""), cgroup=str(spec.get("cgroup") or ""),
            mounts=[_compose_mount(v) for v in spec.get("volumes") or []],
        )

    @classmethod
    def from_container(cls, view: Any, spec: Mapping[str, Any] | None = None) -> "ServiceFacts":
        """From a :class:`~runbook_lib.engine.client.ContainerView`; ``spec`` (the service in the compose model)
        says which secrets the service was given."""
        hc = view.host_config
        return cls(
            service=view.service or view.name, source="engine", environment=view.environment, user=view.user,
            privileged=bool(hc.get("Privileged")), cap_add=list(hc.get("CapAdd") or []),
            cap_drop=list(hc.get("CapDrop") or []), security_opt=list(hc.get("SecurityOpt") or []),
            read_only=bool(hc.get("ReadonlyRootfs")), memory_limit=int(hc.get("Memory") or 0),
            pids_limit=int(hc.get("PidsLimit") or 0), network_mode=hc.get("NetworkMode") or "",
            pid_mode=hc.get("PidMode") or "", ipc_mode=hc.get("IpcMode") or "", ports=view.published_ports,
            bind_sources=sorted(m.get("Source") or "" for m in view.mounts if m.get("Type") == "bind"),
            secret_targets=secret_targets(spec or {}),
            command_text=" ".join([*view.entrypoint, *view.command, *view.healthcheck_test]),
            argv={"command": list(view.command), "entrypoint": list(view.entrypoint),
                  "healthcheck": list(view.healthcheck_test)},
            labels={k: v for k, v in view.labels.items() if not k.startswith("com.docker.compose.")},
            cpu_limit=(int(hc.get("NanoCpus") or 0) / 1e9
                       or int(hc.get("CpuQuota") or 0) / (int(hc.get("CpuPeriod") or 0) or 100_000)),
            userns_mode=str(hc.get("UsernsMode") or ""), cgroup_parent=str(hc.get("CgroupParent") or ""),
            # On cgroup v1 hosts the engine's default cgroup namespace is "host": only a namespace the
            # compose file asked for is the service's own choice.
            cgroup=str(hc.get("CgroupnsMode") or "") if (spec or {}).get("cgroup") else "",
            mounts=[_engine_mount(m) for m in view.mounts],
        )


def _number(value: Any) -> float:
    try:
        return max(float(value or 0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _compose_cpus(spec: Mapping[str, Any], limits: Mapping[str, Any]) -> float:
    """The CPU limit of a service of the compose model: cpus, deploy.resources.limits.cpus, or
    cpu_quota / cpu_period (the period defaults to 100 ms, as the engine's)."""
    cpus = _number(spec.get("cpus")) or _number(limits.get("cpus"))
    if cpus:
        return cpus
    quota = _number(spec.get("cpu_quota"))
    return quota / (_number(spec.get("cpu_period")) or 100_000) if quota else 0.0


def _compose_mount(v: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": v.get("type") or "volume", "source": str(v.get("source") or ""),
            "target": str(v.get("target") or ""), "read_only": bool(v.get("read_only")),
            "propagation": str((v.get("bind") or {}).get("propagation") or "")}


def _engine_mount(m: Mapping[str, Any]) -> dict[str, Any]:
    kind = m.get("Type") or ""
    return {"type": kind, "source": str((m.get("Name") if kind == "volume" else m.get("Source")) or ""),
            "target": str(m.get("Destination") or ""), "read_only": not m.get("RW", True),
            "propagation": str(m.get("Propagation") or "")}


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]


def secret_targets(spec: Mapping[str, Any], secrets_dir: str = "/run/secrets") -> dict[str, str]:
    """target path -> secret name for one service of the compose model (relative targets are under
    the secrets directory, as Compose mounts them)."""
    out = {}
    for s in spec.get("secrets") or []:
        target = s.get("target") or s["source"]
        if not target.startswith("/"):
            target = f"{secrets_dir.rstrip('/')}/{target}"
        out[target] = s["source"]
    return out


# ----------------------------------------------------------------------------------------------------
# files: a secret or *_FILE target, on the host (static) or in the container (runtime)
# ----------------------------------------------------------------------------------------------------

@dataclass
class FileState:
    """What is known about a file a rule judges. ``readable`` None: cannot be known from here."""

    path: str
    exists: bool
    kind: str = "file"
    size: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    readable: bool | None = None
    # False: a secret is mounted here but its file is not on this host (external or environment secret)
    known: bool = True
    # why the file was not read although it exists (too large for a secret): a finding of its own
    refused: str = ""

    def evidence(self) -> dict[str, Any]:
        if not self.known:
            return {"path": self.path, "known": False, "why": "not a file secret on this host"}
        if not self.exists:
            return {"path": self.path, "exists": False}
        return {"path": self.path, "exists": True, "kind": self.kind, "size": self.size,
                "mode": f"{self.mode:04o}", "owner": f"{self.uid}:{self.gid}", "readable_by_user": self.readable}

    def problem(self) -> str | None:
        """Why this file cannot serve as a secret (missing, not a file, empty, unreadable), or None.
        Unknown files (not on this host) have no known problem."""
        if not self.known:
            return None
        if not self.exists:
            return "does not exist"
        if self.kind != "file":
            return "not a regular file"
        if self.size == 0:
            return "empty"
        if self.refused:
            return self.refused
        if self.readable is False:
            return "not readable by the service's user"
        return None


def parse_user(user: str | None, passwd: str = "") -> tuple[int, int] | None:
    """(uid, gid) of a compose/inspect ``user`` ("10001:10001", "1000", "app", "" = root). Names are
    looked up in ``passwd`` (the container's /etc/passwd); None when it cannot be resolved."""
    if user is None:
        return None
    if user == "":
        return (0, 0)
    name, _, group = user.partition(":")
    uid = gid = None
    if name.isdigit():
        uid = int(name)
    for line in passwd.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and (parts[0] == name or (uid is not None and parts[2] == str(uid))):
            uid, gid = int(parts[2]), int(parts[3])
            break
    if uid is None:
        return None
    if group.isdigit():
        gid = int(group)
    return (uid, gid if gid is not None else uid)


def can_read(mode: int, uid: int, gid: int, who: tuple[int, int] | None, *, dac_override: bool = True) -> bool | None:
    """Can user ``who`` (uid, gid) read a file with this mode and owner? None when ``who`` is unknown.
    Root reads anything unless its DAC_OVERRIDE capability was dropped."""
    if who is None:
        return None
    if who[0] == 0 and dac_override:
        return True
    if who[0] == uid:
        return bool(mode & stat.S_IRUSR)
    if who[1] == gid:
        return bool(mode & stat.S_IRGRP)
    return bool(mode & stat.S_IROTH)


def dac_override(facts: ServiceFacts) -> bool:
    dropped = {c.upper().removeprefix("CAP_") for c in facts.cap_drop}
    added = {c.upper().removeprefix("CAP_") for c in facts.cap_add}
    return not ({"ALL", "DAC_OVERRIDE"} & dropped) or bool({"ALL", "DAC_OVERRIDE"} & added)


# Host secret files are read (to learn their values) only when regular files of at most this size:
# /dev/zero, a FIFO or a disk image named as a secret file is refused, not read.
MAX_SECRET_BYTES = 1 << 20


def host_file_state(path: Path, who: tuple[int, int] | None = None, dac: bool = True) -> FileState:
    """A host file (a compose file secret): Compose bind-mounts it, so the container sees this mode and owner."""
    try:
        st = path.stat()
    except OSError:
        return FileState(str(path), exists=False)
    mode = stat.S_IMODE(st.st_mode)
    kind = "file" if stat.S_ISREG(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode) else "other"
    refused = (f"larger than {MAX_SECRET_BYTES >> 20} MiB ({st.st_size} bytes): not read"
               if kind == "file" and st.st_size > MAX_SECRET_BYTES else "")
    return FileState(str(path), True, kind, st.st_size, mode, st.st_uid, st.st_gid,
                     can_read(mode, st.st_uid, st.st_gid, who, dac_override=dac), refused=refused)


def read_secret_file(path: Path) -> tuple[str | None, str]:
    """The content of a host secret file, or (None, why not). Read only when it is a regular file of at
    most MAX_SECRET_BYTES: opened non-blocking (a FIFO cannot hang the read) and checked on the open
    descriptor (no swap between the check and the read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"cannot be opened: {exc.strerror}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "not a regular file: not read"
        if st.st_size > MAX_SECRET_BYTES:
            return None, f"larger than {MAX_SECRET_BYTES >> 20} MiB ({st.st_size} bytes): not read"
        data = os.read(fd, MAX_SECRET_BYTES + 1)[:MAX_SECRET_BYTES]
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror}"
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="surrogateescape"), ""

