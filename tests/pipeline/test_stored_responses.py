"""Stored responses' rules (pipeline/stored_responses.py): the canonical conversation kept as
JSON and read back unchanged, ids bounded and timed, a save this worker has not finished
awaited by a read, the size bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gatewayz.canonical.types import (
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    TextPart,
    ToolCall,
)
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.pipeline import stored_responses as sr
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.users import create_user

CONVERSATION = [
    Message("user", [TextPart("look"), ImagePart("data:image/png;base64,AA", "low")]),
    Message("user", [DocumentPart("application/pdf", data="JVBE", title="a.pdf")]),
    Message("user", [OtherPart("input_audio", {"type": "input_audio", "x": 1})]),
    Message(
        "assistant",
        "calling",
        tool_calls=[ToolCall("call_1", "f", '{"a": 1}')],
        reasoning="think",
        reasoning_signature="sig",
    ),
    Message("tool", "result", tool_call_id="call_1", is_error=True),
    Message("assistant", None, refusal="no", name="bot"),
]


def test_the_conversation_reads_back_unchanged() -> None:
    assert sr.decode_messages(sr.encode_messages(CONVERSATION)) == CONVERSATION


def test_response_ids_carry_their_time() -> None:
    rid = sr.new_response_id()
    assert rid.startswith("resp_") and len(rid) == 53 and sr._ID.fullmatch(rid)
    assert abs(sr._made_at(rid) - time.time()) < 5


@pytest.fixture
async def db(tmp_path: object) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/gw.db"
    await upgrade(url)
    database = Database(url)
    yield database
    await database.dispose()


async def test_a_read_waits_for_this_workers_save_and_owners_only(db: Database) -> None:
    async with db.begin() as conn:
        user = (await create_user(conn, "dave@example.com"))["id"]
    stored = sr.StoredResponses(db, retention_days=1, max_bytes=10_000)
    rid = sr.new_response_id()
    stored.save(user, rid, "m", CONVERSATION, {"id": rid, "object": "response"})
    row = await stored.get(user, rid)  # at once: the save is awaited
    assert row is not None and row["response"] == f'{{"id":"{rid}","object":"response"}}'
    assert await stored.conversation(user, rid, adding=0) == CONVERSATION
    with pytest.raises(NotFound):
        await stored.conversation("usr_other", "resp_" + "0" * 48, adding=0)
    with pytest.raises(InvalidRequest):
        await stored.conversation(user, rid, adding=10_000)  # too long to continue
    assert await stored.get("", rid) is None and await stored.get(user, "resp_bad!") is None
    assert await stored.delete(user, rid) is True and await stored.get(user, rid) is None
    too_long = [Message("user", "x" * 20_000)]
    stored.save(user, sr.new_response_id(), "m", too_long, {})  # not stored: over the bound
    await stored.stop()


async def test_another_workers_fresh_response_is_waited_for(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that continues at once may reach a worker other than the one still saving its
    response: a young id not found yet is looked for again for a moment; an old one is not."""
    monkeypatch.setattr(sr, "RECENT_S", 1.0)
    async with db.begin() as conn:
        user = (await create_user(conn, "erin@example.com"))["id"]
    saver = sr.StoredResponses(db, retention_days=1, max_bytes=10_000)
    reader = sr.StoredResponses(db, retention_days=1, max_bytes=10_000)
    rid = sr.new_response_id()

    async def save_late() -> None:
        await asyncio.sleep(0.3)
        saver.save(user, rid, "m", CONVERSATION, {"id": rid})

    late = asyncio.create_task(save_late())
    row = await reader.get(user, rid)
    assert row is not None and row["id"] == rid
    await late
    t0 = time.monotonic()
    assert await reader.get(user, sr.new_response_id()) is None  # young: waited for
    assert time.monotonic() - t0 >= 0.9
    t0 = time.monotonic()
    assert await reader.get(user, "resp_" + "0" * 48) is None  # old: at once
    mine = sr.new_response_id()
    saver.unstored(mine)  # made by this worker without storing it: at once too
    assert await saver.get(user, mine) is None
    assert time.monotonic() - t0 < 0.5
    await saver.stop()
    await reader.stop()
