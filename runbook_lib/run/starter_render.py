"""The text of a starter parameters file (``runbook init``): YAML with a comment beside every value
saying where it came from, and a ``# TODO:`` line for every decision left to a person.

Values are written in YAML flow style through PyYAML, so any service name or URL is quoted correctly;
:func:`write` loads the result with ``load_params`` before keeping it.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from runbook_lib.run.starter_evidence import TOOL_WORDS
from runbook_lib.run.starter_mode import production_env
from runbook_lib.run.starter import Starter
from runbook_lib.run.starter_probe import Health


def _y(value: Any) -> str:
    """One value in YAML flow style (quoted where YAML needs it)."""
    return yaml.safe_dump([value], default_flow_style=True, width=1 << 20, sort_keys=False).strip()[1:-1]


def _rel(path: Path | str, base: Path) -> str:
    """A path relative to the parameters file's directory (load_params resolves it from there)."""
    try:
        return os.path.relpath(Path(path).resolve(), base)
    except ValueError:  # another drive (Windows)
        return str(Path(path).resolve())


def _wrap(text: str, indent: str = "", width: int = 110) -> list[str]:
    """A comment, wrapped; the first line keeps a leading marker such as ``TODO:``."""
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(indent) + 2 + len(line) + 1 + len(w) > width:
            lines.append(line)
            line = "  " + w if text.startswith("TODO:") else w
        else:
            line = f"{line} {w}" if line else w
    if line:
        lines.append(line)
    return [f"{indent}# {ln}" for ln in lines]


def render(st: Starter, base: Path, today: date) -> str:
    """The whole starter file for ``st``, with paths relative to ``base`` (the output directory)."""
    lines: list[str] = []
    for part in (_header, _services, _secrets, _redeploy, _production, _smoke, _security_policy_signoff):
        lines += part(st, base)
        lines.append("")
    todos = sum(1 for ln in lines if ln.lstrip().startswith("# TODO:"))
    lines.insert(0, f"# Starter parameters for {st.project}, written by `runbook init` on {today.isoformat()}.")
    lines.insert(1, f"# {todos} decision(s) are left to a person: search for `TODO:`.")
    return "\n".join(lines).rstrip() + "\n"


def _header(st: Starter, base: Path) -> list[str]:
    files = " ".join(_rel(f, base) for f in st.compose_files)
    envs = "".join(f" --env-file {_rel(e, base)}" for e in st.env_files)
    out = _wrap(f"Read from the compose model (`docker compose config`, every profile) of {files}{envs}, and, "
                "where the stack was running, from real requests to its published ports. The file validates as it "
                "is and claims no more than the compose files say. Paths are relative to this file. Every key: "
                "docs/parameters.md. Parameters never hold secret values.")
    out += ["# Next: runbook run --params THIS_FILE   (then: runbook verify outputs/<run>)",
            f"project: {_y(st.project)}", "compose_files:"]
    out += [f"  - {_y(_rel(f, base))}" for f in st.compose_files]
    out += ["env_files:"] + [f"  - {_y(_rel(e, base))}" for e in st.env_files] if st.env_files else ["env_files: []"]
    return out


def _services(st: Starter, base: Path) -> list[str]:
    out = _wrap("App services: every service that is neither a dependency nor an observability tool; their health, "
                "metrics, production environment, restart policy and limits are judged. Each service was sorted "
                "from all the compose model says about it: image name, service name, healthcheck command (mysqladmin "
                "ping, pg_isready, redis-cli ping...), container ports (3306, 5432, 6379, 27017, 3478...), server "
                "environment names (MYSQL_*, POSTGRES_*, MONGO_INITDB_*...; a client's *_HOST/*_URL settings do not "
                "count), volume targets (/var/lib/mysql, /var/lib/postgresql/data...) and the command it starts. One "
                "strong clue (image, healthcheck, command, data volume) settles it; the weaker ones (service name, "
                "port, environment) need two. Tools around a store (a word among "
                f"{', '.join(sorted(TOOL_WORDS))}: redis_exporter, mongo-express) are not dependencies. Why each "
                "service went where it did:")
    for kind, names in (("app", st.apps), ("dependency", st.dependencies), ("observability", st.observability)):
        for name, why in names.items():
            first, *rest = _wrap(f"{name}: {kind}, {why}", "", width=104)
            out += [f"#   {first[2:]}"] + [f"#       {ln[2:]}" for ln in rest]
    out += _wrap("TODO: check this split; a service of yours that the rule got wrong moves between the two lists.")
    out.append(f"app_services: {_y(list(st.apps))}")
    out.append(f"dependencies: {_y(list(st.dependencies))}")
    if st.profile_only:
        listed = "; ".join(f"{s} (profiles: {', '.join(p) or '-'})" for s, p in st.profile_only.items())
        out += _wrap(f"Only in profiles that are not active by default, so not listed above (the runner resolves "
                     f"the compose files with the default profiles; set COMPOSE_PROFILES in an env file to include "
                     f"them): {listed}.")
        out += _wrap("TODO: decide whether the deployment you verify runs these profiles.")
    return out


