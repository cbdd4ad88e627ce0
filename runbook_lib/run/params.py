"""Typed run parameters, loaded from a YAML file.

Parameters never hold secret values: only names and paths. Unknown keys and wrong types are errors
that name the file, the key and, where one is close, the key that was probably meant.

Relative paths in a parameters file (compose files, env files) are relative to that file, so a
parameters file means the same thing whatever directory the runbook is started from. ``dump_resolved``
writes the absolute form into the run directory; that copy is what the phase notebooks load.
"""
from __future__ import annotations

import difflib
import fnmatch
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from runbook_lib.errors import ParametersError, UnsafeRequestError
from runbook_lib.engine.pool import default_pool_size

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")

# The phase notebooks, in run order. Contract: ids appear in result file names and in check records.
PHASES: tuple[str, ...] = (
    "00_preflight",
    "01_controlled_redeployment",
    "02_secrets_security",
    "03_production_mode",
    "04_smoke_tests",
    "05_signoff",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class InitStep(_Model):
    """A post-deploy step: a command run in a service's container, then a verification command whose
    output must match ``expect`` (a regular expression, searched line by line)."""

    name: str = Field(description="What the step does, as the report names it.")
    service: str = Field(description="The compose service whose container runs the command.")
    command: list[str] = Field(min_length=1, description="The command (argv list) run in the container.")
    verify: list[str] = Field(default_factory=list, description="A command (argv list) whose output proves the "
                              "step took effect; needs `expect`.")
    expect: Optional[str] = Field(default=None, description="Regular expression the verify output must match "
                                  "(searched line by line).")
    timeout_s: float = Field(default=120, gt=0, description="Seconds each command may take.")

    @field_validator("expect")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return v

    @model_validator(mode="after")
    def _verify_needs_expect(self) -> "InitStep":
        if self.verify and self.expect is None:
            raise ValueError("`verify` needs `expect`: the pattern the verification output must match")
        return self


class Redeploy(_Model):
    """Phase 1: controlled redeployment."""

    leftover_containers: list[str] = Field(default_factory=list, description=(
        "Containers of the same system started from other compose files (a separate logging stack...): stopped "
        "and removed before `up`. Names or shell-style patterns (fnmatch). Never list what a waiver accepts."))
    remove_volumes: bool = Field(default=False, description=(
        "Destructive: removes every named volume of the project. Needs confirm_volume_removal == project, and "
        "even then each volume is archived into the run directory first."))
    confirm_volume_removal: str = Field(default="", description=(
        "The project name, to confirm remove_volumes; set both or neither."))
    healthy_timeout_s: float = Field(default=180, gt=0, description="Seconds every service has to become healthy after `up`.")
    down_timeout_s: float = Field(default=300, gt=0, description="Seconds `down` may take.")
    init_steps: list[InitStep] = Field(default_factory=list, description=(
        "Post-deploy steps (migrations, buckets...), run in order after every service is healthy."))


class Policy(_Model):
    """How check records become a verdict (see policy.py)."""

    blocking_severities: list[Severity] = Field(default_factory=lambda: ["critical", "high"], description=(
        "A FAIL of one of these severities blocks the release (NO-GO)."))
    severity_overrides: dict[str, Severity] = Field(default_factory=dict, description=(
        'Per-check-id severity overrides, e.g. {"secrets.file_mode": "medium"}; ids must be declared '
        "(`runbook checks`)."))
    required_checks: list[str] = Field(default_factory=list, description=(
        "Check ids (shell-style patterns) that must run: a SKIP of one blocks, whatever its severity. An ERROR "
        "always blocks: a check that could not gather its evidence is uncertainty."))
    waivers_file: Optional[Path] = Field(default=None, description=(
        "A YAML file of waivers (see the waivers file section); relative to the parameters file."))


class Waiver(_Model):
    """An accepted risk: turns a matching FAIL or WARN into WAIVED until it expires. Every field but
    ``target`` is required: a waiver nobody owns, approved by nobody, that never expires, is not one."""

    id: Optional[str] = Field(default=None, description=(
        "How the report names it; default W-<position in the file, from 1>."))
    check: str = Field(min_length=1, description="Check id, e.g. prod.healthcheck (must be declared).")
    target: Optional[str] = Field(default=None, description="One target; none means every target of the check.")
    justification: str = Field(min_length=10, description="Why the risk is accepted (and where it is tracked).")
    owner: str = Field(min_length=1, description="Who owns the risk.")
    approver: str = Field(min_length=1, description="Who approved the waiver.")
    expires: date = Field(description="The date (YYYY-MM-DD) from which the waiver covers nothing.")

    def matches(self, check_id: str, target: str) -> bool:
        return self.check == check_id and (self.target is None or self.target == target)


class WaiverFile(_Model):
    """The file ``policy.waivers_file`` names."""

    waivers: list[Waiver] = Field(default_factory=list, description="The accepted risks.")


class Signoff(_Model):
    """Phase 5: who signs, how the archive is signed, and how checks group into the final table."""

    approver: str = Field(default="", description="Who approves the release (the sign-off block).")
    signing_key: Optional[Path] = Field(default=None, description=(
        "Ed25519 private key (PEM) that signs manifest.json; or the RUNBOOK_SIGNING_KEY environment variable. "
        "Relative to the parameters file. No key: the manifest is written unsigned."))
    generate_missing_key: bool = Field(default=False, description=(
        "Demo convenience: create signing_key with `runbook keygen` semantics when it does not exist."))
    categories: dict[str, list[str]] = Field(default_factory=dict, description=(
        "The verification table's rows: category -> check-id patterns. Empty uses the built-in categories."))


# -- phase 4: smoke tests ----------------------------------------------------------------------------
# Flow and drill requests may use templates: ``{{ name }}`` (a value captured by an earlier flow step,
# or ``run_id``: random hex per run) and ``{{ secret:NAME }}`` (the content of the compose model's file
# secret NAME, read at run time; the parameters only ever hold the name).
_TEMPLATE_RE = re.compile(r"\{\{\s*(secret:)?([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
JSON_PATH_RE = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*$")


def _statuses(v: Any) -> Any:
    return [v] if isinstance(v, int) else v


class Endpoint(_Model):
    """An HTTP endpoint smoke.health asks; passes when it answers one of ``expect_status`` in time."""

    name: str = Field(min_length=1, description="The record's target (unique in smoke.endpoints).")
    url: str = Field(pattern=r"^https?://", description="Host URL, e.g. http://127.0.0.1:8080/health.")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"] = Field(default="GET", description="HTTP method.")
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1, description=(
        "Statuses that pass (one number or a list)."))
    timeout_s: float = Field(default=5, gt=0, le=120, description="Seconds to wait for an answer.")

    _coerce_status = field_validator("expect_status", mode="before")(_statuses)


class MetricsEndpoint(_Model):
    """A Prometheus /metrics endpoint: 200, parses as text exposition, has every family listed."""

    name: str = Field(min_length=1, description="The record's target (unique in smoke.metrics).")
    url: str = Field(pattern=r"^https?://", description="Host URL of the exposition, e.g. http://127.0.0.1:8080/metrics.")
    families: list[str] = Field(default_factory=list, description=(
        "Metric families that must be present (a counter by its name with or without _total)."))
    timeout_s: float = Field(default=5, gt=0, le=120, description="Seconds to wait for an answer.")


class _Request(_Model):
    """A templated HTTP request (flow steps, drill probes). ``json`` and ``body`` are exclusive."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    name: str = Field(min_length=1, description="The step or probe, as the report names it.")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = Field(default="GET", description="HTTP method.")
    url: str = Field(pattern=r"^(https?://|\{\{)", description="URL; templates allowed ({{ name }}, {{ secret:NAME }}).")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; templates allowed.")
    json_body: Any = Field(default=None, alias="json", description="A JSON body (key `json`); templates allowed in strings.")
    body: Optional[str] = Field(default=None, description="A text body; exclusive with `json`.")

    @model_validator(mode="after")
    def _one_body(self) -> "_Request":
        if self.json_body is not None and self.body is not None:
            raise ValueError("give `json` or `body`, not both")
        return self


class FlowStep(_Request):
    """One step of the end-to-end flow: a request, the status it must answer, values captured from
    its JSON response (``{"token": "$.token"}``, usable later as ``{{ token }}``), and assertions on
    response fields (``{"$.token_type": "Bearer"}``) or on the whole body (``expect_body``)."""

    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1, description=(
        "Statuses that pass (one number or a list)."))
    capture: dict[str, str] = Field(default_factory=dict, description=(
        'Values to keep from the JSON answer: name -> JSON path ({"token": "$.token"}), used later as {{ token }}.'))
    expect_json: dict[str, Any] = Field(default_factory=dict, description=(
        'JSON path -> the value it must have ({"$.token_type": "Bearer"}).'))
    expect_body: Optional[str] = Field(default=None, description="The whole body it must answer (templates allowed).")
    timeout_s: float = Field(default=10, gt=0, le=300, description="Seconds to wait for an answer.")

    _coerce_status = field_validator("expect_status", mode="before")(_statuses)

    @field_validator("capture", "expect_json")
    @classmethod
    def _json_paths(cls, v: dict[str, Any], info) -> dict[str, Any]:
        paths = v.values() if info.field_name == "capture" else v.keys()
        for p in paths:
            if not isinstance(p, str) or not JSON_PATH_RE.match(p):
                raise ValueError(f"{p!r} is not a JSON path of the form $.field.sub[0]")
        return v


class DrillEndpoint(_Request):
    """An endpoint probed during a drill, with what it should do while the dependency is down:
    ``available`` (designed degraded mode: every probe answers one of ``ok_status``), ``must_fail``
    (no probe may answer ok: the dependency is really used), ``may_fail`` (anything goes). Whatever
    the expectation, it must answer ok again within the drill's recovery budget."""

    expect: Literal["available", "may_fail", "must_fail"] = Field(default="may_fail", description=(
        "Designed behaviour while the dependency is down: available (every probe answers ok), must_fail (none "
        "may), may_fail (anything goes)."))
    ok_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204], min_length=1, description=(
        "Statuses that count as answering ok."))

    _coerce_status = field_validator("ok_status", mode="before")(_statuses)


