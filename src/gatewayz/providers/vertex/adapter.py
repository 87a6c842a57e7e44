"""The Vertex family: Gemini on Google Cloud Vertex AI, authenticated with a service account.

Same bodies as AI Studio (`providers/gemini/`), under
`POST {host}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:
generateContent`, host `https://{location}-aiplatform.googleapis.com` (location `global`:
`aiplatform.googleapis.com`; multi-regions `us`/`eu`: `aiplatform.{location}.rep.googleapis.com`),
with an OAuth access token minted from the service-account JSON file the key names
(GOOGLE_APPLICATION_CREDENTIALS). Project: GOOGLE_CLOUD_PROJECT, else the file's `project_id`;
location: GOOGLE_CLOUD_LOCATION, default `global`. Embeddings are `:predict` with Vertex's own
body (`media.py`); Imagen images are AI Studio's `:predict` body at this path.

The token is cached and refreshed a few minutes before it expires. google-auth refreshes with
blocking I/O, so a refresh (and only a refresh) runs in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from datetime import UTC
from functools import partial
from typing import TYPE_CHECKING, Any

from google.auth import exceptions as auth_exceptions
from google.auth import transport
from google.oauth2 import service_account

from gatewayz.canonical.media import EmbeddingRequest, EmbeddingResponse
from gatewayz.errors import UpstreamError
from gatewayz.providers import listing, urls
from gatewayz.providers.gemini import adapter as gemini
from gatewayz.providers.gemini import media as gemini_media
from gatewayz.providers.transport import HttpPool
from gatewayz.providers.vertex import media
from gatewayz.providers.vertex.listing import read_models

if TYPE_CHECKING:
    from gatewayz.providers.provider import Provider

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_HOST = "https://aiplatform.googleapis.com"
REFRESH_MARGIN_S = 300.0  # refresh this long before the token expires
_TOKEN_TIMEOUT_S = 30.0


class _Response(transport.Response):
    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self._status, self._headers, self._data = status, headers, data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class _UrllibRequest(transport.Request):
    """google-auth's HTTP transport on the standard library (no `requests` dependency)."""

    def __call__(  # type: ignore[override]
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout or _TOKEN_TIMEOUT_S) as r:
                return _Response(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as exc:
            return _Response(exc.code, dict(exc.headers), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise auth_exceptions.TransportError(str(exc)) from exc


class ServiceAccountToken:
    """An access token for one service-account file: loaded lazily, cached, refreshed when it
    is about to expire (in a thread, under a lock so concurrent requests share one refresh)."""

    def __init__(self, path: str, provider: str) -> None:
        self.path = path
        self.provider = provider
        self.refreshes = 0
        self._creds: service_account.Credentials | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def project_id(self) -> str | None:
        return self._load().project_id

    def _load(self) -> service_account.Credentials:
        if self._creds is None:
            try:
                self._creds = service_account.Credentials.from_service_account_file(
                    self.path, scopes=[SCOPE]
                )
            except (OSError, ValueError) as exc:
                raise self._error(f"cannot read the service account file: {exc}") from None
        return self._creds

    def _fresh(self) -> str | None:
        if self._token and time.time() < self._expires_at - REFRESH_MARGIN_S:
            return self._token
        return None

    async def get(self) -> str:
        token = self._fresh()
        if token is not None:
            return token
        async with self._lock:
            token = self._fresh()
            if token is None:
                token = await asyncio.to_thread(self._refresh)
        return token

    def _refresh(self) -> str:
        creds = self._load()
        try:
            creds.refresh(_UrllibRequest())
        except auth_exceptions.GoogleAuthError as exc:
            raise self._error(f"cannot get an access token: {exc}") from None
        self.refreshes += 1
        expiry = creds.expiry
        self._expires_at = expiry.replace(tzinfo=UTC).timestamp() if expiry else time.time()
        self._token = str(creds.token)
        return self._token

    def invalidate(self) -> None:
        self._token = None

    def _error(self, message: str) -> UpstreamError:
        err = UpstreamError(f"provider {self.provider}: {message}", provider=self.provider)
        err.failover = True
        return err


def regional_base_url(base_url: str, location: str) -> str:
    """The default endpoint is per location (the multi-regions `us`/`eu` have their own host
    shape); an overridden base URL is used as it is."""
    if base_url.rstrip("/") != DEFAULT_HOST or location == "global":
        return base_url
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


class Adapter(gemini.Adapter):
    """send / stream / models for Vertex AI (publisher `google` models)."""

    family = "vertex"

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.location = provider.env.get("GOOGLE_CLOUD_LOCATION") or "global"
        url = regional_base_url(provider.base_url, self.location)
        if url != provider.base_url:
            pool = HttpPool(
                url, connect_timeout=pool.connect_timeout, read_timeout=pool.read_timeout
            )
        super().__init__(provider, pool)
        # The key is the path of the service-account file, not a header value.
        self._headers = [h for h in self._headers if h[0] != b"x-goog-api-key"]
        self.credentials = ServiceAccountToken(provider.api_key or "", provider.slug)
        self._project = provider.env.get("GOOGLE_CLOUD_PROJECT") or None

    def _project_id(self) -> str:
        if self._project is None:
            self._project = self.credentials.project_id()
            if not self._project:
                raise self.credentials._error(
                    "no project: set GOOGLE_CLOUD_PROJECT or use a file with project_id"
                )
        return self._project

    async def headers(self) -> list[tuple[bytes, bytes]]:
        token = await self.credentials.get()
        return [*self._headers, (b"authorization", b"Bearer " + token.encode())]

    def model_url(self, native_model: str) -> str:
        project, location = urls.segment(self._project_id()), urls.segment(self.location)
        model = urls.segment(native_model.rsplit("/", 1)[-1], keep="@")
        return f"/v1/projects/{project}/locations/{location}/publishers/google/models/{model}"

    def on_unauthorized(self) -> None:
        self.credentials.invalidate()

    def model_reader(self) -> listing.Reader:
        return read_models

    async def embed(self, req: EmbeddingRequest, native_model: str) -> EmbeddingResponse:
        texts = gemini_media.embedding_texts(req, self.provider.name)
        calls = [
            partial(self._predict_embeddings, batch, native_model, req.dimensions)
            for batch in media.embed_batches(texts, native_model)
        ]
        parts = await gemini_media.in_order(calls)
        counts = [tokens for _, tokens in parts]
        total = None if None in counts else sum(c for c in counts if c is not None)
        return EmbeddingResponse([v for vectors, _ in parts for v in vectors], total)

    async def _predict_embeddings(
        self, texts: list[str], native_model: str, dimensions: int | None
    ) -> tuple[list[list[float]], int | None]:
        body = media.predict_body(texts, dimensions)
        data = await self.post(self.model_url(native_model) + ":predict", body)
        return media.parse_predictions(data, self.provider.slug, len(texts), dimensions)
