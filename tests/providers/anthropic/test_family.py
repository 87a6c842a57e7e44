"""The Anthropic family adapter against the simulator: request headers, error mapping and
model listing (Anthropic's paginated list shape)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gatewayz.canonical.types import ChatRequest, Message, StreamChunk
from gatewayz.errors import InvalidRequest, ModelNotFound, RateLimited, UpstreamUnavailable
from gatewayz.providers.anthropic import Adapter
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats.anthropic import models
from gatewayz.simulators.protocol import Reply, Request

KEY = "sk-ant-family"


class AnthropicSim(Simulator):
    """Lets GET /v1/models with an anthropic-version header reach the Anthropic format (the
    built-in OpenAI models route answers it otherwise)."""

    def _handle(self, req: Request) -> Reply:
        if req.path == "/v1/models" and "anthropic-version" in req.headers:
            self.take_fault()
            return models(self, req, None, None)  # type: ignore[arg-type]
        return super()._handle(req)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = AnthropicSim(api_key=KEY, models=[f"claude-{i}" for i in range(1500)])
    s.start_in_thread()
    yield s
    s.stop_thread()


def adapter(sim: Simulator, **kw: object) -> Adapter:
    p = Provider(
        slug="anthropic",
        name="Anthropic",
        family="anthropic",
        base_url=f"http://127.0.0.1:{sim.port}",
        auth="x-api-key",
        api_key=KEY,
        headers={"anthropic-beta": "tools-2024"},
    )
    for k, v in kw.items():
        setattr(p, k, v)
    return Adapter(p, HttpPool(p.base_url))


def req(**kw: object) -> ChatRequest:
    r = ChatRequest(model="anthropic/claude-x", messages=[Message("user", "Hi")], max_tokens=20)
    for k, v in kw.items():
        setattr(r, k, v)
    return r


async def test_send_headers_and_response(sim: Simulator) -> None:
    sim.clear()
    a = adapter(sim)
    resp = await a.send(req(), "claude-x")
    assert resp.choices[0].message.content == "Hello from the Gatewayz simulator. You said: Hi"
    assert resp.upstream_id and resp.upstream_id.startswith("msg_")
    assert resp.usage is not None and resp.usage.cached_tokens == 0
    h = sim.requests[-1].headers
    assert sim.requests[-1].path == "/v1/messages"
    assert (h["x-api-key"], h["anthropic-version"], h["anthropic-beta"]) == (
        KEY,
        "2023-06-01",
        "tools-2024",
    )
    assert "authorization" not in h
    await a.pool.close()


async def test_stream_yields_canonical_chunks(sim: Simulator) -> None:
    a = adapter(sim)
    stream = await a.stream(req(stream=True), "claude-x")
    chunks: list[StreamChunk] = []
    async for batch in stream:
        chunks.extend(batch)
    text = "".join(d.content or "" for c in chunks for d in c.choices)
    assert text == "Hello from the Gatewayz simulator. You said: Hi"
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0] is not None and usage[0].completion_tokens == 8
    await a.pool.close()


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault(status=400), InvalidRequest, 400),
        (Fault(status=404), ModelNotFound, 404),
        (Fault(status=429, retry_after="2"), RateLimited, 429),
        (Fault(status=529), UpstreamUnavailable, 502),
        (Fault(malformed=True), UpstreamUnavailable, 502),
    ],
)
async def test_errors_are_mapped(sim: Simulator, fault: Fault, error: type, status: int) -> None:
    a = adapter(sim)
    sim.fault(fault)
    with pytest.raises(error) as info:
        await a.send(req(), "claude-x")
    assert info.value.status == status
    if fault.retry_after:
        assert info.value.headers == {"Retry-After": "2"}
    await a.pool.close()


async def test_mid_stream_drop_raises(sim: Simulator) -> None:
    a = adapter(sim)
    sim.fault(Fault(drop_after_chunks=3))
    stream = await a.stream(req(stream=True), "claude-x")
    with pytest.raises(UpstreamUnavailable):
        async for _ in stream:
            pass
    await a.pool.close()


async def test_list_models_follows_pages(sim: Simulator) -> None:
    a = adapter(sim)
    ids = await a.list_models()  # the simulator, like Anthropic, pages at most 1000 models
    assert ids == [f"claude-{i}" for i in range(1500)]
    await a.pool.close()
