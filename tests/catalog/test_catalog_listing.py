"""Each family's model list reader against the simulator speaking that format (pagination, auth,
what each list says about a model), and the simulator's scriptable lists and list faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from gatewayz.providers.listing import ListingError, list_models
from gatewayz.providers.openai.listing import read_models
from gatewayz.providers.provider import Listed
from gatewayz.providers.registry import Registry, load_registry
from gatewayz.simulators import DEFAULT_MODELS, Simulator
from gatewayz.simulators.model_lists import ListFault, lists_of
from tests.catalog.conftest import KEY, catalog_settings


@pytest.fixture
async def registry(tmp_path: Path, sim: Simulator) -> AsyncIterator[Registry]:
    settings = catalog_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
        sim,
        "openai",
        "anthropic",
        "google-ai-studio",
        "cohere",
    )
    reg = load_registry(settings)
    yield reg
    await reg.close()


def _paths(sim: Simulator, prefix: str) -> list[str]:
    return [r.path for r in sim.requests if r.path.startswith(prefix)]


async def test_openai_list_with_openrouter_style_fields(registry: Registry, sim: Simulator) -> None:
    lists_of(sim).set(
        "openai",
        [
            "plain-model",
            {
                "id": "vendor/vision-model",
                "name": "Vendor: Vision",
                "context_length": 65536,
                "input_modalities": ["text", "image"],
                "output_modalities": ["text"],
                "tools": True,
                "hugging_face_id": "vendor/Vision-7B",
            },
        ],
    )
    plain, vision = await list_models(registry.providers["openai"], timeout_s=5)
    assert plain == Listed("plain-model")  # nothing more said, nothing assumed
    assert vision == Listed(
        "vendor/vision-model",
        name="Vendor: Vision",
        context_length=65536,
        modality="text+image->text",
        tools=True,
        vision=True,
        huggingface_id="vendor/Vision-7B",
    )
    (seen,) = [r for r in sim.requests if r.path == "/v1/models"]
    assert seen.headers["authorization"] == f"Bearer {KEY}"


class _Fetch:
    def __init__(self, pages: list[Any]) -> None:
        self.pages = pages
        self.paths: list[str] = []

    async def json(self, path: str) -> Any:
        self.paths.append(path)
        return self.pages.pop(0)


async def test_openai_list_as_a_bare_array_and_context_window_fields() -> None:
    fetch = _Fetch([[{"id": "a", "context_window": 8192}, {"id": "b"}, {"object": "x"}]])
    found = await read_models(fetch)  # type: ignore[arg-type]
    assert [f.native_id for f in found] == ["a", "b"]  # Together answers a bare array
    assert found[0].context_length == 8192  # Groq's field name


async def test_anthropic_list_follows_pages_with_its_headers(
    registry: Registry, sim: Simulator
) -> None:
    entries = [{"id": f"claude-{i}", "name": f"Claude {i}"} for i in range(2500)]
    lists_of(sim).set("anthropic", entries)
    found = await list_models(registry.providers["anthropic"], timeout_s=5)
    assert [f.native_id for f in found] == [e["id"] for e in entries]
    assert found[7].name == "Claude 7"
    calls = [r for r in sim.requests if r.path == "/v1/models"]
    assert len(calls) == 3  # 1000 per page
    assert all(r.headers["x-api-key"] == KEY for r in calls)
    assert all(r.headers["anthropic-version"] == "2023-06-01" for r in calls)


async def test_gemini_list_pages_skips_non_chat_models_and_keeps_the_key_out_of_urls(
    registry: Registry, sim: Simulator
) -> None:
    entries: list[dict[str, Any]] = [
        {"id": f"gemini-x-{i}", "context_length": 1000 + i} for i in range(1500)
    ]
    entries.append({"id": "text-embedding-004", "output_modalities": ["embeddings"]})
    lists_of(sim).set("gemini", entries)
    found = await list_models(registry.providers["google-ai-studio"], timeout_s=5)
    assert len(found) == 1500 and found[3].context_length == 1003
    assert "text-embedding-004" not in {f.native_id for f in found}
    calls = [r for r in sim.requests if r.path == "/v1beta/models"]
    assert len(calls) == 2
    assert all(r.headers["x-goog-api-key"] == KEY for r in calls)


async def test_cohere_list_pages_with_context_and_features(
    registry: Registry, sim: Simulator
) -> None:
    entries: list[dict[str, Any]] = [
        {"id": f"command-{i}", "tools": i % 2 == 0} for i in range(1200)
    ]
    entries.append({"id": "command-vision", "input_modalities": ["text", "image"], "tools": True})
    lists_of(sim).set("cohere", entries)
    found = await list_models(registry.providers["cohere"], timeout_s=5)
    assert len(found) == 1201
    assert (found[0].tools, found[1].tools, found[0].context_length) == (True, False, 128000)
    assert found[-1].vision is True and found[0].vision is False
    assert len(_paths(sim, "/cohere/v1/models")) == 2


@pytest.mark.parametrize(
    "slug,fmt",
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("google-ai-studio", "gemini"),
        ("cohere", "cohere"),
    ],
)
async def test_a_failing_list_raises_listing_error(
    registry: Registry, sim: Simulator, slug: str, fmt: str
) -> None:
    lists_of(sim).fail(fmt, ListFault(status=503, times=1))
    with pytest.raises(ListingError, match="HTTP 503"):
        await list_models(registry.providers[slug], timeout_s=5)
    lists_of(sim).fail(fmt, ListFault(malformed=True, times=1))
    with pytest.raises(ListingError, match="not JSON"):
        await list_models(registry.providers[slug], timeout_s=5)
    lists_of(sim).fail(fmt, ListFault(status=None, delay_s=1.0, times=1))
    with pytest.raises(ListingError, match="timed out"):
        await list_models(registry.providers[slug], timeout_s=0.2)
    assert await list_models(registry.providers[slug], timeout_s=5)  # the faults are used up


async def test_a_wrong_key_is_a_listing_error(tmp_path: Path, sim: Simulator) -> None:
    settings = catalog_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", sim, "openai")
    env = {"openai": {"base_url": sim.base_url, "api_key": "wrong"}}
    reg = load_registry(settings.model_copy(update={"provider_env": env}))
    try:
        with pytest.raises(ListingError, match="HTTP 401"):
            await list_models(reg.providers["openai"], timeout_s=5)
    finally:
        await reg.close()


def test_model_lists_are_scriptable_over_http(sim: Simulator) -> None:
    url = f"http://127.0.0.1:{sim.port}/__sim/model-lists"
    script = {"format": "cohere", "models": ["command-a"], "fault": {"status": 429, "times": 1}}
    assert httpx2.post(url, json=script, trust_env=False).status_code == 200
    headers = {"authorization": f"Bearer {KEY}"}
    models_url = f"http://127.0.0.1:{sim.port}/cohere/v1/models"
    assert httpx2.get(models_url, headers=headers, trust_env=False).status_code == 429
    listed = httpx2.get(models_url, headers=headers, trust_env=False).json()
    assert [m["name"] for m in listed["models"]] == ["command-a"]
    state = httpx2.get(url, trust_env=False).json()
    assert state["cohere"] == {"scripted": 1, "fault": None, "calls": 2}
    bad = httpx2.post(url, json={"format": "nope", "models": []}, trust_env=False)
    assert bad.status_code == 400
    assert httpx2.delete(url, trust_env=False).status_code == 200
    listed = httpx2.get(models_url, headers=headers, trust_env=False).json()
    assert [m["name"] for m in listed["models"]] == [m.split("/")[1] for m in DEFAULT_MODELS]


def test_list_faults_never_take_a_chat_fault(sim: Simulator) -> None:
    from gatewayz.simulators import Fault

    sim.fault(Fault(status=500))
    headers = {"authorization": f"Bearer {KEY}"}
    r = httpx2.get(f"{sim.base_url}/models", headers=headers, trust_env=False)
    assert r.status_code == 200  # the queued chat fault is still there for the completion
    chat = httpx2.post(
        f"{sim.base_url}/chat/completions",
        headers=headers,
        json={"model": "simulated/echo", "messages": [{"role": "user", "content": "hi"}]},
        trust_env=False,
    )
    assert chat.status_code == 500
