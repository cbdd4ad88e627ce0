"""The published-port rules (shared by lint and phase 2): the interfaces ports are bound to, well-known admin
and debug ports, plain HTTP beyond loopback; and how a list of published ports reads (grouped ranges)."""
from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from runbook_lib.lint.confinement import POOL_PORTS, in_pool
from runbook_lib.lint.rules import Verdict
from runbook_lib.model.facts import ServiceFacts
from runbook_lib.model.ports import container_ports, matching, narrowed

if TYPE_CHECKING:  # the rules only read it: `runbook lint` without --params never imports pydantic
    from runbook_lib.params import Security

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# Well-known admin and debug ports: published beyond loopback, each hands out control of the service.
ADMIN_PORTS = {
    9229: "Node.js inspector", 5005: "Java debug (JDWP)", 9222: "Chrome DevTools", 2375: "Docker API (plain)",
    2376: "Docker API", 8001: "Kong Admin API", 8444: "Kong Admin API (TLS)", 2019: "Caddy admin API",
    6060: "Go pprof", 15672: "RabbitMQ management", 8161: "ActiveMQ console", 4040: "Spark UI",
    5678: "Python debugger (debugpy)", 9001: "MinIO console / supervisord", 8500: "Consul HTTP API",
    10250: "kubelet API", 4444: "Selenium grid / Metasploit", 50070: "Hadoop NameNode UI",
}
# Container ports that speak plain HTTP by convention (a healthcheck probing http://...:PORT counts too).
HTTP_PORTS = {80, 3000, 4000, 5000, 5601, 8000, 8008, 8080, 8081, 8088, 8888, 9000, 9090, 9093}
_HTTP_PROBE_RE = re.compile(r"http://[^/\s:]+(?::(\d+))?")


def _port_int(value: Any) -> int:
    try:
        return _parse_port(value)
    except TypeError:  # not hashable: parsed as it comes
        return _parse_port.__wrapped__(value)


@functools.lru_cache(maxsize=4096, typed=True)
def _parse_port(value: Any) -> int:
    """The first port of ``value`` ("8080", "8000-8010", 8080) as an int; 0 when it is not one. The same
    few port strings come back for every service and rule: parsed once each."""
    try:
        return int(str(value).split("-")[0])
    except ValueError:
        return 0


