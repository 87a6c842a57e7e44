"""Catalog offers: one model served by one provider under its native id, at a price.

`OfferBuilder.build` merges what a provider's model list says (`Listed`) with the pricing data
and the capabilities table. An entry is left out, and counted by reason, when:
- `unroutable`: no model id a client could send reaches this provider with this native id;
- `unpriced`: no price resolves (only the default rate would apply), or it is zero (free
  variants, the built-in simulator) — the catalog lists priced models only;
- `no_context`: neither the list nor the pricing data knows its context length.

Prices are resolved exactly as billing resolves them (`Meter.lookup`): the model's price on
this provider, else the provider's row for the native id, else the model's dearest row on any
provider; so the catalog shows what a request would be charged.

Without a sync, a provider's offers are its rows in the pricing data plus the models configured
for it (`seed_listing`, source `pricing`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from gatewayz.billing.pricing import Price, PriceBook
from gatewayz.canonical.modality import TEXT, is_modality
from gatewayz.catalog.capabilities import CapabilityTable
from gatewayz.catalog.naming import Naming
from gatewayz.providers.provider import Listed, Provider
from gatewayz.storage.catalog import offer_rows, replace_offer_rows
from gatewayz.storage.db import DbConnection


@dataclass(frozen=True, slots=True)
class Offer:
    model_id: str
    provider: str
    native_id: str
    name: str
    context_length: int
    modality: str
    price: Price
    streaming: bool = True
    tools: bool = False
    vision: bool = False
    benchmarks: dict[str, Any] | None = None
    huggingface: dict[str, Any] | None = None
    source: str = "api"
    # Derived from `price` once (the read path filters and renders thousands of offers).
    prompt: Decimal = field(init=False, repr=False, compare=False)
    completion: Decimal = field(init=False, repr=False, compare=False)
    _pricing: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", self.price.prompt)
        object.__setattr__(self, "completion", self.price.completion)
        object.__setattr__(self, "_pricing", self.price.as_row())

    def pricing(self) -> dict[str, str]:
        """Decimal strings, USD per 1M tokens (`image`: per image, `request`: per request).
        Shared: do not modify."""
        return self._pricing

    def to_row(self, synced_at: datetime) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "native_id": self.native_id,
            "model_id": self.model_id,
            "name": self.name,
            "context_length": self.context_length,
            "modality": self.modality,
            "pricing": self.pricing(),
            "supports_streaming": self.streaming,
            "supports_tools": self.tools,
            "supports_vision": self.vision,
            "benchmarks": self.benchmarks,
            "huggingface": self.huggingface,
            "synced_at": synced_at,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Offer:
        return cls(
            model_id=row["model_id"],
            provider=row["provider"],
            native_id=row["native_id"],
            name=row["name"],
            context_length=int(row["context_length"]),
            modality=row["modality"],
            price=Price.from_row(row["pricing"]),
            streaming=bool(row["supports_streaming"]),
            tools=bool(row["supports_tools"]),
            vision=bool(row["supports_vision"]),
            benchmarks=row["benchmarks"],
            huggingface=row["huggingface"],
            source="api",
        )


async def load_offers(conn: DbConnection, provider: str) -> list[Offer]:
    """The provider's stored offers (as its last good sync wrote them)."""
    return await offer_rows(conn, provider, Offer.from_row)


async def replace_offers(
    conn: DbConnection, provider: str, offers: Sequence[Offer], now: datetime
) -> None:
    """Store `offers` as the provider's, synced at `now`, in place of its previous ones."""
    await replace_offer_rows(conn, provider, [o.to_row(now) for o in offers])


def offer_price(book: PriceBook, model_id: str, provider: str, native_id: str) -> Price | None:
    """The price billing would charge for this offer; None when none resolves or it is zero."""
    if provider == "simulated":  # the built-in simulator costs nothing (billing/meter.py)
        return None
    found = book.lookup(model_id, provider)
    if found.is_default and native_id != model_id:
        by_native = book.lookup(native_id, provider)
        if not by_native.is_default:
            found = by_native
    if found.is_default:
        return None
    price = found.price
    if price.prompt == 0 and price.completion == 0:
        return None
    return price


