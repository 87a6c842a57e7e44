"""`GET /v1/models[/{id}]` over the catalog: the models it lists (`ModelIndex`, one per catalog
snapshot), a name resolved as the chat endpoints resolve it (`find_model`), and Anthropic's shape.

A name is first looked up as listed (the catalog's canonical ids, then the configured and
simulated names); otherwise the resolver (routing/resolve.py) decides, as for a chat request: an
alias (`gpt-4o-mini`), a bare native id (`gpt-4o-2024-08-06`) or a `{provider}/{native}` pin
answers the listed model its routes reach (the canonical id's, else the one listing a route's
provider and native id). A served name the catalog does not list answers a minimal model object
under its canonical id when the routing data knows it (an alias), when the catalog cannot know
(never synced), or when a route's provider lists or prices it (catalog/known.py). Otherwise it
is a 404 `model_not_found`, as is a name no served provider takes: a name that merely matches a
provider's pattern (`gpt-4o-minii` and `gpt-*`) is no model, though chat would forward it.

Ids are bounded before any use: 1–256 printable characters (else 400); a name the chat
endpoints would refuse (canonical/bounds.py) is found only as listed, never resolved.

Anthropic's Models API (requests with `anthropic-version`): `{type, id, display_name,
created_at}` objects in id order, pages of `limit` (1–1000, 20 by default) after `after_id` or
before `before_id` (a cursor need not be listed: the page starts where it would sort), with
`has_more` in the page's direction and the page's `first_id` / `last_id`.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from gatewayz.canonical.bounds import model_id_problem
from gatewayz.catalog.views import Snapshot, openai_model
from gatewayz.errors import InvalidRequest, ModelNotFound

if TYPE_CHECKING:
    from gatewayz.catalog.service import Catalog
    from gatewayz.routing.explanation import Explanation
    from gatewayz.routing.known import KnownModels
    from gatewayz.routing.resolve import Resolver

MAX_ID_CHARS = 256
DEFAULT_LIMIT, MAX_LIMIT = 20, 1000
_LIMIT = re.compile(r"[0-9]{1,4}")

ModelObject = dict[str, Any]  # OpenAI's model-object shape


@dataclass(frozen=True, slots=True, eq=False)
class ModelIndex:
    """What `GET /v1/models` lists for one snapshot and one set of extra models."""

    snapshot: Snapshot  # built from (compared by identity)
    extra_ids: tuple[str, ...]
    objects: list[ModelObject]  # the catalog's models, then the extra ones it does not list
    by_id: dict[str, ModelObject]
    by_offer: dict[tuple[str, str], str]  # (provider, native id) → listed id
    ids: list[str]  # sorted: Anthropic's pages

    @classmethod
    def build(cls, snapshot: Snapshot, extras: list[ModelObject]) -> ModelIndex:
        objects = [openai_model(m) for m in snapshot.models]
        by_id = {o["id"]: o for o in objects}
        by_offer: dict[tuple[str, str], str] = {}
        for m in snapshot.models:
            for offer in m.offers:
                by_offer.setdefault((offer.provider, offer.native_id), m.id)
        for o in extras:  # configured and simulated names: the id is the native id
            if o["id"] not in by_id:
                objects.append(o)
                by_id[o["id"]] = o
            if isinstance(o.get("provider"), str):
                by_offer.setdefault((o["provider"], o["id"]), o["id"])
        return cls(snapshot, _ids(extras), objects, by_id, by_offer, sorted(by_id))

    def built_from(self, snapshot: Snapshot, extras: list[ModelObject]) -> bool:
        return snapshot is self.snapshot and _ids(extras) == self.extra_ids


def _ids(objects: list[ModelObject]) -> tuple[str, ...]:
    return tuple(o["id"] for o in objects)


def checked_id(value: str, param: str) -> str:
    """`value`, if a possible id (1–256 printable characters); else a 400 naming `param`."""
    if not value or len(value) > MAX_ID_CHARS or not value.isprintable():
        raise InvalidRequest(
            f"Invalid value for '{param}' ({value[:40]!r}): a model id is 1 to "
            f"{MAX_ID_CHARS} printable characters.",
            param=param,
        )
    return value


async def find_model(catalog: Catalog, resolver: Resolver, name: str) -> ModelObject:
    """The canonical model object of any name a chat request may use (module docstring)."""
    checked_id(name, "model")
    index = await catalog.model_index()
    found = index.by_id.get(name)
    if found is not None:
        return found
    if model_id_problem(name) is not None:
        raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
    exp = resolver.explain(name, None)
    if not exp.routes:
        if isinstance(exp.error, ModelNotFound):
            raise exp.error
        raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
    found = index.by_id.get(exp.canonical)
    if found is None:
        listed = (index.by_offer.get((r.provider.slug, r.native_id)) for r in exp.routes)
        found = next((index.by_id[i] for i in listed if i is not None), None)
    if found is not None:
        return found
    err = _unbacked(name, exp, resolver.known())
    if err is not None:
        raise err
    owner = exp.routes[0].provider.slug
    return {
        "id": exp.canonical,
        "object": "model",
        "created": 0,
        "owned_by": owner,
        "provider": owner,
    }


def _unbacked(name: str, exp: Explanation, view: KnownModels | None) -> ModelNotFound | None:
    """The 404 for a name the routing data does not know (no alias) when the synced catalog
    says no provider it routes to lists or prices it; None otherwise."""
    if exp.alias is not None or view is None or not view.synced:
        return None
    if any(view.offers(r.provider.slug, exp.canonical, r.native_id) for r in exp.routes):
        return None
    hint = view.suggest(name)
    more = f" Did you mean: {', '.join(hint)}?" if hint else ""
    return ModelNotFound(
        f"The model '{name}' does not exist: no served provider lists or prices it.{more}",
        param="model",
        suggestions=hint,
    )


# ---------------------------------------------------------------------- Anthropic's shape
def anthropic_model(model: ModelObject) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "model",
        "id": model["id"],
        "display_name": model.get("name") or model["id"],
        "created_at": _rfc3339(model.get("created")),
        "lifecycle": "active",  # served
    }
    if isinstance(model.get("context_length"), int) and model["context_length"] > 0:
        out["max_input_tokens"] = model["context_length"]
    return out


def _rfc3339(created: object) -> str:
    """A model object's `created` (Unix seconds; 0: unknown) as RFC 3339 (the epoch if odd)."""
    try:
        when = datetime.fromtimestamp(created if isinstance(created, int) else 0, UTC)
    except (OverflowError, OSError, ValueError):
        when = datetime.fromtimestamp(0, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Page:
    """Anthropic's pagination parameters (other query parameters are ignored)."""

    limit: int = DEFAULT_LIMIT
    after_id: str | None = None
    before_id: str | None = None

    @classmethod
    def parse(cls, query_string: bytes | str) -> Page:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        params = dict(parse_qsl(text, keep_blank_values=True))
        limit = params.get("limit")
        after, before = params.get("after_id"), params.get("before_id")
        if after is not None and before is not None:
            raise InvalidRequest(
                "Give at most one of 'after_id' and 'before_id'.", param="after_id"
            )
        if limit is None:
            number = DEFAULT_LIMIT
        elif _LIMIT.fullmatch(limit) and 1 <= int(limit) <= MAX_LIMIT:
            number = int(limit)
        else:
            raise InvalidRequest(
                f"Invalid value for 'limit' ({limit[:20]!r}): an integer from 1 to {MAX_LIMIT}.",
                param="limit",
            )
        return cls(
            number,
            None if after is None else checked_id(after, "after_id"),
            None if before is None else checked_id(before, "before_id"),
        )


def anthropic_page(index: ModelIndex, page: Page) -> dict[str, Any]:
    ids = index.ids
    if page.before_id is not None:
        end = bisect_left(ids, page.before_id)
        start = max(0, end - page.limit)
        has_more = start > 0
    else:
        start = 0 if page.after_id is None else bisect_right(ids, page.after_id)
        end = min(len(ids), start + page.limit)
        has_more = end < len(ids)
    data = [anthropic_model(index.by_id[i]) for i in ids[start:end]]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
