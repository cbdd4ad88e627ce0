"""Phase 3, at run time: containers stay up (``prod.stability``), inside their resource limits
(``prod.resources``, with a chart), and their logs hold no runtime error signature (``prod.logs``)."""
from __future__ import annotations

import concurrent.futures
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

from runbook_lib.engine import ContainerView
from runbook_lib.engine.event_calls import engine_time
from runbook_lib.errors import RunbookError
from runbook_lib.phases.production.common import PHASE, by_service, each_container, inspect_cmd, no_container
from runbook_lib.phases.production.signatures import SEVERITY_RANK, scan_signatures
from runbook_lib.results.display import esc
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context
from runbook_lib.params import Production

MAX_LOG_MATCHES = 20


def _uptime_s(started_at: str, engine_now: float) -> float | None:
    """Seconds since ``started_at`` (the engine's time), on the engine's clock ``engine_now``."""
    started = engine_time(started_at)
    return None if started is None else round(engine_now - started.timestamp(), 1)


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
            events = ctx.engine.container_events(ctx.params.project, t0, t0 + p.observe_s,
                                                 label=ctx.deployment.events_label)
        except RunbookError as exc:
            return [c.error(ctx.params.project, exc, expected="the events stream can be watched")]
        offset = ctx.engine.clock_offset_s()
        window = {"from": datetime.fromtimestamp(t0, timezone.utc).isoformat(timespec="seconds"),
                  "seconds": p.observe_s,
                  "engine_clock_offset_s": "unknown" if offset is None else round(offset, 3)}
        ctx.forget_containers()  # judged on a reading taken after the window, not the phase's earlier one
    bad_actions = {"die", "restart", "oom", "kill"}

    def judge(v: ContainerView) -> CheckRecord:
        mine = [e for e in events if e["container"] == v.name]
        bad = [e for e in mine if e["action"] in bad_actions]
        st = v.attrs.get("State", {})
        ev = {"read": "docker inspect State, RestartCount" + ("; docker events over the observation window" if window else ""),
              "container": v.name, "state": v.state, "exit_code": v.exit_code, "oom_killed": v.oom_killed,
              "restarting": bool(st.get("Restarting")), "restart_count": v.restart_count,
              "max_restarts": p.max_restarts, "started_at": v.started_at, "finished_at": v.finished_at,
              "uptime_s": _uptime_s(v.started_at, time.time() + (ctx.engine.clock_offset_s() or 0)) if v.running else None,
              "observation_window": window or "none (production.observe_s is 0)", "events": mine[:50]}
        problems = []
        if v.completed:
            pass  # a one-shot job that exited 0 is done, as designed
        elif v.state != "running":
            problems.append(f"{v.state} (exit code {v.exit_code})")
        if v.oom_killed:
            problems.append("OOM-killed")
        restart_note = ctx.deployment.restart_note()  # a swarm never restarts a task's container: it starts a new task
        if restart_note:
            ev["restarts"] = restart_note
        elif v.restart_count > p.max_restarts:
            problems.append(f"restarted {v.restart_count} times (bound {p.max_restarts})")
        if bad:
            problems.append(f"{len(bad)} {'/'.join(sorted({e['action'] for e in bad}))} event(s) during the "
                            f"{p.observe_s:g}s observation window")
        expected = f"running, at most {p.max_restarts} restarts" + (f", no die/restart in {p.observe_s:g}s" if window else "")
        if problems:
            return c.record(v.service, "FAIL", expected=expected, actual="; ".join(problems), evidence=ev)
        up = ev["uptime_s"]
        actual = ("completed (one-shot, exited 0)" if v.completed else
                  f"running {f'for {up:g}s' if up is not None else f'(start time {v.started_at!r} unreadable)'}"
                  + ctx.deployment.container_detail(v)) + (
            f", nothing happened in the {p.observe_s:g}s window" if window else "")
        return c.record(v.service, "PASS", expected=expected, actual=actual, evidence=ev)

    return each_container(ctx, c, ctx.services, "a stable container", judge)


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


