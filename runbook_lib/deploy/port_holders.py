"""Who holds the host ports a deployment is about to publish, found before anything changes.

A redeployment (phase 1) or ``runbook demo up --swarm`` whose host port is taken by another compose project, a
swarm task or a process on this host fails late and obscurely: Compose's "port is already allocated", or a
stack whose tasks never start until a timeout. Asked first, the answer takes one container listing and, when
the engine runs on this machine, one ``bind`` per port (and ``/proc`` for the process that holds it):

- a port published by a running container of the deployment itself is fine: it is the container being replaced;
- a port published by any other container is named with its container and its compose project or stack;
- a port no container publishes but that cannot be bound here is held by a process of this host, named by
  pid and command when ``/proc`` says which (only for an engine that publishes on this host's interfaces:
  :func:`engine_shares_this_network`; a remote engine's host, or an engine in another network namespace, is
  not looked at).
"""
from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from runbook_lib.model.ports import RANDOM, compose_ports

EVERY_INTERFACE = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class Binding:
    """One fixed host port a service publishes."""

    service: str
    host_ip: str
    port: int
    protocol: str

    def describe(self) -> str:
        return f"{self.host_ip or '*'}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Conflict:
    """A binding someone else holds, and who."""

    binding: Binding
    holder: str

    def line(self) -> str:
        return f"{self.binding.describe()} ({self.binding.service}) is held by {self.holder}"


def model_bindings(services: Mapping[str, Any]) -> list[Binding]:
    """The fixed host ports of a compose model's (or stack file's) services; a random host port or a host range
    (the engine picks a free port of it) cannot conflict and is left out."""
    out = []
    for name, spec in sorted(services.items()):
        for p in compose_ports(spec or {}, name):
            host = p["host_port"]
            if host != RANDOM and "-" not in host:
                out.append(Binding(name, p["host_ip"], int(host), p["protocol"]))
    return out


def _overlap(a: str, b: str) -> bool:
    return a in EVERY_INTERFACE or b in EVERY_INTERFACE or a == b


def _container_holder(p: dict[str, Any]) -> str:
    owner = (f"compose project {p['project']}" if p["project"] else f"stack {p['stack']}" if p["stack"]
             else "no compose project")
    what = p["container"] if p["container"].startswith("swarm service ") else f"container {p['container']}"
    return f"{what} ({owner})"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def process_holding(port: int) -> str | None:
    """``process NAME (pid N): COMMAND`` of the process listening on TCP ``port`` on this host, from /proc (None
    when /proc does not say: another network namespace, or no permission to read its descriptors)."""
    wanted = {f"socket:[{i}]" for i in _listening_inodes(port)}
    if not wanted:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if not any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                continue
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        return f"process {comm} (pid {pid}): {cmd[:120]}"
    return None


def bind_refused(b: Binding) -> bool:
    """Whether this host refuses to bind the binding's address and port because it is in use."""
    ip = b.host_ip if b.host_ip not in EVERY_INTERFACE else "0.0.0.0"
    kind = socket.SOCK_STREAM if b.protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind) as s:
        if b.protocol == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            s.bind((ip, b.port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE  # EADDRNOTAVAIL: not an address of this host, nothing to say
    return False


#: /proc/net/unix's Flags of a listening socket (__SO_ACCEPTCON).
_ACCEPTCON = 0x10000


def engine_shares_this_network(proc_net_unix: Path = Path("/proc/net/unix")) -> bool:
    """Whether the engine DOCKER_HOST names publishes on this host's interfaces: its Unix socket is listened on
    in this network namespace (``/proc/net/unix`` lists only this namespace's). A TCP or SSH engine, or one in a
    network namespace of its own, is not: binding a port here says nothing about its ports. Only a listening
    socket counts: a connection this process opened to an engine of another namespace puts the engine's path
    in this namespace's list too (the accepted end is made in the connecting side's namespace)."""
    url = os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"
    if not url.startswith("unix://"):
        return False
    wanted = os.path.realpath(url[len("unix://"):])
    try:
        lines = proc_net_unix.read_text().splitlines()[1:]
    except OSError:
        return False
    return any(len(f) >= 8 and int(f[3], 16) & _ACCEPTCON and os.path.realpath(f[-1]) == wanted
               for f in (line.split() for line in lines))


def find_conflicts(published: list[dict[str, Any]], bindings: list[Binding], *, own: Callable[[dict[str, Any]], bool],
                   local: bool) -> list[Conflict]:
    """The bindings someone else holds. ``published``: the engine's running containers' host ports
    (:meth:`Engine.published_ports`); ``own``: whether such a port is the deployment's own container (the one
    being replaced); ``local``: the engine publishes on this host's interfaces, so a host process can be found."""
    out = []
    for b in bindings:
        held = [p for p in published if p["port"] == b.port and p["protocol"] == b.protocol and _overlap(p["ip"], b.host_ip)]
        others = sorted({_container_holder(p) for p in held if not own(p)})
        if others:
            out.append(Conflict(b, " and ".join(others)))
        elif not held and local and bind_refused(b):
            who = process_holding(b.port) if b.protocol == "tcp" else None
            out.append(Conflict(b, who or "a process on this host (not a container of this engine)"))
    return out


def conflicts_line(conflicts: list[Conflict], limit: int = 3) -> str:
    """The conflicts in one line (the first ``limit``, then how many more)."""
    more = len(conflicts) - limit
    return "; ".join(c.line() for c in conflicts[:limit]) + (f"; and {more} more" if more > 0 else "")