def default_name(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


class OfferBuilder:
    def __init__(
        self,
        naming: Naming,
        capabilities: CapabilityTable,
        price_book: Callable[[], PriceBook],
        *,
        max_offers: int,
    ) -> None:
        self.naming = naming
        self.capabilities = capabilities
        self.price_book = price_book
        self.max_offers = max_offers

    def build(
        self, provider: Provider, listed: Iterable[Listed], source: str = "api"
    ) -> tuple[list[Offer], Counter[str]]:
        """The priced, routable offers among `listed` (first listing of a native id wins, at
        most `max_offers`, by model id) and the count of those left out, by reason."""
        book = self.price_book()
        excluded: Counter[str] = Counter()
        offers: dict[str, Offer] = {}
        for item in listed:
            self.add(offers, excluded, book, provider, item, source)
        return self.finish(offers, excluded), excluded

    def add(
        self,
        offers: dict[str, Offer],
        excluded: Counter[str],
        book: PriceBook,
        provider: Provider,
        item: Listed,
        source: str,
    ) -> None:
        """One listed entry into `offers` (by native id), or its reason into `excluded`."""
        if item.native_id in offers:
            return
        offer, reason = self._offer(book, provider, item, source)
        if offer is None:
            excluded[reason] += 1
        else:
            offers[item.native_id] = offer

    def finish(self, offers: dict[str, Offer], excluded: Counter[str]) -> list[Offer]:
        chosen = sorted(offers.values(), key=lambda o: (o.model_id, o.native_id))
        if len(chosen) > self.max_offers:
            excluded["over_limit"] += len(chosen) - self.max_offers
            chosen = chosen[: self.max_offers]
        return chosen

    def reprice(self, offers: list[Offer]) -> list[Offer]:
        """Stored offers at today's prices: an admin price override made since the sync applies
        at once (a price the book no longer resolves keeps the synced one)."""
        book = self.price_book()
        touched = {model for model, _ in book.overrides}
        if not touched:
            return offers
        out = []
        for offer in offers:
            if offer.model_id in touched or offer.native_id in touched:
                price = offer_price(book, offer.model_id, offer.provider, offer.native_id)
                if price is not None and price.as_row() != offer.pricing():
                    offer = replace(offer, price=price)
            out.append(offer)
        return out

    def seed_listing(self, provider: Provider) -> list[Listed]:
        """What the pricing data and configuration say the provider serves: its price rows
        (by canonical id and by native id), its configured models and its mapped native ids."""
        book = self.price_book()
        natives: list[str] = []
        for model_id, rows in book.models.items():
            if provider.slug in rows:
                native = self.naming.native_id(provider, model_id)
                if native is not None:
                    natives.append(native)
        natives += list(book.native.get(provider.slug, {}))
        natives += [*provider.models, *provider.native_ids.values()]
        return [Listed(n) for n in dict.fromkeys(natives)]

    def _offer(
        self, book: PriceBook, provider: Provider, item: Listed, source: str
    ) -> tuple[Offer | None, str]:
        model_id = self.naming.model_id(provider, item.native_id)
        if model_id is None:
            return None, "unroutable"
        price = offer_price(book, model_id, provider.slug, item.native_id)
        if price is None:
            return None, "unpriced"
        context = item.context_length or price.context
        if not context or context <= 0:
            return None, "no_context"
        caps = self.capabilities.lookup(model_id, provider.slug, item.native_id)
        modality = item.modality if item.modality and is_modality(item.modality) else None
        modality = modality or (caps.modality if caps else TEXT)
        inputs = modality.split("->", 1)[0].split("+")
        tools = item.tools if item.tools is not None else bool(caps and caps.tools)
        vision = item.vision if item.vision is not None else bool(caps and caps.vision)
        hf = item.huggingface_id
        offer = Offer(
            model_id=model_id,
            provider=provider.slug,
            native_id=item.native_id,
            name=item.name or default_name(model_id),
            context_length=int(context),
            modality=modality,
            price=price,
            # Every provider family streams (the pipeline translates each one's stream).
            streaming=True,
            tools=tools,
            vision=vision or "image" in inputs,
            huggingface={"id": hf, "url": f"https://huggingface.co/{hf}"} if hf else None,
            source=source,
        )
        return offer, ""
