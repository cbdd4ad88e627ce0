"""The explorer: poke at a deployment from JupyterLab without leaking a secret to the screen.

Used from a notebook cell (``explore.ipynb``, opened in a workspace of one's own: :mod:`runbook_lib.run.lab`)::

    from runbook_lib.run.explorer import explore
    explore("../parameters/demo.yaml")

It returns an ipywidgets box: an overview of every service (state, health, restarts, and the worst status
any re-run has seen for it this session); pick a service and see its containers (state, health, restart
count, uptime), its environment (redacted), the secrets mounted in it (name, path, mode, size, owner: read
through the engine's archive API, never shown), its log lines (redacted, filtered by level and text, the
health and metrics probes hidden, newest first), buttons that re-run one phase's checks, and a probe button
for its HTTP endpoints. Every re-run's records are kept in the session table (:mod:`.explorer_session`),
filtered by status and service, and saved as a run directory ("Save as evidence": verdict, report, signed).

What it never offers: the destructive phase-1 steps (``docker compose down``/``up``) and the phase-4
dependency drills (which stop, pause or disconnect a dependency). Those run only from the phase
notebooks or ``runbook run``. Everything shown (environment values, log lines, probe bodies, check
records) passes through the run's :class:`~runbook_lib.results.redact.Redactor` first, which has learned every
secret file of the compose project and every file under each container's secrets mount.

Widgets do not survive nbconvert, so nothing here is part of a run's report unless saved as evidence: the
phase notebooks show static tables (:mod:`runbook_lib.results.display`) and that is what the report carries.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from runbook_lib.run.context import Context
from runbook_lib.results.display import STYLE_BLOCK, badge, esc, records_table, simple_table
from runbook_lib.engine import ContainerView
from runbook_lib.errors import RunbookError
from runbook_lib.params import load_params, resolve_params_file
from runbook_lib.run.manifest import Manifest
from runbook_lib.run.phase import PhaseSession
from runbook_lib.results.records import CheckRecord, plural
from runbook_lib.model.facts import secret_targets
from runbook_lib.results.redact import Redactor
from runbook_lib.run.explorer_session import STATUS_FILTERS, SessionTable, worst_cell
from runbook_lib.run.explorer_views import (LEVEL_FILTERS, PROBE_TIMEOUT_S, filter_logs, phase_title,  # noqa: F401
                                            records_for_service, redacted_env, service_endpoints,
                                            service_of, uptime)
from runbook_lib.results.display import human_duration  # noqa: F401  (re-exported: explorer.human_duration)

#: Phases the explorer never offers, and why (shown in its UI). A phase module may also declare
#: ``DESTRUCTIVE = True`` to be left out.
NOT_OFFERED: dict[str, str] = {
    "01_controlled_redeployment": "phase 1 takes the whole project down and up again",
}
#: Why the phase-4 dependency drills are left out (see :func:`is_destructive`).
DRILLS_NOT_OFFERED = "the phase-4 dependency drills stop, pause or disconnect a dependency"
DEFAULT_LOG_LINES = 200
#: Styles of the explorer's own parts (the records' tables carry display.CSS).
EXPLORER_CSS = """<style class="rb-explorer-css">
.rb-explorer pre.rb-log{max-height:24em;overflow:auto;font-size:85%;white-space:pre-wrap;overflow-wrap:anywhere;
 margin:2px 0;background:#f6f8fa;border:1px solid #d0d7de;padding:4px 6px}
.rb-explorer .rb-count{color:#57606a;margin:2px 0}
.rb-explorer .widget-html-content{white-space:normal;line-height:1.45}
</style>"""

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
            out.append(PhaseChecks(phase=info.name, module=name, problem=f"this phase could not be loaded "
                                   f"({type(exc).__name__}: {exc}); open its notebook to see the error"))
            continue
        phase, manifest = getattr(mod, "PHASE", None), getattr(mod, "MANIFEST", None)
        if not phase or phase in NOT_OFFERED or getattr(mod, "DESTRUCTIVE", False):
            continue
        checks = manifest.checks(mode) if isinstance(manifest, Manifest) else getattr(mod, "CHECKS", None)
        if not checks:
            out.append(PhaseChecks(phase=phase, module=name, problem=_why_not_alone(manifest, checks, mode)))
            continue
        offered = [fn for fn in checks if not is_destructive(fn)]
        left_out = [getattr(fn, "__name__", repr(fn)) for fn in checks if is_destructive(fn)]
        out.append(PhaseChecks(phase=phase, module=name, checks=offered, left_out=left_out))
    return sorted(out, key=lambda p: p.phase)


def _why_not_alone(manifest: Any, checks: Any, mode: str) -> str:
    """Why a phase has nothing to re-run here, in an operator's words."""
    if isinstance(manifest, Manifest) and any(e.kind == "records" for e in manifest.entries):
        return ("it judges a whole run (the verdict, the waivers, who signed), not a service: save this session "
                "as evidence for a verdict on it, or use runbook run")
    if checks is None:
        return "it has no check that can run on its own: open its notebook"
    return f"none of its checks applies to a {'Swarm stack' if mode == 'swarm' else 'Compose project'}"


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
        self.session = SessionTable()
        self._log_text: dict[str, str] = {}  # container name -> its last log lines as read (redacted)
        self.ctx = self._new_context()
        self.phases = discover_phases(mode=self.params.mode)
        try:
            services = self.ctx.services
        except RunbookError as exc:
            services = []
            self._startup_problem = str(exc)
        else:
            self._startup_problem = ""
        self.picker = w.Dropdown(options=[("— choose a service —", "")] + [(x, x) for x in services], value="",
                                 description="Service", layout=w.Layout(width="340px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", tooltip="Read the service again")
        self.status = w.HTML(_note(self._startup_problem, "#cf222e") if self._startup_problem else "")
        self.overview, self.containers, self.environment, self.secrets = w.HTML(), w.HTML(), w.HTML(), w.HTML()
        self._log_widgets(w, log_lines)
        self._check_widgets(w, services)
        self.probe_button = w.Button(description="Probe endpoints", icon="plug", layout=w.Layout(width="auto"), disabled=True,
                                     tooltip=f"GET each HTTP endpoint of the service ({probe_timeout_s:g}s timeout)")
        self.probe_out = w.HTML()
        self.picker.observe(lambda change: self._guard(self.show), names="value")
        self.refresh_button.on_click(lambda _b: self._guard(self.refresh))
        self.probe_button.on_click(lambda _b: self._guard(self.probe))
        self.widget = w.VBox([
            w.HTML(self._header_html()), w.HBox([self.picker, self.refresh_button]),
            self.status, self.overview, self.containers, self.environment, self.secrets,
            w.HTML(_section("Logs (redacted)", "")), self.log_controls, self.logs,
            w.HTML(_section("Re-run checks for this service", self._checks_note())),
            w.HBox(self.phase_buttons, layout=w.Layout(flex_flow="row wrap")), self.checks_out,
            w.HTML(_section("This session: every re-run's records", "")), self.session_controls, self.session_out,
            w.HTML(_section("Probe", "")), self.probe_button, self.probe_out,
        ], layout=w.Layout(width="100%"))
        self.widget.add_class("rb-explorer")
        self._guard(self.show_overview)
        self.show_session()

    def _header_html(self) -> str:
        left_out = [f"{phase_title(p)}: {why}" for p, why in NOT_OFFERED.items()] + [DRILLS_NOT_OFFERED]
        return (STYLE_BLOCK + EXPLORER_CSS
                + f"<h3 style='margin:4px 0'>Explorer · project <code>{esc(self.params.project)}</code></h3>"
                "<div style='color:#57606a'>Read-only: nothing here changes the deployment. Everything shown is "
                "redacted: no secret value reaches this page. Not offered here (run them from their phase notebooks "
                "or <code>runbook run</code>): " + "; ".join(esc(x) for x in left_out) + ".</div>")

    def _log_widgets(self, w: Any, log_lines: int) -> None:
        self.log_lines = w.BoundedIntText(value=log_lines, min=1, max=5000, description="Read",
                                          tooltip="How many of each container's last log lines are read",
                                          layout=w.Layout(width="150px"))
        self.log_level = w.Dropdown(options=[(label, i) for i, (label, _) in enumerate(LEVEL_FILTERS)], value=0,
                                    description="Level", layout=w.Layout(width="240px"))
        self.log_text = w.Text(value="", placeholder="text in the line", description="Contains",
                               layout=w.Layout(width="260px"))
        self.log_probes = w.Checkbox(value=True, description="hide health/metrics probes", indent=False,
                                     layout=w.Layout(width="auto"))
        self.log_controls = w.HBox([self.log_lines, self.log_level, self.log_text, self.log_probes],
                                   layout=w.Layout(flex_flow="row wrap"))
        self.logs = w.HTML()
        for c in (self.log_level, self.log_text, self.log_probes):
            c.observe(lambda change: self._guard(self.show_logs), names="value")

    def _check_widgets(self, w: Any, services: list[str]) -> None:
        self.phase_buttons = []
        for p in self.phases:
            b = w.Button(description=f"Re-run {phase_title(p.phase)}", disabled=True, layout=w.Layout(width="auto"),
                         tooltip=(f"Not available: {p.problem}" if p.problem else
                                  f"Runs its {plural(len(p.checks), 'check')} against the project; the records are kept"))
            b.on_click(lambda _b, p=p: self._guard(self.run_phase, p))
            self.phase_buttons.append(b)
        self.checks_out = w.HTML()
        self.session_status = w.Dropdown(options=[(label, i) for i, (label, _) in enumerate(STATUS_FILTERS)], value=0,
                                         description="Status", layout=w.Layout(width="300px"))
        self.session_service = w.Dropdown(options=[("all services", "")] + [(x, x) for x in services], value="",
                                          description="Service", layout=w.Layout(width="300px"))
        self.save_button = w.Button(description="Save as evidence", icon="save", layout=w.Layout(width="auto"),
                                    tooltip="Write this session's records as a run directory: verdict, report, signed")
        self.session_controls = w.HBox([self.session_status, self.session_service, self.save_button],
                                       layout=w.Layout(flex_flow="row wrap"))
        self.session_controls.add_class("rb-session-controls")
        self.session_out, self.save_out = w.HTML(), w.HTML()
        self.session_controls.children += (self.save_out,)
        for c in (self.session_status, self.session_service):
            c.observe(lambda change: self._guard(self.show_session), names="value")
        self.save_button.on_click(lambda _b: self._guard(self.save_evidence))

    def _checks_note(self) -> str:
        unavailable = [f"{phase_title(p.phase)}: {p.problem}" for p in self.phases if p.problem]
        return _note("Each button runs that phase's checks that change nothing, against the whole project; the "
                     "selected service's records are shown below, and every record is kept in this session's table."
                     + (f" Not available: {'; '.join(unavailable)}." if unavailable else ""))

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
        except RunbookError as exc:  # its message is written for the person (no class name)
            self.status.value = _note(self.redactor.scrub_text(str(exc)), "#cf222e")
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
        """One line per service of the compose model: its containers' state, health and restarts, and the
        worst status the session's re-runs have seen for it (with the mix)."""
        views = self.ctx.engine.project_containers(self.params.project)
        by_service: dict[str, list[ContainerView]] = {}
        for v in views:
            by_service.setdefault(v.service, []).append(v)
        worst = self.session.worst_by_service()
        rows = []
        for svc in self.ctx.services:
            vs = by_service.get(svc, [])
            state = ", ".join(sorted({v.state for v in vs})) or "no container"
            health = " ".join(_health_html(v) for v in vs) or "—"
            rows.append([esc(svc), esc(state), health, esc(sum(v.restart_count for v in vs)), worst_cell(worst.get(svc))])
        self.overview.value = _section("All services", simple_table(
            ["service", "state", "health", "restarts", "worst check status seen"], rows, raw_columns=(0, 1, 2, 3, 4)))

    def show(self) -> None:
        """Show the selected service: containers, environment, secrets mounted, log lines."""
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
        n = int(self.log_lines.value)
        self._log_text = {v.name: self.redactor.scrub_text(self.ctx.engine.logs(v.id, tail=n)) for v in views}
        self.show_logs()
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

    def show_logs(self) -> None:
        """The log lines read, filtered by level, text and probes, newest first, with a count."""
        levels = LEVEL_FILTERS[self.log_level.value][1]
        parts = []
        for name, text in self._log_text.items():
            kept, read, probes = filter_logs(text.splitlines(), levels=levels, text=self.log_text.value,
                                             hide_probes=self.log_probes.value)
            count = (f"{name}: {len(kept)} of the last {plural(read, 'line')} shown, newest first"
                     + (f" ({plural(probes, 'health/metrics probe')} hidden)" if probes else ""))
            parts.append(f"<div class='rb-count'>{esc(count)} · <code>docker logs --tail {int(self.log_lines.value)} "
                         f"{esc(name)}</code></div><pre class='rb-log'>{esc(chr(10).join(kept)) or '(no line matches)'}</pre>")
        self.logs.value = "".join(parts)

    def show_session(self) -> None:
        """The session table, with the filters applied."""
        statuses = STATUS_FILTERS[self.session_status.value][1]
        self.session_out.value = self.session.html(statuses, self.session_service.value)

    # -- actions ------------------------------------------------------------------------------------
    def run_phase(self, phase: PhaseChecks) -> None:
        """Run one phase's offered checks against the project, as the phase notebook would (a fresh
        context, records redacted by a PhaseSession that writes nothing); keep every record in the session
        table and show the records about the selected service."""
        svc = self.service
        if not svc:
            return
        title = phase_title(phase.phase)
        self.checks_out.value = _note(f"running {title} ({plural(len(phase.checks), 'check')}) for {svc}…")
        self.ctx = self._new_context()
        table = PhaseSession(phase.phase, self.ctx).run(*phase.checks)
        names = {v.name: v.service for v in self.ctx.engine.project_containers(self.params.project)}
        run = self.session.add(phase.phase, title, svc, table.records,
                               lambda t: service_of(t, self.ctx.services, names))
        kept, other = records_for_service(table.records, svc, [n for n, s in names.items() if s == svc], self.ctx.services)
        heading = (f"<div class='rb-run'><b>{esc(title)} for {esc(svc)}</b> (re-run {run.n}, {esc(run.at[11:19])} UTC): "
                   f"{plural(len(kept), 'record')} ({other} about other targets, kept in the session table)</div>")
        extra = (_note(f"Not offered here: {plural(len(phase.left_out), 'check')} ({DRILLS_NOT_OFFERED}).")
                 if phase.left_out else "")
        self.checks_out.value = heading + records_table(kept) + extra
        self.show_session()
        self.show_overview()
        self.status.value = _note(f"{title}: {plural(len(table.records), 'record')} kept, {len(kept)} about {svc}")

    def save_evidence(self) -> None:
        """Write the session as a run directory (verdict, report, manifest, signed like any run) under the
        project's ``outputs/``, and say where and how to verify it."""
        from runbook_lib.params.core import default_outputs

        self.save_out.value = _note("saving…")
        run_dir = self.session.export(self.params, default_outputs(self.params.source), redactor=self.redactor)
        self.save_out.value = (f"<div>Saved: <code>{esc(run_dir)}</code> (report.html inside); check it with "
                               f"<code>runbook verify {esc(run_dir)}</code></div>")

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
