"""OpenAI chat content to the Anthropic family (providers/anthropic/content.py): what the
Messages API can carry is translated (an inline PDF `file` part is a document block with a
base64 source); what it cannot is an Unsupported naming the field, so failover can find a
provider that takes it (the fidelity table refuses it first: canonical/fidelity.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gatewayz.canonical.types import ChatRequest
from gatewayz.errors import Unsupported
from gatewayz.providers.anthropic.request import render_request
from gatewayz.providers.openai.request import parse_request

PDF = "JVBERi0xLjQK"


def _openai(messages: list[dict[str, Any]]) -> ChatRequest:
    return parse_request(orjson.dumps({"model": "m", "messages": messages}))


def _anthropic_body(req: ChatRequest) -> dict[str, Any]:
    return orjson.loads(render_request(req, "claude-sonnet-4-5"))


def test_an_inline_pdf_file_part_is_a_document_block() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
    }
    req = _openai([{"role": "user", "content": [{"type": "text", "text": "read"}, part]}])
    assert _anthropic_body(req)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "read"},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    "title": "a.pdf",
                },
            ],
        }
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_that_are_not_an_object_are_unsupported(arguments: str) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    req = _openai(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ]
    )
    with pytest.raises(Unsupported) as e:
        render_request(req, "claude-sonnet-4-5")
    assert e.value.param == "messages[1].tool_calls[0].function.arguments"
    assert e.value.failover


def test_empty_tool_call_arguments_are_an_empty_input() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    req = _openai(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ]
    )
    use = _anthropic_body(req)["messages"][1]["content"][0]
    assert use == {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
