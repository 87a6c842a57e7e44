"""What the schema run (`test_openai_schema.py`) found, one focused reproduction each, as strict
xfails: each fails while its bug is there, and once it is fixed the xfail turns into a failure
that says so; then remove the mark here and the bug's entry in `KNOWN_BUGS` there."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest

from gatewayz.canonical.fidelity import refusal
from gatewayz.errors import NotFound
from gatewayz.pipeline.stored_responses import StoredResponses
from gatewayz.providers.openai import request as chat_request
from gatewayz.storage.db import Database
from tests.e2e.harness import Gateway, add_user

from .conftest import CHAT_MODEL, EMBED_MODEL, http
from .test_openai_schema import _violations

ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"
HI = [{"role": "user", "content": "hi"}]
PDF = "data:application/pdf;base64,JVBERi0xLjQK"


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


def _schema(name: str) -> str:
    return f"#/components/schemas/{name}"


@pytest.fixture
def c(gw: Gateway) -> Any:
    with http(gw) as client:
        yield client


# ---- a read that never ends ---------------------------------------------------------------------

FUTURE_LOOKING_ID = "resp_677efb5139a88190b512bc3fef8e535d"  # the document's own example id


@pytest.mark.parametrize("how", ["get", "previous_response_id"])
def test_a_stored_response_read_by_a_future_looking_id_answers_at_once(
    gw: Gateway, how: str
) -> None:
    # Here rather than over HTTP: a request would leave its polling task in the gateway.
    async def read() -> Any:
        db = Database(gw.settings.resolved_database_url)
        responses = StoredResponses(db, retention_days=1, max_bytes=1 << 20)
        try:
            if how == "get":
                return await asyncio.wait_for(responses.get(gw.user_id, FUTURE_LOOKING_ID), 3)
            with pytest.raises(NotFound):
                await asyncio.wait_for(responses.conversation(gw.user_id, FUTURE_LOOKING_ID, 0), 3)
        finally:
            await db.dispose()

    assert asyncio.run(read()) is None


# ---- answers off the document's schemas ---------------------------------------------------------


@bug(
    "File, Batch and the batch list send their absent optional fields as null "
    "(`status_details`; `errors`, `output_file_id`, `error_file_id`, `in_progress_at`, "
    "`finalizing_at`, `completed_at`, `failed_at`, `expired_at`, `cancelling_at`, "
    "`cancelled_at`; an empty list's `first_id` / `last_id`), which the document types as "
    "string / integer / object, not nullable: leave them out (the SDKs read a missing field as "
    "None)"
)
def test_absent_values_are_null_where_the_schema_types_them(
    gw: Gateway, c: httpx2.Client, known: dict[str, str]
) -> None:
    problems = _violations(_schema("OpenAIFile"), c.get(f"/files/{known['file']}").json(), "file ")
    batch = c.get(f"/batches/{known['batch']}").json()
    problems += _violations(_schema("Batch"), batch, "batch ")
    _, key = add_user(gw, credits_usd=1)
    empty = c.get("/batches", headers={"Authorization": f"Bearer {key}"}).json()
    problems += _violations(_schema("ListBatchesResponse"), empty, "empty list ")
    assert problems == []


# ---- schema-valid requests refused --------------------------------------------------------------


@bug(
    "providers/openai/responses.py refuses these fields only when set (`raw.get(name) is not "
    "None`), but CreateResponseIn (extra='forbid') does not declare them, so null, which the "
    "document allows and means 'not used', is a 400 'Unrecognized request argument supplied'"
)
@pytest.mark.parametrize("field", ["conversation", "prompt", "context_management", "moderation"])
def test_an_unserved_responses_feature_set_to_null_is_refused(c: httpx2.Client, field: str) -> None:
    r = c.post("/responses", json={"model": CHAT_MODEL, "input": "hi", field: None})
    assert r.status_code == 200, r.text


@bug(
    "the Responses request's integers are strict (providers/openai/responses_schema.py): a whole "
    "float such as 16.0 is a 400 'Input should be a valid integer (got float)', though JSON "
    "Schema counts it an integer and chat takes whole floats (README: max_tokens `100.0`)"
)
@pytest.mark.parametrize(
    ("field", "value"),
    [("max_output_tokens", 16.0), ("top_logprobs", 2.0), ("max_tool_calls", 3.0)],
)
def test_responses_whole_floats_are_refused(c: httpx2.Client, field: str, value: float) -> None:
    r = c.post("/responses", json={"model": CHAT_MODEL, "input": "hi", field: value})
    assert r.status_code == 200, r.text


def _answered_or_refused_as_the_table_says(c: httpx2.Client, body: dict[str, Any]) -> None:
    """200, or the 400 `unsupported_by_provider` the fidelity table predicts for Anthropic."""
    r = c.post("/chat/completions", json=body)
    if r.status_code == 200:
        return
    predicted = refusal(chat_request.parse_request(json.dumps(body).encode()), "anthropic")
    error = r.json()["error"]
    assert predicted is not None, f"refused, and the fidelity table says nothing: {r.text}"
    assert (r.status_code, error["code"], error["param"]) == (
        400,
        "unsupported_by_provider",
        predicted.param,
    )


@bug(
    "OpenAI content parts the fidelity table has no row for, `file` (here a PDF, inline) and "
    "`input_audio`, to an Anthropic-family model are a 400 unsupported_by_provider 'Content "
    "parts of type '...' are not supported by this provider' naming `messages`, which the table "
    "does not predict (it has Anthropic carry document blocks): translate them (a PDF is a "
    "document block), or add the refusals to the table, naming the part"
)
@pytest.mark.parametrize(
    "part",
    [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ],
    ids=["file", "input_audio"],
)
def test_anthropic_family_refuses_parts_the_table_does_not(
    c: httpx2.Client, part: dict[str, Any]
) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "read"}, part]}]
    _answered_or_refused_as_the_table_says(c, {"model": ANTHROPIC_MODEL, "messages": messages})


@bug(
    "a chat of only system / developer messages (OpenAI answers it; the OpenAI family here "
    "does) to an Anthropic-family model is a 400 invalid_request 'messages: at least one "
    "message is required' naming nothing: not in the fidelity table, and not "
    "unsupported_by_provider, so no failover either"
)
def test_anthropic_family_refuses_a_chat_of_system_messages(c: httpx2.Client) -> None:
    messages = [{"role": "system", "content": "Say hello."}]
    _answered_or_refused_as_the_table_says(c, {"model": ANTHROPIC_MODEL, "messages": messages})


@bug(
    "an assistant tool call whose `arguments` is not a JSON object (the document warns that the "
    "model 'does not always generate valid JSON', so clients send such turns back) is a 400 "
    "invalid_request for an Anthropic-family model: not in the fidelity table, not "
    "unsupported_by_provider (no failover); the OpenAI family carries it"
)
@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_anthropic_family_refuses_malformed_tool_call_arguments(
    c: httpx2.Client, arguments: str
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages = [
        *HI,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    _answered_or_refused_as_the_table_says(c, {"model": ANTHROPIC_MODEL, "messages": messages})


@bug(
    '`function_call: "none"` (the document: the default when no functions are present) or '
    "`\"auto\"` without `functions` is a 400 'function_call requires functions.' "
    '(providers/openai/tools.py), where `tool_choice: "none"` / `"auto"` without tools is '
    "accepted"
)
@pytest.mark.parametrize("value", ["none", "auto"])
def test_function_call_none_without_functions_is_refused(c: httpx2.Client, value: str) -> None:
    body = {"model": CHAT_MODEL, "messages": HI, "function_call": value}
    r = c.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text


@bug(
    '`tool_choice: {"type": "allowed_tools", "allowed_tools": {"mode": "auto", '
    '"tools": []}}` (no tool allowed: answer with a message) is a 400 with a misleading '
    "message, 'Input should be 'none', 'auto' or 'required' (got dict)' (AllowedTools wants "
    "one tool at least)"
)
def test_allowed_tools_with_an_empty_list_is_refused(c: httpx2.Client) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    body = {"model": CHAT_MODEL, "messages": HI, "tools": [tool], "tool_choice": choice}
    r = c.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text


@bug(
    "a batch's metadata with an empty key is a 400 (batches/service.py wants keys of 1-64 "
    "characters); the document's limits are 16 pairs, keys up to 64 and values up to 512 "
    "characters, and /v1/responses takes the same metadata"
)
def test_batch_metadata_with_an_empty_key_is_refused(
    c: httpx2.Client, known: dict[str, str]
) -> None:
    body = {
        "input_file_id": known["file"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"": "x"},
    }
    r = c.post("/batches", json=body)
    assert r.status_code == 200, r.text


@bug(
    "embeddings refuse `user: \"\"` ('must be a string of 1 to 256 characters', "
    "api/media_requests.py), which chat and responses accept and the document allows"
)
def test_embeddings_refuse_an_empty_user(c: httpx2.Client) -> None:
    r = c.post("/embeddings", json={"model": EMBED_MODEL, "input": "hi", "user": ""})
    assert r.status_code == 200, r.text


@bug(
    "an unknown top-level field of a Responses request is refused under another name when it "
    "starts with a capital letter or holds '[' (named '': 'Unrecognized request argument "
    "supplied: ') or starts with '.' (named without it): responses_schema.validation_error "
    "drops location parts it takes for pydantic's union labels, and strips leading dots"
)
@pytest.mark.parametrize("field", ["Temperature", "x[0]", ".x"])
def test_an_unknown_field_is_refused_without_its_name(c: httpx2.Client, field: str) -> None:
    r = c.post("/responses", json={"model": CHAT_MODEL, "input": "hi", field: 1})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == field


def test_every_known_bug_of_the_run_is_reproduced_here() -> None:
    from . import test_found, test_openai_schema

    names = {known.test for known in test_openai_schema.KNOWN_BUGS}
    missing = {n for n in names if not callable(getattr(test_found, n, None))}
    assert not missing, f"KNOWN_BUGS names tests that test_found.py does not have: {missing}"
