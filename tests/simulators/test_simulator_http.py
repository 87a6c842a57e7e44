"""The simulator's HTTP layer below the SDK: routing, keep-alive and pipelining, chunked request
bodies, bad input, shutdown, and the threaded mode used from sync code."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from gatewayz.simulators import Fault, Simulator

from .harness import http_request, raw_http, split_responses

CHAT = json.dumps({"model": "simulated/echo", "messages": [{"role": "user", "content": "yo"}]})
ECHO_YO = "Hello from the Gatewayz simulator. You said: yo"
YO = [{"role": "user", "content": "yo"}]


def _split(reply: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


async def test_health_models_and_routing(sim: Simulator) -> None:
    status, headers, body = _split(await raw_http(sim.port, http_request("GET", "/health")))
    assert status == "HTTP/1.1 200 OK" and json.loads(body) == {"status": "ok"}
    assert headers["content-type"] == "application/json"
    status, _, body = _split(await raw_http(sim.port, http_request("GET", "/models")))
    listing = json.loads(body)
    assert listing["object"] == "list"
    assert listing["data"][0] == {
        "id": "simulated/echo",
        "object": "model",
        "created": 0,
        "owned_by": "gatewayz-simulator",
    }
    status, _, body = _split(
        await raw_http(sim.port, http_request("GET", "/v1/models/simulated/json"))
    )
    assert status.startswith("HTTP/1.1 200") and json.loads(body)["id"] == "simulated/json"
    status, _, body = _split(await raw_http(sim.port, http_request("GET", "/v1/nowhere")))
    assert status == "HTTP/1.1 404 Not Found"
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    status, headers, body = _split(
        await raw_http(sim.port, http_request("GET", "/v1/chat/completions"))
    )
    assert status == "HTTP/1.1 405 Method Not Allowed" and headers["allow"] == "POST"
    assert "error" in json.loads(body)


async def test_invalid_json_and_shape(sim: Simulator) -> None:
    for body, param in (
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"messages": []}', None),
        (b'{"model": "m", "messages": "hi"}', "messages"),
    ):
        status, _, out = _split(
            await raw_http(sim.port, http_request("POST", "/chat/completions", body))
        )
        assert status == "HTTP/1.1 400 Bad Request", body
        error = json.loads(out)["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param
        assert set(error) == {"message", "type", "param", "code"}


async def test_keep_alive_pipelining(sim: Simulator) -> None:
    first = http_request("POST", "/v1/chat/completions", CHAT.encode(), close=False)
    second = http_request("GET", "/health", close=False)
    third = http_request("POST", "/v1/chat/completions", CHAT.encode())
    sim.fault(Fault(delay_s=0.05))  # the first answer is late; order must still hold
    replies = split_responses(await raw_http(sim.port, first + second + third))
    assert [status for status, _, _ in replies] == ["HTTP/1.1 200 OK"] * 3
    assert json.loads(replies[0][2])["choices"][0]["message"]["content"] == ECHO_YO
    assert json.loads(replies[1][2]) == {"status": "ok"}
    assert json.loads(replies[2][2])["object"] == "chat.completion"
    assert "connection" not in replies[0][1] and replies[2][1]["connection"] == "close"


async def test_chunked_request_body(sim: Simulator) -> None:
    payload = CHAT.encode()
    framed = (
        b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (payload[:10], payload[10:])) + b"0\r\n\r\n"
    )
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    status, _, body = _split(await raw_http(sim.port, head + framed))
    assert status == "HTTP/1.1 200 OK"
    assert json.loads(body)["choices"][0]["message"]["content"] == ECHO_YO
    assert sim.requests[-1].body == payload


async def test_malformed_http_closes(sim: Simulator) -> None:
    reply = await raw_http(sim.port, b"THIS IS NOT HTTP\r\n\x00\x01\r\n\r\n")
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400")
    status, _, _ = _split(await raw_http(sim.port, http_request("GET", "/health")))
    assert status == "HTTP/1.1 200 OK"  # the server survived


async def test_stream_over_http10(sim: Simulator) -> None:
    body = json.dumps({**json.loads(CHAT), "stream": True}).encode()
    request = b"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    status, headers, out = _split(await raw_http(sim.port, request))
    assert status == "HTTP/1.1 200 OK" and "transfer-encoding" not in headers
    events = [e for e in out.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    text = "".join(
        json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events[:-1]
    )
    assert text == ECHO_YO


async def test_stop_closes_open_connections() -> None:
    sim = Simulator()
    await sim.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    sim.fault(Fault(delay_s=30))
    writer.write(http_request("POST", "/v1/chat/completions", CHAT.encode(), close=False))
    await writer.drain()
    await asyncio.sleep(0.05)
    await sim.stop()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", sim.port)


async def test_async_context_manager() -> None:
    async with Simulator(models=["a/b"]) as sim:
        status, _, body = _split(await raw_http(sim.port, http_request("GET", "/v1/models")))
        assert status == "HTTP/1.1 200 OK"
        assert [m["id"] for m in json.loads(body)["data"]] == ["a/b"]
        assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1"


def test_thread_mode_with_sync_client() -> None:
    sim = Simulator()
    sim.start_in_thread()
    try:
        assert sim.port > 0
        with openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as client:
            resp = client.chat.completions.create(
                model="simulated/echo", messages=[{"role": "user", "content": "yo"}]
            )
            assert resp.choices[0].message.content == ECHO_YO
            sim.fault(Fault(status=503))
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(
                    model="simulated/echo", messages=[{"role": "user", "content": "yo"}]
                )
            stream = client.chat.completions.create(
                model="simulated/lorem",
                messages=[{"role": "user", "content": "yo"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = list(stream)
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 50
        assert len(sim.requests) == 3
    finally:
        sim.stop_thread()
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0).models.list()


async def test_api_key_required() -> None:
    sim = Simulator(api_key="sk-sim-secret")
    await sim.start()
    try:
        bad = openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as exc:
            await bad.chat.completions.create(model="simulated/echo", messages=YO)
        assert exc.value.status_code == 401
        assert exc.value.code == "invalid_api_key"
        good = openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-sim-secret", max_retries=0)
        resp = await good.chat.completions.create(model="simulated/echo", messages=YO)
        assert resp.choices[0].message.content == ECHO_YO
        await bad.close()
        await good.close()
    finally:
        await sim.stop()


async def test_models_and_recorded_requests(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == sim.models
    assert sim.models[0] == "simulated/echo" and all(
        m.owned_by == "gatewayz-simulator" for m in models.data
    )
    await client.chat.completions.create(
        model="simulated/echo", messages=YO, temperature=0.3, user="u1"
    )
    last = sim.requests[-1]
    assert (last.method, last.path) == ("POST", "/v1/chat/completions")
    assert last.headers["authorization"] == "Bearer x"
    assert last.headers["content-type"] == "application/json"
    assert last.json == {
        "model": "simulated/echo",
        "messages": YO,
        "temperature": 0.3,
        "user": "u1",
    }
    assert json.loads(last.body) == last.json
    assert [r.path for r in sim.requests] == ["/v1/models", "/v1/chat/completions"]
    sim.clear()
    assert sim.requests == []
