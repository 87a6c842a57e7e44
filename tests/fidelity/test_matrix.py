"""The fidelity matrix cells: inbound dialect × provider family × scenario, end to end."""

from __future__ import annotations

import importlib.util
import json
import secrets
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import (
    Gateway,
    gateway_settings,
    request_log_rows,
    set_price,
    start_gateway,
)
from tests.fidelity.matrix import DIALECTS, FAMILIES, SCENARIOS, Family
from tests.fidelity.responses_scenarios import RESPONSES_SCENARIOS

# a 1×1 PNG
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    + "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PROMPT = "Describe the weather"
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": t["function"]["name"],
        "description": t["function"]["description"],
        "input_schema": t["function"]["parameters"],
    }
    for t in OPENAI_TOOLS
]


@pytest.fixture(scope="module")
def fidelity_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim = Simulator()
    sim.start_in_thread()
    tmp = tmp_path_factory.mktemp("fidelity")
    env = {fam.provider: fam.env(sim.port, tmp) for fam in FAMILIES}
    gw = start_gateway(gateway_settings(tmp, sim, provider_env=env), sim)
    # No public price for this model on fal: a premium model is only served once priced.
    set_price(gw, "fal/google/gemini-flash-1.5", "fal", prompt="0.075", completion="0.3")
    yield gw
    gw.stop()
    sim.stop_thread()


def _family(name: str) -> Family:
    return next(f for f in FAMILIES if f.name == name)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_cell(fidelity_gateway: Gateway, dialect: str, family: str, scenario: str) -> None:
    fam = _family(family)
    if importlib.util.find_spec(f"gatewayz.providers.{family}") is None:
        pytest.skip("wire format not implemented yet")
    if scenario in fam.limits:
        pytest.skip(fam.limits[scenario])
    run = {
        "openai": OPENAI_SCENARIOS,
        "anthropic": ANTHROPIC_SCENARIOS,
        "responses": RESPONSES_SCENARIOS,
    }[dialect]
    try:
        run[scenario](fidelity_gateway, fam.model)
    except (openai.BadRequestError, anthropic.BadRequestError) as exc:
        message = _error_message(exc)
        if "does not support" in message:  # a documented limit of the provider, said clearly
            pytest.skip(message)
        raise


def _error_message(exc: openai.APIStatusError | anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body)
    return str(err.get("message", exc)) if isinstance(err, dict) else str(exc)


# ---------------------------------------------------------------- OpenAI SDK scenarios
def _oa(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _oa_plain(gw: Gateway, model: str) -> None:
    r = _oa(gw).chat.completions.create(model=model, messages=[{"role": "user", "content": PROMPT}])
    assert r.choices[0].message.content and r.choices[0].finish_reason == "stop"


def _oa_streaming(gw: Gateway, model: str) -> None:
    client = _oa(gw)
    msgs = [{"role": "user", "content": PROMPT}]
    whole = client.chat.completions.create(model=model, messages=msgs).choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model=model, messages=msgs, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 2 and text == whole
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def _oa_tool_calls(gw: Gateway, model: str, stream: bool) -> list[dict[str, str]]:
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "tools": OPENAI_TOOLS,
        "tool_choice": "required",
    }
    client = _oa(gw)
    if not stream:
        msg = client.chat.completions.create(**kwargs).choices[0].message
        return [
            {"id": c.id, "name": c.function.name, "args": c.function.arguments}
            for c in msg.tool_calls
        ]
    calls: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for ch in chunk.choices:
            for tc in ch.delta.tool_calls or []:
                c = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                c["id"] += tc.id or ""
                c["name"] += (tc.function and tc.function.name) or ""
                c["args"] += (tc.function and tc.function.arguments) or ""
    return [calls[i] for i in sorted(calls)]


def _check_calls(calls: list[dict[str, str]]) -> None:
    assert calls and calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert set(json.loads(calls[0]["args"])) == {"city", "days"}


def _oa_images(gw: Gateway, model: str) -> None:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    r = _oa(gw).chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}]
    )
    assert r.choices[0].message.content
    assert PNG[:40] in gw.upstream.requests[-1].body.decode()


def _oa_usage(gw: Gateway, model: str) -> None:
    u = (
        _oa(gw)
        .chat.completions.create(model=model, messages=[{"role": "user", "content": PROMPT}])
        .usage
    )
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert not (u.model_extra or {}).get("estimated"), "usage was estimated, not reported"


OPENAI_SCENARIOS = {
    "plain": _oa_plain,
    "streaming": _oa_streaming,
    "tools": lambda gw, m: _check_calls(_oa_tool_calls(gw, m, False)),
    "streaming_tools": lambda gw, m: _check_calls(_oa_tool_calls(gw, m, True)),
    "images_in": _oa_images,
    "usage": _oa_usage,
}


# ---------------------------------------------------------------- Anthropic SDK scenarios
def _an(gw: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.root, api_key=gw.api_key, max_retries=0)


def _an_plain(gw: Gateway, model: str) -> None:
    m = _an(gw).messages.create(
        model=model, max_tokens=200, messages=[{"role": "user", "content": PROMPT}]
    )
    assert m.content[0].type == "text" and m.content[0].text and m.stop_reason == "end_turn"


def _an_streaming(gw: Gateway, model: str) -> None:
    client = _an(gw)
    msgs = [{"role": "user", "content": PROMPT}]
    whole = client.messages.create(model=model, max_tokens=200, messages=msgs).content[0].text
    with client.messages.stream(model=model, max_tokens=200, messages=msgs) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == whole and final.usage.output_tokens > 0


def _an_tools(gw: Gateway, model: str, stream: bool) -> None:
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": PROMPT}],
        "tools": ANTHROPIC_TOOLS,
        "tool_choice": {"type": "any"},
    }
    client = _an(gw)
    if stream:
        with client.messages.stream(**kwargs) as s:
            m = s.get_final_message()
    else:
        m = client.messages.create(**kwargs)
    uses = [b for b in m.content if b.type == "tool_use"]
    assert m.stop_reason == "tool_use" and uses and uses[0].name == "get_weather" and uses[0].id
    assert set(uses[0].input) == {"city", "days"}


def _an_images(gw: Gateway, model: str) -> None:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]
    m = _an(gw).messages.create(
        model=model, max_tokens=200, messages=[{"role": "user", "content": content}]
    )
    assert m.content[0].text
    assert PNG[:40] in gw.upstream.requests[-1].body.decode()


def _an_usage(gw: Gateway, model: str) -> None:
    rid = "fidelity-" + secrets.token_hex(6)
    m = _an(gw).messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"X-Request-ID": rid},
    )
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    (row,) = request_log_rows(gw, rid)
    assert not row["usage_estimated"], "usage was estimated, not reported"


ANTHROPIC_SCENARIOS = {
    "plain": _an_plain,
    "streaming": _an_streaming,
    "tools": lambda gw, m: _an_tools(gw, m, False),
    "streaming_tools": lambda gw, m: _an_tools(gw, m, True),
    "images_in": _an_images,
    "usage": _an_usage,
}
