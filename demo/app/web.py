"""The HTTP plumbing every role shares: the request handler (one JSON log line and one metric per request),
routing, ``/health`` and ``/metrics``, errors as JSON responses. A role is a :class:`Service` subclass."""
from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler

from config import log, read_secret
from jwt_tokens import jwt_decode
from metrics import Metrics

MAX_BODY = 16 * 1024 * 1024


class HTTPError(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status, self.payload = status, {"error": message, **extra}


class Response:
    def __init__(self, status: int, body=None, content_type: str | None = None, headers: dict | None = None):
        self.status, self.headers = status, dict(headers or {})
        if isinstance(body, (bytes, bytearray)):
            self.body, self.content_type = bytes(body), content_type or "application/octet-stream"
        elif isinstance(body, str):
            self.body, self.content_type = body.encode(), content_type or "text/plain; charset=utf-8"
        else:
            self.body = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
            self.content_type = content_type or "application/json"


class Service:
    """Base role: health, metrics, routing. Subclasses add routes and dependency probes."""

    name = "service"
    secret_vars: tuple[str, ...] = ()

    def __init__(self):
        self.env = os.environ.get("ENV", "development")
        self.secrets = {var: read_secret(var) for var in self.secret_vars}
        self.metrics = Metrics()

    # --- to override ---------------------------------------------------------------------------
    def probe(self) -> dict[str, str]:
        """Dependency name -> "up" | "down" (or another state), probed now."""
        return {}

    def routes(self) -> list[tuple[str, str, str, object]]:
        """(method, regex, route label, handler(request, match)) tuples."""
        return []

    def health_extra(self) -> dict:
        return {}

    # --- common ----------------------------------------------------------------------------------
    def health(self, _req, _m) -> Response:
        deps = self.probe()
        status = "ok" if all(v == "up" for v in deps.values()) else "degraded"
        return Response(200, {"status": status, "service": self.name, "env": self.env,
                              "dependencies": deps, **self.health_extra()})

    def metrics_text(self, _req, _m) -> Response:
        deps = {k: v == "up" for k, v in self.probe().items()}
        return Response(200, self.metrics.render(deps),
                        content_type="text/plain; version=0.0.4; charset=utf-8")

    def dispatch(self, req: "Handler") -> tuple[str, Response]:
        path = urllib.parse.urlsplit(req.path).path
        table = [("GET", r"/health", "/health", self.health),
                 ("GET", r"/metrics", "/metrics", self.metrics_text), *self.routes()]
        allowed = False
        for method, pattern, label, fn in table:
            m = re.fullmatch(pattern, path)
            if not m:
                continue
            allowed = True
            if method == req.command or (method == "GET" and req.command == "HEAD"):
                try:
                    return label, fn(req, m)
                except HTTPError as exc:
                    return label, Response(exc.status, exc.payload)
        if allowed:
            return "other", Response(405, {"error": "method not allowed"})
        return "other", Response(404, {"error": "not found"})

    def bearer_claims(self, req: "Handler") -> dict:
        auth = req.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        claims = jwt_decode(token, self.secrets["JWT_SECRET_FILE"]) if token else None
        if claims is None:
            raise HTTPError(401, "missing or invalid bearer token")
        return claims


def read_json(req: "Handler") -> dict:
    try:
        data = json.loads(req.body or b"null")
    except ValueError:
        raise HTTPError(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "body must be a JSON object")
    return data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "secureconnect-demo"
    sys_version = ""
    timeout = 30
    service: Service

    def _handle(self) -> None:
        start = time.monotonic()
        request_id = self.headers.get("X-Request-ID") or uuid.uuid4().hex
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            route, resp = "other", Response(413 if length > 0 else 400, {"error": "bad Content-Length"})
            self.close_connection = True
        else:
            self.body = self.rfile.read(length) if length else b""
            try:
                route, resp = self.service.dispatch(self)
            except Exception as exc:  # noqa: BLE001 - a request must never kill the server
                route, resp = "other", Response(500, {"error": "internal error"})
                log("error", request_id=request_id, error=type(exc).__name__, detail=str(exc)[:200])
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("X-Request-ID", request_id)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)
        elapsed = time.monotonic() - start
        self.service.metrics.observe(self.command, route, resp.status, elapsed)
        log("request", request_id=request_id, method=self.command,
            path=urllib.parse.urlsplit(self.path).path, route=route, status=resp.status,
            duration_ms=round(elapsed * 1000, 2), bytes_in=len(getattr(self, "body", b"")),
            bytes_out=len(resp.body), client=self.client_address[0])

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr access log
        pass
