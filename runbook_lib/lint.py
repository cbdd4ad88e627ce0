"""`runbook lint`: the static audit of compose files, and the rules phase 2 shares with it.

Every rule judges a :class:`ServiceFacts`, which is built either from the resolved compose model
(``docker compose config --format json``: anchors, ``extends``, ``env_file`` and interpolation are
Compose's own) or from ``docker inspect`` of a running container. One function judges, whatever the
source: :func:`judge_environment` is the plaintext-credential rule for both ``runbook lint`` and phase 2,
:func:`judge_file_env` the ``*_FILE`` rule (with a file lookup that reads the host statically and the
container at run time), and so on. The runtime checks live in :mod:`runbook_lib.checks.security`.

Rule severities are defaults; ``policy.severity_overrides`` changes them per check id. Hardening records
carry their CIS Docker Benchmark (v1.6) id in ``evidence["cis"]``.

Output: a table for people, JSON (the check-record contract) for machines, SARIF 2.1.0 for code scanning.
Exit status of ``runbook lint``: 0 no FAIL, 1 any FAIL or ERROR, 2 input error (files that do not resolve).
"""
from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from .compose import Compose
from .errors import ComposeConfigError, ComposeError, InputError
from .params import Params, Security
from .records import Check, CheckRecord, counts
from .redact import MIN_SECRET_LEN, Redactor, marker

LINT_PHASE = "lint"


# ----------------------------------------------------------------------------------------------------
# the rule catalogue
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    remediation: str
    cis: str = ""


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("secrets.mounted", "Secrets present, readable and non-empty at their target", "critical",
         "Declare the secret, give it a non-empty file, and make it readable by the container's user "
         "(owner = the container uid, mode 0400)."),
    Rule("secrets.file_mode", "Secret files not writable (or readable) by others", "high",
         "chmod 0400 the secret file (Compose bind-mounts it with the host file's mode) and chown it to the "
         "container's uid."),
    Rule("secrets.file_env", "*_FILE variables point at existing, non-empty, readable files", "high",
         "Point the *_FILE variable at the mounted secret (/run/secrets/<name>) and mount that secret."),
    Rule("secrets.unreferenced", "Every mounted secret is used", "low",
         "Remove the secret from the service, or reference it (a *_FILE variable or the command)."),
    Rule("secrets.no_plaintext_env", "No plaintext credential in the environment", "critical",
         "Move the value into a secret file, mount it, and pass its path in a *_FILE variable; rotate the "
         "exposed credential. Known false positives go in security.plaintext_allow."),
    Rule("secrets.not_in_config", "Secret values absent from container and image configuration", "critical",
         "Remove the value from the environment, command, labels or image build, and rotate it."),
    Rule("secrets.not_in_logs", "Secret values absent from container logs", "high",
         "Stop the service logging the secret, rotate it, and purge the logs that hold it."),
    Rule("secrets.declared_unused", "Declared secrets are used", "low",
         "Remove the unused secret declaration, or give it to the service that needs it."),
    Rule("secrets.undeclared", "Secrets used by a service are declared", "high",
         "Declare the secret under the top-level `secrets:` key."),
    Rule("secrets.duplicate", "A secret is given to a service once", "medium",
         "Mount each secret once per service; point every consumer at that one target."),
    Rule("secrets.external", "No external secrets outside Swarm", "high",
         "`external: true` secrets exist only in Swarm; with `docker compose up` use `file:` secrets."),
    Rule("hardening.privileged", "Container not privileged", "critical",
         "Remove `privileged: true`; add only the capabilities the service needs.", "5.4"),
    Rule("hardening.docker_socket", "Docker socket not mounted", "critical",
         "Remove the docker.sock mount: it gives root on the host. Use a socket proxy with a narrow API.",
         "5.31"),
    Rule("hardening.capabilities", "No added Linux capabilities", "medium",
         "Drop `cap_add` or justify each capability; prefer `cap_drop: [ALL]` plus the minimum.", "5.3"),
    Rule("hardening.no_new_privileges", "no-new-privileges set", "medium",
         "Add `security_opt: [\"no-new-privileges:true\"]`.", "5.25"),
    Rule("hardening.read_only_rootfs", "Read-only root filesystem", "low",
         "Set `read_only: true` and give writable paths a tmpfs or a volume.", "5.12"),
    Rule("hardening.memory_limit", "Memory limit set", "medium",
         "Set `mem_limit` (or deploy.resources.limits.memory).", "5.10"),
    Rule("hardening.pids_limit", "PIDs limit set", "medium",
         "Set `pids_limit` (or deploy.resources.limits.pids).", "5.28"),
    Rule("hardening.host_network", "Host network namespace not shared", "high",
         "Remove `network_mode: host`; publish the ports the service needs.", "5.9"),
    Rule("hardening.host_pid", "Host PID namespace not shared", "high", "Remove `pid: host`.", "5.15"),
    Rule("hardening.host_ipc", "Host IPC namespace not shared", "high", "Remove `ipc: host`.", "5.16"),
    Rule("hardening.published_ports", "Ports published only on allowed interfaces", "high",
         "Publish on an allowed interface (`127.0.0.1:PORT:PORT`) or not at all for internal services.",
         "5.13"),
    Rule("hardening.non_root", "Runs as a non-root user", "medium",
         "Set `user: \"<uid>:<gid>\"` (a non-zero uid) or a USER in the image.", "4.1"),
    Rule("images.pinned", "Image pinned to a version or digest", "medium",
         "Use an explicit version tag, better a digest (`image: name:1.2.3@sha256:...`)."),
    Rule("service.healthcheck", "Service has a healthcheck", "medium",
         "Add a `healthcheck:` that exercises the service (not only that the process runs).", "5.26"),
    Rule("service.restart_policy", "Service has a restart policy", "low",
         "Set `restart: unless-stopped` (or `on-failure`, or deploy.restart_policy)."),
)}


