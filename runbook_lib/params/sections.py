"""The sections of a parameters file, one typed model each (redeploy, smoke, security, production, policy,
signoff, engine), and the waivers file's model. :class:`runbook_lib.params.core.Params` puts the sections
together and loads them from YAML; ``python -m runbook_lib.params.doc`` documents every key from the
``Field`` descriptions here.

Parameters never hold secret values: only names and paths.
"""
from __future__ import annotations

import fnmatch
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from runbook_lib.params.probe import ProbeEndpoint, ProbeLoad  # noqa: F401 - redeploy.probe; re-exported
from runbook_lib.params.strict import StrictModel
from runbook_lib.params.fleet import Fleet, Target  # noqa: F401 - targets, fleet; re-exported


Severity = Literal["critical", "high", "medium", "low", "info"]


def _regexes(v: list[str]) -> list[str]:
    """A field validator: every item is a valid regular expression."""
    for p in v:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{p!r} is not a valid regular expression: {exc}") from exc
    return v


class InitStep(StrictModel):
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


class Redeploy(StrictModel):
    """Phase 1: controlled redeployment."""

    leftover_containers: list[str] = Field(default_factory=list, description=(
        "Containers of the same system started from other compose files (a separate logging stack...): stopped "
        "and removed before `up`. Names or shell-style patterns (fnmatch). Never list what a waiver accepts."))
    remove_volumes: bool = Field(default=False, description=(
        "Destructive: removes every named volume of the project. Needs confirm_volume_removal == project, and "
        "even then each volume is archived into the run directory first."))
    confirm_volume_removal: str = Field(default="", description=(
        "The project name, to confirm remove_volumes; set both or neither."))
    healthy_timeout_s: float = Field(default=180, gt=0, description=(
        "Seconds every service has to become healthy after `up` (swarm mode: to converge after `docker stack deploy`)."))
    down_timeout_s: float = Field(default=300, gt=0, description="Seconds `down` may take.")
    init_steps: list[InitStep] = Field(default_factory=list, description=(
        "Post-deploy steps (migrations, buckets...), run in order after every service is healthy."))
    resolve_image: Literal["always", "changed", "never"] = Field(default="always", description=(
        "Swarm mode: `docker stack deploy --resolve-image`. always (Docker's default) asks the registry for each "
        "image's digest, so every node runs the same image; never uses the tag as it is on each node (images "
        "built locally, no registry: the demo)."))
    on_failure: Literal["stop", "rollback"] = Field(default="stop", description=(
        "When the health gate after `up` fails, or the smoke tests (phase 4) of a run that redeployed have a blocker "
        "(compose mode): stop (the run is NO-GO), or rollback: redeploy the last GO run of the project under the "
        "outputs directory exactly (its image ids, compose model and secret file hashes; `runbook rollback`), verify "
        "it, and record it (in phase 1; after the smoke tests, in results/rollback.json). The run stays NO-GO."))
    probe: ProbeLoad = Field(default_factory=ProbeLoad, description=(
        "The probe load sent throughout phase 1; redeploy.outage judges what it saw."))
    max_outage_s: Optional[float] = Field(default=None, ge=0, description=(
        "The longest continuous failure of any probed endpoint that is accepted; over it, redeploy.outage is "
        "`over_outage`. None: the outage is measured and recorded (INFO), not judged."))
    over_outage: Literal["fail", "warn"] = Field(default="fail", description=(
        "What an outage over max_outage_s is: FAIL (at redeploy.outage's severity, which "
        "policy.severity_overrides may change) or WARN (recorded with its figure, never blocking)."))
    strategy: Literal["recreate", "rolling"] = Field(default="recreate", description=(
        "recreate: `down`, then `up` (everything stops). rolling: one service at a time in dependency order, the "
        "new container started beside the old one, ready, then the old one removed; a service that cannot run "
        "two containers (a fixed host port, container_name, a named volume mounted read-write) is recreated, and "
        "the plan says so before anything starts. Swarm mode: Swarm rolls; each service's update_config is judged."))
    behind_proxy: dict[str, str] = Field(default_factory=dict, description=(
        "rolling: service -> the proxy service in front of it, for services users reach only through that proxy "
        "(the demo's services behind its gateway). Such a service rolls even with a fixed host port, through a "
        "stand-in without the port (`docker compose run`) that serves while the port moves to the new container; "
        "the host port itself is unanswered for that moment. Without it, a fixed host port means recreate."))
    drain_s: float = Field(default=1, ge=0, le=60, description=(
        "rolling: seconds between the old container leaving its networks (its service name no longer resolves "
        "to it) and its stop, for requests already sent to it."))

    @model_validator(mode="after")
    def _rolling_keeps_volumes(self) -> "Redeploy":
        if self.strategy == "rolling" and self.remove_volumes:
            raise ValueError("remove_volumes needs strategy: recreate (a rolling redeployment never takes the "
                             "project down, so there is no moment to remove volumes)")
        return self


