"""How `runbook init` sorts a service into app / dependency / observability: from every piece of evidence
the compose model holds, not the image name alone, and with the reason written out.

A service is read for *clues*, each naming a kind of server (``mysql``, ``postgres``, ``redis``, ``turn``,
``prometheus``...) and where it was seen:

* **strong** clues settle it alone: a data-store word in the image name (its last path component before
  the tag, unless another word marks a tool around one: ``redis_exporter``, ``mongo-express``), the
  healthcheck running the server's own client (``mysqladmin ping``, ``pg_isready``, ``redis-cli ping``...),
  the command or entrypoint starting the server binary (``mysqld``, ``postgres``, ``redis-server``,
  ``turnserver``...), a volume mounted on the server's data directory (``/var/lib/mysql``,
  ``/var/lib/postgresql/data``...);
* **hints** need a second one from another place: a data-store word in the service name (or ``db``,
  ``database``, ``cache``, ``broker``, ``queue``), a container port (3306, 5432, 6379, 27017, 3478...), server
  environment variables (``MYSQL_*``, ``POSTGRES_*``, ``MONGO_INITDB_*``...; a prefix whose variables name
  a host, URL or address is a *client's* configuration and counts for nothing), a generic data volume
  (``/data`` for Redis).

When the engine has the service's image, its own config (entrypoint, command, healthcheck, exposed ports,
volumes, environment names) gives clues too, where the compose model does not override it
(:func:`image_defaults`); they are marked "(in the image)".

The kind with the most weight wins; observability by its image name first (Prometheus, Grafana, Loki...).
A service with no strong clue and fewer than two hints is an app service, and its reason says which hint
was seen and judged too weak. Only variable *names* and binary names are ever quoted, never a value or a
whole command line (a healthcheck may carry a password).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Iterable

#: image-name words of data stores and brokers (a word *starting* with one of these)
DATA_STORES: tuple[str, ...] = (
    "redis", "valkey", "keydb", "postgres", "postgis", "timescale", "mysql", "mariadb", "percona", "mongo",
    "cassandra", "scylla", "couchdb", "couchbase", "minio", "rabbitmq", "activemq", "artemis", "kafka",
    "redpanda", "zookeeper", "elasticsearch", "opensearch", "solr", "memcached", "etcd", "nats", "clickhouse",
    "influxdb", "neo4j", "mssql", "cockroach", "pulsar", "localstack", "seaweedfs", "dragonfly", "coturn",
    "turnserver", "turn", "stun", "eturnal",
)
OBSERVABILITY: tuple[str, ...] = (
    "prometheus", "alertmanager", "grafana", "loki", "promtail", "tempo", "jaeger", "otel", "opentelemetry",
    "cadvisor", "exporter", "pushgateway", "fluent", "logstash", "kibana",
)
TOOL_WORDS: frozenset[str] = frozenset({
    "exporter", "express", "ui", "commander", "admin", "insight", "console", "web", "manager", "browser",
})
#: service-name words that say "a data store" without saying which
GENERIC_NAMES: frozenset[str] = frozenset({"db", "database", "cache", "broker", "queue", "mq", "turn", "stun"})
#: environment suffixes of a client's connection settings (MYSQL_HOST: the service *uses* MySQL)
CLIENT_SUFFIXES: tuple[str, ...] = ("_HOST", "_HOSTNAME", "_SERVER", "_SERVERS", "_ADDR", "_ADDRESS", "_URL",
                                    "_URI", "_DSN", "_BROKERS", "_BOOTSTRAP_SERVERS", "_ENDPOINT", "_SEEDS")
#: variables that end like a client's but belong to the server image
SERVER_ONLY_ENV: frozenset[str] = frozenset({"MYSQL_ROOT_HOST", "MARIADB_ROOT_HOST", "KAFKA_ADVERTISED_LISTENERS"})


@dataclass(frozen=True)
class Server:
    """What one kind of server looks like from the compose model."""

    kind: str                      # short name, e.g. "mysql"
    label: str                     # what a person calls it
    role: str = "dependency"       # or "observability"
    words: tuple[str, ...] = ()    # image/service-name word prefixes
    health: tuple[tuple[str, str], ...] = ()  # (regex over the healthcheck test, what to print)
    binaries: tuple[str, ...] = ()  # server executables (command/entrypoint)
    ports: tuple[int, ...] = ()
    env: tuple[str, ...] = ()      # server environment prefixes (or whole names)
    volumes: tuple[str, ...] = ()  # data directories (the target or a path under it)
    hint_volumes: tuple[str, ...] = ()  # generic data directories: a hint only
    public: bool = False           # reached from outside by design (not an internal service)


SERVERS: tuple[Server, ...] = (
    Server("mysql", "MySQL/MariaDB database", words=("mysql", "mariadb", "percona"),
           health=((r"\bmysqladmin\b[^;|&]*\bping\b", "mysqladmin ping"),
                   (r"\bmariadb-admin\b[^;|&]*\bping\b", "mariadb-admin ping"),
                   (r"\bhealthcheck\.sh\b[^;|&]*--(connect|innodb_initialized)", "healthcheck.sh --connect")),
           binaries=("mysqld", "mariadbd", "mysqld_safe"), ports=(3306, 33060), env=("MYSQL_", "MARIADB_"),
           volumes=("/var/lib/mysql", "/bitnami/mysql", "/bitnami/mariadb")),
    Server("postgres", "PostgreSQL database", words=("postgres", "postgis", "timescale"),
           health=((r"\bpg_isready\b", "pg_isready"),), binaries=("postgres", "postmaster"), ports=(5432,),
           env=("POSTGRES_", "PGDATA"), volumes=("/var/lib/postgresql", "/bitnami/postgresql")),
    Server("redis", "Redis-compatible key-value store", words=("redis", "valkey", "keydb", "dragonfly"),
           health=((r"\b(redis|valkey|keydb)-cli\b[^;|&]*\bping\b", "redis-cli ping"),),
           binaries=("redis-server", "valkey-server", "keydb-server", "dragonfly"), ports=(6379,),
           env=("REDIS_ARGS", "ALLOW_EMPTY_PASSWORD"), volumes=("/bitnami/redis", "/var/lib/redis"),
           hint_volumes=("/data",)),
    Server("mongo", "MongoDB database", words=("mongo",), health=((r"\bmongo(sh)?\b[^;|&]*\bping\b", "mongosh ping"),),
           binaries=("mongod",), ports=(27017,), env=("MONGO_INITDB_",), volumes=("/data/db", "/data/configdb")),
    Server("minio", "MinIO object store", words=("minio",),
           health=((r"\bmc\b[^;|&]*\bready\b", "mc ready"), (r"/minio/health/", "/minio/health")),
           binaries=("minio",), ports=(9000,), env=("MINIO_ROOT_", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")),
    Server("rabbitmq", "RabbitMQ broker", words=("rabbitmq",),
           health=((r"\brabbitmq-diagnostics\b", "rabbitmq-diagnostics"), (r"\brabbitmqctl\b", "rabbitmqctl")),
           binaries=("rabbitmq-server",), ports=(5672,), env=("RABBITMQ_DEFAULT_", "RABBITMQ_ERLANG_COOKIE"),
           volumes=("/var/lib/rabbitmq",)),
    Server("memcached", "Memcached", words=("memcached",), binaries=("memcached",), ports=(11211,)),
    Server("elasticsearch", "Elasticsearch/OpenSearch", words=("elasticsearch", "opensearch", "solr"),
           health=((r"_cluster/health", "_cluster/health"),), ports=(9200,),
           env=("ELASTIC_PASSWORD", "ES_JAVA_OPTS", "OPENSEARCH_JAVA_OPTS", "discovery.type"),
           volumes=("/usr/share/elasticsearch/data", "/usr/share/opensearch/data")),
    Server("kafka", "Kafka broker", words=("kafka", "redpanda"),
           health=((r"\bkafka-(topics|broker-api-versions)\b", "kafka-topics"), (r"\brpk\b", "rpk")),
           ports=(9092,), env=("KAFKA_CFG_", "KAFKA_BROKER_ID", "KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES"),
           volumes=("/var/lib/kafka", "/bitnami/kafka")),
    Server("zookeeper", "ZooKeeper", words=("zookeeper",), health=((r"\bruok\b", "ruok"),), ports=(2181,),
           env=("ZOO_",), volumes=("/var/lib/zookeeper", "/bitnami/zookeeper")),
    Server("etcd", "etcd", words=("etcd",), health=((r"\betcdctl\b", "etcdctl"),), binaries=("etcd",),
           ports=(2379,), env=("ETCD_",), volumes=("/etcd-data", "/bitnami/etcd")),
    Server("nats", "NATS", words=("nats",), binaries=("nats-server",), ports=(4222,)),
    Server("cassandra", "Cassandra/Scylla", words=("cassandra", "scylla"),
           health=((r"\bcqlsh\b", "cqlsh"), (r"\bnodetool\b", "nodetool")), ports=(9042,), env=("CASSANDRA_",),
           volumes=("/var/lib/cassandra", "/var/lib/scylla")),
    Server("clickhouse", "ClickHouse", words=("clickhouse",), health=((r"\bclickhouse-client\b", "clickhouse-client"),),
           binaries=("clickhouse-server",), ports=(8123,), env=("CLICKHOUSE_",), volumes=("/var/lib/clickhouse",)),
    Server("other-store", "data store", words=tuple(w for w in DATA_STORES if w not in {
        "redis", "valkey", "keydb", "dragonfly", "postgres", "postgis", "timescale", "mysql", "mariadb", "percona",
        "mongo", "minio", "rabbitmq", "memcached", "elasticsearch", "opensearch", "solr", "kafka", "redpanda",
        "zookeeper", "etcd", "nats", "cassandra", "scylla", "clickhouse", "coturn", "turnserver", "turn", "stun",
        "eturnal"})),
    Server("turn", "TURN/STUN server", words=("coturn", "turnserver", "turn", "stun", "eturnal"),
           health=((r"\bturnutils_\w+", "turnutils"),), binaries=("turnserver",), ports=(3478, 5349), public=True),
    Server("prometheus", "Prometheus", role="observability", health=((r"/-/(healthy|ready)\b", "/-/healthy"),),
           binaries=("prometheus",), ports=(9090,), volumes=("/prometheus", "/etc/prometheus")),
    Server("alertmanager", "Alertmanager", role="observability", binaries=("alertmanager",), ports=(9093,),
           volumes=("/etc/alertmanager", "/alertmanager")),
    Server("grafana", "Grafana", role="observability", env=("GF_",), volumes=("/var/lib/grafana", "/etc/grafana")),
    Server("loki", "Loki", role="observability", ports=(3100,), volumes=("/loki", "/etc/loki")),
    Server("otel", "OpenTelemetry collector", role="observability", ports=(4317, 4318)),
)
_SERVER = {s.kind: s for s in SERVERS}


@dataclass(frozen=True)
class Clue:
    kind: str       # a Server.kind, or "" for "some data store" (a generic service name)
    source: str     # image, healthcheck, command, volume, service name, port, environment
    text: str       # what was seen, for the reason
    strong: bool


@dataclass(frozen=True)
class Classification:
    """The verdict on one service: its role, the server kind (when not an app) and the reason."""

    role: str       # app, dependency, observability
    kind: str       # Server.kind or "" (app, or a generic data store)
    why: str

    @property
    def public(self) -> bool:
        """A dependency that is reached from outside by design (a TURN server), so not internal."""
        return self.kind in _SERVER and _SERVER[self.kind].public


def words_of(name: str) -> list[str]:
    return [w for w in re.split(r"[-_.]", name.lower()) if w]


def image_words(service: str, spec: dict[str, Any]) -> list[str]:
    """The words of a service's image name (last path component, tag and digest removed)."""
    image = str(spec.get("image") or service)
    return words_of(image.split("@")[0].rsplit("/", 1)[-1].split(":")[0])


