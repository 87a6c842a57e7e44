"""The one door provider errors go out through: every served provider's adapter is wrapped so
that a GatewayError it raises — an HTTP error answer (`base.open_upstream`), a malformed or
failed answer, an error event in the middle of a stream — or a ListingError (its model list
unreadable: `listing.py`) has its message masked (`redact.py`) before the pipeline, the
caller's dialect, the request log, the catalog or a log line sees it. Whatever family produced
the text and however it did, it passes here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk
from gatewayz.errors import GatewayError
from gatewayz.providers.listing import ListingError
from gatewayz.providers.provider import Listed
from gatewayz.providers.redact import Redactor


class RedactedStream:
    """An open upstream stream whose error, if it fails mid-way, is masked."""

    def __init__(self, inner: Any, redact: Redactor) -> None:
        self.inner = inner
        self._redact = redact
        self._batches: AsyncIterator[list[StreamChunk]] | None = None

    def __aiter__(self) -> RedactedStream:
        self._batches = aiter(self.inner)
        return self

    async def __anext__(self) -> list[StreamChunk]:
        assert self._batches is not None
        try:
            return await anext(self._batches)
        except GatewayError as err:
            self._redact.error(err)
            raise

    def abort(self) -> None:
        self.inner.abort()

    def release(self) -> None:
        self.inner.release()


# The media operations a family may implement (canonical/media.py): masked like `send`, and
# present here only when the family has them (the media routes look for them by name).
MEDIA_METHODS = frozenset({"embed", "generate_images", "transcribe"})


class RedactedAdapter:
    """A provider's adapter (`provider.Adapter`) whose errors are masked; anything else
    (`pool`, `headers()`, a family's own attributes) is the wrapped adapter's."""

    def __init__(self, inner: Any, redact: Redactor) -> None:
        self.inner = inner
        self.family: str = inner.family
        self._redact = redact

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)  # AttributeError: the family does not have it
        return partial(self._masked, attr) if name in MEDIA_METHODS else attr

    async def _masked(self, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        try:
            return await method(*args)
        except GatewayError as err:
            self._redact.error(err)
            raise

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        try:
            resp: ChatResponse = await self.inner.send(req, native_model)
        except GatewayError as err:
            self._redact.error(err)
            raise
        return resp

    async def stream(self, req: ChatRequest, native_model: str) -> RedactedStream:
        try:
            upstream = await self.inner.stream(req, native_model)
        except GatewayError as err:
            self._redact.error(err)
            raise
        return RedactedStream(upstream, self._redact)

    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        try:
            found: list[Listed] = await self.inner.models(timeout_s)
        except ListingError as err:
            raise ListingError(self._redact(str(err))) from None
        return found

    async def list_models(self) -> list[str]:
        return [m.native_id for m in await self.models()]
