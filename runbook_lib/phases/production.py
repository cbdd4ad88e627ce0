"""Phase 3, production mode: does every service run the reviewed configuration, stay up, stay inside
its limits, and is it being watched?

Every check reads the engine's own state — ``docker inspect``, the events stream, one stats sample,
``docker logs`` — and never execs a shell in a container, so distroless images are checked the same
way. The expectations come from the ``production:`` section of the parameters
(:class:`runbook_lib.run.params.Production`) and, for drift, from the compose model itself.

Check ids (stable): ``prod.env``, ``prod.restart_policy``, ``prod.healthcheck``, ``prod.drift``,
``prod.orphans`` (a container of the project outside the compose model), ``prod.stability``,
``prod.resources``, ``prod.logs``, ``prod.observability`` (an endpoint answers),
``prod.observability.scrape`` (Prometheus scrapes an app service), ``prod.observability.logs`` (Loki
has recent lines of an app service). The target is the service name, the observability component, or
(prod.orphans) the container name.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

from runbook_lib.run.context import Context
from runbook_lib.results.display import png
from runbook_lib.engine.containers import CONFIG_FILES_LABEL, CONFIG_HASH_LABEL, ContainerView
from runbook_lib.errors import RunbookError
from runbook_lib.run.params import Production
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.results.redact import marker
from runbook_lib.lint.restart import model_restart as _model_restart, policy_accepted  # noqa: F401 (re-exported)

PHASE = "03_production_mode"

# Names whose values are masked in drift evidence even before redaction (a literal credential the
# redactor has not learned must not be printed while pointing at a difference).
_CREDENTIAL_NAME = re.compile(r"(?i)(secret|passw|token|api_?key|private_?key|credential|auth)")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}
MAX_LOG_MATCHES = 20


# ----------------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------------

def app_services(ctx: Context) -> list[str]:
    """The parameters' app services, or (when none are listed) every service that publishes a port."""
    if ctx.params.app_services:
        return list(ctx.params.app_services)
    return sorted(n for n, s in ctx.model.get("services", {}).items() if s.get("ports"))


def _by_service(ctx: Context) -> dict[str, list[ContainerView]]:
    out: dict[str, list[ContainerView]] = {s: [] for s in ctx.services}
    for v in ctx.engine.project_containers(ctx.params.project):
        out.setdefault(v.service, []).append(v)
    return out


def _inspect_cmd(v: ContainerView | str, fmt: str) -> str:
    name = v.name if isinstance(v, ContainerView) else v
    return f"docker inspect --format '{fmt}' {name}"


def _no_container(c: Check, svc: str, expected: str) -> CheckRecord:
    return c.record(svc, "FAIL", expected=expected, actual="no container of this service exists",
                    evidence={"read": "docker ps -a (compose project label)", "service": svc, "containers": []},
                    command=f"docker ps -a --filter label=com.docker.compose.service={svc}")


def _each_container(ctx: Context, c: Check, services: list[str], expected: str,
                    judge: Callable[[ContainerView], CheckRecord]) -> list[CheckRecord]:
    """Run ``judge`` on every container of ``services`` (concurrently, :meth:`Context.map_containers`);
    a missing container is a FAIL, an engine error an ERROR for that service."""
    try:
        by_service = _by_service(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected=expected)]
    # judged concurrently on the engine's bounded pool; records in service order whatever the pool size
    judged = iter(ctx.map_containers(judge, [v for svc in services for v in by_service.get(svc, [])]))
    out = []
    for svc in services:
        views = by_service.get(svc, [])
        if not views:
            out.append(_no_container(c, svc, expected))
            continue
        for v in views:
            r = next(judged)
            out.append(c.error(svc, r, expected=expected) if isinstance(r, RunbookError) else r)
    return out