def _secrets(st: Starter, base: Path) -> list[str]:
    if not st.secrets:
        return ["# File secrets: the compose model declares none (preflight.secret_files has nothing to check)."]
    out = _wrap("File secrets of the compose model, checked by preflight (present, non-empty, not world-writable) "
                "and phase 2 (mounted, not readable by others, never in the environment, config or logs). Nothing "
                "to set here: the runbook reads them from the compose files. A flow step refers to one as "
                "{{ secret:NAME }}, never by value.")
    out += [f"#   {name}: {path if path.startswith('(') else _rel(path, base)}" for name, path in st.secrets.items()]
    return out


def _redeploy(st: Starter, base: Path) -> list[str]:
    out = ["redeploy:"]
    out += _wrap("TODO: containers of the same system started from other compose files (a logging stack, a "
                 "hand-started debug container): phase 1 stops and removes them before `up`. Names or shell "
                 "patterns; never list what a waiver accepts.", "  ")
    out += ["  leftover_containers: []",
            "  remove_volumes: false    # destructive; also needs confirm_volume_removal: <project>",
            "  healthy_timeout_s: 180"]
    out += _wrap("TODO: post-deploy steps (migrations, buckets, keyspaces) as init_steps: {name, service, "
                 "command, verify, expect}.", "  ")
    out.append("  init_steps: []")
    return out


def _production(st: Starter, base: Path) -> list[str]:
    out = ["production:"]
    expected, overrides, lines = production_env(st.modes)
    out += [ln for text in lines for ln in _wrap(text, "  ")]
    out.append(f"  expected_env: {_y(expected)}")
    if overrides:
        out.append(f"  env_overrides: {_y(overrides)}")
    out.append(f"  env_excluded: {_y([])}")
    for key in ("prometheus_url", "alertmanager_url", "grafana_url", "loki_url"):
        if key in st.production_urls:
            url, svc = st.production_urls[key]
            out.append(f"  {key}: {_y(url)}    # the published port of {svc}")
        else:
            out += _wrap(f"TODO: {key} when you run one (the check is skipped without it); none was found published "
                         "in the compose model.", "  ")
    return out


def _endpoint(h: Health) -> list[str]:
    out = _wrap(f"TODO: {h.todo}", "    ") if h.todo else []
    status = f", expect_status: {h.status}" if h.status not in (None, 200) else ""
    return out + [f"    - {{name: {_y(h.service)}, url: {_y(h.url)}{status}}}    # {h.note}"]


def _smoke(st: Starter, base: Path) -> list[str]:
    out = ["smoke:"]
    reachable = [h for h in st.health if h.url]
    out += _wrap("Health endpoints of the app services, host URLs, only from evidence: a healthcheck's URL mapped to "
                 "the port published for it, or (when the stack was running) the first of the healthcheck's path, "
                 "/health, /healthz, /ready, ..., / that answered on a published port, with the status seen. No "
                 "path is assumed.", "  ")
    for h in st.health:
        if not h.url:
            out.append(f"  # {h.service}: not in endpoints: {h.note}")
            out += _wrap(f"TODO: {h.todo}", "  ") if h.todo else []
    if reachable:
        out += ["  endpoints:"] + [ln for h in reachable for ln in _endpoint(h)]
    else:
        out += _wrap("TODO: no endpoint is known to answer. While this list is empty, phase 4 asks health_path "
                     "(default /health) on each app service's first published port: list the real ones first.", "  ")
        out.append("  endpoints: []")
    out += _metrics(st)
    out += _wrap("TODO: the end-to-end flow a user would go through (log in, do the main thing, read it back) as "
                 "flow steps; see parameters/demo.yaml. Without it smoke.flow has nothing to run.", "  ")
    out.append("  flow: []")
    out += _drills(st, reachable)
    return out


