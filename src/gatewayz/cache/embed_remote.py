"""An embedder that asks an OpenAI-compatible provider: `POST {base_url}/embeddings` with
`{"model", "input"}` and the provider's own key, as configured for chat
(`GATEWAYZ_SEMANTIC_CACHE_EMBEDDER=<provider slug>/<embedding model>`). Every failure is an
`EmbedderUnavailable` (the semantic cache misses)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson

from gatewayz.cache.embed_local import EmbedderUnavailable
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool

_ERROR_BODY_LIMIT = 64 << 10


def auth_headers(provider: Provider) -> list[tuple[bytes, bytes]]:
    """The provider's authentication, as its OpenAI-compatible adapter sends it."""
    headers = [(b"content-type", b"application/json"), (b"user-agent", b"gatewayz/0.1")]
    key = provider.api_key
    if key and provider.auth == "bearer":
        headers.append((b"authorization", b"Bearer " + key.encode()))
    elif key and provider.auth in ("x-api-key", "api-key"):
        headers.append((provider.auth.encode(), key.encode()))
    for k, v in provider.headers.items():
        headers.append((k.lower().encode(), v.encode()))
    return headers


class RemoteEmbedder:
    def __init__(
        self,
        provider: Provider,
        model: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        redact: Callable[[str], str],
    ) -> None:
        self.name = f"{provider.slug}/{model}"
        self._redact = redact  # its errors are logged: the provider may repeat its key there
        self.model = model
        self._headers = auth_headers(provider)
        self.pool = HttpPool(
            provider.base_url,
            max_connections=64,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    async def embed(self, text: str) -> np.ndarray:
        body = orjson.dumps({"model": self.model, "input": text})
        try:
            resp = await self.pool.request("POST", "/embeddings", self._headers, body)
        except Exception as exc:
            raise EmbedderUnavailable(f"{self.name}: {exc!r}") from None
        try:
            data = await (resp.read() if resp.status < 400 else resp.read(_ERROR_BODY_LIMIT))
        except Exception as exc:
            resp.abort()
            raise EmbedderUnavailable(f"{self.name}: {exc!r}") from None
        resp.release()
        if resp.status >= 400:
            said = self._redact(repr(data[:200]))
            raise EmbedderUnavailable(f"{self.name} answered {resp.status}: {said}")
        try:
            values = orjson.loads(data)["data"][0]["embedding"]
            vector = np.asarray(values, dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise EmbedderUnavailable(f"{self.name} sent no embedding ({exc!r})") from None
        norm = float(np.linalg.norm(vector))
        if vector.ndim != 1 or not norm:
            raise EmbedderUnavailable(f"{self.name} sent an empty embedding")
        return vector / norm

    async def close(self) -> None:
        await self.pool.close()
