"""What the explorer (:mod:`runbook_lib.run.explorer`) shows, as pure functions tested without Docker: uptime,
the environment as it may be shown, which records are about a service, a service's HTTP endpoints, the log
lines a person asked for, and a phase's name in words."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable

from runbook_lib.engine import ContainerView
from runbook_lib.params import Params
from runbook_lib.results.display import human_duration
from runbook_lib.engine.event_calls import engine_time
from runbook_lib.results.records import CheckRecord
from runbook_lib.results.redact import Redactor, marker

PROBE_TIMEOUT_S = 3.0


def uptime(view: ContainerView, now: datetime | None = None) -> str:
    """How long a running container has been up; for one that is not running, how long ago it stopped."""
    now = now or datetime.now(timezone.utc)
    if view.running:
        started = engine_time(view.started_at)
        return human_duration((now - started).total_seconds()) if started else "?"
    finished = engine_time(view.finished_at)
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


#: Paths of the requests health checkers and Prometheus make all day (hidden from the logs by default).
PROBE_PATHS = ("health", "healthz", "ready", "readyz", "live", "livez", "metrics", "ping")
_PROBE_RE = re.compile(r"(?:GET|HEAD)\s+/(?:" + "|".join(PROBE_PATHS) + r")\b")
_LEVEL_WORD = re.compile(r"\b(CRITICAL|FATAL|PANIC|ERROR|ERR|WARNING|WARN|INFO|NOTICE|DEBUG|TRACE)\b"
                         r"|\blevel=(\w+)", re.I)
_LEVELS = {"critical": "error", "fatal": "error", "panic": "error", "error": "error", "err": "error",
           "warning": "warning", "warn": "warning", "info": "info", "notice": "info", "debug": "debug", "trace": "debug"}
#: The level filter's choices: (label, the levels it keeps; empty: every line).
LEVEL_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("any level", ()), ("errors", ("error",)), ("warnings and errors", ("warning", "error")),
    ("info", ("info",)), ("debug", ("debug",)))


_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?\s+")  # what `docker logs -t` puts first


def _json(line: str) -> dict[str, Any] | None:
    line = _STAMP.sub("", line, count=1)
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def line_level(line: str) -> str:
    """A log line's level: ``error``, ``warning``, ``info``, ``debug``, or "" when it says none. A JSON line's
    ``level``/``levelname``/``severity``, else its HTTP ``status`` (5xx error, 4xx warning, else info); a text
    line's first level word (``ERROR``, ``WARN``, ``level=info``...)."""
    doc = _json(line)
    if doc is not None:
        for key in ("level", "levelname", "severity", "lvl", "log.level"):
            if isinstance(doc.get(key), str) and doc[key].lower() in _LEVELS:
                return _LEVELS[doc[key].lower()]
        status = doc.get("status")
        if isinstance(status, int) and 100 <= status <= 599:
            return "error" if status >= 500 else "warning" if status >= 400 else "info"
        return ""
    m = _LEVEL_WORD.search(line)
    return _LEVELS.get((m.group(1) or m.group(2) or "").lower(), "") if m else ""


def is_probe(line: str) -> bool:
    """An access line of a health or metrics probe (``GET /health``, a JSON line whose path is ``/metrics``)."""
    doc = _json(line)
    if doc is not None:
        path = str(doc.get("path") or doc.get("route") or doc.get("url") or "").split("?")[0].rstrip("/")
        return path.lstrip("/") in PROBE_PATHS
    return bool(_PROBE_RE.search(line))


def filter_logs(lines: Iterable[str], *, levels: tuple[str, ...] = (), text: str = "",
                hide_probes: bool = True) -> tuple[list[str], int, int]:
    """The lines a person asked for, newest first: of ``levels`` (empty: any), containing ``text`` (any case),
    without the health and metrics probes when ``hide_probes``. Returns (lines, how many were read, how many
    probes were hidden)."""
    lines = [x for x in lines if x.strip()]
    needle = text.strip().lower()
    kept, probes = [], 0
    for line in reversed(lines):
        if hide_probes and is_probe(line):
            probes += 1
            continue
        if levels and line_level(line) not in levels:
            continue
        if needle and needle not in line.lower():
            continue
        kept.append(line)
    return kept, len(lines), probes


@lru_cache(maxsize=None)
def phase_title(phase: str) -> str:
    """A phase as its notebook names it ("Phase 3 — Production mode", the notebook's first heading), else
    the phase's name."""
    from runbook_lib.package_data import NOTEBOOKS

    try:
        first = json.loads((NOTEBOOKS / f"{phase}.ipynb").read_text(encoding="utf-8"))["cells"][0]
        heading = "".join(first["source"]).splitlines()[0]
    except (OSError, ValueError, KeyError, IndexError):
        return phase
    return heading.lstrip("#").strip() or phase


def service_of(target: str, services: Iterable[str], containers: dict[str, str]) -> str:
    """The service a record's target belongs to: the service itself, or the service of the container named
    (``containers``: container name -> service); "" for any other target (the engine, the project)."""
    if target in set(services):
        return target
    return containers.get(target, "")
