"""Phase 1 with ``redeploy.strategy: rolling`` (``redeploy.rolling``): the deployment is not taken down; each
service is replaced on its own, in dependency order (:mod:`runbook_lib.deploy.rolling`: the new container
beside the old, ready, then the old one removed; recreated when it cannot run twice, said before starting).
Swarm mode: the rolling is Swarm's own, by each service's ``update_config``, which is judged here.

Each replacement's window is kept (``ctx.state.redeploy_steps``) so that ``redeploy.outage`` can say how many
requests failed while each service was being replaced.
"""
from __future__ import annotations

import time
from typing import Any

from runbook_lib.deploy import rolling
from runbook_lib.errors import RunbookError
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context

PHASE = "01_controlled_redeployment"


def _plan_record(c: Check, ctx: Context, plans: list[rolling.ServicePlan]) -> CheckRecord:
    rolled = [p.service + (f" (through a stand-in, behind {p.proxy})" if p.proxy else "")
              for p in plans if p.method == "rolling"]
    recreated = [p.service for p in plans if p.method == "recreate"]
    return c.record(ctx.params.project, "INFO", expected="each service replaced on its own, in dependency order",
                    actual=f"rolling: {', '.join(rolled) or 'none'}; recreated (cannot run two containers at once): "
                           f"{', '.join(recreated) or 'none'}",
                    evidence={"plan": [{"service": p.service, "method": p.method, "reasons": p.reasons,
                                        **({"through_stand_in_behind": p.proxy, "notes": p.notes} if p.proxy else {})}
                                       for p in plans]})


def _step_record(c: Check, ctx: Context, plan: rolling.ServicePlan, step: rolling.Step, origin: float) -> CheckRecord:
    ev = {**step.evidence(origin), "reasons_not_rolling": plan.reasons}
    how = ("recreated in place: " + "; ".join(plan.reasons) if step.method != "rolling"
           else f"a stand-in without the host port held the service name (behind {plan.proxy}) while the port "
                "moved to the new container, ready, old one and stand-in removed" if plan.proxy
           else "new container started beside the old one, ready, old one removed")
    if plan.proxy:
        ev["through_stand_in_behind"] = plan.proxy
    expected = f"replaced by {step.method}, ready within {ctx.params.redeploy.healthy_timeout_s:g}s"
    if not step.ok:
        return c.record(plan.service, "FAIL", expected=expected, actual=step.problem or "not replaced", evidence=ev)
    return c.record(plan.service, "PASS", expected=expected, evidence=ev,
                    actual=f"{how}; {', '.join(step.new)} {step.ready_as or 'ready'} after {step.ready_after_s:g}s")


def _roll_project(ctx: Context, c: Check) -> list[CheckRecord]:
    """Compose: replace every service of the model, one at a time, in dependency order."""
    rd = ctx.params.redeploy
    try:
        plans = rolling.plan(ctx.model, rd.behind_proxy)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="a plan of the services")]
    for p in plans:
        ctx.progress(f"{p.service}: {p.describe()}")
    out = [_plan_record(c, ctx, plans)]
    origin = ctx.state.probe_load.origin if ctx.state.probe_load is not None else time.monotonic()
    stopped_at = None
    for p in plans:
        if stopped_at:
            out.append(c.record(p.service, "SKIP", expected="replaced", severity="info", evidence={"plan": p.method},
                                actual=f"not replaced: the rolling stopped at {stopped_at}"))
            continue
        args = dict(timeout=rd.healthy_timeout_s, progress=ctx.progress)
        step = rolling.Step(p.service, p.method, time.monotonic())
        try:
            if p.proxy:
                step = rolling.roll_through_stand_in(ctx.compose, ctx.engine, ctx.params.project, p.service,
                                                     drain_s=rd.drain_s, **args)
            elif p.method == "rolling":
                step = rolling.roll_service(ctx.compose, ctx.engine, ctx.params.project, p.service,
                                            drain_s=rd.drain_s, **args)
            else:
                step = rolling.recreate_service(ctx.compose, ctx.engine, ctx.params.project, p.service, **args)
        except RunbookError as exc:
            step.ended, step.problem = time.monotonic(), str(exc)
        ctx.state.redeploy_steps.append({"service": p.service, "method": p.method, "started": step.started,
                                         "ended": step.ended, "ok": step.ok})
        out.append(_step_record(c, ctx, p, step, origin))
        if not step.ok:
            stopped_at = p.service
    return out


def _judge_swarm(ctx: Context, c: Check) -> list[CheckRecord]:
    """Swarm: each service's update_config, as the swarm holds it after the deploy."""
    try:
        services = ctx.deployment.service_specs()
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="the stack's services")]
    out = []
    expected = "update_config order start-first, failure_action rollback (Swarm's own rolling update)"
    for name, svc in sorted(services.items()):
        seen, problems = rolling.judge_update_config(svc.spec)
        ev: dict[str, Any] = {"update_config": seen, "wanted": rolling.WANTED_UPDATE}
        out.append(c.record(name, "FAIL" if problems else "PASS", expected=expected, evidence=ev, severity="medium",
                            actual="; ".join(problems) if problems else f"order {seen['Order']}, failure_action "
                                                                        f"{seen['FailureAction']}"))
    return out


@check("redeploy.rolling", "Service replaced without taking the deployment down", phase=PHASE, severity="critical",
       category="Startup and restart stability", changes_deployment=True,
       remediation="Read the new container's health log in the evidence; the old container was kept. In swarm mode, "
                   "set deploy.update_config (order: start-first, failure_action: rollback) in the stack file.")
def rolling_update(ctx: Context) -> list[CheckRecord]:
    """``redeploy.strategy: rolling`` only. Compose: every service replaced on its own in dependency order;
    PASS when its new container is ready (and, rolling, the old one removed), FAIL when it never gets ready
    (the new container is removed, the old kept, and the rolling stops: the rest are SKIP). First an INFO
    record of the plan: which services roll and why the others are recreated. Swarm: each service's
    ``update_config`` judged (start-first, rollback), medium."""
    if ctx.params.redeploy.strategy != "rolling":
        return []
    c = Check("redeploy.rolling")
    return ctx.deployment.variant(compose=_roll_project, swarm=_judge_swarm)(ctx, c)
