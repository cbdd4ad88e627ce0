"""The rules shared by `runbook lint` and phase 2: each judges a :class:`ServiceFacts`, whatever its source."""
from __future__ import annotations

import re
import stat
from typing import TYPE_CHECKING, Any, Callable, Mapping

from runbook_lib.results.redact import MIN_SECRET_LEN, identifying, marker
from runbook_lib.lint.confinement import judge_confinement
from runbook_lib.model.facts import FileState, ServiceFacts
from runbook_lib.lint.plaintext import BOOLISH, URL_PASSWORD_RE, embedded, findings as plain_findings, in_argv, in_document, in_value
from runbook_lib.lint.published import judge_admin_ports, judge_ports, judge_tls
from runbook_lib.lint.rules import Verdict

if TYPE_CHECKING:  # the rules only read it: `runbook lint` without --params never imports pydantic
    from runbook_lib.params import Security

# ----------------------------------------------------------------------------------------------------
# the secret rules (shared by lint and phase 2)
# ----------------------------------------------------------------------------------------------------

def is_pointer(value: str, facts: ServiceFacts, security: Security) -> bool:
    """A value that names where a secret is (a mounted secret's path, or any path under the secrets
    directory) is not the secret itself."""
    v = value.strip()
    return v in facts.secret_targets or v.startswith(security.secrets_dir.rstrip("/") + "/")


def leaked_secret(value: str, secret_values: Mapping[str, str]) -> str | None:
    """The name of the known secret ``value`` holds or contains, if any. Only secret values that could
    identify a secret count (:func:`~runbook_lib.results.redact.identifying`): "true" or a project's name is no leak."""
    v = value.strip()
    if not v:
        return None
    if v in secret_values and identifying(v):
        return secret_values[v]
    for known, name in secret_values.items():
        if len(known) >= MIN_SECRET_LEN and known in v and identifying(known):
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
        if not value.strip() or value.strip().lower() in BOOLISH:
            continue
        if name.upper().endswith("_FILE") or is_pointer(value, facts, security):
            pointers.append(name)
            continue
        credential_name = security.looks_like_credential(name)
        url_password = URL_PASSWORD_RE.search(value)
        if (credential_name or url_password) and security.allowed(name):
            allowed.append(name)
            continue
        if credential_name:
            findings.append({"variable": name, "reason": "credential name with a literal value",
                             "value": marker(value.strip())})
        elif url_password:
            findings.append({"variable": name, "reason": "URL with an embedded password",
                             "value": marker(url_password.group(1))})
        elif not security.allowed(name):
            doc = embedded(value)
            for where, literal in in_document(doc, security) if doc is not None else []:
                findings.append({"variable": name, "reason": f"credential in an embedded document at {where}",
                                 "value": marker(literal.strip())})
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
    volume or the image may provide it) is a WARN until phase 2 reads it. A variable pointing at a mounted
    secret whose file is missing or unreadable is INFO: secrets.mounted reports that file, once."""
    judged, problems, unknown, mounted = [], [], [], []
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
            if state.problem() and path in facts.secret_targets:  # secrets.mounted's (or undeclared's): said once
                mounted.append(f"{name}={path} (secret {facts.secret_targets[path]}: {state.problem()})")
                entry["reported_by"] = "secrets.mounted"
            elif state.problem():
                problems.append(f"{name}={path}: {state.problem()}")
        judged.append(entry)
    ev = {"source": facts.source, "file_variables": judged}
    expected = "every *_FILE variable names an existing, non-empty, readable file"
    if problems:
        return Verdict("FAIL", expected, "; ".join(problems), ev)
    if mounted:
        return Verdict("INFO", expected, "points at a secret whose file is reported on its own (secrets.mounted, or "
                       "secrets.undeclared when no compose file declares it): " + ", ".join(mounted), ev, severity="info")
    if unknown:
        return Verdict("WARN", expected, "not a secret mount, cannot be checked without the engine: " + ", ".join(unknown),
                       ev, severity="low")
    return _files_judged(facts, judged, expected, ev, "no *_FILE variable",
                         f"{len(judged)} *_FILE variables, each names a readable, non-empty file")


def judge_unreferenced(facts: ServiceFacts, security: Security | None = None) -> Verdict:
    """secrets.unreferenced: a secret mounted into the service but named by no variable and no command
    (entrypoint, command, healthcheck) is a WARN: dead credentials still widen exposure. A secret whose
    name matches ``security.secret_consumers`` (the image reads it by convention) is not: when it is the
    only reason, the record is INFO, saying "consumed by convention" and why, never silently PASS."""
    haystack = " ".join([*facts.environment.values(), facts.command_text])
    unused = sorted({name for target, name in facts.secret_targets.items() if target not in haystack})
    convention = []
    for name in unused:
        consumer = security.secret_consumer(name) if security else None
        if consumer:
            convention.append({"secret": name, "pattern": consumer.pattern, "reason": consumer.reason})
    unused = [n for n in unused if n not in {c["secret"] for c in convention}]
    ev: dict[str, Any] = {"source": facts.source, "mounted": facts.secret_targets, "unreferenced": unused}
    if convention:
        ev["consumed_by_convention"] = convention
    expected = "every mounted secret is referenced by a variable or the command"
    by_convention = "; ".join(f"{c['secret']} consumed by convention: {c['reason']}" for c in convention)
    if not facts.secret_targets:
        return Verdict("PASS", expected, "no secret mounted", ev)
    if unused:
        return Verdict("WARN", expected, f"mounted but referenced by nothing: {', '.join(unused)}"
                       + (f" ({by_convention})" if convention else ""), ev)
    if convention:
        return Verdict("INFO", expected, by_convention, ev, severity="info")
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
    return _files_judged(facts, files, expected, ev, "the service is given no secret",
                         f"{len(files)} secrets present, non-empty, readable")


def _files_judged(facts: ServiceFacts, files: list[dict[str, Any]], expected: str, ev: dict[str, Any],
                  none: str, ok: str) -> Verdict:
    """The verdict on files with no problem found: PASS ``none`` when there are none, PASS ``ok`` when
    each is readable by the service's user, else what :func:`_readability_unknown` says."""
    if not files:
        return Verdict("PASS", expected, none, ev)
    # a secret served by the swarm or the environment (known False) has no file here: nothing was seen of it
    elsewhere = [f.get("secret") or f.get("variable") or f.get("path") for f in files if f.get("known") is False]
    if elsewhere and len(elsewhere) == len(files):
        return Verdict("INFO", expected, f"not judged here: {', '.join(map(str, elsewhere))} "
                       f"{'is' if len(elsewhere) == 1 else 'are'} not a file on this host (an external or environment "
                       "secret: its file exists only in the container)", ev, severity="info")
    verdict = _readability_unknown(facts, files, expected, ev) or Verdict("PASS", expected, ok, ev)
    if elsewhere and verdict.status == "PASS":
        verdict.actual = (f"{len(files) - len(elsewhere)} of {len(files)} judged, no problem; not judged here (not a "
                          f"file on this host): {', '.join(map(str, elsewhere))}")
    return verdict


