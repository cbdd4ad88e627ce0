"""A swarm service as the engine holds it (:class:`SwarmService`, one ``docker service inspect``) and a stack
file's service in the same terms (:func:`stack_file_fields`), so phase 3 can name each field that drifted
(:func:`field_differences`): durations in ns, CPUs in nano-CPUs, memory in bytes, Swarm's defaults for a
secret's mount. Pure data: nothing here calls the engine or the docker CLI.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

#: What a swarm mounts a secret with when the stack file leaves ``mode``/``uid``/``gid`` unset.
SECRET_DEFAULTS = {"uid": "0", "gid": "0", "mode": 0o444}


def secret_mode(value: Any, default: int = SECRET_DEFAULTS["mode"]) -> int:
    """A secret reference's mode: a number as `docker stack config` prints it (256), or the octal string
    `docker compose config` prints ("0400")."""
    if value is None or value == "":
        return default
    return int(value, 8) if isinstance(value, str) else int(value)


def _ns(value: Any) -> int:
    """A duration as the engine stores it (nanoseconds) from a stack file's "1m0s", "5s" or a number."""
    from runbook_lib.model.facts import parse_duration_ns

    return parse_duration_ns(value) if value not in (None, "") else 0


def _nano_cpus(value: Any) -> int:
    return int(round(float(value) * 1e9)) if value not in (None, "") else 0


def _bytes(value: Any) -> int:
    from runbook_lib.model.facts import parse_bytes

    return parse_bytes(value)


