"""The S3 client of the storage role and its init steps: path-style requests to MinIO, signed with SigV4."""
from __future__ import annotations

import http.client
import os
import urllib.parse
import xml.etree.ElementTree as ET

from network import DEP_TIMEOUT, DependencyDown, FastHTTPConnection
from sigv4 import s3_uri_encode, sigv4_headers


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
        if status == 409 and s3_error_code(body) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return "exists"
        raise RuntimeError(f"CreateBucket {name}: HTTP {status} {s3_error_code(body)}")

    def list_buckets(self) -> list[str]:
        status, _, body = self.request("GET", "/")
        if status != 200:
            raise RuntimeError(f"ListBuckets: HTTP {status} {s3_error_code(body)}")
        root = ET.fromstring(body)
        return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Name"]


def s3_error_code(body: bytes) -> str:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return ""
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Code":
            return el.text or ""
    return ""
