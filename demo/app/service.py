"""SecureConnect demo backend: one stdlib-only file, one role per container.

This is the application the runbook demo deploys and verifies. It is not a product: each role is the
smallest thing that behaves like a real service under the checks a runbook makes (health endpoints that
really probe their dependencies, Prometheus metrics, JSON logs, secrets read from files, designed
failure modes when a dependency goes away).

The role is chosen by ``SERVICE_NAME``:

==================  ====================================================================================
api-gateway         reverse proxy: /api/auth -> auth-service, /api/chat -> chat-service,
                    /api/video -> video-service, /api/storage -> storage-service
auth-service        POST /api/auth/login (issues an HS256 JWT, session in redis), GET /api/auth/verify
chat-service        POST/GET /api/chat/messages (redis lists; buffers or fails when redis is down,
                    per CHAT_REDIS_FAILURE_MODE=degrade|fail)
video-service       POST /api/video/calls, GET /api/video/calls/<id> (redis keys with a TTL; 503 without
                    redis)
storage-service     PUT/GET /api/storage/objects/<key> (S3 PutObject/GetObject against MinIO, SigV4)
==================  ====================================================================================

Every role serves ``GET /health`` (200 while running; ``status`` is ``degraded`` when a dependency is down)
and ``GET /metrics`` (Prometheus text format 0.0.4), and logs one JSON line per request on stdout. Secret
values are read once at start from the files named by ``*_FILE`` variables and never logged.

``DEMO_FAULT`` (off by default) plants a fault for the runbook's own tests: see :func:`apply_fault`.

Init steps for post-deploy verification, run with ``docker exec``::

    python3 /app/service.py create-bucket NAME     # idempotent S3 CreateBucket
    python3 /app/service.py list-buckets           # one bucket name per line

The AWS Signature V4 helpers (:func:`sigv4_headers`, :func:`sigv4_signature`) are also used by
``minio_standin.py`` to verify requests.
"""
from __future__ import annotations

import base64
import collections
import concurrent.futures
import datetime as _dt
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEP_TIMEOUT = float(os.environ.get("DEPENDENCY_TIMEOUT_SECONDS", "0.5"))
MAX_BODY = 16 * 1024 * 1024
BUCKET = os.environ.get("STORAGE_BUCKET", "secureconnect-media")
TOKEN_TTL = 3600
CALL_TTL = 3600
TURN_URLS = ["turn:127.0.0.1:3478"]


# ----------------------------------------------------------------------------------------------------
# configuration and secrets
# ----------------------------------------------------------------------------------------------------

class ConfigError(Exception):
    """A required setting or secret file is missing: the process exits non-zero naming it."""


def read_secret(var: str) -> str:
    """The content of the file named by environment variable ``var`` (stripped).

    Raises ConfigError naming the variable (never the value) if it is unset, unreadable or empty.
    """
    path = os.environ.get(var, "").strip()
    if not path:
        raise ConfigError(f"{var} is not set")
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"{var}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{var}: {path} is empty")
    return value


def log(event: str, **fields) -> None:
    """One JSON line on stdout. Callers never pass secret values or request headers."""
    record = {"ts": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
              "service": os.environ.get("SERVICE_NAME", "unknown"), "event": event, **fields}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------------------
# name resolution with a deadline (getaddrinfo has no timeout of its own)
# ----------------------------------------------------------------------------------------------------

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
    """http.client connection whose connect() uses the deadline-bound resolver."""

    def connect(self) -> None:
        self.sock = connect(self.host, self.port, self.timeout)


# ----------------------------------------------------------------------------------------------------
# redis (RESP2) client
# ----------------------------------------------------------------------------------------------------

class RedisError(Exception):
    """Redis answered with an error reply."""