def _readability_unknown(facts: ServiceFacts, files: list[dict[str, Any]], expected: str,
                         ev: dict[str, Any]) -> Verdict | None:
    """When the files are fine but whether the user can read them is not known (its uid unresolved):
    at run time an ERROR naming the user, statically a PASS that says readability is judged in phase 2.
    None when readability is known for every file."""
    unknown = [f["path"] for f in files if f.get("exists") and f.get("readable_by_user") is None]
    if not unknown:
        return None
    if facts.source == "engine":
        return Verdict("ERROR", expected, f"could not check who can read {', '.join(unknown)}: user {facts.user!r} "
                                          "could not be resolved in the container's /etc/passwd",
                       {**ev, "user_resolved": False})
    return Verdict("PASS", expected, f"{len(files)} present and non-empty; readability by the service's user "
                                     "is judged in phase 2 (the user's uid is known only at run time)", ev)


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
    if not files and facts.secret_targets:  # none of its secrets could be looked at: never a PASS
        return Verdict("SKIP", expected, f"none of its {len(facts.secret_targets)} secret file(s) could be observed "
                                         "(secrets.mounted says why)", ev)
    if not files:
        return Verdict("PASS", expected, "no secret file to judge", ev)
    return Verdict("PASS", expected, ", ".join(f"{f['secret']} {f['mode']}" for f in files), ev)


# ----------------------------------------------------------------------------------------------------
# the hardening rules (shared by lint and phase 2)
# ----------------------------------------------------------------------------------------------------

DANGEROUS_CAPS = {"ALL", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "NET_ADMIN", "DAC_READ_SEARCH", "SYS_RAWIO",
                  "BPF", "PERFMON"}
_SOCKET_DIRS = {"/var/run", "/run", "/var/run/", "/run/"}
_NNP_RE = re.compile(r"no-new-privileges([:=]true)?", re.IGNORECASE)


def _flag(ok: bool, expected: str, good: str, bad: str, ev: dict, severity: str | None = None) -> Verdict:
    return Verdict("PASS", expected, good, ev) if ok else Verdict("FAIL", expected, bad, ev, severity)


