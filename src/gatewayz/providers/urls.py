"""The one way a value from a request or a provider's answer is put into an upstream URL.

`segment` percent-encodes a path segment: every character but RFC 3986's unreserved ones (and
those the caller keeps, as `@` in Google's `model@version` ids or `/` in a Gemini
`tunedModels/x` id) is escaped, so a value can never end the path, start a query, or add a
header line; a value that is, or has, an empty, `.` or `..` segment is refused (`Unsupported`:
nothing is sent to that provider). `query` escapes a query-parameter value completely.
The transport checks every request target again before sending (`request_safety.check_request`).
"""

from __future__ import annotations

from urllib.parse import quote

from gatewayz.errors import Unsupported

_DOT_SEGMENTS = frozenset({"", ".", ".."})


def segment(value: str, *, keep: str = "") -> str:
    """`value` as one URL path segment (or several, when `keep` has `/`), escaped."""
    parts = value.split("/") if "/" in keep else [value]
    if not _DOT_SEGMENTS.isdisjoint(parts):
        raise Unsupported(
            f"The id {value[:100]!r} cannot be placed in a provider URL (empty, '.' or '..' "
            "segment).",
            param="model",
        )
    return quote(value, safe=keep)


def query(value: str) -> str:
    """`value` as a query-parameter value, escaped (`&`, `=`, `#`, `/` included)."""
    return quote(value, safe="")
