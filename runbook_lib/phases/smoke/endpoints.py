"""Phase 4, what answers: health and metrics endpoints, and the end-to-end flow a user would run
(``smoke.health``, ``smoke.metrics``, ``smoke.flow``)."""
from __future__ import annotations

from typing import Any, Callable

from runbook_lib.drills import probes
from runbook_lib.errors import RunbookError
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context
from runbook_lib.params.sections import Endpoint
from runbook_lib.model.urls import host_base_url

PHASE = "04_smoke_tests"


# -- helpers --------------------------------------------------------------------------------------------
def default_endpoints(ctx: Context) -> list[Endpoint]:
    """``GET <health_path>`` on the first published TCP port of each app service (every service that
    publishes one when ``app_services`` is empty), on the host address it is published on: for every
    interface, the engine's host (:func:`engine_host`), in swarm mode the node's address."""
    services = ctx.model.get("services", {})
    names = ctx.params.app_services or sorted(services)
    node = ctx.deployment.endpoint_host()  # a swarm's host-mode ports answer on the node's address
    out = []
    for name in names:
        for port in services.get(name, {}).get("ports") or []:
            base = host_base_url(port, node)
            if base:
                out.append(Endpoint(name=name, url=base + ctx.params.smoke.health_path))
                break
    return out


def secret_reader(ctx: Context) -> Callable[[str], str]:
    """Resolve ``{{ secret:NAME }}`` from the compose model's file secret NAME (read at run time, taught
    to the redactor, never stored). Swarm mode, for a secret with no file here (``external: true``): from a
    running task container of the stack that mounts it (:meth:`Deployment.secret_from_containers`)."""
    files = ctx.secret_files()

    def read(name: str) -> str:
        if (name not in files and ctx.deployment.serves_secrets_from_containers
                and name in (ctx.model.get("secrets") or {})):
            try:
                value = ctx.deployment.secret_from_containers(name, ctx.model, ctx.params.security.secrets_dir,
                                                              ctx.service_containers)
            except RunbookError as exc:
                raise probes.TemplateError(f"{{{{ secret:{name} }}}}: cannot read it from a task container: {exc}") from exc
            if value is None:
                raise probes.TemplateError(f"{{{{ secret:{name} }}}}: an external swarm secret (no file on this host), and "
                                           "no running task container on this engine mounts it")
            value = value.strip()
            ctx.redactor.learn([value])
            return value
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
    targets = [probes.ProbeTarget(e.name, e.url, e.method, timeout_s=e.timeout_s) for e in endpoints]
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
    targets = [probes.ProbeTarget(m.name, m.url, timeout_s=m.timeout_s) for m in sp.metrics]
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
        elif not parsed.families:  # an empty 200 (a catch-all route, an empty registry) exposes nothing
            out.append(c.record(m.name, "FAIL", expected=expected, evidence=ev, command=cmd,
                                actual=f"answered 200 with no metric ({len(r.body)} bytes, no sample)"))
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


def run_smoke_flow(ctx: Context, steps: list | None = None) -> tuple[list[probes.StepResult], dict[str, Any]]:
    """Run ``smoke.flow`` (or its first ``steps``) once; captured values are taught to the redactor before
    anything is stored."""
    sp = ctx.params.smoke
    results, variables = probes.run_flow(sp.flow if steps is None else steps, secret=secret_reader(ctx),
                                         excerpt_chars=sp.excerpt_chars)
    _learn_captured(ctx, variables)
    return results, variables


@check("smoke.flow", "End-to-end flow step", phase=PHASE, severity="critical", category="End-to-end flow",
       remediation="Replay the step with the command shown and read the service's logs.")
def flow(ctx: Context) -> list[CheckRecord]:
    """The end-to-end flow in ``smoke.flow``: each step answers its expected status, its captures are
    found and its assertions hold; a step that does not pass skips the rest. One record per step, with
    the request as written (templates, not secrets), status, latency and a redacted excerpt. In a
    read-only run, only the steps before the first unsafe one run; the others are SKIP
    (:mod:`runbook_lib.phases.smoke.readonly`)."""
    from runbook_lib.phases.smoke import readonly

    sp = ctx.params.smoke
    c = Check("smoke.flow")
    if not sp.flow:
        return [c.record("flow", "SKIP", expected="a flow to run", severity="info",
                         actual="no smoke.flow in the parameters", evidence={"smoke.flow": []})]
    n = readonly.safe_prefix(sp.flow) if ctx.params.read_only else len(sp.flow)
    results, variables = run_smoke_flow(ctx, sp.flow[:n])
    ctx.state.flow_variables = variables
    return _flow_records(c, results, sp.flow[:n]) + readonly.skipped_steps(c, sp.flow[n:])