class Policy(StrictModel):
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


class Waiver(StrictModel):
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


class WaiverFile(StrictModel):
    """The file ``policy.waivers_file`` names."""

    waivers: list[Waiver] = Field(default_factory=list, description="The accepted risks.")


class Signoff(StrictModel):
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
JSON_PATH_RE = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*$")


def _statuses(v: Any) -> Any:
    return [v] if isinstance(v, int) else v


class Endpoint(StrictModel):
    """An HTTP endpoint smoke.health asks; passes when it answers one of ``expect_status`` in time."""

    name: str = Field(min_length=1, description="The record's target (unique in smoke.endpoints).")
    url: str = Field(pattern=r"^https?://", description="Host URL, e.g. http://127.0.0.1:8080/health.")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"] = Field(default="GET", description="HTTP method.")
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1, description=(
        "Statuses that pass (one number or a list)."))
    timeout_s: float = Field(default=5, gt=0, le=120, description="Seconds to wait for an answer.")

    _coerce_status = field_validator("expect_status", mode="before")(_statuses)


class MetricsEndpoint(StrictModel):
    """A Prometheus /metrics endpoint: 200, parses as text exposition, has every family listed."""

    name: str = Field(min_length=1, description="The record's target (unique in smoke.metrics).")
    url: str = Field(pattern=r"^https?://", description="Host URL of the exposition, e.g. http://127.0.0.1:8080/metrics.")
    families: list[str] = Field(default_factory=list, description=(
        "Metric families that must be present (a counter by its name with or without _total)."))
    timeout_s: float = Field(default=5, gt=0, le=120, description="Seconds to wait for an answer.")


class _Request(StrictModel):
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
    safe: bool = Field(default=False, description=(
        "The step changes nothing (e.g. a login POST): a read-only run runs it. GET, HEAD and OPTIONS steps are "
        "safe without saying so."))

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


class Drill(StrictModel):
    """A dependency drill: break ``dependency`` (stop its container, pause it, or disconnect it from
    its networks) for ``duration_s`` while probing ``endpoints`` every ``interval_s``; then restore it,
    wait until it is healthy, and require every endpoint back within ``recovery_budget_s``."""

    dependency: str = Field(min_length=1, description="The service to break (one drill per dependency).")
    mode: Literal["stop", "pause", "disconnect", "scale"] = Field(default="stop", description=(
        "How: stop its container, pause it, or disconnect it from its networks (compose mode); scale its swarm "
        "service to 0 replicas and back to the replicas it had (swarm mode, the only mode there)."))
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


class TurnServer(StrictModel):
    """smoke.turn: a TURN/STUN server asked over UDP: a binding answered, an allocation with the secret's
    long-term credentials granted, one with a wrong password refused."""

    name: str = Field(description="As the report names it.")
    url: str = Field(pattern=r"^turn:[^:/?]+(:\d+)?(\?transport=udp)?$",
                     description="turn:HOST[:PORT] (port 3478 when left out); UDP.")
    username: str = Field(min_length=1, description="The long-term credential's user name.")
    password_secret: str = Field(min_length=1, description="The compose model's file secret holding its password.")
    timeout_s: float = Field(default=2, gt=0, le=30, description="Seconds each request may take.")


class Smoke(StrictModel):
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
    turn: list[TurnServer] = Field(default_factory=list, description="smoke.turn: TURN/STUN servers to speak to.")

    @model_validator(mode="after")
    def _unique_names(self) -> "Smoke":
        for what, items in (("endpoints", self.endpoints), ("metrics", self.metrics), ("flow", self.flow),
                            ("turn", self.turn)):
            names = [i.name for i in items]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"smoke.{what}: duplicate name(s) {sorted(dup)}")
        deps = [d.dependency for d in self.drills]
        if len(set(deps)) != len(deps):
            raise ValueError("smoke.drills: one drill per dependency (its check id is smoke.drill.<dependency>)")
        return self


