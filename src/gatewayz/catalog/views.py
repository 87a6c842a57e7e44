"""The catalog's two views over the active providers' offers, their filters and their JSON.

- unique: one entry per model id (deduplicated) with the providers offering it. The model's own
  fields (name, pricing, context, modality, capabilities) are those of its primary offer: the
  offer of the model's maker when it serves it, else the first offering provider in
  providers.toml order (the order routing prefers too). With `provider=P` a model shows P's offer.
- full: one entry per provider offer (the same model once per provider).

Pricing is in USD per 1M tokens as decimal strings (`image`: per image, `request`: per request).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from gatewayz.catalog.model_health import HealthData
from gatewayz.catalog.offers import Offer
from gatewayz.catalog.query import Query
from gatewayz.catalog.sync import skip_reason
from gatewayz.providers.provider import Provider
from gatewayz.storage.catalog import SyncState, succeeded


@dataclass(slots=True)
class Model:
    id: str
    offers: list[Offer]  # primary first
    search: str = ""

    @property
    def primary(self) -> Offer:
        return self.offers[0]


Row = tuple[Model, Offer]  # a model and the offer shown for it


@dataclass(slots=True)
class Snapshot:
    """Every active offer, merged: `models` by id (deduplicated), and the rows each view lists
    (unique: each model with its primary offer; full: every offer), each sorted by id; other
    orders are computed once per snapshot, on first use."""

    models: list[Model] = field(default_factory=list)
    by_id: dict[str, Model] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # offers per provider
    unique: list[Row] = field(default_factory=list)
    full: list[Row] = field(default_factory=list)
    by_provider: dict[str, list[Row]] = field(default_factory=dict)
    _orders: dict[tuple[str, str | None, str], list[Row]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, by_provider: Mapping[str, list[Offer]], rank: Mapping[str, tuple[int, tuple[str, ...]]]
    ) -> Snapshot:
        """`rank[slug]` = (position in providers.toml, organisations it serves natively)."""
        grouped: dict[str, list[Offer]] = {}
        for offers in by_provider.values():
            for offer in offers:
                grouped.setdefault(offer.model_id, []).append(offer)
        last = (1 << 30, ())
        snap = cls(counts={slug: len(offers) for slug, offers in by_provider.items()})
        for model_id in sorted(grouped):
            offers = grouped[model_id]
            if len(offers) > 1:
                org = model_id.partition("/")[0]
                offers.sort(
                    key=lambda o, org=org: (
                        org not in rank.get(o.provider, last)[1],
                        rank.get(o.provider, last)[0],
                        o.native_id,
                    )
                )
            model = Model(model_id, offers, f"{model_id}\n{offers[0].name}".lower())
            snap.models.append(model)
            snap.unique.append((model, offers[0]))
            for offer in offers:
                row = (model, offer)
                snap.full.append(row)
                snap.by_provider.setdefault(offer.provider, []).append(row)
        snap.by_id = {m.id: m for m in snap.models}
        return snap

    def ordered(self, view: str, provider: str | None, sort: str) -> list[Row]:
        key = (view, provider, sort)
        found = self._orders.get(key)
        if found is not None:
            return found
        if provider is not None:
            rows = self.by_provider.get(provider, [])
        else:
            rows = self.full if view == "full" else self.unique
        if sort == "price":
            rows = sorted(rows, key=lambda r: (r[1].prompt, r[1].completion, r[0].id))
        elif sort == "context":
            rows = sorted(rows, key=lambda r: (-r[1].context_length, r[0].id))
        self._orders[key] = rows
        return rows


def select(snapshot: Snapshot, q: Query) -> tuple[int, list[Row]]:
    """(total matches, this page). With a provider, each model shows that provider's offer
    (in both views: a provider offers a model once)."""
    rows = snapshot.ordered(q.view, q.provider, q.sort)
    if q.q is not None:
        text = q.q
        rows = [r for r in rows if text in r[0].search]
    if q.modality is not None:
        modality = q.modality
        rows = [r for r in rows if r[1].modality == modality]
    for attribute in q.capabilities:
        has = attrgetter(attribute)
        rows = [r for r in rows if has(r[1])]
    if q.min_prompt_price is not None:
        low = q.min_prompt_price
        rows = [r for r in rows if r[1].prompt >= low]
    if q.max_prompt_price is not None:
        high = q.max_prompt_price
        rows = [r for r in rows if r[1].prompt <= high]
    if q.min_completion_price is not None:
        low = q.min_completion_price
        rows = [r for r in rows if r[1].completion >= low]
    if q.max_completion_price is not None:
        high = q.max_completion_price
        rows = [r for r in rows if r[1].completion <= high]
    if q.min_context is not None:
        context = q.min_context
        rows = [r for r in rows if r[1].context_length >= context]
    return len(rows), rows[q.offset : q.offset + q.limit]


# ---------------------------------------------------------------- JSON
def _offer_fields(offer: Offer) -> dict[str, Any]:
    return {
        "name": offer.name,
        "provider_slug": offer.provider,
        "context_length": offer.context_length,
        "modality": offer.modality,
        "pricing": offer.pricing(),
        "supports_streaming": offer.streaming,
        "supports_function_calling": offer.tools,
        "supports_vision": offer.vision,
    }


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v), None)


def model_json(model: Model, shown: Offer, health: HealthData) -> dict[str, Any]:
    return {
        "id": model.id,
        **_offer_fields(shown),
        "health_status": health.best((o.provider, o.native_id) for o in model.offers),
        "benchmarks": _first(o.benchmarks for o in model.offers),
        "huggingface": _first(o.huggingface for o in model.offers),
        "providers": [
            {
                "slug": o.provider,
                "native_id": o.native_id,
                "pricing": o.pricing(),
                "context_length": o.context_length,
                "health_status": health.status(o.provider, o.native_id),
                "source": o.source,
            }
            for o in model.offers
        ],
    }


def offer_json(offer: Offer, health: HealthData) -> dict[str, Any]:
    return {
        "id": offer.model_id,
        **_offer_fields(offer),
        "native_id": offer.native_id,
        "health_status": health.status(offer.provider, offer.native_id),
        "benchmarks": offer.benchmarks,
        "huggingface": offer.huggingface,
        "source": offer.source,
    }


def page_json(snapshot: Snapshot, q: Query, health: HealthData) -> dict[str, Any]:
    total, page = select(snapshot, q)
    if q.view == "full":
        data = [offer_json(offer, health) for _, offer in page]
    else:
        data = [model_json(model, offer, health) for model, offer in page]
    end = q.offset + len(page)
    return {
        "object": "list",
        "view": q.view,
        "data": data,
        "total": total,
        "limit": q.limit,
        "offset": q.offset,
        "next_offset": end if end < total else None,
    }


def openai_model(model: Model) -> dict[str, Any]:
    """The OpenAI model-object shape (`GET /v1/models`), with the catalog's essentials."""
    primary = model.primary
    return {
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": primary.provider,
        "provider": primary.provider,
        "name": primary.name,
        "context_length": primary.context_length,
    }


def provider_json(
    p: Provider, snapshot: Snapshot, health: HealthData, state: SyncState | None
) -> dict[str, Any]:
    """One served provider of `/catalog/providers`: its offers, where they come from, its sync."""
    return {
        "slug": p.slug,
        "name": p.name,
        "family": p.family,
        "models": snapshot.counts.get(p.slug, 0),
        "source": "api" if succeeded(state) and skip_reason(p) is None else "pricing",
        "health_status": health.providers.get(p.slug, "operational"),
        "sync": None if state is None else state.public(),
    }
