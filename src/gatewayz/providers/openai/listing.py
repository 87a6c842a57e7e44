"""The OpenAI-compatible model list: `GET {base}/models` → `{"data": [{"id", ...}]}` (or a bare
JSON array, as Together answers).

Extra fields are read when present: `name`, `context_length` (or Groq's `context_window`, or
OpenRouter's `top_provider.context_length`), `architecture.input_modalities` /
`output_modalities` (or `architecture.modality`), `supported_parameters` (`tools`) and
`hugging_face_id`.
"""

from __future__ import annotations

from typing import Any

from gatewayz.canonical.modality import is_modality, modality
from gatewayz.providers.listing import Fetch, positive, text
from gatewayz.providers.provider import Listed


async def read_models(fetch: Fetch) -> list[Listed]:
    raw = await fetch.json("/models")
    items = raw if isinstance(raw, list) else raw["data"]
    return [entry(m) for m in items if isinstance(m, dict) and text(m.get("id"))]


def entry(m: dict[str, Any]) -> Listed:
    arch = m.get("architecture") if isinstance(m.get("architecture"), dict) else {}
    ins, outs = arch.get("input_modalities"), arch.get("output_modalities")
    found: str | None = None
    if isinstance(ins, list) and isinstance(outs, list):
        found = modality(ins, outs)
    elif isinstance(arch.get("modality"), str) and is_modality(arch["modality"]):
        found = arch["modality"]
    params = m.get("supported_parameters")
    top = m.get("top_provider") if isinstance(m.get("top_provider"), dict) else {}
    return Listed(
        native_id=m["id"],
        name=text(m.get("name")),
        context_length=positive(m.get("context_length"))
        or positive(m.get("context_window"))
        or positive(top.get("context_length")),
        modality=found,
        tools=("tools" in params) if isinstance(params, list) else None,
        vision=("image" in ins) if isinstance(ins, list) else None,
        huggingface_id=text(m.get("hugging_face_id")),
    )
