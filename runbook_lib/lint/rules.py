"""The lint rule catalogue: every rule id `runbook lint` and phase 2 emit, with its title, default
severity, remediation and CIS Docker Benchmark id; and the verdict a rule returns before it becomes a record."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from runbook_lib.results.records import CheckRecord, utcnow

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
    # what `runbook lint` reads to judge it: "model" (Compose's resolved model), "source" (the YAML as
    # written: duplicates, line numbers) or "host" (files on the host: secret files, git)
    reads: str = "model"
    # the dedicated compose scanners that have this rule too: "compose-lint" (0.36.2),
    # "KICS" (its docker-compose queries), "semgrep" (its docker-compose rules)
    anchors: tuple[str, ...] = ()
    # the service keys a finding points at (SARIF line): the first one the source YAML has, else the service
    keys: tuple[str, ...] = ()


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("secrets.mounted", "Secrets present, readable and non-empty at their target", "critical",
         "Declare the secret, give it a non-empty regular file (at most 1 MiB), and make it readable by the "
         "container's user (owner = the container uid, mode 0400).", reads="host"),
    Rule("secrets.file_mode", "Secret files not writable (or readable) by others", "high",
         "chmod 0400 the secret file (Compose bind-mounts it with the host file's mode) and chown it to the "
         "container's uid.", reads="host"),
    Rule("secrets.file_env", "*_FILE variables point at existing, non-empty, readable files", "high",
         "Point the *_FILE variable at the mounted secret (/run/secrets/<name>) and mount that secret."),
    Rule("secrets.unreferenced", "Every mounted secret is used", "low",
         "Remove the secret from the service, or reference it (a *_FILE variable or the command)."),
    Rule("secrets.no_plaintext_env", "No plaintext credential in the environment", "critical",
         "Move the value into a secret file, mount it, and pass its path in a *_FILE variable; rotate the "
         "exposed credential. Known false positives go in security.plaintext_allow.", anchors=("compose-lint",),
         keys=("environment", "env_file")),
    Rule("secrets.not_in_config", "Secret values absent from container and image configuration", "critical",
         "Remove the value from the environment, command, labels or image build, and rotate it.", reads="engine"),
    Rule("secrets.not_in_logs", "Secret values absent from container logs", "high",
         "Stop the service logging the secret, rotate it, and purge the logs that hold it.", reads="engine"),
    Rule("secrets.declared_unused", "Declared secrets are used", "low",
         "Remove the unused secret declaration, or give it to the service that needs it.", reads="source"),
    Rule("secrets.undeclared", "Secrets used by a service are declared", "high",
         "Declare the secret under the top-level `secrets:` key."),
    Rule("secrets.duplicate", "A secret is given to a service once", "medium",
         "Mount each secret once per service; point every consumer at that one target.", reads="source"),
    Rule("secrets.external", "No external secrets outside Swarm", "high",
         "`external: true` secrets exist only in Swarm; with `docker compose up` use `file:` secrets (under "
         "`runbook lint --swarm` they are accepted, and phase 0 in swarm mode checks each exists)."),
    Rule("secrets.no_plaintext_args", "No plaintext credential in command, entrypoint, healthcheck or labels",
         "critical", "Read the credential from a mounted secret (a *_FILE variable, `--requirepass-file`-style "
         "flags, or `$(cat /run/secrets/NAME)` in a shell command); rotate the exposed credential."),
    Rule("secrets.weak_value", "Secret values long and random enough to identify", "high",
         "Generate the secret (e.g. `openssl rand -base64 32`), at least 8 characters and not a word, a "
         "default or the project's own name; rotate it.", reads="host"),
    Rule("secrets.committed_file", "Secret files not tracked by git", "critical",
         "`git rm --cached` the secret file, add it to .gitignore, and rotate the secret: it is in the "
         "history of every clone.", reads="host"),
    Rule("hardening.privileged", "Container not privileged", "critical",
         "Remove `privileged: true`; add only the capabilities the service needs.", "5.4",
         anchors=("compose-lint", "KICS", "semgrep"), keys=("privileged",)),
    Rule("hardening.docker_socket", "Docker socket not mounted", "critical",
         "Remove the docker.sock mount: it gives root on the host. Use a socket proxy with a narrow API.",
         "5.31", anchors=("compose-lint", "KICS", "semgrep"), keys=("volumes",)),
    Rule("hardening.capabilities", "No added Linux capabilities", "medium",
         "Drop `cap_add` or justify each capability; prefer `cap_drop: [ALL]` plus the minimum.", "5.3",
         anchors=("compose-lint",), keys=("cap_add",)),
    Rule("hardening.no_new_privileges", "no-new-privileges set", "medium",
         "Add `security_opt: [\"no-new-privileges:true\"]`.", "5.25",
         anchors=("compose-lint", "KICS", "semgrep"), keys=("security_opt",)),
    Rule("hardening.read_only_rootfs", "Read-only root filesystem", "low",
         "Set `read_only: true` and give writable paths a tmpfs or a volume.", "5.12",
         anchors=("compose-lint", "semgrep"), keys=("read_only",)),
    Rule("hardening.memory_limit", "Memory limit set", "medium",
         "Set `mem_limit` (or deploy.resources.limits.memory).", "5.10",
         anchors=("compose-lint", "KICS"), keys=("mem_limit", "deploy")),
    Rule("hardening.pids_limit", "PIDs limit set", "medium",
         "Set `pids_limit` (or deploy.resources.limits.pids).", "5.28",
         anchors=("KICS",), keys=("pids_limit", "deploy")),
    Rule("hardening.host_network", "Host network namespace not shared", "high",
         "Remove `network_mode: host`; publish the ports the service needs.", "5.9",
         anchors=("compose-lint", "KICS"), keys=("network_mode",)),
    Rule("hardening.host_pid", "Host PID namespace not shared", "high", "Remove `pid: host`.", "5.15",
         anchors=("compose-lint", "KICS"), keys=("pid",)),
    Rule("hardening.host_ipc", "Host IPC namespace not shared", "high", "Remove `ipc: host`.", "5.16",
         anchors=("compose-lint", "KICS"), keys=("ipc",)),
    Rule("hardening.published_ports", "Ports published only on allowed interfaces", "high",
         "Publish on an allowed interface (`127.0.0.1:PORT:PORT`) or not at all for internal services.",
         "5.13", anchors=("compose-lint", "KICS"), keys=("ports",)),
    Rule("hardening.admin_ports", "No admin or debug port published beyond loopback", "high",
         "Publish the admin/debug port on 127.0.0.1 only (or not at all); reach it through an SSH tunnel or "
         "an authenticated proxy.", "5.8", keys=("ports",)),
    Rule("hardening.tls", "No plain HTTP published beyond loopback", "medium",
         "Terminate TLS in front of the service, or publish it on 127.0.0.1 behind a TLS proxy; mark a "
         "service behind a terminator in security.tls_terminated (or label runbook.tls-terminated=true).",
         keys=("ports",)),
    Rule("hardening.non_root", "Runs as a non-root user", "medium",
         "Set `user: \"<uid>:<gid>\"` (a non-zero uid) or a USER in the image.", "4.1",
         anchors=("compose-lint",), keys=("user",)),
    Rule("hardening.cap_drop", "Default capabilities dropped (cap_drop: [ALL])", "medium",
         "Add `cap_drop: [ALL]` and add back (`cap_add`) only the few capabilities the service needs.", "5.3",
         anchors=("compose-lint", "KICS"), keys=("cap_drop", "cap_add")),
    Rule("hardening.cpu_limit", "CPU limit set", "medium",
         "Set `cpus` (or deploy.resources.limits.cpus).", "5.11", anchors=("compose-lint", "KICS"),
         keys=("cpus", "cpu_quota", "deploy")),
    Rule("hardening.privileged_ports", "No privileged host port (1-1023) published", "medium",
         "Publish on a host port above 1023 and put a reverse proxy on 80/443 if the service must be there.",
         "5.7", anchors=("KICS",), keys=("ports",)),
    Rule("hardening.sensitive_mounts", "No sensitive host directory mounted writable", "high",
         "Mount the host directory read-only (`:ro`), or mount only the file the service needs, or use a named "
         "volume.", "5.5", anchors=("compose-lint", "KICS"), keys=("volumes",)),
    Rule("hardening.seccomp", "Default seccomp profile not disabled", "high",
         "Remove `seccomp:unconfined` from security_opt; give a custom profile if a syscall is missing.", "5.21",
         anchors=("compose-lint", "KICS", "semgrep"), keys=("security_opt",)),
    Rule("hardening.apparmor", "AppArmor confinement not disabled", "high",
         "Remove `apparmor:unconfined` from security_opt (or name a profile).", "5.1",
         anchors=("compose-lint",), keys=("security_opt",)),
    Rule("hardening.selinux", "SELinux separation not disabled", "high",
         "Remove `label:disable` from security_opt (or give a label type).", "5.2",
         anchors=("compose-lint", "semgrep"), keys=("security_opt",)),
    Rule("hardening.host_userns", "Host user namespace not shared", "high",
         "Remove `userns_mode: host`.", "5.30", anchors=("KICS",), keys=("userns_mode",)),
    Rule("hardening.cgroup", "Default cgroup (no cgroup_parent, no cgroup: host)", "medium",
         "Remove `cgroup_parent` and `cgroup: host`; let the engine place the container.", "5.24",
         anchors=("KICS",), keys=("cgroup_parent", "cgroup")),
    Rule("hardening.mount_propagation", "No shared or slave mount propagation", "medium",
         "Remove `shared`/`rshared` and `slave`/`rslave` propagation (the default, rprivate, is right for nearly "
         "every service).",
         "5.19", anchors=("compose-lint", "KICS"), keys=("volumes",)),
    Rule("hardening.shared_volume", "A writable named volume or host directory written by one service", "medium",
         "Mount the volume or directory read-only (`:ro`) in every service but its writer, or give each service "
         "its own.",
         anchors=("KICS",)),
    Rule("images.pinned", "Image pinned to a version or digest", "medium",
         "Use an explicit version tag, better a digest (`image: name:1.2.3@sha256:...`).",
         anchors=("compose-lint",), keys=("image",)),
    Rule("service.healthcheck", "Service has a healthcheck", "medium",
         "Add a `healthcheck:` that exercises the service (not only that the process runs).", "5.26",
         anchors=("KICS",), keys=("healthcheck",)),
    Rule("lint.suppression_reason", "Every inline suppression gives its reason", "medium",
         'Write why beside the rule: # runbook-lint: ignore=RULE reason="..." (a reviewer reads it; SARIF keeps '
         "it as the suppression's justification). Without one the suppression is not applied.", reads="source"),
    Rule("lint.suppression_stale", "Every inline suppression still covers a finding", "low",
         "Remove the comment (the finding it hid is gone), or move it onto the line of the finding's key or "
         "service.", reads="source"),
    Rule("swarm.unsupported_keys", "Every key takes effect under docker stack deploy", "medium",
         "Move limits to deploy.resources, the restart policy to deploy.restart_policy, give every service an "
         "`image:` (build and push it first), and drop the keys Swarm ignores: a hardening key it ignores protects "
         "nothing (lint --swarm judges the service without it).", keys=("image", "build", "restart", "privileged",
         "security_opt", "devices", "mem_limit", "cpus", "pids_limit", "container_name", "depends_on")),
    Rule("swarm.replicas", "Replica count declared", "medium",
         "Set deploy.replicas (2 or more for a service that must stay up through an update or a node loss), or "
         "deploy.mode: global.", keys=("deploy",)),
    Rule("swarm.restart_policy", "deploy.restart_policy set, with a condition production.restart_policy accepts",
         "medium", "Set deploy.restart_policy: condition any (or on-failure), with max_attempts and a window; "
         "`restart:` is ignored by docker stack deploy.", keys=("deploy", "restart")),
    Rule("swarm.update_config", "Rolling updates pause or roll back on failure", "medium",
         "Set deploy.update_config: failure_action rollback (or pause), parallelism 1 or more, order start-first "
         "for a service that must stay up, and a monitor period.", keys=("deploy",)),
    Rule("swarm.rollback_config", "Rollbacks configured", "low",
         "Set deploy.rollback_config (parallelism, order, failure_action pause) when update_config rolls back.",
         keys=("deploy",)),
    Rule("service.restart_policy", "Restart policy set, and one production.restart_policy accepts", "low",
         "Set `restart:` to a policy that production.restart_policy accepts (default: always or "
         "unless-stopped); phase 3 (prod.restart_policy) judges the running container the same way.",
         anchors=("KICS",), keys=("restart", "deploy")),
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
    """A check record of rule ``rule_id`` (title, default severity, remediation, CIS id from RULES): what
    ``Check(...).record(...)`` makes, built directly (a lint makes one per rule and service: 35,000 for
    a thousand services)."""
    rule = RULES[rule_id]
    evidence = dict(v.evidence)
    if rule.cis:
        evidence["cis"] = rule.cis
    severity = v.severity or rule.severity
    if severity_for:
        severity = severity_for(rule_id, severity)
    return CheckRecord(id=rule_id, phase=phase, title=rule.title, target=target, status=v.status,
                       severity=severity, expected=v.expected, actual=v.actual, evidence=evidence,
                       command=command, remediation="" if v.status == "PASS" else rule.remediation,
                       started=_started(), duration_s=0.0)


_CLOCK: list = [None, ""]


def _started() -> str:
    """``utcnow()`` (ISO 8601, whole seconds), formatted once per second."""
    now = int(time.time())
    if _CLOCK[0] != now:
        _CLOCK[0], _CLOCK[1] = now, utcnow()
    return _CLOCK[1]
