"""`GET /catalog/models` filters, search, order and pagination over a fixed snapshot, and the
query string's validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayz.billing.pricing import Price
from gatewayz.catalog.model_health import HealthData
from gatewayz.catalog.offers import Offer
from gatewayz.catalog.query import Query
from gatewayz.catalog.views import Snapshot, page_json
from gatewayz.errors import InvalidRequest

RANK = {"openai": (0, ("openai",)), "openrouter": (1, ()), "groq": (2, ())}


def _offer(model: str, provider: str, prompt: str, completion: str, **kw: object) -> Offer:
    values: dict[str, object] = {
        "model_id": model,
        "provider": provider,
        "native_id": kw.pop("native_id", model.split("/", 1)[1]),
        "name": kw.pop("name", model.split("/", 1)[1].upper()),
        "context_length": kw.pop("context_length", 8192),
        "modality": kw.pop("modality", "text->text"),
        "price": Price(prompt=Decimal(prompt), completion=Decimal(completion)),
        **kw,
    }
    return Offer(**values)  # type: ignore[arg-type]


SNAPSHOT = Snapshot.build(
    {
        "openai": [
            _offer(
                "openai/gpt-4o",
                "openai",
                "2.5",
                "10",
                context_length=128000,
                modality="text+image->text",
                tools=True,
                vision=True,
            ),
            _offer(
                "openai/gpt-4o-mini", "openai", "0.15", "0.6", context_length=128000, tools=True
            ),
            _offer("openai/gpt-image", "openai", "5", "40", modality="text->image"),
        ],
        "openrouter": [
            _offer("openai/gpt-4o", "openrouter", "2.6", "10.5", native_id="openai/gpt-4o"),
            _offer("meta-llama/llama-3.3-70b-instruct", "openrouter", "0.3", "0.4", tools=True),
        ],
        "groq": [
            _offer(
                "meta-llama/llama-3.3-70b-instruct",
                "groq",
                "0.59",
                "0.79",
                native_id="llama-3.3-70b-versatile",
                context_length=131072,
            ),
        ],
    },
    RANK,
)


def _ids(query: str) -> list[str]:
    body = page_json(SNAPSHOT, Query.parse(query), HealthData())
    return [e["id"] for e in body["data"]]


def test_no_filter_lists_every_model_once_by_id() -> None:
    assert _ids("") == [
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-image",
    ]
    assert len(_ids("view=full")) == 6


def test_filters() -> None:
    assert _ids("provider=groq") == ["meta-llama/llama-3.3-70b-instruct"]
    assert _ids("modality=text->image") == ["openai/gpt-image"]
    assert _ids("modality=text%2Bimage->text") == ["openai/gpt-4o"]
    assert _ids("modality=text+image->text") == ["openai/gpt-4o"]  # `+` not encoded
    assert _ids("capability=vision") == ["openai/gpt-4o"]
    assert _ids("capability=function_calling") == [
        "meta-llama/llama-3.3-70b-instruct",  # its primary offer (OpenRouter) has tools
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
    ]
    assert _ids("capability=function_calling,vision") == ["openai/gpt-4o"]
    assert _ids("capability=tools&capability=vision") == ["openai/gpt-4o"]
    assert _ids("max_prompt_price=0.5") == [
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o-mini",
    ]
    assert _ids("min_prompt_price=2&max_completion_price=10") == ["openai/gpt-4o"]
    assert _ids("min_completion_price=39") == ["openai/gpt-image"]
    assert _ids("min_context=100000") == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert _ids("view=full&min_context=100000") == [
        "meta-llama/llama-3.3-70b-instruct",  # groq's offer only
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
    ]
    assert _ids("view=full&provider=openrouter&max_prompt_price=1") == [
        "meta-llama/llama-3.3-70b-instruct"
    ]


def test_unique_view_with_a_provider_shows_that_providers_offer() -> None:
    body = page_json(SNAPSHOT, Query.parse("provider=openrouter"), HealthData())
    gpt = next(e for e in body["data"] if e["id"] == "openai/gpt-4o")
    assert gpt["provider_slug"] == "openrouter" and gpt["pricing"]["prompt"] == "2.6"
    plain = page_json(SNAPSHOT, Query.parse(""), HealthData())
    gpt = next(e for e in plain["data"] if e["id"] == "openai/gpt-4o")
    assert gpt["provider_slug"] == "openai"  # the maker first
    assert [p["slug"] for p in gpt["providers"]] == ["openai", "openrouter"]


def test_search_order_and_pages() -> None:
    assert _ids("q=LLAMA") == ["meta-llama/llama-3.3-70b-instruct"]
    assert _ids("q=gpt-4o-m") == ["openai/gpt-4o-mini"]
    assert _ids("sort=price") == [
        "openai/gpt-4o-mini",
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o",
        "openai/gpt-image",
    ]
    assert _ids("sort=context")[:2] == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    first = page_json(SNAPSHOT, Query.parse("limit=3"), HealthData())
    assert (first["total"], first["next_offset"], len(first["data"])) == (4, 3, 3)
    last = page_json(SNAPSHOT, Query.parse("limit=3&offset=3"), HealthData())
    assert (last["next_offset"], [e["id"] for e in last["data"]]) == (None, ["openai/gpt-image"])


def test_health_status_is_the_best_offers() -> None:
    health = HealthData(
        providers={"openai": "down"}, offers={("openrouter", "openai/gpt-4o"): "degraded"}
    )
    body = page_json(SNAPSHOT, Query.parse("q=gpt-4o"), health)
    gpt = next(e for e in body["data"] if e["id"] == "openai/gpt-4o")
    assert gpt["health_status"] == "degraded"
    assert [p["health_status"] for p in gpt["providers"]] == ["down", "degraded"]


@pytest.mark.parametrize(
    "query,param",
    [
        ("bogus=1", "bogus"),
        ("view=all", "view"),
        ("sort=name", "sort"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("min_context=big", "min_context"),
        ("max_prompt_price=cheap", "max_prompt_price"),
        ("max_prompt_price=-1", "max_prompt_price"),
        ("capability=telepathy", "capability"),
        ("provider=", "provider"),
        ("q=a&q=b", "q"),
    ],
)
def test_bad_queries_are_400(query: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        Query.parse(query)
    assert err.value.status == 400 and err.value.param == param


def test_equal_queries_share_one_cache_key() -> None:
    a = Query.parse("capability=vision,function_calling&limit=10")
    b = Query.parse("limit=10&capability=tools&capability=vision")
    assert a.key() == b.key()
    assert a.key() != Query.parse("capability=vision&limit=10").key()
