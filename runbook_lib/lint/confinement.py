"""The confinement rules the dedicated compose scanners have: capabilities dropped, a CPU
limit, privileged host ports, sensitive host directories, seccomp / AppArmor / SELinux, the host user and
cgroup namespaces, mount propagation, and writable named volumes shared between services.

Like every hardening rule they judge a :class:`ServiceFacts`, so `runbook lint` (the compose model) and
phase 2 (``docker inspect``) call the same functions. The exemptions are the real ones: a read-only mount
is not a writable one; ``cap_drop: [ALL]`` with a short ``cap_add`` is a dropped capability set."""
from __future__ import annotations

import functools
import posixpath
import re
from typing import Any, Iterable

from runbook_lib.model.facts import ServiceFacts
from runbook_lib.lint.rules import Verdict

# `cap_drop: [ALL]` plus at most this many capabilities added back is "capabilities dropped"
# (hardening.capabilities still judges each one added).
SHORT_CAP_ADD = 4
# Host directories whose whole tree must not be writable from a container (CIS 5.5).
SENSITIVE_TREES = ("/etc", "/proc", "/sys", "/boot", "/var/lib/docker", "/var/lib/containerd", "/root", "/usr",
                   "/lib", "/lib64", "/bin", "/sbin", "/dev/mem", "/dev/kmem", "/dev/port")
# Host directories sensitive as a whole, not below: /home is sensitive, /home/alice/project/data is a
# project's own data directory (Compose resolves ./data to it). /run and /var/run are hardening.docker_socket's.
SENSITIVE_EXACT = ("/", "/home", "/dev", "/var", "/var/lib", "/var/log", "/opt", "/srv", "/mnt", "/media")
# Web entry points: a reverse proxy publishing 80/443 is the usual design, a lower-severity finding.
WEB_PORTS = {80, 443}
_SHARED = {"shared", "rshared"}
_SLAVE = {"slave", "rslave"}


@functools.lru_cache(maxsize=None)
def _option_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _opts(facts: ServiceFacts, pattern: str) -> list[str]:
    if not facts.security_opt:
        return []
    rx = _option_re(pattern)
    return [o for o in facts.security_opt if rx.fullmatch(o.strip())]


def _caps(values: Iterable[str]) -> list[str]:
    return sorted({c.upper().removeprefix("CAP_") for c in values})


def judge_cap_drop(facts: ServiceFacts) -> Verdict:
    """hardening.cap_drop: the service drops Docker's default capability set (``cap_drop: [ALL]``), adding
    back at most :data:`SHORT_CAP_ADD`. Dropping only some is a WARN; dropping none a FAIL."""
    dropped, added = _caps(facts.cap_drop), _caps(facts.cap_add)
    ev = {"source": facts.source, "cap_drop": dropped, "cap_add": added, "short_cap_add": SHORT_CAP_ADD}
    expected = f"cap_drop: [ALL] (and at most {SHORT_CAP_ADD} added back)"
    if "ALL" in dropped:
        if len(added) > SHORT_CAP_ADD:
            return Verdict("WARN", expected, f"drops ALL but adds back {len(added)}: {', '.join(added)}", ev, "low")
        return Verdict("PASS", expected, "drops ALL" + (f", adds back {', '.join(added)}" if added else ""), ev)
    if dropped:
        return Verdict("WARN", expected, f"drops only {', '.join(dropped)}: the rest of the default set stays",
                       ev, "low")
    return Verdict("FAIL", expected, "no cap_drop: keeps Docker's default capabilities (CHOWN, DAC_OVERRIDE, "
                   "FOWNER, SETUID, SETGID, NET_RAW, ...)", ev)


