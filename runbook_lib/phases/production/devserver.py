"""prod.dev_server: a development server or debugger running where production should run.

``flask run`` with the Werkzeug debugger, ``manage.py runserver``, ``node --inspect``, nodemon, a webpack or
Vite dev server: each serves, and each is unfit for production (the Werkzeug debugger runs any Python code a
visitor types in). Three signals, any one of which is a finding:

- **a startup banner** in the container's log since its start ("Debug mode: on", Werkzeug's "This is a
  development server", "Debugger is active!", Django's "Starting development server at", "Debugger
  listening on ws://", "[nodemon]", ...);
- **the command line** of a process in the container (``docker top``: ``flask run``, ``manage.py runserver``,
  ``--inspect``, ``nodemon``, ``rails server`` outside production, ``--reload``, ``-agentlib:jdwp`` ...);
- **a probe of each published port of an app service**, GET only: the Werkzeug debugger's own resource
  (``/?__debugger__=yes&cmd=resource&f=debugger.js``), a path that does not exist (Django's, Rails', Laravel's
  and Symfony's debug 404 pages), and a Node inspector's ``/json/version``. Nothing is posted, no code is run.

The evidence names each signal that fired and what it saw. Dependencies are judged by their banners and
command line only: their ports (a database's, a cache's) are never sent HTTP.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any

import requests

from runbook_lib.engine import ContainerView
from runbook_lib.errors import RunbookError
from runbook_lib.phases.production.common import PHASE, app_services, each_container
from runbook_lib.phases.production.runtime import run_start
from runbook_lib.phases.production.signatures import scrub_credentials
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context

BANNER_LINES = 5000  # banners are printed at startup: the first lines since the start are enough
BANNERS: tuple[tuple[str, str], ...] = (
    (r"\* Debug mode: on\b", "Flask debug mode"),
    (r"This is a development server\. Do not use it in a production", "the Werkzeug development server"),
    (r"Debugger is active!|Debugger PIN: ", "the Werkzeug interactive debugger"),
    (r"\* Restarting with (stat|watchdog|inotify|fsevents)", "the Werkzeug reloader"),
    (r"Starting development server at https?://", "Django runserver"),
    (r"Debugger listening on ws://", "the Node.js inspector"),
    (r"\[nodemon\]", "nodemon"),
    (r"\[webpack-dev-server\]|webpack-dev-server", "webpack-dev-server"),
    (r"VITE v[\d.]+\s+ready in|Local:\s+http://.*\bvite\b", "the Vite dev server"),
    (r"Angular Live Development Server is listening", "ng serve"),
    (r"the development build is not optimized", "the create-react-app dev server"),
    (r"Listening for transport dt_socket at address", "a Java debugger (JDWP)"),
    (r"\[GIN-debug\] \[WARNING\] Running in \"debug\" mode", "Gin debug mode"),
    (r"Hosting environment: Development\b", "ASP.NET Core in Development"),
    (r"^\*?\s*Environment: development\s*$", "a Rails/Puma server in development"),
    (r"Laravel development server started|Development Server \(https?://", "the PHP built-in server"),
    (r"Started reloader process|Will watch for changes in these directories", "a reloading ASGI server (--reload)"),
)
_BANNERS = [(re.compile(rx, re.IGNORECASE), what) for rx, what in BANNERS]
COMMANDS: tuple[tuple[str, str], ...] = (
    (r"\bflask\b(\s+\S+)*\s+run\b", "flask run (the Werkzeug development server)"),
    (r"\bmanage\.py\s+runserver\b|\bdjango-admin\s+runserver\b", "Django runserver"),
    (r"--inspect(-brk|-wait)?(=|\s|$)", "the Node.js inspector (--inspect)"),
    (r"\bnodemon\b", "nodemon"),
    (r"webpack-dev-server|\bwebpack\s+serve\b", "webpack-dev-server"),
    (r"\bvite(\.js)?(\s+(dev|serve))?\s*$|\bvite(\.js)?\s+--", "the Vite dev server"),
    (r"\bng\s+serve\b", "ng serve"),
    (r"react-scripts\s+start\b", "the create-react-app dev server"),
    (r"\bnext\s+dev\b|\bnuxt\s+dev\b", "a Next/Nuxt dev server"),
    (r"\b(uvicorn|gunicorn|hypercorn)\b.*\s--reload\b", "a reloading server (--reload)"),
    (r"\bphp\s+artisan\s+serve\b|\bphp\s+(\S+\s+)*-S\s", "the PHP built-in server"),
    (r"\bdotnet\s+watch\b", "dotnet watch"),
    (r"-agentlib:jdwp|-Xrunjdwp|\s-Xdebug\b", "a Java debugger (JDWP)"),
    (r"\bdebugpy\b|\bptvsd\b", "a Python remote debugger"),
)
_COMMANDS = [(re.compile(rx), what) for rx, what in COMMANDS]
_PIN = re.compile(r"(Debugger PIN:\s*)\S+")
_RAILS = re.compile(r"\brails\s+(s|server)\b")
# (path, what a page answering it with this marker is)
PROBES: tuple[tuple[str, str, str], ...] = (
    ("/?__debugger__=yes&cmd=resource&f=debugger.js", r"__debugger__|EVALEX", "the Werkzeug interactive debugger"),
    ("/runbook-probe-no-such-page", r"DEBUG = True|Rails\.root:|Whoops! There was an error|sf-toolbar|Ignition",
     "a framework's debug error page (Django, Rails, Laravel or Symfony)"),
    ("/json/version", r'"Browser"\s*:\s*"node\.js/', "the Node.js inspector"),
)


def banner_hits(lines, limit: int = BANNER_LINES) -> tuple[int, list[dict[str, str]]]:
    """(lines read, the banners found: each ``{banner, line}`` once, the first line that showed it)."""
    n, hits, seen = 0, [], set()
    for line in lines:
        n += 1
        msg = line.split(" ", 1)[1] if line[:4].isdigit() and " " in line else line
        for rx, what in _BANNERS:
            if what not in seen and rx.search(msg):
                seen.add(what)
                hits.append({"banner": what, "line": msg[:200]})
        if n >= limit:
            break
    return n, hits


def command_hits(commands: list[str], environment: dict[str, str]) -> list[dict[str, str]]:
    """The development servers and debuggers the processes' command lines show: ``{process, command}``."""
    out = []
    for cmd in commands:
        for rx, what in _COMMANDS:
            if rx.search(cmd):
                out.append({"process": what, "command": cmd[:200]})
                break
        else:
            rails_env = (environment.get("RAILS_ENV") or environment.get("RACK_ENV") or "development").lower()
            m = re.search(r"(?:-e|--environment)[ =](\w+)", cmd)
            if _RAILS.search(cmd) and (m.group(1) if m else rails_env) not in ("production", "prod"):
                out.append({"process": "rails server in development", "command": cmd[:200]})
    return out


