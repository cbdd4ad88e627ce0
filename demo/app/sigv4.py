"""AWS Signature Version 4 for S3 (path-style): the storage role signs its requests with it and the MinIO
stand-in (``minio_standin.py``) verifies them with it. Standard library only."""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import urllib.parse


SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def s3_uri_encode(path: str) -> str:
    """S3's canonical URI: every byte except unreserved characters and '/' percent-encoded, once."""
    return urllib.parse.quote(path, safe="/-_.~")


def canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                    for k, v in sorted(pairs))


def sigv4_signature(secret_key: str, method: str, path: str, query: str, headers: dict[str, str],
                    signed_headers: list[str], payload_hash: str, amz_date: str,
                    region: str = "us-east-1", service: str = "s3") -> str:
    """The hex SigV4 signature. ``path`` is the *decoded* path; ``headers`` keys are lower-case."""
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed_headers)
    canonical_request = "\n".join([method, s3_uri_encode(path), canonical_query(query), canonical_headers,
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
