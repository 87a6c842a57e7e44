"""The Files API for batches (OpenAI's file object; the caller's files only; stored owner-only
under the data dir) and bad input: 4xx naming the field, or the line of the file."""

from __future__ import annotations

import stat
import time
from typing import Any

import openai
import orjson
import pytest

from gatewayz.batches import runner
from gatewayz.simulators import Fault
from gatewayz.storage import batches as batches_store
from gatewayz.storage import keys
from tests.e2e.harness import Gateway, add_user, run_db

from .conftest import chat_line, client, jsonl, lines_of, sent, submit, wait_ended


def test_a_file_is_stored_listed_read_and_deleted(gw: Gateway) -> None:
    _, key = add_user(gw, credits_usd=1)
    c = client(gw, key)
    data = jsonl([chat_line("a", "hi"), chat_line("b", "there")])
    f = c.files.create(file=("mine.jsonl", data), purpose="batch")
    assert f.id.startswith("file-") and f.object == "file" and f.bytes == len(data)
    assert (f.filename, f.purpose, f.status) == ("mine.jsonl", "batch", "processed")
    assert f.created_at > 0
    assert c.files.retrieve(f.id) == f
    assert c.files.content(f.id).content == data  # the bytes as uploaded
    path = gw.settings.data_dir / "files" / f"{f.id}.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    g = c.files.create(file=("second.jsonl", data), purpose="batch")
    assert [x.id for x in c.files.list()] == [g.id, f.id]  # newest first
    assert [x.id for x in c.files.list(order="asc", limit=1)] == [f.id, g.id]  # paged
    page = c.files.list(limit=1)
    assert [x.id for x in page.data] == [g.id] and page.has_more
    # Another user sees none of it.
    _, other = add_user(gw, credits_usd=1)
    o = client(gw, other)
    assert o.files.list().data == []
    with pytest.raises(openai.NotFoundError):
        o.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        o.files.content(f.id)
    with pytest.raises(openai.NotFoundError):
        o.files.delete(f.id)
    deleted = c.files.delete(f.id)
    assert (deleted.id, deleted.deleted) == (f.id, True)
    assert not path.exists()
    with pytest.raises(openai.NotFoundError):
        c.files.retrieve(f.id)
    assert [x.id for x in c.files.list()] == [g.id]


def _upload_error(c: openai.OpenAI, data: bytes, purpose: str = "batch") -> Any:
    with pytest.raises(openai.APIStatusError) as caught:
        c.files.create(file=("in.jsonl", data), purpose=purpose)  # type: ignore[arg-type]
    return caught.value


GOOD = orjson.dumps(chat_line("ok", "hi")) + b"\n"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({**chat_line("x", "y"), "custom_id": ""}), "'custom_id'"),
        (orjson.dumps(chat_line("ok", "again")), "custom_id 'ok' is already used by line 1"),
        (orjson.dumps({**chat_line("m", "y"), "method": "GET"}), "'method' must be 'POST'"),
        (orjson.dumps({**chat_line("u", "y"), "url": "/v1/completions"}), "'url' must be"),
        (orjson.dumps({**chat_line("b", "y"), "body": "text"}), "'body' must be a JSON object"),
        (orjson.dumps(chat_line("s", "y", stream=True)), "'body.stream' is not supported"),
    ],
)
def test_a_bad_line_is_a_400_naming_its_line(gw: Gateway, line: bytes, says: str) -> None:
    err = _upload_error(client(gw), GOOD + b"\n" + line + b"\n" + GOOD)
    assert err.status_code == 400
    message = err.body["message"]
    assert message.startswith("Line 3 of the file: ") and says in message, message
    assert err.body["param"] == "file"


def test_upload_refusals(gw: Gateway) -> None:
    c = client(gw)
    err = _upload_error(c, GOOD, purpose="fine-tune")
    assert err.status_code == 400 and err.body["param"] == "purpose"
    assert "'fine-tune'" in err.body["message"]
    err = _upload_error(c, b"\n \n")
    assert err.status_code == 400 and "no request lines" in err.body["message"]
    # Over the size limit (16 KiB on this gateway): 413, nothing kept.
    big = jsonl([chat_line(f"r{i}", "x" * 200) for i in range(100)])
    assert len(big) > gw.settings.batch_max_file_bytes
    files = gw.settings.data_dir / "files"
    before = set(files.iterdir()) if files.exists() else set()
    err = _upload_error(c, big)
    assert err.status_code == 413
    assert (set(files.iterdir()) if files.exists() else set()) == before


