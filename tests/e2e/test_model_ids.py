"""The edge refuses model ids outside the documented character set (issue 11, item 1): a 400
naming `model`, in the caller's dialect, and no provider is called."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.e2e.harness import Gateway

BAD = [
    "google-ai-studio/tunedModels/x HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET / HTTP/1.1",
    "google-ai-studio/../../v1beta/files?x=",
    "google-ai-studio/tunedModels/../files",
    "test-model?alt=sse",
    "test model",
    "tëst-model",
    "x" * 201,
    ".",
]


@pytest.mark.parametrize("model", BAD, ids=range(len(BAD)))
def test_openai_dialect_refuses_the_model_id(client: openai.OpenAI, model: str) -> None:
    gateway_calls = client.with_options(max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway_calls.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "model", body


@pytest.mark.parametrize("model", BAD, ids=range(len(BAD)))
def test_anthropic_dialect_refuses_the_model_id(gateway: Gateway, model: str) -> None:
    sdk = anthropic.Anthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "'model'" in caught.value.message
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])


def test_no_provider_is_called_for_a_refused_id(client: openai.OpenAI, gateway: Gateway) -> None:
    for model in BAD:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], stream=True
            )
    assert gateway.upstream.requests == []