class Drill(_Model):
    """A dependency drill: break ``dependency`` (stop its container, pause it, or disconnect it from
    its networks) for ``duration_s`` while probing ``endpoints`` every ``interval_s``; then restore it,
    wait until it is healthy, and require every endpoint back within ``recovery_budget_s``."""

    dependency: str = Field(min_length=1, description="The service to break (one drill per dependency).")
    mode: Literal["stop", "pause", "disconnect"] = Field(default="stop", description=(
        "How: stop its container, pause it, or disconnect it from its networks."))
    duration_s: float = Field(default=5, gt=0, le=900, description="Seconds the fault lasts.")
    interval_s: float = Field(default=0.25, ge=0.05, le=10, description="Seconds between probes.")
    probe_timeout_s: float = Field(default=3, gt=0, le=60, description="Seconds each probe may take.")
    baseline_s: float = Field(default=1, ge=0, le=60, description=(
        "Probing before the fault, so the timeline shows the steady state it departs from."))
    endpoints: list[DrillEndpoint] = Field(min_length=1, description="What to probe, each with its designed behaviour.")
    recovery_budget_s: float = Field(default=30, gt=0, le=900, description=(
        "Seconds after the restore within which every endpoint must answer ok again."))
    healthy_timeout_s: float = Field(default=60, gt=0, le=900, description=(
        "Seconds the restored dependency has to be ready again."))
    flow_after: bool = Field(default=True, description=(
        "Re-run smoke.flow after recovery (and before the fault, as the steady state to start from)."))


