"""Phase 3, configuration: production mode by the environment (framework switches, expected values), an
accepted restart policy, a healthy healthcheck (check ids ``prod.env``, ``prod.restart_policy``,
``prod.healthcheck``)."""
from __future__ import annotations

from runbook_lib.engine import ContainerView
from runbook_lib.model.restart import policy_accepted
from runbook_lib.errors import RunbookError
from runbook_lib.phases.production import swarm_checks
from runbook_lib.phases.production.common import (PHASE, app_services, by_service, each_container,  # noqa: F401
                                                  expected_env_for, inspect_cmd)
from runbook_lib.phases.production.switches import judge_switches
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context


@check("prod.env", "Production mode by the environment", phase=PHASE, severity="high", category="Production mode",
       remediation="Set the framework's switch to its production value (FLASK_DEBUG=0, NODE_ENV=production, "
                   "RAILS_ENV=production, ASPNETCORE_ENVIRONMENT=Production, SPRING_PROFILES_ACTIVE=prod...) and the "
                   "variables the parameters expect, in the service's `environment:` (or env_file, or the image), "
                   "and redeploy; check no override file sets a development value.")
def env(ctx: Context) -> list[CheckRecord]:
    """prod.env: the development switches of the common frameworks (:mod:`.switches`: FLASK_ENV/FLASK_DEBUG,
    DEBUG/DJANGO_DEBUG, NODE_ENV, RAILS_ENV/RACK_ENV, APP_ENV/APP_DEBUG, ASPNETCORE_ENVIRONMENT,
    SPRING_PROFILES_ACTIVE, GIN_MODE...) that a container carries, from the compose file or the image's ENV;
    and, where the parameters ask (``expected_env``, ``env_overrides``), each expected variable with exactly
    its value. FAIL naming each development value and each missing or different expected variable; PASS
    when something was seen in production mode (an expected variable, a switch's production value); SKIP
    when nothing was expected and no switch is set (an absent switch is no claim). Every app service gets a
    record, any other service one when it carries a switch. Only these variables reach the evidence."""
    # a swarm: the service spec and every running task container
    return ctx.deployment.variant(compose=_compose_env, swarm=swarm_checks.env)(ctx)


def _compose_env(ctx: Context) -> list[CheckRecord]:
    """prod.env of a compose project: each container's environment (see :func:`env`)."""
    p = ctx.params.production
    c = Check("prod.env")
    apps = set(app_services(ctx))
    model = ctx.model.get("services", {})
    services = [s for s in ctx.services if s not in p.env_excluded]

    def judge(v: ContainerView) -> CheckRecord:
        want = expected_env_for(ctx, v.service) if v.service in apps else {}
        have = v.environment
        seen = {k: have.get(k) for k in want}
        bad = {k: {"expected": w, "actual": seen[k]} for k, w in want.items() if seen[k] != w}
        sw = judge_switches(have, model.get(v.service, {}).get("environment"))
        ev = {"read": "docker inspect Config.Env (the container's and its image's; expected variables and known "
                      "framework switches only)", "container": v.name, "expected": want, "actual": seen,
              "switches": sw}
        cmd = inspect_cmd(v, "{{json .Config.Env}}")
        expected = ", ".join([f"{k}={w}" for k, w in want.items()] + ["no framework switch set to a development value"])
        problems = [f"{k} is {'unset' if d['actual'] is None else repr(d['actual'])}, expected {d['expected']!r}"
                    for k, d in bad.items()]
        problems += [f"{s['name']}={s['value']!r}: {s['framework']} in development mode (from the {s['source']})"
                     for s in sw["development"]]
        if bad:
            ev["differences"] = bad
        if problems:
            return c.record(v.service, "FAIL", expected=expected, actual="; ".join(problems), evidence=ev, command=cmd)
        seen_ok = [f"{k}={w}" for k, w in want.items()] + [f"{s['name']}={s['value']}" for s in sw["production"]]
        unknown = [f"{s['name']}={s['value']!r}" for s in sw["unknown"]]
        note = f"; not judged: {', '.join(unknown)} (neither a production nor a development value)" if unknown else ""
        if seen_ok:
            return c.record(v.service, "PASS", expected=expected, evidence=ev, command=cmd,
                            actual=f"production values: {', '.join(seen_ok)}{note}")
        return c.record(v.service, "SKIP", expected="a production value to observe", severity="info", evidence=ev,
                        command=cmd, actual="nothing to judge: production.expected_env asks for nothing here and no "
                                            f"known framework switch is set{note}")

    try:
        views = by_service(ctx)
    except RunbookError:
        views = {}  # each_container records the engine's error
    with_switch = {v.service for vs in views.values() for v in vs
                   if any(judge_switches(v.environment).values())}
    targets = [s for s in services if s in apps or s in with_switch]
    return each_container(ctx, c, targets, "the production environment", judge)


