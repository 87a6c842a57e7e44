"""CM-8.1.1 / CM-8.1.2 end to end: a real gateway (cache in memory, and in real Redis) in front
of the provider simulator, driven over HTTP and with the official SDKs."""

from __future__ import annotations

import secrets
import time
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import WEATHER_TOOLS, Gateway, add_user, request_log_rows

from .helpers import chat_body, chat_calls, money_rows, post, sse_text, text_of, unique


def test_cm_8_1_1_exact_match_cache_hit(gateway: Gateway, upstream: Simulator) -> None:
    store = gateway.services.response_cache.store
    assert store is not None and store.name == ("redis" if gateway.settings.redis_url else "memory")
    body = chat_body(unique())
    first = post(gateway, body)
    assert first.status_code == 200, first.text
    assert first.headers["x-gatewayz-cache"] == "miss"
    rid = "cache-hit-" + secrets.token_hex(4)
    second = post(gateway, body, request_id=rid)
    assert second.status_code == 200, second.text
    assert second.headers["x-gatewayz-cache"] == "hit"
    assert len(chat_calls(upstream)) == 1  # no provider call for the hit
    assert text_of(second) == text_of(first)
    assert second.headers["x-gatewayz-provider"] == first.headers["x-gatewayz-provider"]
    assert second.headers["x-gatewayz-attempts"] == "0"
    assert second.headers["x-gatewayz-cost"] == "0"  # billed at zero by default
    usage, fresh = second.json()["usage"], first.json()["usage"]
    assert usage["cost"] == 0
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        fresh["prompt_tokens"],
        fresh["completion_tokens"],
    )
    assert second.json()["id"] != first.json()["id"]  # a response of its own
    (row,) = request_log_rows(gateway, rid)
    assert row["cache"] == "hit"
    assert row["provider"] == first.headers["x-gatewayz-provider"]
    assert row["cost_nanos"] == 0 and row["status_code"] == 200


def test_cm_8_1_1_a_hit_holds_no_money(gateway: Gateway, upstream: Simulator) -> None:
    user_id, key = add_user(gateway, credits_usd=5)
    body = chat_body(unique())
    assert post(gateway, body, key=key).headers["x-gatewayz-cache"] == "miss"
    before = money_rows(gateway, user_id)
    assert before[0] == 1 and before[1] >= 2  # the miss was held and charged (and granted)
    for _ in range(3):
        assert post(gateway, body, key=key).headers["x-gatewayz-cache"] == "hit"
    assert money_rows(gateway, user_id) == before  # no hold, no ledger row


def test_cm_8_1_1_hit_replays_as_a_stream(gateway: Gateway, upstream: Simulator) -> None:
    content = unique("Tell me a story")
    first = post(gateway, chat_body(content))
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        **chat_body(content), stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["x-gatewayz-cache"] == "hit"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == text_of(first)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert len(chat_calls(upstream)) == 1


def test_cm_8_1_1_a_completed_stream_is_stored_and_serves_later_requests(
    gateway: Gateway, upstream: Simulator
) -> None:
    body = chat_body(unique(), stream=True)
    streamed = post(gateway, body)
    assert streamed.headers["x-gatewayz-cache"] == "miss"
    replay = post(gateway, body)
    assert replay.headers["x-gatewayz-cache"] == "hit"
    assert sse_text(replay) == sse_text(streamed) != ""
    assert replay.text.rstrip().endswith("data: [DONE]")
    plain = post(gateway, chat_body(body["messages"][0]["content"]))
    assert plain.headers["x-gatewayz-cache"] == "hit"
    assert text_of(plain) == sse_text(streamed)
    assert len(chat_calls(upstream)) == 1


