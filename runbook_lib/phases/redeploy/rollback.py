"""Rolling back, as checks: bring a GO run's deployment back up (:func:`perform`) and verify it with phase 1's
health gate and phase 4's endpoints, relabelled ``rollback.*``; :func:`on_failed_gate` does it when phase 1's
health gate fails and ``redeploy.on_failure`` is ``rollback``. What a rollback restores and refuses (the GO run's
record, the plan) is :mod:`runbook_lib.run.rollback`; `runbook rollback` is :mod:`runbook_lib.run.rollback_run`."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from runbook_lib.errors import RunbookError
from runbook_lib.results import registry
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.run.rollback import (PHASE, RollbackRefused, Target, deploy_model, last_go, open_target, plan,
                                      references)

if TYPE_CHECKING:
    from runbook_lib.run.context import Context


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
