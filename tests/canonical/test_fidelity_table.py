"""The fidelity table (canonical/fidelity.py): complete, and the one place that refuses."""

from __future__ import annotations

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