class Smoke(_Model):
    """Phase 4: smoke tests. ``endpoints`` empty means ``GET /health`` on the first published TCP port
    of each app service (from the compose model). ``flow`` runs once as smoke.flow and around every
    drill; ``drills`` break one dependency each and always restore it (journal in the run directory)."""

    endpoints: list[Endpoint] = Field(default_factory=list, description=(
        "smoke.health's endpoints; empty: GET health_path on the first published TCP port of each app service."))
    health_path: str = Field(default="/health", description="The path asked when endpoints is empty.")
    retries: int = Field(default=2, ge=0, le=10, description="Retries after a connection error or timeout.")
    concurrency: int = Field(default=20, ge=1, le=200, description="Requests in flight at once.")
    excerpt_chars: int = Field(default=300, ge=0, le=5000, description=(
        "Body excerpts kept as evidence (after redaction); longer bodies are truncated."))
    metrics: list[MetricsEndpoint] = Field(default_factory=list, description="smoke.metrics: /metrics endpoints.")
    flow: list[FlowStep] = Field(default_factory=list, description="smoke.flow: the end-to-end scenario, in order.")
    drills: list[Drill] = Field(default_factory=list, description="smoke.drill.<dependency>: one per dependency.")

    @model_validator(mode="after")
    def _unique_names(self) -> "Smoke":
        for what, items in (("endpoints", self.endpoints), ("metrics", self.metrics), ("flow", self.flow)):
            names = [i.name for i in items]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"smoke.{what}: duplicate name(s) {sorted(dup)}")
        deps = [d.dependency for d in self.drills]
        if len(set(deps)) != len(deps):
            raise ValueError("smoke.drills: one drill per dependency (its check id is smoke.drill.<dependency>)")
        return self


# The credential-name patterns live with the defaults `runbook lint` reads without pydantic (run/defaults.py).
from runbook_lib.run.defaults import DEFAULT_CREDENTIAL_PATTERNS, any_of as _any_of  # noqa: E402


