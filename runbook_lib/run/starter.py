"""`runbook init`: a commented starter parameters file, read from a project's own compose model.

Everything written comes from ``docker compose config`` (all profiles, through :class:`Compose`) or from
a real probe of the running stack; what only a person can decide is left as a ``# TODO:`` line, with
the least-claiming value that still validates (a drill endpoint's ``expect: may_fail``). The file holds
no secret value: file secrets are listed by name and path in a comment.

How services are sorted (each service's reason is written beside it in the generated file): from every
piece of evidence in the compose model (image, service name, healthcheck command, container ports,
environment names, volume targets, command), by :mod:`runbook_lib.run.starter_evidence`:

* **dependencies**: data stores, brokers and servers the apps use (a TURN/STUN server too, which is left out
  of ``security.internal_services``: it is reached from outside by design);
* **observability**: Prometheus, Alertmanager, Grafana, Loki and friends; their published ports become
  ``production.*_url``;
* **app services**: every other service.

Endpoints are written only from evidence: a healthcheck's URL mapped to its published port, or, when the
stack runs, a published port that answered (:mod:`runbook_lib.run.starter_probe`); never an assumed path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx

from runbook_lib.engine.compose import Compose
from runbook_lib.errors import InputError, RunbookError
from runbook_lib.drills.probes import parse_metrics
from runbook_lib.model.urls import host_base_url
from runbook_lib.run.starter_evidence import image_words
from runbook_lib.run.starter_evidence import classify as classify_service
from runbook_lib.run import starter_probe
from runbook_lib.run.starter_mode import production_values
from runbook_lib.run.starter_probe import Health, from_compose  # noqa: F401  (Health: re-exported)

#: observability image word -> the production key its published URL goes to
OBSERVABILITY_URLS: dict[str, str] = {
    "prometheus": "prometheus_url", "alertmanager": "alertmanager_url", "grafana": "grafana_url", "loki": "loki_url",
}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "[::1]", "::"}
_URL_RE = re.compile(r"https?://[^\s'\"|;&)`]+")


def classify(service: str, spec: dict[str, Any]) -> tuple[str, str]:
    """``(role, why)``: role is ``dependency``, ``observability`` or ``app``, why the evidence that decided
    it (:func:`runbook_lib.run.starter_evidence.classify`)."""
    c = classify_service(service, spec)
    return c.role, c.why


def healthcheck_url(spec: dict[str, Any]) -> str | None:
    """The first local HTTP URL in the service's healthcheck ``test`` (wget/curl http://127.0.0.1:PORT/path)."""
    hc = spec.get("healthcheck") or {}
    if hc.get("disable"):
        return None
    test = hc.get("test") or []
    text = " ".join(test) if isinstance(test, list) else str(test)
    for url in _URL_RE.findall(text):
        parts = urlsplit(url)
        if parts.hostname and (parts.hostname in _LOCAL_HOSTS or f"[{parts.hostname}]" in _LOCAL_HOSTS):
            return url
    return None


def published_urls(spec: dict[str, Any]) -> dict[int, str]:
    """Container port -> ``http://HOST:PUBLISHED`` for each published TCP port (:func:`host_base_url`, as phase 4
    asks them)."""
    out: dict[int, str] = {}
    for port in spec.get("ports") or []:
        base = host_base_url(port)
        if base and port.get("target") is not None:
            out.setdefault(int(port["target"]), base)
    return out


@dataclass
class Metrics:
    service: str
    url: str
    families: list[str]


@dataclass
class Starter:
    """What `runbook init` learned about a project, before it is written out."""

    project: str
    compose_files: list[Path]
    env_files: list[Path]
    apps: dict[str, str] = field(default_factory=dict)             # service -> why
    dependencies: dict[str, str] = field(default_factory=dict)
    observability: dict[str, str] = field(default_factory=dict)
    profile_only: dict[str, list[str]] = field(default_factory=dict)  # service -> its profiles
    secrets: dict[str, str] = field(default_factory=dict)          # name -> file path (or how it is given)
    health: list[Health] = field(default_factory=list)
    metrics: list[Metrics] = field(default_factory=list)
    metrics_note: str = ""
    production_urls: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (url, service)
    depends_on: dict[str, list[str]] = field(default_factory=dict)  # app -> the dependencies it names
    public_dependencies: list[str] = field(default_factory=list)  # reached from outside by design (TURN)
    kinds: dict[str, str] = field(default_factory=dict)            # service -> server kind ("" for an app)
    modes: dict[str, dict[str, str]] = field(default_factory=dict)  # app -> production mode values it sets


def resolve(files: Sequence[Path], env_files: Sequence[Path], project: str | None) -> tuple[dict, dict]:
    """The compose model twice: as the runner sees it (default profiles) and with every profile."""
    for f in [*files, *env_files]:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such file (give the compose files of your project, "
                             "e.g. `runbook init docker-compose.yml --env-file .env`)")
    default = Compose(files, project=project, env_files=env_files).config()
    every = Compose(files, project=project, env_files=env_files, env={"COMPOSE_PROFILES": "*"}).config()
    return default, every