def test_cm_8_1_1_one_entry_serves_both_dialects(gateway: Gateway, upstream: Simulator) -> None:
    content = unique()
    first = post(gateway, chat_body(content))
    assert first.headers["x-gatewayz-cache"] == "miss"
    client = anthropic.Anthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)
    msg = {"role": "user", "content": content}
    zero = {"temperature": 0}  # (this SDK version has no `temperature` argument)
    raw = client.messages.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=64, messages=[msg], extra_body=zero
    )
    assert raw.headers["x-gatewayz-cache"] == "hit"
    assert raw.parse().content[0].text == text_of(first)  # type: ignore[union-attr]
    with client.messages.stream(
        model="gpt-4o-mini", max_tokens=64, messages=[msg], extra_body=zero
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text_of(first)
    assert final.stop_reason == "end_turn"
    assert len(chat_calls(upstream)) == 1


def test_cm_8_1_1_tool_calls_are_cached_and_replayed(gateway: Gateway, upstream: Simulator) -> None:
    body = chat_body(unique("Weather in Paris?"), tools=WEATHER_TOOLS, tool_choice="required")
    first = post(gateway, body)
    calls = first.json()["choices"][0]["message"]["tool_calls"]
    assert calls and first.json()["choices"][0]["finish_reason"] == "tool_calls"
    hit = post(gateway, body)
    assert hit.headers["x-gatewayz-cache"] == "hit"
    assert hit.json()["choices"][0]["message"]["tool_calls"] == calls
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    stream = client.chat.completions.create(**body, stream=True)
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            names[tc.index] = names.get(tc.index, "") + (tc.function.name or "")
            args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
    assert [names[i] for i in sorted(names)] == [c["function"]["name"] for c in calls]
    assert [args[i] for i in sorted(args)] == [c["function"]["arguments"] for c in calls]
    assert len(chat_calls(upstream)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 65},
        {"seed": 1},
        {"top_p": 0.5},
        {"stop": ["zzz"]},
        {"model": "openai/gpt-4o"},
        {"messages": [{"role": "user", "content": "something else entirely"}]},
    ],
)
def test_cm_8_1_2_exact_match_cache_miss(
    gateway: Gateway, upstream: Simulator, change: dict[str, Any]
) -> None:
    body = chat_body(unique())
    assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"
    other = {**body, **change}
    if "messages" in change:
        other["messages"] = [{"role": "user", "content": unique("something else")}]
    r = post(gateway, other)
    assert r.status_code == 200, r.text
    assert r.headers["x-gatewayz-cache"] == "miss"
    assert len(chat_calls(upstream)) == 2


def test_cm_8_1_2_each_account_has_its_own_entries(gateway: Gateway, upstream: Simulator) -> None:
    body = chat_body(unique())
    assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"
    _, other_key = add_user(gateway, credits_usd=5)
    assert post(gateway, body, key=other_key).headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, body, key=other_key).headers["x-gatewayz-cache"] == "hit"


def test_cm_8_1_1_nondeterministic_requests_are_cached_only_on_opt_in(
    gateway: Gateway, upstream: Simulator
) -> None:
    body = chat_body(unique())
    del body["temperature"]  # the provider's default temperature: not deterministic
    for _ in range(2):
        assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"
    hot = {**chat_body(unique()), "temperature": 0.7}
    assert post(gateway, hot).headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, hot).headers["x-gatewayz-cache"] == "miss"
    seeded = {**hot, "seed": 42}  # a seed makes it deterministic
    assert post(gateway, seeded).headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, seeded).headers["x-gatewayz-cache"] == "hit"
    opted = {**hot, "cache": {"nondeterministic": True}}
    assert post(gateway, opted).headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, opted).headers["x-gatewayz-cache"] == "hit"
    assert len(chat_calls(upstream)) == 6


def test_cm_8_1_1_the_cache_field_is_ours_never_forwarded(
    gateway: Gateway, upstream: Simulator
) -> None:
    r = post(gateway, chat_body(unique(), cache={"ttl": 60}))
    assert r.status_code == 200, r.text
    (call,) = chat_calls(upstream)
    assert "cache" not in call.json and "provider" not in call.json


def test_cm_8_1_1_no_store_and_no_cache(gateway: Gateway, upstream: Simulator) -> None:
    body = chat_body(unique())
    r = post(gateway, {**body, "cache": {"no_store": True}})
    assert r.headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"  # nothing was stored
    assert post(gateway, body).headers["x-gatewayz-cache"] == "hit"
    fresh = post(gateway, {**body, "cache": {"no_cache": True}})
    assert fresh.headers["x-gatewayz-cache"] == "miss"  # asked for a fresh answer
    assert len(chat_calls(upstream)) == 3