def _create_error(c: openai.OpenAI, **fields: Any) -> Any:
    body = {"endpoint": "/v1/chat/completions", "completion_window": "24h", **fields}
    with pytest.raises(openai.APIStatusError) as caught:
        c.batches.create(**body)
    return caught.value


def test_batch_refusals_name_the_field(gw: Gateway) -> None:
    _, key = add_user(gw, credits_usd=1)
    c = client(gw, key)
    f = c.files.create(file=("in.jsonl", GOOD), purpose="batch")
    cases = [
        ({"input_file_id": f.id, "endpoint": "/v1/completions"}, 400, "endpoint"),
        ({"input_file_id": f.id, "completion_window": "48h"}, 400, "completion_window"),
        ({"input_file_id": f.id, "metadata": {"k": 1}}, 400, "metadata"),
        ({"input_file_id": f.id, "metadata": {str(i): "v" for i in range(17)}}, 400, "metadata"),
        ({"input_file_id": ""}, 400, "input_file_id"),
        ({"input_file_id": "file-000000000000000000000000"}, 404, "input_file_id"),
        ({"input_file_id": f.id, "endpoint": "/v1/embeddings"}, 400, "input_file_id"),
    ]
    for fields, status, param in cases:
        err = _create_error(c, **fields)
        assert (err.status_code, err.body["param"]) == (status, param), (fields, err.body)
    assert "Line 1" in _create_error(c, input_file_id=f.id, endpoint="/v1/embeddings").message
    # Another user's file is not there for this caller.
    _, other = add_user(gw, credits_usd=1)
    err = _create_error(client(gw, other), input_file_id=f.id)
    assert (err.status_code, err.body["param"]) == (404, "input_file_id")
    # Reading batches: unknown ids, paging bounds, another user's batch.
    with pytest.raises(openai.NotFoundError):
        c.batches.retrieve("batch_nope")
    with pytest.raises(openai.BadRequestError) as caught:
        c.batches.list(limit=101)
    assert caught.value.body["param"] == "limit"
    batch = c.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    with pytest.raises(openai.NotFoundError):
        client(gw, other).batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        client(gw, other).batches.cancel(batch.id)
    # A batch that ended cannot be cancelled.
    assert wait_ended(c, batch.id).status == "completed"
    with pytest.raises(openai.ConflictError) as conflict:
        c.batches.cancel(batch.id)
    assert conflict.value.body["code"] == "batch_not_cancellable"


def test_the_routes_need_a_key(gw: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(gw, "gw_test_nope").files.list()
    with pytest.raises(openai.AuthenticationError):
        client(gw, "gw_test_nope").batches.list()


def test_a_batch_whose_key_is_revoked_fails_and_runs_nothing_more(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "PRINCIPAL_TTL_S", 0.0)  # the key is read again every line
    user_id, key = add_user(gw, credits_usd=10)
    c = client(gw, key)
    for _ in range(gw.settings.batch_concurrency):
        gw.upstream.fault(Fault(delay_s=0.5))
    batch = submit(c, [chat_line(f"k{i}", f"line {i}") for i in range(30)])
    deadline = time.monotonic() + 10
    while not sent(gw.upstream) and time.monotonic() < deadline:
        time.sleep(0.01)

    async def revoke(conn: Any) -> None:
        (row,) = await keys.list_user_keys(conn, user_id)
        await keys.revoke_api_key(conn, row["id"])

    run_db(gw, revoke)
    done = None
    deadline = time.monotonic() + 30
    while done is None or done["status"] not in ("failed", "completed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        done = _batch_row(gw, batch.id)
    assert done["status"] == "failed" and done["failed_at"] is not None
    assert done["errors"]["data"][0]["code"] == "invalid_api_key"
    ran = sent(gw.upstream)
    assert ran < 30
    statuses = [line["status"] for line in lines_of(gw, batch.id)]
    assert statuses.count("succeeded") == ran and statuses.count("unrun") == 30 - ran


def _batch_row(gw: Gateway, batch_id: str) -> dict[str, Any]:
    async def work(conn: Any) -> dict[str, Any]:
        row = await batches_store.get_batch(conn, None, batch_id)
        assert row is not None
        return row

    return run_db(gw, work)
