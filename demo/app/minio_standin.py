"""A stand-in for MinIO, for machines that cannot pull ``minio/minio``: the S3 subset the demo uses.

It is started exactly like MinIO (``minio server /data [--address :9000]``; the demo image's
``/usr/bin/minio`` wraps this file), so the compose file works unchanged with the real image. Supported:

* ``GET /minio/health/live`` and ``/minio/health/ready`` -> 200, unauthenticated;
* S3 path-style, every request verified with AWS Signature V4 (region us-east-1, service s3) against
  the credentials in the files named by ``MINIO_ROOT_USER_FILE`` / ``MINIO_ROOT_PASSWORD_FILE``
  (a bad or missing signature is a 403 with the S3 error XML, like MinIO);
* ListBuckets (``GET /``), CreateBucket (``PUT /bucket``), HeadBucket, PutObject, GetObject, HeadObject.

Objects are files under the data directory (``/data/<bucket>/<key>``), written atomically. Logs are one
JSON line per request; credentials and request headers are never logged.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import tempfile
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_server import Server  # noqa: E402  (sibling file in /app)
from sigv4 import sigv4_signature  # noqa: E402

BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_SKEW = 15 * 60
MAX_BODY = 64 * 1024 * 1024
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/s3/aws4_request,\s*"
                     r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})")


def log(event: str, **fields) -> None:
    record = {"ts": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
              "service": "minio", "event": event, **fields}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _read_credential(var: str, fallback_var: str) -> str:
    """MinIO semantics: ``*_FILE`` names a file (relative names are under /run/secrets)."""
    name = os.environ.get(var, "").strip()
    if name:
        candidate = Path("/run/secrets") / name
        path = candidate if not os.path.isabs(name) and candidate.is_file() else Path(name)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"minio: {var}: cannot read {path}: {exc.strerror}")
        if not value:
            raise SystemExit(f"minio: {var}: {path} is empty")
        return value
    value = os.environ.get(fallback_var, "").strip()
    if not value:
        raise SystemExit(f"minio: set {var} (or {fallback_var})")
    return value


def s3_error(code: str, message: str, resource: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource>"
            f"<RequestId>{os.urandom(8).hex().upper()}</RequestId></Error>").encode()


class Store:
    """Buckets are directories of the data dir, objects are files in them."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def buckets(self) -> list[tuple[str, float]]:
        return sorted((p.name, p.stat().st_mtime) for p in self.root.iterdir()
                      if p.is_dir() and BUCKET_RE.fullmatch(p.name))

    def bucket(self, name: str) -> Path | None:
        p = self.root / name
        return p if BUCKET_RE.fullmatch(name) and p.is_dir() else None

    def object_path(self, bucket: Path, key: str) -> Path | None:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts):
            return None
        return bucket.joinpath(*parts)

    @staticmethod
    def write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MinIO-standin"
    sys_version = ""
    timeout = 60
    store: Store
    access_key: str
    secret_key: str

    # --- plumbing ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", content_type: str = "application/xml",
              headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = status

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, s3_error(code, message, self._path))

    def _authenticate(self, body: bytes) -> bool:
        """Verify the SigV4 Authorization header; sends the 403 itself and returns False if bad."""
        m = AUTH_RE.fullmatch(self.headers.get("Authorization", "").strip())
        if not m:
            self._error(403, "AccessDenied", "Signature V4 authorization required.")
            return False
        access, date, region, signed_headers, signature = m.groups()
        if not hmac.compare_digest(access, self.access_key):
            self._error(403, "InvalidAccessKeyId", "The Access Key Id you provided does not exist.")
            return False
        amz_date = self.headers.get("x-amz-date", "")
        try:
            when = _dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc)
        except ValueError:
            self._error(403, "AccessDenied", "x-amz-date is missing or malformed.")
            return False
        if abs(time.time() - when.timestamp()) > MAX_SKEW or amz_date[:8] != date:
            self._error(403, "RequestTimeTooSkewed", "The difference between the request time and the "
                                                      "server's time is too large.")
            return False
        payload_hash = self.headers.get("x-amz-content-sha256", "")
        if payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
            self._error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header "
                                                           "does not match what was computed.")
            return False
        names = signed_headers.split(";")
        if "host" not in names or any(self.headers.get(h) is None for h in names):
            self._error(403, "AccessDenied", "A signed header is missing.")
            return False
        headers = {h: self.headers.get(h, "") for h in names}
        expected = sigv4_signature(self.secret_key, self.command, self._path, self._query, headers, names,
                                   payload_hash, amz_date, region, "s3")
        if not hmac.compare_digest(expected, signature):
            self._error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                                                       "the signature you provided.")
            return False
        return True

    def _handle(self) -> None:
        start = time.monotonic()
        parts = urllib.parse.urlsplit(self.path)
        self._path, self._query, self._status = urllib.parse.unquote(parts.path), parts.query, 0
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._error(400, "InvalidRequest", "Bad Content-Length.")
        else:
            body = self.rfile.read(length) if length else b""
            try:
                self._route(body)
            except Exception as exc:  # noqa: BLE001 - one request never kills the server
                log("error", error=type(exc).__name__, detail=str(exc)[:200])
                self._error(500, "InternalError", "We encountered an internal error. Please try again.")
        log("request", method=self.command, path=self._path, status=self._status,
            duration_ms=round((time.monotonic() - start) * 1000, 2), client=self.client_address[0])

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle

    def log_message(self, format, *args):  # noqa: A002
        pass

    # --- S3 ---------------------------------------------------------------------------------------
    def _route(self, body: bytes) -> None:
        if self._path in ("/minio/health/live", "/minio/health/ready") and self.command in ("GET", "HEAD"):
            self._send(200, b"", content_type="text/plain")
            return
        if not self._authenticate(body):
            return
        segments = self._path.lstrip("/").split("/", 1)
        bucket_name = segments[0]
        key = segments[1] if len(segments) > 1 else ""
        if not bucket_name:
            if self.command == "GET":
                return self._list_buckets()
            return self._error(405, "MethodNotAllowed", "The specified method is not allowed.")
        if not key:
            if self.command == "PUT":
                return self._create_bucket(bucket_name)
            if self.command == "HEAD":
                return self._send(200 if self.store.bucket(bucket_name) else 404)
            return self._error(501, "NotImplemented", "Only CreateBucket and HeadBucket are supported.")
        bucket = self.store.bucket(bucket_name)
        if bucket is None:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist")
        path = self.store.object_path(bucket, key)
        if path is None:
            return self._error(400, "InvalidArgument", "Invalid object name.")
        if self.command == "PUT":
            self.store.write(path, body)
            return self._send(200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if self.command in ("GET", "HEAD"):
            if not path.is_file():
                return self._error(404, "NoSuchKey", "The specified key does not exist.")
            data = path.read_bytes()
            modified = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
            return self._send(200, data, content_type="application/octet-stream",
                              headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"',
                                       "Last-Modified": modified.strftime("%a, %d %b %Y %H:%M:%S GMT")})
        return self._error(501, "NotImplemented", "Only PutObject, GetObject and HeadObject are supported.")

    def _list_buckets(self) -> None:
        items = "".join(
            f"<Bucket><Name>{escape(name)}</Name><CreationDate>"
            f"{_dt.datetime.fromtimestamp(mtime, _dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.000Z')}"
            f"</CreationDate></Bucket>" for name, mtime in self.store.buckets())
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns="{S3_NS}">'
               f"<Owner><ID>minio</ID><DisplayName>minio</DisplayName></Owner>"
               f"<Buckets>{items}</Buckets></ListAllMyBucketsResult>")
        self._send(200, xml.encode())

    def _create_bucket(self, name: str) -> None:
        if not BUCKET_RE.fullmatch(name) or ".." in name:
            return self._error(400, "InvalidBucketName", "The specified bucket is not valid.")
        try:
            (self.store.root / name).mkdir()
        except FileExistsError:
            return self._error(409, "BucketAlreadyOwnedByYou",
                               "Your previous request to create the named bucket succeeded and you "
                               "already own it.")
        self._send(200, headers={"Location": f"/{name}"})


