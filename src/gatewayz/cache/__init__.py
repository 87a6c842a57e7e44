"""Caches: the response caches in front of the providers (exact-match and semantic:
`response_*`, `semantic_*`, `embed_*`) and the database query cache (`query`). The external
Butter proxy layer is a way of reaching providers: `providers/butter.py`."""
