"""Caches: the response caches in front of the providers (exact-match and semantic:
`response_*`, `semantic_*`, `embed_*`), the external Butter proxy layer (`butter`), and the
database query cache (`query`)."""
