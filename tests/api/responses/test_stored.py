"""Stored responses: `store` (the default) keeps a response for its owner —
`GET /v1/responses/{id}` answers it as it was sent, `DELETE` removes it — for the retention
period; anyone else, an unknown or expired id is a 404 `response_not_found`, in OpenAI's
error shape, and so is such an id as `previous_response_id`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx2
import openai
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.response_tables import responses
from gatewayz.storage.tables import utcnow
from tests.api.responses.conftest import OPENAI_MODEL
from tests.e2e.harness import Gateway, add_user, run_db


def _get(gateway: Gateway, response_id: str, key: str | None = None) -> httpx2.Response:
    with httpx2.Client(trust_env=False, timeout=10.0) as c:
        return c.get(
            f"{gateway.base_url}/responses/{response_id}",
            headers={"authorization": f"Bearer {key or gateway.api_key}"},
        )


def _other(gateway: Gateway) -> openai.OpenAI:
    _, key = add_user(gateway, credits_usd=1)
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def _not_found(exc: pytest.ExceptionInfo[openai.NotFoundError], param: str | None = None) -> None:
    body = exc.value.body
    assert isinstance(body, dict) and body["code"] == "response_not_found", body
    assert body["param"] == param


def test_retrieve_answers_the_response_as_it_was_sent(
    client: openai.OpenAI, gateway: Gateway, model: str
) -> None:
    raw = client.responses.with_raw_response.create(model=model, input="Hello", metadata={"a": "b"})
    created = raw.http_response.json()
    assert _get(gateway, created["id"]).json() == created
    got = client.responses.retrieve(created["id"])
    assert got.output_text == raw.parse().output_text and got.metadata == {"a": "b"}
    with client.responses.stream(model=model, input="Streamed") as s:
        final = s.get_final_response()
    again = client.responses.retrieve(final.id)
    assert again.output_text == final.output_text and again.status == "completed"
    assert again.usage is not None and again.usage.model_extra is not None
    assert again.usage.model_extra["cost"] > 0


def test_delete_removes_it(client: openai.OpenAI) -> None:
    r = client.responses.create(model=OPENAI_MODEL, input="Hello")
    raw = client.responses.with_raw_response.delete(r.id)
    assert raw.http_response.json() == {"id": r.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(r.id)
    _not_found(caught)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=OPENAI_MODEL, previous_response_id=r.id, input="More")
    _not_found(caught, "previous_response_id")


def test_someone_elses_response_does_not_exist_for_you(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    r = client.responses.create(model=OPENAI_MODEL, input="Mine")
    other = _other(gateway)
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.retrieve(r.id)
    _not_found(caught)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(r.id)
    gateway.upstream.clear()
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model=OPENAI_MODEL, previous_response_id=r.id, input="Steal")
    _not_found(caught, "previous_response_id")
    assert gateway.upstream.requests == []  # refused before any provider call
    assert client.responses.retrieve(r.id).output_text == r.output_text  # still the owner's


@pytest.mark.parametrize(
    "bad", ["resp_0000000000000000", "resp_xyz", "msg_123", "x" * 2000, "resp_" + "a" * 60]
)
def test_unknown_ids_are_404s(client: openai.OpenAI, gateway: Gateway, bad: str) -> None:
    r = _get(gateway, bad)
    assert r.status_code == 404 and r.json()["error"]["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=OPENAI_MODEL, previous_response_id=bad[:200], input="x")
    _not_found(caught, "previous_response_id")


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    r = client.responses.create(model=OPENAI_MODEL, input="Forget me", store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_an_expired_response_is_gone_and_purged(client: openai.OpenAI, gateway: Gateway) -> None:
    old = client.responses.create(model=OPENAI_MODEL, input="Old")
    kept = client.responses.create(model=OPENAI_MODEL, input="Kept")
    client.responses.retrieve(old.id)  # stored (the save has finished)

    async def expire(conn: AsyncConnection) -> None:
        past = utcnow() - timedelta(seconds=1)
        await conn.execute(
            update(responses).where(responses.c.id == old.id).values(expires_at=past)
        )

    run_db(gateway, expire)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(old.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=OPENAI_MODEL, previous_response_id=old.id, input="x")

    async def count(conn: AsyncConnection) -> int:
        return int((await conn.execute(select(func.count()).select_from(responses))).scalar_one())

    before = run_db(gateway, count)
    assert before >= 1  # the expired one was deleted when read; `kept` is there
    # The purge deletes what expired without being read.
    third = client.responses.create(model=OPENAI_MODEL, input="Unread")
    client.responses.retrieve(third.id)

    async def expire_third(conn: AsyncConnection) -> None:
        past = utcnow() - timedelta(days=1)
        c = responses.c
        await conn.execute(update(responses).where(c.id == third.id).values(expires_at=past))

    run_db(gateway, expire_third)
    purged = asyncio.run_coroutine_threadsafe(
        gateway.services.responses.purge.purge_once(), _loop(gateway)
    ).result(10)
    assert purged == 1
    assert run_db(gateway, count) == before
    assert client.responses.retrieve(kept.id).id == kept.id


def test_retention_is_the_setting(client: openai.OpenAI, gateway: Gateway) -> None:
    r = client.responses.create(model=OPENAI_MODEL, input="How long?")
    client.responses.retrieve(r.id)

    async def lifetime(conn: AsyncConnection) -> timedelta:
        row = (await conn.execute(select(responses).where(responses.c.id == r.id))).one()
        return row.expires_at - row.created_at  # type: ignore[no-any-return]

    assert run_db(gateway, lifetime) == timedelta(days=gateway.settings.responses_retention_days)


def _loop(gateway: Gateway) -> asyncio.AbstractEventLoop:
    """The gateway's event loop (its server runs in a thread of its own)."""
    return gateway.server.servers[0].get_loop()
