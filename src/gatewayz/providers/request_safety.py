"""The last check before a byte goes upstream: a request the transport writes is exactly one
well-formed HTTP/1.1 request head, whatever a family put in it (`urls.py` escapes values on the
way in; this refuses whatever still would not be safe). Raised before anything is sent, so the
failure is this provider's alone (`base.transport_error`: Unsupported, another provider may
serve the request)."""

from __future__ import annotations

import re
from urllib.parse import unquote


class UnsafeRequest(ValueError):
    """A request target or header that would not be sent as one well-formed request (control
    characters, spaces, dot segments): refused before anything is written."""


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
_TARGET = re.compile(r"/[\x21-\x7e]*")  # visible ASCII only: no spaces, no control characters
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 token)
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # controls but HTAB: no CR, LF, NUL


def check_request(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> None:
    """Raise UnsafeRequest unless `method target` and `headers` form exactly one well-formed
    HTTP/1.1 request head: no control characters or spaces in the target, no `.`/`..` path
    segments (percent-encoded ones included: servers normalise them), no fragment, header
    names that are tokens and values without CR, LF or other control characters."""
    if method not in _METHODS:
        raise UnsafeRequest(f"method {method!r} is not allowed")
    if not _TARGET.fullmatch(target) or "#" in target:
        raise UnsafeRequest(f"request target {target[:100]!r} has characters that are not allowed")
    path = target.partition("?")[0]
    if "." in path or "%" in path:
        for segment in path.split("/"):
            if unquote(segment) in (".", ".."):
                raise UnsafeRequest(f"request target {target[:100]!r} has a dot segment")
    # One scan over all names and one over all values (joined by characters both allow).
    names = [name for name, _ in headers]
    if not all(names) or not _TOKEN.fullmatch(b"!".join(names) or b"!"):
        bad = next(n for n in names if not n or not _TOKEN.fullmatch(n))
        raise UnsafeRequest(f"header name {bad[:40]!r} has characters that are not allowed")
    if _BAD_VALUE.search(b"\t".join(value for _, value in headers)):
        bad = next(n for n, v in headers if _BAD_VALUE.search(v))
        raise UnsafeRequest(f"header {bad[:40]!r} has characters that are not allowed")