def _first_server(words: Iterable[str], role: str) -> Server | None:
    for word in words:
        for s in SERVERS:
            if s.role == role and any(word.startswith(w) for w in s.words):
                return s
    return None


def _tokens(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    try:
        return shlex.split(str(value))
    except ValueError:
        return str(value).split()


def _program_names(spec: dict[str, Any]) -> list[str]:
    """Basenames of the programs a service starts: the first word of its entrypoint and command, and in a
    ``sh -c`` script the first word and each word after ``exec``."""
    out = []
    for tokens in (_tokens(spec.get("entrypoint")), _tokens(spec.get("command"))):
        if not tokens:
            continue
        out.append(tokens[0])
        if tokens[0].rsplit("/", 1)[-1] in {"sh", "bash", "ash", "dash"} and "-c" in tokens[1:-1]:
            script = _tokens(tokens[tokens.index("-c") + 1])
            out += script[:1] + [script[i + 1] for i, t in enumerate(script[:-1]) if t == "exec"]
    return [t.rsplit("/", 1)[-1] for t in out]


def _healthcheck_text(spec: dict[str, Any]) -> str:
    hc = spec.get("healthcheck") or {}
    if hc.get("disable"):
        return ""
    test = hc.get("test") or []
    if isinstance(test, list):
        test = [t for t in test if t not in ("CMD", "CMD-SHELL", "NONE")]
        return " ".join(str(t) for t in test)
    return str(test)


def container_ports(spec: dict[str, Any]) -> list[int]:
    """The container ports a service publishes or exposes."""
    out: list[int] = []
    for p in spec.get("ports") or []:
        target = p.get("target") if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/")[0]
        try:
            out.append(int(target))
        except (TypeError, ValueError):
            continue
    for e in spec.get("expose") or []:
        first = str(e).split("/")[0].split("-")[0]
        if first.isdigit():
            out.append(int(first))
    return out


def _env_names(spec: dict[str, Any]) -> list[str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        return [str(e).split("=", 1)[0] for e in env]
    return list(env)


def _volume_targets(spec: dict[str, Any]) -> list[str]:
    out = []
    for v in spec.get("volumes") or []:
        target = v.get("target") if isinstance(v, dict) else (str(v).split(":")[1] if ":" in str(v) else str(v))
        if target:
            out.append("/" + str(target).strip("/"))
    return out


def _under(target: str, dirs: Iterable[str]) -> str | None:
    return next((d for d in dirs if target == d or target.startswith(d + "/")), None)


_HOST_OPTION = re.compile(r"(?:^|\s)(?:-h\s*|--host[=\s]+)([^\s;|&]+)")
_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "$(hostname)", "$$(hostname)", "`hostname`"})


