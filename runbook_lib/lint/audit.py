"""The lint-only rules (the compose model as a whole) and :func:`lint_model`, every static rule over a
resolved model."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from runbook_lib.errors import InputError
from runbook_lib.params.defaults import default_production, default_security
from runbook_lib.results.records import CheckRecord, plural
from runbook_lib.results.redact import entropy_bits, weakness
from runbook_lib.model.facts import FileState, ServiceFacts, _as_list, dac_override, host_file_state, parse_user, read_secret_file
from runbook_lib.lint.judges import (judge_args, judge_environment, judge_file_env, judge_hardening, judge_mounted,
                     judge_secret_modes, judge_unreferenced)
from runbook_lib.lint.confinement import judge_shared_volumes
from runbook_lib.lint.origin import Origins, fold_plaintext
from runbook_lib.lint.undeclared import fold_undeclared, missing_lookup, not_judged, without
from runbook_lib.model.restart import model_restart, policy_accepted
from runbook_lib.lint.rules import LINT_PHASE, RULES, Verdict, make_record
from runbook_lib.lint.source import Source, read_source
from runbook_lib.lint.swarm import HARDENING_KEYS, IGNORED, REJECTED, dropped_keys, swarm_spec, swarm_verdicts

if TYPE_CHECKING:  # lint without --params reads the defaults (run/defaults.py), never pydantic's models
    from runbook_lib.params import Production, Security

# ----------------------------------------------------------------------------------------------------
# lint-only rules: the compose model as a whole
# ----------------------------------------------------------------------------------------------------

# Tags that move with every push or release: naming one is not pinning.
FLOATING_TAGS = frozenset({"latest", "master", "main", "develop", "development", "dev", "edge", "nightly",
                           "stable", "current", "canary", "trunk", "head", "unstable", "rolling"})
# Service names that say "runs once": migrations, init containers, certificate generators, seeders.
_JOB_NAME_RE = re.compile(r"init|migrat|setup|seed|bootstrap|provision|certs|(^|[_-])job($|[_-])", re.IGNORECASE)
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def one_shot_jobs(model: Mapping[str, Any]) -> dict[str, str]:
    """Services that run to completion by design, with why: another service waits for them to complete
    (``depends_on: {x: {condition: service_completed_successfully}}``), ``deploy.replicas: 0`` (started
    only by ``docker compose run``), or a ``restart:`` written as ``no`` or ``on-failure[:N]`` (a clean
    exit leaves it stopped: a migration, an init container) on a service that publishes no port, has no
    healthcheck of its own (which a long-running server has), and whose name says it is a job
    (:data:`_JOB_NAME_RE`). A healthcheck or an always-restart policy does not
    apply to them."""
    services = model.get("services") or {}
    out: dict[str, str] = {}
    for name, spec in sorted(services.items()):
        for dep, cond in (spec.get("depends_on") or {}).items():
            if isinstance(cond, Mapping) and cond.get("condition") == "service_completed_successfully":
                out.setdefault(dep, f"{name} waits for it to complete")
        if ((spec.get("deploy") or {}).get("replicas")) == 0:
            out.setdefault(name, "deploy.replicas is 0: it starts only with `docker compose run`")
    for name, spec in sorted(services.items()):
        restart = str(spec.get("restart") or "")
        hc = spec.get("healthcheck") or {}
        serves = spec.get("ports") or (hc.get("test") and not hc.get("disable"))
        if (restart == "no" or restart.startswith("on-failure")) and not serves and _JOB_NAME_RE.search(name):
            out.setdefault(name, f"restart: {restart} is written, it serves no port and its name says it is a job: "
                                 "a clean exit leaves it stopped, a job's policy")
    return out


def judge_image(spec: Mapping[str, Any]) -> Verdict:
    """images.pinned: an image reference with an explicit version tag (not a floating one such as
    ``latest`` or ``master``), or a digest. A digest is a PASS; a version tag without one is INFO (the
    registry can move a tag; the other compose scanners give it a low or informational finding). A service
    with ``build:`` is judged by its Dockerfile's FROM lines (:mod:`runbook_lib.lint.build`)."""
    image = spec.get("image") or ""
    if spec.get("build"):  # built here, never pulled: the Dockerfile's FROM lines are
        from runbook_lib.lint.build import judge_built_image

        return judge_built_image(spec, judge_image)
    ev = {"image": image, "build": False}
    expected = "an explicit version tag or a digest"
    if not image:
        return Verdict("PASS", expected, "built from source (no image reference)", ev)
    if "@sha256:" in image:
        return Verdict("PASS", expected, "pinned by digest", ev)
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag or tag == "latest":
        return Verdict("FAIL", expected, f"{image}: {'no tag (latest)' if not tag else 'latest'}", ev)
    if not _TAG_RE.match(tag):
        return Verdict("FAIL", expected, f"{image}: {tag!r} is not a valid tag (a template left unfilled?)", ev)
    if tag.lower() in FLOATING_TAGS:
        return Verdict("FAIL", expected, f"{image}: {tag} is a floating tag (it moves with each push)", ev)
    if spec.get("build"):  # built here: no registry digest to pin
        return Verdict("PASS", expected, f"tag {tag}", ev)
    # a tag is a name the registry can point elsewhere: only a digest is the image itself (a fact, not a fault)
    return Verdict("INFO", expected, f"tag {tag}, no digest: the registry can move the tag "
                   f"(pin {image}@sha256:... for the exact image)", {**ev, "digest": False}, severity="info")


