"""End to end: the official `openai` SDK → a real gateway → Google AI Studio or Vertex AI (each
configured alone, `google/gemini-2.5-flash` → native `gemini-2.5-flash`) → the Gemini
simulator, with its OAuth token endpoint for Vertex."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats import gemini as gemini_sim
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway
from tests.providers.vertex.helpers import write_service_account

KEY = "gemini-e2e-key"
PROJECT = "proj-e2e"
MODEL = "google/gemini-2.5-flash"
MSG = [{"role": "user", "content": "Say hello"}]
HELLO = "Hello from the Gatewayz simulator. You said: Say hello"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "additionalProperties": False,
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"tz": {"type": "string"}},
                "required": ["tz"],
            },
        },
    },
]
PATHS = {
    "google-ai-studio": "/v1beta/models/gemini-2.5-flash:",
    "google-vertex": (
        f"/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/gemini-2.5-flash:"
    ),
}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module", params=["google-ai-studio", "google-vertex"])
def gw(
    request: pytest.FixtureRequest, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    slug: str = request.param
    data_dir: Path = tmp_path_factory.mktemp(slug)
    root = f"http://127.0.0.1:{sim.port}"
    if slug == "google-ai-studio":
        env = {"base_url": root, "api_key": KEY}
    else:
        sa = write_service_account(data_dir / "sa.json", sim.port, project="not-this-one")
        env = {
            "base_url": root,
            "api_key": str(sa),
            "var:GOOGLE_CLOUD_PROJECT": PROJECT,
            "var:GOOGLE_CLOUD_LOCATION": "us-central1",
        }
    g = start_gateway(gateway_settings(data_dir, sim, provider_env={slug: env}), sim)
    set_price(g, "google/gemini-2.5-flash-tools", slug, prompt="0.3", completion="2.5")  # test-only
    yield g
    g.stop()


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    gw.upstream.clear()
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _slug(gw: Gateway) -> str:
    return next(iter(gw.settings.provider_env))


def _upstream(gw: Gateway, method: str = "generateContent") -> Any:
    reqs = [r for r in gw.upstream.requests if r.path.endswith(":" + method)]
    assert reqs, f"no upstream {method} request"
    assert reqs[-1].path == PATHS[_slug(gw)] + method
    return reqs[-1]


def test_plain_completion(gw: Gateway, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=MSG, temperature=0.5, max_tokens=50)
    assert r.choices[0].message.content == HELLO
    assert r.choices[0].finish_reason == "stop"
    assert r.model == MODEL
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (3, 9)
    up = _upstream(gw)
    assert up.json["generationConfig"] == {"temperature": 0.5, "maxOutputTokens": 50}
    if _slug(gw) == "google-ai-studio":
        assert up.headers["x-goog-api-key"] == KEY and "authorization" not in up.headers
    else:
        assert up.headers["authorization"].startswith("Bearer ya29.sim-")
        assert "x-goog-api-key" not in up.headers


def test_stream_with_usage(gw: Gateway, client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == HELLO
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (3, 9)
    _upstream(gw, "streamGenerateContent")


def test_parallel_tool_calls(gw: Gateway, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required"
    )
    c = r.choices[0]
    assert c.finish_reason == "tool_calls"
    calls = c.message.tool_calls or []
    assert [t.function.name for t in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "example city", "days": 1}
    assert json.loads(calls[1].function.arguments) == {"tz": "example tz"}
    assert all(t.id.startswith("call_") for t in calls) and calls[0].id != calls[1].id
    body = _upstream(gw).json
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    params = body["tools"][0]["functionDeclarations"][0]["parameters"]
    assert "additionalProperties" not in params and "$schema" not in params
    assert params["type"] == "OBJECT"


def test_streamed_tool_calls(gw: Gateway, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="google/gemini-2.5-flash-tools", messages=MSG, tools=TOOLS, stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for d in chunk.choices:
            finish = d.finish_reason or finish
            for tc in d.delta.tool_calls or ():
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                slot["id"] += tc.id or ""
                slot["name"] += (tc.function and tc.function.name) or ""
                slot["args"] += (tc.function and tc.function.arguments) or ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["args"]) == {"city": "example city", "days": 1}
    assert all(v["id"].startswith("call_") for v in calls.values())


def test_tool_round_trip(gw: Gateway, client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=MSG, tools=TOOLS, tool_choice="required"
    )
    msg = first.choices[0].message
    calls = msg.tool_calls or []
    messages: list[Any] = [
        *MSG,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": t.id, "type": "function", "function": t.function.model_dump()} for t in calls
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "12:00"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert r.choices[0].message.content == 'Tool result received: {"output":"12:00"}'
    assert r.choices[0].finish_reason == "stop"
    contents = _upstream(gw).json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": {"temp": 21}}}},
        {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}},
    ]


def test_image_input(gw: Gateway, client: openai.OpenAI) -> None:
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
        "rkJggg=="
    )
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
    ]
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert (
        r.choices[0].message.content == "Hello from the Gatewayz simulator. You said: What is this?"
    )
    parts = _upstream(gw).json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": png}}
    assert parts[2] == {
        "fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}
    }


def test_json_schema(gw: Gateway, client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    r = client.chat.completions.create(
        model=MODEL,
        messages=MSG,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    value = json.loads(r.choices[0].message.content or "")
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)
    cfg = _upstream(gw).json["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    assert "additionalProperties" not in cfg["responseSchema"]


def test_reasoning(gw: Gateway, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=MSG, reasoning_effort="low")
    m = r.choices[0].message
    assert m.content == HELLO
    assert (m.model_extra or {}).get("reasoning_content") == gemini_sim.THOUGHT
    assert r.usage is not None and r.usage.completion_tokens_details is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 10
    assert r.usage.completion_tokens == 19
    thinking = _upstream(gw).json["generationConfig"]["thinkingConfig"]
    assert thinking == {"thinkingBudget": 1024, "includeThoughts": True}


def test_errors_are_mapped(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream.fault(Fault(status=429, retry_after="7"))
    with pytest.raises(openai.RateLimitError) as e429:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e429.value.status_code == 429
    assert e429.value.response.headers.get("retry-after") == "7"
    assert "Simulated upstream fault: HTTP 429." in str(e429.value)
    bad = {"error": {"code": 400, "message": "Bad thing here", "status": "INVALID_ARGUMENT"}}
    gw.upstream.fault(Fault(status=400, body=bad))
    with pytest.raises(openai.BadRequestError) as e400:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert "Bad thing here" in str(e400.value)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="google/palm-2", messages=MSG)
    gw.upstream.fault(Fault(status=503))
    with pytest.raises(openai.InternalServerError) as e503:
        client.chat.completions.create(model=MODEL, messages=MSG, stream=True)
    assert e503.value.status_code == 503


def test_mid_stream_drop_ends_with_error_event(gw: Gateway) -> None:
    gw.upstream.clear()
    gw.upstream.fault(Fault(drop_after_chunks=3))
    with httpx.stream(
        "POST",
        gw.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json={"model": MODEL, "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert events[-1] != "data: [DONE]"
    assert json.loads(events[-1][6:])["error"]["code"] == "upstream_unavailable"
    text = "".join(
        (json.loads(e[6:])["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
        for e in events[:-1]
    )
    assert text == "Hello from the "


def test_vertex_token_is_cached_across_requests(gw: Gateway, client: openai.OpenAI) -> None:
    if _slug(gw) != "google-vertex":
        pytest.skip("Vertex only")
    st = gemini_sim.state(gw.upstream)
    client.chat.completions.create(model=MODEL, messages=MSG)
    calls = st.token_calls
    assert calls == 1  # every test of this gateway so far shared one token
    for _ in range(3):
        client.chat.completions.create(model=MODEL, messages=MSG)
    list(client.chat.completions.create(model=MODEL, messages=MSG, stream=True))
    assert st.token_calls == calls
    tokens = {r.headers["authorization"] for r in gw.upstream.requests if r.path != "/token"}
    assert len(tokens) == 1


def test_vertex_rejected_token_is_refreshed(gw: Gateway, client: openai.OpenAI) -> None:
    if _slug(gw) != "google-vertex":
        pytest.skip("Vertex only")
    st = gemini_sim.state(gw.upstream)
    before = st.token_calls
    with st.lock:
        st.tokens.clear()  # the upstream revokes every token it issued
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=MODEL, messages=MSG)
    assert e.value.status_code == 502
    r = client.chat.completions.create(model=MODEL, messages=MSG)
    assert r.choices[0].message.content == HELLO
    assert st.token_calls == before + 1
