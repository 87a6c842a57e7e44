"""The official `openai` SDK → a running gateway → the aws-bedrock provider (SigV4, Converse,
ConverseStream binary event stream) → the simulator's Bedrock format."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx2 as httpx
import openai
import pytest

from gatewayz.providers.bedrock import sigv4
from gatewayz.providers.registry import load_registry
from gatewayz.settings import Settings
from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import WEATHER_TOOLS, Gateway, gateway_settings, start_gateway

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
MODEL = "aws-bedrock/us.amazon.nova-pro-v1:0"
NATIVE = "us.amazon.nova-pro-v1:0"
MSG = [{"role": "user", "content": "Say hello"}]
TOOLS = WEATHER_TOOLS
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=ACCESS_KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {
        "aws-bedrock": {
            "api_key": ACCESS_KEY,
            "base_url": f"http://127.0.0.1:{sim.port}",
            "var:AWS_SECRET_ACCESS_KEY": SECRET,
            "var:AWS_SESSION_TOKEN": "session-token-1",
            "var:AWS_REGION": "us-east-1",
        }
    }
    data_dir: Path = tmp_path_factory.mktemp("bedrock")
    g = start_gateway(
        gateway_settings(data_dir, sim, provider_env=env, upstream_429_retries=0), sim
    )
    yield g
    g.stop()


@pytest.fixture
def client(gw: Gateway, sim: Simulator) -> openai.OpenAI:
    sim.clear()
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _last(sim: Simulator) -> dict:
    req = sim.requests[-1]
    return {"path": req.path, "headers": req.headers, "json": req.json, "body": req.body}


def _sse(gw: Gateway, body: dict) -> list[dict]:
    with httpx.stream(
        "POST",
        gw.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json=body,
        timeout=10,
    ) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    events = [e[6:] for e in raw.split("\n\n") if e.startswith("data: ")]
    return [json.loads(e) for e in events if e != "[DONE]"]


# ---------------------------------------------------------------- plain
def test_plain_completion_is_signed_and_translated(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, *MSG],
        max_tokens=50,
        temperature=0.2,
        stop=["zzz"],
    )
    assert r.choices[0].message.content == "Hello from the Gatewayz simulator. You said: Say hello"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == MODEL
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 9
    seen = _last(sim)
    assert seen["path"] == f"/model/{NATIVE}/converse"
    assert seen["json"] == {
        "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["zzz"]},
    }
    h = seen["headers"]
    assert h["x-amz-security-token"] == "session-token-1"
    assert h["x-amz-content-sha256"] == hashlib.sha256(seen["body"]).hexdigest()
    # Re-sign what the simulator received: the signature covers the double-encoded path.
    signed = "accept;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
    assert f"SignedHeaders={signed}," in h["authorization"]
    expected = sigv4.authorization(
        sigv4.Credentials(ACCESS_KEY, SECRET),
        "us-east-1",
        "bedrock",
        h["x-amz-date"],
        "POST",
        f"/model/{quote(NATIVE, safe='')}/converse",
        [],
        [(name, h[name]) for name in signed.split(";")],
        h["x-amz-content-sha256"],
    )
    assert h["authorization"] == expected


def test_canonical_id_maps_to_native_id(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(model="amazon/nova-pro", messages=MSG)
    assert r.choices[0].message.content.startswith("Hello from the Gatewayz simulator")
    assert _last(sim)["path"] == f"/model/{NATIVE}/converse"
    client.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=MSG)
    assert _last(sim)["path"] == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/converse"


# ---------------------------------------------------------------- streaming
def test_streaming_with_usage(client: openai.OpenAI, sim: Simulator) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the Gatewayz simulator. You said: Say hello"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 9 and usage.prompt_tokens > 0
    seen = _last(sim)
    assert seen["path"] == f"/model/{NATIVE}/converse-stream"
    assert seen["headers"]["accept"] == "application/vnd.amazon.eventstream"


# ---------------------------------------------------------------- tools
def test_parallel_tool_calls(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required"
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    args = json.loads(calls[0].function.arguments)
    assert set(args) >= {"city", "days"} and isinstance(args["days"], int)
    assert calls[0].id.startswith("tooluse_") and calls[0].id != calls[1].id
    config = _last(sim)["json"]["toolConfig"]
    assert config["toolChoice"] == {"any": {}}
    assert config["tools"][0]["toolSpec"] == {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": TOOLS[0]["function"]["parameters"]},
    }


def test_named_tool_choice(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=MSG,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_time"]
    assert _last(sim)["json"]["toolConfig"]["toolChoice"] == {"tool": {"name": "get_time"}}


def test_streamed_parallel_tool_calls(client: openai.OpenAI, sim: Simulator) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required", stream=True
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        d = chunk.choices[0]
        finish = d.finish_reason or finish
        for tc in d.delta.tool_calls or ():
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
            slot["id"] = tc.id or slot["id"]
            if tc.function:
                slot["name"] = tc.function.name or slot["name"]
                slot["args"] += tc.function.arguments or ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert all(c["id"].startswith("tooluse_") for c in calls.values())
    assert set(json.loads(calls[0]["args"])) >= {"city", "days"}
    assert set(json.loads(calls[1]["args"])) >= {"tz"}


def test_tool_round_trip_merges_results(client: openai.OpenAI, sim: Simulator) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required"
    )
    calls = first.choices[0].message.tool_calls
    messages = [
        *MSG,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert r.choices[0].message.content == "Tool result received: noon"
    sent = _last(sim)["json"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["toolUse"]["toolUseId"] for b in sent[1]["content"]] == [c.id for c in calls]
    assert sent[2]["content"] == [
        {"toolResult": {"toolUseId": calls[0].id, "content": [{"text": "sunny"}],
                        "status": "success"}},
        {"toolResult": {"toolUseId": calls[1].id, "content": [{"text": "noon"}],
                        "status": "success"}},
    ]  # fmt: skip


# ---------------------------------------------------------------- images
def test_image_input(client: openai.OpenAI, sim: Simulator) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert r.choices[0].message.content.endswith("What is this?")
    blocks = _last(sim)["json"]["messages"][0]["content"]
    assert blocks == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
    ]


def test_image_by_http_url_is_rejected(client: openai.OpenAI, sim: Simulator) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert "data: URL" in e.value.response.json()["error"]["message"]
    assert sim.requests == []


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("upstream", "status", "kind"),
    [
        (400, 400, "ValidationException"),
        (403, 502, "AccessDeniedException"),
        (404, 404, "ResourceNotFoundException"),
        (424, 502, "ModelErrorException"),
        (429, 429, "ThrottlingException"),
        (500, 502, "InternalServerException"),
        (503, 503, "ServiceUnavailableException"),
    ],
)
def test_upstream_errors_are_mapped(
    client: openai.OpenAI, sim: Simulator, upstream: int, status: int, kind: str
) -> None:
    sim.fault(Fault(status=upstream, retry_after="7"))
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.status_code == status
    message = e.value.response.json()["error"]["message"]
    assert f"{kind}: Simulated upstream fault: HTTP {upstream}." in message
    if status == 429:
        assert e.value.response.headers["retry-after"] == "7"


def test_error_before_stream_starts(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(status=429, body={"message": "Too many tokens, please wait."}))
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG, stream=True)
    assert "ThrottlingException: Too many tokens" in e.value.response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("upstream", "code", "kind"),
    [
        (429, "rate_limit_exceeded", "throttlingException"),
        (424, "upstream_unavailable", "modelStreamErrorException"),
        (503, "upstream_unavailable", "serviceUnavailableException"),
    ],
)
def test_exception_mid_stream_is_an_error_event(
    gw: Gateway, sim: Simulator, upstream: int, code: str, kind: str
) -> None:
    sim.clear()
    sim.fault(Fault(status=upstream, drop_after_chunks=3))
    events = _sse(gw, {"model": MODEL, "messages": MSG, "stream": True})
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
    )
    assert text == "Hello from "  # two text frames after messageStart
    err = events[-1]["error"]
    assert err["code"] == code
    assert kind in err["message"]


@pytest.mark.parametrize("fault", [Fault(drop_after_chunks=3), Fault(malformed=True)])
def test_broken_stream_is_an_error_event(gw: Gateway, sim: Simulator, fault: Fault) -> None:
    sim.clear()
    sim.fault(fault)
    events = _sse(gw, {"model": MODEL, "messages": MSG, "stream": True})
    assert events[-1]["error"]["code"] == "upstream_unavailable"


def test_malformed_body_is_502(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(malformed=True))
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.status_code == 502


def test_fault_text_and_omit_usage(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(text="exactly this", omit_usage=True))
    r = client.chat.completions.create(model=MODEL, messages=MSG)
    assert r.choices[0].message.content == "exactly this"
    assert r.usage.model_extra.get("estimated") is True  # Bedrock sent none: the gateway counts


# ---------------------------------------------------------------- configuration
def test_region_placeholder_needs_aws_region(tmp_path: Path) -> None:
    missing = Settings(
        data_dir=tmp_path,
        provider_env={"aws-bedrock": {"api_key": "AK", "var:AWS_SECRET_ACCESS_KEY": "s"}},
    )
    p = load_registry(missing).get("aws-bedrock")
    assert p is not None and not p.enabled and "AWS_REGION" in p.reason
    ok = Settings(
        data_dir=tmp_path,
        provider_env={
            "aws-bedrock": {"api_key": "AK", "var:AWS_SECRET_ACCESS_KEY": "s",
                            "var:AWS_REGION": "eu-central-1"},
        },
    )  # fmt: skip
    p = load_registry(ok).get("aws-bedrock")
    assert p is not None and p.enabled
    assert p.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert p.adapter.region == "eu-central-1"


async def test_list_models_returns_configured_ids(gw: Gateway) -> None:
    adapter = gw.services.registry.get("aws-bedrock").adapter
    models = await adapter.list_models()
    assert NATIVE in models and "us.meta.llama3-3-70b-instruct-v1:0" in models


def test_upstream_delay_past_read_timeout_is_504(gw: Gateway, client: openai.OpenAI) -> None:
    pool = gw.services.registry.get("aws-bedrock").adapter.pool
    old, pool.read_timeout = pool.read_timeout, 0.2
    try:
        gw.upstream.fault(Fault(delay_s=1.0))
        with pytest.raises(openai.APIStatusError) as e:
            client.chat.completions.create(model=MODEL, messages=MSG)
        assert e.value.status_code == 504
    finally:
        pool.read_timeout = old