def judge_healthcheck(spec: Mapping[str, Any], one_shot: str = "") -> Verdict:
    """service.healthcheck: the compose file defines a healthcheck (WARN otherwise: the image may).
    A one-shot job (``one_shot``: why it is one, see :func:`one_shot_jobs`) is INFO: it is not meant to
    stay up, so there is nothing for a healthcheck to watch."""
    hc = spec.get("healthcheck") or {}
    ev = {"healthcheck": hc}
    if one_shot:
        return Verdict("INFO", "a healthcheck", f"none needed: a one-shot job ({one_shot})", {**ev, "one_shot": one_shot})
    if not hc or hc.get("disable") or (hc.get("test") or [None])[0] == "NONE":
        return Verdict("WARN", "a healthcheck", "no healthcheck in the compose file (the image's, if any, applies)", ev)
    return Verdict("PASS", "a healthcheck", " ".join(_as_list(hc.get("test")))[:120], ev)


def judge_restart(spec: Mapping[str, Any], accepted: list[str] | None = None, one_shot: str = "") -> Verdict:
    """service.restart_policy: a restart policy is set (WARN when none), and it is one ``accepted``
    (``production.restart_policy``) allows (FAIL, high, otherwise): the static half of phase 3's
    prod.restart_policy, judged by the same :func:`~runbook_lib.model.restart.policy_accepted`."""
    accepted = list(accepted or default_production().restart_policy)
    policy = model_restart(spec)
    ev = {"restart": spec.get("restart"), "deploy_restart_policy": (spec.get("deploy") or {}).get("restart_policy"),
          "policy": policy, "accepted": accepted, "read": "production.restart_policy"}
    expected = " or ".join(accepted)
    if one_shot and (policy == "no" or policy.startswith("on-failure")):
        return Verdict("INFO", expected, f"{policy}: right for a one-shot job ({one_shot})",
                       {**ev, "one_shot": one_shot})
    if policy == "no":
        return Verdict("WARN", expected, "no restart policy: a crash leaves the service down", ev)
    if not policy_accepted(policy, accepted) and _bounded_retries(policy):
        return Verdict("WARN", expected, f"{policy}: bounded retries, as the CIS Docker Benchmark recommends, but "
                       "not a policy production.restart_policy accepts (phase 3 fails it: add it there if intended)",
                       ev, severity="low")
    if not policy_accepted(policy, accepted):
        return Verdict("FAIL", expected, f"{policy}: not a policy production.restart_policy accepts "
                       "(phase 3 fails it)", ev, severity="high")
    return Verdict("PASS", expected, policy, ev)


def _bounded_retries(policy: str) -> bool:
    """on-failure:N with 1 <= N <= 5: the CIS Docker Benchmark's restart policy."""
    n = policy.removeprefix("on-failure:")
    return policy.startswith("on-failure:") and n.isdigit() and 1 <= int(n) <= 5


