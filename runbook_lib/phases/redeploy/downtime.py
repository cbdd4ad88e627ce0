"""Phase 1, what users saw while the deployment was redeployed: a bounded probe load and its judgement.

``redeploy.probe_load`` starts, before anything is touched, a background load of ``redeploy.probe.rate``
requests per second to the probed endpoints (``redeploy.probe.endpoints``; by default the gateway's health,
:func:`probe_endpoints`), on :class:`runbook_lib.drills.probes.ProbeLoop`, the loop the drills probe with.
``redeploy.outage``, the phase's last check, stops it and judges what it saw: requests sent and failed by
endpoint and by status or error, the outage window (first failure, last failure, longest continuous failure,
in ms), and the timeline picture the drills draw (:func:`runbook_lib.drills.faults.draw_timeline`).

The load never outlives the phase: ``redeploy.outage`` stops it; an interrupt stops it
(:meth:`runbook_lib.run.phase.PhaseSession.run`); whatever happens it stops by itself ``redeploy.probe.max_s``
after it started; and it runs in a daemon thread, which ends with the kernel.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_lib.drills import faults, probes
from runbook_lib.errors import RunbookError
from runbook_lib.params.sections import ProbeEndpoint
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context

PHASE = "01_controlled_redeployment"
TIMELINE = Path("redeploy") / "downtime-timeline.png"  # in the run directory


def probe_endpoints(ctx: Context) -> list[ProbeEndpoint]:
    """What the load asks: ``redeploy.probe.endpoints``; else the first of ``smoke.endpoints``; else ``GET
    smoke.health_path`` on the first published port of the first app service that publishes one."""
    if ctx.params.redeploy.probe.endpoints:
        return list(ctx.params.redeploy.probe.endpoints)
    from runbook_lib.phases.smoke.endpoints import default_endpoints

    first = (ctx.params.smoke.endpoints or default_endpoints(ctx))[:1]
    return [ProbeEndpoint(name=e.name, url=e.url, method=e.method if e.method in ("GET", "HEAD") else "GET",
                          ok_status=list(e.expect_status), timeout_s=min(e.timeout_s, 30)) for e in first]


@dataclass
class RunningLoad:
    """The probe load while it runs: its loop, what it asks, and its clock (``origin``, monotonic)."""

    loop: probes.ProbeLoop
    endpoints: list[ProbeEndpoint]
    origin: float
    started: float  # Unix seconds
    interval_s: float

    def stop(self) -> None:
        self.loop.stop()


def start_load(endpoints: list[ProbeEndpoint], rate: float, max_s: float) -> RunningLoad:
    """Start asking ``endpoints`` at ``rate`` requests per second in all, for at most ``max_s`` seconds."""
    ok = {e.name: set(e.ok_status) for e in endpoints}
    targets = [probes.ProbeTarget(name=e.name, url=e.url, method=e.method, timeout_s=e.timeout_s) for e in endpoints]
    interval = len(endpoints) / rate
    origin = time.monotonic()
    loop = probes.ProbeLoop(targets, interval_s=interval, origin=origin, max_s=max_s, concurrency=len(targets),
                            judge=lambda name, r: r.error is None and r.status in ok[name])
    return RunningLoad(loop.start(), list(endpoints), origin, time.time(), interval)


def stop_load(ctx: Context) -> None:
    """Stop the phase's probe load, if one runs (idempotent)."""
    load = ctx.state.probe_load
    if load is not None:
        load.stop()


@check("redeploy.probe_load", "Probe load during the redeployment", phase=PHASE, severity="info",
       category="Startup and restart stability")
def start_probe_load(ctx: Context) -> list[CheckRecord]:
    """Before anything is touched: start the bounded probe load that ``redeploy.outage`` judges. A fact
    (INFO: what is asked, how often, until when); SKIP when it is turned off or there is nothing to ask."""
    pl = ctx.params.redeploy.probe
    c = Check("redeploy.probe_load")
    expected = "a bounded probe load runs throughout the redeployment"
    if not pl.enabled:
        return [c.record(ctx.params.project, "SKIP", expected=expected, actual="redeploy.probe.enabled is false",
                         evidence={}, severity="info")]
    try:
        endpoints = probe_endpoints(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected=expected)]
    if not endpoints:
        return [c.record(ctx.params.project, "SKIP", expected=expected, severity="info", evidence={},
                         actual="nothing to probe: no redeploy.probe.endpoints, no smoke.endpoints, and no app "
                                "service publishes a port")]
    stop_load(ctx)  # a cell run again by hand: one load at a time
    ctx.state.probe_load = load = start_load(endpoints, pl.rate, pl.max_s)
    ev = {"rate_per_s": pl.rate, "interval_per_endpoint_s": round(load.interval_s, 3), "max_s": pl.max_s,
          "endpoints": [e.model_dump() for e in endpoints]}
    return [c.record(ctx.params.project, "INFO", expected=expected, evidence=ev,
                     actual=f"{pl.rate:g} requests/s to {', '.join(e.name for e in endpoints)} "
                            f"({', '.join(f'{e.method} {e.url}' for e in endpoints)}); stops by itself after "
                            f"{pl.max_s:g}s at the latest")]


