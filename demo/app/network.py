"""Reaching a dependency with a deadline: name resolution (getaddrinfo has no timeout of its own), TCP
connections and HTTP connections that fail within ``DEP_TIMEOUT`` seconds, as :class:`DependencyDown`."""
from __future__ import annotations

import concurrent.futures
import http.client
import os
import socket

DEP_TIMEOUT = float(os.environ.get("DEPENDENCY_TIMEOUT_SECONDS", "0.5"))


class DependencyDown(Exception):
    """A dependency did not answer in time, refused, or answered with garbage."""


_dns_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="dns")
_dns_cache: dict[tuple[str, int], tuple[str, int]] = {}


def resolve(host: str, port: int, timeout: float = DEP_TIMEOUT) -> tuple[str, int]:
    """Resolve ``host`` within ``timeout``. On a resolver timeout the last good address is reused.

    Docker's embedded DNS forwards names it does not know (a stopped container's) upstream, which may
    hang for seconds on an offline machine; a dependency must fail fast instead.
    """
    fut = _dns_pool.submit(socket.getaddrinfo, host, port, socket.AF_INET, socket.SOCK_STREAM)
    try:
        addr = fut.result(timeout)[0][4]
    except concurrent.futures.TimeoutError:
        cached = _dns_cache.get((host, port))
        if cached:
            return cached
        raise DependencyDown(f"resolving {host} timed out") from None
    except OSError as exc:
        raise DependencyDown(f"cannot resolve {host}: {exc}") from None
    _dns_cache[(host, port)] = addr
    return addr


def connect(host: str, port: int, timeout: float = DEP_TIMEOUT) -> socket.socket:
    try:
        return socket.create_connection(resolve(host, port, timeout), timeout=timeout)
    except OSError as exc:
        raise DependencyDown(f"cannot connect to {host}:{port}: {exc}") from None


class FastHTTPConnection(http.client.HTTPConnection):
    """http.client connection whose connect() uses the deadline-bound resolver. ``connect_timeout``: a
    shorter deadline for resolving and connecting than for the answer (``timeout``)."""

    def __init__(self, host: str, port: int, timeout: float = DEP_TIMEOUT, connect_timeout: float | None = None):
        super().__init__(host, port, timeout=timeout)
        self.connect_timeout = connect_timeout

    def connect(self) -> None:
        self.sock = connect(self.host, self.port, self.connect_timeout or self.timeout)
        self.sock.settimeout(self.timeout)


def close_quietly(*objs) -> None:
    """Close a dependency's socket and its file, ignoring what a connection already broken raises."""
    for obj in objs:
        try:
            if obj is not None:
                obj.close()
        except OSError:
            pass