def declared_secrets(files: Iterable[Path]) -> dict[str, Path]:
    """Top-level secret names declared in the raw compose files (name -> first file declaring it).
    Needed only because ``compose config`` drops unused secrets from the model it prints. Files that
    cannot be read safely are skipped (Compose reports them)."""
    out: dict[str, Path] = {}
    for f in files:
        try:
            for name in read_source(Path(f)).declared_secrets:
                out.setdefault(name, Path(f))
        except InputError:
            continue
    return out


def host_secrets(model: Mapping[str, Any], names: Iterable[str] = ()) -> tuple[dict[str, str], dict[str, Path]]:
    """The model's file secrets on the host: (value -> secret name, secret name -> path). Only regular
    files up to 1 MiB are read, and only values that could identify a secret are returned (see
    :func:`~runbook_lib.results.redact.weakness`; ``names``: the project's own names, never a secret's identity)."""
    values, paths = {}, {}
    names = list(names)
    for name, spec in (model.get("secrets") or {}).items():
        if spec.get("file"):
            paths[name] = Path(spec["file"])
            v, _ = read_secret_file(paths[name])
            v = (v or "").strip()
            if v and weakness(v, names) is None:
                values.setdefault(v, name)
    return values, paths


def project_names(model: Mapping[str, Any]) -> list[str]:
    """The names a project shows everywhere (project, services, images): a secret equal to one is weak."""
    services = model.get("services") or {}
    images = [str(s.get("image") or "").rsplit("/", 1)[-1].split(":")[0] for s in services.values()]
    return [str(model.get("name") or ""), *services, *images]


# A name (a secret's, or a *_FILE variable's without _FILE) that says the value is a user or database name.
_IDENTIFIER_RE = re.compile(r"(?:^|[_.-])(?:USER(?:_?NAME)?|LOGIN|DB|DATABASE(?:_?NAME)?|DB_?NAME)$", re.IGNORECASE)


def identifier_secrets(model: Mapping[str, Any], facts: Iterable[ServiceFacts],
                       security: Security) -> dict[str, list[str]]:
    """Secrets that hold a user or database name, not a credential (zabbix's ``POSTGRES_USER`` secret read
    by ``POSTGRES_USER_FILE``): secret name -> the names that say so. A ``*_FILE`` variable must point at
    it, and every name (the secret's, and each such variable's, _FILE removed) must look like an identifier
    and none like a credential."""
    readers: dict[str, list[str]] = {}
    for f in facts:
        for var, value in f.environment.items():
            secret = f.secret_targets.get((value or "").strip())
            if secret and var.upper().endswith("_FILE"):
                readers.setdefault(secret, []).append(var[:-5])
    out = {}
    for name in model.get("secrets") or {}:
        if not readers.get(name):  # the variable the image reads it by is what says what it holds
            continue
        said = list(dict.fromkeys([name.lstrip("."), *sorted(readers[name])]))
        if all(_IDENTIFIER_RE.search(n) and not security.looks_like_credential(n) for n in said):
            out[name] = said
    return out


def judge_weak_value(name: str, path: Path, names: Iterable[str], identifier: list[str] | None = None) -> Verdict | None:
    """secrets.weak_value: a file secret's value is long and random enough to identify it (and so to be
    matched in outputs and redacted). None when the file cannot be read (secrets.mounted says why). A
    secret that holds a user or database name (``identifier``: the names that say so, see
    :func:`identifier_secrets`) is INFO: a name is not a credential, its strength is not judged."""
    value, why = read_secret_file(path)
    if value is None or not value.strip():
        return None
    v = value.strip()
    reason = weakness(v, names)
    ev = {"secret": name, "file": str(path), "length": len(v), "entropy_bits": round(entropy_bits(v), 1)}
    expected = "at least 8 characters, 30 bits of entropy, not a common password nor the project's own name"
    if identifier:
        ev["identifier"] = identifier
        return Verdict("INFO", expected, f"holds a user or database name ({', '.join(identifier)}), not a "
                       "credential: its strength is not judged", ev, severity="info")
    if reason:
        ev["weakness"] = reason
        return Verdict("FAIL", expected, f"weak value: {reason}; not matched in outputs", ev)
    return Verdict("PASS", expected, f"{len(v)} characters, {ev['entropy_bits']} bits", ev)


