"""The explorer: poke at a deployment from JupyterLab without leaking a secret to the screen.

Used from a notebook cell (``notebooks/explore.ipynb``)::

    from runbook_lib.run.explorer import explore
    explore("../parameters/demo.yaml")

It returns an ipywidgets box: pick a service and see its containers (state, health, restart count,
uptime), its environment (redacted), the secrets mounted in it (name, path, mode, size, owner: read
through the engine's archive API, never shown), its last log lines (redacted), buttons that re-run one
phase's checks and keep this service's records, and a probe button for its HTTP endpoints.

What it never offers: the destructive phase-1 steps (``docker compose down``/``up``) and the phase-4
dependency drills (which stop, pause or disconnect a dependency). Those run only from the phase
notebooks or ``runbook run``. Everything shown (environment values, log lines, probe bodies, check
records) passes through the run's :class:`~runbook_lib.results.redact.Redactor` first, which has learned every
secret file of the compose project and every file under each container's secrets mount.

Widgets do not survive nbconvert, so nothing here is part of the archived report: the phase notebooks
show static tables (:mod:`runbook_lib.results.display`) and that is what the report carries.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from runbook_lib.run.context import Context
from runbook_lib.results.display import badge, esc, records_table, simple_table
from runbook_lib.engine import ContainerView
from runbook_lib.errors import RunbookError
from runbook_lib.params import Params, load_params, resolve_params_file
from runbook_lib.run.manifest import Manifest
from runbook_lib.run.phase import PhaseSession
from runbook_lib.results.records import CheckRecord
from runbook_lib.model.facts import secret_targets
from runbook_lib.results.redact import Redactor, marker

#: Phases the explorer never offers, and why (shown in its UI). A phase module may also declare
#: ``DESTRUCTIVE = True`` to be left out.
NOT_OFFERED: dict[str, str] = {
    "01_controlled_redeployment": "phase 1 takes the whole project down and up again",
}
#: Why the phase-4 dependency drills are left out (see :func:`is_destructive`).
DRILLS_NOT_OFFERED = "the phase-4 dependency drills stop, pause or disconnect a dependency"
DEFAULT_LOG_LINES = 50
PROBE_TIMEOUT_S = 3.0

CheckFn = Callable[[Context], list[CheckRecord]]


# -- pure helpers (unit-tested without Docker) ----------------------------------------------------------
@dataclass
class PhaseChecks:
    """One phase module's checks as the explorer offers them."""

    phase: str
    module: str
    checks: list[CheckFn] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # check names not offered (drills)
    problem: str = ""  # why the module could not be loaded, if it could not


def is_destructive(fn: Any) -> bool:
    """A check function the explorer must not offer. A declared check (:mod:`runbook_lib.results.registry`) is
    destructive when any check it runs is declared ``changes_deployment`` (or is not declared at all).
    An undeclared function: one that says ``destructive = True``, or a dependency drill: "drill" in its
    name and defined in a module that can inject faults (one that imports :mod:`runbook_lib.drills.faults`, as
    phase 4 does). A drill-named function whose module cannot be found counts as destructive."""
    if getattr(fn, "destructive", False):
        return True
    ids = getattr(fn, "check_ids", ())
    if ids:
        from runbook_lib.results import registry

        return any((spec := registry.get(i)) is None or spec.changes_deployment for i in ids)
    if "drill" not in getattr(fn, "__name__", "").lower():
        return False
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    return module is None or hasattr(module, "faults")


