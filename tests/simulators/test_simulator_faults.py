"""Scripted faults, seen through the OpenAI SDK (and raw HTTP where the SDK hides the detail)."""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest

from gatewayz.simulators import Fault, Simulator

from .harness import http_request, raw_http

HI = [{"role": "user", "content": "hi there"}]
ECHO = "Hello from the Gatewayz simulator. You said: hi there"


async def test_status_503(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(status=503))
    with pytest.raises(openai.InternalServerError) as exc:
        await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert exc.value.status_code == 503
    body = exc.value.body
    assert isinstance(body, dict) and body["type"] == "server_error"
    assert "message" in body and "code" in body
    ok = await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert ok.choices[0].message.content == ECHO  # the fault was consumed


async def test_status_429_retry_after_and_custom_body(
    sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    sim.fault(Fault(status=429, retry_after="7"))
    custom = {"error": {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}}
    sim.fault(Fault(status=429, body=custom))
    with pytest.raises(openai.RateLimitError) as first:
        await client.chat.completions.create(model="simulated/echo", messages=HI, stream=True)
    assert first.value.response.headers["retry-after"] == "7"
    assert first.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError) as second:
        await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert "retry-after" not in second.value.response.headers
    assert second.value.message == "Error code: 429 - slow down"
    assert isinstance(second.value.body, dict) and second.value.body["type"] == "tokens"


async def test_delay_beyond_client_timeout(sim: Simulator) -> None:
    sim.fault(Fault(delay_s=2.0))
    async with openai.AsyncOpenAI(
        base_url=sim.base_url, api_key="x", max_retries=0, timeout=0.3
    ) as impatient:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model="simulated/echo", messages=HI)
        assert time.monotonic() - started < 1.5


async def test_delay_within_timeout(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(delay_s=0.2))
    started = time.monotonic()
    resp = await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert time.monotonic() - started >= 0.2
    assert resp.choices[0].message.content == ECHO


async def test_chunk_delay(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(chunk_delay_s=0.03))
    stream = await client.chat.completions.create(model="simulated/echo", messages=HI, stream=True)
    stamps: list[float] = []
    async for _ in stream:
        stamps.append(time.monotonic())
    assert len(stamps) == 11  # role + 9 pieces + finish
    assert stamps[-1] - stamps[0] >= 0.03 * 9


async def test_drop_mid_stream(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(drop_after_chunks=3))
    stream = await client.chat.completions.create(
        model="simulated/echo", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 3
    assert received[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in received[1:]] == ["Hello ", "from "]


async def test_drop_without_response(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(drop_after_chunks=0))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="simulated/echo", messages=HI)
    resp = await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert resp.choices[0].message.content == ECHO