class SecretConsumer(_Model):
    """Secrets an image reads by convention (every /run/secrets/<prefix>__* file, say), so that no variable
    or command names them."""

    pattern: str = Field(min_length=1, description=(
        'Secret names (a shell-style pattern, e.g. "app__*") the image consumes by convention.'))
    reason: str = Field(min_length=1, description=(
        "Why: shown in the secrets.unreferenced record (INFO, \"consumed by convention: <reason>\")."))


class Security(_Model):
    """Phase 2 and `runbook lint`: what counts as a secret leak or a hardening gap here."""

    internal_services: list[str] = Field(default_factory=list, description=(
        "Services that must not be reachable from outside the host (databases, caches, brokers): publishing one "
        "on an interface not in publish_interfaces is a FAIL (for other services it is a WARN)."))
    publish_interfaces: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"], description=(
        'Host interfaces a port may be published on. "0.0.0.0" or "::" here means any interface is fine.'))
    readable_by_others: Literal["warn", "fail"] = Field(default="warn", description=(
        'A secret file readable by "others" (mode o+r): WARN, or FAIL where that is not acceptable.'))
    plaintext_allow: list[str] = Field(default_factory=list, description=(
        "Variable names (shell-style patterns) never reported as plaintext credentials: known false positives."))
    credential_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_CREDENTIAL_PATTERNS), description=(
        "Regular expressions matched against variable names to spot credentials (case-insensitive)."))
    secrets_dir: str = Field(default="/run/secrets", description=(
        "Where Compose mounts secrets by default; a value under it is a pointer to a secret, not the secret."))
    tls_terminated: list[str] = Field(default_factory=list, description=(
        "hardening.tls: services whose plain-HTTP ports sit behind a TLS terminator (a load balancer, a proxy): "
        "their HTTP published beyond loopback is not a finding. A service can also say so itself with the label "
        "`runbook.tls-terminated: \"true\"`."))
    log_tail_lines: int = Field(default=2000, gt=0, description=(
        "How many recent log lines of each container phase 2 searches for secret values."))
    secret_consumers: list[SecretConsumer] = Field(default_factory=list, description=(
        "secrets.unreferenced: secrets the image reads by convention ({pattern, reason}): a matching secret that "
        "no variable or command names is not a finding; its record says \"consumed by convention\" and why."))

    @field_validator("credential_patterns")
    @classmethod
    def _patterns_compile(cls, v: list[str]) -> list[str]:
        for pat in v:
            try:
                re.compile(pat)
            except re.error as exc:
                raise ValueError(f"{pat!r} is not a valid regular expression: {exc}") from exc
        return v

    def allowed(self, name: str) -> bool:
        """Is variable ``name`` on the plaintext allow-list?"""
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.plaintext_allow)

    def secret_consumer(self, name: str) -> SecretConsumer | None:
        """The secret_consumers entry that covers secret ``name``, if any."""
        return next((c for c in self.secret_consumers if fnmatch.fnmatchcase(name, c.pattern)), None)

    def looks_like_credential(self, name: str) -> bool:
        """Does variable ``name`` look like it holds a credential (by the credential patterns)?"""
        return bool(_any_of(tuple(self.credential_patterns)).search(name))


