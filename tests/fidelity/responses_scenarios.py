"""The fidelity matrix's scenarios for the Responses API (`POST /v1/responses`) through the
official `openai` SDK's `client.responses`: the same six as for the other two dialects."""

from __future__ import annotations

import json
from typing import Any

import openai

from tests.e2e.harness import Gateway

PROMPT = "Describe the weather"
# a 1×1 PNG
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    + "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    }
]


def _client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _plain(gw: Gateway, model: str) -> None:
    r = _client(gw).responses.create(model=model, input=PROMPT)
    assert r.status == "completed" and r.output[0].type == "message" and r.output_text


def _streaming(gw: Gateway, model: str) -> None:
    client = _client(gw)
    whole = client.responses.create(model=model, input=PROMPT).output_text
    with client.responses.stream(model=model, input=PROMPT) as s:
        events = list(s)
        final = s.get_final_response()
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert len(events) > 4 and text == whole == final.output_text
    assert events[-1].type == "response.completed"
    assert final.usage is not None and final.usage.output_tokens > 0


def _calls(gw: Gateway, model: str, stream: bool) -> None:
    kwargs: dict[str, Any] = {
        "model": model,
        "input": PROMPT,
        "tools": TOOLS,
        "tool_choice": "required",
    }
    client = _client(gw)
    if stream:
        with client.responses.stream(**kwargs) as s:
            events = list(s)
            final = s.get_final_response()
        streamed = "".join(
            e.delta for e in events if e.type == "response.function_call_arguments.delta"
        )
    else:
        final = client.responses.create(**kwargs)
    calls = [o for o in final.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].call_id
    assert set(json.loads(calls[0].arguments)) == {"city", "days"}
    if stream:
        assert streamed == "".join(c.arguments for c in calls)


def _images(gw: Gateway, model: str) -> None:
    content = [
        {"type": "input_text", "text": "What is in this image?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
    ]
    r = _client(gw).responses.create(model=model, input=[{"role": "user", "content": content}])
    assert r.output_text
    assert PNG[:40] in gw.upstream.requests[-1].body.decode()


def _usage(gw: Gateway, model: str) -> None:
    u = _client(gw).responses.create(model=model, input=PROMPT).usage
    assert u is not None and u.input_tokens > 0 and u.output_tokens > 0
    assert not (u.model_extra or {}).get("estimated"), "usage was estimated, not reported"


RESPONSES_SCENARIOS = {
    "plain": _plain,
    "streaming": _streaming,
    "tools": lambda gw, m: _calls(gw, m, False),
    "streaming_tools": lambda gw, m: _calls(gw, m, True),
    "images_in": _images,
    "usage": _usage,
}