@dataclass
class Verdict:
    """A rule's judgement of one target, before it becomes a record."""

    status: str
    expected: str
    actual: str
    evidence: dict[str, Any]
    severity: str | None = None  # None: the rule's default


def make_record(rule_id: str, target: str, v: Verdict, *, phase: str, command: str = "",
                severity_for: Callable[[str, str], str] | None = None) -> CheckRecord:
    """A check record of rule ``rule_id`` (title, default severity, remediation, CIS id from RULES)."""
    rule = RULES[rule_id]
    evidence = dict(v.evidence)
    if rule.cis:
        evidence["cis"] = rule.cis
    severity = v.severity or rule.severity
    if severity_for:
        severity = severity_for(rule_id, severity)
    c = Check(rule_id, rule.title, phase=phase, severity=severity, command=command, remediation=rule.remediation)
    return c.record(target, v.status, expected=v.expected, actual=v.actual, evidence=evidence)


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
    # secret target path -> secret name, as the compose model gives them to the service
    secret_targets: dict[str, str] = field(default_factory=dict)
    # command, entrypoint and healthcheck test, joined: where a secret path may be referenced
    command_text: str = ""

    @classmethod
    def from_compose(cls, name: str, spec: Mapping[str, Any]) -> "ServiceFacts":
        limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        env = {k: ("" if v is None else str(v)) for k, v in (spec.get("environment") or {}).items()}
        ports = [{"host_ip": p.get("host_ip") or "", "host_port": str(p.get("published") or ""),
                  "container_port": str(p.get("target") or ""), "protocol": p.get("protocol") or "tcp"}
                 for p in spec.get("ports") or [] if p.get("published")]
        hc = (spec.get("healthcheck") or {}).get("test") or []
        text = [*_as_list(spec.get("command")), *_as_list(spec.get("entrypoint")), *_as_list(hc)]
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
            secret_targets=secret_targets(spec), command_text=" ".join(text),
        )

    @classmethod
    def from_container(cls, view: Any, spec: Mapping[str, Any] | None = None) -> "ServiceFacts":
        """From a :class:`~runbook_lib.engine.ContainerView`; ``spec`` (the service in the compose model)
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
        )


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


def host_file_state(path: Path, who: tuple[int, int] | None = None, dac: bool = True) -> FileState:
    """A host file (a compose file secret): Compose bind-mounts it, so the container sees this mode and owner."""
    try:
        st = path.stat()
    except OSError:
        return FileState(str(path), exists=False)
    mode = stat.S_IMODE(st.st_mode)
    return FileState(str(path), True, "file" if stat.S_ISREG(st.st_mode) else "other", st.st_size, mode,
                     st.st_uid, st.st_gid, can_read(mode, st.st_uid, st.st_gid, who, dac_override=dac))


# ----------------------------------------------------------------------------------------------------
# the secret rules (shared by lint and phase 2)
# ----------------------------------------------------------------------------------------------------

_BOOLISH = {"true", "false", "yes", "no", "on", "off", "0", "1", "enabled", "disabled", "none", "null"}
_URL_PASSWORD_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@", re.IGNORECASE)


def is_pointer(value: str, facts: ServiceFacts, security: Security) -> bool:
    """A value that names where a secret is (a mounted secret's path, or any path under the secrets
    directory) is not the secret itself."""
    v = value.strip()
    return v in facts.secret_targets or v.startswith(security.secrets_dir.rstrip("/") + "/")


def leaked_secret(value: str, secret_values: Mapping[str, str]) -> str | None:
    """The name of the known secret ``value`` holds or contains, if any."""
    v = value.strip()
    if not v:
        return None
    if v in secret_values:
        return secret_values[v]
    for known, name in secret_values.items():
        if len(known) >= MIN_SECRET_LEN and known in v:
            return name
    return None


def judge_environment(facts: ServiceFacts, security: Security, secret_values: Mapping[str, str]) -> Verdict:
    """secrets.no_plaintext_env: FAIL when a variable whose NAME looks like a credential holds a literal
    value, when ANY variable holds (or contains) the value of a known secret, or when a URL carries an
    embedded password. Not plaintext: empty values, booleans, ``*_FILE`` variables and values that are
    paths to a mounted secret (or under the secrets directory). ``security.plaintext_allow`` silences
    name-based findings only: a known secret's value is a leak whatever the variable is called."""
    findings, pointers, allowed = [], [], []
    for name, value in sorted(facts.environment.items()):
        value = value or ""
        leaked = leaked_secret(value, secret_values)
        if leaked:
            findings.append({"variable": name, "reason": f"holds the value of secret {leaked}",
                             "value": marker(value.strip())})
            continue
        if not value.strip() or value.strip().lower() in _BOOLISH:
            continue
        if name.upper().endswith("_FILE") or is_pointer(value, facts, security):
            pointers.append(name)
            continue
        credential_name = security.looks_like_credential(name)
        url_password = _URL_PASSWORD_RE.search(value)
        if (credential_name or url_password) and security.allowed(name):
            allowed.append(name)
            continue
        if credential_name:
            findings.append({"variable": name, "reason": "credential name with a literal value",
                             "value": marker(value.strip())})
        elif url_password:
            findings.append({"variable": name, "reason": "URL with an embedded password",
                             "value": marker(url_password.group(1))})
    ev = {"source": facts.source, "variables": len(facts.environment), "pointers": pointers,
          "allow_listed": allowed, "known_secret_values": len(secret_values)}
    if findings:
        ev["findings"] = findings
        return Verdict("FAIL", "no credential held in plaintext in the environment",
                       "; ".join(f"{f['variable']}: {f['reason']}" for f in findings), ev)
    return Verdict("PASS", "no credential held in plaintext in the environment",
                   f"{len(facts.environment)} variables, none holds a credential ({len(pointers)} point at files)", ev)