def processes(ctx: Context, v: ContainerView) -> list[str]:
    """The command lines of the container's processes (``docker top``), the engine's view: works for a remote
    engine and for images without a shell or ps."""
    try:
        top = ctx.engine.api.top(v.id)
    except Exception as exc:  # noqa: BLE001 - wrapped, the caller records it
        raise RunbookError(f"reading the processes of {v.name} (docker top): {exc}") from exc
    titles = top.get("Titles") or []
    col = next((i for i, t in enumerate(titles) if t.upper() in ("CMD", "COMMAND", "ARGS")), len(titles) - 1)
    return [row[col] for row in top.get("Processes") or [] if len(row) > col and not _healthcheck_process(v, row[col])]


def _healthcheck_process(v: ContainerView, cmd: str) -> bool:
    """Is ``cmd`` the engine running the container's healthcheck right now (its command, the shell around it,
    or ``runc init``: the engine starting any exec, before the command replaces it)? Such a process comes
    and goes every interval: it is not the service, and a record must not depend on the moment it was read.
    (Any other exec, a debugger someone started with ``docker exec``, counts.)"""
    if cmd.strip() == "runc init":
        return True
    test = v.healthcheck_test
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return False
    text, cmd = " ".join(test[1:]).strip(), cmd.strip()
    if not text:
        return False
    parts = {p.strip() for p in re.split(r"\|\||&&|;|\|", text)}  # a shell healthcheck's commands, one by one
    return cmd == text or cmd in parts or (test[0] == "CMD-SHELL" and cmd.endswith(f"-c {text}"))


