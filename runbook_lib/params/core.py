"""Typed run parameters, loaded from a YAML file: :class:`Params` (the whole file, made of the sections in
:mod:`runbook_lib.params.sections`), loading with errors that name the key, waivers, command-line
overrides, and the resolved copy a run keeps.

Parameters never hold secret values: only names and paths. Unknown keys and wrong types are errors
that name the file, the key and, where one is close, the key that was probably meant.

Relative paths in a parameters file (compose files, env files) are relative to that file, so a
parameters file means the same thing whatever directory the runbook is started from. ``dump_resolved``
writes the absolute form into the run directory; that copy is what the phase notebooks load.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from runbook_lib.errors import InputError, ParametersError, UnsafeRequestError
from runbook_lib.params.sections import (EngineParams, Fleet, Policy, Production, Redeploy, Security, Signoff,
                                             Smoke, StrictModel, Target, Waiver, WaiverFile)

# The phase notebooks, in run order. Their ids are in result file names and check records (contract:
# docs/design.md, "a check record").
PHASES: tuple[str, ...] = (
    "00_preflight",
    "01_controlled_redeployment",
    "02_secrets_security",
    "03_production_mode",
    "04_smoke_tests",
    "05_signoff",
)

# The phases with a check that changes the deployment (its declaration says ``changes_deployment``; a test holds
# this list to the registry, which the runner asks). Every other phase only reads, so it may judge one reading
# of the deployment's containers (Context.keep_reads). A constant here because a phase kernel reads it before
# anything else and the registry imports every phase module (0.2 s) to answer.
CHANGES_DEPLOYMENT: tuple[str, ...] = ("01_controlled_redeployment", "04_smoke_tests")

# The phases implemented for `mode: swarm`: all of them now. The runner refuses any other in swarm mode
# (a phase added later without its swarm checks) rather than run its compose-mode checks against a swarm.
SWARM_PHASES: tuple[str, ...] = ("00_preflight", "01_controlled_redeployment", "02_secrets_security",
                                 "03_production_mode", "04_smoke_tests", "05_signoff")


class Params(StrictModel):
    """Everything a run needs to know about the deployment it verifies."""

    project: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="The compose project name.")
    mode: Literal["compose", "swarm"] = Field(default="compose", description=(
        "compose: a Compose project on one engine (docker compose). swarm: a stack on a Docker Swarm (`docker stack "
        "deploy`, needs `stack`); compose_files are then the stack file(s). Every phase is implemented in swarm mode "
        "(phase 1: `docker stack deploy --prune` and convergence; phase 4: drills scale a dependency to 0 and back)."))
    stack: str = Field(default="", pattern=r"^([a-zA-Z0-9][a-zA-Z0-9_.-]*)?$", description=(
        "The swarm stack name (`docker stack deploy ... NAME`); required in swarm mode, unused in compose mode."))
    compose_files: list[Path] = Field(min_length=1, description=(
        "Compose files, merged in order; relative to the parameters file."))
    env_files: list[Path] = Field(default_factory=list, description=(
        "Env files for interpolation (--env-file); relative to the parameters file."))
    app_services: list[str] = Field(default_factory=list, description=(
        "Services whose behaviour we own (health, metrics, ENV=production...); default: every service that "
        "publishes a port."))
    dependencies: list[str] = Field(default_factory=list, description=(
        "Datastores and brokers the apps rely on (drilled in phase 4)."))
    phases: list[str] = Field(default_factory=list, description=(
        "Which phases to run; empty means every phase notebook this toolkit ships. Always run in the canonical "
        "order (preflight first), whatever order they are listed in."))
    read_only: bool = Field(default=False, description=(
        "A read-only run (`runbook run --read-only`): nothing changes the deployment. Phase 1 (redeployment) is "
        "not run; phase 4 runs its non-destructive part (health, metrics, the flow's GET steps and steps marked "
        "`safe`, up to the first other one) and records the drills and the other steps SKIP saying why."))
    redeploy: Redeploy = Field(default_factory=Redeploy, description="Phase 1: controlled redeployment.")
    production: Production = Field(default_factory=Production, description="Phase 3: production mode.")
    smoke: Smoke = Field(default_factory=Smoke, description="Phase 4: smoke tests, flow and drills.")
    policy: Policy = Field(default_factory=Policy, description="How check records become a verdict.")
    cell_timeout_s: float = Field(default=900, gt=0, description=(
        "Per-cell time budget for headless runs; a cell that exceeds it makes its phase ERROR."))
    operator: str = Field(default="", description=(
        "Who runs the verification (the sign-off block); default: RUNBOOK_OPERATOR or the login name."))
    signoff: Signoff = Field(default_factory=Signoff, description="Phase 5: sign-off and the signed archive.")
    security: Security = Field(default_factory=Security, description="Phase 2 and `runbook lint`.")
    engine: EngineParams = Field(default_factory=EngineParams, description="How the runbook talks to the Docker engine.")
    targets: list[Target] = Field(default_factory=list, description=(
        "A fleet: several engines running the same deployment, verified in one run (docs/swarm-and-fleets.md). "
        "Each target runs the phases as an ordinary run with its own DOCKER_HOST, its run directory in the "
        "fleet's (targets/NAME/); one aggregate verdict, NO-GO when any target is. Empty: one engine, the one "
        "DOCKER_HOST (or the default socket) names."))
    fleet: Fleet = Field(default_factory=Fleet, description="How a run with `targets` proceeds.")

    # Where the file was loaded from (not a parameter; set by load_params).
    source: Optional[Path] = Field(default=None, exclude=True)

    @field_validator("phases")
    @classmethod
    def _known_phases(cls, v: list[str]) -> list[str]:
        problem = unknown_phase(v)
        if problem:
            raise ValueError(problem)
        return sorted(set(v), key=PHASES.index)

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, v: list) -> list:
        seen: set[str] = set()
        for t in v:
            if t.name in seen:
                raise ValueError(f"target name {t.name!r} is used twice; each target needs a name of its own")
            seen.add(t.name)
        return v

    @field_validator("stack")
    @classmethod
    def _stack_for_swarm(cls, v: str, info) -> str:
        mode = info.data.get("mode")
        if mode == "swarm" and not v:
            raise ValueError("mode is swarm, so the stack's name is required (stack: NAME, as in "
                             "`docker stack deploy -c FILE NAME`)")
        if mode == "compose" and v:
            raise ValueError("set only in swarm mode: add `mode: swarm`, or remove `stack`")
        return v

    @model_validator(mode="after")
    def _swarm_consistency(self) -> "Params":
        """What only one mode can do: a drill's ``scale`` mode needs a swarm service; a swarm drill scales (its
        containers belong to the scheduler, which would replace a stopped one); volume removal is compose mode's."""
        for i, d in enumerate(self.smoke.drills):
            if self.mode == "swarm" and d.mode != "scale":
                raise ValueError(f"smoke.drills[{i}].mode: {d.mode!r} breaks a compose container; in swarm mode a drill "
                                 f"scales the dependency's service to 0 and back: mode: scale ({d.dependency})")
            if self.mode == "compose" and d.mode == "scale":
                raise ValueError(f"smoke.drills[{i}].mode: 'scale' is for swarm services (mode: swarm); in compose mode "
                                 f"use stop, pause or disconnect ({d.dependency})")
        if self.mode == "swarm" and self.redeploy.remove_volumes:
            raise ValueError("redeploy.remove_volumes: not available in swarm mode (a stack's volumes live on each node; "
                             "`docker stack deploy` never removes them). Set it to false.")
        return self

    def unsupported_phases(self, phases: list[str]) -> list[str]:
        """The phases of ``phases`` not implemented for this mode (none in compose mode)."""
        return [p for p in phases if self.mode == "swarm" and p not in SWARM_PHASES]

    def service_names_used(self) -> dict[str, list[str]]:
        """Every service name the parameters mention, by where it is mentioned."""
        used: dict[str, list[str]] = {}
        for s in self.app_services:
            used.setdefault(s, []).append("app_services")
        for s in self.dependencies:
            used.setdefault(s, []).append("dependencies")
        for i, step in enumerate(self.redeploy.init_steps):
            used.setdefault(step.service, []).append(f"redeploy.init_steps[{i}].service")
        for s, proxy in self.redeploy.behind_proxy.items():
            used.setdefault(s, []).append("redeploy.behind_proxy")
            used.setdefault(proxy, []).append(f"redeploy.behind_proxy[{s}]")
        prod = self.production
        for key, names in (("env_overrides", prod.env_overrides), ("env_excluded", prod.env_excluded),
                           ("restart_policy_overrides", prod.restart_policy_overrides)):
            for s in names:
                used.setdefault(s, []).append(f"production.{key}")
        for s in self.security.internal_services:
            used.setdefault(s, []).append("security.internal_services")
        for s in self.security.tls_terminated:
            used.setdefault(s, []).append("security.tls_terminated")
        for i, drill in enumerate(self.smoke.drills):
            used.setdefault(drill.dependency, []).append(f"smoke.drills[{i}].dependency")
        return used

    def severity_for(self, check_id: str, default: str) -> str:
        return self.policy.severity_overrides.get(check_id, default)

    def ensure_safe(self) -> None:
        """Refuse destructive requests that lack their confirmation (raises UnsafeRequestError)."""
        rd = self.redeploy
        if rd.remove_volumes and rd.confirm_volume_removal != self.project:
            raise UnsafeRequestError(
                f"redeploy.remove_volumes is true but redeploy.confirm_volume_removal is "
                f"{rd.confirm_volume_removal!r}: volume removal deletes every named volume of "
                f"{self.project!r} (databases included). Set confirm_volume_removal: {self.project} "
                "to confirm, or remove_volumes: false. Nothing was touched."
            )
        if not rd.remove_volumes and rd.confirm_volume_removal:
            raise UnsafeRequestError(
                "redeploy.confirm_volume_removal is set but redeploy.remove_volumes is false; "
                "say what you mean: both or neither. Nothing was touched."
            )


