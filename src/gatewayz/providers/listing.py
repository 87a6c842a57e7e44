"""A provider's model list: `Listed` entries, what the list says about each model.

Each family has one reader (`providers/<family>/listing.py`, `read_models(fetch)`); its adapter
runs it (`models(timeout_s)`, rich entries: what the catalog sync consumes) and answers its ids
(`list_models()`). A reader GETs JSON pages through `Fetch`: on the provider's pooled
connection, with the adapter's own credentials, every page within one deadline. Any failure —
an HTTP error, a timeout, a body that is not the expected list, the family's credentials that
cannot be had — is a `ListingError` (its message masked by `redacted.RedactedAdapter`, like
every provider text).

Families without a list API (Bedrock, fal) say why in `no_model_list`; their `models()` are the
models the provider is configured with (`configured`).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gatewayz.errors import GatewayError
from gatewayz.providers.provider import Listed, Provider
from gatewayz.providers.transport import HttpPool, TransportError
from gatewayz.providers.upstream_errors import error_message

MAX_PAGES = 50  # a paged list is read at most this many pages deep
PAGE = 1000  # entries asked for per page (the largest page the list APIs serve)
MAX_BODY = 32 << 20
ERROR_BODY = 64 << 10
_NOT_SERVED = "the provider is not served (no adapter)"


class ListingError(Exception):
    """A provider's model list could not be read (HTTP error, timeout, bad body, credentials)."""


class Fetch:
    """GETs of JSON on one provider's pool within one overall deadline (None: each read within
    the pool's read timeout). The headers are the adapter's, for a GET: no content-type, JSON
    accepted."""

    def __init__(
        self, pool: HttpPool, headers: list[tuple[bytes, bytes]], timeout_s: float | None
    ) -> None:
        self.pool = pool
        own = [h for h in headers if h[0] not in (b"content-type", b"accept")]
        self.headers = [(b"accept", b"application/json"), *own]
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s

    async def json(self, path: str) -> Any:
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left <= 0:
            raise ListingError("timed out")
        try:
            async with asyncio.timeout(left):
                body = await self._get(path, left)
        except TimeoutError:
            raise ListingError(f"timed out after reading part of the list ({path})") from None
        except TransportError as exc:
            raise ListingError(f"unreachable: {exc}") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ListingError(f"the model list is not JSON ({path})") from None

    async def _get(self, path: str, read_timeout: float | None) -> bytes:
        resp = await self.pool.request("GET", path, self.headers, read_timeout=read_timeout)
        try:
            if resp.status >= 400:
                detail = await resp.read(ERROR_BODY)
                raise ListingError(f"HTTP {resp.status}: {error_message(detail)}")
            body = await resp.read(MAX_BODY)
        except BaseException:
            resp.abort()
            raise
        resp.release()
        return body


Reader = Callable[[Fetch], Awaitable[list[Listed]]]


async def read(
    reader: Reader,
    pool: HttpPool,
    headers: list[tuple[bytes, bytes]],
    timeout_s: float | None,
) -> list[Listed]:
    """Run a family's reader; a list of an unexpected shape is a ListingError too."""
    try:
        return await reader(Fetch(pool, headers, timeout_s))
    except ListingError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ListingError(f"unexpected model list shape: {exc!r}") from None


async def credentials(
    headers: Callable[[], Awaitable[list[tuple[bytes, bytes]]]],
) -> list[tuple[bytes, bytes]]:
    """Request headers a family has to obtain first (a Vertex OAuth token): a failure to get
    them fails the read like any other."""
    try:
        return await headers()
    except GatewayError as err:
        raise ListingError(err.message) from None


def configured(provider: Provider) -> list[Listed]:
    """The models a provider is configured with (its GATEWAYZ_PROVIDER_<X>_MODELS and the native
    ids of providers.toml), for a family without a list API."""
    return [Listed(n) for n in dict.fromkeys([*provider.models, *provider.native_ids.values()])]


class ModelListing(ABC):
    """The model-list side of an adapter: `models` runs the family's reader, `list_models` is
    its ids; `no_model_list` says why a family has no list API to read (None: it has one)."""

    no_model_list: str | None = None

    @abstractmethod
    async def models(self, timeout_s: float | None = None) -> list[Listed]:
        """Every model the provider's list offers (all pages), within `timeout_s`."""

    async def list_models(self) -> list[str]:
        return [m.native_id for m in await self.models()]


def unlisted(provider: Provider) -> str | None:
    """Why the provider's model list is not read (not served, or its family has no list API);
    None when it is."""
    if provider.adapter is None:
        return _NOT_SERVED
    reason: str | None = provider.adapter.no_model_list
    return reason


async def list_models(provider: Provider, timeout_s: float) -> list[Listed]:
    """Every model the provider's list API offers (all pages), within `timeout_s`, as its
    adapter reads it; a ListingError when it has none to read."""
    reason = unlisted(provider)
    if reason is not None:
        raise ListingError(reason)
    assert provider.adapter is not None
    return await provider.adapter.models(timeout_s)


def text(value: Any) -> str | None:
    """A non-empty string the list gives, else None."""
    return value if isinstance(value, str) and value else None


def positive(value: Any) -> int | None:
    """A positive integer the list gives (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
