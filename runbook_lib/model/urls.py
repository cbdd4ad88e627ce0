"""Where this machine reaches a published port of the compose model: ``http://HOST:PORT``, HOST being the address
the port is bound on, or for every interface the engine's host (``DOCKER_HOST``'s for a remote engine: a fleet
target, a swarm manager elsewhere). Read by phase 4's health endpoints and by ``runbook init``."""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit


def engine_host() -> str:
    """The host whose interfaces the engine publishes ports on: ``DOCKER_HOST``'s host for a ``tcp://`` or
    ``ssh://`` engine (a fleet target, a swarm manager elsewhere), else this machine's loopback."""
    url = os.environ.get("DOCKER_HOST", "")
    if url.startswith(("tcp://", "ssh://", "http://", "https://")):
        host = urlsplit(url).hostname
        if host:
            return host
    return "127.0.0.1"


def host_base_url(port: dict[str, Any], default_host: str | None = None) -> str | None:
    """``http://HOST:PORT`` where this machine reaches one published port of the compose model (for 0.0.0.0,
    :: or no address: ``default_host``, else the engine's host, :func:`engine_host`), or None for a UDP or
    unpublished port."""
    if port.get("protocol", "tcp") != "tcp" or not port.get("published"):
        return None
    host = port.get("host_ip") or "0.0.0.0"
    host = (default_host or engine_host()) if host in ("0.0.0.0", "::") else host
    host = f"[{host}]" if ":" in host else host
    published = str(port["published"]).split("-")[0]
    return f"http://{host}:{published}"