def discover_phases(package: str = "runbook_lib.phases", mode: str = "compose") -> list[PhaseChecks]:
    """Every phase module of ``package`` that has a ``PHASE`` and a ``MANIFEST``, in phase order, offering
    the manifest's checks for ``mode`` (:meth:`~runbook_lib.run.manifest.Manifest.checks`; a module with a
    plain ``CHECKS`` list instead offers that list in every mode), with the destructive parts removed:
    phases in :data:`NOT_OFFERED` (or whose module says ``DESTRUCTIVE = True``) are left out entirely;
    drills are left out of the others. A module that fails to import, has a ``PHASE`` but no checks, or
    none that runs against the deployment alone, is listed with ``problem`` set, so the UI can say so
    instead of hiding it."""
    pkg = importlib.import_module(package)
    out: list[PhaseChecks] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        name = f"{package}.{info.name}"
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a module under construction must not break the explorer
            out.append(PhaseChecks(phase=info.name, module=name, problem=f"{type(exc).__name__}: {exc}"))
            continue
        phase, manifest = getattr(mod, "PHASE", None), getattr(mod, "MANIFEST", None)
        if not phase or phase in NOT_OFFERED or getattr(mod, "DESTRUCTIVE", False):
            continue
        checks = manifest.checks(mode) if isinstance(manifest, Manifest) else getattr(mod, "CHECKS", None)
        if checks is None:
            out.append(PhaseChecks(phase=phase, module=name, problem="the module has no MANIFEST and no CHECKS list"))
            continue
        if not checks:
            out.append(PhaseChecks(phase=phase, module=name, problem=f"no check of this phase runs against the "
                                   f"deployment alone in {mode} mode"))
            continue
        offered = [fn for fn in checks if not is_destructive(fn)]
        left_out = [getattr(fn, "__name__", repr(fn)) for fn in checks if is_destructive(fn)]
        out.append(PhaseChecks(phase=phase, module=name, checks=offered, left_out=left_out))
    return sorted(out, key=lambda p: p.phase)


def parse_engine_time(text: str) -> datetime | None:
    """An engine timestamp (RFC 3339 with nanoseconds, e.g. ``2025-01-02T03:04:05.123456789Z``);
    None for empty or the engine's zero time."""
    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.partition(".")
    frac, tz = rest, ""
    for sep in ("Z", "+", "-"):
        if sep in rest:
            i = rest.index(sep)
            frac, tz = rest[:i], rest[i:]
            break
    stamp = head + (f".{frac[:6]}" if frac else "") + ("+00:00" if tz in ("", "Z") else tz)
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """``3d 4h``, ``2h 5m``, ``7m 3s``, ``12s``."""
    s = int(max(seconds, 0))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


def uptime(view: ContainerView, now: datetime | None = None) -> str:
    """How long a running container has been up; for one that is not running, how long ago it stopped."""
    now = now or datetime.now(timezone.utc)
    if view.running:
        started = parse_engine_time(view.started_at)
        return human_duration((now - started).total_seconds()) if started else "?"
    finished = parse_engine_time(view.finished_at)
    return f"not running (stopped {human_duration((now - finished).total_seconds())} ago)" if finished else "not running"


def redacted_env(env: dict[str, str], redactor: Redactor, looks_like_credential: Callable[[str], bool],
                 secrets_dir: str = "/run/secrets") -> list[tuple[str, str]]:
    """The environment as it may be shown: every value scrubbed by the redactor, and the value of any
    variable whose NAME looks like a credential masked too (even when the redactor never learned it),
    unless it only points at a file (``*_FILE``, or a path under the secrets mount)."""
    out = []
    for name in sorted(env):
        value = redactor.scrub_text(env[name])
        pointer = name.endswith("_FILE") or value.startswith(secrets_dir.rstrip("/") + "/")
        if value and looks_like_credential(name) and not pointer and "[REDACTED" not in value:
            value = marker(value)
        out.append((name, value))
    return out


def records_for_service(records: Iterable[CheckRecord], service: str, container_names: Iterable[str],
                        services: Iterable[str]) -> tuple[list[CheckRecord], int]:
    """The records about ``service``: target is the service, or one of its containers (a scaled
    service's records name the container). ERROR records whose target is no service at all (the
    engine, the project, a check that crashed) are kept too: they say why this service's records may be
    missing. Returns (kept, how many records about other targets were left out)."""
    names = {service, *container_names}
    known = set(services)
    kept, other = [], 0
    for r in records:
        if r.target in names or (r.status == "ERROR" and r.target not in known):
            kept.append(r)
        else:
            other += 1
    return kept, other


