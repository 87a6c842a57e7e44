"""An embedder that asks a provider, through the same family code as `POST /v1/embeddings`
(the provider's adapter `embed`: OpenAI-compatible, Gemini, Vertex, Bedrock, Cohere), with the
provider's own key as configured for chat (`GATEWAYZ_SEMANTIC_CACHE_EMBEDDER=<provider
slug>/<embedding model>`). The cache's lookups are the gateway's own cost: not billed to a
caller. Every failure is an `EmbedderUnavailable` (the semantic cache misses), its message
masked like any provider error (providers/redacted.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gatewayz.cache.embed_local import EmbedderUnavailable
from gatewayz.canonical.media import EmbeddingRequest
from gatewayz.errors import GatewayError
from gatewayz.providers.provider import Provider


class RemoteEmbedder:
    def __init__(self, provider: Provider, model: str) -> None:
        self.name = f"{provider.slug}/{model}"
        self.model = model
        self._adapter: Any = provider.adapter

    async def embed(self, text: str) -> np.ndarray:
        req = EmbeddingRequest(model=self.model, texts=[text])
        try:
            answer = await self._adapter.embed(req, self.model)
        except GatewayError as exc:
            raise EmbedderUnavailable(f"{self.name}: {exc.message}") from None
        vector = np.asarray(answer.vectors[0], dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if vector.ndim != 1 or not norm:
            raise EmbedderUnavailable(f"{self.name} sent an empty embedding")
        return vector / norm

    async def close(self) -> None:
        """Nothing of its own: the provider's connections are the registry's."""
