"""Model capabilities as data (catalog/capabilities.toml, generated with billing/prices.toml by
scripts/convert_prices.py from the same source rows, with the same keys). A capability's
modality is a string of the vocabulary in `canonical/modality.py`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gatewayz.canonical.modality import TEXT, is_modality

CAPABILITIES_FILE = Path(__file__).with_name("capabilities.toml")


@dataclass(frozen=True, slots=True)
class Capabilities:
    modality: str = TEXT
    tools: bool = False
    vision: bool = False
    output: int | None = None  # max output tokens

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Capabilities:
        value = str(row.get("modality") or TEXT)
        if not is_modality(value):
            raise ValueError(f"unknown modality {value!r}")
        output = row.get("output")
        return cls(
            modality=value,
            tools=bool(row.get("tools", False)),
            vision=bool(row.get("vision", False)),
            output=int(output) if output else None,
        )


@dataclass(frozen=True)
class CapabilityTable:
    """`models[canonical id][provider]` and `native[provider][native id]`, as in the price book."""

    models: Mapping[str, Mapping[str, Capabilities]]
    native: Mapping[str, Mapping[str, Capabilities]]

    @classmethod
    def load(cls, path: Path = CAPABILITIES_FILE) -> CapabilityTable:
        return _load(path)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CapabilityTable:
        def table(section: Mapping[str, Any]) -> dict[str, dict[str, Capabilities]]:
            return {
                outer: {inner: Capabilities.from_row(row) for inner, row in rows.items()}
                for outer, rows in section.items()
            }

        return cls(table(data.get("models", {})), table(data.get("native", {})))

    def lookup(self, model_id: str, provider: str, native_id: str) -> Capabilities | None:
        """This provider's row for the model (by canonical id, then by native id), else the
        model's row from any provider (capabilities belong to the model), else None."""
        rows = self.models.get(model_id, {})
        if provider in rows:
            return rows[provider]
        mine = self.native.get(provider, {})
        if native_id in mine:
            return mine[native_id]
        if rows:
            return rows[min(rows)]
        return None


@cache
def _load(path: Path) -> CapabilityTable:
    with path.open("rb") as f:
        return CapabilityTable.from_mapping(tomllib.load(f))
