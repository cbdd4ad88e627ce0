"""Phase 3, conformance: the running containers are what the compose files say (``prod.drift``), and no
container of the project runs outside them (``prod.orphans``). Drift compares two
:class:`~runbook_lib.model.facts.ServiceFacts` of each service, one built from the compose model and one
from ``docker inspect``, plus what only the engine knows (the image id a tag points at, the image's own
environment, the config-hash label)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from runbook_lib.engine import ContainerView
from runbook_lib.engine.containers import CONFIG_FILES_LABEL, CONFIG_HASH_LABEL
from runbook_lib.engine.pool import OncePerKey
from runbook_lib.errors import RunbookError
from runbook_lib.model.facts import ServiceFacts
from runbook_lib.phases.production import swarm_checks
from runbook_lib.phases.production.common import PHASE, each_container, mask_credential
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context

def _field(name: str, want: Any, have: Any) -> list[dict[str, Any]]:
    return [] if want == have else [{"field": name, "expected": want, "actual": have}]


def compare(want: ServiceFacts, have: ServiceFacts, image_env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Field-by-field differences between a service as the compose model states it (``want``) and as
    its container runs (``have``): image, environment (over the image's own, ``image_env``), restart,
    the healthcheck keys the compose file sets, ports, secrets, limits. Each is {field, expected, actual};
    a credential-named variable's values are masked."""
    diffs = _field("image", want.image, have.image)
    want_env = {**(image_env or {}), **want.environment}
    for k in sorted(set(want_env) | set(have.environment)):
        if want_env.get(k) != have.environment.get(k):
            diffs.append({"field": f"environment.{k}", "expected": mask_credential(k, want_env.get(k)),
                          "actual": mask_credential(k, have.environment.get(k))})
    diffs += _field("restart", want.restart, have.restart)
    hc = have.healthcheck or {}
    if want.healthcheck is not None and want.healthcheck.get("test") == ["NONE"]:
        if hc.get("test") and hc["test"] != ["NONE"]:
            diffs.append({"field": "healthcheck", "expected": "disabled", "actual": hc["test"]})
    elif want.healthcheck is not None:
        for key, w in want.healthcheck.items():
            diffs += _field(f"healthcheck.{key}", w, hc.get(key))
    diffs += _field("ports", want.bindings, have.bindings)
    diffs += _field("secrets", want.secret_sources, have.secret_sources)
    diffs += _field("limits.memory_bytes", want.memory_limit, have.memory_limit)
    diffs += _field("limits.cpus", round(want.cpu_limit, 6), round(have.cpu_limit, 6))
    diffs += _field("limits.pids", want.pids_limit, have.pids_limit)
    return diffs


def compare_container(ctx: Context, v: ContainerView, spec: dict[str, Any],
                      image_config: Callable[[str], dict[str, Any]] | None = None,
                      image_id: Callable[[str], str | None] | None = None) -> list[dict[str, Any]]:
    """:func:`compare` of a container and its compose service, plus what only the engine knows: whether
    the image tag still points at the image the container runs. ``image_config`` / ``image_id``: the
    engine's readings of an image (default: :meth:`Engine.image_config` / :meth:`Engine.image_id`), given
    by a caller that reads each image once for many containers."""
    image_config = image_config or ctx.engine.image_config
    image_id_of = image_id or ctx.engine.image_id
    secrets_dir = ctx.params.security.secrets_dir
    want = ServiceFacts.from_compose(v.service, spec, ctx.model.get("secrets") or {}, secrets_dir)
    have = ServiceFacts.from_container(v, spec)
    image_env = dict(item.partition("=")[::2] for item in image_config(v.image_id).get("Env") or [])
    diffs = compare(want, have, image_env)
    now = image_id_of(want.image) if want.image else v.image_id
    image_id = ([] if now == v.image_id else
                [{"field": "image_id", "expected": f"{want.image} present on the engine",
                  "actual": f"{want.image} is not on the engine; the container runs {v.image_id[:19]}"}] if now is None else
                [{"field": "image_id", "expected": now, "actual": v.image_id}])
    at = 1 if diffs and diffs[0]["field"] == "image" else 0  # right after the image reference, in the evidence
    return diffs[:at] + image_id + diffs[at:]


def _config_files_note(label: list[str], intended: list[str]) -> str:
    """How the config_files label differs from the intended files ("" when it does not): a container
    Compose left alone when an override touching other services was added keeps the older list."""
    have = [str(Path(f).resolve()) for f in label]
    want = [str(Path(f).resolve()) for f in intended]
    if have == want:
        return ""
    added = [f for f, r in zip(intended, want) if r not in have]
    gone = [f for f, r in zip(label, have) if r not in want]
    notes = ([f"created before {', '.join(added)} was added"] if added else []) + (
        [f"created with {', '.join(gone)}, no longer among the compose files"] if gone else [])
    return "; ".join(notes) or f"created from the same files in another order ({', '.join(label)})"