class Production(_Model):
    """Phase 3: production mode. What the running containers must look like, and how long to watch them.

    Every check reads the engine's own state (inspect, events, stats, logs): nothing is exec'd in a
    container, so distroless images are checked the same way.
    """

    expected_env: dict[str, str] = Field(default_factory=lambda: {"ENV": "production"}, description=(
        "prod.env: variables every app service must have, with these exact values..."))
    env_overrides: dict[str, dict[str, str]] = Field(default_factory=dict, description=(
        '...merged with per-service additions or changes, e.g. {"api-gateway": {"LOG_LEVEL": "warn"}}...'))
    env_excluded: list[str] = Field(default_factory=list, description=(
        "...except for these services (a batch job that has no ENV, say)."))
    restart_policy: list[str] = Field(default_factory=lambda: ["always", "unless-stopped"], min_length=1, description=(
        'prod.restart_policy: the accepted policies (always, unless-stopped, on-failure, on-failure:N; plain '
        '"on-failure" accepts any retry count).'))
    restart_policy_overrides: dict[str, list[str]] = Field(default_factory=dict, description=(
        "Per-service replacements of restart_policy."))
    max_restarts: int = Field(default=0, ge=0, description="prod.stability: restarts tolerated since the container was created.")
    observe_s: float = Field(default=0, ge=0, le=3600, description=(
        "prod.stability: seconds to watch the engine's events for a die/restart/oom (0 = no observation window)."))
    resource_threshold: float = Field(default=0.8, gt=0, le=1, description=(
        "prod.resources: usage in one stats sample must stay below this fraction of each limit."))
    require_limits: bool = Field(default=True, description="prod.resources: memory and CPU limits must be set.")
    log_patterns: list[str] = Field(default_factory=lambda: [
        r"\bpanic\b", r"\bfatal\b", r"segfault|segmentation fault", r"out of memory"], description=(
        "prod.logs: regular expressions (case-insensitive) that must not match any log line."))
    log_tail: int = Field(default=0, ge=0, description=(
        "prod.logs: read the last log_tail lines; 0 = every line since the container started."))
    prometheus_url: str = Field(default="", description=(
        "prod.observability: Prometheus base URL (e.g. http://127.0.0.1:9090); the check is skipped without it."))
    alertmanager_url: str = Field(default="", description="Alertmanager base URL; the check is skipped without it.")
    grafana_url: str = Field(default="", description="Grafana base URL (/api/health); the check is skipped without it.")
    loki_url: str = Field(default="", description="Loki base URL (/ready, query_range); the check is skipped without it.")
    loki_freshness_min: float = Field(default=5, gt=0, description=(
        "Loki must have a line from every app service in the last this many minutes."))
    loki_selector: str = Field(default='{compose_service="{service}"}', description=(
        "The LogQL stream selector of one service; the text {service} is replaced by its name."))
    prometheus_wait_s: float = Field(default=20, ge=0, description=(
        'Seconds to wait for Prometheus targets still "unknown" (never scraped yet).'))
    http_timeout_s: float = Field(default=5, gt=0, description="Seconds each observability request may take.")

    @field_validator("log_patterns")
    @classmethod
    def _patterns_compile(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"{p!r} is not a valid regular expression: {exc}") from exc
        return v

    @field_validator("restart_policy")
    @classmethod
    def _known_policies(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.fullmatch(r"no|always|unless-stopped|on-failure(:\d+)?", p):
                raise ValueError(f"{p!r} is not a restart policy (no, always, unless-stopped, on-failure[:N])")
        return v


class EngineParams(_Model):
    """How the runbook talks to the Docker engine."""

    pool_size: int = Field(default_factory=default_pool_size, ge=1, le=64, description=(
        "Per-container reads (inspect, secrets archive, logs, stats, image inspect) run this many at once; records "
        "come out in the same order whatever the size. Default: twice the CPUs, at most 8."))
    stats_pool_size: int = Field(default=32, ge=1, le=256, description=(
        "Stats samples taken at once (prod.resources): a sample waits about 2 s for the engine's collector and "
        "costs nothing meanwhile, so they are bounded separately (at least pool_size)."))
    call_timeout_s: float = Field(default=60, gt=0, description=(
        "The deadline of each engine call: seconds without an answer before it fails (ERROR record)."))


class Params(_Model):
    """Everything a run needs to know about the deployment it verifies."""

    project: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="The compose project name.")
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

    # Where the file was loaded from (not a parameter; set by load_params).
    source: Optional[Path] = Field(default=None, exclude=True)

    @field_validator("phases")
    @classmethod
    def _known_phases(cls, v: list[str]) -> list[str]:
        problem = unknown_phase(v)
        if problem:
            raise ValueError(problem)
        return sorted(set(v), key=PHASES.index)

    def service_names_used(self) -> dict[str, list[str]]:
        """Every service name the parameters mention, by where it is mentioned."""
        used: dict[str, list[str]] = {}
        for s in self.app_services:
            used.setdefault(s, []).append("app_services")
        for s in self.dependencies:
            used.setdefault(s, []).append("dependencies")
        for i, step in enumerate(self.redeploy.init_steps):
            used.setdefault(step.service, []).append(f"redeploy.init_steps[{i}].service")
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

    def leftover_matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name.lstrip("/"), pat) for pat in self.redeploy.leftover_containers)

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


def with_overrides(params: Params, *, compose_files: list[Path] | None = None) -> Params:
    """A copy of ``params`` with command-line overrides applied (paths relative to the cwd)."""
    if compose_files:
        params = params.model_copy(update={"compose_files": [Path(f).resolve() for f in compose_files]})
    return params


def dump_resolved(params: Params, path: Path) -> None:
    """Write the resolved parameters (absolute paths) as YAML: the run directory's params.yaml."""
    data: dict[str, Any] = params.model_dump(mode="json", exclude={"source"})
    header = f"# Resolved parameters of this run (from {params.source}). No secret values.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