class Redis:
    """A minimal thread-safe redis client: one connection, re-opened after any failure.

    Every call fails within ~``timeout`` seconds when redis is stopped or paused (DependencyDown).
    """

    def __init__(self, host: str, port: int, password: str | None, timeout: float = DEP_TIMEOUT):
        self.host, self.port, self._password, self.timeout = host, port, password, timeout
        self._sock: socket.socket | None = None
        self._file = None
        self._lock = threading.Lock()

    def _open(self) -> None:
        self._sock = connect(self.host, self.port, self.timeout)
        self._file = self._sock.makefile("rb")
        if self._password:
            self._roundtrip(("AUTH", self._password))

    def _close(self) -> None:
        for obj in (self._file, self._sock):
            try:
                if obj is not None:
                    obj.close()
            except OSError:
                pass
        self._sock = self._file = None

    @staticmethod
    def _encode(args) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _read(self):
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise DependencyDown("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._file.read(n + 2)
            if len(data) != n + 2:
                raise DependencyDown("short read from redis")
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise DependencyDown(f"unexpected redis reply type {kind!r}")

    def _roundtrip(self, args):
        self._sock.sendall(self._encode(args))
        return self._read()

    def execute(self, *args):
        """Send one command and return its reply. Raises DependencyDown or RedisError."""
        with self._lock:
            for attempt in (1, 2):
                fresh = self._sock is None
                try:
                    if fresh:
                        self._open()
                    return self._roundtrip(args)
                except RedisError as exc:
                    if str(exc).startswith(("NOAUTH", "WRONGPASS")):
                        self._close()
                    raise
                except (OSError, DependencyDown, ValueError) as exc:
                    self._close()
                    # a kept connection may have died with a redis restart: retry once on a new one
                    if fresh or attempt == 2 or isinstance(exc, socket.timeout):
                        raise DependencyDown(f"redis: {exc}") from None
        raise DependencyDown("redis: unreachable")  # pragma: no cover

    def ping(self) -> bool:
        try:
            return self.execute("PING") == "PONG"
        except (DependencyDown, RedisError):
            return False

    def set(self, key, value, ex: int | None = None):
        return self.execute("SET", key, value, *(("EX", ex) if ex else ()))

    def get(self, key):
        return self.execute("GET", key)

    def rpush(self, key, *values):
        return self.execute("RPUSH", key, *values)

    def lrange(self, key, start=0, stop=-1):
        return self.execute("LRANGE", key, start, stop)

    def expire(self, key, seconds: int):
        return self.execute("EXPIRE", key, seconds)


# ----------------------------------------------------------------------------------------------------
# JWT (HS256)
# ----------------------------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode(claims: dict, key: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def jwt_decode(token: str, key: str) -> dict | None:
    """The claims of a valid, unexpired HS256 token signed with ``key``; None otherwise."""
    try:
        header_b64, payload_b64, sig_b64 = token.split(".")
        header = json.loads(_b64url_decode(header_b64))
        if header.get("alg") != "HS256":
            return None
        expected = hmac.new(key.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64url_decode(sig_b64)):
            return None
        claims = json.loads(_b64url_decode(payload_b64))
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or float(claims.get("exp", 0)) < time.time():
        return None
    return claims


# ----------------------------------------------------------------------------------------------------
# AWS Signature Version 4 (S3, path-style)
# ----------------------------------------------------------------------------------------------------

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def s3_uri_encode(path: str) -> str:
    """S3's canonical URI: every byte except unreserved characters and '/' percent-encoded, once."""
    return urllib.parse.quote(path, safe="/-_.~")


def _canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                    for k, v in sorted(pairs))


