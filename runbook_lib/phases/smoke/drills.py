"""Phase 4, dependency drills (``smoke.drill.<dependency>``): break a dependency on purpose, probe the
endpoints that rely on it, judge what they did against the designed behaviour, restore it, and require
recovery within budget. In four steps: baseline, probe, recover, judge; whatever is broken is restored
by :class:`runbook_lib.drills.faults.Fault` (journal first, restore on exit and on SIGINT/SIGTERM).

Swarm mode: the fault is ``scale`` (the dependency's service to 0 replicas, then back to the replicas it had),
and the dependency is ready when its service has converged again (:mod:`runbook_lib.engine.stack`): its
replicas running and healthy, no task rejected. Probes, expectations and records are the same."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from runbook_lib.drills import faults, probes
from runbook_lib.errors import RunbookError
from runbook_lib.phases.smoke import aftermath, readonly
from runbook_lib.phases.smoke.endpoints import PHASE, run_smoke_flow, secret_reader
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context
from runbook_lib.params.sections import Drill, DrillEndpoint


# -- smoke.drill.<dependency> -----------------------------------------------------------------------------
# A drill runs in four steps: the baseline (steady state, or nothing is broken), the probe (the fault,
# applied and always restored by faults.Fault, under a ProbeLoop), the recovery wait, and the judgement
# (one record per endpoint, one for the dependency).
@dataclass
class _DrillRun:
    """One drill being run: its parameters, its check, what its dependency record expects, and where
    its journal and timeline go."""

    ctx: Context
    d: Drill
    c: Check
    expected: str
    directory: Path
    with_flow: bool  # the flow runs before the fault and after the recovery


def _drill_run(ctx: Context, d: Drill) -> _DrillRun:
    with_flow = bool(d.flow_after and ctx.params.smoke.flow)
    c = Check(f"smoke.drill.{d.dependency}", f"Drill: {d.dependency} {d.mode}",
              command=ctx.deployment.fault_command(d.dependency, d.mode, d.duration_s),
              remediation=f"Make the service behave as designed while {d.dependency} is down, and recover on its own when it returns.")
    expected = (f"{d.mode} {d.dependency} for {d.duration_s:g}s, restored, ready within {d.healthy_timeout_s:g}s, "
                f"every endpoint back within {d.recovery_budget_s:g}s" + (", flow passes after" if with_flow else ""))
    return _DrillRun(ctx, d, c, expected, faults.journal_dir(ctx.run_dir, ctx.params.source), with_flow)


def _dependency_ready(ctx: Context, service: str, since: float | None = None) -> tuple[bool, list[dict[str, Any]]]:
    """Whether the dependency is ready, and what that was judged on (:meth:`Deployment.dependency_ready`).
    Compose: every container of the service running and healthy. Swarm: the service converged since ``since``
    (Unix seconds, default now). Raises RunbookError when the engine cannot be read."""
    return ctx.deployment.dependency_ready(service, since)


def _probe_target(ep: DrillEndpoint, variables: dict[str, Any], secret, timeout: float) -> probes.ProbeTarget:
    return probes.ProbeTarget(
        name=ep.name, url=str(probes.render(ep.url, variables, secret)), method=ep.method,
        headers=probes.render(ep.headers, variables, secret), json_body=probes.render(ep.json_body, variables, secret),
        content=(str(probes.render(ep.body, variables, secret)) if ep.body is not None else None), timeout_s=timeout)


def _first_failure(steps: list[probes.StepResult]) -> probes.StepResult | None:
    return next((r for r in steps if r.status != "PASS"), None)


def _flow_summary(steps: list[probes.StepResult]) -> list[dict[str, Any]]:
    return [{"step": r.name, "status": r.status, "actual": r.actual} for r in steps]


@dataclass
class _Baseline:
    """The steady state a drill departs from: the flow before the fault, and the probes to send."""

    flow_before: list[probes.StepResult]
    targets: list[probes.ProbeTarget]


def _baseline(run: _DrillRun) -> _Baseline | CheckRecord:
    """Steady state first: never break a system that is already broken. An ERROR record (nothing was
    broken) when the dependency is not ready, the flow does not pass, or a probe cannot be rendered."""
    ctx, d, c = run.ctx, run.d, run.c
    secret = secret_reader(ctx)
    try:
        ready, seen = _dependency_ready(ctx, d.dependency)
    except RunbookError as exc:
        return c.error(d.dependency, exc, expected=run.expected)
    if not ready:
        return c.record(d.dependency, "ERROR", expected=run.expected, severity="critical",
                        actual=f"{d.dependency} is not ready before the drill; nothing was broken",
                        evidence={ctx.deployment.readiness_key: seen})
    variables: dict[str, Any] = dict(ctx.state.flow_variables)
    before: list[probes.StepResult] = []
    if run.with_flow:
        before, variables = run_smoke_flow(ctx)
        bad = _first_failure(before)
        if bad:
            return c.record(d.dependency, "ERROR", expected=run.expected,
                            actual=f"the flow does not pass before the fault (step {bad.name!r}: {bad.actual}); "
                                   "nothing was broken", evidence={"flow_before": [r.to_dict() for r in before]})
    try:
        targets = [_probe_target(ep, variables, secret, d.probe_timeout_s) for ep in d.endpoints]
    except probes.TemplateError as exc:
        return c.error(d.dependency, exc, expected=run.expected)
    return _Baseline(before, targets)


@dataclass
class _Observed:
    """What one drill saw. ``*_t`` and the properties are seconds since ``origin`` (the probes' clock)."""

    origin: float
    fault: faults.Fault | None = None
    start_error: Exception | None = None  # the fault was not applied and nothing is left broken
    restore_error: Exception | None = None
    dep_ready_t: float | None = None
    recovered_t: float | None = None
    waited_t: float | None = None  # when the recovery wait ended (recovered, or gave up)
    ready_views: list = field(default_factory=list)
    results: list[probes.ProbeResult] = field(default_factory=list)

    def _since_origin(self, mono: float | None) -> float | None:
        return mono - self.origin if mono else None

    @property
    def applied(self) -> float | None:
        return self._since_origin(self.fault.applied_mono) if self.fault else None

    @property
    def restore_start(self) -> float | None:
        return self._since_origin(self.fault.restore_started_mono) if self.fault else None

    @property
    def restored(self) -> float | None:
        return self._since_origin(self.fault.restored_mono) if self.fault else None

    @property
    def waited_s(self) -> float | None:
        """How long the drill waited after the restore (the real wait, whatever the budgets say)."""
        if self.waited_t is None or self.restored is None:
            return None
        return round(self.waited_t - self.restored, 1)


def _points(results: list[probes.ProbeResult], names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each endpoint's probes, in the compact form drills record (``ProbeResult.point``)."""
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in results:
        out[r.name].append(r.point())
    return out


def _stable_recovery(points: list[dict[str, Any]], since: float) -> float | None:
    """When an endpoint came back for good: the start of the first ok probe after ``since`` from which
    every later probe is ok; None when the last probe after ``since`` is not ok."""
    after = [p for p in points if p["t"] >= since]
    if not after or not after[-1]["ok"]:
        return None
    t = after[-1]["t"]
    for p in reversed(after):
        if not p["ok"]:
            break
        t = p["t"]
    return t


def _status_counts(points: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in points:
        key = str(p["status"]) if p["status"] is not None else "no answer"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _wait(seconds: float) -> None:
    """Wait in the main thread in a way signals interrupt (the drill's SIGINT/SIGTERM handlers run)."""
    threading.Event().wait(max(seconds, 0))


def _probe(run: _DrillRun, targets: list[probes.ProbeTarget]) -> _Observed:
    """Probe every endpoint from ``baseline_s`` before the fault until the recovery. The fault is
    applied by :class:`faults.Fault`, which journals every step and restores whatever happens (its
    ``__exit__``, and SIGINT/SIGTERM handlers while it is active); the probes stop in a ``finally``."""
    ctx, d = run.ctx, run.d
    expect = {ep.name: ep for ep in d.endpoints}
    obs = _Observed(origin=time.monotonic())
    loop = probes.ProbeLoop(targets, interval_s=d.interval_s, origin=obs.origin, concurrency=ctx.params.smoke.concurrency,
                            judge=lambda name, r: r.error is None and r.status in expect[name].ok_status)
    loop.start()
    try:
        _wait(d.baseline_s)
        obs.fault = faults.Fault(ctx.engine, ctx.params.project, d.dependency, d.mode, run.directory, progress=ctx.progress,
                                 stack=ctx.deployment.fault_stack)
        try:
            with obs.fault:
                _wait(d.duration_s)
        except RunbookError as exc:  # DrillError, EngineError
            if obs.fault.journal is None or (obs.fault.applied_mono is None and obs.fault.restored):
                obs.start_error = exc  # nothing is left broken
                return obs
            obs.restore_error = exc
        if obs.restore_error is None:
            _recover(run, loop, obs)
    finally:
        loop.stop()
    obs.results = loop.snapshot()
    return obs


def _ready_views(run: _DrillRun, since: float | None = None) -> tuple[bool, list]:
    try:
        return _dependency_ready(run.ctx, run.d.dependency, since)
    except RunbookError:
        return False, []  # the engine hiccuped: ask again next round


def _recover(run: _DrillRun, loop: probes.ProbeLoop, obs: _Observed) -> None:
    """After the restore, until the dependency is ready and every endpoint is back for good (or the
    longer of ``recovery_budget_s`` and ``healthy_timeout_s`` has passed): sets ``dep_ready_t``,
    ``recovered_t``, ``ready_views`` and ``waited_t`` (when it stopped waiting)."""
    try:
        _recover_wait(run, loop, obs)
    finally:
        obs.waited_t = time.monotonic() - obs.origin


def _recover_wait(run: _DrillRun, loop: probes.ProbeLoop, obs: _Observed) -> None:
    d, restored_at = run.d, obs.restored
    deadline = time.monotonic() + max(d.recovery_budget_s, d.healthy_timeout_s)
    # a swarm task rejected since the restore (not before) keeps the service from counting as converged
    restore_wall = time.time() - (time.monotonic() - obs.fault.restore_started_mono) if obs.fault else None
    while time.monotonic() < deadline:
        now = time.monotonic() - obs.origin
        if obs.dep_ready_t is None:
            ready, obs.ready_views = _ready_views(run, restore_wall)
            if ready:
                obs.dep_ready_t = now
        points = _points(loop.snapshot(), [ep.name for ep in d.endpoints])
        back = {n: _stable_recovery(pts, restored_at) for n, pts in points.items()}
        all_back = all(t is not None for t in back.values())
        if obs.dep_ready_t is not None and all_back:
            obs.recovered_t = max(back.values())
            return
        if obs.dep_ready_t is None and now - restored_at > d.healthy_timeout_s and all_back:
            return
        _wait(d.interval_s)


def _timeline(run: _DrillRun, obs: _Observed, points: dict[str, list[dict[str, Any]]]) -> str | None:
    """Draw the drill's timeline PNG beside its journal. Returns its path for the evidence (relative to
    the run directory), why it was not drawn, or None when the fault was never applied."""
    ctx, d = run.ctx, run.d
    if obs.applied is None or obs.restore_start is None:
        return None
    png = run.directory / f"{d.dependency}-timeline.png"
    try:
        faults.draw_timeline(png, title=f"{ctx.params.project}: {d.dependency} {d.mode} drill",
                             lanes=[(ep.name, ep.expect, points[ep.name]) for ep in d.endpoints],
                             fault=(obs.applied, obs.restore_start), restored=obs.restored, recovered=obs.recovered_t)
        timeline = str(png.relative_to(ctx.run_dir)) if ctx.run_dir else str(png)
        ctx.state.timelines[d.dependency] = png
        return timeline
    except (OSError, ValueError) as exc:
        return f"(not drawn: {exc})"


def _endpoint_problems(d: Drill, ep: DrillEndpoint, during: list[dict[str, Any]], ok_n: int,
                       rec_s: float | None, waited_s: float | None = None) -> list[str]:
    """What is wrong with one endpoint's answers: during the fault (``ok_n`` of ``during`` answered ok)
    against its expectation, then its recovery time against the budget (``waited_s``: how long the
    drill really waited after the restore)."""
    ok_set, budget = "/".join(map(str, ep.ok_status)), d.recovery_budget_s
    problems = []
    if not during:
        problems.append("no probe completed during the fault")
    elif ep.expect == "available" and ok_n < len(during):
        problems.append(f"{len(during) - ok_n} of {len(during)} probes during the fault did not answer {ok_set} "
                        f"({_status_counts([p for p in during if not p['ok']])}): not available while {d.dependency} was down")
    elif ep.expect == "must_fail" and ok_n:
        problems.append(f"{ok_n} of {len(during)} probes answered {ok_set} while {d.dependency} was down: "
                        f"it does not really depend on {d.dependency}, or the fault did not take")
    if rec_s is None and waited_s is not None:
        problems.append(f"not back (answering {ok_set}) {waited_s:g}s after the restore, when the drill stopped "
                        f"waiting (budget {budget:g}s)")
    elif rec_s is None:
        problems.append(f"not back (answering {ok_set}) after the restore (budget {budget:g}s)")
    elif rec_s > budget:
        problems.append(f"back after {rec_s:g}s, over the {budget:g}s budget")
    if not during:
        problems.append(f"lengthen duration_s (now {d.duration_s:g}s) well past the endpoint's response time")
    return problems


def _endpoint_record(run: _DrillRun, ep: DrillEndpoint, pts: list[dict[str, Any]], obs: _Observed,
                     first_bad: probes.ProbeResult | None, timeline: str | None) -> CheckRecord:
    """One probed endpoint: its answers during the fault judged against its designed behaviour, and
    when it came back after the restore."""
    d, budget = run.d, run.d.recovery_budget_s
    ok_set = "/".join(map(str, ep.ok_status))
    exp = {"available": f"answers {ok_set} to every probe during the fault (designed degraded mode)",
           "must_fail": f"never answers {ok_set} during the fault (it really uses {d.dependency})",
           "may_fail": "anything during the fault"}[ep.expect] + f"; back within {budget:g}s of the restore"
    applied, restore_start, restored = obs.applied, obs.restore_start, obs.restored
    if applied is None or restore_start is None:
        return run.c.record(ep.name, "ERROR", expected=exp, actual="the fault was never applied", evidence={"probes": pts})
    during = [p for p in pts if p["t"] >= applied and p["t"] + p["latency_ms"] / 1000 <= restore_start]
    ok_n = sum(1 for p in during if p["ok"])
    back = _stable_recovery(pts, restored) if restored is not None else None
    rec_s = round(back - restored, 2) if back is not None else None
    problems = _endpoint_problems(d, ep, during, ok_n, rec_s, obs.waited_s)
    ev = {"request": f"{ep.method} {ep.url}", "expectation": ep.expect, "ok_status": ep.ok_status,
          "during_fault": {"probes": len(during), "ok": ok_n, "statuses": _status_counts(during)},
          "recovery_s": rec_s, "recovery_budget_s": budget, "waited_after_restore_s": obs.waited_s, "timeline": timeline,
          "fault_window_s": [round(applied, 3), round(restore_start, 3)],
          "probes": pts}
    if first_bad is not None:
        ev["first_unexpected_answer"] = first_bad.evidence(run.ctx.params.smoke.excerpt_chars)
    summary = f"during the fault {ok_n}/{len(during)} probes answered {ok_set} ({_status_counts(during)})"
    if rec_s is not None:
        summary += f"; back {rec_s:g}s after the restore"
    # No probe inside the window is missing evidence, not proof of misbehaviour: ERROR (still NO-GO).
    status = "ERROR" if not during else ("FAIL" if problems else "PASS")
    return run.c.record(ep.name, status, expected=exp, actual=("; ".join(problems) if problems else summary), evidence=ev)


def _ms(seconds: float | None) -> float | None:
    """Seconds to the millisecond, as the evidence keeps them."""
    return round(seconds, 3) if seconds is not None else None


def _dependency_record(run: _DrillRun, flow_before: list[probes.StepResult], obs: _Observed,
                       timeline: str | None) -> CheckRecord:
    """The dependency itself: restored, ready within ``healthy_timeout_s``, every endpoint back within
    ``recovery_budget_s``, and the flow passing again."""
    ctx, d, c, fault = run.ctx, run.d, run.c, obs.fault
    ev: dict[str, Any] = {"mode": d.mode, "duration_s": d.duration_s, "interval_s": d.interval_s,
                          "journal": str(fault.journal.path) if fault and fault.journal else None, "timeline": timeline,
                          "restore_actions": fault.actions if fault else [],
                          "fault_applied_s": _ms(obs.applied), "restore_started_s": _ms(obs.restore_start),
                          "restored_s": _ms(obs.restored), "probes": len(obs.results),
                          "flow_before": _flow_summary(flow_before)}
    if obs.restore_error is not None or not (fault and fault.restored):
        where = f" {ctx.run_dir}" if ctx.run_dir else ""
        return c.record(d.dependency, "FAIL", severity="critical", expected=run.expected, evidence=ev,
                        actual=f"could not restore {d.dependency}: {obs.restore_error}",
                        remediation=f"Run `runbook recover{where}` now: the deployment may still be broken.")
    dep_ready_s = round(obs.dep_ready_t - obs.restored, 2) if obs.dep_ready_t is not None else None
    recovery_s = round(obs.recovered_t - obs.restored, 2) if obs.recovered_t is not None else None
    ev.update({"dependency_ready_s": dep_ready_s, "recovery_s": recovery_s, "waited_after_restore_s": obs.waited_s,
               f"{ctx.deployment.readiness_key}_after": obs.ready_views})
    problems = []
    waited = f"{obs.waited_s:g}s" if obs.waited_s is not None else "the wait"
    if dep_ready_s is None:
        problems.append(f"{d.dependency} not ready {waited} after the restore (healthy_timeout_s {d.healthy_timeout_s:g}s)")
    if recovery_s is None:
        problems.append(f"not every endpoint back {waited} after the restore (budget {d.recovery_budget_s:g}s)")
    after: list[probes.StepResult] = []
    if run.with_flow:
        after, _ = run_smoke_flow(ctx)
        ev["flow_after"] = _flow_summary(after)
        bad = _first_failure(after)
        if bad:
            problems.append(f"the flow fails after the drill (step {bad.name!r}: {bad.actual})")
    if problems:
        return c.record(d.dependency, "FAIL", expected=run.expected, evidence=ev, actual="; ".join(problems))
    return c.record(d.dependency, "PASS", expected=run.expected, evidence=ev,
                    actual=f"{d.mode} for {obs.restore_start - obs.applied:.1f}s, restored; ready {dep_ready_s:g}s and "
                           f"every endpoint back {recovery_s:g}s after the restore" + ("; the flow passes again" if after else ""))


def _judge(run: _DrillRun, base: _Baseline, obs: _Observed) -> list[CheckRecord]:
    """The drill's records: one per probed endpoint, then one for the dependency (with the timeline)."""
    points = _points(obs.results, [ep.name for ep in run.d.endpoints])
    first_bad: dict[str, probes.ProbeResult] = {}
    for r in obs.results:
        if not r.ok:
            first_bad.setdefault(r.name, r)
    timeline = _timeline(run, obs, points)
    out = [_endpoint_record(run, ep, points[ep.name], obs, first_bad.get(ep.name), timeline) for ep in run.d.endpoints]
    return out + [_dependency_record(run, base.flow_before, obs, timeline)]


def drill(ctx: Context, d: Drill) -> list[CheckRecord]:
    """One dependency drill. Before: the flow passes and the dependency is ready (otherwise ERROR,
    nothing is broken). During ``duration_s``: every endpoint is probed each ``interval_s``; an
    ``available`` endpoint must answer ok to every probe, a ``must_fail`` one to none. After the
    restore: the dependency is ready within ``healthy_timeout_s``, every endpoint answers ok again (and
    stays ok) within ``recovery_budget_s``, and the flow passes again. The fault is applied by
    :class:`runbook_lib.drills.faults.Fault`, which restores whatever happens and journals every step.
    Once something was broken, every endpoint is asked again (:func:`aftermath.after_drill`): one still
    failing is a critical FAIL saying production is degraded now. In a read-only run: a SKIP, nothing
    is broken."""
    run = _drill_run(ctx, d)
    if ctx.params.read_only:
        return [readonly.skipped_drill(run.c, d)]
    base = _baseline(run)
    if isinstance(base, CheckRecord):
        return [base]
    obs = _probe(run, base.targets)
    if obs.start_error is not None:
        return [run.c.error(d.dependency, obs.start_error, expected=run.expected)]
    return _judge(run, base, obs) + aftermath.after_drill(ctx, d, base.targets)


@check("smoke.drill", "Dependency drill", phase=PHASE, severity="high", category="Degraded mode per dependency",
       changes_deployment=True, family=True)
@check("smoke.after_drill", "Every endpoint answers again after the drill", phase=PHASE, severity="critical",
       category="Degraded mode per dependency", family=True,
       remediation="Restart the failing service now; then make it reconnect to the dependency on its own.")
def drill_for(d: Drill) -> Callable[[Context], list[CheckRecord]]:
    """The drill as a check function for ``phase.run`` (named ``drill_<dependency>``, running the check
    ``smoke.drill.<dependency>`` of the ``smoke.drill`` family)."""
    def fn(ctx: Context) -> list[CheckRecord]:
        return drill(ctx, d)
    fn.__name__ = f"drill_{d.dependency}"
    fn.check_ids = (f"smoke.drill.{d.dependency}", f"smoke.after_drill.{d.dependency}")  # type: ignore[attr-defined]
    fn.__doc__ = drill.__doc__
    return fn


def timeline_image(ctx: Context, d: Drill):
    """The drill's timeline for the notebook (an inline PNG, which nbconvert carries into the report),
    or a line saying why there is none."""
    from IPython.display import Image, Markdown

    png = ctx.state.timelines.get(d.dependency)
    if png and Path(png).is_file():
        return Image(filename=str(png))
    return Markdown(f"*No timeline for the {d.dependency} drill: the fault was not applied.*")