def _unescape(value: Any) -> Any:
    """``docker compose config`` prints a literal ``$`` as ``$$`` (so its output can be read back);
    the engine sees one ``$``."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    return value


def _mask(name: str, value: Any) -> Any:
    if value is None or not _CREDENTIAL_NAME.search(name):
        return value
    return marker(str(value))


def parse_duration_ns(text: Any) -> int:
    """A Go/compose duration (``"1m30s"``, ``"500ms"``) or a number of nanoseconds, in nanoseconds."""
    if text is None or text == "":
        return 0
    if isinstance(text, (int, float)):
        return int(text)
    parts = _DURATION_PART.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).strip():
        raise ValueError(f"not a duration: {text!r}")
    return int(sum(float(n) * _DURATION_NS[u] for n, u in parts))


def _to_bytes(value: Any) -> int:
    """A compose memory value ("134217728", "128m", 134217728) in bytes; 0 when unset."""
    if value in (None, "", 0):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    m = re.fullmatch(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(value))
    if not m:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


# ----------------------------------------------------------------------------------------------------
# prod.env
# ----------------------------------------------------------------------------------------------------

def expected_env_for(ctx: Context, service: str) -> dict[str, str]:
    """The variables ``service`` must carry: ``expected_env`` merged with its ``env_overrides``."""
    p = ctx.params.production
    return {**p.expected_env, **p.env_overrides.get(service, {})}


@check("prod.env", "Environment has the production values", phase=PHASE, severity="high", category="Production mode",
       remediation="Set the variables in the service's `environment:` (or env_file) and redeploy; "
                   "check no override file sets a development value.")
def env(ctx: Context) -> list[CheckRecord]:
    """prod.env: every app service (but those excluded) has each expected variable with exactly the
    expected value in ``Config.Env``. PASS when all match; FAIL naming each missing or different one.
    Only the expected variables are shown in the evidence, never the rest of the environment."""
    p = ctx.params.production
    c = Check("prod.env")
    services = [s for s in app_services(ctx) if s not in p.env_excluded]

    def judge(v: ContainerView) -> CheckRecord:
        want = expected_env_for(ctx, v.service)
        have = v.environment
        seen = {k: have.get(k) for k in want}
        bad = {k: {"expected": w, "actual": seen[k]} for k, w in want.items() if seen[k] != w}
        ev = {"read": "docker inspect Config.Env (expected variables only)", "container": v.name,
              "expected": want, "actual": seen}
        cmd = _inspect_cmd(v, "{{json .Config.Env}}")
        expected = ", ".join(f"{k}={w}" for k, w in want.items()) or "(nothing expected)"
        if not want:
            return c.record(v.service, "SKIP", expected="expected variables in the parameters",
                            actual="production.expected_env is empty for this service", evidence=ev,
                            command=cmd, severity="info")
        if bad:
            ev["differences"] = bad
            actual = "; ".join(f"{k} is {'unset' if d['actual'] is None else repr(d['actual'])}, expected {d['expected']!r}"
                               for k, d in bad.items())
            return c.record(v.service, "FAIL", expected=expected, actual=actual, evidence=ev, command=cmd)
        return c.record(v.service, "PASS", expected=expected, actual="all set as expected", evidence=ev, command=cmd)

    return _each_container(ctx, c, services, "the expected environment", judge)


# ----------------------------------------------------------------------------------------------------
# prod.restart_policy
# ----------------------------------------------------------------------------------------------------

@check("prod.restart_policy", "Restart policy as expected", phase=PHASE, severity="high", category="Production mode",
       remediation="Set `restart: always` (or the policy the parameters expect) on the service and redeploy.")
def restart_policy(ctx: Context) -> list[CheckRecord]:
    """prod.restart_policy: every service's ``HostConfig.RestartPolicy`` is one the parameters accept
    (default: always or unless-stopped). A service with policy "no" stays down after a crash or an
    engine restart."""
    p = ctx.params.production
    c = Check("prod.restart_policy")

    def judge(v: ContainerView) -> CheckRecord:
        accepted = p.restart_policy_overrides.get(v.service) or p.restart_policy
        rp = v.host_config.get("RestartPolicy") or {}
        ev = {"read": "docker inspect HostConfig.RestartPolicy", "container": v.name,
              "restart_policy": {"name": rp.get("Name") or "no", "maximum_retry_count": rp.get("MaximumRetryCount", 0)},
              "accepted": accepted}
        cmd = _inspect_cmd(v, "{{json .HostConfig.RestartPolicy}}")
        status = "PASS" if policy_accepted(v.restart_policy, accepted) else "FAIL"
        actual = v.restart_policy + ("" if status == "PASS" else
                                     (": the container stays down after a crash or an engine restart"
                                      if v.restart_policy == "no" else ": not an accepted policy"))
        return c.record(v.service, status, expected=" or ".join(accepted), actual=actual, evidence=ev, command=cmd)

    return _each_container(ctx, c, ctx.services, "an accepted restart policy", judge)


# ----------------------------------------------------------------------------------------------------
# prod.healthcheck
# ----------------------------------------------------------------------------------------------------

@check("prod.healthcheck", "Healthcheck defined and healthy", phase=PHASE, severity="high", category="Production mode",
       remediation="Define a healthcheck that probes the service's real work (in the compose file or the "
                   "image), and fix what makes it fail: read the health log in the evidence.")
def healthcheck(ctx: Context) -> list[CheckRecord]:
    """prod.healthcheck: a healthcheck is defined (by the compose file or the image) and the container
    is healthy now. Unhealthy is a FAIL that also says who will act on it: outside swarm, Docker
    restarts a container only when its process exits, never because it is unhealthy, so an unhealthy
    container that keeps running stays unhealthy (and with policy "no" nothing restarts it at all)."""
    c = Check("prod.healthcheck")
    model = ctx.model.get("services", {})

    def judge(v: ContainerView) -> CheckRecord:
        spec = model.get(v.service, {}).get("healthcheck")
        source = ("compose (disable: true)" if spec and spec.get("disable") else
                  "compose" if spec else "image" if v.has_healthcheck else "none")
        ev = {"read": "docker inspect Config.Healthcheck and State.Health", "container": v.name,
              "defined_by": source, "healthcheck": v.healthcheck_config, "health": v.health,
              "health_log": v.health_log[-3:], "restart_policy": v.restart_policy, "state": v.state}
        cmd = _inspect_cmd(v, "{{json .Config.Healthcheck}} {{json .State.Health}}")
        if not v.has_healthcheck:
            return c.record(v.service, "FAIL", expected="a healthcheck is defined and the container is healthy",
                            actual=f"no healthcheck (defined by: {source}): nothing tells the engine or the "
                                   "operator when this service stops working", evidence=ev, command=cmd)
        if v.health == "healthy":
            return c.record(v.service, "PASS", expected="healthy", actual=f"healthy (healthcheck from {source})",
                            evidence=ev, command=cmd)
        last = v.health_log[-1] if v.health_log else None
        detail = f"; last check exited {last['exit_code']}: {last['output'][:200] or '(no output)'}" if last else ""
        if v.health == "starting":
            return c.record(v.service, "WARN", expected="healthy", actual=f"still starting{detail}", evidence=ev,
                            command=cmd, severity="medium")
        who = ("restart policy \"no\": nothing will ever restart it" if v.restart_policy == "no" else
               f"restart policy {v.restart_policy} acts only when the process exits: while it keeps running "
               "unhealthy, nothing will restart it")
        ev["never_restarted_by_policy"] = v.running
        return c.record(v.service, "FAIL", expected="healthy",
                        actual=f"{v.health or v.state}{detail}; {who}" if v.running else f"{v.state}{detail}",
                        evidence=ev, command=cmd)

    return _each_container(ctx, c, ctx.services, "a healthy healthcheck", judge)


# ----------------------------------------------------------------------------------------------------
# prod.drift
# ----------------------------------------------------------------------------------------------------

def _model_limits(spec: dict[str, Any]) -> dict[str, Any]:
    limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    return {"memory_bytes": _to_bytes(spec.get("mem_limit") or limits.get("memory")),
            "cpus": float(spec.get("cpus") or limits.get("cpus") or 0),
            "pids": int(spec.get("pids_limit") or limits.get("pids") or 0)}


def _model_ports(spec: dict[str, Any]) -> list[str]:
    out = []
    for p in spec.get("ports") or []:
        published = str(p.get("published") or "")
        target = int(p["target"])
        if "-" in published:
            lo, hi = (int(x) for x in published.split("-"))
            pairs = [(str(lo + i), target + i) for i in range(hi - lo + 1)]
        else:
            pairs = [(published, target)]
        for pub, tgt in pairs:
            out.append(f"{p.get('host_ip') or ''}:{pub}->{tgt}/{p.get('protocol') or 'tcp'}")
    return sorted(out)


def _container_ports(v: ContainerView) -> list[str]:
    out = []
    for spec, binds in (v.host_config.get("PortBindings") or {}).items():
        port, _, proto = spec.partition("/")
        for b in binds or []:
            out.append(f"{b.get('HostIp') or ''}:{b.get('HostPort') or ''}->{port}/{proto or 'tcp'}")
    return sorted(out)


def _model_secrets(ctx: Context, spec: dict[str, Any]) -> dict[str, str]:
    top = ctx.model.get("secrets") or {}
    out = {}
    for s in spec.get("secrets") or []:
        src = s["source"] if isinstance(s, dict) else s
        target = (s.get("target") if isinstance(s, dict) else None) or src
        if not target.startswith("/"):
            target = f"/run/secrets/{target}"
        out[target] = (top.get(src) or {}).get("file") or f"(secret {src})"
    return out


def _container_secrets(v: ContainerView, expected: dict[str, str]) -> dict[str, str]:
    return {m.get("Destination"): m.get("Source") for m in v.mounts
            if m.get("Destination") in expected or str(m.get("Destination", "")).startswith("/run/secrets/")}


def _healthcheck_expected(spec: dict[str, Any]) -> dict[str, Any] | None:
    hc = spec.get("healthcheck")
    if not hc:
        return None
    if hc.get("disable"):
        return {"test": ["NONE"]}
    out: dict[str, Any] = {}
    if hc.get("test") is not None:
        test = hc["test"]
        out["test"] = _unescape(["CMD-SHELL", test] if isinstance(test, str) else list(test))
    for key in ("interval", "timeout", "start_period"):
        if hc.get(key) is not None:
            out[key] = parse_duration_ns(hc[key])
    if hc.get("retries") is not None:
        out["retries"] = int(hc["retries"])
    return out


def _healthcheck_actual(v: ContainerView) -> dict[str, Any]:
    hc = v.healthcheck_config
    return {"test": list(hc.get("Test") or []), "interval": hc.get("Interval", 0), "timeout": hc.get("Timeout", 0),
            "start_period": hc.get("StartPeriod", 0), "retries": hc.get("Retries", 0)}


def compare_container(ctx: Context, v: ContainerView, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-by-field differences between a container and its compose service: image and image id,
    environment, restart, healthcheck, ports, secrets, limits. Each is {field, expected, actual}."""
    diffs: list[dict[str, Any]] = []

    def diff(field: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            diffs.append({"field": field, "expected": expected, "actual": actual})

    ref = spec.get("image", "")
    diff("image", ref, v.image)
    if ref:
        now = ctx.engine.image_id(ref)
        if now is None:
            diffs.append({"field": "image_id", "expected": f"{ref} present on the engine",
                          "actual": f"{ref} is not on the engine; the container runs {v.image_id[:19]}"})
        else:
            diff("image_id", now, v.image_id)

    image_env = {}
    for item in (ctx.engine.image_config(v.image_id).get("Env") or []):
        k, _, val = item.partition("=")
        image_env[k] = val
    model_env = {k: _unescape(val) for k, val in (spec.get("environment") or {}).items() if val is not None}
    want_env = {**image_env, **model_env}
    have_env = v.environment
    for k in sorted(set(want_env) | set(have_env)):
        if want_env.get(k) != have_env.get(k):
            diffs.append({"field": f"environment.{k}", "expected": _mask(k, want_env.get(k)),
                          "actual": _mask(k, have_env.get(k))})

    diff("restart", _model_restart(spec), v.restart_policy)

    hc_want = _healthcheck_expected(spec)
    if hc_want is not None:
        hc_have = _healthcheck_actual(v)
        if hc_want.get("test") == ["NONE"]:
            if v.has_healthcheck:
                diffs.append({"field": "healthcheck", "expected": "disabled", "actual": hc_have["test"]})
        else:
            for key, want in hc_want.items():
                diff(f"healthcheck.{key}", want, hc_have[key])

    diff("ports", _model_ports(spec), _container_ports(v))
    want_secrets = _model_secrets(ctx, spec)
    diff("secrets", want_secrets, _container_secrets(v, want_secrets))
    limits = _model_limits(spec)
    diff("limits.memory_bytes", limits["memory_bytes"], v.memory_limit)
    diff("limits.cpus", limits["cpus"], round(v.cpu_limit, 6))
    diff("limits.pids", limits["pids"], v.pids_limit)
    return diffs


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
    c = Check("prod.drift", command=ctx.compose.display("config", "--hash", "*"))
    try:
        hashes = ctx.compose.config_hash()
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="`docker compose config --hash` succeeds")]
    intended_files = [str(f) for f in ctx.compose.files]
    model = ctx.model.get("services", {})

    def judge(v: ContainerView) -> CheckRecord:
        spec = model.get(v.service, {})
        diffs = compare_container(ctx, v, spec)
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

    return _each_container(ctx, c, ctx.services, "no drift", judge)


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
    from runbook_lib.phases.preflight import orphan_records

    c = Check("prod.orphans",
              command=f"docker ps -a --filter label=com.docker.compose.project={ctx.params.project} "
                      "--format '{{.Names}} {{.Label \"com.docker.compose.service\"}}'")
    return orphan_records(ctx, c)