def judge_file_env(facts: ServiceFacts, security: Security,
                   lookup: Callable[[str], FileState | None]) -> Verdict:
    """secrets.file_env: every ``*_FILE`` variable points at an existing, non-empty file readable by the
    service's user. ``lookup(path)`` says what is known of the file: statically the host file of the
    secret mounted there (None when no secret mounts it), at run time the file inside the container.
    Statically, a path under the secrets directory that no secret mounts is a FAIL; a path elsewhere (a
    volume or the image may provide it) is a WARN until phase 2 reads it."""
    judged, problems, unknown = [], [], []
    for name, value in sorted(facts.environment.items()):
        if not name.upper().endswith("_FILE") or security.allowed(name):
            continue
        path = (value or "").strip()
        state = lookup(path) if path else None
        entry: dict[str, Any] = {"variable": name, "path": path}
        if not path:
            problems.append(f"{name} is empty")
        elif state is None:
            if path.startswith(security.secrets_dir.rstrip("/") + "/"):
                problems.append(f"{name}={path}: no secret is mounted there")
            else:
                unknown.append(f"{name}={path}")
                entry["known"] = False
        else:
            entry.update(state.evidence())
            if state.problem():
                problems.append(f"{name}={path}: {state.problem()}")
        judged.append(entry)
    ev = {"source": facts.source, "file_variables": judged}
    expected = "every *_FILE variable names an existing, non-empty, readable file"
    if problems:
        return Verdict("FAIL", expected, "; ".join(problems), ev)
    if unknown:
        return Verdict("WARN", expected, "not a secret mount, cannot be checked without the engine: " + ", ".join(unknown),
                       ev, severity="low")
    if not judged:
        return Verdict("PASS", expected, "no *_FILE variable", ev)
    return Verdict("PASS", expected, f"{len(judged)} *_FILE variables, each names a readable, non-empty file", ev)


