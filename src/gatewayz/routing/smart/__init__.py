"""Smart routers (SPEC §4): `router:general:*` and `router:code:*` model names pick a model
from data (`candidates.toml`: benchmark scores, tiers, sources) with a local tier classifier
(`classifier.py`, trained on `prompts.jsonl` by scripts/train_router.py); the request path's
step is pipeline/smart_route.py and `gatewayz routing eval` reports how well they do."""