def _asks_another_host(hc: str, service: str) -> bool:
    """Does the healthcheck point its client at another service (``pg_isready -h db``)? Then the container
    only *uses* that server: a wait-for-the-database check, not the server's own."""
    hosts = [h.strip("'\"") for h in _HOST_OPTION.findall(hc)]
    return any(h and h not in _LOCAL_NAMES and h != service for h in hosts)


def _content_clues(service: str, spec: dict[str, Any], where: str = "") -> list[Clue]:
    """Clues from what a service runs: healthcheck, program, volumes, ports, environment names."""
    clues: list[Clue] = []
    hc = _healthcheck_text(spec)
    hc = "" if _asks_another_host(hc, service) else hc
    programs = _program_names(spec)
    targets = _volume_targets(spec)
    env = _env_names(spec)
    ports = container_ports(spec)
    for s in SERVERS:
        for regex, shown in s.health:
            if hc and re.search(regex, hc):
                verb = "asks" if shown.startswith("/") else "runs"
                clues.append(Clue(s.kind, "healthcheck", f"healthcheck{where} {verb} {shown}", True))
                break
        for prog in programs:
            if prog in s.binaries:
                clues.append(Clue(s.kind, "command", f"starts {prog}{where}", True))
                break
        for t in targets:
            if _under(t, s.volumes) or _under(t, s.hint_volumes):
                clues.append(Clue(s.kind, "volume", f"volume on {t}{where}", bool(_under(t, s.volumes))))
                break
        seen = sorted({p for p in ports if p in s.ports})
        if seen:
            clues.append(Clue(s.kind, "port", "container port " + ", ".join(map(str, seen)) + where, False))
        mine = [n for n in env if any(n.startswith(pre) for pre in s.env)]
        family = tuple({pre.split("_")[0] + "_" for pre in s.env})
        client = [n for n in env if n.startswith(family) and n.endswith(CLIENT_SUFFIXES) and n not in SERVER_ONLY_ENV]
        if mine and not client:
            shown = ", ".join(mine[:4]) + (f" and {len(mine) - 4} more" if len(mine) > 4 else "")
            clues.append(Clue(s.kind, "environment", f"environment {shown}{where}", False))
    return clues


