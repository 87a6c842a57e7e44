"""What every provider family shares: opening an upstream request with errors mapped to our
error tree, and turning an upstream byte stream into batches of canonical chunks.

A family is a package (`providers/<family>/`) that exports `Adapter(provider, pool)` with
`send`, `stream`, `models` and `list_models` (see `provider.Adapter`); the registry finds it by
the provider's `family` name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

import orjson

from gatewayz.canonical.types import StreamChunk
from gatewayz.context import UPSTREAM_TRACE
from gatewayz.errors import (
    GatewayError,
    Unsupported,
    UpstreamTimeout,
    UpstreamUnavailable,
    from_upstream_status,
)
from gatewayz.providers.request_safety import UnsafeRequest
from gatewayz.providers.transport import HttpPool, ReadTimeout, UpstreamResponse
from gatewayz.providers.upstream_errors import error_message

ERROR_BODY_LIMIT = 64 << 10
SSE = b"text/event-stream"


class StreamDecoder(Protocol):
    """Turns upstream body bytes, as they arrive, into canonical chunks. Raises a GatewayError
    for an error event or a malformed one."""

    def feed(self, data: bytes) -> list[StreamChunk]: ...

    def finish(self) -> list[StreamChunk]:
        """Called once at the end of the body: whatever the decoder still holds."""
        ...


class EventStream:
    """An open upstream stream: iterate for batches of canonical chunks (one batch per network
    read, so the edge can write them in one go); `abort()` drops the connection."""

    def __init__(self, resp: UpstreamResponse, provider: str, decoder: StreamDecoder) -> None:
        self._resp = resp
        self._provider = provider
        self._decoder = decoder

    async def __aiter__(self) -> AsyncIterator[list[StreamChunk]]:
        decoder = self._decoder
        try:
            async for data in self._resp.chunks():
                batch = decoder.feed(data)
                if batch:
                    yield batch
            batch = decoder.finish()
            if batch:
                yield batch
        except GatewayError:
            raise
        except Exception as exc:
            raise transport_error(exc, self._provider) from None

    def abort(self) -> None:
        self._resp.abort()

    def release(self) -> None:
        self._resp.release()


async def event_stream(
    resp: UpstreamResponse, provider: str, decoder: StreamDecoder, media_type: bytes = SSE
) -> EventStream:
    """The answer to a stream request as an EventStream, once it is one: a 200 of another
    content type (an HTML page from a proxy in between, one JSON body where events were due)
    would read as an empty stream. It is a failed attempt instead, found before anything
    reached the caller, so another provider may serve the request."""
    content_type = resp.header(b"content-type")
    if content_type is None or content_type.split(b";", 1)[0].strip().lower() == media_type:
        return EventStream(resp, provider, decoder)
    try:
        detail = await resp.read(ERROR_BODY_LIMIT)
    except Exception:
        detail = b""
    finally:
        resp.release()
    kind = content_type.decode("latin-1")
    raise UpstreamUnavailable(
        f"provider {provider} answered a stream request with {kind} instead of "
        f"{media_type.decode()}{_error_said(detail)}",
        provider=provider,
    )


def _error_said(body: bytes) -> str:
    """`: <message>` when `body` is a JSON error object, else nothing (a page, an answer)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    return f": {error_message(body)}" if isinstance(raw, dict) and "error" in raw else ""


def transport_error(exc: Exception, provider: str) -> GatewayError:
    if isinstance(exc, UnsafeRequest):  # nothing was sent: this provider cannot take it
        return Unsupported(f"The request cannot be sent to provider {provider}: {exc}.")
    if isinstance(exc, ReadTimeout):
        return UpstreamTimeout(f"provider {provider} timed out: {exc}", provider=provider)
    return UpstreamUnavailable(f"provider {provider} is unreachable: {exc}", provider=provider)


async def open_upstream(
    pool: HttpPool,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    provider: str,
    error_message: Callable[[bytes], str],
    map_error: Callable[[UpstreamResponse, bytes], GatewayError] | None = None,
) -> UpstreamResponse:
    """Send the request; an HTTP error answer becomes the matching GatewayError: by status,
    with the message `error_message` extracts from the body — or, for providers whose errors
    need more than that (headers), whatever `map_error(response, body)` returns. With upstream
    trace propagation on, the attempt's `traceparent` goes along (observability/tracing.py)."""
    trace_headers = UPSTREAM_TRACE.get()
    if trace_headers:
        headers = [*headers, *trace_headers]
    try:
        resp = await pool.request(method, path, headers, body)
    except Exception as exc:
        raise transport_error(exc, provider) from None
    if resp.status >= 400:
        try:
            detail = await resp.read(ERROR_BODY_LIMIT)
        except Exception:
            detail = b""
        finally:
            resp.release()
        if map_error is not None:
            raise map_error(resp, detail)
        retry_after = resp.header(b"retry-after")
        raise from_upstream_status(
            resp.status,
            error_message(detail),
            provider,
            retry_after.decode() if retry_after else None,
        )
    return resp


async def read_body(resp: UpstreamResponse, provider: str) -> bytes:
    """The whole body of a successful answer (the connection goes back to the pool)."""
    try:
        data = await resp.read()
    except Exception as exc:
        resp.abort()
        raise transport_error(exc, provider) from None
    resp.release()
    return data
