"""AWS Signature Version 4 (header auth), with hmac/hashlib only.

For services other than S3 the canonical URI is the request path URI-encoded once more: a
model id `a:b` travels as `/model/a%3Ab/...` and is signed as `/model/a%253Ab/...` (what AWS
and botocore do). The payload is always hashed (`x-amz-content-sha256`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(slots=True, frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str | None = None


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret_key).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, also collapsing empty segments (AWS wants `//` collapsed)."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def canonical_uri(path: str, double_encode: bool = True) -> str:
    """The path as it goes into the canonical request: dot segments removed, then encoded once
    more (unless `double_encode` is False, as for S3)."""
    if not path:
        return "/"
    normalized = _remove_dot_segments(path)
    return quote(normalized, safe="/~") if double_encode else normalized


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


def _canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.strip().lower(), []).append(" ".join(value.split()))
    names = sorted(merged)
    lines = "".join(f"{n}:{','.join(merged[n])}\n" for n in names)
    return lines, ";".join(names)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    payload_hash: str,
    double_encode: bool = True,
) -> tuple[str, str]:
    """(canonical request, signed header names)."""
    lines, signed = _canonical_headers(headers)
    text = "\n".join(
        [
            method.upper(),
            canonical_uri(path, double_encode),
            canonical_query(query),
            lines,
            signed,
            payload_hash,
        ]
    )
    return text, signed


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def authorization(
    creds: Credentials,
    region: str,
    service: str,
    timestamp: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    payload_hash: str,
) -> str:
    """The Authorization header value for a request whose headers (`host` and `x-amz-date`
    included) are exactly the ones to sign."""
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    canonical, signed = canonical_request(method, path, query, headers, payload_hash)
    sts = string_to_sign(timestamp, scope, canonical)
    key = signing_key(creds.secret_key, date, region, service)
    signature = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


def sign(
    creds: Credentials,
    region: str,
    service: str,
    method: str,
    host: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """The headers to add to a request (`path` exactly as sent on the wire, `headers` the
    others to sign, `host` not among them): x-amz-date, x-amz-content-sha256,
    x-amz-security-token (with a session token) and authorization."""
    timestamp = (now or datetime.now(UTC)).strftime(TIMESTAMP_FORMAT)
    payload_hash = hashlib.sha256(body).hexdigest()
    added = [("x-amz-date", timestamp), ("x-amz-content-sha256", payload_hash)]
    if creds.session_token:
        added.append(("x-amz-security-token", creds.session_token))
    path, _, raw_query = path.partition("?")
    query: list[tuple[str, str]] = []
    for part in filter(None, raw_query.split("&")):
        k, _, v = part.partition("=")
        query.append((unquote(k), unquote(v)))
    signed = [("host", host), *headers, *added]
    auth = authorization(
        creds, region, service, timestamp, method, path, query, signed, payload_hash
    )
    return [*added, ("authorization", auth)]
