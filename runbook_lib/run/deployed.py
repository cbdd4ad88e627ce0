"""deployment.json: what a run deployed, kept in its run directory so that ``runbook rollback`` can put exactly
that back later (:mod:`runbook_lib.run.rollback`), and covered by the run's manifest and signature like every
other file of it.

Layout (schema 1)::

    {"schema": 1, "project", "mode": "compose",
     "model": {...},                    # the resolved compose model (`docker compose config --format json`),
                                        # every secret value in it replaced by its marker (see below)
     "compose_files": {path: sha256}, "env_files": {path: sha256},
     "secret_files": {name: {"path", "sha256"}},   # the compose model's file secrets: hashes, never values
     "images": {service: {"ref", "id"}},          # the full image id each service ran at the end of the run
     "images_error": "..."}                       # only when the images could not be read

A secret value never enters the file: the run's redactor replaces every value it knows (the file secrets it
read), and the value of every variable whose name looks like a credential (``security.credential_patterns``)
is replaced too, by the same marker, ``[REDACTED sha256:<first 8 hex>]``. A rollback fills each marker from the
compose model as it resolves at that time and refuses when the value there does not give the same marker.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_lib.errors import RunbookError
from runbook_lib.results.redact import marker

if TYPE_CHECKING:
    from runbook_lib.run.context import Context

DEPLOYED_FILE = "deployment.json"
SCHEMA = 1


def sha256_of(path: Path) -> str | None:
    """The SHA-256 (hex) of a file's bytes; None when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def hide_credentials(model: dict[str, Any], ctx: "Context") -> dict[str, Any]:
    """The compose model with every secret value replaced by its marker: the values the run's redactor knows,
    and every variable whose name looks like a credential (a pointer under ``security.secrets_dir`` stays)."""
    sec = ctx.params.security
    services = {}
    for name, spec in (model.get("services") or {}).items():
        env = spec.get("environment")
        if isinstance(env, dict):
            spec = {**spec, "environment": {
                k: (marker(v) if isinstance(v, str) and v and sec.looks_like_credential(k)
                    and not v.startswith(sec.secrets_dir.rstrip("/") + "/") else v) for k, v in env.items()}}
        services[name] = spec
    return ctx.redactor.scrub({**model, "services": services}, names=False)


def describe(ctx: "Context") -> dict[str, Any]:
    """What the run is about to deploy (taken before phase 1 changes anything): the resolved compose model
    without its secret values, the compose and env files' hashes, and the file secrets' hashes."""
    p = ctx.params
    return {
        "schema": SCHEMA, "project": p.project, "mode": p.mode,
        "model": hide_credentials(ctx.model, ctx),
        "compose_files": {str(f): sha256_of(f) for f in p.compose_files},
        "env_files": {str(f): sha256_of(f) for f in p.env_files},
        "secret_files": {name: {"path": str(path), "sha256": sha256_of(path)}
                         for name, path in sorted(ctx.secret_files().items())},
    }


def running_images(ctx: "Context") -> dict[str, dict[str, str]]:
    """The full image id each service of the deployment runs now (one container's, the newest). Raises
    RunbookError when the engine cannot list them."""
    out: dict[str, dict[str, str]] = {}
    for v in sorted(ctx.deployment.containers(), key=lambda v: v.started_at or ""):
        if v.service and v.image_id:
            out[v.service] = {"ref": v.image, "id": v.image_id}
    return out


def write(run_dir: Path, doc: dict[str, Any], ctx: "Context") -> Path:
    """deployment.json, with the images the deployment runs now (the end of the run) added to ``doc``."""
    doc = dict(doc)
    try:
        doc["images"] = running_images(ctx)
    except RunbookError as exc:
        doc["images"], doc["images_error"] = {}, str(exc)
    out = run_dir / DEPLOYED_FILE
    out.write_text(json.dumps(ctx.redactor.scrub(doc, names=False), indent=1) + "\n", encoding="utf-8")
    return out


def read(run_dir: Path) -> dict[str, Any] | None:
    """A run directory's deployment.json, or None when it has none (an older run, a fleet, a rollback's own)."""
    try:
        return json.loads((run_dir / DEPLOYED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