def service_endpoints(params: Params, model: dict[str, Any], service: str) -> list[dict[str, Any]]:
    """The HTTP endpoints of one service the probe button asks: the parameters' ``smoke.endpoints`` and
    ``smoke.metrics`` entries named after it; when there is no endpoint entry, ``GET <health_path>`` on
    each TCP port the compose model publishes for it (on the host address it is published on)."""
    out = [{"name": e.name, "method": e.method, "url": e.url, "expect": list(e.expect_status), "timeout_s": e.timeout_s}
           for e in params.smoke.endpoints if e.name == service]
    if not out:
        for port in (model.get("services", {}).get(service, {}).get("ports") or []):
            if port.get("protocol", "tcp") != "tcp" or not port.get("published"):
                continue
            host = port.get("host_ip") or "127.0.0.1"
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
            published = str(port["published"]).split("-")[0]
            out.append({"name": f"{service} health", "method": "GET", "expect": [200], "timeout_s": PROBE_TIMEOUT_S,
                        "url": f"http://{host}:{published}{params.smoke.health_path}"})
    out += [{"name": f"{m.name} metrics", "method": "GET", "url": m.url, "expect": [200], "timeout_s": m.timeout_s}
            for m in params.smoke.metrics if m.name == service]
    return out


def _section(title: str, body: str) -> str:
    return f"<h4 style='margin:10px 0 4px'>{esc(title)}</h4>{body}"


def _note(text: str, colour: str = "#57606a") -> str:
    return f"<div style='color:{colour}'>{esc(text)}</div>"


def _health_html(view: ContainerView) -> str:
    health = view.health or "no healthcheck"
    colour = {"healthy": "#1a7f37", "unhealthy": "#cf222e", "starting": "#9a6700"}.get(health, "#57606a")
    return f"<span style='color:{colour};font-weight:600'>{esc(health)}</span>"


