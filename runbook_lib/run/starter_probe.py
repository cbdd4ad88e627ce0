"""`runbook init`'s health endpoints: only what the compose model says or what really answered.

Without a running stack, an app service's endpoint is its healthcheck's URL mapped to the host port
published for it (the compose file says so), and nothing else: a published port with no HTTP healthcheck
gets a TODO, never an assumed ``/health``.

With the stack running, each published TCP port of each app service is asked, in this order: the
healthcheck's path (when the healthcheck targets that port), the usual health paths
(:data:`HEALTH_PATHS`), then ``/``. The first that answers 2xx is kept, with the status seen; a port whose
only answer is a redirect from ``/`` keeps ``/`` with that status as ``expect_status``. A server that
answers 2xx to a path that cannot exist (a single-page app's catch-all) has its health paths ignored:
only ``/`` is kept for it. GET only, no redirect followed, no body sent.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

#: asked on every published port, in this order, before ``/``
HEALTH_PATHS: tuple[str, ...] = ("/health", "/healthz", "/ready", "/readyz", "/livez", "/api/health",
                                 "/status", "/ping")


@dataclass
class Health:
    """The health endpoint `runbook init` writes for one app service (``url`` None: none, a TODO)."""

    service: str
    url: str | None          # host URL for smoke.endpoints, None when nothing is known to answer
    note: str                # where it came from (the status seen when it was asked)
    todo: str = ""           # what a person must confirm
    status: int | None = None  # the status seen when `runbook init` asked (None: not asked)


@dataclass
class Asked:
    """What one published port answered."""

    base: str
    seen: dict[str, str] = field(default_factory=dict)   # path -> "200" / "404" / "no answer"


def healthcheck_target(hc: str | None) -> tuple[int | None, str, str] | None:
    """``(container port, path, url)`` of a service's HTTP healthcheck URL (``starter.healthcheck_url``)."""
    if not hc:
        return None
    parts = urlsplit(hc)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), hc


def from_compose(name: str, hc_url: str | None, urls: dict[int, str]) -> Health:
    """The endpoint the compose model alone supports: the healthcheck URL ``hc_url`` (inside the container)
    on the host port published for it (``urls``: container port -> host base URL)."""
    hc = healthcheck_target(hc_url)
    if hc:
        port, path, url = hc
        if port in urls:
            return Health(name, urls[port] + path, f"from its healthcheck ({url} inside the container)")
        return Health(name, None, f"its healthcheck asks {url} inside the container, and port {port} is not "
                      "published: not reachable from the host")
    if urls:
        return Health(name, None, "no HTTP healthcheck, and the stack was not running to ask its published "
                      f"port(s) {', '.join(urls.values())}",
                      todo=f"{name} publishes {', '.join(urls.values())} but has no HTTP healthcheck: add the path "
                           "that answers (or re-run `runbook init` with the stack running); none is invented")
    return Health(name, None, "no HTTP healthcheck and no published port")


def _get(client: httpx.Client, url: str) -> int | None:
    try:
        return client.get(url).status_code
    except httpx.HTTPError:
        return None


def _ask_port(client: httpx.Client, base: str, first: str | None) -> tuple[tuple[str, int] | None, Asked]:
    """The first path on ``base`` that answers (2xx; a redirect only for ``/``), and what each path answered.
    A port that does not even answer an unknown path (no HTTP there) is asked ``/`` only."""
    asked = Asked(base)
    unknown = _get(client, f"{base}/runbook-init-{secrets.token_hex(4)}")
    paths = [] if unknown is None or unknown < 300 else [p for p in dict.fromkeys([first, *HEALTH_PATHS]) if p]
    for path in [*paths, "/"]:
        status = _get(client, base + path)
        asked.seen[path] = "no answer" if status is None else str(status)
        if status is not None and (200 <= status < 300 or (path == "/" and 300 <= status < 400)):
            return (path, status), asked
    return None, asked


def probe(name: str, hc_url: str | None, urls: dict[int, str], timeout: float = 2.0) -> Health:
    """Ask each published port (``urls``: container port -> host base URL) of a running app service
    (module docstring), its healthcheck's path (``hc_url``) first; keep the first answer."""
    if not urls:
        return from_compose(name, hc_url, urls)
    hc = healthcheck_target(hc_url)
    seen: list[str] = []
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for port, base in urls.items():
            first = hc[1] if hc and hc[0] == port else None
            found, asked = _ask_port(client, base, first)
            seen += [f"{base}{p} {s}" for p, s in asked.seen.items()]
            if found:
                path, status = found
                also = [f"{p} {s}" for p, s in asked.seen.items() if p != path]
                note = f"answered {status} when `runbook init` asked" + (f" (before it: {', '.join(also)})"
                                                                          if also else "")
                todo = (f"{name}: only / answered; it shows the server is up, not that what it needs works: use "
                        "the application's health path if it has one") if path == "/" else ""
                return Health(name, base + path, note, todo=todo, status=status)
    return Health(name, None, "nothing answered when `runbook init` asked: " + ", ".join(seen),
                  todo=f"{name}: none of its published ports answered 2xx on /, {', '.join(HEALTH_PATHS)}; add the "
                       "endpoint that shows it is healthy (with its expect_status), none is invented")