def judge_unreferenced(facts: ServiceFacts) -> Verdict:
    """secrets.unreferenced: a secret mounted into the service but named by no variable and no command
    (entrypoint, command, healthcheck) is a WARN: dead credentials still widen exposure."""
    haystack = " ".join([*facts.environment.values(), facts.command_text])
    unused = sorted({name for target, name in facts.secret_targets.items() if target not in haystack})
    ev = {"source": facts.source, "mounted": facts.secret_targets, "unreferenced": unused}
    expected = "every mounted secret is referenced by a variable or the command"
    if not facts.secret_targets:
        return Verdict("PASS", expected, "no secret mounted", ev)
    if unused:
        return Verdict("WARN", expected, f"mounted but referenced by nothing: {', '.join(unused)}", ev)
    return Verdict("PASS", expected, f"all {len(facts.secret_targets)} mounted secrets are referenced", ev)


def judge_mounted(facts: ServiceFacts, states: Mapping[str, FileState]) -> Verdict:
    """secrets.mounted: each secret the model gives the service is present at its target, a non-empty
    regular file, readable by the service's user (where that can be known). ``states``: target -> file."""
    problems, files = [], []
    for target, name in sorted(facts.secret_targets.items()):
        st = states.get(target) or FileState(target, exists=False)
        files.append({"secret": name, **st.evidence()})
        if st.problem():
            problems.append(f"{name}: {st.path} {st.problem()}")
    ev = {"source": facts.source, "user": facts.user, "secrets": files}
    expected = "every secret present, non-empty and readable by the service's user"
    if problems:
        return Verdict("FAIL", expected, "; ".join(problems), ev)
    if not files:
        return Verdict("PASS", expected, "the service is given no secret", ev)
    return Verdict("PASS", expected, f"{len(files)} secrets present, non-empty, readable", ev)


def judge_secret_modes(facts: ServiceFacts, states: Mapping[str, FileState], security: Security) -> Verdict:
    """secrets.file_mode: a secret file writable by group or others is a FAIL; readable by others is a
    WARN, or a FAIL when ``security.readable_by_others`` is "fail"."""
    fails, warns, files = [], [], []
    for target, name in sorted(facts.secret_targets.items()):
        st = states.get(target)
        if st is None or not st.exists or not st.known:
            continue  # secrets.mounted reports it
        files.append({"secret": name, **st.evidence()})
        if st.mode & (stat.S_IWGRP | stat.S_IWOTH):
            fails.append(f"{name} is writable by {'others' if st.mode & stat.S_IWOTH else 'its group'} (mode {st.mode:04o})")
        elif st.mode & stat.S_IROTH:
            (fails if security.readable_by_others == "fail" else warns).append(
                f"{name} is readable by others (mode {st.mode:04o})")
    ev = {"source": facts.source, "secrets": files, "readable_by_others": security.readable_by_others}
    expected = "no secret writable by group or others; none readable by others"
    fails, warns = list(dict.fromkeys(fails)), list(dict.fromkeys(warns))
    if fails:
        return Verdict("FAIL", expected, "; ".join(fails + warns), ev)
    if warns:
        return Verdict("WARN", expected, "; ".join(warns), ev, severity="medium")
    if not files:
        return Verdict("PASS", expected, "no secret file to judge", ev)
    return Verdict("PASS", expected, ", ".join(f"{f['secret']} {f['mode']}" for f in files), ev)


# ----------------------------------------------------------------------------------------------------
# the hardening rules (shared by lint and phase 2)
# ----------------------------------------------------------------------------------------------------

DANGEROUS_CAPS = {"ALL", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "NET_ADMIN", "DAC_READ_SEARCH", "SYS_RAWIO",
                  "BPF", "PERFMON"}
_SOCKET_DIRS = {"/var/run", "/run", "/var/run/", "/run/"}


def _flag(ok: bool, expected: str, good: str, bad: str, ev: dict, severity: str | None = None) -> Verdict:
    return Verdict("PASS", expected, good, ev) if ok else Verdict("FAIL", expected, bad, ev, severity)


