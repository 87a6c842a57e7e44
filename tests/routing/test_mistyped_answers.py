"""A provider's 200 that is not an answer — an HTML page (a proxy or login wall in between),
one JSON body where a stream was due, a body that is not the family's response shape, a message
`content` that is a JSON object — is a failed attempt: a 502 in the caller's dialect when no
other provider serves the model (or an error event once a stream has started), another
provider's answer when one does. Every keyed family on one simulator, OpenRouter (serving any
model) on the other: the official SDKs as clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

# slug -> the model asked for; the family's provider comes first in its chain, OpenRouter after.
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "google-ai-studio": "google/gemini-2.5-flash",
    "aws-bedrock": "amazon/nova-pro",
    "cohere": "cohere/command-a-03-2025",
    "fal": "fal/google/gemini-flash-1.5",  # pinned by its prefix: no failover for fal
}
FAILS_OVER = [s for s in MODELS if s != "fal"]
MSG: list[Any] = [{"role": "user", "content": "Say hello"}]
HELLO = "Hello from the Gatewayz simulator. You said: Say hello"

HTML = Fault(
    status=200,
    content_type="text/html; charset=utf-8",
    raw_body="<!doctype html><html><body><h1>Sign in to continue</h1></body></html>",
)
JSON_ERROR = Fault(status=200, body={"error": {"message": "model overloaded", "code": 503}})
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
}
# A stream request answered with the family's non-streamed answer: one JSON body.
ONE_JSON_BODY = Fault(status=200, body=COMPLETION)
NOT_THE_SHAPE = Fault(status=200, body={"unexpected": True})
# Bedrock streams are binary event streams: SSE is as wrong there as HTML.
SSE_FOR_BEDROCK = Fault(
    status=200, content_type="text/event-stream", raw_body='data: {"text": "hi"}\n\n'
)
OBJECT = {"type": "text", "text": "hi"}
# Each family's non-streamed answer with its message content a JSON object.
OBJECT_CONTENT = {
    "openai": {
        **COMPLETION,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": OBJECT},
                "finish_reason": "stop",
            }
        ],
    },
    "anthropic": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": OBJECT,
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    },
    "google-ai-studio": {
        "candidates": [{"content": {"role": "model", "parts": OBJECT}, "finishReason": "STOP"}]
    },
    "aws-bedrock": {
        "output": {"message": {"role": "assistant", "content": OBJECT}},
        "stopReason": "end_turn",
    },
    "cohere": {
        "id": "c1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": OBJECT},
    },
    "fal": {"output": OBJECT, "partial": False, "error": None},
}


def _sse(*events: dict[str, Any]) -> str:
    return "".join(f"data: {orjson.dumps(e).decode()}\n\n" for e in events) + "data: [DONE]\n\n"


# An OpenAI-compatible stream whose delta content is a JSON object.
OBJECT_DELTA = Fault(
    status=200,
    content_type="text/event-stream",
    raw_body=_sse(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": OBJECT},
                    "finish_reason": None,
                }
            ],
        }
    ),
)


@pytest.fixture(scope="module")
def gw(
    sims: tuple[Simulator, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b = sims
    root = f"http://127.0.0.1:{a.port}"
    env: dict[str, dict[str, str]] = {
        "openai": {"base_url": a.base_url, "api_key": "sk-openai"},
        "anthropic": {"base_url": root, "api_key": "ant-key"},
        "google-ai-studio": {"base_url": root, "api_key": "gem-key"},
        "aws-bedrock": {
            "base_url": root,
            "api_key": "AKIDTEST",
            "var:AWS_SECRET_ACCESS_KEY": "secret",
            "var:AWS_REGION": "us-east-1",
        },
        "cohere": {"base_url": root + "/cohere", "api_key": "co-key"},
        "fal": {"base_url": root, "api_key": "fal-key"},
        "openrouter": {"base_url": b.base_url, "api_key": "sk-or"},
    }
    data_dir: Path = tmp_path_factory.mktemp("mistyped")
    g = start_gateway(gateway_settings(data_dir, a, provider_env=env), a)
    for slug, model in MODELS.items():
        set_price(g, model, slug, prompt="1", completion="2")
        set_price(g, model, "openrouter", prompt="1", completion="2")
        chain = [r.provider.slug for r in g.services.pipeline.chain(model)]
        assert chain[0] == slug and (slug == "fal" or "openrouter" in chain), chain
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _fresh(gw: Gateway, sims: tuple[Simulator, Simulator]) -> None:
    """No queued fault, no recorded request, no health history (a demoted provider would not
    be tried first)."""
    for sim in sims:
        sim.clear()
    gw.services.pipeline.health.clear()


def _openai(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _anthropic(gw: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.root, api_key=gw.api_key, max_retries=0)


def _openai_502(gw: Gateway, slug: str, stream: bool) -> openai.APIStatusError:
    """The request pinned to `slug` (nothing to fail over to) must be a 502."""
    with pytest.raises(openai.APIStatusError) as exc:
        out = _openai(gw).chat.completions.create(
            model=MODELS[slug],
            messages=MSG,
            max_tokens=50,
            stream=stream,
            extra_body={"provider": slug},
        )
        list(out) if stream else None  # type: ignore[call-overload]
    err = exc.value
    assert err.status_code == 502, err
    assert isinstance(err.body, dict) and err.body["code"] == "upstream_unavailable"
    assert err.response.headers["x-gatewayz-provider"] == slug
    return err


def _anthropic_502(gw: Gateway, slug: str, stream: bool) -> anthropic.APIStatusError:
    with pytest.raises(anthropic.APIStatusError) as exc:
        out = _anthropic(gw).messages.create(
            model=MODELS[slug],
            messages=MSG,
            max_tokens=50,
            stream=stream,
            extra_body={"provider": slug},
        )
        list(out) if stream else None  # type: ignore[call-overload]
    err = exc.value
    assert err.status_code == 502, err
    assert isinstance(err.body, dict) and err.body["type"] == "error"
    assert err.body["error"]["type"] == "api_error"
    return err


def _answered_by_another(gw: Gateway, sims: tuple[Simulator, Simulator], slug: str) -> None:
    """The same fault with OpenRouter in the chain: the caller gets OpenRouter's answer."""
    raw = _openai(gw).chat.completions.with_raw_response.create(
        model=MODELS[slug], messages=MSG, max_tokens=50
    )
    assert raw.headers["x-gatewayz-provider"] == "openrouter"
    assert raw.headers["x-gatewayz-attempts"] == "2"
    assert raw.parse().choices[0].message.content == HELLO
    assert sims[0].requests, "the first provider was not tried"