def image_configs(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """image reference -> its Config, for the services' images the local engine has (a read of the engine's
    image store, nothing pulled); {} without an engine."""
    from runbook_lib.engine import Engine

    refs = sorted({str(spec["image"]) for spec in services.values() if spec.get("image")})
    if not refs:
        return {}
    try:
        engine = Engine(timeout=10)
        return {ref: engine.image_config(ref) for ref in refs}
    except RunbookError:
        return {}


def analyse(default: dict, every: dict, files: Sequence[Path], env_files: Sequence[Path], project: str,
            images: dict[str, dict[str, Any]] | None = None) -> Starter:
    """Sort the services (from the compose model and, in ``images``, their images' own config), list the
    file secrets, derive the health endpoints from healthchecks."""
    st = Starter(project, [Path(f).resolve() for f in files], [Path(f).resolve() for f in env_files])
    services = default.get("services") or {}
    for name, spec in sorted((every.get("services") or {}).items()):
        if name not in services:
            st.profile_only[name] = list(spec.get("profiles") or [])
            continue
        c = classify_service(name, spec, (images or {}).get(str(spec.get("image"))))
        st.kinds[name] = c.kind
        {"app": st.apps, "dependency": st.dependencies, "observability": st.observability}[c.role][name] = c.why
        if c.role == "dependency" and c.public:
            st.public_dependencies.append(name)
    for name, spec in sorted((every.get("secrets") or {}).items()):
        if spec.get("file"):
            st.secrets[name] = spec["file"]
        elif spec.get("environment"):
            st.secrets[name] = f"(from the environment variable {spec['environment']})"
        elif spec.get("external"):
            st.secrets[name] = "(external: managed outside Compose)"
    for name in st.apps:
        st.modes[name] = production_values(services[name])
        st.health.append(from_compose(name, healthcheck_url(services[name]), published_urls(services[name])))
        deps = services[name].get("depends_on") or {}
        st.depends_on[name] = [d for d in deps if d in st.dependencies]
    for name in st.observability:
        urls = published_urls(services[name])
        words = [*image_words(name, services[name]), st.kinds.get(name, "")]
        key = next((OBSERVABILITY_URLS[w] for w in words if w in OBSERVABILITY_URLS), None)
        if key and urls and key not in st.production_urls:
            st.production_urls[key] = (next(iter(urls.values())), name)
    return st


def stack_running(st: Starter) -> bool:
    """Does the project have a running container (Compose's own ``ps``)? No engine: no."""
    try:
        return bool(Compose(st.compose_files, project=st.project, env_files=st.env_files).ps(all_=False))
    except RunbookError:
        return False


def probe_endpoints(st: Starter, services: dict[str, Any], timeout: float = 2.0) -> None:
    """Replace each app service's health endpoint by what its published ports really answered
    (:func:`runbook_lib.run.starter_probe.probe`); call only with the stack running."""
    st.health = [starter_probe.probe(h.service, healthcheck_url(services[h.service]),
                                     published_urls(services[h.service]), timeout=timeout) for h in st.health]


def probe_metrics(st: Starter, services: dict[str, Any], timeout: float = 2.0, running: bool | None = None) -> None:
    """Ask ``/metrics`` on each app service's published TCP ports; keep the ones that answer 200 with
    Prometheus text (prometheus_client's parser, at least one sample). Nothing is invented: a service
    with no such answer gets no entry."""
    if not (stack_running(st) if running is None else running):
        st.metrics_note = (f"the stack (project {st.project}) was not running when `runbook init` ran, so no "
                           "/metrics endpoint was probed")
        return
    asked = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for name in st.apps:
            for base in published_urls(services[name]).values():
                url = base + "/metrics"
                asked.append(url)
                try:
                    r = client.get(url)
                    parsed = parse_metrics(r.text) if r.status_code == 200 else None
                except (httpx.HTTPError, ValueError):
                    continue
                if parsed and parsed.samples:
                    shown = [f + "_total" if t == "counter" and not f.endswith("_total") else f
                             for f, t in parsed.families.items()]
                    st.metrics.append(Metrics(name, url, sorted(shown)))
                    break
    found = {m.url for m in st.metrics}
    missed = [u for u in asked if u not in found]
    st.metrics_note = ("asked " + (", ".join(asked) if asked else "no published app port")
                       + (f"; no Prometheus text from {', '.join(missed)}" if missed else ""))


def build(files: Sequence[Path], env_files: Sequence[Path] = (), project: str | None = None,
          probe: bool = True) -> Starter:
    """Resolve, analyse and (when the stack runs) probe: everything :func:`render` needs."""
    if project is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project):
        raise InputError(f"--project {project!r}: a compose project name is lower-case letters, digits, "
                         "'-' and '_', starting with a letter or digit")
    default, every = resolve(files, env_files, project)
    name = project or default.get("name") or ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise InputError(f"the compose model has no usable project name ({name!r}): pass --project NAME")
    st = analyse(default, every, files, env_files, name, image_configs(default.get("services") or {}))
    if probe:
        running = stack_running(st)
        if running:
            probe_endpoints(st, default.get("services") or {})
        probe_metrics(st, default.get("services") or {}, running=running)
    else:
        st.metrics_note = "probing was turned off (--no-probe)"
    return st