def refuse_unsupported_phases(params: Params, phases: list[str] | None = None) -> None:
    """Swarm mode runs only the phases implemented for it (``params.SWARM_PHASES``): any other phase asked
    for (or implied by an empty ``phases``, which means every phase) is an input error, before anything is
    touched; never a compose-mode run of that phase against a swarm."""
    asked = list(phases if phases is not None else (params.phases or PHASES))
    bad = params.unsupported_phases(asked)
    if bad:
        how = "" if params.phases or phases else " (no `phases:` and no --phase means every phase)"
        raise InputError(f"{params.source}: mode: swarm: phase{'s' if len(bad) > 1 else ''} {', '.join(bad)} "
                         f"{'are' if len(bad) > 1 else 'is'} not implemented for swarm stacks yet{how}; run "
                         f"{' '.join('--phase ' + p for p in SWARM_PHASES)} (or set phases: [{', '.join(SWARM_PHASES)}]). "
                         "Nothing was touched.")


def unknown_phase(names: list[str]) -> str | None:
    """A message naming the first unknown phase (with a suggestion), or None when all are known."""
    for p in names:
        if p not in PHASES:
            hint = difflib.get_close_matches(p, PHASES, n=1)
            return (f"unknown phase {p!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; known phases: {', '.join(PHASES)}")
    return None


