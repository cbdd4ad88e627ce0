"""The roles of the demo backend, one per container, chosen by ``SERVICE_NAME`` (:data:`ROLES`): the API
gateway, and the auth, chat, video and storage services (what each serves: ``service.py``'s docstring)."""
from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
import uuid

from config import ConfigError, log
from jwt_tokens import jwt_encode
from network import DEP_TIMEOUT, DependencyDown, FastHTTPConnection
from redis_client import Redis, RedisError
from s3_client import S3Client, s3_error_code
from user_store import DemoUserOnly, StoreUnavailable, UserExists, UserStore
from web import HTTPError, Response, Service, read_json

BUCKET = os.environ.get("STORAGE_BUCKET", "secureconnect-media")
TOKEN_TTL = 3600
CALL_TTL = 3600
TURN_URLS = ["turn:127.0.0.1:3478"]


def _redis_from_env(password: str) -> Redis:
    return Redis(os.environ.get("REDIS_HOST", "redis"), int(os.environ.get("REDIS_PORT", "6379")), password)


USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_PASSWORD = 12


class AuthService(Service):
    name = "auth-service"
    # With DATABASE_HOST (compose.yaml), users live in PostgreSQL and its role's password is a secret too;
    # without it (the swarm stack, which has no database), only the demo user, in memory.
    with_database = bool(os.environ.get("DATABASE_HOST"))
    secret_vars = ("JWT_SECRET_FILE", "REDIS_PASSWORD_FILE", "DEMO_USER_PASSWORD_FILE") \
        + ("AUTH_DB_PASSWORD_FILE",) * with_database

    def __init__(self):
        super().__init__()
        self.redis = _redis_from_env(self.secrets["REDIS_PASSWORD_FILE"])
        demo_password = self.secrets["DEMO_USER_PASSWORD_FILE"]
        self.users = (UserStore(self.secrets["AUTH_DB_PASSWORD_FILE"], demo_password) if self.with_database
                      else DemoUserOnly(demo_password))

    def probe(self):
        deps = {"redis": "up" if self.redis.ping() else "down"}
        if self.with_database:
            deps["postgres"] = self.users.state()
        return deps

    def routes(self):
        return [("POST", r"/api/auth/login", "/api/auth/login", self.login),
                ("POST", r"/api/auth/register", "/api/auth/register", self.register),
                ("GET", r"/api/auth/verify", "/api/auth/verify", self.verify)]

    def login(self, req, _m):
        data = read_json(req)
        user, password = data.get("username"), data.get("password")
        try:  # fails closed: no user store, no login
            ok = isinstance(user, str) and isinstance(password, str) and self.users.authenticate(user, password)
        except StoreUnavailable as exc:
            log("login_unavailable", username=str(user)[:64], reason=str(exc)[:200])
            raise HTTPError(503, f"login unavailable: {exc}") from None
        if not ok:
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

    def register(self, req, _m):
        """A new user: 201, 409 when the name is taken, 503 when the user store cannot answer."""
        data = read_json(req)
        user, password = data.get("username"), data.get("password")
        if not (isinstance(user, str) and USERNAME_RE.fullmatch(user)):
            raise HTTPError(400, "username must match [A-Za-z0-9_.-]{1,64}")
        if not (isinstance(password, str) and len(password) >= MIN_PASSWORD):
            raise HTTPError(400, f"password must be a string of at least {MIN_PASSWORD} characters")
        try:
            self.users.register(user, password)
        except UserExists:
            raise HTTPError(409, "username taken") from None
        except StoreUnavailable as exc:
            raise HTTPError(503, f"registration unavailable: {exc}") from None
        log("registered", username=user)
        return Response(201, {"username": user, "created": True})

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
        code = s3_error_code(body)
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
        if status == 404 and s3_error_code(body) == "NoSuchKey":
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
    connect_timeout = float(os.environ.get("UPSTREAM_CONNECT_TIMEOUT_SECONDS", "2"))  # a container on the same network

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

    def _connected(self, host: str, port: int) -> FastHTTPConnection:
        """A connection to an upstream, tried twice, each time resolved afresh (nginx's proxy_next_upstream on a
        connect error): an address resolved just before its container left the network (a rolling redeploy)
        no longer answers, and the name now resolves to the container that replaced it. Only the connection
        is retried, never a request that was sent."""
        for attempt in (1, 2):
            conn = FastHTTPConnection(host, port, timeout=self.upstream_timeout, connect_timeout=self.connect_timeout)
            try:
                conn.connect()
                return conn
            except DependencyDown as exc:
                conn.close()
                if attempt == 2:
                    log("upstream_error", upstream=host, error=str(exc)[:200])
                    raise HTTPError(502, "upstream unavailable", upstream=host) from None
                log("upstream_retry", upstream=host, error=str(exc)[:200])
        raise AssertionError("unreachable")

    def proxy(self, req, m):
        host, port = UPSTREAMS[m.group(1)]
        headers = {h: req.headers[h] for h in FORWARDED_HEADERS if req.headers.get(h)}
        headers["X-Forwarded-For"] = req.client_address[0]
        headers["Content-Length"] = str(len(req.body))
        conn = self._connected(host, port)
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
