"""Facts about one service (from the compose model or from docker inspect), and about the files a
secret rule judges (on the host statically, in the container at run time)."""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from runbook_lib.errors import InputError
from runbook_lib.model.mounts import compose_mounts
from runbook_lib.model.ports import compose_bindings, compose_ports
from runbook_lib.model.restart import model_restart

# ----------------------------------------------------------------------------------------------------
# facts about one service, from the compose model or from docker inspect
# ----------------------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_bytes(value: Any) -> int:
    """A memory size as Compose or a user writes it ("134217728", "128m", "1.5GiB", 1024) in bytes; 0 when
    unset. Raises ValueError on anything else: the one memory parser of the project."""
    if value in (None, "", 0):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(m.group(1)) * 1024 ** "bkmgt".index((m.group(2) or "b").lower()))


def parse_duration_ns(text: Any) -> int:
    """A Go/Compose duration (``"1m30s"``, ``"500ms"``) or a number of nanoseconds, in nanoseconds."""
    if text is None or text == "":
        return 0
    if isinstance(text, (int, float)):
        return int(text)
    parts = _DURATION_PART.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).strip():
        raise ValueError(f"not a duration: {text!r}")
    return int(sum(float(n) * _DURATION_NS[u] for n, u in parts))


def unescape(value: Any) -> Any:
    """``docker compose config`` prints a literal ``$`` as ``$$`` (so its output can be read back); the
    engine sees one ``$``."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [unescape(v) for v in value]
    return value


@dataclass
class ServiceFacts:
    """The one model of a service: what the rules judge (lint, phase 2) and what drift compares (phase 3).
    ``source`` is "compose" (the resolved model: what will run) or "engine" (docker inspect: what runs);
    :meth:`from_compose` and :meth:`from_container` build it, and drift is a comparison of the two
    (:func:`runbook_lib.phases.production.conformance.compare`). ``user`` is None when the compose file
    leaves it to the image."""

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
    image: str = ""
    # the restart policy in the engine's words ("always", "on-failure:3", "no")
    restart: str = "no"
    # the healthcheck as the engine stores it ({test, interval, timeout, start_period (ns), retries}); from
    # compose only the keys the file sets, None when it leaves it to the image, {"test": ["NONE"]}: disabled
    healthcheck: dict[str, Any] | None = None
    # every port binding as "host_ip:host_port->container_port/protocol", ranges expanded, sorted
    bindings: list[str] = field(default_factory=list)
    # secret target path -> where its content comes from (a host file, or "(secret NAME)")
    secret_sources: dict[str, str] = field(default_factory=dict)
    # the compose project's directory on the host (what `./x` resolves against); "" when unknown
    project_dir: str = ""

    @classmethod
    def from_compose(cls, name: str, spec: Mapping[str, Any], top_secrets: Mapping[str, Any] | None = None,
                     secrets_dir: str = "/run/secrets", top_volumes: Mapping[str, Any] | None = None) -> "ServiceFacts":
        """Service ``name`` of the resolved compose model; ``top_secrets`` (the model's ``secrets:``) says
        where each secret's content comes from; ``top_volumes`` (the model's ``volumes:``, given by lint) turns
        a named volume whose ``driver_opts`` bind a host path into the bind mount it is (see
        :func:`~runbook_lib.model.mounts.compose_mounts`). Raises InputError naming the service and the key
        for a value the rules cannot read."""
        limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        # a variable listed without a value, and not set where Compose ran, is not set in the container
        env = {k: unescape(str(v)) for k, v in (spec.get("environment") or {}).items() if v is not None}
        try:
            memory = parse_bytes(spec.get("mem_limit")) or parse_bytes(limits.get("memory"))
        except ValueError as exc:
            raise InputError(f"service {name}: {exc} (mem_limit or deploy.resources.limits.memory)") from exc
        targets = secret_targets(spec, secrets_dir)
        hc = (spec.get("healthcheck") or {}).get("test") or []
        argv = {"command": as_list(spec.get("command")), "entrypoint": as_list(spec.get("entrypoint")),
                "healthcheck": as_list(hc)}
        mounts = compose_mounts(spec, name, top_volumes)
        labels = spec.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(str(x).partition("=")[::2] for x in labels)
        return cls(
            service=name, source="compose", environment=env,
            user=None if spec.get("user") is None else str(spec.get("user")),
            privileged=bool(spec.get("privileged")), cap_add=list(spec.get("cap_add") or []),
            cap_drop=list(spec.get("cap_drop") or []), security_opt=list(spec.get("security_opt") or []),
            read_only=bool(spec.get("read_only")),
            memory_limit=memory,
            pids_limit=_read(name, "pids_limit", int, spec.get("pids_limit") or limits.get("pids") or 0),
            network_mode=spec.get("network_mode") or "", pid_mode=spec.get("pid") or "", ipc_mode=spec.get("ipc") or "",
            ports=compose_ports(spec, name),
            bind_sources=[m["source"] for m in mounts if m["type"] == "bind"],
            secret_targets=targets, command_text=" ".join(a for v in argv.values() for a in v),
            argv=argv, labels={str(k): "" if v is None else str(v) for k, v in labels.items()},
            profiles=[str(p) for p in spec.get("profiles") or []],
            cpu_limit=_compose_cpus(spec, limits), userns_mode=str(spec.get("userns_mode") or ""),
            cgroup_parent=str(spec.get("cgroup_parent") or ""), cgroup=str(spec.get("cgroup") or ""),
            mounts=mounts,
            image=str(spec.get("image") or ""), restart=model_restart(spec),
            healthcheck=_read(name, "healthcheck", _compose_healthcheck, spec.get("healthcheck")), bindings=compose_bindings(spec, name),
            secret_sources={t: ((top_secrets or {}).get(n) or {}).get("file") or f"(secret {n})" for t, n in targets.items()},
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
            image=view.image, restart=view.restart_policy, healthcheck=_engine_healthcheck(view.healthcheck_config),
            bindings=_engine_bindings(hc.get("PortBindings") or {}),
            secret_sources={m.get("Destination"): m.get("Source") for m in view.mounts
                            if m.get("Destination") in secret_targets(spec or {})
                            or str(m.get("Destination", "")).startswith("/run/secrets/")},
            project_dir=str(view.labels.get("com.docker.compose.project.working_dir") or ""),
        )


    @classmethod
    def from_service_spec(cls, svc: Any, secrets_dir: str = "/run/secrets") -> "ServiceFacts":
        """From a swarm service (:class:`~runbook_lib.engine.stack.SwarmService`, ``docker service inspect``):
        what the swarm gives every task of the service, whether or not a task runs on an engine this run can
        read (source "service"). Only what a service spec can say: no privileged mode, no security options
        (a swarm service cannot set no-new-privileges, seccomp or AppArmor options: ``security_opt`` is
        ignored by docker stack deploy), no host namespaces; ports are published on every interface of every
        node (ingress) or of the task's node (host mode)."""
        cs, tt = svc.container_spec, svc.task_template
        lim = (tt.get("Resources") or {}).get("Limits") or {}
        rp = tt.get("RestartPolicy") or {}
        cond = rp.get("Condition") or "any"
        restart = {"any": "always", "none": "no"}.get(cond, cond)
        if restart == "on-failure" and rp.get("MaxAttempts"):
            restart = f"on-failure:{rp['MaxAttempts']}"
        targets = {(s["target"] if s["target"].startswith("/") else f"{secrets_dir.rstrip('/')}/{s['target']}"): s["name"]
                   for s in svc.secrets}
        mounts = [{"type": (m.get("Type") or "").lower(), "source": str(m.get("Source") or ""),
                   "target": str(m.get("Target") or ""), "read_only": bool(m.get("ReadOnly")),
                   "propagation": str((m.get("BindOptions") or {}).get("Propagation") or "")} for m in cs.get("Mounts") or []]
        ports = [{k: p[k] for k in ("host_ip", "host_port", "container_port", "protocol")} for p in svc.published_ports]
        argv = {"command": [str(a) for a in cs.get("Command") or []] + [str(a) for a in cs.get("Args") or []],
                "entrypoint": [], "healthcheck": list((cs.get("Healthcheck") or {}).get("Test") or [])}
        return cls(
            service=svc.service, source="service", environment=svc.environment,
            user=cs.get("User") or None, cap_add=list(cs.get("CapabilityAdd") or []),
            cap_drop=list(cs.get("CapabilityDrop") or []), read_only=bool(cs.get("ReadOnly")),
            memory_limit=int(lim.get("MemoryBytes") or 0), pids_limit=int(lim.get("Pids") or 0), ports=ports,
            bind_sources=[m["source"] for m in mounts if m["type"] == "bind"], secret_targets=targets,
            command_text=" ".join(a for v in argv.values() for a in v), argv=argv,
            labels={k: v for k, v in (cs.get("Labels") or {}).items() if not k.startswith("com.docker.")},
            cpu_limit=int(lim.get("NanoCPUs") or 0) / 1e9, mounts=mounts, image=svc.image, restart=restart,
            healthcheck=_engine_healthcheck(cs.get("Healthcheck") or {}) if cs.get("Healthcheck") else None,
            bindings=sorted(f":{p['host_port']}->{p['container_port']}/{p['protocol']}" for p in ports),
            secret_sources={t: f"(swarm secret {n})" for t, n in targets.items()},
        )