def test_cm_8_1_5_a_request_sets_its_entry_ttl(gateway: Gateway, upstream: Simulator) -> None:
    body = chat_body(unique(), cache={"ttl": 1})
    assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, body).headers["x-gatewayz-cache"] == "hit"
    time.sleep(1.2)
    assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"


@pytest.mark.parametrize(
    "value",
    [
        {"ttl": 0},
        {"ttl": 86_401},
        {"ttl": 1.5},
        {"ttl": True},
        {"no_store": "yes"},
        {"semantic": 1},
        {"bogus": True},
        "on",
        [],
    ],
)
def test_cm_8_1_1_a_bad_cache_field_is_a_400_in_the_callers_dialect(
    gateway: Gateway, upstream: Simulator, value: Any
) -> None:
    r = post(gateway, chat_body(unique(), cache=value))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "cache" and "Invalid 'cache'" in err["message"]
    body = {**chat_body(unique()), "cache": value}
    r = post(gateway, body, path="/messages")
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert "Invalid 'cache'" in r.json()["error"]["message"]
    assert chat_calls(upstream) == []


def test_cm_8_1_1_errors_and_interrupted_streams_are_not_stored(
    gateway: Gateway, upstream: Simulator
) -> None:
    body = chat_body(unique())
    upstream.fault(Fault(status=500))
    assert post(gateway, body).status_code >= 500
    ok = post(gateway, body)
    assert ok.status_code == 200 and ok.headers["x-gatewayz-cache"] == "miss"
    stream = chat_body(unique(), stream=True)
    upstream.fault(Fault(drop_after_chunks=2))
    broken = post(gateway, stream)
    assert "error" in broken.text  # the stream ended with an error event
    after = post(gateway, stream)
    assert after.headers["x-gatewayz-cache"] == "miss"
    assert "[DONE]" in after.text
    assert post(gateway, stream).headers["x-gatewayz-cache"] == "hit"


def test_cm_8_1_1_key_cache_policy_defaults_and_request_override(
    gateway: Gateway, upstream: Simulator
) -> None:
    auth = {"Authorization": f"Bearer {gateway.api_key}"}
    url = f"{gateway.root}/user/api-keys"
    r = httpx2.post(
        url,
        json={"name": "cached", "cache_policy": {"nondeterministic": True, "ttl": 600}},
        headers=auth,
        trust_env=False,
    )
    assert r.status_code == 201, r.text
    assert r.json()["cache_policy"] == {"nondeterministic": True, "ttl": 600}
    key, key_id = r.json()["api_key"], r.json()["id"]
    hot = {**chat_body(unique()), "temperature": 0.9}
    assert post(gateway, hot, key=key).headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, hot, key=key).headers["x-gatewayz-cache"] == "hit"
    override = {**hot, "cache": {"no_cache": True}}  # field by field over the key's defaults
    assert post(gateway, override, key=key).headers["x-gatewayz-cache"] == "miss"
    r = httpx2.patch(
        f"{url}/{key_id}", json={"cache_policy": {"no_cache": True}}, headers=auth, trust_env=False
    )
    assert r.status_code == 200, r.text
    assert r.json()["cache_policy"] == {"no_cache": True}
    seeded = chat_body(unique(), seed=3)
    assert post(gateway, seeded, key=key).headers["x-gatewayz-cache"] == "miss"
    assert post(gateway, seeded, key=key).headers["x-gatewayz-cache"] == "miss"
    r = httpx2.patch(f"{url}/{key_id}", json={"cache_policy": None}, headers=auth, trust_env=False)
    assert r.json()["cache_policy"] is None
    assert post(gateway, seeded, key=key).headers["x-gatewayz-cache"] == "hit"


@pytest.mark.parametrize("policy", [{"ttl": 0}, {"semantic": "yes"}, {"always": True}])
def test_cm_8_1_1_a_bad_key_cache_policy_is_a_400_naming_the_field(
    gateway: Gateway, policy: dict[str, Any]
) -> None:
    r = httpx2.post(
        f"{gateway.root}/user/api-keys",
        json={"name": "bad", "cache_policy": policy},
        headers={"Authorization": f"Bearer {gateway.api_key}"},
        trust_env=False,
    )
    assert r.status_code == 400, r.text
    assert "cache_policy" in r.text