def sample_stats_ahead(ctx: Context) -> None:
    """In a run, start taking the stats samples :func:`resources` judges, in the background, as the phase
    opens: a sample is a wait of two of the engine's collector ticks (about 2 s, however many containers),
    spent while the configuration checks run instead of after them. Interactively nothing: the resources
    cell samples when it runs, so a cell run minutes later never judges an old sample. The samples are of
    the phase's reading of the containers (running ones); any other container is sampled when judged."""
    if not ctx.run_dir or ctx.state.stats_ahead is not None:
        return
    try:
        views_of = by_service(ctx)
    except RunbookError:
        return  # resources reports it
    ids = [v.id for svc in ctx.services for v in views_of.get(svc, []) if v.running]
    future: concurrent.futures.Future = concurrent.futures.Future()

    def take() -> None:
        try:
            future.set_result(ctx.engine.stats_many(ids))
        except BaseException as exc:  # noqa: BLE001 - handed to resources, which samples again
            future.set_exception(exc)

    threading.Thread(target=take, name="stats-ahead", daemon=True).start()
    ctx.state.stats_ahead = (ids, future)


def _samples(ctx: Context, ids: list[str]) -> dict[str, Any]:
    """One stats sample of each container id: taken ahead (:func:`sample_stats_ahead`) when it was, the
    rest now; a RunbookError in place of one that could not be read."""
    got: dict[str, Any] = {}
    if ctx.state.stats_ahead is not None:
        ahead_ids, future = ctx.state.stats_ahead
        wanted = set(ids)
        try:
            got = {i: s for i, s in zip(ahead_ids, future.result()) if i in wanted}
        except Exception:  # noqa: BLE001 - sampled again below
            got = {}
    todo = [i for i in ids if i not in got]
    got.update(zip(todo, ctx.engine.stats_many(todo)))
    return got


@check("prod.resources", "Inside its resource limits", phase=PHASE, severity="high", category="Resource usage",
       remediation="Set `mem_limit`/`cpus` (or deploy.resources.limits); if usage is near the limit, find the "
                   "leak or raise the limit deliberately.")