# ----------------------------------------------------------------------------------------------------
# prod.stability
# ----------------------------------------------------------------------------------------------------

def _uptime_s(started_at: str) -> float | None:
    if not started_at or started_at.startswith("0001-"):
        return None
    try:
        ts = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", started_at).replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((datetime.now(timezone.utc) - ts).total_seconds(), 1)


@check("prod.stability", "Stays up", phase=PHASE, severity="high", category="Startup and restart stability",
       remediation="Read the container's logs (`docker logs`) around the restarts, and its exit code and "
                   "OOMKilled flag in the evidence.")
def stability(ctx: Context) -> list[CheckRecord]:
    """prod.stability: every container is running (a one-shot that exited 0 counts as done), was not
    OOM-killed, has restarted no more than ``max_restarts`` times, and — when ``observe_s`` > 0 — had no
    die, restart, oom or kill event while the engine's events were watched for that long. Uptime is
    recorded. The containers are inspected after the window, so a crash during it is seen twice."""
    p = ctx.params.production
    c = Check("prod.stability",
              command=f"docker events --filter label=com.docker.compose.project={ctx.params.project} "
                      f"--filter type=container --since <start> --until <start+{p.observe_s:g}s>; "
                      "docker inspect --format '{{.State.Status}} {{.RestartCount}} {{.State.StartedAt}}' <container>")
    events: list[dict[str, Any]] = []
    window = None
    if p.observe_s > 0:
        t0 = time.time()
        ctx.progress(f"watching the engine's events for {p.observe_s:g}s")
        try:
            events = ctx.engine.container_events(ctx.params.project, t0, t0 + p.observe_s)
        except RunbookError as exc:
            return [c.error(ctx.params.project, exc, expected="the events stream can be watched")]
        window = {"from": datetime.fromtimestamp(t0, timezone.utc).isoformat(timespec="seconds"),
                  "seconds": p.observe_s}
    bad_actions = {"die", "restart", "oom", "kill"}

    def judge(v: ContainerView) -> CheckRecord:
        mine = [e for e in events if e["container"] == v.name]
        bad = [e for e in mine if e["action"] in bad_actions]
        st = v.attrs.get("State", {})
        ev = {"read": "docker inspect State, RestartCount" + ("; docker events over the observation window" if window else ""),
              "container": v.name, "state": v.state, "exit_code": v.exit_code, "oom_killed": v.oom_killed,
              "restarting": bool(st.get("Restarting")), "restart_count": v.restart_count,
              "max_restarts": p.max_restarts, "started_at": v.started_at, "finished_at": v.finished_at,
              "uptime_s": _uptime_s(v.started_at) if v.running else None,
              "observation_window": window or "none (production.observe_s is 0)", "events": mine[:50]}
        problems = []
        if v.completed:
            pass  # a one-shot job that exited 0 is done, as designed
        elif v.state != "running":
            problems.append(f"{v.state} (exit code {v.exit_code})")
        if v.oom_killed:
            problems.append("OOM-killed")
        if v.restart_count > p.max_restarts:
            problems.append(f"restarted {v.restart_count} times (bound {p.max_restarts})")
        if bad:
            problems.append(f"{len(bad)} {'/'.join(sorted({e['action'] for e in bad}))} event(s) during the "
                            f"{p.observe_s:g}s observation window")
        expected = f"running, at most {p.max_restarts} restarts" + (f", no die/restart in {p.observe_s:g}s" if window else "")
        if problems:
            return c.record(v.service, "FAIL", expected=expected, actual="; ".join(problems), evidence=ev)
        up = ev["uptime_s"]
        actual = ("completed (one-shot, exited 0)" if v.completed else
                  f"running {f'for {up:g}s' if up is not None else f'(start time {v.started_at!r} unreadable)'}, "
                  f"{v.restart_count} restarts") + (
            f", nothing happened in the {p.observe_s:g}s window" if window else "")
        return c.record(v.service, "PASS", expected=expected, actual=actual, evidence=ev)

    return _each_container(ctx, c, ctx.services, "a stable container", judge)