def probe_hits(ports: list[dict[str, Any]], timeout: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """GET the probes on each published TCP port: (what answered with a debugger's marker, every probe made)."""
    hits, made = [], []
    for p in ports:
        if p["protocol"] != "tcp" or not p["host_port"]:
            continue
        host = "127.0.0.1" if p["host_ip"] in ("", "0.0.0.0", "::") else p["host_ip"]
        host = f"[{host}]" if ":" in host else host
        for path, marker, what in PROBES:
            url = f"http://{host}:{p['host_port']}{path}"
            try:
                r = requests.get(url, timeout=timeout, allow_redirects=False)
            except requests.RequestException as exc:
                made.append({"url": url, "error": type(exc).__name__})
                break  # not HTTP, or not answering: no further probe of this port
            body = r.text[:200_000]
            found = re.search(marker, body)
            made.append({"url": url, "status": r.status_code, "marker": found.group(0) if found else None})
            if found:
                hits.append({"debugger": what, "url": url, "status": r.status_code, "marker": found.group(0),
                             "published_on": f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}"})
    return hits, made


@check("prod.dev_server", "No development server or debugger", phase=PHASE, severity="high",
       category="Production mode",
       remediation="Serve the app with a production server (gunicorn/uwsgi, `node` without --inspect, `rails s -e "
                   "production` or puma, the built assets behind nginx...), debug mode off, and never publish a "
                   "debugger's port; the evidence names the signal: banner, command line or port probe.")
def dev_server(ctx: Context) -> list[CheckRecord]:
    """prod.dev_server: no development server or debugger, by three signals (any one FAILs): a startup banner
    in the log since the container's start, a process's command line (``docker top``), and (app services'
    published ports only) a GET-only probe for a debugger's marker. PASS when the command lines were read and
    no signal fired; a container that is not running, or whose processes cannot be read or were none (it
    restarted between the inspect and the read), is not judged (SKIP)."""
    apps = set(app_services(ctx))
    timeout = ctx.params.production.http_timeout_s
    c = Check("prod.dev_server", command="docker logs --since <start> <container>; docker top <container>; "
                                         "GET each probe on each published port")

    def judge(v: ContainerView) -> CheckRecord:
        expected = "no development server or debugger (log banner, command line, port probe)"
        ev: dict[str, Any] = {"read": "docker logs since the container's start (first lines), docker top"
                                      + (", GET probes of the published ports" if v.service in apps else ""),
                              "container": v.name, "published_ports": v.published_ports}
        if not v.running:
            return c.record(v.service, "SKIP", expected=expected, severity="info", evidence=ev,
                            actual=f"not running ({v.state}): no process to read (prod.stability judges it)")
        n, banners = banner_hits(ctx.engine.iter_log_lines(v.id, since=run_start(v)))
        for b in banners:  # the debugger's PIN opens its console: never stored
            b["line"] = scrub_credentials(ctx.redactor.scrub_text(_PIN.sub(r"\1[REDACTED]", b["line"])))
        ev.update(log_lines_read=n, banners=banners)
        try:
            cmds = processes(ctx, v)
            ev["processes"] = [cmd[:200] for cmd in cmds[:20]]
            commands = command_hits(cmds, v.environment)
        except RunbookError as exc:
            cmds, commands = None, []
            ev["processes"] = f"unreadable: {exc}"
        ev["commands"] = commands
        probes, made = probe_hits(v.published_ports, timeout) if v.service in apps else ([], [])
        ev.update(probes=probes, probes_made=made)
        signals = ([f"log banner: {b['banner']} ({b['line'][:80]!r})" for b in banners]
                   + [f"command line: {h['process']} ({h['command'][:80]!r})" for h in commands]
                   + [f"port probe: {h['debugger']} answered {h['url']} (published on {h['published_on']})"
                      for h in probes])
        ev["signals"] = signals
        if signals:
            exposed = [f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}" for p in v.published_ports]
            where = f"published on {', '.join(exposed)}" if exposed else "not published (reachable from its networks)"
            return c.record(v.service, "FAIL", expected=expected, evidence=ev,
                            actual=f"{'; '.join(signals)}; {where}")
        if not cmds:  # unreadable, or none listed: its process ended between the inspect and the read
            why = "the processes could not be read" if cmds is None else "docker top listed no process (it restarted?)"
            return c.record(v.service, "SKIP", expected=expected, severity="info", evidence=ev,
                            actual=f"nothing to judge by: {why}; no banner in {n} log lines")
        shown = ", ".join(dict.fromkeys(posixpath.basename(cmd.split()[0]) for cmd in cmds if cmd.split())) or "none"
        return c.record(v.service, "PASS", expected=expected, evidence=ev,
                        actual=f"{len(cmds)} process(es) read ({shown}), none a development server; no development "
                               f"banner in {n} log lines"
                               + (f"; {len(made)} probe(s) found no debugger" if made else ""))

    return each_container(ctx, c, ctx.services, "no development server or debugger", judge)
