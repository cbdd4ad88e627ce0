"""The lint-only rules (the compose model as a whole) and :func:`lint_model`, every static rule over a
resolved model: the per-service rules here and in :mod:`.judges`, the project's secrets'
(:mod:`.project_secrets`) and the shared volumes' (:mod:`.confinement`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from runbook_lib.params.defaults import default_production, default_security
from runbook_lib.results.records import CheckRecord, plural
from runbook_lib.results.redact import weakness
from runbook_lib.model.facts import FileState, ServiceFacts, as_list, dac_override, host_file_state, parse_user
from runbook_lib.lint.judges import (judge_args, judge_environment, judge_file_env, judge_hardening, judge_mounted,
                                     judge_secret_modes, judge_unreferenced)
from runbook_lib.lint.confinement import judge_shared_volumes
from runbook_lib.lint.origin import Origins, fold_plaintext
from runbook_lib.lint.project_secrets import host_secrets, identifier_secrets, project_names, secret_verdicts
from runbook_lib.lint.undeclared import fold_undeclared, missing_lookup, not_judged, without
from runbook_lib.model.restart import model_restart, policy_accepted
from runbook_lib.lint.rules import LINT_PHASE, RULES, Verdict, make_record
from runbook_lib.lint.source import Source
from runbook_lib.lint.swarm import HARDENING_KEYS, IGNORED, REJECTED, dropped_keys, swarm_spec, swarm_verdicts

if TYPE_CHECKING:  # lint without --params reads the defaults (params/defaults.py), never pydantic's models
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
    return Verdict("PASS", "a healthcheck", " ".join(as_list(hc.get("test")))[:120], ev)


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