# ----------------------------------------------------------------------------------------------------
# prod.resources
# ----------------------------------------------------------------------------------------------------

def usage_from_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Memory and CPU usage from one stats sample, computed the way ``docker stats`` does: memory is
    usage minus inactive file cache (cgroup v1 ``total_inactive_file``, v2 ``inactive_file``); CPU
    is the container's share of the host's CPU time between the two readings, in cores."""
    mem = stats.get("memory_stats") or {}
    inner = mem.get("stats") or {}
    cache = inner.get("total_inactive_file", inner.get("inactive_file", 0)) or 0
    usage = mem.get("usage")
    mem_used = None if usage is None else max(int(usage) - int(cache), 0)
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0))
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cores = (cpu_delta / sys_delta) * online if sys_delta > 0 and cpu_delta >= 0 and pre.get("system_cpu_usage") else None
    return {"read_at": stats.get("read"), "preread_at": stats.get("preread"),
            "memory_usage_bytes": usage, "memory_inactive_file_bytes": cache, "memory_used_bytes": mem_used,
            "memory_limit_reported_bytes": mem.get("limit"), "cpu_delta_ns": cpu_delta,
            "system_cpu_delta_ns": sys_delta, "online_cpus": online,
            "cpu_cores_used": None if cores is None else round(cores, 4)}


def judge_sample(c: Check, svc: str, v: ContainerView, sample: dict[str, Any], p: Production, ev: dict[str, Any],
                 cmd: str) -> tuple[CheckRecord, dict[str, Any]]:
    """prod.resources on one stats sample of a running container: (its record, its chart row). A limit
    missing (when required) or memory over the threshold is a FAIL, CPU over it a WARN; a sample with no
    memory or no CPU usage figure (the container stopped while it was read, a cgroup without
    accounting) is an ERROR: nothing was observed to judge, so never a PASS."""
    thr = p.resource_threshold
    use = usage_from_stats(sample)
    ev["sample"] = use
    mem_used, cores = use["memory_used_bytes"], use["cpu_cores_used"]
    mem_frac = mem_used / v.memory_limit if v.memory_limit and mem_used is not None else None
    cpu_frac = cores / v.cpu_limit if v.cpu_limit and cores is not None else None
    ev["memory_fraction"] = None if mem_frac is None else round(mem_frac, 4)
    ev["cpu_fraction"] = None if cpu_frac is None else round(cpu_frac, 4)
    row = {"service": svc, "container": v.name, "memory_fraction": mem_frac, "cpu_fraction": cpu_frac,
           "memory_used_mib": None if mem_used is None else mem_used / 2**20,
           "memory_limit_mib": v.memory_limit / 2**20 if v.memory_limit else None,
           "cpu_cores_used": cores, "cpu_limit": v.cpu_limit or None}
    fails, warns = [], []
    if p.require_limits and not v.memory_limit:
        fails.append("no memory limit")
    if p.require_limits and not v.cpu_limit:
        fails.append("no CPU limit")
    if mem_frac is not None and mem_frac >= thr:
        fails.append(f"memory {mem_used / 2**20:.1f} MiB is {mem_frac:.0%} of the {v.memory_limit / 2**20:.0f} MiB limit")
    if cpu_frac is not None and cpu_frac >= thr:
        warns.append(f"CPU {cores:.2f} cores is {cpu_frac:.0%} of the {v.cpu_limit:g}-CPU limit")
    missing = [what for what, val in (("memory", mem_used), ("CPU", cores)) if val is None]
    expected = f"memory and CPU limits set; usage below {thr:.0%} of each"
    if fails:
        return c.record(svc, "FAIL", expected=expected, actual="; ".join(fails + warns), evidence=ev, command=cmd), row
    if missing:
        return c.record(svc, "ERROR", expected=expected, evidence=ev, command=cmd,
                        remediation="Re-run the phase; if the sample stays empty, read `docker stats --no-stream` "
                                    "and the engine's cgroup accounting.",
                        actual=f"could not check: the stats sample has no {' and no '.join(missing)} usage figure "
                               f"(read at {use['read_at']}; state when listed: {v.state})"), row
    if warns:
        return c.record(svc, "WARN", expected=expected, actual="; ".join(warns), evidence=ev, command=cmd,
                        severity="medium"), row
    mem_txt = (f"memory {mem_frac:.0%} of {v.memory_limit / 2**20:.0f} MiB" if mem_frac is not None
               else f"memory {mem_used / 2**20:.1f} MiB (no limit)")
    cpu_txt = f"CPU {cpu_frac:.0%} of {v.cpu_limit:g}" if cpu_frac is not None else f"CPU {cores:.3f} cores (no limit)"
    return c.record(svc, "PASS", expected=expected, actual=f"{mem_txt}, {cpu_txt}", evidence=ev, command=cmd), row


@check("prod.resources", "Inside its resource limits", phase=PHASE, severity="high", category="Resource usage",
       remediation="Set `mem_limit`/`cpus` (or deploy.resources.limits); if usage is near the limit, find the "
                   "leak or raise the limit deliberately.")
def resources(ctx: Context) -> list[CheckRecord]:
    """prod.resources: memory and CPU limits are set (when ``require_limits``), and in one stats sample
    memory used stays below ``resource_threshold`` of the memory limit (FAIL above) and CPU below the
    same fraction of the CPU limit (WARN above: one sample of CPU is a moment, not a trend). The
    samples are kept in ``ctx.state["prod_resources"]`` for :func:`resource_chart`."""
    p = ctx.params.production
    c = Check("prod.resources")
    try:
        by_service = _by_service(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="stats of every container")]
    running = [v for svc in ctx.services for v in by_service.get(svc, []) if v.running]
    samples: dict[str, Any] = dict(zip((v.id for v in running), ctx.engine.stats_many([v.id for v in running])))
    rows: list[dict[str, Any]] = []
    out = []
    thr = p.resource_threshold
    for svc in ctx.services:
        views = by_service.get(svc, [])
        if not views:
            out.append(_no_container(c, svc, "limits set and usage below the threshold"))
            continue
        for v in views:
            cmd = (f"docker stats --no-stream {v.name}; "
                   + _inspect_cmd(v, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}"))
            limits = {"memory_bytes": v.memory_limit, "cpus": round(v.cpu_limit, 4)}
            ev: dict[str, Any] = {"read": "one stats sample (GET /containers/{id}/stats?stream=false) and "
                                          "docker inspect HostConfig.Memory/NanoCpus/CpuQuota",
                                  "container": v.name, "limits": limits, "threshold": thr}
            if not v.running:
                out.append(c.record(svc, "FAIL", expected="a running container to sample", actual=f"{v.state}",
                                    evidence=ev, command=cmd))
                continue
            sample = samples.get(v.id)
            if isinstance(sample, Exception):
                out.append(c.error(svc, sample, expected="one stats sample"))
                continue
            rec, row = judge_sample(c, svc, v, sample, p, ev, cmd)
            rows.append(row)
            out.append(rec)
    ctx.state["prod_resources"] = {"rows": rows, "threshold": thr}
    return out


def resource_chart(ctx_or_rows: Context | list[dict[str, Any]], threshold: float | None = None) -> bytes | None:
    """A PNG bar chart of each container's memory and CPU use as a fraction of its limit, with the
    threshold drawn in. Takes the Context after :func:`resources` ran (or the rows themselves).
    Returns None when there is nothing to draw. Drawn on matplotlib's Agg canvas (no display needed)."""
    if isinstance(ctx_or_rows, Context):
        data = ctx_or_rows.state.get("prod_resources") or {}
        rows, threshold = data.get("rows") or [], data.get("threshold", threshold)
    else:
        rows = ctx_or_rows
    if not rows:
        return None
    threshold = 0.8 if threshold is None else threshold
    # The Agg canvas directly, not pyplot: no global backend switch in the user's kernel.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [r["service"] for r in rows]
    fig = Figure(figsize=(9, 0.45 * len(rows) + 1.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title, used, limit, unit in (
            (axes[0], "memory_fraction", "Memory used / limit", "memory_used_mib", "memory_limit_mib", "MiB"),
            (axes[1], "cpu_fraction", "CPU used / limit", "cpu_cores_used", "cpu_limit", "CPUs")):
        values = [(r[key] or 0) * 100 for r in rows]
        colours = ["#cf222e" if (r[key] or 0) >= threshold else "#1a7f37" if r[key] is not None else "#8c959f"
                   for r in rows]
        ax.barh(labels, values, color=colours)
        ax.axvline(threshold * 100, color="#9a6700", linestyle="--", linewidth=1)
        ax.set_xlim(0, 100)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"% of limit (threshold {threshold:.0%})", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.invert_yaxis()
        for i, r in enumerate(rows):
            if r[key] is None:
                txt = "no limit" if not r[limit] else "n/a"
            elif unit == "MiB":
                txt = f"{r[used]:.0f}/{r[limit]:.0f} {unit}"
            else:
                txt = f"{r[used]:.3f}/{r[limit]:g} {unit}"
            ax.text(min(values[i] + 1, 60), i, txt, va="center", fontsize=7)
    fig.suptitle("prod.resources: one stats sample per container", fontsize=10)
    fig.tight_layout()
    return png(fig)


# ----------------------------------------------------------------------------------------------------
# prod.logs
# ----------------------------------------------------------------------------------------------------

def scan_lines(lines, patterns: list[str], max_matches: int = MAX_LOG_MATCHES) -> dict[str, Any]:
    """Match log lines against the patterns (case-insensitive). Returns lines read, first and last
    timestamps, the number of matching lines, and the first ``max_matches`` of them (truncated)."""
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    n, first, last, count, matches = 0, None, None, 0, []
    for line in lines:
        n += 1
        ts = line.split(" ", 1)[0] if line[:4].isdigit() else None
        first = first or ts
        last = ts or last
        hit = next((p.pattern for p in compiled if p.search(line)), None)
        if hit:
            count += 1
            if len(matches) < max_matches:
                matches.append({"pattern": hit, "line": line[:400]})
    return {"lines_read": n, "first_line_at": first, "last_line_at": last, "match_count": count, "matches": matches}


@check("prod.logs", "No fatal lines in the logs", phase=PHASE, severity="high", category="Logs free of errors",
       remediation="Read the matched lines and the context around them (`docker logs`), fix the cause; a "
                   "known harmless line can be waived by check id and target.")
def logs(ctx: Context) -> list[CheckRecord]:
    """prod.logs: no log line of any container matches the parameters' patterns (default: panic,
    fatal, segfault, out of memory), read since the container was created (``log_tail`` 0) or in its
    last ``log_tail`` lines. The evidence shows the range read and the matched lines (redacted)."""
    p = ctx.params.production
    c = Check("prod.logs")

    def judge(v: ContainerView) -> CheckRecord:
        tail = p.log_tail or None
        scan = scan_lines(ctx.engine.iter_log_lines(v.id, tail=tail), p.log_patterns)
        rng = f"last {tail} lines" if tail else f"every line since the container was created ({v.created[:19]})"
        ev = {"read": f"docker logs --timestamps{f' --tail {tail}' if tail else ''} (stdout and stderr)",
              "container": v.name, "range": rng, "patterns": p.log_patterns, **scan}
        cmd = f"docker logs --timestamps{f' --tail {tail}' if tail else ''} {v.name} 2>&1 | grep -iE '{'|'.join(p.log_patterns)}'"
        expected = "no line matching " + ", ".join(p.log_patterns)
        if scan["match_count"]:
            first = scan["matches"][0]["line"]
            return c.record(v.service, "FAIL", expected=expected,
                            actual=f"{scan['match_count']} matching line(s) in {scan['lines_read']} read; first: {first[:200]}",
                            evidence=ev, command=cmd)
        return c.record(v.service, "PASS", expected=expected, actual=f"none in {scan['lines_read']} lines ({rng})",
                        evidence=ev, command=cmd)

    return _each_container(ctx, c, ctx.services, "no matching log line", judge)


# ----------------------------------------------------------------------------------------------------
# prod.observability
# ----------------------------------------------------------------------------------------------------

def _get(client: httpx.Client, url: str, **params) -> tuple[httpx.Response | None, dict[str, Any]]:
    """GET, returning (response or None, evidence about the request). Never raises for HTTP trouble."""
    t0 = time.monotonic()
    req = f"GET {url}" + (f" params={params}" if params else "")
    try:
        r = client.get(url, params=params or None)
    except httpx.HTTPError as exc:
        return None, {"request": req, "error": f"{type(exc).__name__}: {exc}",
                      "latency_ms": round((time.monotonic() - t0) * 1000, 1)}
    return r, {"request": req, "status": r.status_code, "latency_ms": round((time.monotonic() - t0) * 1000, 1),
               "body_excerpt": r.text[:300]}


def _health(c: Check, client: httpx.Client, target: str, base: str, path: str,
            accept: Callable[[httpx.Response], str | None] | None = None) -> CheckRecord:
    url = base.rstrip("/") + path
    r, ev = _get(client, url)
    ev = {"read": f"{target}'s health endpoint over HTTP", **ev}
    cmd = f"curl -sS {url}"
    if r is None:
        return c.record(target, "FAIL", expected=f"{path} answers 200", actual=f"no answer: {ev['error']}",
                        evidence=ev, command=cmd)
    problem = None if r.status_code == 200 else f"status {r.status_code}"
    if problem is None and accept is not None:
        problem = accept(r)
    if problem:
        return c.record(target, "FAIL", expected=f"{path} answers 200", actual=problem, evidence=ev, command=cmd)
    return c.record(target, "PASS", expected=f"{path} answers 200", actual=f"200 in {ev['latency_ms']} ms",
                    evidence=ev, command=cmd)


def _target_matches(target: dict[str, Any], service: str) -> bool:
    labels = {**(target.get("discoveredLabels") or {}), **(target.get("labels") or {})}
    if service in labels.values():
        return True
    inst = str(labels.get("instance", ""))
    return inst.split(":")[0] == service or inst.split("//")[-1].split(":")[0] == service


def prometheus_targets(ctx: Context, client: httpx.Client, base: str) -> tuple[list[dict] | None, dict[str, Any]]:
    """Active targets from ``/api/v1/targets``, waiting up to ``prometheus_wait_s`` while any target of
    an app service has not been scraped yet (health "unknown")."""
    deadline = time.monotonic() + ctx.params.production.prometheus_wait_s
    apps = app_services(ctx)
    while True:
        r, ev = _get(client, base.rstrip("/") + "/api/v1/targets", state="active")
        if r is None or r.status_code != 200:
            return None, ev
        try:
            targets = r.json()["data"]["activeTargets"]
        except (ValueError, KeyError, TypeError) as exc:
            ev["error"] = f"not a targets answer: {exc}"
            return None, ev
        pending = [t for t in targets if t.get("health") == "unknown" and any(_target_matches(t, s) for s in apps)]
        if not pending or time.monotonic() >= deadline:
            ev.pop("body_excerpt", None)
            return targets, ev
        time.sleep(1)  # no event stream for scrapes: poll the API once a second, bounded by the deadline


@check("prod.observability", "Observability endpoint answers", phase=PHASE, severity="high", category="Metrics and monitoring",
       remediation="Start the component, or fix the URL in the parameters' production section.")
@check("prod.observability.scrape", "Prometheus scrapes the service", phase=PHASE, severity="high", category="Metrics and monitoring",
       remediation="Add the service to Prometheus' scrape configuration, and make its /metrics answer.")
@check("prod.observability.logs", "Loki receives the service's logs", phase=PHASE, severity="high", category="Log ingestion",
       remediation="Check the log shipper (Promtail...) and the labels loki_selector expects.")
def observability(ctx: Context) -> list[CheckRecord]:
    """prod.observability, for each URL the parameters give (SKIP otherwise):

    * Prometheus answers ``/-/ready``, and (``prod.observability.scrape``) every app service has at
      least one active target and all of them are up;
    * Alertmanager answers ``/-/healthy``;
    * Grafana answers ``/api/health`` with ``"database": "ok"``;
    * Loki answers ``/ready``, and (``prod.observability.logs``) holds at least one line of every app
      service from the last ``loki_freshness_min`` minutes (``/loki/api/v1/query_range`` with the
      ``loki_selector`` of the service).
    """
    p = ctx.params.production
    c = Check("prod.observability")
    scrape = Check("prod.observability.scrape")
    fresh = Check("prod.observability.logs")
    out: list[CheckRecord] = []
    apps = app_services(ctx)
    with httpx.Client(timeout=p.http_timeout_s, follow_redirects=False) as client:
        # Prometheus
        if not p.prometheus_url:
            out.append(c.record("prometheus", "SKIP", expected="Prometheus answers", actual="no production.prometheus_url",
                                evidence={"parameter": "production.prometheus_url"}, severity="info"))
        else:
            rec = _health(c, client, "prometheus", p.prometheus_url, "/-/ready")
            out.append(rec)
            targets, tev = prometheus_targets(ctx, client, p.prometheus_url) if rec.passed else (None, {})
            url = p.prometheus_url.rstrip("/") + "/api/v1/targets?state=active"
            for svc in apps:
                cmd = f"curl -sS '{url}'"
                if targets is None:
                    out.append(scrape.record(svc, "FAIL" if rec.passed else "ERROR", expected="its targets are up",
                                             actual="the targets API did not answer" if rec.passed else "Prometheus does not answer",
                                             evidence={"read": "Prometheus /api/v1/targets", **tev}, command=cmd))
                    continue
                mine = [{"labels": t.get("labels"), "scrape_url": t.get("scrapeUrl"), "health": t.get("health"),
                         "last_scrape": t.get("lastScrape"), "last_error": t.get("lastError")}
                        for t in targets if _target_matches(t, svc)]
                ev = {"read": "Prometheus /api/v1/targets?state=active", **tev, "targets": mine,
                      "targets_total": len(targets)}
                if not mine:
                    out.append(scrape.record(svc, "FAIL", expected="an active target that is up",
                                             actual="Prometheus has no target for this service", evidence=ev, command=cmd))
                elif any(t["health"] != "up" for t in mine):
                    bad = [t for t in mine if t["health"] != "up"]
                    out.append(scrape.record(svc, "FAIL", expected="every target up",
                                             actual="; ".join(f"{t['scrape_url']} is {t['health']}: {t['last_error'] or 'no error text'}"
                                                              for t in bad), evidence=ev, command=cmd))
                else:
                    out.append(scrape.record(svc, "PASS", expected="every target up",
                                             actual=f"{len(mine)} target(s) up, last scraped {mine[0]['last_scrape']}",
                                             evidence=ev, command=cmd))
        # Alertmanager
        if not p.alertmanager_url:
            out.append(c.record("alertmanager", "SKIP", expected="Alertmanager answers",
                                actual="no production.alertmanager_url",
                                evidence={"parameter": "production.alertmanager_url"}, severity="info"))
        else:
            out.append(_health(c, client, "alertmanager", p.alertmanager_url, "/-/healthy"))
        # Grafana
        if not p.grafana_url:
            out.append(c.record("grafana", "SKIP", expected="Grafana answers", actual="no production.grafana_url",
                                evidence={"parameter": "production.grafana_url"}, severity="info"))
        else:
            def grafana_ok(r: httpx.Response) -> str | None:
                try:
                    db = r.json().get("database")
                except ValueError:
                    return "not a JSON health answer"
                return None if db == "ok" else f"database is {db!r}"
            out.append(_health(c, client, "grafana", p.grafana_url, "/api/health", grafana_ok))
        # Loki
        if not p.loki_url:
            out.append(c.record("loki", "SKIP", expected="Loki answers", actual="no production.loki_url",
                                evidence={"parameter": "production.loki_url"}, severity="info"))
        else:
            rec = _health(c, client, "loki", p.loki_url, "/ready")
            out.append(rec)
            end = time.time_ns()
            start = end - int(p.loki_freshness_min * 60e9)
            url = p.loki_url.rstrip("/") + "/loki/api/v1/query_range"
            for svc in apps:
                selector = p.loki_selector.replace("{service}", svc)
                expected = f"at least one line in the last {p.loki_freshness_min:g} min"
                cmd = (f"curl -sS -G '{url}' --data-urlencode 'query={selector}' --data start={start} "
                       f"--data end={end} --data limit=1 --data direction=backward")
                if not rec.passed:
                    out.append(fresh.record(svc, "ERROR", expected=expected, actual="Loki does not answer",
                                            evidence={"read": "Loki query_range", "selector": selector}, command=cmd))
                    continue
                r, ev = _get(client, url, query=selector, start=str(start), end=str(end), limit="1",
                             direction="backward")
                ev = {"read": "Loki /loki/api/v1/query_range", "selector": selector, **ev}
                if r is None or r.status_code != 200:
                    out.append(fresh.record(svc, "FAIL", expected=expected,
                                            actual=f"query failed: {ev.get('error') or ev.get('status')}",
                                            evidence=ev, command=cmd))
                    continue
                try:
                    streams = r.json()["data"]["result"]
                except (ValueError, KeyError, TypeError) as exc:
                    out.append(fresh.record(svc, "FAIL", expected=expected, actual=f"not a query answer: {exc}",
                                            evidence=ev, command=cmd))
                    continue
                newest = max((int(v[0]) for s in streams for v in s.get("values") or []), default=None)
                ev.pop("body_excerpt", None)
                ev["streams"] = len(streams)
                if newest is None:
                    out.append(fresh.record(svc, "FAIL", expected=expected,
                                            actual=f"no line in the last {p.loki_freshness_min:g} min", evidence=ev,
                                            command=cmd))
                else:
                    ev["newest_line_at"] = datetime.fromtimestamp(newest / 1e9, timezone.utc).isoformat()
                    out.append(fresh.record(svc, "PASS", expected=expected,
                                            actual=f"newest line {round((end - newest) / 1e9)}s ago", evidence=ev,
                                            command=cmd))
    return out


CHECKS = [env, restart_policy, healthcheck, drift, orphans, stability, resources, logs, observability]