def _image_ref(ref: str) -> tuple[str, str]:
    """(name:tag, digest or "") of an image reference; a name without a tag gets ":latest", as the engine
    reads it."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and name:
        name += ":latest"
    return name, digest


@dataclass
class SwarmService:
    """One swarm service (``docker service inspect``) of a stack, with the fields phases 2, 3 and 5 read.
    ``service`` is its name in the stack file (the swarm name without the ``STACK_`` prefix). A service
    spec never holds a secret's value, only references to swarm secrets."""

    attrs: dict[str, Any]
    stack: str

    @property
    def id(self) -> str:
        return self.attrs.get("ID", "")

    @property
    def name(self) -> str:
        return (self.attrs.get("Spec") or {}).get("Name", "")

    @property
    def service(self) -> str:
        return self.name[len(self.stack) + 1:] if self.name.startswith(self.stack + "_") else self.name

    @property
    def spec(self) -> dict[str, Any]:
        return self.attrs.get("Spec") or {}

    @property
    def task_template(self) -> dict[str, Any]:
        return self.spec.get("TaskTemplate") or {}

    @property
    def container_spec(self) -> dict[str, Any]:
        return self.task_template.get("ContainerSpec") or {}

    @property
    def updated_at(self) -> str:
        """When the spec last changed (a deploy, an update, a rollback)."""
        return self.attrs.get("UpdatedAt") or self.attrs.get("CreatedAt") or ""

    @property
    def deployed_at(self) -> str:
        """When the current spec was deployed: the service's creation when it was never updated (its first
        tasks are created before its UpdatedAt), else its last update. Task history is judged from here."""
        if not self.attrs.get("PreviousSpec"):
            return self.attrs.get("CreatedAt") or self.updated_at
        return self.updated_at

    @property
    def version(self) -> int:
        return int((self.attrs.get("Version") or {}).get("Index") or 0)

    @property
    def image(self) -> str:
        return self.container_spec.get("Image", "")

    @property
    def environment(self) -> dict[str, str]:
        return dict(item.partition("=")[::2] for item in self.container_spec.get("Env") or [])

    @property
    def mode(self) -> str:
        return "global" if "Global" in (self.spec.get("Mode") or {}) else "replicated"

    @property
    def replicas(self) -> int | None:
        """Desired replicas of a replicated service (None for a global one)."""
        rep = (self.spec.get("Mode") or {}).get("Replicated")
        return None if rep is None else int(rep.get("Replicas") or 0)

    @property
    def update_status(self) -> dict[str, Any]:
        """The last rolling update's state ("updating", "paused", "completed", "rollback_started",
        "rollback_paused", "rollback_completed") and message; {} when the service was never updated."""
        return dict(self.attrs.get("UpdateStatus") or {})

    @property
    def secrets(self) -> list[dict[str, Any]]:
        """Each secret reference: {name (the swarm secret), target, uid, gid, mode}. Never a value."""
        return [{"name": s.get("SecretName", ""), "target": (s.get("File") or {}).get("Name", ""),
                 "uid": str((s.get("File") or {}).get("UID", "0")), "gid": str((s.get("File") or {}).get("GID", "0")),
                 "mode": int((s.get("File") or {}).get("Mode", 0o444))}
                for s in self.container_spec.get("Secrets") or []]

    @property
    def published_ports(self) -> list[dict[str, Any]]:
        """Ports the service publishes: {host_ip "" (a swarm publishes on every interface), host_port,
        container_port, protocol, mode (ingress: every node; host: the node of the task)}."""
        return [{"host_ip": "", "host_port": str(p.get("PublishedPort") or ""), "container_port": str(p.get("TargetPort") or ""),
                 "protocol": p.get("Protocol") or "tcp", "mode": p.get("PublishMode") or "ingress"}
                for p in ((self.spec.get("EndpointSpec") or {}).get("Ports") or []) if p.get("PublishedPort")]

    def fields(self) -> dict[str, Any]:
        """The spec's fields phase 3 compares with the stack file, in one normalised shape (see
        :func:`stack_file_fields`): durations in ns, CPUs in nano-CPUs, memory in bytes."""
        tt, cs = self.task_template, self.container_spec
        res = tt.get("Resources") or {}
        lim, rsv = res.get("Limits") or {}, res.get("Reservations") or {}
        rp = tt.get("RestartPolicy") or {}
        hc = cs.get("Healthcheck") or {}
        pl = tt.get("Placement") or {}

        def cfg(c: dict[str, Any]) -> dict[str, Any]:
            return {"parallelism": c.get("Parallelism", 0), "delay": c.get("Delay", 0),
                    "failure_action": c.get("FailureAction", ""), "monitor": c.get("Monitor", 0),
                    "max_failure_ratio": c.get("MaxFailureRatio", 0), "order": c.get("Order", "")}

        name, digest = _image_ref(self.image)
        return {
            "image": name, "image_digest": digest, "environment": self.environment,
            "replicas": self.replicas if self.mode == "replicated" else "global",
            "resources": {"limits": {"cpus": lim.get("NanoCPUs", 0), "memory": lim.get("MemoryBytes", 0),
                                     "pids": lim.get("Pids", 0)},
                          "reservations": {"cpus": rsv.get("NanoCPUs", 0), "memory": rsv.get("MemoryBytes", 0)}},
            "restart_policy": {"condition": rp.get("Condition", ""), "delay": rp.get("Delay", 0),
                               "max_attempts": rp.get("MaxAttempts", 0), "window": rp.get("Window", 0)},
            "update_config": cfg(self.spec.get("UpdateConfig") or {}),
            "rollback_config": cfg(self.spec.get("RollbackConfig") or {}),
            "healthcheck": {"test": list(hc.get("Test") or []), "interval": hc.get("Interval", 0),
                            "timeout": hc.get("Timeout", 0), "start_period": hc.get("StartPeriod", 0),
                            "retries": hc.get("Retries", 0)},
            "placement": {"constraints": sorted(pl.get("Constraints") or []),
                          "preferences": [p.get("Spread", {}).get("SpreadDescriptor", "") for p in pl.get("Preferences") or []],
                          "max_replicas": pl.get("MaxReplicas", 0)},
            "secrets": sorted((s for s in self.secrets), key=lambda s: s["target"]),
            "user": cs.get("User", ""), "read_only": bool(cs.get("ReadOnly")),
            "ports": sorted(({"target": int(p.get("TargetPort") or 0), "published": int(p.get("PublishedPort") or 0),
                              "protocol": p.get("Protocol") or "tcp", "mode": p.get("PublishMode") or "ingress"}
                             for p in (self.spec.get("EndpointSpec") or {}).get("Ports") or []), key=_port_key),
            "command": list(cs.get("Args") or []), "entrypoint": list(cs.get("Command") or []),
            "cap_add": sorted(cs.get("CapabilityAdd") or []), "cap_drop": sorted(cs.get("CapabilityDrop") or []),
        }


def _port_key(p: dict[str, Any]) -> tuple:
    return (p["published"], p["target"], p["protocol"], p["mode"])


def _file_port(p: Any) -> dict[str, Any]:
    """A port of the stack file (the long form `docker stack config` prints, or a short "8080:80/udp")."""
    if isinstance(p, dict):
        return {"target": int(p.get("target") or 0), "published": int(p.get("published") or 0),
                "protocol": p.get("protocol") or "tcp", "mode": p.get("mode") or "ingress"}
    spec, _, proto = str(p).partition("/")
    published, _, target = spec.rpartition(":")
    return {"target": int(target), "published": int(published.rsplit(":", 1)[-1] or 0), "protocol": proto or "tcp",
            "mode": "ingress"}


