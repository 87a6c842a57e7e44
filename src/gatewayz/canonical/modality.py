"""The modality vocabulary: what a model takes in and gives out, as one string.

A modality is `inputs->outputs`, each a `+`-joined list in a fixed order: inputs from text,
image, audio, video, file; outputs from text, image, audio, video, embeddings. `text->text`,
`text+image->text`, `text->image`, `image->text`, `audio->text`, `text->audio` are all such
strings; anything else is not a modality. Providers' model lists are read into it
(`providers/openai/listing.py`); the catalog's capabilities are written in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

INPUTS = ("text", "image", "audio", "video", "file")
OUTPUTS = ("text", "image", "audio", "video", "embeddings")
TEXT = "text->text"


def _joined(names: tuple[str, ...]) -> list[str]:
    return [
        "+".join(combo) for size in range(1, len(names) + 1) for combo in combinations(names, size)
    ]


# Every modality string the catalog may carry.
MODALITIES: frozenset[str] = frozenset(
    f"{i}->{o}" for i in _joined(INPUTS) for o in _joined(OUTPUTS)
)


def modality(inputs: Iterable[str], outputs: Iterable[str]) -> str | None:
    """`text+image->text` from input and output names (any order, unknown names ignored);
    None without a known input or output."""
    ins, outs = set(inputs), set(outputs)
    left = "+".join(m for m in INPUTS if m in ins)
    right = "+".join(m for m in OUTPUTS if m in outs)
    return f"{left}->{right}" if left and right else None


def is_modality(value: str) -> bool:
    return value in MODALITIES
