"""Request logging on PostgreSQL survives what callers send: a long X-Request-ID (up to 128
characters) is kept and stored whole, a longer one is replaced, a 300-character model name is
refused (4xx, in either dialect) yet logged, and the requests after them are logged too."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, gateway_settings, request_log_rows, start_gateway

MSG = [{"role": "user", "content": "hello"}]
LONG_MODEL = "m" * 300


@pytest.fixture
def pg_gateway(postgres_url: str, upstream: Simulator, tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(gateway_settings(tmp_path, upstream, database_url=postgres_url), upstream)
    yield gw
    gw.stop()


def _rid(length: int) -> str:
    """A request id of `length` characters, all of the kinds the gateway accepts."""
    return (secrets.token_hex(length) + "._:-")[-length:]


def test_long_request_ids_and_model_names_are_logged_and_logging_goes_on(
    pg_gateway: Gateway,
) -> None:
    gw = pg_gateway
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    claude = anthropic.Anthropic(base_url=gw.root, api_key=gw.api_key, max_retries=0)

    long_id = _rid(100)
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=MSG, extra_headers={"X-Request-ID": long_id}
    )
    assert raw.headers["x-request-id"] == long_id

    # Both edges refuse a model name this long (400, naming `model`); the refusals are logged.
    openai_id, anthropic_id = _rid(128), _rid(127)  # 128: the longest id the gateway accepts
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=LONG_MODEL, messages=MSG, extra_headers={"X-Request-ID": openai_id}
        )
    assert refused.value.response.headers["x-request-id"] == openai_id
    with pytest.raises(anthropic.BadRequestError) as unknown:
        claude.messages.create(
            model=LONG_MODEL,
            max_tokens=16,
            messages=MSG,
            extra_headers={"X-Request-ID": anthropic_id},
        )
    assert unknown.value.response.headers["x-request-id"] == anthropic_id

    too_long = _rid(129)  # not accepted: replaced by a generated id, the request still served
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=MSG, extra_headers={"X-Request-ID": too_long}
    )
    generated = raw.headers["x-request-id"]
    assert generated != too_long and len(generated) == 32

    after = "after-" + secrets.token_hex(4)
    client.chat.completions.create(
        model="test-model", messages=MSG, extra_headers={"X-Request-ID": after}
    )

    (row,) = request_log_rows(gw, long_id)
    assert (row["request_id"], row["status_code"], row["model"]) == (long_id, 200, "test-model")
    (row,) = request_log_rows(gw, openai_id)
    assert (row["request_id"], row["status_code"]) == (openai_id, 400)
    (row,) = request_log_rows(gw, anthropic_id)
    assert (row["request_id"], row["status_code"]) == (anthropic_id, 400)
    (row,) = request_log_rows(gw, generated)
    assert row["status_code"] == 200
    (row,) = request_log_rows(gw, after)
    assert row["status_code"] == 200
    assert gw.services.request_log.rejected == 0
