"""The ports of a service of the resolved compose model, read the way the engine will bind them.

``docker compose config`` prints each port as ``{target, published, host_ip, protocol}``, but leaves some
of what a person wrote inside ``published``:

- no ``published`` at all (``- "80"``, ``- "70-8000"``): the engine binds each port on every interface,
  on a random host port. It is published all the same: ``host_port`` is ``""`` (:data:`RANDOM`).
- a host IP inside ``published`` (long syntax: ``published: "127.0.0.1:8080"``, ``"[::1]:8080"``): the
  port is bound on that IP only (Docker Engine 20.10 refuses the form at create: hardening.published_ports
  says so, at low severity).
- a host range (``"9000-9001:90"``): one container port, bound on one free host port of the range.

A value that is none of these (``published: abc``, ``published: 127.0.0.1:8080-80x``) is an
:class:`~runbook_lib.errors.InputError` naming the service and the port, never a crash.

Compose expands a container range (``"49152-65535:49152-65535/udp"``) into one entry per port: the
entries are grouped back into ranges here, once, before any rule reads them (:func:`compose_ports`).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from runbook_lib.errors import InputError

# the host port of a port published without one: the engine picks a free one at `up`
RANDOM = ""
_PORT = r"\d{1,5}"
_PUBLISHED_RE = re.compile(rf"^(?:(?P<ip>\[[0-9A-Fa-f:.%\w]+\]|[0-9A-Za-z:.%_-]*):)?(?P<lo>{_PORT})(?:-(?P<hi>{_PORT}))?$")


def _port(value: str, name: str, where: str) -> int:
    n = int(value)
    if not 0 < n < 65536:
        raise InputError(f"service {name}: {where}: port {n} is out of range (1-65535)")
    return n


def split_published(published: Any, host_ip: str, name: str, where: str) -> tuple[str, int, int]:
    """(host IP, first host port, last host port) of one model port's ``published`` (0, 0: a random host
    port). A host IP written inside ``published`` wins over none; an IPv6 address loses its brackets."""
    text = "" if published is None else str(published).strip()
    if not text:
        return host_ip, 0, 0
    m = _PUBLISHED_RE.match(text)
    if not m:
        raise InputError(f"service {name}: {where}: published {text!r} is not a host port, a range "
                         "(8000-8010) or HOST_IP:PORT: fix the compose file")
    lo = _port(m.group("lo"), name, where)
    hi = _port(m.group("hi"), name, where) if m.group("hi") else lo
    if hi < lo:
        raise InputError(f"service {name}: {where}: published range {text!r} ends before it starts")
    ip = (m.group("ip") or "").strip("[]")
    if ip and host_ip and ip != host_ip:
        raise InputError(f"service {name}: {where}: host_ip {host_ip!r} and published {text!r} name two addresses")
    return ip or host_ip, lo, hi


def _target(p: Mapping[str, Any], name: str, where: str) -> int:
    try:
        return _port(str(p.get("target")).strip(), name, where)
    except ValueError:
        raise InputError(f"service {name}: {where}: target {p.get('target')!r} is not a container port") from None


def _rows(spec: Mapping[str, Any], name: str) -> list[tuple[str, str, int, int, int, int, bool]]:
    """(host IP, protocol, first host port, last host port, first container port, last container port,
    whether the host IP was written inside ``published``) per model entry, validated. The container ports
    are a range only for a range grouped before Compose expanded it (``target_end``, host ports aligned);
    else a host range is bound to one container port."""
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        raise InputError(f"service {name}: ports is not a list")
    rows = []
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            raise InputError(f"service {name}: ports[{i}]: {p!r} is not a port mapping")
        where = f"ports (target {p.get('target')!r})"
        proto = str(p.get("protocol") or "tcp").lower()
        given_ip = str(p.get("host_ip") or "")
        published = p.get("published")
        if isinstance(published, str) and published.isdigit() and len(published) <= 5:  # the common case
            ip, lo = given_ip, _port(published, name, where)
            hi = lo
        else:
            ip, lo, hi = split_published(published, given_ip, name, where)
        target = _target(p, name, where)
        end = int(p.get("target_end") or target)  # runbook_lib.lint.ranges
        rows.append((ip, proto, lo, hi, target, end, ip != given_ip))
    return rows


def compose_ports(spec: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The ports of one service of the model as the rules read them (``{host_ip, host_port, container_port,
    protocol}``, strings, ranges as ``a-b``): every port the engine will bind on the host, container-only ports
    included (``host_port`` :data:`RANDOM`). Consecutive entries (a range Compose expanded) are one entry."""
    groups: list[list[Any]] = []  # [ip, proto, host lo, host hi, container lo, container hi, host range, in published]
    for ip, proto, lo, hi, target, end, inside in sorted(_rows(spec, name)):
        aligned = end != target  # a grouped range: host and container ports go together
        last = groups[-1] if groups else None
        if last and not last[6] and (hi == lo or aligned) and last[:2] == [ip, proto] and target == last[5] + 1 \
                and inside == last[7] and (lo == 0 == last[3] or (lo and lo == last[3] + 1)):
            last[3], last[5] = hi, end
            continue
        groups.append([ip, proto, lo, hi, target, end, hi != lo and not aligned, inside])
    out = []
    for ip, proto, lo, hi, clo, chi, _, inside in groups:
        host = RANDOM if not lo else f"{lo}-{hi}" if hi != lo else str(lo)
        entry = {"host_ip": ip, "host_port": host, "container_port": f"{clo}-{chi}" if chi != clo else str(clo),
                 "protocol": proto}
        if inside:
            entry["ip_in_published"] = True
        out.append(entry)
    return out


def compose_bindings(spec: Mapping[str, Any], name: str) -> list[str]:
    """Every port binding of the service as the engine stores it (``HostConfig.PortBindings``):
    ``host_ip:host_port->container_port/protocol``, one per container port, sorted. A host range bound to one
    container port stays a range (the engine picks one port of it); a random host port is empty."""
    out = []
    for ip, proto, lo, hi, target, end, _ in _rows(spec, name):
        if end != target:
            out += [f"{ip}:{lo + i}->{target + i}/{proto}" for i in range(end - target + 1)]
            continue
        host = RANDOM if not lo else str(lo) if hi == lo else f"{lo}-{hi}"
        out.append(f"{ip}:{host}->{target}/{proto}")
    return sorted(out)


# -- grouped entries, as the port rules read them ------------------------------------------------------

def _first(value: Any) -> int:
    try:
        return int(str(value).split("-")[0])
    except ValueError:
        return 0


def container_ports(p: Mapping[str, Any]) -> range:
    """The container ports of one published entry ("80", "70-8000")."""
    lo, _, hi = str(p["container_port"]).partition("-")
    first = _first(lo)
    return range(first, (_first(hi) if hi else first) + 1)


def narrowed(p: Mapping[str, Any], port: int) -> dict[str, Any]:
    """The entry of container port ``port`` out of a grouped entry (its host port at the same offset)."""
    ports = container_ports(p)
    if len(ports) == 1:
        return dict(p)
    host = p["host_port"] and str(_first(p["host_port"]) + port - ports[0])
    return {**p, "container_port": str(port), "host_port": host}


def matching(p: Mapping[str, Any], wanted: Any) -> list[int]:
    """The container ports of ``p`` that are in ``wanted`` (a set or a dict of ports), smallest first."""
    ports = container_ports(p)
    if len(ports) == 1:
        return [ports[0]] if ports[0] in wanted else []
    return sorted(w for w in wanted if w in ports)
