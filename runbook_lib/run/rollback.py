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
   the containers now run the GO run's image ids. Steps 2 to 4 as checks are
   :mod:`runbook_lib.phases.redeploy.rollback` (they run the phases' own checks); this module is what they
   restore and refuse.

Two ways in: ``runbook rollback --to RUN_DIR`` (:mod:`runbook_lib.run.rollback_run` writes a signed run
directory of its own) and ``redeploy.on_failure: rollback`` (:func:`on_failed_gate`: phase 1's health gate
failed; the records go into the failing run's phase 1: :func:`runbook_lib.phases.redeploy.rollback.on_failed_gate`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from runbook_lib.errors import InputError, RunbookError
from runbook_lib.results import registry
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
                                        remediation=_fix, function="runbook_lib.phases.redeploy.rollback:perform"))


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