def judge_hardening(facts: ServiceFacts, security: Security) -> dict[str, Verdict]:
    """Every hardening rule for one service: rule id -> verdict. ``facts.source`` says whether the
    facts are the compose model's (what will run) or the engine's (what runs)."""
    src = {"source": facts.source}
    out: dict[str, Verdict] = {}
    out["hardening.privileged"] = _flag(not facts.privileged, "not privileged", "not privileged",
                                        "privileged: full access to the host's devices and kernel",
                                        {**src, "privileged": facts.privileged})
    sock = [s for s in facts.bind_sources if s.rstrip("/").endswith("docker.sock") or s in _SOCKET_DIRS]
    out["hardening.docker_socket"] = _flag(not sock, "no Docker socket mounted", "no Docker socket mounted",
                                           f"mounts {', '.join(sock)}: root on the host",
                                           {**src, "bind_sources": facts.bind_sources})
    caps = sorted({c.upper().removeprefix("CAP_") for c in facts.cap_add})
    risky = sorted(set(caps) & DANGEROUS_CAPS)
    ev = {**src, "cap_add": caps, "cap_drop": sorted(facts.cap_drop)}
    if risky:
        out["hardening.capabilities"] = Verdict("FAIL", "no added capabilities", f"adds {', '.join(risky)}", ev, "high")
    elif caps:
        out["hardening.capabilities"] = Verdict("WARN", "no added capabilities", f"adds {', '.join(caps)}", ev)
    else:
        out["hardening.capabilities"] = Verdict("PASS", "no added capabilities",
                                                "none added" + (f"; drops {', '.join(facts.cap_drop)}" if facts.cap_drop else ""), ev)
    nnp = any(re.fullmatch(r"no-new-privileges([:=]true)?", o.strip(), re.IGNORECASE) for o in facts.security_opt)
    out["hardening.no_new_privileges"] = _flag(nnp, "no-new-privileges:true", "set", "not set: setuid binaries can raise privileges",
                                               {**src, "security_opt": facts.security_opt})
    out["hardening.read_only_rootfs"] = _flag(facts.read_only, "read-only root filesystem", "read-only",
                                              "the root filesystem is writable", {**src, "read_only": facts.read_only})
    out["hardening.memory_limit"] = _flag(facts.memory_limit > 0, "a memory limit", f"{facts.memory_limit // (1 << 20)} MiB",
                                          "no memory limit", {**src, "memory_bytes": facts.memory_limit})
    out["hardening.pids_limit"] = _flag(facts.pids_limit > 0, "a PIDs limit", str(facts.pids_limit), "no PIDs limit",
                                        {**src, "pids_limit": facts.pids_limit})
    for rule, mode, what in (("hardening.host_network", facts.network_mode, "network_mode"),
                             ("hardening.host_pid", facts.pid_mode, "pid"), ("hardening.host_ipc", facts.ipc_mode, "ipc")):
        out[rule] = _flag(mode != "host", f"{what} not host", f"{what}: {mode or 'default'}",
                          f"{what}: host (shares the host's namespace)", {**src, what: mode})
    out["hardening.published_ports"] = judge_ports(facts, security)
    out["hardening.non_root"] = judge_user(facts)
    return out


def judge_ports(facts: ServiceFacts, security: Security) -> Verdict:
    """hardening.published_ports: every published port is bound to an allowed interface. A port on any
    other interface ("" = every interface, 0.0.0.0) is a FAIL for a service the parameters mark internal
    and a WARN otherwise."""
    allowed = set(security.publish_interfaces)
    anywhere = bool(allowed & {"0.0.0.0", "::"})
    bad = [p for p in facts.ports if not anywhere and (p["host_ip"] or "0.0.0.0") not in allowed]
    internal = facts.service in security.internal_services
    ev = {"source": facts.source, "ports": facts.ports, "allowed_interfaces": sorted(allowed), "internal": internal}
    expected = f"ports published only on {', '.join(sorted(allowed))}" + ("; internal service" if internal else "")
    if bad:
        text = ", ".join(f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['protocol']}" for p in bad)
        if internal:
            return Verdict("FAIL", expected, f"internal service published on {text}", ev)
        return Verdict("WARN", expected, f"published on {text}", ev, severity="medium")
    if not facts.ports:
        return Verdict("PASS", expected, "publishes no port", ev)
    return Verdict("PASS", expected, ", ".join(f"{p['host_ip']}:{p['host_port']}" for p in facts.ports), ev)


