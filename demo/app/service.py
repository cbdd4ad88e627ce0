"""SecureConnect demo backend: the program every app container runs (standard library only), one role per
container. This module is its entry point; the rest of ``/app`` is its parts.

This is the application the runbook demo deploys and verifies. It is not a product: each role is the
smallest thing that behaves like a real service under the checks a runbook makes (health endpoints that
really probe their dependencies, Prometheus metrics, JSON logs, secrets read from files, designed
failure modes when a dependency goes away).

The role is chosen by ``SERVICE_NAME``:

==================  ====================================================================================
api-gateway         reverse proxy: /api/auth -> auth-service, /api/chat -> chat-service,
                    /api/video -> video-service, /api/storage -> storage-service
auth-service        POST /api/auth/login (issues an HS256 JWT, session in redis), GET /api/auth/verify,
                    POST /api/auth/register; users in PostgreSQL (with DATABASE_HOST; fails closed without it)
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

The parts, one module each (flat in ``/app``, the directory the images copy ``demo/app/*.py`` into):

==================  ====================================================================================
``roles.py``        the five roles (:data:`ROLES`)
``web.py``          the HTTP plumbing they share: routing, /health, /metrics, the request log
``config.py``       secrets read from ``*_FILE`` files, the JSON log line
``network.py``      name resolution and connections with a deadline (:class:`DependencyDown`)
``redis_client.py`` the redis client (RESP2)
``pg_client.py``    the PostgreSQL client (SCRAM-SHA-256, parameterised queries)
``user_store.py``   auth-service's users: look-up, registration, password hashes
``jwt_tokens.py``   HS256 JSON Web Tokens
``s3_client.py``    the S3 client of the storage role
``sigv4.py``        AWS Signature V4, also used by ``minio_standin.py`` to verify requests
``metrics.py``      the Prometheus text format
==================  ====================================================================================
"""
from __future__ import annotations

import os
import signal
import sys

from config import ConfigError, log, read_secret
from http_server import Server
from network import DependencyDown
from roles import ROLES, s3_from_env
from web import Handler


def serve() -> int:
    name = os.environ.get("SERVICE_NAME", "")
    if name not in ROLES:
        raise ConfigError(f"SERVICE_NAME must be one of {', '.join(sorted(ROLES))} (got {name!r})")
    port = int(os.environ.get("PORT", "8080"))
    service = ROLES[name]()
    handler = type("BoundHandler", (Handler,), {"service": service})
    server = Server(("0.0.0.0", port), handler, log)
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
