"""The response caches in front of the providers: exact-match and semantic (`response_*`,
`semantic_*`) with their embedders (`embed_*`). The database query cache is storage's
(`storage/query_cache.py`); the external Butter proxy layer is a way of reaching providers
(`providers/butter.py`)."""