# File names git would read as a pathspec pattern or magic, not as the name itself.
_PATHSPEC_MAGIC = ("*", "?", "[", "\\", ":")


def git_tracked(paths: Iterable[Path], outside: set[Path] | None = None) -> dict[Path, str | None]:
    """path -> the work tree that tracks it (``git ls-files``), None when untracked or not in a work tree;
    ``outside``, when given, receives the paths that are in no work tree (nothing can say whether they are
    committed). Raises FileNotFoundError when git is not installed.

    Two git runs per directory (its work tree, then which of its files the index has), not two per file;
    a name git would read as a pattern, a directory, or a name the index has only in another case (a
    case-insensitive file system) is asked alone with ``--error-unmatch``, as each file used to be."""
    git = shutil.which("git")
    if not git:
        raise FileNotFoundError("git")
    order = [Path(p).resolve() for p in paths]
    out: dict[Path, str | None] = {}
    by_dir: dict[Path, list[Path]] = {}
    for p in order:
        if not p.parent.is_dir():
            out[p] = None
        else:
            by_dir.setdefault(p.parent, []).append(p)
    for parent, files in by_dir.items():
        top = subprocess.run([git, "-C", str(parent), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=20)
        if top.returncode != 0:
            out.update((p, None) for p in files)
            if outside is not None:
                outside.update(files)
            continue
        tree = top.stdout.strip()
        plain = [p for p in dict.fromkeys(files) if not any(c in p.name for c in _PATHSPEC_MAGIC) and not p.is_dir()]
        listed: set[str] = set()
        if plain:
            ls = subprocess.run([git, "-C", str(parent), "ls-files", "-z", "--", *(p.name for p in plain)],
                                capture_output=True, text=True, timeout=20)
            if ls.returncode == 0:
                listed = set(ls.stdout.split("\0")) - {""}
            else:  # ask each file alone, as before
                plain = []
        folded = {n.casefold() for n in listed}
        for p in dict.fromkeys(files):
            if p in plain and (p.name in listed or p.name.casefold() not in folded):
                out[p] = tree if p.name in listed else None
                continue
            ls = subprocess.run([git, "-C", str(parent), "ls-files", "--error-unmatch", "--", p.name],
                                capture_output=True, text=True, timeout=20)
            out[p] = tree if ls.returncode == 0 else None
    return {p: out[p] for p in order}


def judge_committed(name: str, path: Path, tracked: Mapping[Path, str | None],
                    outside: Iterable[Path] = ()) -> Verdict:
    """secrets.committed_file: a file secret tracked by git is a committed credential. A file in no git
    work tree (``outside``) is SKIP: no repository here says whether it is committed elsewhere."""
    repo = tracked.get(Path(path).resolve())
    ev = {"secret": name, "file": str(path), "git_work_tree": repo, "read": "git ls-files"}
    if Path(path).resolve() in set(outside):
        return Verdict("SKIP", "the secret file is not tracked by git", f"{Path(path).parent} is in no git work "
                       "tree: whether the file is committed cannot be checked here (lint it in the project's "
                       "checkout)", ev)
    if repo:
        return Verdict("FAIL", "the secret file is not tracked by git", f"{path} is tracked by git in {repo}", ev)
    return Verdict("PASS", "the secret file is not tracked by git", "not tracked by git", ev)


def judge_duplicates(name: str, facts: ServiceFacts, source: Source | None) -> Verdict:
    """secrets.duplicate, read from the source YAML (``compose config`` drops a repeat before the model
    shows it): the same target listed twice for one service. One secret at two targets is fine."""
    dupes = source.duplicate_secrets(name) if source else []
    ev: dict[str, Any] = {"targets": facts.secret_targets, "read": "source YAML" if source else "model"}
    expected = "each secret target given once"
    if dupes:
        ev["duplicates"] = dupes
        ev["location"] = {"file": dupes[0]["file"], "line": dupes[0]["line"]}
        text = ", ".join(f"{d['secret']} at {d['target']} (" + (f"line {d['line']}" if d["line"] == d["first_line"]
                         else f"lines {d['first_line']} and {d['line']}") + ")" for d in dupes)
        return Verdict("FAIL", expected, f"given more than once: {text}", ev)
    n = len(source.secret_entries(name)) if source else len(facts.secret_targets)
    return Verdict("PASS", expected, f"{n} secret entries, no target given twice" if n else "the service is given no secret", ev)


def _secret_states(facts: ServiceFacts, top: Mapping[str, Any], paths: Mapping[str, Path],
                   spec: Mapping[str, Any] | None = None, swarm: bool = False) -> dict[str, FileState]:
    """target -> what the service sees there. Compose bind-mounts a file secret (the host file's mode and
    owner); a swarm copies its content into a file with the reference's mode, uid and gid (0444, 0:0 unless
    the stack file sets them), so under ``swarm`` those are judged, the host file giving only kind and size."""
    who = parse_user(facts.user) if facts.user is not None else None
    dac = dac_override(facts)
    states = {t: host_file_state(paths[n], who, dac) for t, n in facts.secret_targets.items() if n in paths}
    if swarm:
        from runbook_lib.engine.stack import SECRET_DEFAULTS, secret_mode
        from runbook_lib.model.facts import can_read

        refs = {t: s for s in (spec or {}).get("secrets") or [] if isinstance(s, Mapping)
                for t, n in facts.secret_targets.items() if n == s.get("source")
                and (s.get("target") or n) in (t, t.rsplit("/", 1)[-1])}
        for t, st in states.items():
            if not st.exists:
                continue
            ref = refs.get(t) or {}
            mode = secret_mode(ref.get("mode"))
            uid, gid = (int(str(ref.get(k, SECRET_DEFAULTS[k])) or 0) for k in ("uid", "gid"))
            st.mode, st.uid, st.gid = mode, uid, gid
            st.readable = can_read(mode, uid, gid, who, dac_override=dac)
    for t, n in facts.secret_targets.items():
        if n in top and n not in paths:  # external or environment secret: nothing to stat here
            states[t] = FileState(t, exists=True, known=False)
    return states


def service_verdicts(name: str, spec: Mapping[str, Any], *, top: Mapping[str, Any], paths: Mapping[str, Path],
                     security: Security, production: Production, secret_values: Mapping[str, str],
                     source: Source | None, facts: ServiceFacts | None = None,
                     one_shot: str = "", swarm: bool = False,
                     volumes: Mapping[str, Any] | None = None) -> Iterable[tuple[str, Verdict]]:
    """(rule id, verdict) of every per-service rule for one service of the model; ``one_shot``: why the
    service is a job that runs to completion ("" when it is not). ``swarm``: the service as `docker stack
    deploy` applies it (``facts`` built from :func:`~runbook_lib.lint.swarm.swarm_spec`); the swarm rules
    replace service.restart_policy, whose ``restart:`` Swarm ignores. ``volumes``: the model's top-level
    ``volumes:`` (a named volume binding a host path is judged as the bind mount it is)."""
    facts = facts or ServiceFacts.from_compose(name, swarm_spec(spec) if swarm else spec, top_volumes=volumes)
    states = _secret_states(facts, top, paths, spec, swarm)
    sources = [s["source"] for s in spec.get("secrets") or []]
    undeclared = sorted({s for s in sources if s not in top})
    yield "secrets.undeclared", Verdict(
        "FAIL" if undeclared else "PASS", "every secret the service uses is declared",
        f"undeclared: {', '.join(undeclared)}" if undeclared else
        (f"{plural(len(set(sources)), 'secret')}, all declared" if sources else "the service uses no secret"),
        {"secrets": sources, "declared": sorted(top), "undeclared": undeclared})
    yield "secrets.duplicate", judge_duplicates(name, facts, source)
    given, gone = without(facts, undeclared)  # an undeclared secret: secrets.undeclared's cause, said once
    mounted, modes = judge_mounted(given, states), judge_secret_modes(given, states, security)
    yield "secrets.mounted", not_judged(mounted, undeclared) if gone else mounted
    yield "secrets.file_mode", not_judged(modes, undeclared) if gone else modes
    yield "secrets.file_env", judge_file_env(facts, security, missing_lookup(states, gone) if gone else states.get)
    yield "secrets.unreferenced", judge_unreferenced(facts, security)
    yield "secrets.no_plaintext_env", judge_environment(facts, security, secret_values)
    yield "secrets.no_plaintext_args", judge_args(facts, security)
    yield from judge_hardening(facts, security).items()
    yield "images.pinned", judge_image(spec)
    yield "service.healthcheck", judge_healthcheck(spec, one_shot)
    accepted = production.restart_policy_overrides.get(name) or production.restart_policy
    if swarm:
        yield from swarm_verdicts(spec, list(accepted), one_shot)
    else:
        yield "service.restart_policy", judge_restart(spec, accepted, one_shot)


def note_dropped(rule: str, v: Verdict, spec: Mapping[str, Any]) -> None:
    """Under --swarm, a finding of a rule whose key `docker stack deploy` ignores or refuses says so: the
    file sets it, Swarm does not apply it (``Rule.keys`` names the keys a rule judges)."""
    if v.status in ("PASS", "INFO") or not rule.startswith(("hardening.", "secrets.")):
        return
    lost = [k for k in dropped_keys(spec) if k in RULES[rule].keys and k in HARDENING_KEYS]
    if lost:
        v.actual += "; " + "; ".join(f"the file sets {k}, which docker stack deploy "
                                     f"{'refuses' if k in REJECTED else 'ignores'}" for k in lost)
        v.evidence["swarm_dropped"] = {k: REJECTED.get(k) or IGNORED[k] for k in lost}


def secret_verdicts(model: Mapping[str, Any], paths: Mapping[str, Path], declared: Iterable[str],
                    used: set[str], swarm: bool = False,
                    identifiers: Mapping[str, list[str]] | None = None) -> Iterable[tuple[str, str, Verdict]]:
    """(rule id, secret name, verdict) of the rules judging the project's secrets themselves. ``swarm``:
    external secrets and configs are what a stack is expected to use: each is an INFO record saying it
    can only be checked against the swarm (phase 0 in swarm mode does), never a FAIL, never a PASS."""
    top = model.get("secrets") or {}
    for name in sorted(set(declared) - used):
        yield "secrets.declared_unused", name, Verdict("WARN", "used by a service", "declared but used by no service",
                                                       {"declared": True, "used_by": []})
    if swarm:
        for kind, objects in (("secret", top), ("config", model.get("configs") or {})):
            for name, spec in sorted(objects.items()):
                if spec.get("external"):
                    yield "secrets.external", name if kind == "secret" else f"config {name}", Verdict(
                        "INFO", f"an external {kind} that exists in the swarm",
                        f"external {kind} {spec.get('name') or name}: served by the swarm, not verifiable from the "
                        "file; phase 0 in swarm mode (preflight.swarm_objects) checks it exists, by name",
                        {kind: name, "name": spec.get("name") or name, "external": True, "swarm": True,
                         "checked": "declared external in the file; its existence is not checked by lint"},
                        severity="info")
    else:
        for name, spec in sorted(top.items()):
            if spec.get("external"):
                yield "secrets.external", name, Verdict(
                    "FAIL", "a file or environment secret", "external: true needs Swarm; `docker compose up` cannot "
                    "provide it", {"secret": name, "external": True})
    names = project_names(model)
    for name, path in sorted(paths.items()):
        v = judge_weak_value(name, path, names, (identifiers or {}).get(name))
        if v:
            yield "secrets.weak_value", name, v
    outside: set[Path] = set()
    try:
        tracked = git_tracked(paths.values(), outside)
    except (FileNotFoundError, OSError, subprocess.SubprocessError):
        tracked = None
    for name, path in sorted(paths.items()):
        if tracked is None:
            yield "secrets.committed_file", name, Verdict("SKIP", "the secret file is not tracked by git",
                                                          "git is not available", {"secret": name, "file": str(path)})
        elif Path(path).exists():
            yield "secrets.committed_file", name, judge_committed(name, path, tracked, outside)


def locate(v: Verdict, rule: str, service: str, source: Source) -> None:
    """Point a finding at the line of the key it judges (``Rule.keys``), when the source YAML has it."""
    keys = tuple(v.evidence.get("offending_keys") or ()) or RULES[rule].keys
    found = source.locate_key(service, keys) if keys and "location" not in v.evidence else None
    if found:
        v.evidence["location"] = {"file": str(found[0]), "line": found[1]}


def lint_model(model: Mapping[str, Any], *, security: Security | None = None,
               secret_values: Mapping[str, str] | None = None, declared: Iterable[str] = (),
               phase: str = LINT_PHASE, command: str = "",
               severity_for: Callable[[str, str], str] | None = None,
               production: Production | None = None, source: Source | None = None,
               swarm: bool = False, project_dir: str | Path = "", env_files: Iterable[Path] = ()) -> list[CheckRecord]:
    """Every static rule over a resolved compose model. ``secret_values`` (value -> name) lets the
    plaintext rule find a secret copied under an innocent name; ``declared``: the secret names the raw
    files declare (see :func:`declared_secrets`); ``source``: the files as written (duplicates, lines);
    ``production``: the restart policies phase 3 accepts. Each record of a service in a profile names it
    in ``evidence["profiles"]``. ``swarm``: judge the model as `docker stack deploy` applies it (the
    swarm rules, external secrets accepted; see :mod:`runbook_lib.lint.swarm`). ``project_dir``: the
    project's directory (Compose's: the first file's), whose own files no host-path rule takes for the
    host's; with ``source``, it and ``env_files`` (the --env-file files, else its .env) say where each
    plaintext value comes from (:mod:`runbook_lib.lint.origin`)."""
    security = security or default_security()
    production = production or default_production()
    names = project_names(model)
    host_values, paths = host_secrets(model, names)
    if secret_values is None:
        secret_values = host_values
    services = sorted((model.get("services") or {}).items())
    volumes = model.get("volumes") or {}
    every = [ServiceFacts.from_compose(name, swarm_spec(spec) if swarm else spec, top_volumes=volumes)
             for name, spec in services]
    for f in every:
        f.project_dir = str(project_dir or "")
    identifiers = identifier_secrets(model, every, security)
    # a user name found in another variable is no leak: only credentials are matched
    secret_values = {v: n for v, n in secret_values.items() if weakness(v, names) is None and n not in identifiers}
    top = model.get("secrets") or {}
    out: list[CheckRecord] = []

    def rec(rule: str, target: str, v: Verdict) -> None:
        out.append(make_record(rule, target, v, phase=phase, command=command, severity_for=severity_for))

    used: set[str] = set()
    jobs = one_shot_jobs(model)
    judged: list[tuple[str, str, Verdict]] = []
    for (name, spec), facts in zip(services, every):
        used.update(s["source"] for s in spec.get("secrets") or [])
        profiles = [str(p) for p in spec.get("profiles") or []]
        for rule, v in service_verdicts(name, spec, top=top, paths=paths, security=security, production=production,
                                        secret_values=secret_values, source=source, facts=facts,
                                        one_shot=jobs.get(name, ""), swarm=swarm):
            if swarm:
                note_dropped(rule, v, spec)
            if profiles:
                v.evidence["profiles"] = profiles
            judged.append((rule, name, v))
    fold_plaintext(judged, {f.service: f for f in every},
                   lambda: Origins([sf.path for sf in source.files], env_files, Path(project_dir))
                   if source and project_dir else None)
    fold_undeclared(judged, Path(project_dir) if project_dir else None)
    for rule, name, v in judged:
        if source is not None and v.status not in ("PASS", "INFO"):
            locate(v, rule, name, source)
        rec(rule, name, v)
    base = str(source.files[0].path.parent) if source is not None and source.files else ""
    for volume, v in judge_shared_volumes(every, base=base):
        rec("hardening.shared_volume", volume, v)
    for rule, name, v in secret_verdicts(model, paths, declared, used, swarm, identifiers):
        rec(rule, name, v)
    return out
