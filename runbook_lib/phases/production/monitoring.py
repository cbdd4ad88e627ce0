"""Phase 3, monitoring: the observability stack answers and watches the app services
(``prod.observability``, ``prod.observability.scrape``, ``prod.observability.logs``)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

import httpx

from runbook_lib.phases.production.common import PHASE, app_services, skip_unset
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context


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


def _scrape_record(scrape: Check, svc: str, targets: list[dict], tev: dict[str, Any], cmd: str) -> CheckRecord:
    """prod.observability.scrape for one app service, from the active targets Prometheus listed."""
    mine = [{"labels": t.get("labels"), "scrape_url": t.get("scrapeUrl"), "health": t.get("health"),
             "last_scrape": t.get("lastScrape"), "last_error": t.get("lastError")}
            for t in targets if _target_matches(t, svc)]
    ev = {"read": "Prometheus /api/v1/targets?state=active", **tev, "targets": mine, "targets_total": len(targets)}
    if not mine:
        return scrape.record(svc, "FAIL", expected="an active target that is up",
                             actual="Prometheus has no target for this service", evidence=ev, command=cmd)
    bad = [t for t in mine if t["health"] != "up"]
    if bad:
        return scrape.record(svc, "FAIL", expected="every target up", evidence=ev, command=cmd,
                             actual="; ".join(f"{t['scrape_url']} is {t['health']}: {t['last_error'] or 'no error text'}"
                                              for t in bad))
    return scrape.record(svc, "PASS", expected="every target up", evidence=ev, command=cmd,
                         actual=f"{len(mine)} target(s) up, last scraped {mine[0]['last_scrape']}")


def _prometheus(ctx: Context, c: Check, client: httpx.Client, base: str) -> list[CheckRecord]:
    """Prometheus answers ``/-/ready``; then prod.observability.scrape for every app service."""
    scrape = Check("prod.observability.scrape")
    rec = _health(c, client, "prometheus", base, "/-/ready")
    targets, tev = prometheus_targets(ctx, client, base) if rec.passed else (None, {})
    cmd = f"curl -sS '{base.rstrip('/')}/api/v1/targets?state=active'"
    out = [rec]
    for svc in app_services(ctx):
        if targets is None:
            out.append(scrape.record(svc, "FAIL" if rec.passed else "ERROR", expected="its targets are up",
                                     actual="the targets API did not answer" if rec.passed else "Prometheus does not answer",
                                     evidence={"read": "Prometheus /api/v1/targets", **tev}, command=cmd))
        else:
            out.append(_scrape_record(scrape, svc, targets, tev, cmd))
    return out


def _grafana_ok(r: httpx.Response) -> str | None:
    try:
        db = r.json().get("database")
    except ValueError:
        return "not a JSON health answer"
    return None if db == "ok" else f"database is {db!r}"


def _loki_record(fresh: Check, client: httpx.Client, url: str, svc: str, selector: str, minutes: float,
                 window: tuple[int, int]) -> CheckRecord:
    """prod.observability.logs for one app service: Loki holds a line of it from the last ``minutes``."""
    start, end = window
    expected = f"at least one line in the last {minutes:g} min"
    cmd = (f"curl -sS -G '{url}' --data-urlencode 'query={selector}' --data start={start} "
           f"--data end={end} --data limit=1 --data direction=backward")
    r, ev = _get(client, url, query=selector, start=str(start), end=str(end), limit="1", direction="backward")
    ev = {"read": "Loki /loki/api/v1/query_range", "selector": selector, **ev}
    if r is None or r.status_code != 200:
        return fresh.record(svc, "FAIL", expected=expected, evidence=ev, command=cmd,
                            actual=f"query failed: {ev.get('error') or ev.get('status')}")
    try:
        streams = r.json()["data"]["result"]
    except (ValueError, KeyError, TypeError) as exc:
        return fresh.record(svc, "FAIL", expected=expected, actual=f"not a query answer: {exc}", evidence=ev, command=cmd)
    newest = max((int(v[0]) for s in streams for v in s.get("values") or []), default=None)
    ev.pop("body_excerpt", None)
    ev["streams"] = len(streams)
    if newest is None:
        return fresh.record(svc, "FAIL", expected=expected, actual=f"no line in the last {minutes:g} min",
                            evidence=ev, command=cmd)
    ev["newest_line_at"] = datetime.fromtimestamp(newest / 1e9, timezone.utc).isoformat()
    return fresh.record(svc, "PASS", expected=expected, actual=f"newest line {round((end - newest) / 1e9)}s ago",
                        evidence=ev, command=cmd)


def _loki(ctx: Context, c: Check, client: httpx.Client, base: str) -> list[CheckRecord]:
    """Loki answers ``/ready``; then prod.observability.logs for every app service."""
    p = ctx.params.production
    fresh = Check("prod.observability.logs")
    rec = _health(c, client, "loki", base, "/ready")
    end = time.time_ns()
    window = (end - int(p.loki_freshness_min * 60e9), end)
    url = base.rstrip("/") + "/loki/api/v1/query_range"
    out = [rec]
    for svc in app_services(ctx):
        selector = p.loki_selector.replace("{service}", svc)
        if rec.passed:
            out.append(_loki_record(fresh, client, url, svc, selector, p.loki_freshness_min, window))
        else:
            out.append(fresh.record(svc, "ERROR", expected=f"at least one line in the last {p.loki_freshness_min:g} min",
                                    actual="Loki does not answer", evidence={"read": "Loki query_range", "selector": selector},
                                    command=f"curl -sS -G '{url}' --data-urlencode 'query={selector}'"))
    return out


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
    components: list[tuple[str, str, str, Callable[..., list[CheckRecord]]]] = [
        ("prometheus", "Prometheus", p.prometheus_url, lambda client, url: _prometheus(ctx, c, client, url)),
        ("alertmanager", "Alertmanager", p.alertmanager_url,
         lambda client, url: [_health(c, client, "alertmanager", url, "/-/healthy")]),
        ("grafana", "Grafana", p.grafana_url,
         lambda client, url: [_health(c, client, "grafana", url, "/api/health", _grafana_ok)]),
        ("loki", "Loki", p.loki_url, lambda client, url: _loki(ctx, c, client, url)),
    ]
    out: list[CheckRecord] = []
    with httpx.Client(timeout=p.http_timeout_s, follow_redirects=False) as client:
        for target, title, url, judge in components:
            out += (judge(client, url) if url else
                    [skip_unset(c, target, f"production.{target}_url", f"{title} answers")])
    return out