# The credential-name patterns are shared with the defaults `runbook lint` reads without pydantic (params/values.py).
from runbook_lib.params.values import DEFAULT_CREDENTIAL_PATTERNS, any_of as _any_of, default_pool_size  # noqa: E402


class SecretConsumer(StrictModel):
    """Secrets an image reads by convention (every /run/secrets/<prefix>__* file, say), so that no variable
    or command names them."""

    pattern: str = Field(min_length=1, description=(
        'Secret names (a shell-style pattern, e.g. "app__*") the image consumes by convention.'))
    reason: str = Field(min_length=1, description=(
        "Why: shown in the secrets.unreferenced record (INFO, \"consumed by convention: <reason>\")."))


class Security(StrictModel):
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

    _patterns_compile = field_validator("credential_patterns")(_regexes)

    def allowed(self, name: str) -> bool:
        """Is variable ``name`` on the plaintext allow-list?"""
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.plaintext_allow)

    def secret_consumer(self, name: str) -> SecretConsumer | None:
        """The secret_consumers entry that covers secret ``name``, if any."""
        return next((c for c in self.secret_consumers if fnmatch.fnmatchcase(name, c.pattern)), None)

    def looks_like_credential(self, name: str) -> bool:
        """Does variable ``name`` look like it holds a credential (by the credential patterns)?"""
        return bool(_any_of(tuple(self.credential_patterns)).search(name))


class Production(StrictModel):
    """Phase 3: production mode. What the running containers must look like, and how long to watch them.

    Every check reads the engine's own state (inspect, events, stats, logs): nothing is exec'd in a
    container, so distroless images are checked the same way.
    """

    expected_env: dict[str, str] = Field(default_factory=dict, description=(
        "prod.env: variables every app service must have, with these exact values (none by default: the "
        "frameworks' own switches, FLASK_DEBUG, NODE_ENV, RAILS_ENV..., are judged wherever a service sets them; "
        'ask for your own, e.g. {"ENV": "production"}, when your services read one)...'))
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
        "prod.logs: read the last log_tail lines of the window; 0 = every line of it."))
    log_since: Literal["start", "created"] = Field(default="start", description=(
        "prod.logs and prod.dev_server: the window of log lines read: since this deploy (start: the container's "
        "last start) or every line the engine holds (created: since the container was created, restarts included)."))
    log_5xx_max_fraction: float = Field(default=0.01, ge=0, le=1, description=(
        "prod.logs: the access-log lines (\"GET /path HTTP/1.1\" 503) answered 5xx must stay at or below this "
        "fraction; above it, each 5xx status and path is a finding."))
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

    _patterns_compile = field_validator("log_patterns")(_regexes)

    @field_validator("restart_policy")
    @classmethod
    def _known_policies(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.fullmatch(r"no|always|unless-stopped|on-failure(:\d+)?", p):
                raise ValueError(f"{p!r} is not a restart policy (no, always, unless-stopped, on-failure[:N])")
        return v


class EngineParams(StrictModel):
    """How the runbook talks to the Docker engine."""

    pool_size: int = Field(default_factory=default_pool_size, ge=1, le=64, description=(
        "Per-container reads (inspect, secrets archive, logs, stats, image inspect) run this many at once; records "
        "come out in the same order whatever the size. Default: twice the CPUs, at most 8."))
    stats_pool_size: int = Field(default=128, ge=1, le=256, description=(
        "Stats samples taken at once (prod.resources): a sample waits about 2 s for the engine's collector and "
        "costs nothing meanwhile, so up to this many are taken in one round (at least pool_size; a project of more "
        "containers takes more rounds of about 2 s)."))
    call_timeout_s: float = Field(default=60, gt=0, description=(
        "The deadline of each engine call: seconds without an answer before it fails (ERROR record)."))
    procfs_reads: bool = Field(default=True, description=(
        "Read files inside containers (the secrets mounts) through /proc/PID/root when the engine runs on this host "
        "and this process can see the container's process (checked per container by its cgroup): microseconds "
        "instead of an archive-API call (about 0.1 s of engine CPU each). Anything else (a remote engine, another "
        "PID namespace, user-namespace remapping, no permission) falls back to the archive API, as does false."))