def judge_hardening(facts: ServiceFacts, security: Security, who: tuple[int, int] | None = None,
                    why: str = "", processes: Any = None) -> dict[str, Verdict]:
    """Every hardening rule for one service: rule id -> verdict. ``facts.source`` says whether the
    facts are the compose model's (what will run) or the engine's (what runs); at run time ``who`` is
    the user's (uid, gid) from the container's /etc/passwd and ``processes`` what its processes run as
    (see :func:`judge_user`)."""
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
    nnp = any(_NNP_RE.fullmatch(o.strip()) for o in facts.security_opt)
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
    out["hardening.admin_ports"] = judge_admin_ports(facts)
    out["hardening.tls"] = judge_tls(facts, security)
    out["hardening.non_root"] = judge_user(facts, who, why, processes)
    out.update(judge_confinement(facts))
    return out


def judge_user(facts: ServiceFacts, who: tuple[int, int] | None = None, why: str = "",
               processes: Any = None) -> Verdict:
    """hardening.non_root: the service runs as a non-root user, judged by its uid. At run time (facts
    from the engine) of a running container, ``processes`` (a ProcessReading) is what is judged: the
    uids its processes run as (:func:`runbook_lib.lint.users.judge_running_user`). Without it (a stopped
    container) ``who`` is the (uid, gid) the configured user resolves to in the container's /etc/passwd:
    uid 0 under any name FAILs, an unresolved user is an ERROR (``why`` may say what went wrong).
    Statically, no ``user:`` leaves it to the image (WARN), a user name other than root is a WARN
    (its uid is known only in the image's /etc/passwd: phase 2 resolves it), uid 0 or root FAILs."""
    ev = {"source": facts.source, "user": facts.user}
    expected = "a non-root user (uid != 0)"
    if facts.source == "engine" and processes is not None and processes.running:
        from runbook_lib.lint.users import judge_running_user

        return judge_running_user(facts, who, processes)
    if facts.source == "engine":
        if processes is not None:  # not running: only the configured user can be judged
            ev["processes"] = f"none: {processes.error}; the configured user is judged"
        if who is None:
            return Verdict("ERROR", expected, f"could not check: user {facts.user!r} could not be resolved in the "
                                              f"container's /etc/passwd" + (f" ({why})" if why else ""), ev)
        ev.update(uid=who[0], gid=who[1])
        if who[0] == 0:
            return Verdict("FAIL", expected, f"runs as uid 0 (user {facts.user or 'image default'!r})", ev)
        return Verdict("PASS", expected, f"runs as uid {who[0]} (user {facts.user!r})", ev)
    if facts.user is None:
        return Verdict("WARN", expected, "no `user:`: the image decides (root unless its USER says otherwise)",
                       ev, severity="low")
    name = facts.user.split(":")[0]
    if name in ("", "0", "root"):
        return Verdict("FAIL", expected, f"runs as root ({facts.user or 'image default'})", ev)
    if not name.isdigit():
        return Verdict("WARN", expected, f"user {name!r} is a name: its uid is known only from the image's "
                                         "/etc/passwd (phase 2 resolves it)", ev, severity="low")
    return Verdict("PASS", expected, f"runs as uid {name}", ev)


# -- plaintext credentials outside the environment ---------------------------------------------------

def judge_args(facts: ServiceFacts, security: Security) -> Verdict:
    """secrets.no_plaintext_args: no credential in clear in the command, entrypoint, healthcheck test or
    labels: credential flags (``--requirepass x``), ``--user=name:password``, URLs with a password,
    NAME=value assignments and JSON/YAML documents holding a credential key. Labels are judged like
    variables: a credential-like name with a literal value. ``security.plaintext_allow`` applies to
    label names."""
    found: list[dict[str, str]] = []
    for where, argv in sorted(facts.argv.items()):
        found += plain_findings(where, in_argv(argv, security))
    for name, value in sorted(facts.labels.items()):
        if security.allowed(name):
            continue
        hits = in_value(value, security)
        if not hits and security.looks_like_credential(name.rsplit(".", 1)[-1].replace("-", "_")) \
                and value.strip() and value.strip().lower() not in BOOLISH and not value.strip().startswith("$"):
            hits = [("credential name with a literal value", value)]
        found += plain_findings(f"label {name}", hits)
    ev = {"source": facts.source, "searched": sorted(k for k, v in facts.argv.items() if v) + (["labels"] if facts.labels else [])}
    expected = "no credential in clear in command, entrypoint, healthcheck or labels"
    if found:
        ev["findings"] = found
        return Verdict("FAIL", expected, "; ".join(f"{f['where']}: {f['reason']}" for f in found), ev)
    n = sum(len(v) for v in facts.argv.values())
    return Verdict("PASS", expected, f"{n} arguments and {len(facts.labels)} labels, none holds a credential", ev)
