"""Unknown model names through a running gateway whose catalog synced an aggregator's model list
(SPEC §3 with §9): a name no served provider lists, prices or aliases is a 404
`model_not_found` with close suggestions in both dialects (official `openai` and `anthropic`
SDKs), and the aggregator is never called for it; listed names and aliases still route."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

MSG = [{"role": "user", "content": "Say hello"}]
# What the aggregator's model list API says it serves (priced models, so each is an offer).
ROUTER_LIST = [
    {"id": "meta-llama/llama-3.3-70b-instruct", "context_length": 131072},
    {"id": "meta-llama/llama-3.1-405b-instruct", "context_length": 131072},
    {"id": "perplexity/sonar-medium-chat", "context_length": 16384},
    {"id": "microsoft/phi-4", "context_length": 16384},
]
UNKNOWN = "meta-llama/llama-5-400b-instruct"  # no provider lists, prices or aliases it


@pytest.fixture(scope="module")
def router() -> Iterator[Simulator]:
    """The aggregator (openrouter), its own simulator with its own model list."""
    s = Simulator()
    s.start_in_thread()
    lists_of(s).set("openai", ROUTER_LIST)
    yield s
    lists_of(s).reset()
    s.stop_thread()


@pytest.fixture(scope="module")
def gateway(router: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    main = Simulator()
    main.start_in_thread()
    env = {"openrouter": {"api_key": "k-openrouter", "base_url": router.base_url}}
    # The catalog never synced: startup syncs it first (the simulator answers at once).
    settings = gateway_settings(tmp_path_factory.mktemp("gw"), main, provider_env=env)
    gw = start_gateway(settings, main)
    yield gw
    gw.stop()
    main.stop_thread()


@pytest.fixture
def client(gateway: Gateway, router: Simulator) -> openai.OpenAI:
    router.clear()
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)


@pytest.fixture
def claude(gateway: Gateway, router: Simulator) -> anthropic.Anthropic:
    router.clear()
    return anthropic.Anthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)


def _chat_calls(sim: Simulator) -> list[str]:
    """The models the simulator was asked to generate with (list reads are not counted)."""
    return [
        str(r.json["model"])
        for r in sim.requests
        if r.path.endswith(("/chat/completions", "/messages")) and isinstance(r.json, dict)
    ]


def test_openai_sdk_gets_404_with_suggestions_and_the_aggregator_is_not_called(
    client: openai.OpenAI, router: Simulator
) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model=UNKNOWN, messages=MSG)
    body = e.value.body
    assert isinstance(body, dict)
    assert (e.value.status_code, body["code"], body["param"]) == (404, "model_not_found", "model")
    assert f"'{UNKNOWN}'" in body["message"]
    suggestions = body["suggestions"]
    assert 1 <= len(suggestions) <= 3
    assert suggestions[0] == "meta-llama/llama-3.1-405b-instruct"
    assert body["message"].endswith(f"Did you mean: {', '.join(suggestions)}?")
    # A stream is refused the same way, before any byte.
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=UNKNOWN, messages=MSG, stream=True)
    assert _chat_calls(router) == []


def test_a_typo_suggests_the_listed_model_first(client: openai.OpenAI, router: Simulator) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="perplexity/sonar-medium-chta", messages=MSG)
    body = e.value.body
    assert isinstance(body, dict)
    assert body["suggestions"][0] == "perplexity/sonar-medium-chat"
    assert _chat_calls(router) == []


def test_listed_names_and_aliases_still_reach_the_aggregator(
    client: openai.OpenAI, router: Simulator
) -> None:
    # Only the aggregator rule finds it, and the aggregator's list has it.
    r = client.chat.completions.create(model="perplexity/sonar-medium-chat", messages=MSG)
    assert r.model == "perplexity/sonar-medium-chat" and r.choices[0].message.content
    # An alias: the routing data knows the model.
    r = client.chat.completions.create(model="llama-3.3-70b", messages=MSG)
    assert r.model == "llama-3.3-70b"
    assert _chat_calls(router) == [
        "perplexity/sonar-medium-chat",
        "meta-llama/llama-3.3-70b-instruct",
    ]


def test_anthropic_sdk_gets_404_for_messages_and_count_tokens(
    claude: anthropic.Anthropic, router: Simulator
) -> None:
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model=UNKNOWN, max_tokens=50, messages=MSG)  # type: ignore[arg-type]
    body = e.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert f"'{UNKNOWN}'" in body["error"]["message"]
    assert "Did you mean: " in body["error"]["message"]
    assert 1 <= len(body["error"]["suggestions"]) <= 3
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.count_tokens(model=UNKNOWN, messages=MSG)  # type: ignore[arg-type]
    assert isinstance(e.value.body, dict)
    assert e.value.body["error"]["suggestions"] == body["error"]["suggestions"]
    # The listed model counts (nothing is sent upstream for a count either way).
    counted = claude.messages.count_tokens(model="microsoft/phi-4", messages=MSG)  # type: ignore[arg-type]
    assert counted.input_tokens > 0
    assert _chat_calls(router) == []