@check("prod.restart_policy", "Restart policy as expected", phase=PHASE, severity="high", category="Production mode",
       remediation="Set `restart: always` (or the policy the parameters expect) on the service and redeploy.")
def restart_policy(ctx: Context) -> list[CheckRecord]:
    """prod.restart_policy: every service's ``HostConfig.RestartPolicy`` is one the parameters accept
    (default: always or unless-stopped). A service with policy "no" stays down after a crash or an
    engine restart."""
    # a swarm task container's own policy is always "no": the service spec's is judged
    return ctx.deployment.variant(compose=_compose_restart_policy, swarm=swarm_checks.restart_policy)(ctx)


def _compose_restart_policy(ctx: Context) -> list[CheckRecord]:
    """prod.restart_policy of a compose project: each container's ``HostConfig.RestartPolicy``."""
    p = ctx.params.production
    c = Check("prod.restart_policy")

    def judge(v: ContainerView) -> CheckRecord:
        accepted = p.restart_policy_overrides.get(v.service) or p.restart_policy
        rp = v.host_config.get("RestartPolicy") or {}
        ev = {"read": "docker inspect HostConfig.RestartPolicy", "container": v.name,
              "restart_policy": {"name": rp.get("Name") or "no", "maximum_retry_count": rp.get("MaximumRetryCount", 0)},
              "accepted": accepted}
        cmd = inspect_cmd(v, "{{json .HostConfig.RestartPolicy}}")
        status = "PASS" if policy_accepted(v.restart_policy, accepted) else "FAIL"
        actual = v.restart_policy + ("" if status == "PASS" else
                                     (": the container stays down after a crash or an engine restart"
                                      if v.restart_policy == "no" else ": not an accepted policy"))
        return c.record(v.service, status, expected=" or ".join(accepted), actual=actual, evidence=ev, command=cmd)

    return each_container(ctx, c, ctx.services, "an accepted restart policy", judge)


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
        file = ctx.deployment.file_kind
        source = (f"{file} (disable: true)" if spec and spec.get("disable") else
                  file if spec else "image" if v.has_healthcheck else "none")
        ev = {"read": "docker inspect Config.Healthcheck and State.Health", "container": v.name,
              "defined_by": source, "healthcheck": v.healthcheck_config, "health": v.health,
              "health_log": v.health_log[-3:], "restart_policy": v.restart_policy, "state": v.state}
        cmd = inspect_cmd(v, "{{json .Config.Healthcheck}} {{json .State.Health}}")
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
        who = ctx.deployment.unhealthy_consequence(v)
        ev["never_restarted_by_policy"] = v.running
        return c.record(v.service, "FAIL", expected="healthy",
                        actual=f"{v.health or v.state}{detail}; {who}" if v.running else f"{v.state}{detail}",
                        evidence=ev, command=cmd)

    return each_container(ctx, c, ctx.services, "a healthy healthcheck", judge)