def _streamed_by_another(gw: Gateway, sims: tuple[Simulator, Simulator], slug: str) -> None:
    with _openai(gw).chat.completions.with_streaming_response.create(
        model=MODELS[slug], messages=MSG, max_tokens=50, stream=True
    ) as resp:
        assert resp.headers["x-gatewayz-provider"] == "openrouter"
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text == HELLO
    assert sims[0].requests, "the first provider was not tried"


# ---------------------------------------------------------------- streams of the wrong type
@pytest.mark.parametrize("slug", list(MODELS))
@pytest.mark.parametrize("fault", [HTML, JSON_ERROR, ONE_JSON_BODY], ids=["html", "error", "json"])
def test_a_stream_answered_with_another_content_type_is_a_502(
    gw: Gateway, sims: tuple[Simulator, Simulator], slug: str, fault: Fault
) -> None:
    sims[0].fault(fault)
    err = _openai_502(gw, slug, stream=True)
    assert "instead of" in err.message


def test_a_bedrock_stream_answered_as_sse_is_a_502(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    sims[0].fault(SSE_FOR_BEDROCK)
    err = _anthropic_502(gw, "aws-bedrock", stream=True)
    assert "application/vnd.amazon.eventstream" in err.message


@pytest.mark.parametrize("slug", list(MODELS))
def test_a_stream_answered_as_html_is_a_502_for_anthropic_callers(
    gw: Gateway, sims: tuple[Simulator, Simulator], slug: str
) -> None:
    sims[0].fault(HTML)
    _anthropic_502(gw, slug, stream=True)


@pytest.mark.parametrize("slug", FAILS_OVER)
def test_a_stream_answered_as_html_fails_over(
    gw: Gateway, sims: tuple[Simulator, Simulator], slug: str
) -> None:
    sims[0].fault(HTML)
    _streamed_by_another(gw, sims, slug)


# ---------------------------------------------------------------- answers of the wrong shape
@pytest.mark.parametrize("slug", list(MODELS))
@pytest.mark.parametrize("fault", [HTML, NOT_THE_SHAPE], ids=["html", "other-json"])
def test_an_answer_that_is_not_the_familys_shape_is_a_502(
    gw: Gateway, sims: tuple[Simulator, Simulator], slug: str, fault: Fault
) -> None:
    sims[0].fault(fault)
    _openai_502(gw, slug, stream=False)


@pytest.mark.parametrize("slug", list(MODELS))
def test_an_object_as_message_content_is_a_502_never_passed_on(
    gw: Gateway, sims: tuple[Simulator, Simulator], slug: str
) -> None:
    sims[0].fault(Fault(status=200, body=OBJECT_CONTENT[slug]))
    _openai_502(gw, slug, stream=False)
    sims[0].fault(Fault(status=200, body=OBJECT_CONTENT[slug]))
    _anthropic_502(gw, slug, stream=False)


@pytest.mark.parametrize("slug", FAILS_OVER)
def test_an_object_as_message_content_fails_over(
    gw: Gateway, sims: tuple[Simulator, Simulator], slug: str
) -> None:
    sims[0].fault(Fault(status=200, body=OBJECT_CONTENT[slug]))
    _answered_by_another(gw, sims, slug)


@pytest.mark.parametrize("slug", FAILS_OVER)
def test_an_answer_of_another_shape_fails_over(
    gw: Gateway, sims: tuple[Simulator, Simulator], slug: str
) -> None:
    sims[0].fault(NOT_THE_SHAPE)
    _answered_by_another(gw, sims, slug)


def test_an_object_as_stream_delta_content_ends_the_stream_with_an_error_event(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    sims[0].fault(OBJECT_DELTA)
    stream = _openai(gw).chat.completions.create(
        model=MODELS["openai"], messages=MSG, stream=True, extra_body={"provider": "openai"}
    )
    seen = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            seen.append(chunk)
    assert "malformed" in exc.value.message
    assert all(not c.choices or not c.choices[0].delta.content for c in seen)