async def test_empty_stream(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(empty_stream=True))
    stream = await client.chat.completions.create(model="simulated/echo", messages=HI, stream=True)
    assert [c async for c in stream] == []
    sim.fault(Fault(empty_stream=True))
    stream = await client.chat.completions.create(
        model="simulated/echo", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    [only] = [c async for c in stream]
    assert only.choices == []
    assert only.usage is not None and only.usage.completion_tokens == 0
    assert only.usage.prompt_tokens == 2


async def test_omit_usage(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(omit_usage=True))
    raw = await client.chat.completions.with_raw_response.create(
        model="simulated/echo", messages=HI
    )
    body = json.loads(raw.text)
    assert "usage" not in body and body["choices"][0]["message"]["content"] == ECHO
    sim.fault(Fault(omit_usage=True))
    stream = await client.chat.completions.create(
        model="simulated/echo", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_malformed(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(malformed=True))
    with pytest.raises(json.JSONDecodeError):
        await client.chat.completions.create(model="simulated/echo", messages=HI)
    sim.fault(Fault(malformed=True))
    stream = await client.chat.completions.create(model="simulated/echo", messages=HI, stream=True)
    seen = 0
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            seen += 1
    assert seen == 1  # the role chunk, then the broken line


async def test_text_override_and_fifo(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.fault(Fault(text="first canned answer"))
    sim.fault(Fault(text="second"))
    a = await client.chat.completions.create(
        model="simulated/tools",
        messages=HI,
        max_tokens=1,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
    )
    assert a.choices[0].message.content == "first canned answer"
    assert a.choices[0].message.tool_calls is None
    assert a.usage is not None and a.usage.completion_tokens == 3
    stream = await client.chat.completions.create(model="simulated/echo", messages=HI, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "second"
    c = await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert c.choices[0].message.content == ECHO


async def test_control_endpoint(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    faults = [{"status": 500}, {"text": "scripted", "delay_s": 0.01}]
    reply = await raw_http(
        sim.port, http_request("POST", "/__sim/faults", json.dumps(faults).encode())
    )
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {"added": 2, "queued": 2}
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="simulated/echo", messages=HI)
    resp = await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert resp.choices[0].message.content == "scripted"

    bad = await raw_http(sim.port, http_request("POST", "/__sim/faults", b'[{"nope": 1}]'))
    assert bad.startswith(b"HTTP/1.1 400 ") and b"nope" in bad

    await raw_http(sim.port, http_request("POST", "/__sim/faults", b'{"status": 502}'))
    cleared = await raw_http(sim.port, http_request("DELETE", "/__sim/faults"))
    assert cleared.startswith(b"HTTP/1.1 200 ")
    ok = await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert ok.choices[0].message.content == ECHO

    listing = await raw_http(sim.port, http_request("GET", "/__sim/requests"))
    recorded = json.loads(listing.split(b"\r\n\r\n", 1)[1])
    assert [r["path"] for r in recorded] == ["/v1/chat/completions"] * 3
    assert recorded[0]["json"] == {"model": "simulated/echo", "messages": HI}
    assert recorded[0]["headers"]["authorization"] == "Bearer x"
    assert len(sim.requests) == 3  # control requests are not recorded


async def test_faults_from_another_thread(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    await asyncio.to_thread(sim.fault, Fault(status=502))
    with pytest.raises(openai.APIStatusError) as exc:
        await client.chat.completions.create(model="simulated/echo", messages=HI)
    assert exc.value.status_code == 502


async def test_fault_bypasses_cached_answer(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    usages = []
    for fault in (None, Fault(omit_usage=True), None, Fault(text="canned"), None):
        if fault is not None:
            sim.fault(fault)
        resp = await client.chat.completions.create(model="simulated/echo", messages=HI)
        usages.append((resp.usage is not None, resp.choices[0].message.content))
    assert usages == [(True, ECHO), (False, ECHO), (True, ECHO), (True, "canned"), (True, ECHO)]


async def test_echo_credentials_repeats_the_key_in_the_error(sim: Simulator) -> None:
    sim.fault(Fault(status=400, echo_credentials=True))
    async with openai.AsyncOpenAI(
        base_url=sim.base_url, api_key="sk-echoed-secret", max_retries=0
    ) as c:
        with pytest.raises(openai.BadRequestError) as exc:
            await c.chat.completions.create(model="simulated/echo", messages=HI)
    assert "authorization: Bearer sk-echoed-secret" in exc.value.message


async def test_status_mid_stream_sends_events_then_an_error_event(sim: Simulator) -> None:
    sim.fault(Fault(status=503, drop_after_chunks=2, echo_credentials=True))
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-mid", max_retries=0) as c:
        stream = await c.chat.completions.create(model="simulated/echo", messages=HI, stream=True)
        seen = []
        with pytest.raises(openai.APIError) as exc:
            async for event in stream:
                seen.append(event)
    assert len(seen) == 2  # the role chunk and the first piece, then the error event
    assert "Bearer sk-mid" in exc.value.message


async def test_raw_body_with_a_content_type(sim: Simulator) -> None:
    page = "<html><body>Gateway login</body></html>"
    sim.fault(Fault(status=200, content_type="text/html", raw_body=page))
    body = json.dumps({"model": "simulated/echo", "messages": HI, "stream": True}).encode()
    raw = await raw_http(sim.port, http_request("POST", "/v1/chat/completions", body))
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Type: text/html\r\n" in head
    assert rest == page.encode()
