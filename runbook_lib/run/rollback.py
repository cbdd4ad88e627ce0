"""Rollback to the last GO: put back exactly what a GO run deployed, and verify it.

What a GO run deployed is in its run directory (:mod:`runbook_lib.run.deployed`, ``deployment.json``): the
resolved compose model, the file secrets' SHA-256 hashes and each service's full image id. A rollback:

1. refuses a run directory that does not verify (:func:`~runbook_lib.results.manifest.verify_run`), is not
   GO, or records no deployment (:class:`RollbackRefused`, one line, nothing changed);
2. refuses, naming every difference, when an image is gone from the engine, a secret file's hash changed,
   or a secret value of the model (kept as a marker) is not the same now (``rollback.target`` FAIL);
3. gives Compose a reference for each image id: the one the service ran as when it still names that id,
   else the id tagged ``runbook-rollback/<service>:<run>`` (the tag moved on to the image being rolled back
   from), and writes the run's model with those references, never pulled nor built, into a private temporary
   directory (it holds the secret values filled back in: never into a run directory);
4. ``docker compose up -d --remove-orphans`` with it, then phase 1's health gate and phase 4's endpoint
   checks on it (the same functions, their records relabelled ``rollback.*``), and ``rollback.images``:
   the containers now run the GO run's image ids.

Two ways in: ``runbook rollback --to RUN_DIR`` (:mod:`runbook_lib.run.rollback_run` writes a signed run
directory of its own) and ``redeploy.on_failure: rollback`` (:func:`on_failed_gate`: phase 1's health gate
failed; the records go into the failing run's phase 1).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from runbook_lib.errors import InputError, RunbookError
from runbook_lib.results import registry
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.run import deployed

if TYPE_CHECKING:
    from runbook_lib.run.context import Context

PHASE = "rollback"
REPOSITORY = "runbook-rollback"
MARKER = "[REDACTED sha256:"
_CAT = "Startup and restart stability"
_SPECS = {
    "rollback.target": ("Rollback target can be restored exactly", "critical", _CAT,
                        "Restore what the record names (the secret file, the image: `docker load`), or roll back "
                        "to another GO run."),
    "rollback.up": ("Rolled-back deployment brought up", "critical", _CAT,
                    "Read the stderr in the evidence."),
    "rollback.service_ready": ("Rolled-back service running and healthy", "critical", _CAT,
                               "Read the health-check log in the evidence, then `docker logs` of the container."),
    "rollback.endpoint": ("Rolled-back endpoint answers", "high", "Service connectivity",
                          "Read the service's logs (`docker compose logs SERVICE`)."),
    "rollback.images": ("Running images are the GO run's", "critical", _CAT,
                        "Find what else deploys to the project (another run, a person) and roll back again."),
}
for _id, (_title, _sev, _cat, _fix) in _SPECS.items():
    registry.declare(registry.CheckSpec(_id, _title, PHASE, _sev, _cat, changes_deployment=_id == "rollback.up",
                                        remediation=_fix, function="runbook_lib.run.rollback:perform"))


class RollbackRefused(InputError):
    """The run directory cannot be rolled back to (exit 2): not verified, not GO, or no deployment recorded."""


@dataclass
class Target:
    """A GO run to roll back to: its directory and its deployment.json."""

    run_dir: Path
    doc: dict[str, Any]

    @property
    def project(self) -> str:
        return self.doc["project"]

    @property
    def images(self) -> dict[str, str]:
        """Service -> full image id."""
        return {svc: i["id"] for svc, i in (self.doc.get("images") or {}).items()}

    def reference(self, service: str) -> str:
        """The rollback's reference of ``service``'s image: ``runbook-rollback/<service>:<run>``."""
        return f"{REPOSITORY}/{_clean(service)}:{_clean(self.run_dir.name)[:128]}"


def _clean(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "x"


def open_target(run_dir: Path, key: Path | None = None) -> Target:
    """The run directory as a rollback target; raises :class:`RollbackRefused` (one line) when it does not
    verify, is not GO, or records no compose deployment with its images."""
    from runbook_lib.results import verdict as verdicts
    from runbook_lib.results.manifest import verify_run

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RollbackRefused(f"rollback: {run_dir} is not a directory")
    try:
        problems = verify_run(run_dir, key)
    except InputError as exc:
        raise RollbackRefused(f"rollback: {exc}") from None
    if problems:
        more = f" (and {len(problems) - 1} more: runbook verify {run_dir})" if len(problems) > 1 else ""
        raise RollbackRefused(f"rollback: {run_dir} does not verify: {problems[0]}{more}")
    verdict = verdicts.read(run_dir).get("verdict") if (run_dir / verdicts.VERDICT_FILE).is_file() else None
    if verdict != "GO":
        raise RollbackRefused(f"rollback: {run_dir} is {verdict or 'a run without a verdict'}, not GO: "
                              "only a GO run is rolled back to")
    doc = deployed.read(run_dir)
    if doc is None:
        raise RollbackRefused(f"rollback: {run_dir} records no deployment ({deployed.DEPLOYED_FILE}): only a run "
                              "whose phase 1 redeployed a compose project can be rolled back to")
    if doc.get("mode") != "compose" or not doc.get("images"):
        why = f"mode {doc.get('mode')!r}" if doc.get("mode") != "compose" else doc.get("images_error") or "no image"
        raise RollbackRefused(f"rollback: {run_dir} records no compose deployment with its images ({why})")
    return Target(run_dir, doc)


def last_go(outputs: Path, project: str, exclude: Path | None = None) -> Path | None:
    """The newest run directory of ``project`` under ``outputs`` that is GO and recorded its deployment
    (read from its files; :func:`open_target` verifies it)."""
    from runbook_lib.results import verdict as verdicts

    skip = exclude.resolve() if exclude else None
    for d in sorted(Path(outputs).glob(f"*-{project}*"), reverse=True):
        if d.resolve() == skip or not (d / deployed.DEPLOYED_FILE).is_file():
            continue
        try:
            if verdicts.read(d).get("verdict") == "GO" and verdicts.read(d).get("project") == project:
                return d
        except (OSError, ValueError):
            continue
    return None


# -- what differs ------------------------------------------------------------------------------------------
def missing_images(target: Target, image_id: Callable[[str], str | None]) -> list[str]:
    """One line per image of the run that this engine no longer has (``image_id``: the engine's lookup)."""
    return [f"the image of {svc} ({iid[:19]}) is gone from this engine" for svc, iid in sorted(target.images.items())
            if image_id(iid) is None]


def changed_secrets(target: Target) -> list[str]:
    """One line per file secret of the run whose file is gone or whose SHA-256 is not the recorded one."""
    out = []
    for name, s in sorted((target.doc.get("secret_files") or {}).items()):
        now = deployed.sha256_of(Path(s["path"]))
        if now is None:
            out.append(f"the secret file {name} ({s['path']}) is gone or unreadable")
        elif now != s.get("sha256"):
            out.append(f"the secret file {name} ({s['path']}) changed since the GO run (its SHA-256 differs)")
    return out


def has_markers(obj: Any) -> bool:
    if isinstance(obj, str):
        return MARKER in obj
    if isinstance(obj, dict):
        return any(has_markers(v) for v in obj.values())
    if isinstance(obj, list):
        return any(has_markers(v) for v in obj)
    return False


def fill_markers(archived: Any, hidden_now: Any, raw_now: Any, path: str = "") -> tuple[Any, list[str]]:
    """The archived model with each string holding a secret's marker replaced by the value at the same place
    of the model as it resolves now (``raw_now``), when that value hides to the same marker (``hidden_now``: the
    current model through :func:`deployed.hide_credentials`); else a problem naming the place."""
    if isinstance(archived, dict):
        out, problems = {}, []
        for k, v in archived.items():
            sub = f"{path}.{k}" if path else str(k)
            h = hidden_now.get(k) if isinstance(hidden_now, dict) else None
            r = raw_now.get(k) if isinstance(raw_now, dict) else None
            out[k], more = fill_markers(v, h, r, sub)
            problems += more
        return out, problems
    if isinstance(archived, list):
        out_l, problems = [], []
        for i, v in enumerate(archived):
            h = hidden_now[i] if isinstance(hidden_now, list) and i < len(hidden_now) else None
            r = raw_now[i] if isinstance(raw_now, list) and i < len(raw_now) else None
            item, more = fill_markers(v, h, r, f"{path}[{i}]")
            out_l.append(item)
            problems += more
        return out_l, problems
    if isinstance(archived, str) and MARKER in archived:
        if archived == hidden_now and isinstance(raw_now, str):
            return raw_now, []
        return archived, [f"{path} held a secret value that is not the same now (or is gone)"]
    return archived, []


def references(target: Target, engine: Any) -> dict[str, str]:
    """The image reference Compose is given for each service: the one it ran as when that still names the
    recorded image id, else the id tagged ``runbook-rollback/<service>:<run>`` (the reference moved on, to
    the new image being rolled back from). Raises RunbookError."""
    out = {}
    for svc, iid in sorted(target.images.items()):
        ran_as = (target.doc["images"][svc] or {}).get("ref") or ""
        if ran_as and not ran_as.startswith("sha256:") and engine.image_id(ran_as) == iid:
            out[svc] = ran_as
        else:
            out[svc] = engine.tag_image(iid, *target.reference(svc).rsplit(":", 1))
    return out


def deploy_model(target: Target, model: dict[str, Any], references: dict[str, str]) -> dict[str, Any]:
    """The compose model to deploy: the run's, where a service's image is given another reference (a rollback
    tag) that one, never built nor pulled. A service left as it was keeps Compose's config hash: a container
    of it that runs that configuration already is not recreated."""
    services = {}
    for name, spec in (model.get("services") or {}).items():
        if name in references and references[name] != spec.get("image"):
            spec = {**{k: v for k, v in spec.items() if k != "build"}, "image": references[name], "pull_policy": "never"}
        services[name] = spec
    return {**model, "name": target.project, "services": services}


def model_changes(archived: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The services whose resolved model now differs from the run's (what the rollback puts back), as words."""
    a, b = archived.get("services") or {}, current.get("services") or {}
    out = [f"{s}: not in the model now" for s in sorted(set(a) - set(b))]
    out += [f"{s}: not in the run's model (removed by the rollback)" for s in sorted(set(b) - set(a))]
    out += [f"{s}: {', '.join(sorted(k for k in set(a[s]) | set(b[s]) if a[s].get(k) != b[s].get(k)))}"
            for s in sorted(set(a) & set(b)) if a[s] != b[s]]
    return out


# -- the rollback ------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What a rollback to ``target`` would deploy, and why it cannot (``problems``: one line each)."""

    target: Target
    model: dict[str, Any]
    problems: list[str]
    changes: list[str]   # what differs in the model now (what the rollback puts back), in words

    def refusal(self) -> str:
        return (f"rollback to {self.target.run_dir.name} refused, nothing changed: " + "; ".join(self.problems)
                + ". Restore what is named, or roll back to another GO run.")


def plan(ctx: "Context", target: Target) -> Plan:
    """Compare the run's deployment with what this engine and host hold now. Raises RunbookError when the
    engine cannot be asked."""
    if target.project != ctx.params.project:
        return Plan(target, target.doc["model"], [f"{target.run_dir.name} deployed project {target.project}, "
                                                  f"not {ctx.params.project}"], [])
    problems = missing_images(target, ctx.engine.image_id) + changed_secrets(target)
    archived, model, changes = target.doc["model"], target.doc["model"], []
    try:
        current = ctx.model
    except RunbookError as exc:
        current = None
        if has_markers(archived):
            problems.append(f"the compose files do not resolve now, so the model's secret values cannot be "
                            f"checked ({str(exc).splitlines()[0]})")
    if current is not None:
        from runbook_lib.run.deployed import hide_credentials

        hidden = hide_credentials(current, ctx)
        model, unfilled = fill_markers(archived, hidden, current)
        problems += unfilled
        changes = model_changes(archived, hidden)
    return Plan(target, model, problems, changes)


@contextlib.contextmanager
def _deploy_file(model: dict[str, Any]) -> Iterator[Path]:
    """The model as a compose file in a private temporary directory (it may hold secret values), removed after."""
    with tempfile.TemporaryDirectory(prefix="runbook-rollback-") as tmp:
        os.chmod(tmp, 0o700)
        path = Path(tmp) / "compose.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(model, fh, indent=1)
        yield path


def _context(ctx: "Context", compose_file: Path) -> "Context":
    """A context for the rolled-back deployment: the same parameters, engine and redactor, the model file
    instead of the compose files, no rollback of its own when its health gate fails, and ``up -d`` of the whole
    model whatever ``redeploy.strategy`` says (Compose recreates only the services whose model or image differs;
    a rolling strategy would make ``compose_up`` do nothing and leave the failed deployment running)."""
    from runbook_lib.run.context import Context

    p = ctx.params
    params = p.model_copy(update={"compose_files": [compose_file], "env_files": [],
                                  "redeploy": p.redeploy.model_copy(update={"on_failure": "stop", "strategy": "recreate"})})
    return Context(params=params, run_dir=ctx.run_dir, progress=ctx.progress, redactor=ctx.redactor,
                   _engine=ctx.engine)


def _relabel(records: list[CheckRecord], check_id: str) -> list[CheckRecord]:
    """Records of a phase check run on the rolled-back deployment, under the rollback's own id."""
    spec = registry.require(check_id)
    return [dataclasses.replace(r, id=check_id, phase=PHASE, title=spec.title, remediation=spec.remediation,
                                severity=r.severity if r.severity == "info" else spec.severity) for r in records]


def perform(ctx: "Context", target: Target) -> list[CheckRecord]:
    """Roll back to ``target`` and verify it: ``rollback.target`` (FAIL, naming every difference, and nothing
    changed; or PASS with what is put back), then ``rollback.up``, ``rollback.service_ready``,
    ``rollback.endpoint`` and ``rollback.images``."""
    from runbook_lib.phases.redeploy import compose_up, services_ready
    from runbook_lib.phases.smoke.endpoints import health

    c = Check("rollback.target", command=f"runbook rollback --to {target.run_dir}")
    project = ctx.params.project
    try:
        pl = plan(ctx, target)
    except RunbookError as exc:
        return [c.error(project, exc, expected="the GO run's images and secret files are still here")]
    ev = {"run_dir": str(target.run_dir), "images": dict(target.images),
          "secret_files_unchanged": sorted(target.doc.get("secret_files") or {}), "model_changes": pl.changes}
    expected = "every image of the GO run on this engine, every secret file with its recorded SHA-256"
    if pl.problems:
        return [c.record(project, "FAIL", expected=expected, actual=pl.refusal(), evidence={**ev, "differs": pl.problems})]
    try:
        refs = references(target, ctx.engine)
    except RunbookError as exc:
        return [c.error(project, exc, expected="the GO run's images tagged for Compose")]
    ev["references"] = refs
    changed = f"; the model differs now in {len(pl.changes)} service(s)" if pl.changes else "; the model is unchanged"
    out = [c.record(project, "PASS", expected=expected, evidence=ev,
                    actual=f"{len(refs)} images and {len(ev['secret_files_unchanged'])} secret files as in "
                           f"{target.run_dir.name}{changed}")]
    ctx.progress(f"rollback: redeploying {target.run_dir.name}: " + ", ".join(f"{s}={r}" for s, r in sorted(refs.items())))
    with _deploy_file(deploy_model(target, pl.model, refs)) as path:
        rb = _context(ctx, path)
        up = _relabel(compose_up(rb), "rollback.up")
        out += up
        if any(r.status != "PASS" for r in up):
            return out
        ready = _relabel(services_ready(rb), "rollback.service_ready")
        out += ready
        if all(r.status == "PASS" for r in ready):
            out += _relabel(health(rb), "rollback.endpoint")
        out.append(images_match(rb, target))
    return out


def images_match(ctx: "Context", target: Target) -> CheckRecord:
    """``rollback.images``: every container of each service of the GO run runs that run's image id."""
    c = Check("rollback.images", command=ctx.deployment.list_command())
    try:
        views = ctx.deployment.containers()
    except RunbookError as exc:
        return c.error(ctx.params.project, exc, expected="the containers run the GO run's images")
    by: dict[str, list[str]] = {}
    for v in views:
        by.setdefault(v.service, []).append(v.image_id)
    wrong = {s: by.get(s, []) for s, i in target.images.items() if not by.get(s) or set(by[s]) != {i}}
    ev = {"expected": target.images, "running": by}
    expected = f"each service runs the image id it ran in {target.run_dir.name}"
    if wrong:
        return c.record(ctx.params.project, "FAIL", expected=expected, evidence=ev,
                        actual="; ".join(f"{s} runs {', '.join(x[:19] for x in ids) or 'no container'}, not "
                                         f"{target.images[s][:19]}" for s, ids in sorted(wrong.items())))
    return c.record(ctx.params.project, "PASS", expected=expected, evidence=ev,
                    actual=f"{len(target.images)} services run the GO run's image ids")


def on_failed_gate(ctx: "Context", gate: list[CheckRecord], why: str = "the health gate failed") -> list[CheckRecord]:
    """``redeploy.on_failure: rollback``: when phase 1's health gate (``gate``, its records; or the smoke
    tests' blockers, :func:`runbook_lib.run.rollback_run.after_smoke_tests`) did not pass, roll back to the last
    GO run of the project under the outputs directory and return the rollback's records (``[]`` when the
    parameter is ``stop`` or the gate passed)."""
    if ctx.params.redeploy.on_failure != "rollback" or all(r.status in ("PASS", "INFO") for r in gate):
        return []
    from runbook_lib.params import default_outputs

    c = Check("rollback.target")
    project = ctx.params.project
    outputs = Path(ctx.run_dir).parent if ctx.run_dir else default_outputs(ctx.params.source)
    found = last_go(outputs, project, exclude=Path(ctx.run_dir) if ctx.run_dir else None)
    expected = "a GO run of the project to roll back to, restorable exactly"
    if found is None:
        return [c.record(project, "FAIL", expected=expected, evidence={"outputs": str(outputs)},
                         actual=f"{why} and no GO run of {project} with its deployment recorded is "
                                f"under {outputs}: nothing was rolled back")]
    ctx.progress(f"rollback: {why}; rolling back to {found}")
    try:
        target = open_target(found)
    except RollbackRefused as exc:
        return [c.record(project, "FAIL", expected=expected, actual=str(exc), evidence={"run_dir": str(found)})]
    return perform(ctx, target)
