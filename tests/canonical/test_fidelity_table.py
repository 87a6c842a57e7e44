"""The fidelity table (canonical/fidelity.py): complete, and the one place that refuses."""

from __future__ import annotations

import orjson
import pytest

from gatewayz.canonical.fidelity import (
    CARRIED,
    EMULATED,
    FAMILIES,
    REFUSED,
    ROWS,
    TRANSLATED,
    refusal,
)
from gatewayz.canonical.fidelity_fields import USES
from gatewayz.canonical.types import ChatRequest, DocumentPart, Message, TextPart, Tool
from gatewayz.errors import Unsupported
from gatewayz.pipeline.emulation import merge
from gatewayz.providers.anthropic.request import parse_request as anthropic_request
from gatewayz.providers.openai.request import parse_request as openai_request


def test_every_field_has_a_row_and_every_cell_a_status() -> None:
    keys = [r.key for r in ROWS]
    assert len(keys) == len(set(keys))
    assert set(USES) <= set(keys)
    for row in ROWS:
        assert set(row.cells) <= set(FAMILIES), row.key
        for family in FAMILIES:
            assert row.cell(family)[0] in (CARRIED, TRANSLATED, EMULATED, REFUSED)


def _req(**fields: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", "q")], **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "family", "param"),
    [
        ({"logprobs": True}, "anthropic", "logprobs"),
        ({"logit_bias": {"1": 1.0}}, "gemini", "logit_bias"),
        ({"seed": 3}, "bedrock", "seed"),
        ({"metadata": {"k": "v"}}, "cohere", "metadata"),
        ({"tools": [Tool("f")]}, "fal", "tools"),
        ({"tools": [Tool("c", kind="custom")]}, "anthropic", "tools"),
        ({"extra": {"prediction": {"type": "content"}}}, "anthropic", "prediction"),
    ],
)
def test_a_field_a_family_cannot_carry_is_refused_by_name(
    fields: dict[str, object], family: str, param: str
) -> None:
    err = refusal(_req(**fields), family)
    assert isinstance(err, Unsupported) and err.param == param and err.status == 400
    assert err.failover  # another provider may take it
    assert refusal(_req(**fields), "openai") is None


def test_a_dialects_own_fields_are_its_familys_and_named_ones_cross() -> None:
    req = anthropic_request(
        b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"q"}],'
        b'"container":"c","output_config":{"format":{"type":"json_schema","schema":{}},'
        b'"effort":"low","task_budget":1}}'
    )
    assert refusal(req, "anthropic") is None
    err = refusal(req, "openai")
    assert err is not None and err.param == "container"
    del req.extra["container"]
    err = refusal(req, "openai")
    assert err is not None and err.param == "output_config.task_budget"
    oa = openai_request(b'{"model":"m","messages":[{"role":"user","content":"q"}],"thinking":{}}')
    assert refusal(oa, "anthropic") is None and refusal(oa, "gemini") is not None


def test_block_fields_of_another_format_are_refused() -> None:
    doc = DocumentPart("text/plain", data="x", extra={"citations": {"enabled": True}})
    cached = TextPart("y", extra={"cache_control": {"type": "ephemeral"}})
    req = ChatRequest(
        model="m", messages=[Message("user", [doc, cached])], extra_dialect="anthropic"
    )
    assert refusal(req, "anthropic") is None
    err = refusal(req, "openai")
    assert err is not None and err.param == "citations"
    req.messages[0].content = [cached]
    assert refusal(req, "openai") is None  # cache_control: translated (automatic caching)
    assert (err := refusal(req, "bedrock")) is not None and err.param == "cache_control"


def test_merged_choices_bill_every_request() -> None:
    from gatewayz.canonical.types import ChatResponse, Choice, Usage

    def one(text: str, usage: Usage | None) -> ChatResponse:
        return ChatResponse([Choice(0, Message("assistant", text), "stop")], usage)

    merged = merge([one("ab", Usage(10, 2, cached_tokens=4)), one("abcd", None)], _req(), 4)
    assert [c.index for c in merged.choices] == [0, 1]
    assert merged.usage is not None
    assert merged.usage.prompt_tokens == 10 + 1  # the second: estimated from its own request
    assert merged.usage.completion_tokens == 2 + 1 and merged.usage.estimated
    assert merged.usage.cached_tokens == 4


def _openai(messages: list[dict[str, object]]) -> ChatRequest:
    return openai_request(orjson.dumps({"model": "m", "messages": messages}))


@pytest.mark.parametrize(
    ("part", "refused_by", "carried_by"),
    [
        (
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            ("anthropic", "bedrock", "cohere", "fal"),
            ("openai", "gemini", "vertex"),
        ),
        (
            {"type": "file", "file": {"file_id": "file-abc"}},
            ("anthropic", "bedrock", "cohere", "fal"),
            ("openai", "gemini", "vertex"),
        ),
        (  # a document: the `documents` row, which Anthropic translates
            {
                "type": "file",
                "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
            },
            ("fal",),
            ("openai", "anthropic", "gemini", "bedrock"),
        ),
    ],
    ids=["input_audio", "file_id", "pdf"],
)
def test_content_parts_are_refused_naming_the_part(
    part: dict[str, object], refused_by: tuple[str, ...], carried_by: tuple[str, ...]
) -> None:
    req = _openai([{"role": "user", "content": [{"type": "text", "text": "read"}, part]}])
    for family in refused_by:
        err = refusal(req, family)
        assert err is not None and err.failover, family
        assert err.param in ("messages[0].content[1]", "messages"), family
    assert all(refusal(req, family) is None for family in carried_by)


def test_a_conversation_of_system_messages_only() -> None:
    req = _openai(
        [{"role": "system", "content": "Say hello."}, {"role": "developer", "content": "x"}]
    )
    for family in ("anthropic", "gemini", "vertex", "bedrock", "fal"):
        err = refusal(req, family)
        assert err is not None and err.param == "messages" and err.failover
    assert refusal(req, "openai") is None
    assert (
        refusal(
            _openai([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]),
            "anthropic",
        )
        is None
    )


@pytest.mark.parametrize(
    ("arguments", "refused"),
    [("{not json", True), ("[1, 2]", True), ('"s"', True), ("", False), ('{"a": 1}', False)],
)
def test_tool_call_arguments_that_are_not_an_object(arguments: str, refused: bool) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    req = _openai(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ]
    )
    for family in ("anthropic", "gemini", "vertex", "bedrock"):
        err = refusal(req, family)
        assert (err is not None) is refused, family
        if err is not None:
            assert err.param == "messages[1].tool_calls[0].function.arguments"
    assert refusal(req, "openai") is None and refusal(req, "cohere") is None