def judge_cpu_limit(facts: ServiceFacts) -> Verdict:
    """hardening.cpu_limit: a CPU limit (cpus, deploy.resources.limits.cpus, cpu_quota; NanoCpus or
    CpuQuota at run time)."""
    ev = {"source": facts.source, "cpus": round(facts.cpu_limit, 3)}
    if facts.cpu_limit > 0:
        return Verdict("PASS", "a CPU limit", f"{facts.cpu_limit:g} CPU", ev)
    return Verdict("FAIL", "a CPU limit", "no CPU limit: one service can starve the host", ev)


def _host_port(p: dict[str, Any]) -> int:
    try:
        return int(str(p.get("host_port") or "0").split("-")[0])
    except ValueError:
        return 0


# A published range this wide is a pool (a TURN relay's, FTP's passive ports), not the service a port in it names.
POOL_PORTS = 16


def in_pool(ports: list[dict[str, Any]]) -> set[int]:
    """id() of each published port that lies in a run of more than :data:`POOL_PORTS` consecutive container
    ports (same interface and protocol)."""
    def num(p: dict[str, Any]) -> int:
        try:
            return int(str(p.get("container_port") or "0").split("-")[0])
        except ValueError:
            return 0
    pooled: set[int] = set()
    run: list[dict[str, Any]] = []
    for p in sorted(ports, key=lambda p: (p["host_ip"], p["protocol"], num(p))) + [None]:  # type: ignore[list-item]
        if p is not None and run and (p["host_ip"], p["protocol"]) == (run[-1]["host_ip"], run[-1]["protocol"]) \
                and num(p) == num(run[-1]) + 1:
            run.append(p)
            continue
        if len(run) > POOL_PORTS:
            pooled.update(id(q) for q in run)
        run = [p] if p is not None else []
    return pooled


