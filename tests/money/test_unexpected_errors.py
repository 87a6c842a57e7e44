"""An error nobody foresaw, at every step boundary of the chat path — each step's `run` and
`finish`, the edge's parsing and rendering — streamed and not, in both dialects: the client gets a
well-formed error in its dialect (a 500 before the status line, an error event after it), no hold
is left `held`, the ledger stays consistent, the upstream connection is given back, and the
request log records the status the client saw."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from gatewayz.api.anthropic_routes import ANTHROPIC
from gatewayz.api.openai_routes import OPENAI, OpenAIStreamWriter
from gatewayz.providers.anthropic.stream import StreamRenderer
from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, add_user, request_log_rows

from .conftest import MODEL, money, usage_rows, wait_settled

PROMPT = [{"role": "user", "content": "x" * 400}]
STEPS = ["Limit", "Routes", "Cache", "Hold", "Invoke"]
POINTS = [
    "parse",
    *(f"{s}.run" for s in STEPS),
    *(f"{s}.finish" for s in STEPS),
    "render",
]


class Injected(RuntimeError):
    """The unforeseen error."""


def boom(*_args: Any, **_kwargs: Any) -> Any:
    raise Injected("injected")


async def aboom(*_args: Any, **_kwargs: Any) -> Any:
    raise Injected("injected")


def _inject(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, point: str, dialect: str, stream: bool
) -> None:
    if point in ("parse", "render"):
        if point == "render" and stream:  # a stream is rendered chunk by chunk
            writer = OpenAIStreamWriter if dialect == "openai" else StreamRenderer
            monkeypatch.setattr(writer, "feed", boom)
        else:
            monkeypatch.setattr(OPENAI if dialect == "openai" else ANTHROPIC, point, boom)
        return
    name, method = point.split(".")
    (step,) = [s for s in gw.services.pipeline.steps.steps if type(s).__name__ == name]
    monkeypatch.setattr(step, method, aboom)


def _free_slots(gw: Gateway) -> int:
    pool = gw.services.registry.providers["vllm"].adapter.pool  # type: ignore[union-attr]
    return int(pool._slots._value)


def _call(gw: Gateway, key: str, dialect: str, stream: bool, rid: str) -> Any:
    """The request; the exception the SDK raised (before or during the stream), or None."""
    headers = {"X-Request-ID": rid}
    try:
        if dialect == "openai":
            sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
            out = sdk.chat.completions.create(
                model=MODEL, messages=PROMPT, max_tokens=20, seed=1, stream=stream,
                extra_headers=headers,
            )  # fmt: skip
        else:
            claude = anthropic.Anthropic(base_url=gw.root, api_key=key, max_retries=0)
            out = claude.messages.create(
                model=MODEL, messages=PROMPT, max_tokens=20, stream=stream, extra_headers=headers
            )
        if stream:
            for _ in out:
                pass
    except (openai.APIError, anthropic.APIError) as exc:
        return exc
    return None


@pytest.fixture
def free_slots(gateway: Gateway) -> Iterator[int]:
    yield _free_slots(gateway)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
@pytest.mark.parametrize("point", POINTS)
def test_an_unforeseen_error_anywhere(
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    free_slots: int,
    point: str,
    dialect: str,
    stream: bool,
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    rid = "inject-" + secrets.token_hex(6)
    gateway.upstream.fault(Fault(text="one two three four"))
    _inject(gateway, monkeypatch, point, dialect, stream)
    err = _call(gateway, key, dialect, stream, rid)
    assert err is not None, "the client must see the failure"
    started = stream and point not in ("parse", *(f"{s}.run" for s in STEPS))
    if not started:  # a proper 500 in the caller's dialect
        assert isinstance(err, openai.InternalServerError | anthropic.InternalServerError), err
        body = err.body
        if dialect == "openai":
            assert isinstance(body, dict) and body["code"] == "internal_error", body
        else:
            assert isinstance(body, dict) and body["error"]["type"] == "api_error", body
        assert rid in str(body) and "injected" not in str(body)
    else:  # the status line was gone: the stream ended with the dialect's error event
        assert "internal_error" in str(err) or "api_error" in str(err) or "failed" in str(err)
    monkeypatch.undo()
    wait_settled(gateway, user)
    state = money(gateway, user)  # the ledger is verified consistent here
    assert all(h["status"] != "held" for h in state["holds"]), state["holds"]
    (row,) = request_log_rows(gateway, rid)
    assert row["status_code"] == 500, row
    assert _free_slots(gateway) == free_slots  # the upstream connection was given back
    if point in ("parse", "Limit.run", "Routes.run", "Cache.run", "Hold.run"):
        assert gateway.upstream.requests == []  # nothing was sent
        assert not usage_rows(state)


def test_a_failing_cache_store_is_only_a_miss(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    monkeypatch.setattr(gateway.services.response_cache, "save", aboom)
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    r = sdk.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=20, seed=7)
    assert r.choices[0].message.content
    assert len(usage_rows(money(gateway, user))) == 1  # delivered: charged once