def group_ports(ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive published ports (a `49152-65535` range) as one entry with `a-b` ports."""
    # (host_ip, protocol, container port, host port, entry), each port number parsed once; sorted by the
    # first three only (a stable sort: equal keys keep their order)
    rows = sorted(((p["host_ip"], p["protocol"], _port_int(p["container_port"]), _port_int(p["host_port"]), p)
                   for p in ports), key=lambda t: t[:3])
    groups: list[list[Any]] = []  # [first entry, last host port, last container port, count]
    for ip, proto, c, h, p in rows:
        last = groups[-1] if groups else None
        if last and last[0]["host_ip"] == ip and last[0]["protocol"] == proto and h == last[1] + 1 and c == last[2] + 1:
            last[1], last[2], last[3] = h, c, last[3] + 1
            continue
        groups.append([p, h, c, 1])
    out = []
    for p, h, c, n in groups:
        g = dict(p)
        if n > 1:
            g["host_port"], g["container_port"] = f"{h - n + 1}-{h}", f"{c - n + 1}-{c}"
        out.append(g)
    return out


def port_text(ports: list[dict[str, Any]]) -> str:
    """``0.0.0.0:8080->80/tcp, ...``; a port published without a host port reads ``0.0.0.0:(random)->80/tcp``."""
    return ", ".join(f"{p['host_ip'] or '0.0.0.0'}:{p['host_port'] or '(random)'}->{p['container_port']}/{p['protocol']}"
                     for p in group_ports(ports))


def _beyond_loopback(facts: ServiceFacts) -> list[dict[str, Any]]:
    return [p for p in facts.ports if (p["host_ip"] or "0.0.0.0") not in LOOPBACK]


#: Images whose whole purpose is an admin UI (by the image name's last path component, before the tag):
#: whatever port they publish is that UI. Adminer serves on 8080, which no port list can call an admin port.
ADMIN_IMAGES = {
    "adminer": "Adminer (database admin UI)", "phpmyadmin": "phpMyAdmin (database admin UI)",
    "pgadmin4": "pgAdmin (database admin UI)", "pgadmin": "pgAdmin (database admin UI)",
    "pgweb": "pgweb (database admin UI)", "mongo-express": "mongo-express (database admin UI)",
    "redis-commander": "Redis Commander (database admin UI)", "redisinsight": "RedisInsight (database admin UI)",
    "portainer": "Portainer (Docker admin UI)", "portainer-ce": "Portainer (Docker admin UI)",
}


def admin_image(image: str) -> str | None:
    """What admin UI ``image`` is (:data:`ADMIN_IMAGES`), or None."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return ADMIN_IMAGES.get(name)


def judge_admin_ports(facts: ServiceFacts) -> Verdict:
    """hardening.admin_ports: a well-known admin or debug port (:data:`ADMIN_PORTS`: the Node inspector's
    9229, an API gateway's admin API...) published beyond loopback is a FAIL, and so is any port of an image
    that is an admin UI (:data:`ADMIN_IMAGES`: Adminer, phpMyAdmin...). They are TCP services: a UDP
    port, or one inside a published range wider than :data:`~runbook_lib.lint.confinement.POOL_PORTS` (a relay's
    port pool: per-port entries in a run, or one grouped entry), is not one."""
    beyond = _beyond_loopback(facts)
    pooled = in_pool(beyond) | {id(p) for p in beyond if len(container_ports(p)) > POOL_PORTS}
    ui = admin_image(facts.image)
    exposed = [(p, port, ADMIN_PORTS.get(port) or f"{ui}, image {facts.image}") for p in beyond
               if p["protocol"] == "tcp" and id(p) not in pooled
               for port in (container_ports(p) if ui else matching(p, ADMIN_PORTS))]
    ev = {"source": facts.source, "admin_ports": [{"port": port, "what": w, "host_ip": p["host_ip"] or "0.0.0.0"}
                                                  for p, port, w in exposed]}
    expected = "no admin or debug port published beyond loopback"
    if exposed:
        return Verdict("FAIL", expected, "; ".join(f"{w} on {port_text([narrowed(p, port)])}"
                                                   for p, port, w in exposed), ev)
    published = len(group_ports(facts.ports))
    return Verdict("PASS", expected, f"{published} published port(s), none a known admin/debug port beyond loopback"
                   if published else "publishes no port", ev)


def judge_tls(facts: ServiceFacts, security: Security) -> Verdict:
    """hardening.tls: plain HTTP published beyond loopback (a conventional HTTP container port, or one its
    healthcheck probes over http://) is a FAIL, unless the service is behind a TLS terminator
    (``security.tls_terminated`` or the label ``runbook.tls-terminated: "true"``). Port 80 published beside
    443 by the same service is INFO: the usual redirect to HTTPS."""
    probed = {int(m.group(1) or 80) for m in _HTTP_PROBE_RE.finditer(" ".join(facts.argv.get("healthcheck", [])))}
    http = [p for p in _beyond_loopback(facts) if p["protocol"] == "tcp" and matching(p, HTTP_PORTS | probed)]
    terminated = facts.service in security.tls_terminated or \
        facts.labels.get("runbook.tls-terminated", "").lower() in ("true", "yes", "1")
    ev = {"source": facts.source, "plain_http": group_ports(http), "healthcheck_http_ports": sorted(probed),
          "tls_terminated": terminated}
    expected = "no plain HTTP published beyond loopback (or a TLS terminator in front)"
    if http and terminated:
        return Verdict("PASS", expected, f"plain HTTP on {port_text(http)}, behind a TLS terminator", ev)
    tls = [p for p in _beyond_loopback(facts) if 443 in container_ports(p) and p["protocol"] == "tcp"]
    if http and tls and all(matching(p, HTTP_PORTS | probed) == [80] for p in http):
        return Verdict("INFO", expected, f"port 80 published beside 443 ({port_text(http)}, {port_text(tls)}): the "
                       "usual redirect to HTTPS", {**ev, "beside_https": group_ports(tls)}, severity="info")
    if http:
        return Verdict("FAIL", expected, f"plain HTTP published on {port_text(http)}", ev)
    beyond = _beyond_loopback(facts)
    return Verdict("PASS", expected, f"{len(group_ports(beyond))} port(s) beyond loopback, none plain HTTP"
                   if beyond else "no port published beyond loopback", ev)


def judge_ports(facts: ServiceFacts, security: Security) -> Verdict:
    """hardening.published_ports: every published port is bound to an allowed interface. A port on any
    other interface ("" = every interface, 0.0.0.0) is a FAIL for a service the parameters mark internal
    and a WARN otherwise."""
    allowed = set(security.publish_interfaces)
    anywhere = bool(allowed & {"0.0.0.0", "::"})
    bad = [p for p in facts.ports if not anywhere and (p["host_ip"] or "0.0.0.0") not in allowed]
    internal = facts.service in security.internal_services
    ev = {"source": facts.source, "ports": facts.ports, "allowed_interfaces": sorted(allowed), "internal": internal}
    expected = f"ports published only on {', '.join(sorted(allowed))}" + ("; internal service" if internal else "")
    ev["ports"] = group_ports(facts.ports)
    if bad:
        text = port_text(bad)
        if internal:
            return Verdict("FAIL", expected, f"internal service published on {text}", ev)
        return Verdict("WARN", expected, f"published on {text}", ev, severity="medium")
    if not facts.ports:
        return Verdict("PASS", expected, "publishes no port", ev)
    inside = [f"{p['host_ip']}:{p['host_port']}" for p in facts.ports if p.get("ip_in_published")]
    if inside:  # bound where the author meant, if the engine takes it: Docker Engine 20.10 refuses it at create
        return Verdict("WARN", expected, f"host IP written inside `published:` ({', '.join(inside)}): the engine may "
                       "refuse it (\"invalid port specification\"); write it as `host_ip:`", ev, severity="low")
    return Verdict("PASS", expected, ", ".join(f"{p['host_ip']}:{p['host_port']}" for p in ev["ports"]), ev)