def _failure_key(p: dict[str, Any]) -> str:
    """How a failed request is counted: its status, or the kind of error (``ConnectError``, ``timed out``)."""
    if p.get("status") is not None:
        return str(p["status"])
    err = p.get("error") or "no answer"
    return "timed out" if err.startswith("timed out") else err.split(":", 1)[0]


def _runs(points: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Continuous failures of one endpoint, ``(start, end)`` in seconds: from the first failed request to the
    next request that was served (or the end of the last failed one, when none came after)."""
    out, start, last_end = [], None, 0.0
    for p in sorted(points, key=lambda p: p["t"]):
        if not p["ok"]:
            if start is None:
                start = p["t"]
            last_end = p["t"] + p["latency_ms"] / 1000
        elif start is not None:
            out.append((start, p["t"]))
            start = None
    if start is not None:
        out.append((start, last_end))
    return out


def summarize(points: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What the load saw, per endpoint and in all: requests sent and failed, failures by status or error,
    and the outage window in ms since the load started (first failure, last failure, longest continuous
    failure of any endpoint, and which)."""
    ms = lambda s: round(s * 1000)  # noqa: E731
    per: dict[str, Any] = {}
    windows: list[tuple[str, float, float]] = []
    for name, pts in points.items():
        failed = [p for p in pts if not p["ok"]]
        by: dict[str, int] = {}
        for p in failed:
            by[_failure_key(p)] = by.get(_failure_key(p), 0) + 1
        runs = _runs(pts)
        windows += [(name, a, b) for a, b in runs]
        per[name] = {"sent": len(pts), "failed": len(failed), "failed_by": dict(sorted(by.items())),
                     "longest_failure_ms": max((ms(b - a) for a, b in runs), default=0), "failure_runs": len(runs)}
    longest = max(windows, key=lambda w: w[2] - w[1], default=None)
    return {"sent": sum(e["sent"] for e in per.values()), "failed": sum(e["failed"] for e in per.values()),
            "first_failure_ms": min((ms(a) for _, a, _ in windows), default=None),
            "last_failure_ms": max((ms(b) for _, _, b in windows), default=None),
            "longest_failure_ms": ms(longest[2] - longest[1]) if longest else 0,
            "longest_failure_endpoint": longest[0] if longest else None,
            "longest_failure_window_ms": [ms(longest[1]), ms(longest[2])] if longest else None,
            "by_endpoint": per}


def by_step(points: dict[str, list[dict[str, Any]]], steps: list[dict[str, Any]], origin: float) -> list[dict[str, Any]]:
    """Requests sent and failed while each service was being replaced (``redeploy.rolling``'s windows)."""
    out = []
    for st in steps:
        a, b = st["started"] - origin, st["ended"] - origin
        inside = [p for pts in points.values() for p in pts if a <= p["t"] <= b]
        out.append({"service": st["service"], "method": st["method"], "window_s": [round(a, 3), round(b, 3)],
                    "sent": len(inside), "failed": sum(1 for p in inside if not p["ok"])})
    return out


def _draw(ctx: Context, load: RunningLoad, points: dict[str, list[dict[str, Any]]], summary: dict[str, Any]) -> str | None:
    """The timeline PNG (the drills' drawing, the outage window shaded), for the evidence and the notebook."""
    if not ctx.run_dir or not any(points.values()):
        return None
    png = ctx.run_dir / TIMELINE
    first, last = summary["first_failure_ms"], summary["last_failure_ms"]
    try:
        faults.draw_timeline(png, title=f"{ctx.params.project}: requests during the redeployment "
                                        f"({ctx.params.redeploy.probe.rate:g}/s)",
                             lanes=[(e.name, "/".join(map(str, e.ok_status)), points[e.name]) for e in load.endpoints],
                             fault=(first / 1000, last / 1000) if first is not None else None, window="outage",
                             xlabel="seconds since the probe load started",
                             spans=[(st["service"], st["method"], st["window_s"][0], st["window_s"][1])
                                    for st in summary.get("by_step") or []])
    except (OSError, ValueError) as exc:
        return f"(not drawn: {exc})"
    ctx.state.downtime_timeline = png
    return str(TIMELINE)


def _judge(c: Check, ctx: Context, summary: dict[str, Any], ev: dict[str, Any]) -> CheckRecord:
    rd = ctx.params.redeploy
    longest_s = summary["longest_failure_ms"] / 1000
    figure = (f"{summary['failed']} of {summary['sent']} requests failed"
              + (f"; longest continuous failure {longest_s:.3f}s ({summary['longest_failure_endpoint']}), failures from "
                 f"{summary['first_failure_ms'] / 1000:.3f}s to {summary['last_failure_ms'] / 1000:.3f}s"
                 if summary["failed"] else ""))
    rolled = [st for st in summary.get("by_step", []) if st["method"] == "rolling"]
    if rolled:
        figure += (f"; while the rolling services were replaced ({', '.join(st['service'] for st in rolled)}): "
                   f"{sum(st['failed'] for st in rolled)} of {sum(st['sent'] for st in rolled)} failed")
    if summary["sent"] == 0:
        return c.record(ctx.params.project, "ERROR", expected="requests answered during the redeployment",
                        actual="the probe load sent no request: nothing was observed", evidence=ev)
    if ev.get("unobserved_s"):
        figure += (f"; the load stopped by itself after redeploy.probe.max_s ({rd.probe.max_s:g}s), so the phase's "
                   f"last {ev['unobserved_s']:g}s were not watched")
    if rd.max_outage_s is None:
        return c.record(ctx.params.project, "INFO", expected="measured (redeploy.max_outage_s not set: not judged)",
                        actual=figure, evidence=ev)
    expected = f"no endpoint failing continuously for more than {rd.max_outage_s:g}s"
    if longest_s > rd.max_outage_s:
        return c.record(ctx.params.project, "FAIL" if rd.over_outage == "fail" else "WARN", expected=expected,
                        actual=f"{figure}: over the {rd.max_outage_s:g}s budget", evidence=ev)
    if ev.get("unobserved_s"):  # within budget while watched; an outage after the load stopped was not seen
        return c.record(ctx.params.project, "ERROR", expected=expected, actual=figure, evidence=ev,
                        remediation="Raise redeploy.probe.max_s above the phase's duration and run again.")
    return c.record(ctx.params.project, "PASS", expected=expected, actual=figure, evidence=ev)


@check("redeploy.outage", "User-visible outage during the redeployment", phase=PHASE, severity="high",
       category="Startup and restart stability",
       remediation="Redeploy with redeploy.strategy: rolling (services without a fixed host port, or behind a proxy), "
                   "or accept the outage in redeploy.max_outage_s.")
def outage(ctx: Context) -> list[CheckRecord]:
    """At the phase's end: stop the probe load and judge what it saw. PASS when no probed endpoint failed
    continuously for longer than ``redeploy.max_outage_s``; over it, FAIL (``redeploy.over_outage: warn``:
    WARN); without a budget, INFO with the figures. SKIP when no load ran; ERROR when it sent nothing
    or crashed, and when it stopped by itself (``redeploy.probe.max_s``) before the phase ended with no
    outage over budget seen: the rest of the phase was not watched (``unobserved_s`` in the evidence). The
    evidence holds every request (time, status, latency) and the timeline's path."""
    c = Check("redeploy.outage")
    load: RunningLoad | None = ctx.state.probe_load
    if load is None:
        return [c.record(ctx.params.project, "SKIP", expected="the probe load's requests", severity="info",
                         actual="no probe load ran (see redeploy.probe_load)", evidence={})]
    ended_by_itself = load.loop.deadline is not None and time.monotonic() >= load.loop.deadline
    load.stop()
    ran_s = round(time.monotonic() - load.origin, 3)
    results = load.loop.snapshot()
    points: dict[str, list[dict[str, Any]]] = {e.name: [] for e in load.endpoints}
    for r in results:
        points[r.name].append(r.point())
    summary = summarize(points)
    if ctx.state.redeploy_steps:
        summary["by_step"] = by_step(points, ctx.state.redeploy_steps, load.origin)
    ev = {**summary, "ran_s": ran_s, "rate_per_s": ctx.params.redeploy.probe.rate,
          "max_outage_s": ctx.params.redeploy.max_outage_s, "requests": points}
    if ended_by_itself:  # the phase outlived redeploy.probe.max_s: its end was not watched
        ev["unobserved_s"] = round(ran_s - load.loop.max_s, 3)
    if load.loop.crashed is not None:
        return [c.record(ctx.params.project, "ERROR", expected="the probe load ran throughout the redeployment",
                         actual=f"the probe load crashed: {load.loop.crashed!r}", evidence=ev)]
    ev["timeline"] = _draw(ctx, load, points, summary)
    return [_judge(c, ctx, summary, ev)]


def timeline_image(ctx: Context):
    """The outage timeline for the notebook (an inline PNG, which nbconvert carries into the report), or a
    line saying why there is none."""
    from IPython.display import Image, Markdown

    png = ctx.state.downtime_timeline
    if png and Path(png).is_file():
        return Image(filename=str(png))
    return Markdown("*No downtime timeline: no probe load ran, or the run has no run directory.*")