def _exit_on_signal(signum, _frame) -> None:
    raise KeyboardInterrupt  # unwinds serve_forever in the main thread


def main(argv: list[str]) -> int:
    usage = "usage: minio server DIR [--address [HOST]:PORT]"
    if len(argv) < 2 or argv[0] != "server":
        print(usage, file=sys.stderr)
        return 2
    data_dir, address = None, ":9000"
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--address":
            address = next(rest, ":9000")
        elif arg.startswith("--address="):
            address = arg.split("=", 1)[1]
        elif arg in ("--console-address", "--certs-dir"):
            next(rest, None)  # accepted for compatibility with MinIO's CLI, not used
        elif arg.startswith("--"):
            continue
        elif data_dir is None:
            data_dir = arg
    if data_dir is None:
        print(usage, file=sys.stderr)
        return 2
    host, _, port = address.rpartition(":")
    handler = type("BoundHandler", (Handler,), {
        "store": Store(Path(data_dir)),
        "access_key": _read_credential("MINIO_ROOT_USER_FILE", "MINIO_ROOT_USER"),
        "secret_key": _read_credential("MINIO_ROOT_PASSWORD_FILE", "MINIO_ROOT_PASSWORD"),
    })
    server = Server((host or "0.0.0.0", int(port)), handler, log)
    # PID 1 in a container: without a handler SIGTERM is ignored and `docker stop` waits 10 s
    signal.signal(signal.SIGTERM, _exit_on_signal)
    log("started", address=f"{host or '0.0.0.0'}:{port}", data_dir=data_dir)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