@check("prod.drift", "Running containers match the compose files", phase=PHASE, severity="high", category="Configuration drift",
       remediation="Redeploy from the reviewed compose files (`docker compose up -d`), and find who changed "
                   "the container by hand or from which file.")
def drift(ctx: Context) -> list[CheckRecord]:
    """prod.drift: the running containers are what the compose files say. Three readings per container:
    the config-hash label against ``docker compose config --hash`` of the intended files; the
    config_files label against those files; and a field-by-field comparison (image and image id,
    environment, restart, healthcheck, ports, secrets, limits). PASS only when all three agree; FAIL
    lists every difference (a container changed with ``docker update``, recreated from another file,
    or left running on an image its tag no longer points at). When only the config_files label differs
    (same hash, every field equal: an override touching other services was added and Compose rightly
    left this container alone) the record is INFO saying so, not a FAIL."""
    # a swarm task has no config-hash label: the service spec is judged against the stack file instead
    return ctx.deployment.variant(compose=_compose_drift, swarm=swarm_checks.drift)(ctx)


def _compose_drift(ctx: Context) -> list[CheckRecord]:
    """prod.drift of a compose project (see :func:`drift`)."""
    c = Check("prod.drift", command=ctx.compose.display("config", "--hash", "*"))
    try:
        hashes = ctx.compose.config_hash()
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="`docker compose config --hash` succeeds")]
    intended_files = [str(f) for f in ctx.compose.files]
    model = ctx.model.get("services", {})
    # each image inspected once for the containers that run it (as the config hash is read once for all)
    image_config, image_id = OncePerKey(ctx.engine.image_config), OncePerKey(ctx.engine.image_id)

    def judge(v: ContainerView) -> CheckRecord:
        spec = model.get(v.service, {})
        diffs = compare_container(ctx, v, spec, image_config, image_id)
        problems = []
        want_hash = hashes.get(v.service, "")
        if v.config_hash != want_hash:
            problems.append(f"config-hash label {v.config_hash[:12] or '(none)'} != compose {want_hash[:12] or '(none)'}")
        files_note = _config_files_note(v.config_files, intended_files)
        if files_note and (problems or diffs):
            problems.append(f"created from {', '.join(v.config_files) or '(no label)'}, not {', '.join(intended_files)}")
        problems += [f"{d['field']}: expected {d['expected']!r}, running {d['actual']!r}" for d in diffs]
        ev = {"read": f"docker inspect labels {CONFIG_HASH_LABEL}, {CONFIG_FILES_LABEL}, Config, HostConfig, Mounts; "
                      "docker compose config --hash / --format json; docker image inspect",
              "container": v.name, "created": v.created,
              "config_hash": {"label": v.config_hash, "compose": want_hash},
              "config_files": {"label": v.config_files, "intended": intended_files},
              "differences": diffs}
        if problems:
            return c.record(v.service, "FAIL", expected="the container matches the compose files",
                            actual=f"{len(problems)} difference(s): " + "; ".join(problems)[:900], evidence=ev)
        if files_note:  # same hash, every field equal: Compose had no reason to recreate it
            return c.record(v.service, "INFO", expected="the container matches the compose files",
                            actual=f"{files_note}; identical (config hash and every compared field match)", evidence=ev)
        return c.record(v.service, "PASS", expected="the container matches the compose files",
                        actual="config hash, files and every compared field match", evidence=ev)

    return each_container(ctx, c, ctx.services, "no drift", judge)


# ----------------------------------------------------------------------------------------------------
# prod.orphans
# ----------------------------------------------------------------------------------------------------

@check("prod.orphans", "No container outside the compose model", phase=PHASE, severity="high",
       category="Configuration drift",
       remediation="Remove the container (`docker rm -f NAME`, or phase 1 redeploys without it) and find who "
                   "started it; if it is needed, add its service to the compose files.")
def orphans(ctx: Context) -> list[CheckRecord]:
    """prod.orphans: no container carries the project's label without belonging to a service of the
    compose model (not declared, or disabled by a profile): e.g. a debugging container started by hand
    with the project's labels. Such a container runs unreviewed in production; the other checks of this
    phase, which go service by service, never look at it. A FAIL naming each container."""
    # a swarm: the stack's task containers and its services outside the stack file
    return ctx.deployment.variant(compose=_compose_orphans, swarm=swarm_checks.orphans)(ctx)


def _compose_orphans(ctx: Context) -> list[CheckRecord]:
    """prod.orphans of a compose project: the containers carrying its label outside the compose model."""
    from runbook_lib.phases.preflight import orphan_records

    c = Check("prod.orphans",
              command=f"docker ps -a --filter label=com.docker.compose.project={ctx.params.project} "
                      "--format '{{.Names}} {{.Label \"com.docker.compose.service\"}}'")
    return orphan_records(ctx, c)


