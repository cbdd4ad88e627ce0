"""`runbook init`: a commented starter parameters file, read from a project's own compose model.

Everything written comes from ``docker compose config`` (all profiles, through :class:`Compose`) or from
a real probe of the running stack; what only a person can decide is left as a ``# TODO:`` line, with
the least-claiming value that still validates (a drill endpoint's ``expect: may_fail``). The file holds
no secret value: file secrets are listed by name and path in a comment.

How services are sorted (the rule is also written into the generated file):

* **dependencies**: named data stores and brokers, recognised by the image name (its last path component,
  before the tag: ``bitnami/postgresql:16`` -> ``postgresql``; the service name when there is no image)
  having a ``-``/``_``/``.``-separated word that starts with one of :data:`DATA_STORES`, unless another
  word marks it as a tool around one (:data:`TOOL_WORDS`: ``redis_exporter``, ``mongo-express``);
* **observability**: Prometheus, Alertmanager, Grafana, Loki and friends, by the same rule
  (:data:`OBSERVABILITY`); their published ports become ``production.*_url``;
* **app services**: every other service.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx

from runbook_lib.engine.compose import Compose
from runbook_lib.errors import InputError, RunbookError
from runbook_lib.drills.probes import parse_metrics

DATA_STORES: tuple[str, ...] = (
    "redis", "valkey", "keydb", "postgres", "postgis", "timescale", "mysql", "mariadb", "percona", "mongo",
    "cassandra", "scylla", "couchdb", "couchbase", "minio", "rabbitmq", "activemq", "artemis", "kafka",
    "redpanda", "zookeeper", "elasticsearch", "opensearch", "solr", "memcached", "etcd", "nats", "clickhouse",
    "influxdb", "neo4j", "mssql", "cockroach", "pulsar", "localstack", "seaweedfs", "dragonfly",
)
OBSERVABILITY: tuple[str, ...] = (
    "prometheus", "alertmanager", "grafana", "loki", "promtail", "tempo", "jaeger", "otel", "opentelemetry",
    "cadvisor", "exporter", "pushgateway", "fluent", "logstash", "kibana",
)
TOOL_WORDS: frozenset[str] = frozenset({
    "exporter", "express", "ui", "commander", "admin", "insight", "console", "web", "manager", "browser",
})
#: observability image word -> the production key its published URL goes to
OBSERVABILITY_URLS: dict[str, str] = {
    "prometheus": "prometheus_url", "alertmanager": "alertmanager_url", "grafana": "grafana_url", "loki": "loki_url",
}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "[::1]", "::"}
_URL_RE = re.compile(r"https?://[^\s'\"|;&)`]+")


def image_words(service: str, spec: dict[str, Any]) -> list[str]:
    """The words of a service's image name (last path component, tag and digest removed)."""
    image = str(spec.get("image") or service)
    base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0].lower()
    return [w for w in re.split(r"[-_.]", base) if w]


def classify(service: str, spec: dict[str, Any]) -> tuple[str, str]:
    """``(kind, why)``: kind is ``dependency``, ``observability`` or ``app``; why names the matched word."""
    words = image_words(service, spec)
    image = spec.get("image") or f"(no image: service name {service})"
    for word in words:
        obs = next((o for o in OBSERVABILITY if word.startswith(o)), None)
        if obs:
            return "observability", f"image {image}: {obs}"
    if not TOOL_WORDS.intersection(words):
        for word in words:
            store = next((d for d in DATA_STORES if word.startswith(d)), None)
            if store:
                return "dependency", f"image {image}: {store}"
    return "app", f"image {image}"


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


def _container_port(url: str) -> int | None:
    try:
        parts = urlsplit(url)
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


def published_urls(spec: dict[str, Any]) -> dict[int, str]:
    """Container port -> ``http://HOST:PUBLISHED`` for each published TCP port (smoke.host_base_url)."""
    from runbook_lib.phases.smoke import host_base_url

    out: dict[int, str] = {}
    for port in spec.get("ports") or []:
        base = host_base_url(port)
        if base and port.get("target") is not None:
            out.setdefault(int(port["target"]), base)
    return out


