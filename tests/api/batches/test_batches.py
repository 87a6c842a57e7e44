"""The Batch API end to end with the official SDK: lines run in the background through the chat
(and embeddings) steps — billed per line, exactly, less the batch discount; a failing provider
gives an error line and no charge; cancelling stops what has not run; `batch.completed` reaches
a webhook endpoint once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import httpx2
import pytest

from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import Gateway, add_user, request_log_rows
from tests.webhooks.receiver import Receiver, receiver

from .conftest import (
    BROKEN,
    EMBED,
    EMBED_PRICE,
    MODEL,
    balance,
    batch_settings,
    chat_line,
    client,
    file_lines,
    line_cost,
    lines_of,
    sent,
    start,
    submit,
    wait_charges,
    wait_ended,
)

TEXTS = ["Hello there", "What is two plus two?", "Name a colour.", "Tell me a short story."]
DISCOUNT = Decimal("0.35")


def test_a_batch_of_chat_requests_completes_each_line_charged_exactly(gw: Gateway) -> None:
    user_id, key = add_user(gw, credits_usd=10)
    c = client(gw, key)
    before = balance(gw, user_id)
    lines = [chat_line(f"req-{i}", text) for i, text in enumerate(TEXTS)]
    batch = submit(c, lines, metadata={"job": "nightly"})
    assert batch.status == "validating" and batch.endpoint == "/v1/chat/completions"
    assert batch.request_counts is not None and batch.request_counts.total == 4
    assert batch.metadata == {"job": "nightly"}
    done = wait_ended(c, batch.id)
    assert done.status == "completed" and done.error_file_id is None
    assert done.request_counts is not None
    assert done.request_counts.model_dump() == {"total": 4, "completed": 4, "failed": 0}
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    out = file_lines(c, done.output_file_id)
    assert [o["custom_id"] for o in out] == [f"req-{i}" for i in range(4)]  # in line order
    costs = wait_charges(gw, batch.id, 4)
    for o in out:
        assert o["error"] is None and o["id"].startswith("batch_req_")
        response = o["response"]
        assert response["status_code"] == 200
        body = response["body"]
        assert body["object"] == "chat.completion" and body["model"] == MODEL
        assert body["choices"][0]["message"]["content"]
        # Charged once, exactly what its usage costs at the price, and reported as usage.cost.
        cost = line_cost(body["usage"])
        assert costs[response["request_id"]] == cost
        assert Decimal(str(body["usage"]["cost"])) * 10**9 == cost
    assert len(costs) == 4
    assert before - balance(gw, user_id) == sum(costs.values())
    usage = done.usage
    assert usage is not None
    assert usage.input_tokens == sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in out)
    output = c.files.retrieve(done.output_file_id or "")
    assert output.purpose == "batch_output" and output.filename == f"{batch.id}_output.jsonl"
    assert sent(gw.upstream) == 4  # each line sent once
    # Each line leaves its request-log row, as an HTTP request does.
    (row,) = request_log_rows(gw, out[0]["response"]["request_id"])
    assert (row["endpoint"], row["status_code"], row["user_id"]) == (
        "/v1/chat/completions",
        200,
        user_id,
    )
    assert row["cost_nanos"] == costs[out[0]["response"]["request_id"]]


@pytest.fixture(scope="module")
def discounted(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = batch_settings(
        tmp_path_factory.mktemp("discount"), upstream, batch_discount=DISCOUNT
    )
    gateway = start(settings, upstream)
    yield gateway
    gateway.stop()


def test_the_batch_discount_is_taken_off_each_line_to_the_nano_dollar(
    discounted: Gateway,
) -> None:
    _, key = add_user(discounted, credits_usd=10)
    c = client(discounted, key)
    # 0.15 and 0.6 USD per 1M tokens less 35 %: 97.5 and 390 nano-dollars a token, so a line's
    # exact cost has half a nano-dollar whenever its prompt has an odd number of tokens.
    texts = ["a" * 4, "b" * 8, "c" * 12, "d" * 20]  # 1, 2, 3 and 5 prompt tokens
    batch = submit(c, [chat_line(f"d{i}", t) for i, t in enumerate(texts)])
    done = wait_ended(c, batch.id)
    assert done.status == "completed"
    costs = wait_charges(discounted, batch.id, 4)
    out = file_lines(c, done.output_file_id)
    odd = 0
    for o in out:
        usage = o["response"]["body"]["usage"]
        exact = (usage["prompt_tokens"] * Decimal("97.5")) + usage["completion_tokens"] * 390
        odd += exact != exact.to_integral_value()
        assert costs[o["response"]["request_id"]] == line_cost(usage, DISCOUNT)
        assert costs[o["response"]["request_id"]] == int(exact.quantize(1, ROUND_HALF_UP))
    assert odd, "no line exercised the rounding"
    # The same request over HTTP pays the full price: the discount is the batch's alone.
    r = httpx2.post(
        f"{discounted.base_url}/chat/completions",
        json=chat_line("x", "a" * 4)["body"],
        headers={"authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200
    usage = r.json()["usage"]
    full = line_cost(usage)
    assert Decimal(r.headers["x-gatewayz-cost"]) * 10**9 == full
    assert full > line_cost(usage, DISCOUNT)


def test_a_line_whose_provider_fails_is_an_error_line_and_not_charged(gw: Gateway) -> None:
    user_id, key = add_user(gw, credits_usd=10)
    c = client(gw, key)
    before = balance(gw, user_id)
    lines = [chat_line("ok-1", "one"), chat_line("down", "two", BROKEN), chat_line("ok-2", "3")]
    done = wait_ended(c, submit(c, lines).id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert done.request_counts.model_dump() == {"total": 3, "completed": 2, "failed": 1}
    assert [o["custom_id"] for o in file_lines(c, done.output_file_id)] == ["ok-1", "ok-2"]
    (failed,) = file_lines(c, done.error_file_id)
    assert failed["custom_id"] == "down" and failed["error"] is None
    assert failed["response"]["status_code"] == 502
    assert failed["response"]["body"]["error"]["message"]
    costs = wait_charges(gw, done.id, 2)
    assert len(costs) == 2 and not any(r == failed["response"]["request_id"] for r in costs)
    assert before - balance(gw, user_id) == sum(costs.values())


def test_a_line_the_provider_refuses_is_an_error_line_with_its_status(gw: Gateway) -> None:
    _, key = add_user(gw, credits_usd=10)
    c = client(gw, key)
    lines = [chat_line("bad", "hi", temperature=7), chat_line("good", "hi")]
    done = wait_ended(c, submit(c, lines).id)
    (bad,) = file_lines(c, done.error_file_id)
    assert bad["custom_id"] == "bad" and bad["response"]["status_code"] == 400
    assert bad["response"]["body"]["error"]["param"] == "temperature"
    assert [o["custom_id"] for o in file_lines(c, done.output_file_id)] == ["good"]


def test_cancel_stops_the_lines_that_have_not_run(gw: Gateway) -> None:
    user_id, key = add_user(gw, credits_usd=10)
    c = client(gw, key)
    before = balance(gw, user_id)
    for _ in range(8):
        gw.upstream.fault(Fault(delay_s=0.6))
    batch = submit(c, [chat_line(f"c{i}", f"line {i}") for i in range(20)])
    deadline = time.monotonic() + 10
    while not sent(gw.upstream):  # the first lines are on their way to the provider
        assert time.monotonic() < deadline
        time.sleep(0.005)
    cancelling = c.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    done = wait_ended(c, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    ran = sent(gw.upstream)
    assert 1 <= ran <= gw.settings.batch_concurrency  # only those already running
    assert done.request_counts is not None
    assert done.request_counts.model_dump() == {"total": 20, "completed": ran, "failed": 0}
    out, errors = file_lines(c, done.output_file_id), file_lines(c, done.error_file_id)
    assert len(out) == ran and len(errors) == 20 - ran
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert all(e["response"] is None for e in errors)
    costs = wait_charges(gw, batch.id, ran)
    assert len(costs) == ran and before - balance(gw, user_id) == sum(costs.values())
    assert {line["status"] for line in lines_of(gw, batch.id)} == {"succeeded", "unrun"}
    assert c.batches.cancel(batch.id).status == "cancelled"  # again: as it is


def test_an_embeddings_batch_is_billed_per_input_token(gw: Gateway) -> None:
    user_id, key = add_user(gw, credits_usd=10)
    c = client(gw, key)
    before = balance(gw, user_id)
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": EMBED, "input": text},
        }
        for i, text in enumerate(["first text", "a second, longer text to embed"])
    ]
    done = wait_ended(c, submit(c, lines).id)
    assert done.status == "completed" and done.endpoint == "/v1/embeddings"
    out = file_lines(c, done.output_file_id)
    costs = wait_charges(gw, done.id, 2)
    for o in out:
        body = o["response"]["body"]
        assert body["object"] == "list" and body["data"][0]["embedding"]
        tokens = body["usage"]["prompt_tokens"]
        expected = (tokens * EMBED_PRICE * 1000).quantize(1, ROUND_HALF_UP)
        assert costs[o["response"]["request_id"]] == int(expected)
    assert before - balance(gw, user_id) == sum(costs.values())


def test_batches_are_listed_newest_first_in_pages(gw: Gateway) -> None:
    _, key = add_user(gw, credits_usd=10)
    c = client(gw, key)
    ids = [submit(c, [chat_line("x", f"page {i}")]).id for i in range(3)]
    page = c.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    rest = c.batches.list(limit=2, after=page.data[-1].id)
    assert [b.id for b in rest.data] == ids[:1] and not rest.has_more
    assert [b.id for b in c.batches.list(limit=1)] == ids[::-1]  # the SDK follows the pages
    _, other = add_user(gw, credits_usd=1)
    assert client(gw, other).batches.list().data == []  # only the caller's
    for batch_id in ids:
        wait_ended(c, batch_id)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def test_batch_completed_is_delivered_once_to_a_webhook_endpoint(
    gw: Gateway, hook: Receiver
) -> None:
    _, key = add_user(gw, credits_usd=10)
    r = httpx2.post(
        f"{gw.root}/user/webhooks",
        json={"url": hook.url, "events": ["batch.completed"]},
        headers={"authorization": f"Bearer {key}"},
    )
    assert r.status_code == 201, r.text
    c = client(gw, key)
    batch = submit(c, [chat_line("w1", "one"), chat_line("w2", "two", BROKEN)])
    done = wait_ended(c, batch.id)
    (got,) = hook.wait_for("batch.completed")
    event = got.event
    assert event["type"] == "batch.completed"
    assert event["data"] == {
        "batch_id": batch.id,
        "status": "completed",
        "endpoint": "/v1/chat/completions",
        "request_counts": {"total": 2, "completed": 1, "failed": 1},
        "output_file_id": done.output_file_id,
        "error_file_id": done.error_file_id,
        "metadata": {},
    }
    cancelled = submit(c, [chat_line("w3", "three")])
    c.batches.cancel(cancelled.id)
    wait_ended(c, cancelled.id)
    second = hook.wait_for("batch.completed", 2)[1].event["data"]
    assert second["batch_id"] == cancelled.id and second["status"] in ("cancelled", "completed")
    time.sleep(0.5)  # several dispatcher rounds later: still one event per batch
    assert len(hook.of_type("batch.completed")) == 2