def judge_user(facts: ServiceFacts) -> Verdict:
    """hardening.non_root: the service runs as a non-root user. Statically, no ``user:`` leaves it to the
    image (WARN: phase 2 sees the real user)."""
    ev = {"source": facts.source, "user": facts.user}
    if facts.user is None:
        return Verdict("WARN", "a non-root user", "no `user:`: the image decides (root unless its USER says otherwise)",
                       ev, severity="low")
    name = facts.user.split(":")[0]
    if name in ("", "0", "root"):
        return Verdict("FAIL", "a non-root user", f"runs as root ({facts.user or 'image default'})", ev)
    return Verdict("PASS", "a non-root user", f"runs as {facts.user}", ev)


# ----------------------------------------------------------------------------------------------------
# lint-only rules: the compose model as a whole
# ----------------------------------------------------------------------------------------------------

def judge_image(spec: Mapping[str, Any]) -> Verdict:
    """images.pinned: an image reference with an explicit tag other than ``latest``, or a digest."""
    image = spec.get("image") or ""
    ev = {"image": image, "build": bool(spec.get("build"))}
    expected = "an explicit version tag or a digest"
    if not image:
        return Verdict("PASS", expected, "built from source (no image reference)", ev)
    if "@sha256:" in image:
        return Verdict("PASS", expected, "pinned by digest", ev)
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag or tag == "latest":
        return Verdict("FAIL", expected, f"{image}: {'no tag (latest)' if not tag else 'latest'}", ev)
    return Verdict("PASS", expected, f"tag {tag}", ev)


def judge_healthcheck(spec: Mapping[str, Any]) -> Verdict:
    hc = spec.get("healthcheck") or {}
    ev = {"healthcheck": hc}
    if not hc or hc.get("disable") or (hc.get("test") or [None])[0] == "NONE":
        return Verdict("WARN", "a healthcheck", "no healthcheck in the compose file (the image's, if any, applies)", ev)
    return Verdict("PASS", "a healthcheck", " ".join(_as_list(hc.get("test")))[:120], ev)


def judge_restart(spec: Mapping[str, Any]) -> Verdict:
    restart = spec.get("restart") or ((spec.get("deploy") or {}).get("restart_policy") or {}).get("condition")
    ev = {"restart": restart}
    if not restart or restart == "no":
        return Verdict("WARN", "a restart policy", "no restart policy: a crash leaves the service down", ev)
    return Verdict("PASS", "a restart policy", str(restart), ev)


def declared_secrets(files: Iterable[Path]) -> dict[str, Path]:
    """Top-level secret names declared in the raw compose files (name -> first file declaring it).
    Needed only because ``compose config`` drops unused secrets from the model it prints."""
    out: dict[str, Path] = {}
    for f in files:
        try:
            data = yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for name in (data.get("secrets") or {}) if isinstance(data, dict) else {}:
            out.setdefault(str(name), Path(f))
    return out


def host_secrets(model: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Path]]:
    """The model's file secrets readable on the host: (value -> secret name, secret name -> path)."""
    values, paths = {}, {}
    for name, spec in (model.get("secrets") or {}).items():
        if spec.get("file"):
            paths[name] = Path(spec["file"])
            try:
                v = paths[name].read_text(encoding="utf-8", errors="surrogateescape").strip()
            except OSError:
                continue
            if v:
                values.setdefault(v, name)
    return values, paths


