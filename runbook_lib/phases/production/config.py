"""Phase 3, configuration: the production environment values, an accepted restart policy, a healthy
healthcheck (check ids ``prod.env``, ``prod.restart_policy``, ``prod.healthcheck``)."""
from __future__ import annotations

from runbook_lib.engine import ContainerView
from runbook_lib.lint.restart import policy_accepted
from runbook_lib.phases.production.common import PHASE, app_services, each_container, inspect_cmd
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context


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
    if ctx.swarm:  # the service spec and every running task container (production/swarm.py)
        from runbook_lib.phases.production import swarm

        return swarm.env(ctx)
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
        cmd = inspect_cmd(v, "{{json .Config.Env}}")
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

    return each_container(ctx, c, services, "the expected environment", judge)


@check("prod.restart_policy", "Restart policy as expected", phase=PHASE, severity="high", category="Production mode",
       remediation="Set `restart: always` (or the policy the parameters expect) on the service and redeploy.")
def restart_policy(ctx: Context) -> list[CheckRecord]:
    """prod.restart_policy: every service's ``HostConfig.RestartPolicy`` is one the parameters accept
    (default: always or unless-stopped). A service with policy "no" stays down after a crash or an
    engine restart."""
    if ctx.swarm:  # a task container's own policy is always "no": the service spec's is judged
        from runbook_lib.phases.production import swarm

        return swarm.restart_policy(ctx)
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
        file = "stack file" if ctx.swarm else "compose"
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
        who = ("in a swarm, the scheduler replaces an unhealthy task (as its restart policy allows)" if ctx.swarm else
               "restart policy \"no\": nothing will ever restart it" if v.restart_policy == "no" else
               f"restart policy {v.restart_policy} acts only when the process exits: while it keeps running "
               "unhealthy, nothing will restart it")
        ev["never_restarted_by_policy"] = v.running
        return c.record(v.service, "FAIL", expected="healthy",
                        actual=f"{v.health or v.state}{detail}; {who}" if v.running else f"{v.state}{detail}",
                        evidence=ev, command=cmd)

    return each_container(ctx, c, ctx.services, "a healthy healthcheck", judge)
