"""The operator commands that act on the state every worker shares (Redis): `gatewayz breakers
list|reset`, the failover chain's breakers in `gatewayz models resolve`, and the auth-cache
epoch a role change or a revocation moves (security/invalidation.py), as the API's do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from gatewayz.reliability import CircuitBreakers
from gatewayz.security.invalidation import EPOCH_KEY
from gatewayz.state import StateBackend, build_state
from tests.cli.conftest import Invoke, audit_events, ok_json, refused

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def shared(op_env: pytest.MonkeyPatch, on_db: str, redis_url: str, redis_prefix: str) -> str:
    op_env.setenv("GATEWAYZ_REDIS_URL", redis_url)
    op_env.setenv("GATEWAYZ_REDIS_KEY_PREFIX", redis_prefix)
    return redis_prefix


def _on_state(prefix: str, work: Callable[[StateBackend], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        state = build_state("redis://127.0.0.1:6379/0", prefix)
        try:
            return await work(state)
        finally:
            await state.close()

    return asyncio.run(go())


def _open(prefix: str, provider: str, model: str | None = None) -> None:
    """Open a breaker as a gateway's failing requests would (5 failures: the default)."""

    async def fail(state: StateBackend) -> None:
        breakers = CircuitBreakers(state)
        for _ in range(5):
            await breakers.record_failure(provider, model)

    _on_state(prefix, fail)


def test_breakers_list_and_reset(gz: Invoke, shared: str) -> None:
    assert ok_json(gz("breakers", "list", "--json")) == []
    _open(shared, "openai", "gpt-4o")
    _open(shared, "groq")
    listed = ok_json(gz("breakers", "list", "--json"))
    assert [(e["provider"], e["model"], e["state"], e["failures"]) for e in listed] == [
        ("groq", None, "open", 5),
        ("openai", "gpt-4o", "open", 5),
    ]
    assert all(e["retry_at"] for e in listed)
    human = gz("breakers", "list")
    assert human.exit_code == 0 and "gpt-4o" in human.stdout and "open" in human.stdout

    reset = ok_json(gz("breakers", "reset", "openai", "--model", "gpt-4o", "--json"))
    assert (reset["state"], reset["previous_state"], reset["failures"]) == ("closed", "open", 0)

    async def state_of(state: StateBackend) -> tuple[str, str]:
        b = CircuitBreakers(state)
        return (await b.state_of("openai", "gpt-4o")).value, (await b.state_of("groq")).value

    assert _on_state(shared, state_of) == ("closed", "open")  # what every worker reads
    [event] = audit_events("circuit_breaker_reset")
    assert event["detail"]["provider"] == "openai" and event["detail"]["model"] == "gpt-4o"
    assert event["detail"]["previous_state"] == "open" and event["detail"]["via"] == "cli"
    text = gz("breakers", "reset", "groq")
    assert text.exit_code == 0 and "open (5 failures) → closed" in text.stdout
    assert _on_state(shared, state_of) == ("closed", "closed")

    refused(gz("breakers", "reset", "nope"), "unknown provider 'nope'")
    refused(gz("breakers", "reset", "openai", "--model", "m" * 300), "--model must be")
    refused(gz("breakers", "reset", "openai@proxy"), "has no proxy")


def test_breakers_need_the_shared_state(gz: Invoke, on_db: str, op_env: pytest.MonkeyPatch) -> None:
    refused(gz("breakers", "list"), "GATEWAYZ_REDIS_URL is not set")
    refused(gz("breakers", "reset", "openai"), "GATEWAYZ_REDIS_URL is not set")
    op_env.setenv("GATEWAYZ_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    refused(gz("breakers", "list"), "unreachable")
    refused(gz("breakers", "reset", "openai"), "unreachable")


def test_the_chain_shows_open_breakers(gz: Invoke, shared: str, op_env: pytest.MonkeyPatch) -> None:
    op_env.setenv("OPENAI_API_KEY", "k-openai")
    op_env.setenv("OPENROUTER_API_KEY", "k-openrouter")
    _open(shared, "openai", "gpt-4o")
    d = ok_json(gz("models", "resolve", "gpt-4o", "--json"))
    first, second = d["chain"]["tried"]
    assert (first["key"], first["breaker"]["state"], first["breaker"]["model"]) == (
        "openai",
        "open",
        "gpt-4o",
    )
    assert (second["key"], second["breaker"]["state"]) == ("openrouter", "closed")
    lines = gz("models", "resolve", "gpt-4o").stdout.splitlines()
    assert any("breaker open for gpt-4o: skipped until" in line for line in lines)
    assert lines[-1].startswith("result     openrouter with native id 'openai/gpt-4o'")


def test_changes_move_the_auth_epoch_every_worker_polls(gz: Invoke, shared: str) -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")

    def epoch() -> int:
        return int(client.get(f"{shared}{EPOCH_KEY}") or 0)

    made = ok_json(gz("users", "create", "--email", "e@example.com", "--json"))
    before = epoch()
    changed = gz("users", "set-role", "e@example.com", "dev")
    assert changed.exit_code == 0 and "GATEWAYZ_REDIS_URL is not set" not in changed.stderr
    assert epoch() == before + 1
    assert gz("users", "set-plan", "e@example.com", "team").exit_code == 0
    assert epoch() == before + 2
    key_id = ok_json(gz("keys", "list", "--email", "e@example.com", "--json"))["data"][0]["id"]
    assert gz("keys", "rotate", key_id).exit_code == 0
    assert epoch() == before + 3
    assert gz("keys", "revoke", key_id).exit_code == 0
    assert epoch() == before + 4
    assert made["user_id"]
    client.close()


def test_without_redis_a_change_says_when_it_applies(gz: Invoke, on_db: str) -> None:
    ok_json(gz("users", "create", "--email", "n@example.com", "--json"))
    result = gz("users", "set-role", "n@example.com", "dev")
    assert result.exit_code == 0
    assert "GATEWAYZ_REDIS_URL is not set" in result.stderr and "300 s" in result.stderr


def test_unreachable_redis_fails_the_change_loudly(
    gz: Invoke, on_db: str, op_env: pytest.MonkeyPatch
) -> None:
    ok_json(gz("users", "create", "--email", "u@example.com", "--json"))
    op_env.setenv("GATEWAYZ_REDIS_URL", "redis://127.0.0.1:1/0")
    result = gz("users", "set-role", "u@example.com", "dev")
    assert result.exit_code == 1
    assert "u@example.com: role free → dev" in result.stdout  # made, and said so
    assert "running gateways were not told" in result.stderr
