"""What the schema run (`test_openai_schema.py`) found, one focused reproduction each. An open
finding is a strict xfail (`@bug(...)`): it fails while its bug is there, and once it is fixed
the xfail turns into a failure that says so; then remove the mark here and the bug's entry in
`KNOWN_BUGS` there, and the test stays to prove the fix (as every test below, issue 17's)."""

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


def test_absent_values_are_null_where_the_schema_types_them(
    gw: Gateway, c: httpx2.Client, known: dict[str, str]
) -> None:
    """Fixed (batches/service.py): File, Batch and the batch list leave out what they do not
    have (`status_details`, a batch's files and times, an empty list's first/last id), which
    the document types string / integer / object, not nullable (the SDKs read None)."""
    problems = _violations(_schema("OpenAIFile"), c.get(f"/files/{known['file']}").json(), "file ")
    batch = c.get(f"/batches/{known['batch']}").json()
    problems += _violations(_schema("Batch"), batch, "batch ")
    _, key = add_user(gw, credits_usd=1)
    empty = c.get("/batches", headers={"Authorization": f"Bearer {key}"}).json()
    problems += _violations(_schema("ListBatchesResponse"), empty, "empty list ")
    assert problems == []


# ---- schema-valid requests refused --------------------------------------------------------------


@pytest.mark.parametrize("field", ["conversation", "prompt", "context_management", "moderation"])
def test_an_unserved_responses_feature_set_to_null_is_refused(c: httpx2.Client, field: str) -> None:
    """Fixed (responses_schema.py declares them): null, which the document allows, means not
    used; a value is still refused by name (providers/openai/responses.py)."""
    r = c.post("/responses", json={"model": CHAT_MODEL, "input": "hi", field: None})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_output_tokens", 16.0), ("top_logprobs", 2.0), ("max_tool_calls", 3.0)],
)
def test_responses_whole_floats_are_refused(c: httpx2.Client, field: str, value: float) -> None:
    """Fixed: a whole float is an integer, as JSON Schema and chat count it (`WholeInt`)."""
    r = c.post("/responses", json={"model": CHAT_MODEL, "input": "hi", field: value})
    assert r.status_code == 200, r.text


def _answered_or_refused_as_the_table_says(c: httpx2.Client, body: dict[str, Any]) -> int:
    """200, or the 400 `unsupported_by_provider` the fidelity table predicts for Anthropic,
    naming the field (so that routing can pass the family over); the status."""
    r = c.post("/chat/completions", json=body)
    if r.status_code == 200:
        return 200
    predicted = refusal(chat_request.parse_request(json.dumps(body).encode()), "anthropic")
    error = r.json()["error"]
    assert predicted is not None, f"refused, and the fidelity table says nothing: {r.text}"
    assert (r.status_code, error["code"], error["param"]) == (
        400,
        "unsupported_by_provider",
        predicted.param,
    )
    return 400


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
    """Fixed: an inline PDF `file` part is a document (Anthropic: a document block with a base64
    source), answered; `input_audio`, which the Messages API cannot carry, is refused by the
    fidelity table's `audio` row, naming the part."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "read"}, part]}]
    status = _answered_or_refused_as_the_table_says(
        c, {"model": ANTHROPIC_MODEL, "messages": messages}
    )
    assert status == (200 if part["type"] == "file" else 400)


def test_anthropic_family_refuses_a_chat_of_system_messages(c: httpx2.Client) -> None:
    """Refused by the fidelity table (`system_only`: the Messages API needs a user or assistant
    turn), so routing passes the family over; with no other, a 400 naming `messages`."""
    messages = [{"role": "system", "content": "Say hello."}]
    body = {"model": ANTHROPIC_MODEL, "messages": messages}
    assert _answered_or_refused_as_the_table_says(c, body) == 400


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_anthropic_family_refuses_malformed_tool_call_arguments(
    c: httpx2.Client, arguments: str
) -> None:
    """Refused by the fidelity table (`tool_arguments`: a tool_use block's input is a JSON
    object), naming the arguments, so routing can find a family that carries them."""
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages = [
        *HI,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    body = {"model": ANTHROPIC_MODEL, "messages": messages}
    assert _answered_or_refused_as_the_table_says(c, body) == 400


@pytest.mark.parametrize("value", ["none", "auto"])
def test_function_call_none_without_functions_is_refused(c: httpx2.Client, value: str) -> None:
    """Fixed (providers/openai/tools.py): with no functions there is nothing to call either way."""
    body = {"model": CHAT_MODEL, "messages": HI, "function_call": value}
    r = c.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text


def test_allowed_tools_with_an_empty_list_is_refused(c: httpx2.Client) -> None:
    """Fixed: no tool allowed, mode auto, is `tool_choice: "none"` (mode required: a 400 naming
    `tool_choice.allowed_tools.tools`, documented in the schema run)."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    body = {"model": CHAT_MODEL, "messages": HI, "tools": [tool], "tool_choice": choice}
    r = c.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text


def test_batch_metadata_with_an_empty_key_is_refused(
    c: httpx2.Client, known: dict[str, str]
) -> None:
    """Fixed (batches/service.py): keys up to 64 characters, an empty one included."""
    body = {
        "input_file_id": known["file"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"": "x"},
    }
    r = c.post("/batches", json=body)
    assert r.status_code == 200, r.text


def test_embeddings_refuse_an_empty_user(c: httpx2.Client) -> None:
    """Fixed (api/media_requests.py): `user` of 0 to 256 characters, as chat takes it."""
    r = c.post("/embeddings", json={"model": EMBED_MODEL, "input": "hi", "user": ""})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("field", ["Temperature", "x[0]", ".x"])
def test_an_unknown_field_is_refused_without_its_name(c: httpx2.Client, field: str) -> None:
    """Fixed (responses_schema.validation_error): a location's parts are parameters when they
    are keys or indexes of the request, whatever their spelling."""
    r = c.post("/responses", json={"model": CHAT_MODEL, "input": "hi", field: 1})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == field


def test_every_known_bug_of_the_run_is_reproduced_here() -> None:
    from . import test_found, test_openai_schema

    names = {known.test for known in test_openai_schema.KNOWN_BUGS}
    missing = {n for n in names if not callable(getattr(test_found, n, None))}
    assert not missing, f"KNOWN_BUGS names tests that test_found.py does not have: {missing}"
