"""The fidelity rule (canonical/fidelity.py) on the Anthropic dialect, with the official
`anthropic` SDK: what an Anthropic provider must receive as the client sent it (prompt caching,
beta flags, structured outputs, citations, containers), what a provider of another family gets
translated, what it cannot take (a 400 naming the field), and Anthropic's `request-id`."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from gatewayz.canonical.adapt import JSON_INSTRUCTION
from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway

CLAUDE = "anthropic/claude-sonnet-4-5"
OPENAI_COMPATIBLE = "test-model"  # vllm: the OpenAI-compatible family
EPHEMERAL = {"type": "ephemeral"}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}


@pytest.fixture
def claude(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)


def sent(sim: Simulator, path: str = "/v1/messages") -> dict[str, Any]:
    (req,) = [r for r in sim.requests if r.path.endswith(path)]
    return req.json


def test_cache_control_reaches_anthropic_on_system_blocks_tools_and_turns(
    claude: anthropic.Anthropic, upstream: Simulator
) -> None:
    system = [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "A long manual ...", "cache_control": EPHEMERAL},
    ]
    tools = [
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "cache_control": EPHEMERAL,
        }
    ]
    messages: list[Any] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Oslo?", "cache_control": EPHEMERAL}],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                    "cache_control": EPHEMERAL,
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "sunny",
                    "cache_control": {"type": "ephemeral", "ttl": "1h"},
                }
            ],
        },
    ]
    claude.messages.create(
        model=CLAUDE, max_tokens=50, system=system, tools=tools, messages=messages
    )
    body = sent(upstream)
    assert body["system"] == system
    assert body["tools"] == tools
    assert body["messages"] == messages


def test_anthropic_beta_header_is_forwarded(
    claude: anthropic.Anthropic, upstream: Simulator
) -> None:
    claude.beta.messages.create(
        model=CLAUDE,
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        betas=["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"],
    )
    (req,) = [r for r in upstream.requests if r.path == "/v1/messages"]
    assert req.headers["anthropic-beta"] == "context-1m-2025-08-07,interleaved-thinking-2025-05-14"


def test_anthropic_only_fields_pass_through_unchanged(
    claude: anthropic.Anthropic, upstream: Simulator
) -> None:
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."},
        "title": "Facts",
        "context": "from the encyclopedia",
        "citations": {"enabled": True},
    }
    output_format = {"type": "json_schema", "schema": SCHEMA}
    extra = {
        "output_format": output_format,
        "container": "container_011CPR5CNjB747bTd36fQLFk",
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "service_tier": "auto",
    }
    m = claude.messages.create(
        model=CLAUDE,
        max_tokens=100,
        messages=[{"role": "user", "content": [document, {"type": "text", "text": "Sky?"}]}],
        extra_body=extra,
    )
    body = sent(upstream)
    for name, value in extra.items():
        assert body[name] == value, name
    assert "output_config" not in body  # the client's field, not a second copy of it
    assert body["messages"][0]["content"][0] == document
    assert set(json.loads(m.content[0].text)) == {"city", "days"}  # structured, per schema


def test_output_config_format_becomes_response_format_for_openai_compatible(
    claude: anthropic.Anthropic, upstream: Simulator
) -> None:
    m = claude.messages.create(
        model=OPENAI_COMPATIBLE,
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather?"}],
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
    )
    body = sent(upstream, "/chat/completions")
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": True},
    }
    assert "output_config" not in body
    assert set(json.loads(m.content[0].text)) == {"city", "days"}


def test_output_config_effort_becomes_reasoning_effort(
    claude: anthropic.Anthropic, upstream: Simulator
) -> None:
    claude.messages.create(
        model=OPENAI_COMPATIBLE,
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"output_config": {"effort": "max"}},
    )
    assert sent(upstream, "/chat/completions")["reasoning_effort"] == "xhigh"


def test_cache_control_of_openai_parts_is_carried_and_anthropics_translated_away(
    claude: anthropic.Anthropic, gateway: Gateway, upstream: Simulator
) -> None:
    """OpenRouter's `cache_control` on OpenAI text parts reaches OpenAI-compatible providers
    and Anthropic; Anthropic's own marker means nothing to OpenAI-compatible providers (they
    cache prompt prefixes themselves): translated away there, not refused."""
    import openai

    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    system: Any = {
        "role": "system",
        "content": [{"type": "text", "text": "Manual", "cache_control": EPHEMERAL}],
    }
    client.chat.completions.create(
        model=OPENAI_COMPATIBLE, messages=[system, {"role": "user", "content": "hi"}]
    )
    assert sent(upstream, "/chat/completions")["messages"][0] == system
    upstream.clear()
    client.chat.completions.create(
        model=CLAUDE, messages=[system, {"role": "user", "content": "hi"}]
    )
    assert sent(upstream)["system"] == system["content"]
    upstream.clear()
    claude.messages.create(
        model=OPENAI_COMPATIBLE,
        max_tokens=50,
        system=[{"type": "text", "text": "Manual", "cache_control": EPHEMERAL}],
        messages=[{"role": "user", "content": "hi"}],
    )
    body = sent(upstream, "/chat/completions")
    assert body["messages"][0] == {"role": "system", "content": "Manual"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"container": "container_1"}, "container"),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
        ({"service_tier": "standard_only"}, "service_tier"),
    ],
)
def test_anthropic_only_fields_are_refused_by_name_elsewhere(
    claude: anthropic.Anthropic, upstream: Simulator, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(
            model=OPENAI_COMPATIBLE,
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_body=extra,
        )
    assert f"does not support '{param}'" in e.value.message
    assert not upstream.requests  # refused before anything was sent


def test_citations_are_refused_by_openai_compatible_providers(
    claude: anthropic.Anthropic,
) -> None:
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
        "citations": {"enabled": True},
    }
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(
            model=OPENAI_COMPATIBLE,
            max_tokens=50,
            messages=[{"role": "user", "content": [document]}],
        )
    assert "does not support 'citations'" in e.value.message


def test_responses_carry_anthropics_request_id(
    claude: anthropic.Anthropic, gateway: Gateway
) -> None:
    raw = claude.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    assert raw.parse()._request_id == raw.headers["x-request-id"]
    with claude.messages.stream(
        model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        s.get_final_message()
        assert s.response.headers["request-id"] == s.response.headers["x-request-id"]
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(
            model="no-such/model", max_tokens=20, messages=[{"role": "user", "content": "x"}]
        )
    assert e.value.request_id and e.value.request_id == e.value.response.headers["x-request-id"]
    count = claude.messages.count_tokens(model=CLAUDE, messages=[{"role": "user", "content": "x"}])
    assert count._request_id


def test_json_mode_from_openai_reaches_anthropic_as_an_instruction(
    gateway: Gateway, upstream: Simulator
) -> None:
    import openai

    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    client.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        response_format={"type": "json_object"},
    )
    body = sent(upstream)
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": JSON_INSTRUCTION},
    ]


def test_a_malformed_beta_flag_is_a_400_naming_the_header(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(
            model=CLAUDE,
            max_tokens=20,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"anthropic-beta": "good-2025-01-01, bad flag"},
        )
    assert "anthropic-beta" in e.value.message


def test_a_whole_float_max_tokens_is_an_integer(
    claude: anthropic.Anthropic, upstream: Simulator
) -> None:
    claude.messages.create(
        model=CLAUDE,
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"max_tokens": 20.0, "top_k": 5.0},
    )
    body = sent(upstream)
    assert body["max_tokens"] == 20 and body["top_k"] == 5
