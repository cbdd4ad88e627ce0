"""Phase 4, smoke tests: real requests, an end-to-end flow, and dependency drills that always restore.

A ``/health`` that answers 200 proves little: it may check no dependency at all. So this phase also
runs the flow a user would (log in, post a chat message, start a video call, store an object and read
it back: whatever the parameters' ``smoke.flow`` says), and for each dependency in ``smoke.drills``
breaks it on purpose, probes the endpoints that rely on it every ~250 ms, and compares what it sees with
the designed behaviour: ``available`` (degraded mode must keep answering), ``must_fail`` (the endpoint
really uses the dependency), ``may_fail``. Then it restores the dependency, waits until it is healthy,
requires every endpoint back within the recovery budget, and runs the flow again.

Check ids: ``smoke.health``, ``smoke.metrics``, ``smoke.flow`` (one record per step), and
``smoke.drill.<dependency>`` (one record per probed endpoint, plus one for the dependency itself:
restore, recovery time, flow afterwards, and the timeline PNG).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from runbook_lib.drills import faults

from runbook_lib.drills import probes
from runbook_lib.run.context import Context
from runbook_lib.errors import RunbookError
from runbook_lib.run.params import Drill, DrillEndpoint, Endpoint
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check

PHASE = "04_smoke_tests"


# -- helpers --------------------------------------------------------------------------------------------
def host_base_url(port: dict[str, Any]) -> str | None:
    """``http://HOST:PORT`` where the host reaches one published port of the compose model (a loopback
    address for 0.0.0.0 and ::), or None for a UDP or unpublished port. Shared with ``runbook init``."""
    if port.get("protocol", "tcp") != "tcp" or not port.get("published"):
        return None
    host = port.get("host_ip") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    published = str(port["published"]).split("-")[0]
    return f"http://{host}:{published}"


def default_endpoints(ctx: Context) -> list[Endpoint]:
    """``GET <health_path>`` on the first published TCP port of each app service (every service that
    publishes one when ``app_services`` is empty), on the host address it is published on."""
    services = ctx.model.get("services", {})
    names = ctx.params.app_services or sorted(services)
    out = []
    for name in names:
        for port in services.get(name, {}).get("ports") or []:
            base = host_base_url(port)
            if base:
                out.append(Endpoint(name=name, url=base + ctx.params.smoke.health_path))
                break
    return out


def secret_reader(ctx: Context) -> Callable[[str], str]:
    """Resolve ``{{ secret:NAME }}`` from the compose model's file secret NAME (read at run time, taught
    to the redactor, never stored)."""
    files = ctx.secret_files()

    def read(name: str) -> str:
        if name not in files:
            raise probes.TemplateError(f"{{{{ secret:{name} }}}}: the compose model has no file secret {name!r} "
                                       f"(known: {', '.join(sorted(files)) or 'none'})")
        try:
            value = files[name].read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise probes.TemplateError(f"{{{{ secret:{name} }}}}: cannot read {files[name]}: {exc.strerror}") from exc
        ctx.redactor.learn([value])
        return value

    return read


def _curl(method: str, url: str, timeout: float | None = None, data: bool = False) -> str:
    parts = ["curl -sS"]
    if method not in ("GET",):
        parts.append(f"-X {method}")
    if timeout:
        parts.append(f"--max-time {timeout:g}")
    parts.append("-w '\\n%{http_code} %{time_total}s\\n'")
    if data:
        parts.append("-H 'Content-Type: application/json' -d '...'")
    parts.append(f"'{url}'")
    return " ".join(parts)


def _learn_captured(ctx: Context, variables: dict[str, Any]) -> None:
    """Captured values are treated as credentials (tokens are among them): redacted wherever they appear."""
    ctx.redactor.learn([str(v) for k, v in variables.items() if k != "run_id" and isinstance(v, (str, int))])


# -- smoke.health ---------------------------------------------------------------------------------------
@check("smoke.health", "Endpoint answers", phase=PHASE, severity="high", category="Service connectivity",
       remediation="Read the service's logs (`docker compose logs SERVICE`) and its health output.")
def health(ctx: Context) -> list[CheckRecord]:
    """Every endpoint in ``smoke.endpoints`` (default: /health of each app service's published port)
    answers one of its expected statuses within its timeout. All are asked concurrently; connection
    errors and timeouts are retried ``smoke.retries`` times. Evidence: status, latency, a redacted and
    truncated body excerpt."""
    sp = ctx.params.smoke
    c = Check("smoke.health")
    try:
        endpoints = sp.endpoints or default_endpoints(ctx)
    except RunbookError as exc:
        return [c.error("endpoints", exc, expected="endpoints from the parameters or the compose model")]
    if not endpoints:
        return [c.record("endpoints", "SKIP", expected="endpoints to ask", severity="info",
                         actual="no smoke.endpoints and no app service publishes a TCP port",
                         evidence={"app_services": ctx.params.app_services})]
    targets = [probes.Target(e.name, e.url, e.method, timeout_s=e.timeout_s) for e in endpoints]
    results = probes.probe_all(targets, retries=sp.retries, concurrency=sp.concurrency)
    out = []
    for e, r in zip(endpoints, results):
        want = "/".join(map(str, e.expect_status))
        ev = {**r.evidence(sp.excerpt_chars), "expected_status": e.expect_status, "timeout_s": e.timeout_s}
        cmd = _curl(e.method, e.url, e.timeout_s)
        if r.error:
            out.append(c.record(e.name, "FAIL", expected=f"{want} within {e.timeout_s:g}s",
                                actual=f"no answer after {r.attempts} attempt(s): {r.error}", evidence=ev, command=cmd))
        elif r.status not in e.expect_status:
            out.append(c.record(e.name, "FAIL", expected=f"{want} within {e.timeout_s:g}s",
                                actual=f"answered {r.status} in {r.latency_s * 1000:.0f} ms", evidence=ev, command=cmd))
        else:
            out.append(c.record(e.name, "PASS", expected=f"{want} within {e.timeout_s:g}s",
                                actual=f"{r.status} in {r.latency_s * 1000:.0f} ms", evidence=ev, command=cmd))
    return out


# -- smoke.metrics --------------------------------------------------------------------------------------
@check("smoke.metrics", "Prometheus metrics exposed", phase=PHASE, severity="high", category="Metrics and monitoring",
       remediation="Expose /metrics in the Prometheus text format with the listed families.")
def metrics(ctx: Context) -> list[CheckRecord]:
    """Each ``smoke.metrics`` endpoint answers 200, its body parses as Prometheus text exposition
    (prometheus_client's parser), and it has every metric family listed for it."""
    sp = ctx.params.smoke
    c = Check("smoke.metrics")
    if not sp.metrics:
        return [c.record("metrics", "SKIP", expected="metrics endpoints to scrape", severity="info",
                         actual="no smoke.metrics in the parameters", evidence={"smoke.metrics": []})]
    targets = [probes.Target(m.name, m.url, timeout_s=m.timeout_s) for m in sp.metrics]
    results = probes.probe_all(targets, retries=sp.retries, concurrency=sp.concurrency, body_cap=probes.FLOW_BODY_CAP)
    out = []
    for m, r in zip(sp.metrics, results):
        expected = "200, valid text exposition" + (f", families {', '.join(m.families)}" if m.families else "")
        cmd = f"curl -sS --max-time {m.timeout_s:g} '{m.url}' | promtool check metrics"
        ev = r.evidence(min(sp.excerpt_chars, 200))
        if r.error or r.status != 200:
            out.append(c.record(m.name, "FAIL", expected=expected, evidence=ev, command=cmd,
                                actual=f"no answer: {r.error}" if r.error else f"answered {r.status}"))
            continue
        try:
            parsed = probes.parse_metrics(r.body.decode("utf-8", "replace"))
        except ValueError as exc:
            out.append(c.record(m.name, "FAIL", expected=expected, actual=str(exc)[:300], evidence=ev, command=cmd))
            continue
        missing = [f for f in m.families if f not in parsed.names]
        ev.pop("body_excerpt", None)
        ev.update({"families": len(parsed.families), "samples": parsed.samples, "required": m.families,
                   "missing": missing, "family_types": {f: parsed.families.get(f, parsed.families.get(f.removesuffix("_total")))
                                                        for f in m.families if f not in missing}})
        if r.truncated:
            out.append(c.record(m.name, "FAIL", expected=expected, evidence=ev, command=cmd,
                                actual=f"more than {probes.FLOW_BODY_CAP} bytes of metrics: not parsed whole"))
        elif missing:
            out.append(c.record(m.name, "FAIL", expected=expected, evidence=ev, command=cmd,
                                actual=f"missing families: {', '.join(missing)}"))
        else:
            out.append(c.record(m.name, "PASS", expected=expected, evidence=ev, command=cmd,
                                actual=f"{len(parsed.families)} families, {parsed.samples} samples; all required present"))
    return out


# -- smoke.flow -----------------------------------------------------------------------------------------
def _flow_records(c: Check, results: list[probes.StepResult], steps) -> list[CheckRecord]:
    out = []
    for res, step in zip(results, steps):
        cmd = _curl(step.method, step.url, step.timeout_s, data=step.json_body is not None or step.body is not None)
        if step.headers:
            cmd += " " + " ".join(f"-H '{k}: {v}'" for k, v in probes.safe_headers(step.headers).items())
        out.append(c.record(res.name, res.status, expected=res.expected, actual=res.actual, evidence=res.evidence,
                            command=cmd))
    return out


def run_flow(ctx: Context) -> tuple[list[probes.StepResult], dict[str, Any]]:
    """Run ``smoke.flow`` once; captured values are taught to the redactor before anything is stored."""
    sp = ctx.params.smoke
    results, variables = probes.run_flow(sp.flow, secret=secret_reader(ctx), excerpt_chars=sp.excerpt_chars)
    _learn_captured(ctx, variables)
    return results, variables


@check("smoke.flow", "End-to-end flow step", phase=PHASE, severity="critical", category="End-to-end flow",
       remediation="Replay the step with the command shown and read the service's logs.")
def flow(ctx: Context) -> list[CheckRecord]:
    """The end-to-end flow in ``smoke.flow``: each step answers its expected status, its captures are
    found and its assertions hold; a step that does not pass skips the rest. One record per step, with
    the request as written (templates, not secrets), status, latency and a redacted excerpt."""
    sp = ctx.params.smoke
    c = Check("smoke.flow")
    if not sp.flow:
        return [c.record("flow", "SKIP", expected="a flow to run", severity="info",
                         actual="no smoke.flow in the parameters", evidence={"smoke.flow": []})]
    results, variables = run_flow(ctx)
    ctx.state["flow_variables"] = variables
    return _flow_records(c, results, sp.flow)


# -- smoke.drill.<dependency> -----------------------------------------------------------------------------
def _target(ep: DrillEndpoint, variables: dict[str, Any], secret, timeout: float) -> probes.Target:
    return probes.Target(
        name=ep.name, url=str(probes.render(ep.url, variables, secret)), method=ep.method,
        headers=probes.render(ep.headers, variables, secret), json_body=probes.render(ep.json_body, variables, secret),
        content=(str(probes.render(ep.body, variables, secret)) if ep.body is not None else None), timeout_s=timeout)


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


def drill(ctx: Context, d: Drill) -> list[CheckRecord]:
    """One dependency drill. Before: the flow passes and the dependency is ready (otherwise ERROR,
    nothing is broken). During ``duration_s``: every endpoint is probed each ``interval_s``; an
    ``available`` endpoint must answer ok to every probe, a ``must_fail`` one to none. After the
    restore: the dependency is ready within ``healthy_timeout_s``, every endpoint answers ok again (and
    stays ok) within ``recovery_budget_s``, and the flow passes again. The fault is applied by
    :class:`runbook_lib.drills.faults.Fault`, which restores whatever happens and journals every step."""
    sp, project = ctx.params.smoke, ctx.params.project
    cid = f"smoke.drill.{d.dependency}"
    command = {"stop": f"docker stop {project}-{d.dependency}-1; sleep {d.duration_s:g}; docker start {project}-{d.dependency}-1",
               "pause": f"docker pause {project}-{d.dependency}-1; sleep {d.duration_s:g}; docker unpause {project}-{d.dependency}-1",
               "disconnect": f"docker network disconnect {project}_default {project}-{d.dependency}-1; sleep {d.duration_s:g}; "
                             f"docker network connect --alias {d.dependency} {project}_default {project}-{d.dependency}-1"}[d.mode]
    c = Check(cid, f"Drill: {d.dependency} {d.mode}", command=command,
              remediation=f"Make the service behave as designed while {d.dependency} is down, and recover on its own when it returns.")
    expected_dep = (f"{d.mode} {d.dependency} for {d.duration_s:g}s, restored, ready within {d.healthy_timeout_s:g}s, "
                    f"every endpoint back within {d.recovery_budget_s:g}s" + (", flow passes after" if d.flow_after and sp.flow else ""))
    directory = faults.journal_dir(ctx.run_dir, ctx.params.source)
    secret = secret_reader(ctx)

    # Steady state first: never break a system that is already broken.
    try:
        views = ctx.engine.service_containers(project, d.dependency)
    except RunbookError as exc:
        return [c.error(d.dependency, exc, expected=expected_dep)]
    if not views or not all(v.ready for v in views):
        return [c.record(d.dependency, "ERROR", expected=expected_dep, severity="critical",
                         actual=f"{d.dependency} is not ready before the drill; nothing was broken",
                         evidence={"containers": [v.summary() for v in views]})]
    variables: dict[str, Any] = dict(ctx.state.get("flow_variables") or {})
    before: list[probes.StepResult] = []
    if d.flow_after and sp.flow:
        before, variables = run_flow(ctx)
        bad = [r for r in before if r.status != "PASS"]
        if bad:
            return [c.record(d.dependency, "ERROR", expected=expected_dep,
                             actual=f"the flow does not pass before the fault (step {bad[0].name!r}: {bad[0].actual}); "
                                    "nothing was broken", evidence={"flow_before": [r.to_dict() for r in before]})]
    try:
        targets = [_target(ep, variables, secret, d.probe_timeout_s) for ep in d.endpoints]
    except probes.TemplateError as exc:
        return [c.error(d.dependency, exc, expected=expected_dep)]

    expect = {ep.name: ep for ep in d.endpoints}
    origin = time.monotonic()
    loop = probes.ProbeLoop(targets, interval_s=d.interval_s, origin=origin, concurrency=sp.concurrency,
                            judge=lambda name, r: r.error is None and r.status in expect[name].ok_status)
    fault: faults.Fault | None = None
    restore_error: Exception | None = None
    dep_ready_t: float | None = None
    recovered_t: float | None = None
    ready_views: list = []
    loop.start()
    try:
        _wait(d.baseline_s)
        fault = faults.Fault(ctx.engine, project, d.dependency, d.mode, directory, progress=ctx.progress)
        try:
            with fault:
                _wait(d.duration_s)
        except RunbookError as exc:  # DrillError, EngineError
            if fault.journal is None or (fault.applied_mono is None and fault.restored):
                return [c.error(d.dependency, exc, expected=expected_dep)]  # nothing is left broken
            restore_error = exc
        if restore_error is None:
            restored_at = fault.restored_mono - origin
            deadline = time.monotonic() + max(d.recovery_budget_s, d.healthy_timeout_s)
            while time.monotonic() < deadline:
                now = time.monotonic() - origin
                if dep_ready_t is None:
                    try:
                        ready_views = ctx.engine.service_containers(project, d.dependency)
                    except RunbookError:
                        ready_views = []  # the engine hiccuped: ask again next round
                    if ready_views and all(v.ready for v in ready_views):
                        dep_ready_t = now
                pts: dict[str, list] = {}
                for r in loop.snapshot():
                    pts.setdefault(r.name, []).append(r.point())
                back = {n: _stable_recovery(pts.get(n, []), restored_at) for n in expect}
                if dep_ready_t is not None and all(t is not None for t in back.values()):
                    recovered_t = max(back.values())
                    break
                if dep_ready_t is None and now - restored_at > d.healthy_timeout_s and all(t is not None for t in back.values()):
                    break
                _wait(d.interval_s)
    finally:
        loop.stop()

    # -- judge --------------------------------------------------------------------------------------
    results = loop.snapshot()
    points: dict[str, list[dict[str, Any]]] = {ep.name: [] for ep in d.endpoints}
    samples: dict[str, probes.ProbeResult] = {}
    for r in results:
        points[r.name].append(r.point())
        if not r.ok and r.name not in samples:
            samples[r.name] = r
    applied = fault.applied_mono - origin if fault and fault.applied_mono else None
    restore_start = fault.restore_started_mono - origin if fault and fault.restore_started_mono else None
    restored = fault.restored_mono - origin if fault and fault.restored_mono else None
    png = directory / f"{d.dependency}-timeline.png"
    timeline = None
    if applied is not None and restore_start is not None:
        try:
            faults.draw_timeline(png, title=f"{project}: {d.dependency} {d.mode} drill",
                                 lanes=[(ep.name, ep.expect, points[ep.name]) for ep in d.endpoints],
                                 fault=(applied, restore_start), restored=restored, recovered=recovered_t)
            timeline = str(png.relative_to(ctx.run_dir)) if ctx.run_dir else str(png)
            ctx.state.setdefault("timelines", {})[d.dependency] = png
        except (OSError, ValueError) as exc:
            timeline = f"(not drawn: {exc})"
    journal = str(fault.journal.path) if fault and fault.journal else None
    out: list[CheckRecord] = []
    budget = d.recovery_budget_s
    for ep in d.endpoints:
        pts = points[ep.name]
        ok_set = "/".join(map(str, ep.ok_status))
        exp = {"available": f"answers {ok_set} to every probe during the fault (designed degraded mode)",
               "must_fail": f"never answers {ok_set} during the fault (it really uses {d.dependency})",
               "may_fail": "anything during the fault"}[ep.expect] + f"; back within {budget:g}s of the restore"
        if applied is None or restore_start is None:
            out.append(c.record(ep.name, "ERROR", expected=exp, actual="the fault was never applied",
                                evidence={"probes": pts}))
            continue
        during = [p for p in pts if p["t"] >= applied and p["t"] + p["latency_ms"] / 1000 <= restore_start]
        ok_n = sum(1 for p in during if p["ok"])
        back = _stable_recovery(pts, restored) if restored is not None else None
        rec_s = round(back - restored, 2) if back is not None else None
        problems = []
        if not during:
            problems.append("no probe completed during the fault")
        elif ep.expect == "available" and ok_n < len(during):
            problems.append(f"{len(during) - ok_n} of {len(during)} probes during the fault did not answer {ok_set} "
                            f"({_status_counts([p for p in during if not p['ok']])}): not available while {d.dependency} was down")
        elif ep.expect == "must_fail" and ok_n:
            problems.append(f"{ok_n} of {len(during)} probes answered {ok_set} while {d.dependency} was down: "
                            f"it does not really depend on {d.dependency}, or the fault did not take")
        if rec_s is None:
            problems.append(f"not back (answering {ok_set}) within {budget:g}s of the restore")
        elif rec_s > budget:
            problems.append(f"back after {rec_s:g}s, over the {budget:g}s budget")
        ev = {"request": f"{ep.method} {ep.url}", "expectation": ep.expect, "ok_status": ep.ok_status,
              "during_fault": {"probes": len(during), "ok": ok_n, "statuses": _status_counts(during)},
              "recovery_s": rec_s, "recovery_budget_s": budget, "timeline": timeline,
              "fault_window_s": [round(applied, 3), round(restore_start, 3)],
              "probes": pts}
        if ep.name in samples:
            ev["first_unexpected_answer"] = samples[ep.name].evidence(sp.excerpt_chars)
        summary = (f"during the fault {ok_n}/{len(during)} probes answered {ok_set} "
                   f"({_status_counts(during)}); back {rec_s:g}s after the restore" if rec_s is not None
                   else f"during the fault {ok_n}/{len(during)} probes answered {ok_set} ({_status_counts(during)})")
        # No probe inside the window is missing evidence, not proof of misbehaviour: ERROR (still NO-GO).
        status = "ERROR" if not during else ("FAIL" if problems else "PASS")
        if not during:
            problems.append(f"lengthen duration_s (now {d.duration_s:g}s) well past the endpoint's response time")
        out.append(c.record(ep.name, status, expected=exp,
                            actual=("; ".join(problems) if problems else summary), evidence=ev))

    # -- the dependency itself: restored, ready, flow afterwards ---------------------------------------
    dep_ev: dict[str, Any] = {"mode": d.mode, "duration_s": d.duration_s, "interval_s": d.interval_s,
                              "journal": journal, "timeline": timeline,
                              "restore_actions": fault.actions if fault else [],
                              "fault_applied_s": round(applied, 3) if applied is not None else None,
                              "restore_started_s": round(restore_start, 3) if restore_start is not None else None,
                              "restored_s": round(restored, 3) if restored is not None else None,
                              "probes": len(results),
                              "flow_before": [{"step": r.name, "status": r.status, "actual": r.actual} for r in before]}
    if restore_error is not None or not (fault and fault.restored):
        run = f" {ctx.run_dir}" if ctx.run_dir else ""
        return out + [c.record(d.dependency, "FAIL", severity="critical", expected=expected_dep, evidence=dep_ev,
                               actual=f"could not restore {d.dependency}: {restore_error}",
                               remediation=f"Run `runbook recover{run}` now: the deployment may still be broken.")]
    dep_ready_s = round(dep_ready_t - restored, 2) if dep_ready_t is not None else None
    recovery_s = round(recovered_t - restored, 2) if recovered_t is not None else None
    dep_ev.update({"dependency_ready_s": dep_ready_s, "recovery_s": recovery_s,
                   "containers_after": [v.summary() for v in ready_views]})
    problems = []
    if dep_ready_s is None:
        problems.append(f"{d.dependency} not ready within {d.healthy_timeout_s:g}s of the restore")
    if recovery_s is None:
        problems.append(f"not every endpoint back within {budget:g}s")
    after: list[probes.StepResult] = []
    if d.flow_after and sp.flow:
        after, _ = run_flow(ctx)
        dep_ev["flow_after"] = [{"step": r.name, "status": r.status, "actual": r.actual} for r in after]
        bad = [r for r in after if r.status != "PASS"]
        if bad:
            problems.append(f"the flow fails after the drill (step {bad[0].name!r}: {bad[0].actual})")
    if problems:
        return out + [c.record(d.dependency, "FAIL", expected=expected_dep, evidence=dep_ev, actual="; ".join(problems))]
    return out + [c.record(d.dependency, "PASS", expected=expected_dep, evidence=dep_ev,
                           actual=f"{d.mode} for {restore_start - applied:.1f}s, restored; ready {dep_ready_s:g}s and every "
                                  f"endpoint back {recovery_s:g}s after the restore"
                                  + ("; the flow passes again" if after else ""))]


@check("smoke.drill", "Dependency drill", phase=PHASE, severity="high", category="Degraded mode per dependency",
       changes_deployment=True, family=True)
def drill_for(d: Drill) -> Callable[[Context], list[CheckRecord]]:
    """The drill as a check function for ``phase.run`` (named ``drill_<dependency>``, running the check
    ``smoke.drill.<dependency>`` of the ``smoke.drill`` family)."""
    def fn(ctx: Context) -> list[CheckRecord]:
        return drill(ctx, d)
    fn.__name__ = f"drill_{d.dependency}"
    fn.check_ids = (f"smoke.drill.{d.dependency}",)  # type: ignore[attr-defined]
    fn.__doc__ = drill.__doc__
    return fn


def timeline_image(ctx: Context, d: Drill):
    """The drill's timeline for the notebook (an inline PNG, which nbconvert carries into the report),
    or a line saying why there is none."""
    from IPython.display import Image, Markdown

    png = (ctx.state.get("timelines") or {}).get(d.dependency)
    if png and Path(png).is_file():
        return Image(filename=str(png))
    return Markdown(f"*No timeline for the {d.dependency} drill: the fault was not applied.*")


# The phase's read-only checks, in run order. The drills are not listed: they break a dependency on
# purpose, so they run only from the phase notebook (one per `smoke.drills` entry, via drill_for) or
# `runbook run`, never from the explorer.
CHECKS = [health, metrics, flow]