def image_defaults(spec: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """What the image's own config (``docker image inspect`` Config) adds to a service the compose model
    does not override: entrypoint, command, healthcheck, exposed ports, volumes, environment names."""
    out: dict[str, Any] = {}
    if not spec.get("entrypoint") and config.get("Entrypoint"):
        out["entrypoint"] = config["Entrypoint"]
    if not spec.get("command") and not spec.get("entrypoint") and config.get("Cmd"):
        out["command"] = config["Cmd"]
    if "healthcheck" not in spec and (config.get("Healthcheck") or {}).get("Test"):
        out["healthcheck"] = {"test": config["Healthcheck"]["Test"]}
    out["expose"] = list(config.get("ExposedPorts") or {})
    out["volumes"] = [{"target": v} for v in config.get("Volumes") or {}]
    out["environment"] = {str(e).split("=", 1)[0]: None for e in config.get("Env") or []}
    return out


def gather(service: str, spec: dict[str, Any], image_config: dict[str, Any] | None = None) -> list[Clue]:
    """Every clue the compose model (and, when given, the image's own config) holds about what ``service``
    is (see the module docstring). A clue the image adds of a kind and place the compose model already
    showed is left out."""
    clues: list[Clue] = []
    iwords = image_words(service, spec)
    image = spec.get("image")
    if not TOOL_WORDS.intersection(iwords):
        s = _first_server(iwords, "dependency")
        if s:
            where = f"image {image}" if image else f"service name {service} (no image)"
            clues.append(Clue(s.kind, "image", where, True))
    clues += _content_clues(service, spec)
    if image_config:
        known = {(c.kind, c.source) for c in clues}
        clues += [c for c in _content_clues(service, image_defaults(spec, image_config), " (in the image)")
                  if (c.kind, c.source) not in known]
    swords = words_of(service)
    s = None if TOOL_WORDS.intersection(swords) else _first_server(swords, "dependency")
    if s and image:
        clues.append(Clue(s.kind, "service name", f"service name {service}", False))
    elif GENERIC_NAMES.intersection(swords) and not TOOL_WORDS.intersection(swords):
        clues.append(Clue("", "service name", f"service name {service}", False))
    return clues


def classify(service: str, spec: dict[str, Any], image_config: dict[str, Any] | None = None) -> Classification:
    """App, dependency or observability, from every clue (module docstring), with the reason.
    ``image_config``: the image's Config when the engine has the image (its clues say "in the image")."""
    image = spec.get("image") or "(none: built from source)"
    iwords = image_words(service, spec)
    obs = next((o for w in iwords for o in OBSERVABILITY if w.startswith(o)), None)
    if obs:
        return Classification("observability", obs, f"image {image} names {obs}")
    clues = gather(service, spec, image_config)
    generic = [c for c in clues if not c.kind]
    best: tuple[int, Server, list[Clue]] | None = None
    for kind in dict.fromkeys(c.kind for c in clues if c.kind):
        server = _SERVER[kind]
        mine = [c for c in clues if c.kind == kind] + (generic if server.role == "dependency" else [])
        strong = any(c.strong for c in mine)
        if not strong and len({c.source for c in mine}) < 2:
            continue
        score = sum(2 if c.strong else 1 for c in mine)
        if best is None or score > best[0]:
            best = (score, server, mine)
    if best is None:
        hints = "; ".join(c.text for c in clues)
        return Classification("app", "", f"image {image}; nothing marks a data store, broker or observability tool"
                              + (f" (one weak hint only: {hints})" if hints else ""))
    _, server, mine = best
    why = f"{server.label}: " + "; ".join(c.text for c in mine)
    if server.public:
        why += "; reached from outside by design, so not an internal service"
    return Classification(server.role, server.kind, why)
