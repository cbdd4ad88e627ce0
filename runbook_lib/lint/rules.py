"""The lint rule catalogue: every rule id `runbook lint` and phase 2 emit, with its title, default
severity, remediation and CIS Docker Benchmark id; and the verdict a rule returns before it becomes a record."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..records import Check, CheckRecord

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
         "exposed credential. Known false positives go in security.plaintext_allow."),
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
         "`external: true` secrets exist only in Swarm; with `docker compose up` use `file:` secrets."),
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
    Rule("hardening.admin_ports", "No admin or debug port published beyond loopback", "high",
         "Publish the admin/debug port on 127.0.0.1 only (or not at all); reach it through an SSH tunnel or "
         "an authenticated proxy.", "5.8"),
    Rule("hardening.tls", "No plain HTTP published beyond loopback", "medium",
         "Terminate TLS in front of the service, or publish it on 127.0.0.1 behind a TLS proxy; mark a "
         "service behind a terminator in security.tls_terminated (or label runbook.tls-terminated=true)."),
    Rule("hardening.non_root", "Runs as a non-root user", "medium",
         "Set `user: \"<uid>:<gid>\"` (a non-zero uid) or a USER in the image.", "4.1"),
    Rule("images.pinned", "Image pinned to a version or digest", "medium",
         "Use an explicit version tag, better a digest (`image: name:1.2.3@sha256:...`)."),
    Rule("service.healthcheck", "Service has a healthcheck", "medium",
         "Add a `healthcheck:` that exercises the service (not only that the process runs).", "5.26"),
    Rule("service.restart_policy", "Restart policy set, and one production.restart_policy accepts", "low",
         "Set `restart:` to a policy that production.restart_policy accepts (default: always or "
         "unless-stopped); phase 3 (prod.restart_policy) judges the running container the same way."),
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

