"""The Gemini simulator format against the official `google-genai` SDK (AI Studio with an API
key, Vertex with service-account credentials through the fake token endpoint), plus its
request checks, token endpoint and faults on the raw wire."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats import gemini as gemini_sim
from tests.providers.vertex.helpers import PROJECT, write_service_account

try:  # the official SDK is a test-only extra: without it only the raw-wire tests run
    from google import genai
    from google.genai import errors, types
except ImportError:  # pragma: no cover
    genai = errors = types = None  # type: ignore[assignment]
needs_sdk = pytest.mark.skipif(genai is None, reason="google-genai is not installed")

KEY = "gemini-sim-key"
STUDIO_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
def root(sim: Simulator) -> str:
    sim.clear()
    return f"http://127.0.0.1:{sim.port}"


@pytest.fixture
def client(root: str):  # type: ignore[no-untyped-def]
    opts = {"base_url": root, "api_version": "v1beta", "retry_options": {"attempts": 1}}
    return genai.Client(api_key=KEY, http_options=opts)


def _weather_tools():  # type: ignore[no-untyped-def]
    city = types.Schema(type="STRING")
    return [
        types.Tool(
            function_declarations=[
                types.FunctionDeclaration(
                    name="get_weather",
                    parameters=types.Schema(
                        type="OBJECT", properties={"city": city}, required=["city"]
                    ),
                ),
                types.FunctionDeclaration(
                    name="get_time",
                    parameters=types.Schema(type="OBJECT", properties={"tz": city}),
                ),
            ]
        )
    ]


@needs_sdk
def test_sdk_plain_answer_and_usage(client, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    r = client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    assert r.text == "Hello from the Gatewayz simulator. You said: Say hello"
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (3, 9, 12)
    req = sim.requests[-1]
    assert req.path == STUDIO_PATH and req.headers["x-goog-api-key"] == KEY


@needs_sdk
def test_sdk_stream(client) -> None:  # type: ignore[no-untyped-def]
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi"))
    assert "".join(c.text for c in chunks) == "Hello from the Gatewayz simulator. You said: Hi"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.candidates_token_count == 8


@needs_sdk
def test_sdk_parallel_function_calls_and_thoughts(client) -> None:  # type: ignore[no-untyped-def]
    config = types.GenerateContentConfig(
        tools=_weather_tools(),
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode="ANY")
        ),
        thinking_config=types.ThinkingConfig(include_thoughts=True),
    )
    r = client.models.generate_content(model="gemini-2.5-flash", contents="Both?", config=config)
    calls = r.function_calls
    assert [(c.name, c.args) for c in calls] == [
        ("get_weather", {"city": "example city"}),
        ("get_time", {"tz": "example tz"}),
    ]
    parts = r.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text == gemini_sim.THOUGHT
    assert parts[1].thought_signature  # signed, as Gemini signs calls when thinking
    assert r.usage_metadata.thoughts_token_count == 10


@needs_sdk
def test_sdk_function_response_round_trip(client) -> None:  # type: ignore[no-untyped-def]
    call = types.FunctionCall(name="get_weather", args={"city": "X"})
    result = types.FunctionResponse(name="get_weather", response={"output": "sunny"})
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather?")]),
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(role="user", parts=[types.Part(function_response=result)]),
    ]
    config = types.GenerateContentConfig(tools=_weather_tools())
    r = client.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    assert r.text == 'Tool result received: {"output":"sunny"}'


@needs_sdk
def test_sdk_json_schema_and_models(client) -> None:  # type: ignore[no-untyped-def]
    schema = types.Schema(
        type="OBJECT",
        properties={"name": types.Schema(type="STRING"), "n": types.Schema(type="INTEGER")},
        required=["name", "n"],
    )
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=schema
    )
    r = client.models.generate_content(model="gemini-2.5-flash", contents="x", config=config)
    value = json.loads(r.text)
    assert set(value) == {"name", "n"} and isinstance(value["n"], int)
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-flash" in names and "models/gemini-2.5-pro" in names


@needs_sdk
def test_sdk_errors_in_gemini_shape(client, root: str, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model="claude-3", contents="x")
    assert (e.value.code, e.value.status) == (404, "NOT_FOUND")
    bad = genai.Client(api_key="wrong", http_options={"base_url": root, "api_version": "v1beta"})
    with pytest.raises(errors.ClientError) as e:
        bad.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert e.value.code == 400 and "API key not valid" in e.value.message
    sim.fault(Fault(status=429, retry_after="3"))
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert (e.value.code, e.value.status) == (429, "RESOURCE_EXHAUSTED")


@needs_sdk
def test_sdk_vertex_with_service_account(root: str, sim: Simulator, tmp_path: Path) -> None:
    from google.oauth2 import service_account

    path = write_service_account(tmp_path / "sa.json", sim.port)
    creds = service_account.Credentials.from_service_account_file(
        str(path), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    before = gemini_sim.state(sim).token_calls
    client = genai.Client(
        vertexai=True,
        project=PROJECT,
        location="us-central1",
        credentials=creds,
        http_options={"base_url": root, "api_version": "v1", "retry_options": {"attempts": 1}},
    )
    r = client.models.generate_content(model="gemini-2.5-flash", contents="Say hi")
    assert r.text == "Hello from the Gatewayz simulator. You said: Say hi"
    req = sim.requests[-1]
    assert req.path == (
        f"/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert req.headers["authorization"].startswith("Bearer ya29.sim-")
    assert gemini_sim.state(sim).token_calls == before + 1


# ---------------------------------------------------------------- raw wire
def _post(root: str, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(root + path, json=body, headers={"x-goog-api-key": KEY, **headers})


MSG = {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}


def _fn(parameters: dict) -> dict:
    return {**MSG, "tools": [{"functionDeclarations": [{"name": "f", "parameters": parameters}]}]}


def _gen(config: dict) -> dict:
    return {**MSG, "generationConfig": config}


STRICT = {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}
TWO_CALLS = [
    {"functionCall": {"name": "f", "args": {}}},
    {"functionCall": {"name": "g", "args": {}}},
]
ONE_ANSWER = [{"functionResponse": {"name": "f", "response": {}}}]
UNEVEN = [
    {"role": "user", "parts": [{"text": "x"}]},
    {"role": "model", "parts": TWO_CALLS},
    {"role": "user", "parts": ONE_ANSWER},
]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**MSG, "temperature": 1}, 'Unknown name "temperature"'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "role must be"),
        ({"contents": [{"parts": [{"text": "x", "inlineData": {}}]}]}, "exactly one"),
        (_fn(STRICT), 'Unknown name "additionalProperties"'),
        (_fn({"type": "OBJECT", "properties": {}}), "should be non-empty for OBJECT type"),
        ({"contents": UNEVEN}, "number of function response parts"),
        (_gen({"thinkingConfig": {"thinkingBudget": 1, "thinkingLevel": "LOW"}}), "only set one"),
        (_gen({"responseSchema": {"type": "STRING"}}), "application/json"),
    ],
)
def test_request_checks(root: str, body: dict, needle: str) -> None:
    r = _post(root, STUDIO_PATH, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT"
    assert needle in err["message"]


def test_missing_key_is_403(root: str) -> None:
    r = httpx.post(root + STUDIO_PATH, json=MSG)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_vertex_path_needs_an_issued_token(root: str) -> None:
    path = (
        "/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    r = httpx.post(root + path, json=MSG, headers={"authorization": "Bearer made-up"})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"


def test_token_endpoint_rejects_bad_grants(root: str, sim: Simulator) -> None:
    before = gemini_sim.state(sim).token_calls
    r = httpx.post(root + "/token", data={"grant_type": "password", "assertion": "a.b.c"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert gemini_sim.state(sim).token_calls == before


def _stream(root: str, body: object = MSG) -> httpx.Response:
    path = STUDIO_PATH.replace(":generateContent", ":streamGenerateContent") + "?alt=sse"
    return _post(root, path, body)


def test_faults_text_omit_usage_empty_malformed(root: str, sim: Simulator) -> None:
    sim.fault(Fault(text="Exactly this.", omit_usage=True))
    r = _post(root, STUDIO_PATH, MSG).json()
    assert r["candidates"][0]["content"]["parts"] == [{"text": "Exactly this."}]
    assert "usageMetadata" not in r
    sim.fault(Fault(empty_stream=True))
    events = [e for e in _stream(root).text.split("\r\n\r\n") if e]
    assert len(events) == 1 and '"candidatesTokenCount":0' in events[0]
    assert '"candidates"' not in events[0]
    sim.fault(Fault(malformed=True))
    assert "data: {not json" in _stream(root).text
    sim.fault(Fault(malformed=True))
    r2 = _post(root, STUDIO_PATH, MSG)
    assert r2.status_code == 200
    with pytest.raises(ValueError):
        r2.json()


def test_faults_drop_and_delays(root: str, sim: Simulator) -> None:
    sim.fault(Fault(drop_after_chunks=2))
    with pytest.raises(httpx.HTTPError):
        _stream(root)
    sim.fault(Fault(drop_after_chunks=0))
    with pytest.raises(httpx.HTTPError):
        _post(root, STUDIO_PATH, MSG)
    sim.fault(Fault(delay_s=0.2, chunk_delay_s=0.02))
    t0 = time.monotonic()
    text = _stream(root).text
    assert time.monotonic() - t0 >= 0.2 + 0.02 * 8
    assert text.count("data: ") == 9  # one per word of the answer
    sim.fault(Fault(status=503, body={"error": {"code": 503, "message": "custom"}}))
    r = _post(root, STUDIO_PATH, MSG)
    assert r.status_code == 503 and r.json()["error"]["message"] == "custom"