# -- the widget ----------------------------------------------------------------------------------------
class Explorer:
    """The explorer's state and widgets; :attr:`widget` is what a notebook cell displays.

    Reads go through :class:`~runbook_lib.engine.client.Engine`; engine and compose problems are shown as a
    line in the widget (a callback's exception would otherwise vanish into JupyterLab's log console).
    """

    def __init__(self, params_file: str | Path, *, log_lines: int = DEFAULT_LOG_LINES,
                 probe_timeout_s: float = PROBE_TIMEOUT_S) -> None:
        import ipywidgets as w

        self.params = load_params(resolve_params_file(params_file))  # "": $RUNBOOK_PARAMS, else parameters/demo.yaml upward
        self.redactor = Redactor()
        self.probe_timeout_s = probe_timeout_s
        self.ctx = self._new_context()
        self.phases = discover_phases(mode=self.params.mode)
        try:
            services = self.ctx.services
        except RunbookError as exc:
            services = []
            self._startup_problem = str(exc)
        else:
            self._startup_problem = ""

        left_out = [f"{p}: {why}" for p, why in NOT_OFFERED.items()] + [DRILLS_NOT_OFFERED]
        self.header = w.HTML(
            f"<h3 style='margin:4px 0'>Explorer · project <code>{esc(self.params.project)}</code></h3>"
            "<div style='color:#57606a'>Read-only. Everything shown is redacted: no secret value reaches this "
            "page. Not offered here (run them from their phase notebooks or <code>runbook run</code>): "
            + "; ".join(esc(x) for x in left_out) + ".</div>")
        self.picker = w.Dropdown(options=[("— choose a service —", "")] + [(s, s) for s in services], value="",
                                 description="Service", layout=w.Layout(width="340px"))
        self.log_lines = w.BoundedIntText(value=log_lines, min=1, max=5000, description="Log lines",
                                          layout=w.Layout(width="180px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", tooltip="Read the service again")
        self.status = w.HTML(_note(self._startup_problem, "#cf222e") if self._startup_problem else "")
        self.overview = w.HTML()
        self.containers = w.HTML()
        self.environment = w.HTML()
        self.secrets = w.HTML()
        self.logs = w.HTML()
        self.phase_buttons = []
        for p in self.phases:
            b = w.Button(description=f"Re-run {p.phase}", disabled=True,
                         tooltip=(p.problem or f"{len(p.checks)} checks of {p.module}; keeps the selected service's records"),
                         layout=w.Layout(width="auto"))
            b.on_click(lambda _b, p=p: self._guard(self.run_phase, p))
            self.phase_buttons.append(b)
        self.checks_out = w.HTML()
        self.probe_button = w.Button(description="Probe endpoints", icon="plug", layout=w.Layout(width="auto"), disabled=True,
                                     tooltip=f"GET each HTTP endpoint of the service ({probe_timeout_s:g}s timeout)")
        self.probe_out = w.HTML()

        self.picker.observe(lambda change: self._guard(self.show), names="value")
        self.refresh_button.on_click(lambda _b: self._guard(self.refresh))
        self.probe_button.on_click(lambda _b: self._guard(self.probe))
        unavailable = [f"{p.phase} ({p.problem})" for p in self.phases if p.problem]
        checks_note = _note("Each button runs that phase's non-destructive checks against the project and keeps the "
                            "records of the selected service." + (f" Not available: {'; '.join(unavailable)}." if unavailable else ""))
        self.widget = w.VBox([
            self.header,
            w.HBox([self.picker, self.log_lines, self.refresh_button]),
            self.status, self.overview, self.containers, self.environment, self.secrets, self.logs,
            w.HTML(_section("Re-run checks for this service", checks_note)),
            w.HBox(self.phase_buttons, layout=w.Layout(flex_flow="row wrap")),
            self.checks_out,
            w.HTML(_section("Probe", "")), self.probe_button, self.probe_out,
        ], layout=w.Layout(width="100%"))
        self.widget.add_class("rb-explorer")
        self._guard(self.show_overview)

    # -- plumbing ------------------------------------------------------------------------------------
    def _new_context(self) -> Context:
        """A fresh context (the compose model read again, no cached facts) sharing the redactor, so
        every secret value learned so far stays redacted; it learns the secrets again, as a phase does."""
        old = getattr(self, "ctx", None)
        ctx = Context(params=self.params, progress=self._progress, redactor=self.redactor,
                      _engine=old._engine if old else None)
        if old is not None:
            ctx.secret_values = old.secret_values
        try:
            ctx.learn_secrets()
        except RunbookError:
            pass  # compose files that do not resolve: shown when the services are listed
        return ctx

    def _progress(self, line: str) -> None:
        if hasattr(self, "status"):
            self.status.value = _note(self.redactor.scrub_text(line))

    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a callback; show a problem as a (redacted) line instead of losing it."""
        try:
            fn(*args)
        except RunbookError as exc:
            self.status.value = _note(self.redactor.scrub_text(f"{type(exc).__name__}: {exc}"), "#cf222e")
        except Exception as exc:  # noqa: BLE001 - a widget callback must never die silently
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.status.value = _note(self.redactor.scrub_text(f"unexpected {tb}"), "#cf222e")

    @property
    def service(self) -> str:
        return self.picker.value or ""

    def _views(self, service: str) -> list[ContainerView]:
        return self.ctx.engine.service_containers(self.params.project, service)

    # -- what the widget shows -----------------------------------------------------------------------
    def show_overview(self) -> None:
        """One line per service of the compose model: its containers' state, health and restarts."""
        views = self.ctx.engine.project_containers(self.params.project)
        by_service: dict[str, list[ContainerView]] = {}
        for v in views:
            by_service.setdefault(v.service, []).append(v)
        rows = []
        for svc in self.ctx.services:
            vs = by_service.get(svc, [])
            state = ", ".join(sorted({v.state for v in vs})) or "no container"
            health = " ".join(_health_html(v) for v in vs) or "—"
            rows.append([esc(svc), esc(state), health, esc(sum(v.restart_count for v in vs))])
        self.overview.value = _section("All services", simple_table(["service", "state", "health", "restarts"],
                                                                    rows, raw_columns=(0, 1, 2, 3)))

    def show(self) -> None:
        """Show the selected service: containers, environment, secrets mounted, last log lines."""
        for out in (self.containers, self.environment, self.secrets, self.logs, self.checks_out, self.probe_out):
            out.value = ""
        svc = self.service
        for b in self.phase_buttons + [self.probe_button]:
            b.disabled = not svc
        if not svc:
            return
        for b, p in zip(self.phase_buttons, self.phases):
            b.disabled = bool(p.problem) or not p.checks
        self.status.value = _note(f"reading {svc}…")
        views = self._views(svc)
        if not views:
            self.containers.value = _section(f"{svc}: containers", _note("no container of this service exists", "#cf222e"))
            self.status.value = _note(f"{svc}: no container")
            return
        self.containers.value = _section(f"{svc}: containers", self._containers_html(views))
        self.environment.value = _section("Environment (redacted)", self._environment_html(views))
        self.secrets.value = _section("Secrets mounted (names, modes, sizes: never contents)", self._secrets_html(svc, views))
        self.logs.value = _section(f"Last {self.log_lines.value} log lines (redacted)", self._logs_html(views))
        self.status.value = _note(f"{svc}: read at {datetime.now(timezone.utc):%H:%M:%S} UTC")

    def refresh(self) -> None:
        """Read everything again (a new context: the compose model, the secrets, the containers)."""
        self.ctx = self._new_context()
        self.show_overview()
        self.show()

    def _containers_html(self, views: list[ContainerView]) -> str:
        rows = [[esc(v.name), f"<code>{esc(v.short_id)}</code>", esc(v.state), _health_html(v), esc(v.restart_count),
                 esc(uptime(v)), esc(self.redactor.scrub_text(v.image))] for v in views]
        table = simple_table(["container", "id", "state", "health", "restarts", "uptime", "image"], rows,
                             raw_columns=tuple(range(7)))
        unhealthy = [v for v in views if v.health == "unhealthy"]
        for v in unhealthy:
            last = (v.health_log or [{}])[-1]
            table += (f"<div><b>{esc(v.name)}</b> last health check: exit {esc(last.get('exit_code'))}, "
                      f"<code>{esc(self.redactor.scrub_text(last.get('output') or ''))}</code></div>")
        return table

    def _environment_html(self, views: list[ContainerView]) -> str:
        sec = self.params.security
        parts = []
        for v in views:
            rows = [[name, value] for name, value in
                    redacted_env(v.environment, self.redactor, sec.looks_like_credential, sec.secrets_dir)]
            title = f"<div><small>{esc(v.name)}</small></div>" if len(views) > 1 else ""
            parts.append(title + simple_table(["variable", "value"], rows))
        return "".join(parts)

    def _secrets_html(self, svc: str, views: list[ContainerView]) -> str:
        secrets_dir = self.params.security.secrets_dir.rstrip("/") or "/"
        declared = secret_targets(self.ctx.model.get("services", {}).get(svc, {}), secrets_dir)
        parts = []
        for v in views:
            entries = {}
            for path in sorted({secrets_dir, *[p for p in declared if not p.startswith(secrets_dir + "/")]}):
                for e in self.ctx.engine.read_path(v.id, path, pid=v.pid) or []:
                    if e.content:  # never shown: taught to the redactor, then dropped
                        self.ctx.learn_value(e.content.decode("utf-8", "surrogateescape"), f"{e.path} in {v.name}")
                    e.content = None
                    if e.kind != "dir":
                        entries[e.path] = e
            rows = [[declared.get(p, "(not declared)"), p, e.kind, f"{e.mode:04o}", f"{e.size} B", f"{e.uid}:{e.gid}"]
                    for p, e in sorted(entries.items())]
            rows += [[name, p, "missing", "", "", ""] for p, name in sorted(declared.items()) if p not in entries]
            title = f"<div><small>{esc(v.name)}</small></div>" if len(views) > 1 else ""
            parts.append(title + (simple_table(["secret", "path", "kind", "mode", "size", "owner uid:gid"], rows)
                                  if rows else _note(f"nothing under {secrets_dir} and no secret declared")))
        return "".join(parts)

    def _logs_html(self, views: list[ContainerView]) -> str:
        n = int(self.log_lines.value)
        parts = []
        for v in views:
            text = self.redactor.scrub_text(self.ctx.engine.logs(v.id, tail=n)).rstrip("\n")
            title = f"<div><small>{esc(v.name)} · <code>docker logs --tail {n} {esc(v.name)}</code></small></div>"
            parts.append(title + f"<pre style='max-height:22em;overflow:auto;font-size:85%;white-space:pre-wrap'>"
                                 f"{esc(text) or '(no log lines)'}</pre>")
        return "".join(parts)

    # -- actions ------------------------------------------------------------------------------------
    def run_phase(self, phase: PhaseChecks) -> None:
        """Run one phase's offered checks against the project, as the phase notebook would (a fresh
        context, records redacted by a PhaseSession that writes nothing), and show the records about
        the selected service."""
        svc = self.service
        if not svc:
            return
        names = ", ".join(getattr(fn, "__name__", "?") for fn in phase.checks)
        self.checks_out.value = _note(f"running {phase.phase} ({names}) for {svc}…")
        self.ctx = self._new_context()
        session = PhaseSession(phase.phase, self.ctx)
        table = session.run(*phase.checks)
        containers = [v.name for v in self._views(svc)]
        kept, other = records_for_service(table.records, svc, containers, self.ctx.services)
        heading = (f"<div class='rb-run'><b>{esc(phase.phase)} for {esc(svc)}</b>: {len(kept)} record(s) "
                   f"({other} about other targets not shown)</div>")
        extra = (_note(f"Not offered here: {', '.join(phase.left_out)} ({DRILLS_NOT_OFFERED}).")
                 if phase.left_out else "")
        self.checks_out.value = heading + records_table(kept) + extra
        self.status.value = _note(f"{phase.phase}: {len(kept)} records for {svc}")

    def probe(self) -> None:
        """Ask each HTTP endpoint of the selected service once (short timeout, no retry) and show
        status, latency and a redacted body excerpt."""
        from runbook_lib.drills import probes

        svc = self.service
        if not svc:
            return
        eps = service_endpoints(self.params, self.ctx.model, svc)
        if not eps:
            self.probe_out.value = _note(f"{svc} publishes no HTTP endpoint and the parameters name none.")
            return
        self.probe_out.value = _note(f"probing {len(eps)} endpoint(s)…")
        targets = [probes.ProbeTarget(name=e["name"], url=e["url"], method=e["method"],
                                 timeout_s=min(float(e["timeout_s"]), self.probe_timeout_s)) for e in eps]
        results = probes.probe_all(targets, retries=0)
        rows = []
        for e, r in zip(eps, results):
            ok = r.status in e["expect"]
            rows.append([esc(r.name), f"<code>{esc(self.redactor.scrub_text(r.request_line))}</code>",
                         badge("PASS" if ok else "FAIL"),
                         esc(r.status if r.status is not None else "—"), esc(f"{r.latency_s * 1000:.0f} ms"),
                         f"<pre style='white-space:pre-wrap;max-height:8em;overflow:auto;margin:0'>"
                         f"{esc(self.redactor.scrub_text(r.error or probes.excerpt(r.body, r.body_bytes)))}</pre>"])
        self.probe_out.value = simple_table(["endpoint", "request", "ok", "status", "latency", "body excerpt / error"],
                                            rows, raw_columns=tuple(range(6)))
        self.status.value = _note(f"{svc}: probed at {datetime.now(timezone.utc):%H:%M:%S} UTC")


def explore(params_file: str | Path, *, log_lines: int = DEFAULT_LOG_LINES, probe_timeout_s: float = PROBE_TIMEOUT_S):
    """The explorer widget for the deployment ``params_file`` describes (display it as a cell's value);
    empty: :func:`~runbook_lib.params.core.resolve_params_file` (``$RUNBOOK_PARAMS``, else
    ``parameters/demo.yaml`` found from the current directory upward).

    Raises :class:`~runbook_lib.errors.ParametersError` for a bad parameters file; engine problems
    appear inside the widget. The :class:`Explorer` behind it is ``widget.explorer``."""
    ex = Explorer(params_file, log_lines=log_lines, probe_timeout_s=probe_timeout_s)
    ex.widget.explorer = ex
    return ex.widget