def _read(service: str, key: str, parse: Any, value: Any) -> Any:
    """``parse(value)``, or an InputError naming the service and the key when the value cannot be read."""
    try:
        return parse(value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"service {service}: {key}: {exc}: fix the compose file") from exc


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


def _engine_mount(m: Mapping[str, Any]) -> dict[str, Any]:
    kind = m.get("Type") or ""
    return {"type": kind, "source": str((m.get("Name") if kind == "volume" else m.get("Source")) or ""),
            "target": str(m.get("Destination") or ""), "read_only": not m.get("RW", True),
            "propagation": str(m.get("Propagation") or "")}


def as_list(v: Any) -> list[str]:
    """A compose value that may be a string or a list (``command``, ``entrypoint``, a healthcheck's ``test``)
    as a list of strings; None is the empty list."""
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]


def _compose_healthcheck(hc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not hc:
        return None
    if hc.get("disable"):
        return {"test": ["NONE"]}
    out: dict[str, Any] = {}
    if hc.get("test") is not None:
        test = hc["test"]
        out["test"] = unescape(["CMD-SHELL", test] if isinstance(test, str) else list(test))
    for key in ("interval", "timeout", "start_period"):
        if hc.get(key) is not None:
            out[key] = parse_duration_ns(hc[key])
    if hc.get("retries") is not None:
        out["retries"] = int(hc["retries"])
    return out


def _engine_healthcheck(hc: Mapping[str, Any]) -> dict[str, Any]:
    return {"test": list(hc.get("Test") or []), "interval": hc.get("Interval", 0), "timeout": hc.get("Timeout", 0),
            "start_period": hc.get("StartPeriod", 0), "retries": hc.get("Retries", 0)}


def _engine_bindings(port_bindings: Mapping[str, Any]) -> list[str]:
    out = []
    for spec, binds in port_bindings.items():
        port, _, proto = spec.partition("/")
        out += [f"{b.get('HostIp') or ''}:{b.get('HostPort') or ''}->{port}/{proto or 'tcp'}" for b in binds or []]
    return sorted(out)


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

