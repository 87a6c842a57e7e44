"""CM-8 external layer: a Butter-compatible caching proxy in front of OpenAI-style providers —
base URL rewritten to Butter's, the provider's own key kept in Authorization, Butter's key in
`Butter-Auth: Bearer …`; Butter unreachable or failing is a miss (the provider directly)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayz.providers.registry import load_registry
from gatewayz.settings import ConfigError, Settings
from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import UPSTREAM_KEY, Gateway, free_port

from .conftest import start_cached_gateway
from .helpers import chat_body, chat_calls, post, sse_text, text_of, unique

BUTTER_KEY = "btr-test-key"


@pytest.fixture(scope="module")
def butter() -> Iterator[Simulator]:
    """Stands in for proxy.butter.dev: records what it is sent and answers like the provider."""
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="module")
def via_butter(
    upstream: Simulator, butter: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gw = start_cached_gateway(
        tmp_path_factory.mktemp("butter"),
        upstream,
        butter_api_key=BUTTER_KEY,
        butter_base_url=butter.base_url,
        response_cache=False,  # only the external layer here
    )
    yield gw
    gw.stop()


def test_cm_8_butter_routes_openai_compatible_requests_through_the_proxy(
    via_butter: Gateway, upstream: Simulator, butter: Simulator
) -> None:
    butter.clear()
    assert via_butter.services.registry.providers["openai"].proxy_name == "butter"
    r = post(via_butter, chat_body(unique()))
    assert r.status_code == 200, r.text
    assert chat_calls(upstream) == []  # the provider was reached only through Butter
    (seen,) = chat_calls(butter)
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["butter-auth"] == f"Bearer {BUTTER_KEY}"
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the provider's own key
    assert seen.json["model"] == "gpt-4o-mini"
    streamed = post(via_butter, chat_body(unique(), stream=True))
    assert streamed.status_code == 200 and sse_text(streamed)
    assert len(chat_calls(butter)) == 2


def test_cm_8_butter_is_not_used_for_embeddings(
    via_butter: Gateway, upstream: Simulator, butter: Simulator
) -> None:
    """Butter caches chat completions: an embeddings request goes to the provider directly."""
    import openai

    butter.clear()
    upstream.clear()
    client = openai.OpenAI(base_url=via_butter.base_url, api_key=via_butter.api_key)
    client.embeddings.create(model="openai/text-embedding-3-small", input="hello")
    assert not butter.requests
    assert [r.path for r in upstream.requests] == ["/v1/embeddings"]


def test_cm_8_butter_failing_is_a_miss_the_provider_answers(
    via_butter: Gateway, upstream: Simulator, butter: Simulator
) -> None:
    butter.clear()
    butter.fault(Fault(status=503))
    r = post(via_butter, chat_body(unique()))
    assert r.status_code == 200, r.text
    assert len(chat_calls(butter)) == 1 and len(chat_calls(upstream)) == 1
    assert r.headers["x-gatewayz-provider"] == "openai"
    butter.fault(Fault(status=400))  # the request's own fault: not retried around Butter
    assert post(via_butter, chat_body(unique())).status_code == 400
    assert len(chat_calls(upstream)) == 1


def test_cm_8_butter_unreachable_is_a_miss(upstream: Simulator, tmp_path: Path) -> None:
    gw = start_cached_gateway(
        tmp_path,
        upstream,
        butter_api_key=BUTTER_KEY,
        butter_base_url=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
    )
    try:
        for stream in (False, True):
            r = post(gw, chat_body(unique(), stream=stream))
            assert r.status_code == 200, r.text
            assert (sse_text(r) if stream else text_of(r)) != ""
        assert len(chat_calls(upstream)) == 2
    finally:
        gw.stop()


def test_cm_8_butter_is_off_without_its_key_and_only_for_openai_compatible_providers() -> None:
    env = {"openai": {"api_key": "sk"}, "anthropic": {"api_key": "sk"}}
    plain = load_registry(Settings(provider_env=env))
    assert plain.providers["openai"].proxy is None
    with_key = load_registry(Settings(provider_env=env, butter_api_key=BUTTER_KEY))
    assert with_key.providers["openai"].proxy_name == "butter"
    assert with_key.providers["anthropic"].proxy is None
    with pytest.raises(ConfigError, match="anthropic"):
        load_registry(
            Settings(provider_env=env, butter_api_key=BUTTER_KEY, butter_providers="anthropic")
        )
