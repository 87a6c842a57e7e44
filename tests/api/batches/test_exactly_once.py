"""A batch's lines run, and are charged, exactly once across restarts and workers, on
PostgreSQL: a gateway stopped with lines in flight gives them back uncharged and the next one
on the same database runs them; two workers share a batch without running a line twice; the
lines of a worker that died are taken again once their claim lapses — run again only when no
charge of theirs was written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewayz.billing import ledger
from gatewayz.simulators import Fault, Simulator
from gatewayz.storage import batches as store
from gatewayz.storage import keys
from gatewayz.storage.tables import utcnow
from tests.e2e.harness import Gateway, add_user, run_db, simulators

from .conftest import (
    balance,
    batch_settings,
    charges,
    chat_line,
    client,
    file_lines,
    line_cost,
    lines_of,
    sent,
    serve,
    start,
    submit,
    wait_charges,
    wait_ended,
)


@pytest.fixture(params=[False, True], ids=["hold rows", "credit leases"])
def pg_settings(
    request: pytest.FixtureRequest, postgres_url: str, upstream: Simulator, tmp_path: Path
) -> Any:
    return batch_settings(
        tmp_path,
        upstream,
        database_url=postgres_url,
        batch_concurrency=2,
        billing_leases=request.param,
    )


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _check_once(gw: Gateway, batch_id: str, n: int, out: list[dict[str, Any]]) -> None:
    """Every line in the output once, charged once at its exact cost."""
    assert sorted(o["custom_id"] for o in out) == sorted(f"r{i}" for i in range(n))
    costs = wait_charges(gw, batch_id, n)
    assert len(costs) == n
    for o in out:
        assert costs[o["response"]["request_id"]] == line_cost(o["response"]["body"]["usage"])


def test_a_restart_midway_runs_every_line_once_and_charges_it_once(
    pg_settings: Any, upstream: Simulator
) -> None:
    first = start(pg_settings, upstream)
    user_id, key = add_user(first, credits_usd=10)
    before = balance(first, user_id)
    for _ in range(2):  # the first two lines hang at the provider
        upstream.fault(Fault(delay_s=30))
    batch = submit(client(first, key), [chat_line(f"r{i}", f"line {i}") for i in range(6)])
    _wait(lambda: sent(upstream) == 2)
    first.stop()  # the worker stops with two lines in flight
    assert not first.thread.is_alive()
    lines = lines_of(first, batch.id)
    assert [line["status"] for line in lines] == ["pending"] * 6  # given back, not lost
    assert charges(first, batch.id) == {}  # their holds released: nothing charged
    assert balance(first, user_id) == before
    upstream.clear()
    second = serve(pg_settings, first, upstream)
    try:
        c = client(second, key)
        done = wait_ended(c, batch.id)
        assert done.status == "completed"
        assert done.request_counts is not None
        assert done.request_counts.model_dump() == {"total": 6, "completed": 6, "failed": 0}
        out = file_lines(c, done.output_file_id)
        _check_once(second, batch.id, 6, out)
        assert sent(upstream) == 6  # after the restart: each line once
        assert [line["attempts"] for line in lines_of(second, batch.id)] == [2, 2, 1, 1, 1, 1]
        assert before - balance(second, user_id) == sum(charges(second, batch.id).values())
    finally:
        second.stop()


@pytest.fixture
def pair() -> Iterator[tuple[Simulator, ...]]:
    with simulators(Simulator) as sims:
        yield sims


def test_two_workers_share_a_batch_without_running_a_line_twice(
    postgres_url: str, pair: tuple[Simulator, ...], tmp_path: Path
) -> None:
    # Each worker reaches its own simulator: which worker ran a line is visible there.
    options = {"database_url": postgres_url, "batch_concurrency": 3}
    one = start(batch_settings(tmp_path, pair[0], **options), pair[0])
    # Workers of one deployment share its secrets (a stranger's are refused: docs/replicas.md).
    same = {"fernet_key": one.settings.fernet_key, "hmac_key": one.settings.hmac_key}
    other = serve(batch_settings(tmp_path, pair[1], **options, **same), one, pair[1])
    try:
        user_id, key = add_user(one, credits_usd=10)
        before = balance(one, user_id)
        for sim in pair:
            for _ in range(30):
                sim.fault(Fault(delay_s=0.05))
        n = 30
        batch = submit(client(one, key), [chat_line(f"r{i}", f"line {i}") for i in range(n)])
        done = wait_ended(client(other, key), batch.id)
        assert done.status == "completed"
        out = file_lines(client(one, key), done.output_file_id)
        _check_once(one, batch.id, n, out)
        ran = [sent(sim) for sim in pair]
        assert sum(ran) == n and all(ran), ran  # both took part, no line sent twice
        assert {line["attempts"] for line in lines_of(one, batch.id)} == {1}
        assert before - balance(one, user_id) == sum(charges(one, batch.id).values())
    finally:
        other.stop()
        one.stop()


def test_the_lines_of_a_dead_worker_are_taken_again_never_charged_twice(
    pg_settings: Any, upstream: Simulator
) -> None:
    gw = start(pg_settings.model_copy(update={"batch_concurrency": 4}), upstream)
    try:
        user_id, key = add_user(gw, credits_usd=10)
        c = client(gw, key)
        f = c.files.create(
            file=("in.jsonl", b"\n".join(_lines(3))),  # type: ignore[arg-type]
            purpose="batch",
        )
        batch_id = "batch_" + "d" * 24
        _dead_worker_batch(gw, user_id, batch_id, f.id)
        done = wait_ended(c, batch_id)
        assert done.request_counts is not None
        assert done.request_counts.model_dump() == {"total": 3, "completed": 2, "failed": 1}
        (lost,) = file_lines(c, done.error_file_id)
        assert lost["custom_id"] == "r0" and lost["response"] is None
        assert lost["error"]["code"] == "batch_request_interrupted"
        out = file_lines(c, done.output_file_id)
        assert [o["custom_id"] for o in out] == ["r1", "r2"]
        assert sent(upstream) == 2  # the charged line was not sent again
        costs = charges(gw, batch_id)
        assert costs[f"{batch_id}-1-1"] == 777  # the dead worker's charge, once
        assert len(costs) == 3
    finally:
        gw.stop()


def _lines(n: int) -> list[bytes]:
    return [orjson.dumps(chat_line(f"r{i}", f"line {i}")) for i in range(n)]


def _dead_worker_batch(gw: Gateway, user_id: str, batch_id: str, file_id: str) -> None:
    """A batch whose three lines a dead worker was running (claims lapsed); it had charged line
    1 (a hold settled through the ledger, as the pipeline does) before it died."""

    async def work(conn: Any) -> None:
        (key,) = await keys.list_user_keys(conn, user_id)
        now = utcnow()
        row = {
            "id": batch_id,
            "user_id": user_id,
            "api_key_id": key["id"],
            "endpoint": "/v1/chat/completions",
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "in_progress",
            "meta": None,
            "total": 3,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + timedelta(hours=24),
        }
        lines = [
            (i + 1, f"r{i}", orjson.dumps(chat_line(f"r{i}", f"line {i}")["body"]).decode())
            for i in range(3)
        ]
        await store.create_batch(conn, row, lines)
        gone = now - timedelta(seconds=1)
        await conn.exec_driver_sql(
            "UPDATE batch_lines SET status = 'running', attempts = 1, claimed_by = 'bw_dead', "
            f"claimed_until = '{gone.isoformat()}' WHERE batch_id = '{batch_id}'"
        )
        hold_id = f"{batch_id}-1-1.abcdef"
        assert await ledger.hold(conn, user_id, hold_id, 1000)
        await ledger.settle(conn, user_id, hold_id, 777)

    run_db(gw, work)