def sigv4_signature(secret_key: str, method: str, path: str, query: str, headers: dict[str, str],
                    signed_headers: list[str], payload_hash: str, amz_date: str,
                    region: str = "us-east-1", service: str = "s3") -> str:
    """The hex SigV4 signature. ``path`` is the *decoded* path; ``headers`` keys are lower-case."""
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed_headers)
    canonical_request = "\n".join([method, s3_uri_encode(path), _canonical_query(query), canonical_headers,
                                   ";".join(signed_headers), payload_hash])
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([SIGV4_ALGORITHM, amz_date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def sigv4_headers(access_key: str, secret_key: str, method: str, host: str, path: str, query: str = "",
                  body: bytes = b"", region: str = "us-east-1", service: str = "s3") -> dict[str, str]:
    """The headers (Host, x-amz-date, x-amz-content-sha256, Authorization) for one signed request."""
    amz_date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = sorted(headers)
    sig = sigv4_signature(secret_key, method, path, query, headers, signed, payload_hash, amz_date,
                          region, service)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    return {
        "Host": host,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        "Authorization": f"{SIGV4_ALGORITHM} Credential={access_key}/{scope}, "
                         f"SignedHeaders={';'.join(signed)}, Signature={sig}",
    }


class S3Client:
    """Path-style S3 against MinIO: CreateBucket, ListBuckets, PutObject, GetObject (SigV4 signed)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str,
                 timeout: float = float(os.environ.get("STORAGE_TIMEOUT_SECONDS", "2"))):
        parsed = urllib.parse.urlsplit(endpoint)
        self.host, self.port = parsed.hostname or "minio", parsed.port or 80
        self.netloc = parsed.netloc
        self._access, self._secret = access_key, secret_key
        self.timeout = timeout

    def request(self, method: str, path: str, body: bytes = b"", timeout: float | None = None):
        """Send one signed request; returns (status, headers, body). Raises DependencyDown."""
        headers = sigv4_headers(self._access, self._secret, method, self.netloc, path, "", body)
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        conn = FastHTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        try:
            conn.request(method, s3_uri_encode(path), body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DependencyDown(f"minio: {exc}") from None
        finally:
            conn.close()

    def live(self) -> bool:
        conn = FastHTTPConnection(self.host, self.port, timeout=DEP_TIMEOUT)
        try:
            conn.request("GET", "/minio/health/live")
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except (OSError, http.client.HTTPException, DependencyDown):
            return False
        finally:
            conn.close()

    def create_bucket(self, name: str) -> str:
        """'created' or 'exists'; raises RuntimeError with the S3 error code otherwise."""
        status, _, body = self.request("PUT", f"/{name}")
        if status == 200:
            return "created"
        if status == 409 and _s3_error_code(body) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return "exists"
        raise RuntimeError(f"CreateBucket {name}: HTTP {status} {_s3_error_code(body)}")

    def list_buckets(self) -> list[str]:
        status, _, body = self.request("GET", "/")
        if status != 200:
            raise RuntimeError(f"ListBuckets: HTTP {status} {_s3_error_code(body)}")
        root = ET.fromstring(body)
        return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Name"]


def _s3_error_code(body: bytes) -> str:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return ""
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Code":
            return el.text or ""
    return ""


# ----------------------------------------------------------------------------------------------------
# Prometheus metrics (text exposition format 0.0.4)
# ----------------------------------------------------------------------------------------------------

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROCESS_START = time.time()


def _label_value(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Request counter, latency histogram and dependency gauges, rendered on demand."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = collections.Counter()
        self._hist: dict[tuple[str, str], list] = {}

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, str(code))] += 1
            h = self._hist.setdefault((method, route), [[0] * len(BUCKETS), 0.0, 0])
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    h[0][i] += 1
            h[1] += seconds
            h[2] += 1

    def render(self, dependencies: dict[str, bool], extra: list[str] = ()) -> str:
        lines = ["# HELP http_requests_total HTTP requests handled, by method, route and status code.",
                 "# TYPE http_requests_total counter"]
        with self._lock:
            for (method, route, code), n in sorted(self._requests.items()):
                lines.append(f'http_requests_total{{method="{_label_value(method)}",'
                             f'route="{_label_value(route)}",code="{code}"}} {n}')
            lines += ["# HELP http_request_duration_seconds HTTP request latency.",
                      "# TYPE http_request_duration_seconds histogram"]
            for (method, route), (counts, total, count) in sorted(self._hist.items()):
                labels = f'method="{_label_value(method)}",route="{_label_value(route)}"'
                for bound, n in zip(BUCKETS, counts):
                    lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {n}')
                lines.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count}')
                lines.append(f"http_request_duration_seconds_sum{{{labels}}} {total:.6f}")
                lines.append(f"http_request_duration_seconds_count{{{labels}}} {count}")
        lines += ["# HELP dependency_up Whether a dependency answered its last probe (1) or not (0).",
                  "# TYPE dependency_up gauge"]
        for dep, up in sorted(dependencies.items()):
            lines.append(f'dependency_up{{dependency="{_label_value(dep)}"}} {1 if up else 0}')
        lines += ["# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
                  "# TYPE process_start_time_seconds gauge",
                  f"process_start_time_seconds {PROCESS_START:.3f}", *extra]
        return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------
# HTTP plumbing shared by every role
# ----------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------
# roles
# ----------------------------------------------------------------------------------------------------

def _redis_from_env(password: str) -> Redis:
    return Redis(os.environ.get("REDIS_HOST", "redis"), int(os.environ.get("REDIS_PORT", "6379")), password)


class AuthService(Service):
    name = "auth-service"
    secret_vars = ("JWT_SECRET_FILE", "REDIS_PASSWORD_FILE", "DEMO_USER_PASSWORD_FILE")

    def __init__(self):
        super().__init__()
        self.redis = _redis_from_env(self.secrets["REDIS_PASSWORD_FILE"])
        self.users = {"demo": self.secrets["DEMO_USER_PASSWORD_FILE"]}

    def probe(self):
        return {"redis": "up" if self.redis.ping() else "down"}

    def routes(self):
        return [("POST", r"/api/auth/login", "/api/auth/login", self.login),
                ("GET", r"/api/auth/verify", "/api/auth/verify", self.verify)]

    def login(self, req, _m):
        data = read_json(req)
        user, password = data.get("username"), data.get("password")
        expected = self.users.get(user) if isinstance(user, str) else None
        if not (expected and isinstance(password, str)
                and hmac.compare_digest(expected.encode(), password.encode())):
            log("login_failed", username=str(user)[:64])
            raise HTTPError(401, "invalid credentials")
        now = int(time.time())
        jti = uuid.uuid4().hex
        token = jwt_encode({"sub": user, "iat": now, "exp": now + TOKEN_TTL, "jti": jti,
                            "iss": "auth-service"}, self.secrets["JWT_SECRET_FILE"])
        try:
            self.redis.set(f"session:{jti}", user, ex=TOKEN_TTL)
            session = "recorded"
        except (DependencyDown, RedisError) as exc:
            session = "not-recorded"
            log("session_not_recorded", jti=jti, reason=str(exc)[:200])
        return Response(200, {"token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL,
                              "session": session})

    def verify(self, req, _m):
        claims = self.bearer_claims(req)
        return Response(200, {"user": claims["sub"], "exp": claims["exp"], "jti": claims.get("jti")})


ROOM_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ChatService(Service):
    name = "chat-service"
    secret_vars = ("JWT_SECRET_FILE", "REDIS_PASSWORD_FILE")

    def __init__(self):
        super().__init__()
        self.redis = _redis_from_env(self.secrets["REDIS_PASSWORD_FILE"])
        self.mode = os.environ.get("CHAT_REDIS_FAILURE_MODE", "degrade").strip().lower()
        if self.mode not in ("degrade", "fail"):
            raise ConfigError("CHAT_REDIS_FAILURE_MODE must be 'degrade' or 'fail'")
        self.buffer: collections.deque[tuple[str, str]] = collections.deque(maxlen=1000)
        self._flush_lock = threading.Lock()
        threading.Thread(target=self._flusher, name="flusher", daemon=True).start()

    def _flusher(self) -> None:
        while True:
            time.sleep(1.0)
            if self.buffer:
                self.flush()

    def flush(self) -> int:
        """Push buffered messages to redis in order; stops at the first failure. Returns how many."""
        sent = 0
        with self._flush_lock:
            while self.buffer:
                key, payload = self.buffer[0]
                try:
                    self.redis.rpush(key, payload)
                except (DependencyDown, RedisError):
                    break
                self.buffer.popleft()
                sent += 1
        if sent:
            log("buffer_flushed", messages=sent)
        return sent

    def probe(self):
        return {"redis": "up" if self.redis.ping() else "down"}

    def health_extra(self):
        return {"failure_mode": self.mode, "buffered_messages": len(self.buffer)}

    def routes(self):
        return [("POST", r"/api/chat/messages", "/api/chat/messages", self.post),
                ("GET", r"/api/chat/messages", "/api/chat/messages", self.list)]

    def post(self, req, _m):
        claims = self.bearer_claims(req)
        data = read_json(req)
        room, text = data.get("room"), data.get("text")
        if not (isinstance(room, str) and ROOM_RE.fullmatch(room)):
            raise HTTPError(400, "room must match [A-Za-z0-9_.-]{1,64}")
        if not (isinstance(text, str) and 0 < len(text) <= 4000):
            raise HTTPError(400, "text must be a non-empty string of at most 4000 characters")
        msg = {"id": uuid.uuid4().hex, "room": room, "user": claims["sub"], "text": text,
               "ts": round(time.time(), 3)}
        key, payload = f"room:{room}", json.dumps(msg, separators=(",", ":"))
        if self.buffer:
            self.flush()  # keep order: older buffered messages first
        if not self.buffer:
            try:
                self.redis.rpush(key, payload)
                return Response(201, {"id": msg["id"], "room": room})
            except (DependencyDown, RedisError) as exc:
                reason = str(exc)[:200]
        else:
            reason = "redis still unavailable"
        if self.mode == "fail":
            raise HTTPError(503, "redis unavailable", dependency="redis")
        self.buffer.append((key, payload))
        log("message_buffered", room=room, id=msg["id"], buffered=len(self.buffer), reason=reason)
        return Response(202, {"queued": True, "id": msg["id"], "room": room})

    def list(self, req, _m):
        self.bearer_claims(req)
        room = urllib.parse.parse_qs(urllib.parse.urlsplit(req.path).query).get("room", [""])[0]
        if not ROOM_RE.fullmatch(room):
            raise HTTPError(400, "query parameter room must match [A-Za-z0-9_.-]{1,64}")
        try:
            items = self.redis.lrange(f"room:{room}", 0, -1) or []
        except (DependencyDown, RedisError):
            raise HTTPError(503, "redis unavailable", dependency="redis") from None
        return Response(200, [json.loads(i) for i in items])


class VideoService(Service):
    name = "video-service"
    secret_vars = ("JWT_SECRET_FILE", "REDIS_PASSWORD_FILE")

    def __init__(self):
        super().__init__()
        self.redis = _redis_from_env(self.secrets["REDIS_PASSWORD_FILE"])

    def probe(self):
        return {"redis": "up" if self.redis.ping() else "down"}

    def routes(self):
        return [("POST", r"/api/video/calls", "/api/video/calls", self.create),
                ("GET", r"/api/video/calls/([0-9a-f]{32})", "/api/video/calls/{id}", self.get)]

    def create(self, req, _m):
        claims = self.bearer_claims(req)
        participants = read_json(req).get("participants")
        if not (isinstance(participants, list) and 0 < len(participants) <= 16
                and all(isinstance(p, str) and 0 < len(p) <= 64 for p in participants)):
            raise HTTPError(400, "participants must be a list of 1 to 16 names")
        call_id = uuid.uuid4().hex
        call = {"call_id": call_id, "host": claims["sub"], "participants": participants,
                "created": round(time.time(), 3), "turn": {"urls": TURN_URLS}}
        try:
            self.redis.set(f"call:{call_id}", json.dumps(call, separators=(",", ":")), ex=CALL_TTL)
        except (DependencyDown, RedisError):
            raise HTTPError(503, "redis unavailable", dependency="redis") from None
        return Response(201, {"call_id": call_id, "turn": {"urls": TURN_URLS}, "expires_in": CALL_TTL})

    def get(self, req, m):
        self.bearer_claims(req)
        try:
            raw = self.redis.get(f"call:{m.group(1)}")
        except (DependencyDown, RedisError):
            raise HTTPError(503, "redis unavailable", dependency="redis") from None
        if raw is None:
            raise HTTPError(404, "no such call")
        return Response(200, json.loads(raw))


# printable, no backslash, at most 512 characters; "/" separates segments, none empty, "." or ".."
KEY_RE = re.compile(r"[^\x00-\x1f\x7f\\]{1,512}")


def s3_from_env(secrets: dict[str, str]) -> S3Client:
    return S3Client(os.environ.get("MINIO_ENDPOINT", "http://minio:9000"),
                    secrets["MINIO_ACCESS_KEY_FILE"], secrets["MINIO_SECRET_KEY_FILE"])


class StorageService(Service):
    name = "storage-service"
    secret_vars = ("JWT_SECRET_FILE", "MINIO_ACCESS_KEY_FILE", "MINIO_SECRET_KEY_FILE")

    def __init__(self):
        super().__init__()
        self.s3 = s3_from_env(self.secrets)

    def probe(self):
        return {"minio": "up" if self.s3.live() else "down"}

    def health_extra(self):
        return {"bucket": BUCKET}

    def routes(self):
        return [("PUT", r"/api/storage/objects/(.+)", "/api/storage/objects/{key}", self.put),
                ("GET", r"/api/storage/objects/(.+)", "/api/storage/objects/{key}", self.get)]

    @staticmethod
    def _key(m) -> str:
        key = urllib.parse.unquote(m.group(1))
        if not KEY_RE.fullmatch(key) or any(part in ("", ".", "..") for part in key.split("/")):
            raise HTTPError(400, "invalid object key")
        return key

    def _unavailable(self, status: int, body: bytes):
        code = _s3_error_code(body)
        if code == "NoSuchBucket":
            raise HTTPError(503, f"bucket {BUCKET} does not exist (run the create-bucket init step)",
                            dependency="minio")
        raise HTTPError(502, "minio error", dependency="minio", upstream_status=status, code=code)

    def put(self, req, m):
        self.bearer_claims(req)
        key = self._key(m)
        try:
            status, _, body = self.s3.request("PUT", f"/{BUCKET}/{key}", req.body)
        except DependencyDown:
            raise HTTPError(503, "minio unavailable", dependency="minio") from None
        if status != 200:
            self._unavailable(status, body)
        return Response(201, {"key": key, "size": len(req.body),
                              "sha256": hashlib.sha256(req.body).hexdigest()})

    def get(self, req, m):
        self.bearer_claims(req)
        key = self._key(m)
        try:
            status, _, body = self.s3.request("GET", f"/{BUCKET}/{key}")
        except DependencyDown:
            raise HTTPError(503, "minio unavailable", dependency="minio") from None
        if status == 404 and _s3_error_code(body) == "NoSuchKey":
            raise HTTPError(404, "no such object")
        if status != 200:
            self._unavailable(status, body)
        return Response(200, body, content_type="application/octet-stream")


UPSTREAMS = {
    "auth": ("auth-service", 8081),
    "chat": ("chat-service", 8082),
    "video": ("video-service", 8083),
    "storage": ("storage-service", 8084),
}
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept", "X-Request-ID")


class Gateway(Service):
    name = "api-gateway"
    upstream_timeout = float(os.environ.get("UPSTREAM_TIMEOUT_SECONDS", "5"))

    def __init__(self):
        super().__init__()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")

    def _upstream_state(self, host: str, port: int) -> str:
        conn = FastHTTPConnection(host, port, timeout=3 * DEP_TIMEOUT + 0.5)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            body = json.loads(resp.read() or b"{}")
            if resp.status != 200:
                return "down"
            return "up" if body.get("status") == "ok" else str(body.get("status", "down"))
        except (OSError, ValueError, http.client.HTTPException, DependencyDown):
            return "down"
        finally:
            conn.close()

    def probe(self):
        futures = {svc: self._pool.submit(self._upstream_state, svc, port) for svc, port in UPSTREAMS.values()}
        return {svc: f.result() for svc, f in futures.items()}

    def routes(self):
        return [(method, rf"/api/({prefix})(/.*)?", f"/api/{prefix}/*", self.proxy)
                for prefix in UPSTREAMS for method in ("GET", "POST", "PUT", "DELETE")]

    def proxy(self, req, m):
        host, port = UPSTREAMS[m.group(1)]
        headers = {h: req.headers[h] for h in FORWARDED_HEADERS if req.headers.get(h)}
        headers["X-Forwarded-For"] = req.client_address[0]
        headers["Content-Length"] = str(len(req.body))
        conn = FastHTTPConnection(host, port, timeout=self.upstream_timeout)
        try:
            conn.request(req.command, req.path, body=req.body, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException, DependencyDown) as exc:
            log("upstream_error", upstream=host, error=str(exc)[:200])
            raise HTTPError(502, "upstream unavailable", upstream=host) from None
        finally:
            conn.close()
        return Response(resp.status, body, content_type=resp.getheader("Content-Type"))


ROLES = {cls.name: cls for cls in (Gateway, AuthService, ChatService, VideoService, StorageService)}


# ----------------------------------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------------------------------

def serve() -> int:
    name = os.environ.get("SERVICE_NAME", "")
    if name not in ROLES:
        raise ConfigError(f"SERVICE_NAME must be one of {', '.join(sorted(ROLES))} (got {name!r})")
    port = int(os.environ.get("PORT", "8080"))
    service = ROLES[name]()
    handler = type("BoundHandler", (Handler,), {"service": service})
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)
    server.daemon_threads = True
    # PID 1 in a container: without a handler SIGTERM is ignored and `docker stop` waits 10 s
    signal.signal(signal.SIGTERM, _exit_on_signal)
    log("started", port=port, env=service.env, secrets=sorted(service.secret_vars))
    ballast = apply_fault(os.environ.get("DEMO_FAULT", ""))
    if ballast is None:
        return 3
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    log("stopped")
    return 0


def apply_fault(spec: str) -> bytes | None:
    """Planted faults for the runbook's own tests, off unless ``DEMO_FAULT`` is set:

    * ``crash``: exit 3 right after start (under ``restart: always`` the container crash-loops);
    * ``panic``: write a Go-style ``panic: ...`` line to stderr, then serve normally;
    * ``hog:<MB>``: allocate and touch that many megabytes, held for the life of the process.

    Returns the memory held (``b""`` when none), or None when the process must exit now.
    """
    spec = spec.strip()
    if not spec:
        return b""
    if spec == "crash":
        log("fault", fault="crash", detail="exiting at start (DEMO_FAULT=crash)")
        return None
    if spec == "panic":
        sys.stderr.write("panic: runtime error: invalid memory address or nil pointer dereference "
                         "(planted by DEMO_FAULT=panic)\n")
        sys.stderr.flush()
        return b""
    if spec.startswith("hog:"):
        mb = int(spec.split(":", 1)[1])
        ballast = b"\x01" * (mb * 1024 * 1024)  # filled, so every page is really resident
        log("fault", fault="hog", megabytes=mb)
        return ballast
    raise ConfigError(f"DEMO_FAULT must be crash, panic or hog:<MB> (got {spec!r})")


def init_step(argv: list[str]) -> int:
    """``create-bucket NAME`` / ``list-buckets``: S3 init steps run inside the storage container."""
    secrets = {var: read_secret(var) for var in ("MINIO_ACCESS_KEY_FILE", "MINIO_SECRET_KEY_FILE")}
    s3 = s3_from_env(secrets)
    try:
        if argv[0] == "create-bucket" and len(argv) == 2:
            print(f"{argv[1]}: {s3.create_bucket(argv[1])}")
            return 0
        if argv[0] == "list-buckets" and len(argv) == 1:
            for name in s3.list_buckets():
                print(name)
            return 0
    except (DependencyDown, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("usage: service.py [serve | create-bucket NAME | list-buckets]", file=sys.stderr)
    return 2


def _exit_on_signal(signum, _frame) -> None:
    raise KeyboardInterrupt  # unwinds serve_forever in the main thread


def main(argv: list[str]) -> int:
    try:
        if not argv or argv[0] == "serve":
            return serve()
        return init_step(argv)
    except ConfigError as exc:
        print(f"{os.environ.get('SERVICE_NAME', 'service')}: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