def resources(ctx: Context) -> list[CheckRecord]:
    """prod.resources: memory and CPU limits are set (when ``require_limits``), and in one stats sample
    memory used stays below ``resource_threshold`` of the memory limit (FAIL above) and CPU below the
    same fraction of the CPU limit (WARN above: one sample of CPU is a moment, not a trend). The
    samples are kept in ``ctx.state.resource_rows`` for :func:`resource_chart`."""
    p = ctx.params.production
    c = Check("prod.resources")
    try:
        views_of = by_service(ctx)
    except RunbookError as exc:
        return [c.error(ctx.params.project, exc, expected="stats of every container")]
    running = [v for svc in ctx.services for v in views_of.get(svc, []) if v.running]
    samples = _samples(ctx, [v.id for v in running])
    rows: list[dict[str, Any]] = []
    out = []
    thr = p.resource_threshold
    for svc in ctx.services:
        views = views_of.get(svc, [])
        if not views:
            out.append(no_container(c, svc, "limits set and usage below the threshold", ctx))
            continue
        for v in views:
            cmd = (f"docker stats --no-stream {v.name}; "
                   + inspect_cmd(v, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}"))
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
    ctx.state.resource_rows, ctx.state.resource_threshold = rows, thr
    return out


CHART_MAX_ROWS = 24  # a chart of more bars is unreadable; the table has every row


def _chart_rows(rows: list[dict[str, Any]], limit: int = CHART_MAX_ROWS) -> list[dict[str, Any]]:
    """The rows the chart draws: all of them up to ``limit``; beyond, the ``limit`` closest to a limit (a
    container without a limit counts as at it), in their original order."""
    if len(rows) <= limit:
        return rows

    def load(r: dict[str, Any]) -> float:
        return max(1.0 if r[k] is None else r[k] for k in ("memory_fraction", "cpu_fraction"))

    keep = set(sorted(range(len(rows)), key=lambda i: (-load(rows[i]), i))[:limit])
    return [r for i, r in enumerate(rows) if i in keep]


def resource_chart(ctx_or_rows: Context | list[dict[str, Any]], threshold: float | None = None) -> str | None:
    """An SVG bar chart of each container's memory and CPU use as a fraction of its limit, with the
    threshold drawn in. Takes the Context after :func:`resources` ran (or the rows themselves). Returns
    None when there is nothing to draw. Written directly as SVG (flat bars and text): cheaper than importing
    a plotting library in every phase kernel, and the report shows it as crisp text."""
    if isinstance(ctx_or_rows, Context):
        rows = ctx_or_rows.state.resource_rows
        threshold = ctx_or_rows.state.resource_threshold if threshold is None else threshold
    else:
        rows = ctx_or_rows
    if not rows:
        return None
    threshold = 0.8 if threshold is None else threshold
    total, rows = len(rows), _chart_rows(rows)
    title = "prod.resources: one stats sample per container" + (
        f" ({len(rows)} of {total}, the closest to their limits; every container is in the table)" if len(rows) < total else "")
    row_h, label_w, panel_w, gap, top, width = 18, 150, 345, 20, 48, 900
    height = top + row_h * len(rows) + 36
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f"<title>{esc(title)}</title>",
           f'<text x="{width / 2:g}" y="16" text-anchor="middle" font-size="13">{esc(title)}</text>']
    for i, r in enumerate(rows):
        out.append(f'<text x="{label_w - 6}" y="{top + i * row_h + 13}" text-anchor="end">{esc(r["service"])}</text>')
    for n, (key, heading, used, limit, unit) in enumerate((
            ("memory_fraction", "Memory used / limit", "memory_used_mib", "memory_limit_mib", "MiB"),
            ("cpu_fraction", "CPU used / limit", "cpu_cores_used", "cpu_limit", "CPUs"))):
        x0 = label_w + n * (panel_w + gap)
        scale = panel_w / 100
        out.append(f'<text x="{x0 + panel_w / 2:g}" y="36" text-anchor="middle" font-weight="bold">{heading}</text>')
        out.append(f'<rect x="{x0}" y="{top - 2}" width="{panel_w}" height="{row_h * len(rows) + 4}" fill="none" '
                   'stroke="#d0d7de"/>')
        for pct in (0, 25, 50, 75, 100):
            x = x0 + pct * scale
            out.append(f'<text x="{x:g}" y="{height - 20}" text-anchor="middle" font-size="9">{pct}</text>')
        out.append(f'<text x="{x0 + panel_w / 2:g}" y="{height - 6}" text-anchor="middle" font-size="10">'
                   f'% of limit (threshold {threshold:.0%})</text>')
        for i, r in enumerate(rows):
            frac = r[key]
            value = min(max((frac or 0) * 100, 0), 100)
            colour = "#cf222e" if (frac or 0) >= threshold else "#1a7f37" if frac is not None else "#8c959f"
            y = top + i * row_h
            out.append(f'<rect x="{x0}" y="{y + 2}" width="{value * scale:.1f}" height="{row_h - 4}" fill="{colour}"/>')
            if frac is None:
                txt = "no limit" if not r[limit] else "n/a"
            elif unit == "MiB":
                txt = f"{r[used]:.0f}/{r[limit]:.0f} {unit}"
            else:
                txt = f"{r[used]:.3f}/{r[limit]:g} {unit}"
            out.append(f'<text x="{x0 + min(value + 1, 60) * scale:.1f}" y="{y + 13}" font-size="10">{esc(txt)}</text>')
        tx = x0 + threshold * 100 * scale
        out.append(f'<line x1="{tx:.1f}" y1="{top - 2}" x2="{tx:.1f}" y2="{top + row_h * len(rows) + 2}" '
                   'stroke="#9a6700" stroke-dasharray="4 3"/>')
    out.append("</svg>")
    return "\n".join(out)


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


def run_start(v: ContainerView) -> float | None:
    """Where this run of the container begins in its log, for ``docker logs --since``: just after the previous
    run ended (``State.FinishedAt``, kept while the container runs again), so every line of this run is read
    and none of the last. Not StartedAt: the engine records it after the process started, and a process's
    first lines (a startup banner) can come before it. None when the container never stopped: every line the
    engine holds is this run's."""
    started, finished = engine_time(v.started_at), engine_time(v.finished_at)
    if started is None or finished is None or finished > started:
        return None
    return finished.timestamp() + 1e-6


LOG_CATEGORY = "Runtime errors in the logs (tracebacks, exceptions, panics, server errors, 5xx)"


@check("prod.logs", "No runtime error signature in the logs", phase=PHASE, severity="high", category=LOG_CATEGORY,
       remediation="Read each signature's sample and the lines around its first and last time (`docker logs "
                   "--since`), fix the cause; a known harmless signature can be waived by check id and target.")