def judge_privileged_ports(facts: ServiceFacts) -> Verdict:
    """hardening.privileged_ports: no host port below 1024 published (WARN; low for 80/443, a web entry
    point)."""
    low = [p for p in facts.ports if 0 < _host_port(p) < 1024]
    ev = {"source": facts.source, "privileged_ports": [f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}" for p in low]}
    expected = "no privileged host port (1-1023) published"
    if not low:
        return Verdict("PASS", expected, f"{len(facts.ports)} published port(s), none below 1024"
                       if facts.ports else "publishes no port", ev)
    web = all(_host_port(p) in WEB_PORTS for p in low)
    return Verdict("WARN", expected, "publishes privileged host port(s) " + ", ".join(ev["privileged_ports"])
                   + (" (a web entry point)" if web else ""), ev, "low" if web else None)


def sensitive_dir(source: str, project_dir: str = "") -> str | None:
    """The sensitive host directory ``source`` is, or lies in; None when it is not sensitive. A path
    inside ``project_dir`` (the compose project's directory) is the project's own files wherever it is
    checked out (/root/app/data, /usr/src/app/conf), unless the project directory is itself a sensitive
    directory (a project at /root or /etc)."""
    path = posixpath.normpath(source) if source.startswith("/") else ""
    if not path:
        return None
    if project_dir and _inside(path, project_dir):
        return None
    if path in SENSITIVE_EXACT:
        return path
    if path.startswith("/home/") and path.count("/") == 2:  # a whole home directory
        return path
    return next((t for t in SENSITIVE_TREES if path == t or path.startswith(t + "/")), None)


def _inside(path: str, project_dir: str) -> bool:
    """Whether ``path`` (normalised) is ``project_dir`` or below it, and that directory is not itself one
    a sensitive_dir names (then nothing below it is exempt)."""
    top = posixpath.normpath(project_dir)
    if not top.startswith("/") or sensitive_dir(top) == top:
        return False
    return path == top or path.startswith(top.rstrip("/") + "/")


def judge_sensitive_mounts(facts: ServiceFacts) -> Verdict:
    """hardening.sensitive_mounts: no sensitive host directory (/, /etc, /proc, /sys, /boot, /root, /usr,
    /var/lib/docker, a whole /home...) bind-mounted writable. Read-only mounts are exempt; ``/`` writable
    is critical. What a path is decides, not where the project sits: a path inside the project's
    directory (``facts.project_dir``) is never a sensitive host directory."""
    where = facts.project_dir
    bad = [(m, sensitive_dir(m["source"], where)) for m in facts.mounts if m["type"] == "bind" and not m["read_only"]]
    bad = [(m, d) for m, d in bad if d]
    ro = [m["source"] for m in facts.mounts if m["type"] == "bind" and m["read_only"] and sensitive_dir(m["source"], where)]
    ev = {"source": facts.source, "writable": [f"{m['source']}:{m['target']}" for m, _ in bad], "read_only": ro,
          "project_dir": where or None}
    expected = "no sensitive host directory mounted writable"
    if bad:
        severity = "critical" if any(d == "/" for _, d in bad) else None
        return Verdict("FAIL", expected, "writable: " + ", ".join(f"{m['source']} at {m['target']}" for m, _ in bad),
                       ev, severity)
    return Verdict("PASS", expected, f"{len(ro)} sensitive path(s), read-only" if ro else "none mounted", ev)


# security_opt entries that turn a confinement off: rule -> (pattern, expected, what is lost)
_UNCONFINED = {
    "hardening.seccomp": (r"seccomp[:=]unconfined", "the default seccomp profile", "every syscall allowed"),
    "hardening.apparmor": (r"apparmor[:=]unconfined", "an AppArmor profile", "no AppArmor confinement"),
    "hardening.selinux": (r"label[:=]disable", "SELinux separation", "no SELinux separation"),
}


def judge_unconfined(facts: ServiceFacts, rule: str) -> Verdict:
    """hardening.seccomp / hardening.apparmor / hardening.selinux: the confinement is not turned off in
    ``security_opt`` (``seccomp:unconfined``, ``apparmor:unconfined``, ``label:disable``)."""
    pattern, expected, lost = _UNCONFINED[rule]
    bad = _opts(facts, pattern)
    ev = {"source": facts.source, "security_opt": facts.security_opt}
    return Verdict("FAIL", expected, f"{bad[0]}: {lost}", ev) if bad else Verdict("PASS", expected, "not disabled", ev)


def judge_userns(facts: ServiceFacts) -> Verdict:
    """hardening.host_userns: the host user namespace is not shared (``userns_mode: host``)."""
    ev = {"source": facts.source, "userns_mode": facts.userns_mode}
    if facts.userns_mode == "host":
        return Verdict("FAIL", "userns_mode not host", "userns_mode: host (container root is host root)", ev)
    return Verdict("PASS", "userns_mode not host", f"userns_mode: {facts.userns_mode or 'default'}", ev)


def judge_cgroup(facts: ServiceFacts) -> Verdict:
    """hardening.cgroup: the engine's own cgroup: no ``cgroup_parent``, no ``cgroup: host``."""
    ev = {"source": facts.source, "cgroup_parent": facts.cgroup_parent, "cgroup": facts.cgroup}
    bad = ([f"cgroup_parent: {facts.cgroup_parent}"] if facts.cgroup_parent else []) + \
        (["cgroup: host (the host's cgroup namespace)"] if facts.cgroup == "host" else [])
    expected = "the default cgroup parent and a private cgroup namespace"
    if bad:
        return Verdict("FAIL", expected, "; ".join(bad), ev)
    return Verdict("PASS", expected, "default cgroup", ev)


def judge_propagation(facts: ServiceFacts) -> Verdict:
    """hardening.mount_propagation: no mount with shared propagation (``shared``/``rshared``: the container's
    mounts reach the host) nor slave propagation (``slave``/``rslave``: the host's later mounts reach the
    container), a FAIL both; slave at a lower severity (low), the host's mounts flow one way only."""
    bad = [m for m in facts.mounts if m["propagation"] in _SHARED | _SLAVE]
    ev = {"source": facts.source, "shared": [f"{m['source']}:{m['target']}:{m['propagation']}" for m in bad
                                             if m["propagation"] in _SHARED],
          "slave": [f"{m['source']}:{m['target']}:{m['propagation']}" for m in bad if m["propagation"] in _SLAVE]}
    expected = "no shared or slave mount propagation"
    if ev["shared"]:
        return Verdict("FAIL", expected, "shared propagation: " + ", ".join(ev["shared"] + ev["slave"]), ev)
    if ev["slave"]:
        return Verdict("FAIL", expected, "slave propagation (host mounts reach the container): "
                       + ", ".join(ev["slave"]), ev, "low")
    return Verdict("PASS", expected, "none shared or slave", ev)


def judge_confinement(facts: ServiceFacts) -> dict[str, Verdict]:
    """Every per-service rule of this module: rule id -> verdict."""
    return {"hardening.cap_drop": judge_cap_drop(facts), "hardening.cpu_limit": judge_cpu_limit(facts),
            "hardening.privileged_ports": judge_privileged_ports(facts),
            "hardening.sensitive_mounts": judge_sensitive_mounts(facts),
            **{rule: judge_unconfined(facts, rule) for rule in _UNCONFINED},
            "hardening.host_userns": judge_userns(facts), "hardening.cgroup": judge_cgroup(facts),
            "hardening.mount_propagation": judge_propagation(facts)}


# -- the project as a whole ----------------------------------------------------------------------------

# Rules judged over the project (every service at once), not per service.
PROJECT_RULES = ("hardening.shared_volume",)


def _host_dir(path: str, base: str) -> str:
    path = posixpath.normpath(path) if path.startswith("/") else path
    if base and (path == base or path.startswith(base.rstrip("/") + "/")):
        return "./" + posixpath.relpath(path, base) if path != base else "."
    return path


def judge_shared_volumes(services: Iterable[ServiceFacts], names: dict[str, str] | None = None,
                         source: str = "compose", base: str = "") -> list[tuple[str, Verdict]]:
    """hardening.shared_volume: (volume, verdict) for every named volume and every host directory (a bind
    mount's host path) the services mount. One mounted writable by two or more services is a WARN (one
    writer and read-only readers is fine). ``names`` maps a volume's engine name to its key in the compose
    file (the record's target); a host directory's target is its path, relative (``./data``) when it lies in
    ``base`` (the project directory), so that the record does not depend on where the project is."""
    names = names or {}
    writers: dict[str, set[str]] = {}
    readers: dict[str, set[str]] = {}
    kinds: dict[str, str] = {}
    for f in services:
        for m in f.mounts:
            if m["type"] not in ("volume", "bind") or not m["source"]:
                continue
            if m["type"] == "volume":
                vol = names.get(m["source"], m["source"])
            else:
                vol = _host_dir(m["source"], base)
            kinds.setdefault(vol, m["type"])
            (readers if m["read_only"] else writers).setdefault(vol, set()).add(f.service)
            writers.setdefault(vol, set())
    out = []
    for vol in sorted(writers):
        w, r = sorted(writers[vol]), sorted(readers.get(vol, set()) - writers[vol])
        if kinds[vol] == "bind" and len(w) < 2:
            continue  # a host directory one service writes: the other rules judge it (only sharing is this rule's)
        what = "host directory" if kinds[vol] == "bind" else "named volume"
        ev = {"source": source, "volume": vol, "writers": w, "readers": r, "kind": kinds[vol]}
        expected = f"each {what} written by one service at most"
        if len(w) > 1:
            out.append((vol, Verdict("WARN", expected, f"written by {len(w)} services: {', '.join(w)}", ev)))
        else:
            out.append((vol, Verdict("PASS", expected, f"written by {', '.join(w) or 'no service'}"
                                     + (f", read by {', '.join(r)}" if r else ""), ev)))
    return out
