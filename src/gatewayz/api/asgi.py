"""Small helpers for raw ASGI endpoints on the hot path (no per-request framework objects)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Receive, Scope, Send

from gatewayz.errors import InvalidRequest, PayloadTooLarge

JSON = b"application/json"


def speaks_anthropic(path: str) -> bool:
    """Errors outside the endpoints speak the dialect of the path the caller used."""
    return path.startswith("/v1/messages")


def header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return v  # type: ignore[no-any-return]
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes with 413 (before reading it all
    when Content-Length says so)."""
    length = header(scope, b"content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes.")
        except ValueError:
            raise InvalidRequest("Invalid Content-Length header.") from None
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client disconnected before sending the whole body.")
        body = message.get("body", b"")
        if body:
            size += len(body)
            if size > limit:
                raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes.")
            chunks.append(body)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