def lint_model(model: Mapping[str, Any], *, security: Security | None = None,
               secret_values: Mapping[str, str] | None = None, declared: Iterable[str] = (),
               phase: str = LINT_PHASE, command: str = "",
               severity_for: Callable[[str, str], str] | None = None) -> list[CheckRecord]:
    """Every static rule over a resolved compose model. ``secret_values`` (value -> name) lets the
    plaintext rule find a secret copied under an innocent name; ``declared``: the secret names the raw
    files declare (see :func:`declared_secrets`)."""
    security = security or Security()
    host_values, secret_paths = host_secrets(model)
    if secret_values is None:
        secret_values = host_values
    top = model.get("secrets") or {}
    out: list[CheckRecord] = []

    def rec(rule: str, target: str, v: Verdict) -> None:
        out.append(make_record(rule, target, v, phase=phase, command=command, severity_for=severity_for))

    used: set[str] = set()
    for name, spec in sorted((model.get("services") or {}).items()):
        facts = ServiceFacts.from_compose(name, spec)
        who = parse_user(facts.user) if facts.user is not None else None
        dac = dac_override(facts)
        sources = [s["source"] for s in spec.get("secrets") or []]
        used.update(sources)
        states = {t: host_file_state(secret_paths[n], who, dac) for t, n in facts.secret_targets.items() if n in secret_paths}
        for t, n in facts.secret_targets.items():
            if n in top and n not in secret_paths:  # external or environment secret: nothing to stat here
                states[t] = FileState(t, exists=True, known=False)
        undeclared = sorted({s for s in sources if s not in top})
        rec("secrets.undeclared", name, Verdict(
            "FAIL" if undeclared else "PASS", "every secret the service uses is declared",
            f"undeclared: {', '.join(undeclared)}" if undeclared else f"{len(set(sources))} secrets, all declared",
            {"secrets": sources, "declared": sorted(top)}))
        dupes = sorted({s for s in sources if sources.count(s) > 1})
        rec("secrets.duplicate", name, Verdict(
            "FAIL" if dupes else "PASS", "each secret given once",
            f"given more than once: {', '.join(dupes)}" if dupes else "no secret given twice",
            {"targets": facts.secret_targets}))
        rec("secrets.mounted", name, judge_mounted(facts, states))
        rec("secrets.file_mode", name, judge_secret_modes(facts, states, security))
        rec("secrets.file_env", name, judge_file_env(facts, security, states.get))
        rec("secrets.unreferenced", name, judge_unreferenced(facts))
        rec("secrets.no_plaintext_env", name, judge_environment(facts, security, secret_values))
        for rule, v in judge_hardening(facts, security).items():
            rec(rule, name, v)
        rec("images.pinned", name, judge_image(spec))
        rec("service.healthcheck", name, judge_healthcheck(spec))
        rec("service.restart_policy", name, judge_restart(spec))
    for name in sorted(set(declared) - used):
        rec("secrets.declared_unused", name, Verdict("WARN", "used by a service", "declared but used by no service",
                                                     {"declared": True, "used_by": []}))
    for name, spec in sorted(top.items()):
        if spec.get("external"):
            rec("secrets.external", name, Verdict("FAIL", "a file or environment secret",
                                                  "external: true needs Swarm; `docker compose up` cannot provide it",
                                                  {"secret": name, "external": True}))
    return out


# ----------------------------------------------------------------------------------------------------
# `runbook lint`
# ----------------------------------------------------------------------------------------------------

@dataclass
class LintResult:
    files: list[Path]
    records: list[CheckRecord]
    compose_problem: str = ""

    @property
    def failed(self) -> bool:
        return any(r.problem for r in self.records)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def resolve(compose: Compose) -> tuple[dict[str, Any], str]:
    """The resolved model, and Compose's consistency complaint if it has one. Compose refuses a model
    that parses but is inconsistent (a service using an undeclared secret...); lint then asks Compose
    for the same model without its consistency check, so the rules can name the problem. Files that do
    not parse or interpolate still raise ComposeConfigError (exit 2)."""
    try:
        return compose.config(), ""
    except ComposeConfigError as exc:
        first = exc
    try:
        proc = compose.run("config", "--format", "json", "--no-consistency", timeout=60)
        model = json.loads(proc.stdout) if proc.stdout.strip() else None
    except (ComposeError, json.JSONDecodeError):
        model = None
    if not model:
        raise first
    return model, (first.stderr.strip() or str(first))


def lint_files(files: Sequence[str | Path], *, env_files: Sequence[str | Path] = (),
               params: Params | None = None) -> LintResult:
    """Resolve compose files with Compose and run every static rule. Secret values read from the
    host's secret files are redacted from every record. Raises InputError for files that do not resolve."""
    paths = [Path(f).resolve() for f in files]
    if not paths:
        raise InputError("runbook lint: give at least one compose file (or --params with compose_files)")
    compose = Compose(paths, env_files=[Path(e) for e in env_files],
                      project=params.project if params else None)
    model, problem = resolve(compose)
    values, _ = host_secrets(model)
    records = lint_model(model, security=params.security if params else None, secret_values=values,
                         declared=declared_secrets(paths), command="runbook lint " + " ".join(map(str, paths)),
                         severity_for=params.severity_for if params else None)
    if problem:
        c = Check("compose.consistency", "Compose accepts the project", phase=LINT_PHASE, severity="high",
                  command=compose.display("config"), remediation="Fix what Compose reports.")
        records.insert(0, c.record("compose", "FAIL", expected="a consistent compose project",
                                   actual=problem.splitlines()[-1], evidence={"stderr": problem}))
    redactor = Redactor(values)
    records = [CheckRecord.from_dict(redactor.scrub(r.to_dict())) for r in records]
    return LintResult(paths, records, problem)