def _all_keys(model: type[BaseModel]) -> list[str]:
    return [k for k in model.model_fields if k != "source"]


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the key at ``loc`` (for did-you-mean suggestions)."""
    model: type[BaseModel] | None = Params
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        inner = getattr(ann, "__args__", (ann,))
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return model


def _explain(exc: ValidationError, path: str) -> ParametersError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    if err["type"] == "extra_forbidden":
        owner = _model_at(loc)
        hint = difflib.get_close_matches(str(loc[-1]), _all_keys(owner), n=1) if owner else []
        msg = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        if owner:
            msg += f"; allowed here: {', '.join(_all_keys(owner))}"
    elif err["type"] == "missing":
        msg = f"missing required key {key!r}"
    elif not loc:  # a check across keys (Params._swarm_consistency): its message names the key
        msg = str(err["msg"]).removeprefix("Value error, ")
        key = msg.split(":", 1)[0] if ":" in msg else None
    else:
        msg = f"key {key!r}: {err['msg']} (got {err.get('input')!r})"
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ParametersError(msg, path=path, key=key)


def load_params(path: str | Path) -> Params:
    """Load and validate a parameters file. Raises ParametersError with file, key and suggestion."""
    p = Path(path)
    if not p.is_file():
        raise ParametersError("parameters file not found (give --params PATH to an existing YAML file)", path=str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParametersError(f"not valid YAML{where}: {problem}", path=str(p)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ParametersError(f"cannot read: {exc}", path=str(p)) from exc
    if not isinstance(data, dict):
        raise ParametersError("must be a YAML mapping of keys to values", path=str(p))
    try:
        params = Params.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, str(p)) from exc
    base = p.resolve().parent
    params.compose_files = [(base / f).resolve() for f in params.compose_files]
    params.env_files = [(base / f).resolve() for f in params.env_files]
    if params.policy.waivers_file:
        params.policy.waivers_file = (base / params.policy.waivers_file).resolve()
    if params.signoff.signing_key:
        params.signoff.signing_key = (base / params.signoff.signing_key).resolve()
    params.source = p.resolve()
    return params


#: The parameters file of a notebook opened by hand with ``params_file = ""``, when this variable is unset.
PARAMS_ENV = "RUNBOOK_PARAMS"
DEFAULT_PARAMS = Path("parameters") / "demo.yaml"


def resolve_params_file(params_file: str | Path | None, start: Path | None = None) -> Path:
    """The parameters file a notebook uses. Given (papermill, ``runbook run``, a person who typed a path):
    that path. Empty (a notebook opened by hand, whose first cell says ``params_file = ""``):
    ``$RUNBOOK_PARAMS``, else ``parameters/demo.yaml`` in the current directory or the nearest directory
    above it that has one (in a checkout: the demo's, from the notebooks in ``notebooks/``).
    Nothing is looked up in the package itself. Raises ParametersError saying what to set."""
    if params_file is not None and str(params_file).strip():
        return Path(params_file)
    env = os.environ.get(PARAMS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / DEFAULT_PARAMS).is_file():
            return d / DEFAULT_PARAMS
    raise ParametersError(f"params_file is empty, ${PARAMS_ENV} is not set and there is no {DEFAULT_PARAMS} in {here} "
                          f"or a directory above it: set params_file in the notebook's first cell, or "
                          f"{PARAMS_ENV}=/path/to/params.yaml before starting Jupyter")


def project_dir(params_source: str | Path | None) -> Path:
    """The directory a parameters file belongs to: the one holding it, or the one above when the file sits
    in a ``parameters/`` directory (what ``runbook init`` writes, and this checkout's layout). Without a
    file: the current directory. Where ``outputs/`` is when nobody says (an interactive drill's journal,
    the run an interactive sign-off reviews, compare.ipynb opened by hand); never the package's directory."""
    if not params_source:
        return Path.cwd()
    parent = Path(params_source).resolve().parent
    return parent.parent if parent.name == DEFAULT_PARAMS.parent.name else parent


def default_outputs(params_source: str | Path | None = None) -> Path:
    """``outputs/`` of :func:`project_dir`. Without a file: the project of :func:`resolve_params_file`
    (``$RUNBOOK_PARAMS``, else ``parameters/demo.yaml`` found upward), else ``./outputs``."""
    if not params_source:
        try:
            params_source = resolve_params_file("")
        except ParametersError:
            params_source = None
    return project_dir(params_source) / "outputs"


def load_waivers(path: str | Path) -> list[Waiver]:
    """Load a waivers file (``waivers: [...]``). Raises ParametersError naming the file and key."""
    p = Path(path)
    if not p.is_file():
        raise ParametersError("waivers file not found (policy.waivers_file)", path=str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParametersError(f"not valid YAML: {exc}", path=str(p)) from exc
    try:
        return WaiverFile.model_validate(data).waivers
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"])
        raise ParametersError(f"key {key!r}: {err['msg']}", path=str(p), key=key) from exc


def with_overrides(params: Params, *, compose_files: list[Path] | None = None, strategy: str | None = None) -> Params:
    """A copy of ``params`` with command-line overrides applied (paths relative to the cwd; ``strategy``:
    ``redeploy.strategy``, checked like the file's)."""
    if compose_files:
        params = params.model_copy(update={"compose_files": [Path(f).resolve() for f in compose_files]})
    if strategy:
        redeploy = type(params.redeploy).model_validate({**params.redeploy.model_dump(), "strategy": strategy})
        params = params.model_copy(update={"redeploy": redeploy})
    return params


def dump_resolved(params: Params, path: Path) -> None:
    """Write the resolved parameters (absolute paths) as YAML: the run directory's params.yaml."""
    data: dict[str, Any] = params.model_dump(mode="json", exclude={"source"})
    header = f"# Resolved parameters of this run (from {params.source}). No secret values.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