def stack_file_fields(stack: str, name: str, spec: dict[str, Any], top_secrets: dict[str, Any]) -> dict[str, Any]:
    """Service ``name`` of the stack file, as `docker stack config` resolves it, in the shape of
    :meth:`SwarmService.fields`, holding only what the file sets (a key it leaves unset takes Swarm's
    default, which is not compared; ports are always compared: one published by hand is drift). Secrets: the swarm name each reference resolves to (``STACK_key`` for a
    file secret, its ``name`` or key when external), target, uid, gid and mode with Swarm's defaults."""
    d = spec.get("deploy") or {}
    out: dict[str, Any] = {}
    if spec.get("image"):
        out["image"], digest = _image_ref(str(spec["image"]))
        if digest:  # pinned: the spec must hold that digest (unpinned, the digest the swarm resolved is not drift)
            out["image_digest"] = digest
    env = spec.get("environment") or {}
    out["environment"] = {str(k): "" if v is None else str(v) for k, v in env.items()}
    mode = d.get("mode") or "replicated"
    out["replicas"] = "global" if mode == "global" else int(d.get("replicas", 1))
    res = d.get("resources") or {}
    conv = {"cpus": _nano_cpus, "memory": _bytes, "pids": int}
    r = {k: {f: conv[f](v) for f, v in (res.get(k) or {}).items() if f in conv and v not in (None, "")}
         for k in ("limits", "reservations") if res.get(k)}
    if r:
        out["resources"] = r
    if d.get("restart_policy"):
        rp = d["restart_policy"]
        out["restart_policy"] = {k: (_ns(v) if k in ("delay", "window") else v) for k, v in rp.items()
                                 if k in ("condition", "delay", "max_attempts", "window") and v is not None}
    for key in ("update_config", "rollback_config"):
        if d.get(key):
            out[key] = {k: (_ns(v) if k in ("delay", "monitor") else float(v) if k == "max_failure_ratio" else v)
                        for k, v in d[key].items() if v is not None}
    hc = spec.get("healthcheck")
    if hc:
        h: dict[str, Any] = {}
        if hc.get("disable"):
            h["test"] = ["NONE"]
        elif hc.get("test") is not None:
            t = hc["test"]
            h["test"] = ["CMD-SHELL", t] if isinstance(t, str) else list(t)
        for k in ("interval", "timeout", "start_period"):
            if hc.get(k) is not None:
                h[k] = _ns(hc[k])
        if hc.get("retries") is not None:
            h["retries"] = int(hc["retries"])
        out["healthcheck"] = h
    pl = d.get("placement") or {}
    if pl:
        p: dict[str, Any] = {}
        if pl.get("constraints") is not None:
            p["constraints"] = sorted(pl["constraints"])
        if pl.get("preferences") is not None:
            p["preferences"] = [x.get("spread", "") for x in pl["preferences"]]
        if pl.get("max_replicas_per_node") is not None:
            p["max_replicas"] = int(pl["max_replicas_per_node"])
        out["placement"] = p
    secrets = []
    for s in spec.get("secrets") or []:
        s = {"source": s} if isinstance(s, str) else s
        key = s["source"]
        top = top_secrets.get(key) or {}
        swarm_name = top.get("name") or (key if top.get("external") else f"{stack}_{key}")
        secrets.append({"name": swarm_name, "target": s.get("target") or key,
                        "uid": str(s.get("uid", SECRET_DEFAULTS["uid"])), "gid": str(s.get("gid", SECRET_DEFAULTS["gid"])),
                        "mode": secret_mode(s.get("mode"))})
    out["secrets"] = sorted(secrets, key=lambda s: s["target"])
    if spec.get("user") is not None:
        out["user"] = str(spec["user"])
    out["read_only"] = bool(spec.get("read_only"))
    out["ports"] = sorted((_file_port(p) for p in spec.get("ports") or []), key=_port_key)  # one published by hand: drift
    for key in ("command", "entrypoint"):
        if spec.get(key) is not None:
            v = spec[key]
            out[key] = [str(a) for a in v] if isinstance(v, list) else shlex.split(str(v))
    for key in ("cap_add", "cap_drop"):
        if spec.get(key) is not None:
            out[key] = sorted(str(c) for c in spec[key])
    return out


def field_differences(want: dict[str, Any], have: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """{field, expected, actual} for every key ``want`` sets whose value ``have`` does not hold (nested
    mappings compared key by key, so a difference names e.g. ``resources.limits.memory``). An environment
    is compared both ways: a variable added by hand is drift too."""
    diffs = []
    keys = list(want) + ([k for k in have if k not in want] if prefix == "environment." else [])
    for k in keys:
        w, h = want.get(k), have.get(k)
        if isinstance(w, dict) and prefix != "environment.":
            diffs += field_differences(w, h if isinstance(h, dict) else {}, f"{prefix}{k}.")
        elif w != h:
            diffs.append({"field": f"{prefix}{k}", "expected": w, "actual": h})
    return diffs
