"""`GET /v1/models[/{id}]` (api/openai_routes.py `Models`, catalog/model_views.py): every name a
chat request may use answers its canonical model; with `anthropic-version`, Anthropic's Models API
(objects, pages, errors), through the official SDKs, over a running gateway whose OpenAI and
Anthropic lists are scripted on the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of
from tests.catalog.conftest import KEY, provider_env
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim = Simulator(api_key=KEY)
    sim.start_in_thread()
    lists_of(sim).set("openai", ["gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "o3-mini"])
    lists_of(sim).set(
        "anthropic", [{"id": "claude-sonnet-4-5", "name": "Claude Sonnet 4.5"}, "claude-haiku-4-5"]
    )
    env = provider_env(sim, "openai", "anthropic")
    env["vllm"] = {"base_url": sim.base_url, "models": "test-model,other-model"}
    gw = start_gateway(
        gateway_settings(tmp_path_factory.mktemp("models"), sim, provider_env=env), sim
    )
    yield gw
    gw.stop()
    sim.stop_thread()


def _get(gw: Gateway, path: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    h = {"authorization": f"Bearer {gw.api_key}", **(headers or {})}
    return httpx2.get(f"{gw.base_url}{path}", headers=h, trust_env=False, timeout=10.0)


def _listed(gw: Gateway) -> list[dict[str, Any]]:
    r = _get(gw, "/models")
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _anthropic(gw: Gateway, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.root, api_key=key or gw.api_key, max_retries=0)


# ---------------------------------------------------------------- names chat accepts
def test_an_alias_answers_its_canonical_model(gateway: Gateway) -> None:
    listed = {m["id"]: m for m in _listed(gateway)}
    for alias, canonical in [
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
        ("4o-mini", "openai/gpt-4o-mini"),
        ("claude-sonnet-4.5", "anthropic/claude-sonnet-4-5"),
    ]:
        r = _get(gateway, f"/models/{alias}")
        assert r.status_code == 200, (alias, r.text)
        assert r.json() == listed[canonical]  # the catalog's own model object
    body = _get(gateway, "/models/gpt-4o-mini").json()
    assert body["object"] == "model" and body["owned_by"] == "openai"
    assert body["created"] == 0 and body["context_length"] == 128000


def test_a_bare_native_id_answers_the_model_listing_it(gateway: Gateway) -> None:
    r = _get(gateway, "/models/gpt-4o-2024-08-06")  # no alias: the `gpt-*` rule, OpenAI's id
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "openai/gpt-4o-2024-08-06" and r.json()["owned_by"] == "openai"


def test_a_provider_pin_answers_the_model_it_reaches(gateway: Gateway) -> None:
    r = _get(gateway, "/models/vllm/test-model")  # `{provider}/{native}`: vLLM's configured model
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "test-model" and r.json()["owned_by"] == "vllm"


def test_an_alias_the_catalog_does_not_list_answers_a_minimal_model(gateway: Gateway) -> None:
    assert "openai/gpt-5" not in {m["id"] for m in _listed(gateway)}  # OpenAI's list lacks it
    r = _get(gateway, "/models/gpt-5")  # chat sends it to OpenAI: the routing data knows it
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": "openai/gpt-5",
        "object": "model",
        "created": 0,
        "owned_by": "openai",
        "provider": "openai",
    }


def test_a_name_only_a_pattern_matches_is_404_once_the_catalog_synced(gateway: Gateway) -> None:
    # `gpt-*` / `claude-*` would send these to OpenAI / Anthropic, whose lists lack them.
    for name in ["gpt-4o-minii", "claude-3-opus-20240229"]:
        r = _get(gateway, f"/models/{name}")
        assert r.status_code == 404, (name, r.text)
        assert r.json()["error"]["code"] == "model_not_found"
    err = _get(gateway, "/models/gpt-4o-minii").json()["error"]
    assert "Did you mean: gpt-4o-mini" in err["message"] and "gpt-4o-mini" in err["suggestions"]


def test_openai_sdk_retrieves_an_alias_as_its_canonical_model(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    m = client.models.retrieve("gpt-4o-mini")
    assert m.id == "openai/gpt-4o-mini" and m.object == "model" and m.owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("gpt-nothing-such")
    assert err.value.code == "model_not_found"


# ---------------------------------------------------------------- names nobody serves
def test_unknown_names_are_404_model_not_found_in_each_dialect(gateway: Gateway) -> None:
    for name in ["nope/nothing", "nothing-at-all", "foo bar", "openai/gpt-nothing"]:
        r = _get(gateway, f"/models/{name}")
        assert r.status_code == 404, (name, r.text)
        err = r.json()["error"]
        assert err["code"] == "model_not_found" and err["type"] == "not_found_error"
        r = _get(gateway, f"/models/{name}", ANTHROPIC_HEADERS)
        assert r.status_code == 404
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
        assert name in body["error"]["message"]


@pytest.mark.parametrize("name", ["x" * 257, "a" * 5000, "a%00b", "a%09b", "%1B[31m", "%7F"])
def test_an_impossible_id_is_a_400_never_a_500(gateway: Gateway, name: str) -> None:
    r = _get(gateway, f"/models/{name}")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == "model"
    r = _get(gateway, f"/models/{name}", ANTHROPIC_HEADERS)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------- Anthropic's Models API
def test_anthropic_sdk_pages_through_every_model(gateway: Gateway) -> None:
    expected = sorted(m["id"] for m in _listed(gateway))
    client = _anthropic(gateway)  # the key in `x-api-key`
    first = client.models.list(limit=2)
    assert [m.id for m in first.data] == expected[:2]
    assert first.has_more is True and (first.first_id, first.last_id) == tuple(expected[:2])
    second = client.models.list(limit=2, after_id=first.last_id)
    assert [m.id for m in second.data] == expected[2:4]
    back = client.models.list(limit=2, before_id=second.first_id)
    assert [m.id for m in back.data] == expected[:2] and back.has_more is False
    assert [m.id for m in client.models.list(limit=2)] == expected  # auto-paging by after_id
    last = client.models.list(limit=1000)
    assert len(last.data) == len(expected) and last.has_more is False
    assert all(m.type == "model" and m.created_at.year == 1970 for m in last.data)


def test_anthropic_pages_start_where_an_unlisted_cursor_would_sort(gateway: Gateway) -> None:
    expected = sorted(m["id"] for m in _listed(gateway))
    r = _get(gateway, "/models?limit=3&after_id=anthropic/zzz", ANTHROPIC_HEADERS)
    assert r.status_code == 200, r.text
    page = r.json()
    after = [i for i in expected if i > "anthropic/zzz"][:3]
    assert [m["id"] for m in page["data"]] == after and page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (after[0], after[-1])
    r = _get(gateway, "/models?after_id=~~~", ANTHROPIC_HEADERS)  # past the last id
    assert r.json() == {"data": [], "has_more": False, "first_id": None, "last_id": None}
    default = _get(gateway, "/models", ANTHROPIC_HEADERS).json()
    assert len(default["data"]) == min(20, len(expected))


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=abc", "limit=-1", "after_id=a&before_id=b", "after_id="],
)
def test_anthropic_bad_page_parameters_are_400_in_its_shape(gateway: Gateway, query: str) -> None:
    r = _get(gateway, f"/models?{query}", ANTHROPIC_HEADERS)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_sdk_retrieves_a_model_by_any_name(gateway: Gateway) -> None:
    client = _anthropic(gateway)
    m = client.models.retrieve("claude-sonnet-4-5")
    assert (m.type, m.id, m.display_name) == (
        "model",
        "anthropic/claude-sonnet-4-5",
        "Claude Sonnet 4.5",
    )
    assert m.created_at.isoformat() == "1970-01-01T00:00:00+00:00"
    assert m.max_input_tokens == 200000
    assert client.models.retrieve("anthropic/claude-haiku-4-5").id == "anthropic/claude-haiku-4-5"
    assert client.models.retrieve("gpt-4o-mini").id == "openai/gpt-4o-mini"
    with pytest.raises(anthropic.NotFoundError) as err:
        client.models.retrieve("claude-nothing-such-9")
    assert err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_anthropic_clients_authenticate_with_x_api_key(gateway: Gateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as err:
        _anthropic(gateway, key="gw_test_" + "x" * 43).models.list()
    assert err.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    h = {"x-api-key": gateway.api_key, **ANTHROPIC_HEADERS}
    r = httpx2.get(f"{gateway.base_url}/models/gpt-4o-mini", headers=h, trust_env=False)
    assert r.status_code == 200 and r.json()["id"] == "openai/gpt-4o-mini"
    assert r.json()["type"] == "model"
    r = httpx2.get(f"{gateway.base_url}/models", headers=ANTHROPIC_HEADERS, trust_env=False)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