def logs(ctx: Context) -> list[CheckRecord]:
    """prod.logs: the error signatures of real runtimes in each container's log (Python tracebacks, Java/
    Kotlin and .NET exception traces, Go panics, Node uncaught errors and unhandled rejections, Ruby
    exceptions, nginx/Apache ``[error]``..``[emerg]`` lines; :mod:`.signatures`), the 5xx fraction of its
    access-log lines, and lines matching the parameters' ``log_patterns``. Read since this deploy (the
    container's last start; ``log_since: created`` for every line the engine holds), or its last
    ``log_tail`` lines of that window. Grouped by signature with a count, the first and last time and one
    redacted sample. A high or critical group FAILs (at its severity), medium ones only (an nginx
    ``[error]``) WARN; a container that wrote no line in the window is not judged (SKIP)."""
    p = ctx.params.production
    c = Check("prod.logs")
    redact = ctx.redactor.scrub_text

    def judge(v: ContainerView) -> CheckRecord:
        tail = p.log_tail or None
        started = engine_time(v.started_at) if p.log_since == "start" else None
        since = run_start(v) if started else None
        # stdout and stderr each on its own: read as one, a traceback on stderr is cut by stdout's lines
        scan = scan_signatures([ctx.engine.iter_log_lines(v.id, tail=tail, since=since, stdout=True, stderr=False),
                                ctx.engine.iter_log_lines(v.id, tail=tail, since=since, stdout=False, stderr=True)],
                               p.log_patterns, redact, p.log_5xx_max_fraction, streams=True)
        rng = (f"since this deploy (the container's start, {v.started_at[:19]})" if started else
               f"every line since the container was created ({v.created[:19]})")
        if tail:
            rng = f"the last {tail} lines {rng}"
        if started and v.restart_count:  # what crashed it is before the window: prod.stability judges the restarts
            rng += f"; {v.restart_count} restart(s) earlier, their lines not read (log_since: created reads them)"
        flags = f"--timestamps{f' --since {v.finished_at}' if since else ''}{f' --tail {tail}' if tail else ''}"
        ev = {"read": f"docker logs {flags} (stdout, then stderr, each read on its own)", "container": v.name, "window": rng,
              "range": rng, "patterns": p.log_patterns, **scan}
        cmd = f"docker logs {flags} {v.name} 2>&1"
        expected = ("no runtime error signature (traceback, exception trace, panic, uncaught error, server "
                    f"[crit]/[error]), 5xx at most {p.log_5xx_max_fraction:.0%} of access lines, no line matching "
                    + ", ".join(p.log_patterns))
        groups = scan["groups"]
        if not scan["lines_read"]:
            return c.record(v.service, "SKIP", expected=expected, severity="info", evidence=ev, command=cmd,
                            actual=f"no log line {rng}: nothing to judge")
        worst = max(groups, key=lambda g: SEVERITY_RANK.get(g["severity"], 0))["severity"] if groups else "info"
        if SEVERITY_RANK.get(worst, 0) < SEVERITY_RANK["medium"]:  # nothing, or only clients that went away
            acc = scan["access_log"]
            extra = f", {acc['5xx']} of {acc['lines']} access lines 5xx" if acc["lines"] else ""
            noted = (f"; noted: {sum(g['count'] for g in groups)} trace(s) of a client that went away "
                     f"({', '.join(g['signature'].split(' at ')[0] for g in groups[:3])})" if groups else "")
            return c.record(v.service, "PASS", expected=expected, evidence=ev, command=cmd,
                            actual=f"no error signature in {scan['lines_read']} lines ({rng}){extra}{noted}")
        shown = "; ".join(f"{g['what']}: {g['signature']} x{g['count']}" for g in groups[:3])
        more = f"; and {len(groups) - 3} more signature(s)" if len(groups) > 3 else ""
        actual = (f"{scan['event_count']} error event(s) in {len(groups)} signature(s) in {scan['lines_read']} lines "
                  f"({rng}): {shown}{more}")
        status = "FAIL" if SEVERITY_RANK.get(worst, 0) >= SEVERITY_RANK["high"] else "WARN"
        return c.record(v.service, status, expected=expected, actual=actual, evidence=ev, command=cmd, severity=worst)

    # in swarm mode past tasks' containers too (a task that died of a panic left its lines there)
    return each_container(ctx, c, ctx.services, "no runtime error signature in the logs", judge, current=False)