@dataclass
class Health:
    service: str
    url: str | None          # host URL for smoke.endpoints, None when not reachable from the host
    note: str                # where it came from
    todo: str = ""           # what a person must confirm


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


def resolve(files: Sequence[Path], env_files: Sequence[Path], project: str | None) -> tuple[dict, dict]:
    """The compose model twice: as the runner sees it (default profiles) and with every profile."""
    for f in [*files, *env_files]:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such file (give the compose files of your project, "
                             "e.g. `runbook init docker-compose.yml --env-file .env`)")
    default = Compose(files, project=project, env_files=env_files).config()
    every = Compose(files, project=project, env_files=env_files, env={"COMPOSE_PROFILES": "*"}).config()
    return default, every


def analyse(default: dict, every: dict, files: Sequence[Path], env_files: Sequence[Path], project: str) -> Starter:
    """Sort the services, list the file secrets, derive the health endpoints from healthchecks."""
    st = Starter(project, [Path(f).resolve() for f in files], [Path(f).resolve() for f in env_files])
    services = default.get("services") or {}
    for name, spec in sorted((every.get("services") or {}).items()):
        if name not in services:
            st.profile_only[name] = list(spec.get("profiles") or [])
            continue
        kind, why = classify(name, spec)
        {"app": st.apps, "dependency": st.dependencies, "observability": st.observability}[kind][name] = why
    for name, spec in sorted((every.get("secrets") or {}).items()):
        if spec.get("file"):
            st.secrets[name] = spec["file"]
        elif spec.get("environment"):
            st.secrets[name] = f"(from the environment variable {spec['environment']})"
        elif spec.get("external"):
            st.secrets[name] = "(external: managed outside Compose)"
    for name in st.apps:
        st.health.append(_health_of(name, services[name]))
        deps = services[name].get("depends_on") or {}
        st.depends_on[name] = [d for d in deps if d in st.dependencies]
    for name in st.observability:
        urls = published_urls(services[name])
        words = image_words(name, services[name])
        key = next((OBSERVABILITY_URLS[w] for w in words if w in OBSERVABILITY_URLS), None)
        if key and urls and key not in st.production_urls:
            st.production_urls[key] = (next(iter(urls.values())), name)
    return st


def _health_of(name: str, spec: dict[str, Any]) -> Health:
    urls = published_urls(spec)
    hc = healthcheck_url(spec)
    if hc:
        port = _container_port(hc)
        parts = urlsplit(hc)
        path = parts.path or "/"
        path += f"?{parts.query}" if parts.query else ""
        if port in urls:
            return Health(name, urls[port] + path, f"from its healthcheck ({hc} inside the container)")
        return Health(name, None, f"its healthcheck asks {hc} inside the container, and port {port} is not "
                      "published: not reachable from the host")
    if urls:
        return Health(name, next(iter(urls.values())) + "/health", "its first published port",
                      todo=f"{name} has no HTTP healthcheck: /health is assumed; confirm the path")
    return Health(name, None, "no HTTP healthcheck and no published port")


def stack_running(st: Starter) -> bool:
    """Does the project have a running container (Compose's own ``ps``)? No engine: no."""
    try:
        return bool(Compose(st.compose_files, project=st.project, env_files=st.env_files).ps(all_=False))
    except RunbookError:
        return False


def probe_metrics(st: Starter, services: dict[str, Any], timeout: float = 2.0) -> None:
    """Ask ``/metrics`` on each app service's published TCP ports; keep the ones that answer 200 with
    Prometheus text (prometheus_client's parser, at least one sample). Nothing is invented: a service
    with no such answer gets no entry."""
    if not stack_running(st):
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
    st = analyse(default, every, files, env_files, name)
    if probe:
        probe_metrics(st, default.get("services") or {})
    else:
        st.metrics_note = "probing was turned off (--no-probe)"
    return st


def write(st: Starter, out: Path, *, force: bool = False, create_parent: bool = False) -> Path:
    """Render, check that the text validates with load_params, then write ``out`` (refusing to overwrite
    an existing file unless ``force``). ``create_parent``: create ``out``'s directory when missing (the
    default ``parameters/``), and remove it again when nothing could be written."""
    from runbook_lib.run.params import load_params
    from runbook_lib.run.starter_render import render

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
