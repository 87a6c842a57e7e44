"""`Knowledge`: what routing may ask of the catalog (routing/known.py `KnownModels`): which
provider lists which model, which prices it, and the served names to suggest.

Built off the request path (`KnowledgeBoard.publish`, from catalog/service.py
`publish_known`) from a snapshot of the active providers' offers, each time the snapshot or
the sync state changes; immutable, so the Resolver sees a change as a new object and drops its
cached answers. Prices are the meter's current book (`with_book`: the same lists, a new object,
when an admin override reloads the prices).

A provider lists a model when one of its offers has that canonical id or native id. It prices
it when the book has its own row for the model (by canonical or native id) or an admin override
for the model on any provider; another provider's row is not its price.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from gatewayz.billing.pricing import PriceBook
from gatewayz.catalog.views import Snapshot
from gatewayz.routing.known import Suggestions


@dataclass(frozen=True, slots=True, eq=False)
class Knowledge:
    synced: bool
    snapshot: Snapshot = field(repr=False)  # what it was built from (compared by identity)
    book: PriceBook = field(repr=False)
    listed: Mapping[str, frozenset[str]] = field(repr=False)  # provider → model and native ids
    names: Suggestions = field(repr=False)

    def offers(self, provider: str, model: str, native_id: str) -> bool:
        ids = self.listed.get(provider, frozenset())
        if model in ids or native_id in ids:
            return True
        return any(self._priced(provider, name) for name in dict.fromkeys((model, native_id)))

    def suggest(self, name: str) -> tuple[str, ...]:
        return self.names.suggest(name)

    def with_book(self, book: PriceBook) -> Knowledge:
        return replace(self, book=book)

    def _priced(self, provider: str, name: str) -> bool:
        found = self.book.lookup(name, provider)
        if found.is_default or found.source not in ("packaged", "override"):
            return False  # the default rate, a free variant, or another provider's row
        return found.priced_provider in (provider, None)


def build(
    snapshot: Snapshot,
    synced: bool,
    book: PriceBook,
    aliases: Mapping[str, str],
    orgs: Mapping[str, tuple[str, ...]],
    extra: Iterable[str],
) -> Knowledge:
    """The knowledge of one snapshot. Names to suggest, each with the model it names: the
    catalog's ids, `{org}/{native id}` of a maker's own offers (`deepseek/deepseek-chat`), each
    alias of a catalog id, and the models served by exact name (`extra`: configured ones)."""
    listed: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for model in snapshot.models:
        names[model.id] = model.id
        for offer in model.offers:
            listed.setdefault(offer.provider, set()).update((offer.model_id, offer.native_id))
            if "/" not in offer.native_id:
                for org in orgs.get(offer.provider, ()):
                    names.setdefault(f"{org}/{offer.native_id}", model.id)
    for alias, canonical in aliases.items():
        if canonical in snapshot.by_id:
            names.setdefault(alias, canonical)
    for name in extra:
        names.setdefault(name, name)
    return Knowledge(
        synced, snapshot, book, {p: frozenset(s) for p, s in listed.items()}, Suggestions(names)
    )


class KnowledgeBoard:
    """The current `Knowledge` of one catalog: rebuilt (on a thread: 10,000+ names to index)
    when a new snapshot or sync state is published; a new book makes a new object too."""

    def __init__(
        self,
        price_book: Callable[[], PriceBook],
        aliases: Mapping[str, str],
        orgs: Mapping[str, tuple[str, ...]],
        extra: Callable[[], Iterable[str]],
    ) -> None:
        self.price_book = price_book
        self.aliases = aliases
        self.orgs = orgs
        self.extra = extra
        self._current: Knowledge | None = None

    def current(self) -> Knowledge | None:
        """The knowledge at today's prices; None until first published."""
        found = self._current
        if found is not None:
            book = self.price_book()
            if found.book is not book:
                found = self._current = found.with_book(book)
        return found

    async def publish(self, snapshot: Snapshot, synced: bool) -> None:
        found = self._current
        if found is not None and found.snapshot is snapshot and found.synced == synced:
            return
        extra = list(self.extra())
        book = self.price_book()
        self._current = await asyncio.to_thread(
            build, snapshot, synced, book, self.aliases, self.orgs, extra
        )