def _metrics(st: Starter) -> list[str]:
    out = _wrap(f"/metrics endpoints that answered Prometheus text when `runbook init` ran ({st.metrics_note}).", "  ")
    if not st.metrics:
        out += _wrap("TODO: add the /metrics endpoints of your services ({name, url, families}) once the stack runs "
                     "(or re-run `runbook init` with it running); none is invented here.", "  ")
        return out + ["  metrics: []"]
    out += _wrap("TODO: families is empty, so any valid exposition passes: list the families that must be there "
                 "(seen now in the comment beside each).", "  ")
    out.append("  metrics:")
    for m in st.metrics:
        seen = ", ".join(m.families[:8]) + (f" and {len(m.families) - 8} more" if len(m.families) > 8 else "")
        out.append(f"    - {{name: {_y(m.service)}, url: {_y(m.url)}, families: []}}    # seen: {seen}")
    return out


def _drills(st: Starter, reachable: list[Health]) -> list[str]:
    if not st.dependencies:
        return ["  drills: []    # no dependency was recognised"]
    out = _wrap("One drill per dependency: phase 4 stops it for duration_s while probing the endpoints of the "
                "services that depend on it (every app endpoint when none names it in depends_on), then restores "
                "it and requires every endpoint back within recovery_budget_s.", "  ")
    out += _wrap("TODO: decide `expect` per endpoint: available (a designed degraded mode keeps answering), "
                 "must_fail (it really uses the dependency), or may_fail. may_fail is written because it claims "
                 "nothing about degraded behaviour, so the file validates without a guess; only a person who knows "
                 "the design can say which is true.", "  ")
    if reachable:
        out.append("  drills:")
    for dep in st.dependencies:
        users = [h for h in reachable if dep in st.depends_on.get(h.service, [])] or reachable
        if not users:
            out += _wrap(f"TODO: a drill for {dep} needs at least one endpoint reachable from the host; none is. "
                         f"Add one, then uncomment:", "    ")
            out += [f"    # - {{dependency: {dep}, mode: stop, duration_s: 3, endpoints: "
                    f"[{{name: ..., url: ..., expect: may_fail}}]}}"]
            continue
        out += [f"    - dependency: {_y(dep)}", "      mode: stop", "      duration_s: 3", "      endpoints:"]
        out += _wrap(f"TODO: while {dep} is down, is each of these available, must_fail or may_fail?", "        ")
        out += [f"        - {{name: {_y(h.service + ' health')}, url: {_y(h.url)}, expect: may_fail"
                + (f", ok_status: {h.status}" if h.status not in (None, 200, 201, 202, 204) else "") + "}"
                for h in users]
    return out if reachable else out + ["  drills: []    # no app endpoint is known to answer (see above)"]


def _security_policy_signoff(st: Starter, base: Path) -> list[str]:
    out = ["security:"]
    out += _wrap("Dependencies must never be published beyond publish_interfaces (a FAIL if they are).", "  ")
    internal = [d for d in st.dependencies if d not in st.public_dependencies]
    if st.public_dependencies:
        out += _wrap(f"Not internal, being reached from outside by design: {', '.join(st.public_dependencies)}.", "  ")
    out += [f"  internal_services: {_y(internal)}", f"  publish_interfaces: {_y(['127.0.0.1', '::1'])}",
            "", "policy:", f"  blocking_severities: {_y(['critical', 'high'])}"]
    out += _wrap("TODO: accepted risks go in a waivers file (check id, target, justification, owner, approver, "
                 "expiry; see parameters/secureconnect-waivers.yaml): policy.waivers_file: <file>.", "  ")
    out += ["", "signoff:"]
    out += _wrap("TODO: who approves the release, and an Ed25519 key to sign the run's manifest "
                 "(`runbook keygen --out PATH`, then signing_key: PATH); without one the manifest is unsigned.", "  ")
    out.append('  approver: ""')
    return out


def write(st: Starter, out: Path, *, force: bool = False, create_parent: bool = False) -> Path:
    """Render, check that the text validates with load_params, then write ``out`` (refusing to overwrite
    an existing file unless ``force``). ``create_parent``: create ``out``'s directory when missing (the
    default ``parameters/``), and remove it again when nothing could be written."""
    from runbook_lib.errors import InputError, RunbookError
    from runbook_lib.params import load_params

    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} already exists; nothing was written. Pass --force to overwrite it, or "
                         "--out another path")
    created = create_parent and not out.parent.exists()
    if created:
        out.parent.mkdir(parents=True)
    if out.parent and not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such directory (create it, or give --out another path)")
    text = render(st, out.resolve().parent, today=date.today())
    scratch = out.with_name(f".{out.name}.init.tmp")
    scratch.write_text(text, encoding="utf-8")
    try:
        load_params(scratch)
    except RunbookError as exc:
        scratch.unlink()
        if created:
            out.parent.rmdir()
        raise RunbookError(f"the generated parameters do not validate (a bug in `runbook init`): {exc}") from exc
    scratch.replace(out)
    return out