# -- output ------------------------------------------------------------------------------------------

def format_table(result: LintResult) -> str:
    """Findings (everything not PASS) as an aligned table, then the counts."""
    rows = [r for r in result.records if r.status != "PASS"]
    order = {"ERROR": 0, "FAIL": 1, "WARN": 2}
    rows.sort(key=lambda r: (order.get(r.status, 3), r.target, r.id))
    lines = []
    if rows:
        w_id = max(len(r.id) for r in rows)
        w_t = max(len(r.target) for r in rows)
        lines.append(f"{'STATUS':6}  {'SEVERITY':8}  {'CHECK':{w_id}}  {'TARGET':{w_t}}  FINDING")
        for r in rows:
            cis = f" [CIS {r.evidence['cis']}]" if r.evidence.get("cis") else ""
            lines.append(f"{r.status:6}  {r.severity:8}  {r.id:{w_id}}  {r.target:{w_t}}  {r.actual}{cis}")
    c = counts(result.records)
    lines.append(", ".join(f"{n} {s}" for s, n in c.items() if n) + f" ({len(result.records)} checks over "
                 f"{', '.join(p.name for p in result.files)})")
    return "\n".join(lines)


def format_json(result: LintResult) -> str:
    return json.dumps({"schema": 1, "files": [str(p) for p in result.files], "counts": counts(result.records),
                       "exit_code": result.exit_code, "records": [r.to_dict() for r in result.records]},
                      indent=2, default=str)


_SARIF_LEVEL = {"FAIL": "error", "ERROR": "error", "WARN": "warning"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def _locate(files: Sequence[Path], section: str, name: str) -> tuple[Path, int | None]:
    """The file and line where ``name`` is defined under the top-level ``section`` (services, secrets)."""
    key = re.compile(rf"^\s+[\"']?{re.escape(name)}[\"']?\s*:")
    for f in reversed(files):  # the last file that mentions it is the one that decides
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        inside = False
        for i, line in enumerate(lines, 1):
            if re.match(rf"^{section}\s*:", line):
                inside = True
            elif inside and re.match(r"^\S", line):
                inside = False
            elif inside and key.match(line):
                return f, i
    return files[0], None


def format_sarif(result: LintResult) -> str:
    """SARIF 2.1.0: one result per finding (not PASS), located at the service's or secret's definition."""
    rule_ids = sorted({r.id for r in result.records})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    cwd = Path.cwd()
    rules = []
    for rid in rule_ids:
        rule = RULES.get(rid)
        title = rule.title if rule else rid
        props: dict[str, Any] = {"tags": ["security"] + ([f"CIS-{rule.cis}"] if rule and rule.cis else [])}
        if rule:
            props["security-severity"] = _SECURITY_SEVERITY[rule.severity]
        rules.append({"id": rid, "name": rid.replace(".", "_"), "shortDescription": {"text": title},
                      "help": {"text": rule.remediation if rule else title},
                      "defaultConfiguration": {"level": "error" if (rule and rule.severity in ("critical", "high")) else "warning"},
                      "properties": props})
    results = []
    for r in result.records:
        if r.status not in _SARIF_LEVEL:
            continue
        section = "secrets" if r.id in ("secrets.declared_unused", "secrets.external") else "services"
        f, line = _locate(result.files, section, r.target)
        try:
            uri = f.relative_to(cwd).as_posix()
        except ValueError:
            uri = f.as_uri()
        loc: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if line:
            loc["region"] = {"startLine": line}
        results.append({
            "ruleId": r.id, "ruleIndex": index[r.id], "level": _SARIF_LEVEL[r.status],
            "message": {"text": f"{r.target}: {r.actual}" + (f" (remediation: {r.remediation})" if r.remediation else "")},
            "locations": [{"physicalLocation": loc}],
            "partialFingerprints": {"runbookCheck/v1": f"{r.id}@{r.target}"},
            "properties": {"target": r.target, "severity": r.severity, "status": r.status,
                           **({"cis": r.evidence["cis"]} if r.evidence.get("cis") else {})},
        })
    from . import __version__
    sarif = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
             "runs": [{"tool": {"driver": {"name": "runbook lint", "version": __version__, "rules": rules}},
                       "results": results, "columnKind": "unicodeCodePoints"}]}
    return json.dumps(sarif, indent=2)


FORMATTERS = {"table": format_table, "json": format_json, "sarif": format_sarif}
