"""An error nobody foresaw, at any step of the request path (issue 11, item 10): the client gets
a 500 in its dialect (an error event once a stream has started), the hold is settled or
released — never left `held` — the ledger stays consistent, and the request log records the
status the client saw."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from gatewayz.api.anthropic_routes import ANTHROPIC
from gatewayz.api.openai_routes import OPENAI, OpenAIStreamWriter
from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, add_user, request_log_rows

from .conftest import MODEL, money, usage_rows, wait_settled

PROMPT = [{"role": "user", "content": "x" * 400}]


class Injected(RuntimeError):
    """The unforeseen error."""


def boom(*_args: Any, **_kwargs: Any) -> Any:
    raise Injected("injected")


async def aboom(*_args: Any, **_kwargs: Any) -> Any:
    raise Injected("injected")


def _targets(gw: Gateway) -> dict[str, tuple[Any, str, Callable[..., Any]]]:
    """Step → (object, attribute, replacement)."""
    s = gw.services
    import gatewayz.pipeline.chat as chat
    from gatewayz.routing.resolve import Resolver
    from gatewayz.storage.ledger import holds

    adapter = s.registry.providers["vllm"].adapter
    return {
        "resolve": (Resolver, "explain", boom),
        "hold": (s.meter, "open", aboom),
        "provider": (adapter, "send", aboom),
        "usage": (chat, "final_usage", boom),
        "quote": (s.meter, "quote", boom),
        "render": (OPENAI, "render", boom),
        "settle": (holds, "settle", boom),
        "cache": (s.response_cache, "save", aboom),
    }


def test_a_failing_cache_store_is_only_a_miss(
    gateway: Gateway, inject: Callable[[str], None]
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    inject("cache")
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    r = sdk.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=20, seed=7)
    assert r.choices[0].message.content
    assert len(usage_rows(money(gateway, user))) == 1  # delivered: charged once


@pytest.fixture
def inject(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def at(step: str) -> None:
        obj, name, fn = _targets(gateway)[step]
        monkeypatch.setattr(obj, name, fn)

    yield at


def _check(gateway: Gateway, user: str, rid: str, status: int = 500) -> None:
    wait_settled(gateway, user)
    state = money(gateway, user)  # the ledger is verified consistent here
    assert all(h["status"] != "held" for h in state["holds"]), state["holds"]
    (row,) = request_log_rows(gateway, rid)
    assert row["status_code"] == status, row


STEPS = ["resolve", "hold", "provider", "usage", "quote", "render", "settle"]


@pytest.mark.parametrize("step", STEPS)
def test_openai_plain_request(gateway: Gateway, inject: Callable[[str], None], step: str) -> None:
    user, key = add_user(gateway, credits_usd="1")
    rid = "inject-" + secrets.token_hex(6)
    inject(step)
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    # A seed makes the answer cacheable: the cache's store step runs too.
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(
            model=MODEL, messages=PROMPT, max_tokens=20, seed=1, extra_headers={"X-Request-ID": rid}
        )
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "internal_error", body
    assert rid in body["message"] and "injected" not in body["message"]
    _check(gateway, user, rid)
    if step in ("render", "settle", "cache", "quote", "usage", "provider"):
        assert not usage_rows(money(gateway, user))  # not delivered: not charged


def test_anthropic_dialect_gets_its_own_error_shape(
    gateway: Gateway, inject: Callable[[str], None]
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    rid = "inject-" + secrets.token_hex(6)
    inject("provider")
    sdk = anthropic.Anthropic(base_url=gateway.root, api_key=key, max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as caught:
        sdk.messages.create(
            model=MODEL, max_tokens=20, messages=PROMPT, extra_headers={"X-Request-ID": rid}
        )
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    _check(gateway, user, rid)


def test_anthropic_render_failure(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    user, key = add_user(gateway, credits_usd="1")
    rid = "inject-" + secrets.token_hex(6)
    monkeypatch.setattr(ANTHROPIC, "render", boom)
    sdk = anthropic.Anthropic(base_url=gateway.root, api_key=key, max_retries=0)
    with pytest.raises(anthropic.InternalServerError):
        sdk.messages.create(
            model=MODEL, max_tokens=20, messages=PROMPT, extra_headers={"X-Request-ID": rid}
        )
    _check(gateway, user, rid)
    assert not usage_rows(money(gateway, user))


@pytest.mark.parametrize("step", ["provider_stream", "feed", "settle"])
def test_stream(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    user, key = add_user(gateway, credits_usd="1")
    rid = "inject-" + secrets.token_hex(6)
    if step == "provider_stream":
        monkeypatch.setattr(gateway.services.registry.providers["vllm"].adapter, "stream", aboom)
    elif step == "feed":
        monkeypatch.setattr(OpenAIStreamWriter, "feed", boom)
    else:
        monkeypatch.setattr("gatewayz.storage.ledger.holds.settle", boom)
    gateway.upstream.fault(Fault(text="one two three four"))
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    if step == "provider_stream":  # before the first byte: a proper 500
        with pytest.raises(openai.InternalServerError):
            sdk.chat.completions.create(
                model=MODEL,
                messages=PROMPT,
                max_tokens=20,
                stream=True,
                extra_headers={"X-Request-ID": rid},
            )
    else:  # after it: the stream ends with an error event
        with pytest.raises(openai.APIError) as caught:
            for _ in sdk.chat.completions.create(
                model=MODEL,
                messages=PROMPT,
                max_tokens=20,
                stream=True,
                extra_headers={"X-Request-ID": rid},
            ):
                pass
        assert "internal_error" in str(caught.value.body) or "failed" in caught.value.message
    _check(gateway, user, rid)
