"""After every drill, every endpoint is asked again (``smoke.after_drill.<dependency>``).

A drill restores its dependency and waits for its own endpoints to come back; a service that never
reconnects (a connection pool that does not retry, a cached failure) leaves production broken after the
run. So once a drill is over, whatever it saw, every endpoint of the phase (``smoke.endpoints``, or each
app service's health path) and every endpoint the drill probed is asked once more. One that does not
answer as expected is a critical FAIL whose one line says so: "X still failing after the drill:
production is degraded now". The line goes to the console at once (``ctx.progress``), and the verdict
file lists it (``degraded``), from which the report's first screen and the console's verdict print it.
Nothing is changed here: the requests are the ones the phase and the drill already send.
"""
from __future__ import annotations

from runbook_lib.drills import probes
from runbook_lib.errors import RunbookError
from runbook_lib.phases.smoke.endpoints import default_endpoints
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.run.context import Context
from runbook_lib.params.sections import Drill

DEGRADED = "still failing after the drill: production is degraded now"


def degraded_line(name: str) -> str:
    """The one line that says an endpoint is still failing after a drill."""
    return f"{name} {DEGRADED}"


def _targets(ctx: Context, d: Drill, drill_targets: list[probes.ProbeTarget]) -> list[tuple[probes.ProbeTarget, list[int]]]:
    """Every endpoint to ask again, with the statuses that count as answering: the phase's endpoints
    first, then the drill's own probes (each request once)."""
    try:
        endpoints = ctx.params.smoke.endpoints or default_endpoints(ctx)
    except RunbookError:
        endpoints = []
    out = [(probes.ProbeTarget(e.name, e.url, e.method, timeout_s=e.timeout_s), list(e.expect_status)) for e in endpoints]
    seen = {(t.method, t.url) for t, _ in out}
    ok_status = {ep.name: list(ep.ok_status) for ep in d.endpoints}
    for t in drill_targets:
        if (t.method, t.url) not in seen:
            seen.add((t.method, t.url))
            out.append((t, ok_status.get(t.name, [200])))
    return out


def after_drill(ctx: Context, d: Drill, drill_targets: list[probes.ProbeTarget]) -> list[CheckRecord]:
    """``smoke.after_drill.<dependency>``: once the drill is over, every endpoint answers as expected
    again (PASS per endpoint), or it is a critical FAIL saying production is degraded now (also printed
    on the console when seen). Connection errors and timeouts are retried ``smoke.retries`` times."""
    c = Check(f"smoke.after_drill.{d.dependency}")
    sp = ctx.params.smoke
    pairs = _targets(ctx, d, drill_targets)
    if not pairs:
        return []
    results = probes.probe_all([t for t, _ in pairs], retries=sp.retries, concurrency=sp.concurrency)
    out = []
    for (t, ok), r in zip(pairs, results):
        want = "/".join(map(str, ok))
        expected = f"answers {want} after the {d.dependency} drill"
        ev = {**r.evidence(sp.excerpt_chars), "request": f"{t.method} {t.url}", "expected_status": ok,
              "drill": d.dependency}
        cmd = f"curl -sS -X {t.method} --max-time {t.timeout_s:g} -w '%{{http_code}}\\n' '{t.url}'"
        if r.error is None and r.status in ok:
            out.append(c.record(t.name, "PASS", expected=expected, evidence=ev, command=cmd,
                                actual=f"{r.status} in {r.latency_s * 1000:.0f} ms after the drill"))
            continue
        line = degraded_line(t.name)
        seen = f"no answer after {r.attempts} attempt(s): {r.error}" if r.error else f"answered {r.status}"
        ev["degraded"] = line
        ctx.progress(line)
        out.append(c.record(t.name, "FAIL", expected=expected, evidence=ev, command=cmd,
                            actual=f"{line} ({seen}; {d.dependency} drill over)",
                            remediation=f"Restart the service behind {t.name} now, then make it reconnect to "
                                        f"{d.dependency} on its own (retry with backoff)."))
    return out
