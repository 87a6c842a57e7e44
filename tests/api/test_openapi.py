"""`/openapi.json` and `/docs` (api/openapi_doc.py): every route the app serves is documented,
the raw-ASGI hot paths too, with security, request bodies and the answers (success and error)
in the shapes the gateway really sends, in a valid OpenAPI 3.1 document."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from gatewayz.app import create_app
from gatewayz.settings import Settings
from tests.e2e.harness import Gateway

# FastAPI's own pages: the document itself and its viewers.
DOC_PAGES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
ANTHROPIC_SHAPED = {
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/v1/models/{model_id}",
}
# Public: no key (the catalog and status pages, health, accounts' sign-in, the plans, the web
# console's static files).
PUBLIC = {"/auth", "/auth/register", "/health", "/ready", "/plans", "/api/stripe/webhook"}
PUBLIC_PREFIXES = ("/catalog/", "/status", "/console")
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")))


@pytest.fixture(scope="module")
def doc(app: FastAPI) -> Doc:
    return app.openapi()


def served(app: FastAPI) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the app serves, routers' routes included; HEAD
    goes with GET. A route without methods (a mounted app) counts as "*", so it is never
    documented."""
    out: set[tuple[str, str]] = set()
    for rc in iter_route_contexts(app.routes):
        if rc.path_format in DOC_PAGES:
            continue
        methods = set(rc.methods or {"*"})
        if "GET" in methods:
            methods.discard("HEAD")
        out |= {(m, rc.path_format) for m in methods}
    return out


def operations(doc: Doc) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def resolve(doc: Doc, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def request_schema(doc: Doc, path: str, media: str = "application/json") -> dict[str, Any]:
    body = doc["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    return resolve(doc, body["content"][media]["schema"])


def problems(doc: Doc, schema: dict[str, Any], value: Any) -> list[str]:
    """How `value` breaks `schema`, whose `$ref`s point into the document's components."""
    validator = Draft202012Validator({"components": doc["components"], **schema})
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


# ---- (1) every route is documented


def test_every_route_the_app_serves_is_in_openapi_json(app: FastAPI, doc: Doc) -> None:
    routes = served(app)
    # The raw-ASGI hot paths and the FastAPI routers' routes are both enumerated.
    assert {("POST", "/v1/chat/completions"), ("DELETE", "/v1/responses/{response_id}")} <= routes
    assert {("POST", "/v1/audio/translations"), ("GET", "/user/balance")} <= routes
    missing = sorted(f"{m} {p}" for m, p in routes if m.lower() not in doc["paths"].get(p, {}))
    assert not missing, f"routes missing from /openapi.json: {missing}"
    documented = {(m.upper(), p) for m, p, _ in operations(doc)}
    assert documented == routes  # and nothing documented that is not served


def test_a_raw_route_added_without_docs_is_caught(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    app.router.routes.append(
        Route("/v1/new-thing", lambda scope, receive, send: None, methods=["POST"])
    )
    doc = app.openapi()
    assert app.openapi() is doc is app.openapi_schema  # built once
    missing = {(m, p) for m, p in served(app) if m.lower() not in doc["paths"].get(p, {})}
    assert missing == {("POST", "/v1/new-thing")}


def test_every_operation_has_summary_tags_security_and_answers(doc: Doc) -> None:
    schemes = doc["components"]["securitySchemes"]
    for method, path, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert op.get("summary") and op.get("tags"), where
        assert "security" in op, where
        assert all(name in schemes for req in op["security"] for name in req), where
        assert any(code.startswith("2") for code in op["responses"]), where
        error = op["responses"]["default"]["content"]["application/json"]["schema"]
        assert error["$ref"].rsplit("/", 1)[1] in ("OpenAIError", "AnthropicError"), where
        assert "422" not in op["responses"], where  # the app answers a 400 instead
        if path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            assert op["security"] == [], where
        elif path in ANTHROPIC_SHAPED:
            assert {"ApiKeyAuth": []} in op["security"], where
            assert {"BearerAuth": []} in op["security"], where
        elif path != "/metrics":
            assert op["security"] == [{"BearerAuth": []}], where
    metrics = doc["paths"]["/metrics"]["get"]
    assert {} in metrics["security"] and "text/plain" in metrics["responses"]["200"]["content"]


# ---- (2) a valid OpenAPI 3.1 document


def test_the_document_is_valid_openapi_3_1(doc: Doc) -> None:
    assert doc["openapi"].startswith("3.1.")
    schemes = {
        name: {k: v for k, v in scheme.items() if k != "description"}
        for name, scheme in doc["components"]["securitySchemes"].items()
    }
    assert schemes == {
        "BearerAuth": {"type": "http", "scheme": "bearer"},
        "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    }
    validate(doc)  # openapi-spec-validator: the OpenAPI 3.1 schema, and every $ref resolves
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # each a valid JSON Schema 2020-12
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))


# ---- (3) the request and answer schemas


def _fields(schema: dict[str, Any]) -> set[str]:
    return set(schema["properties"])


def test_request_schemas_name_the_fields_we_accept(doc: Doc) -> None:
    chat = request_schema(doc, "/v1/chat/completions")
    assert {"model", "messages", "stream", "tools"} <= _fields(chat)
    assert {"stream_options", "tool_choice", "parallel_tool_calls", "functions", "function_call",
            "response_format", "logprobs", "top_logprobs", "n", "stop", "seed", "temperature",
            "top_p", "top_k", "max_tokens", "max_completion_tokens", "user", "provider",
            "cache"} <= _fields(chat)  # fmt: skip
    assert set(chat["required"]) == {"model", "messages"}
    assert chat["additionalProperties"] is True  # unknown fields go on to the provider

    embeddings = request_schema(doc, "/v1/embeddings")
    assert {"model", "input", "dimensions", "encoding_format", "user"} <= _fields(embeddings)
    assert set(embeddings["required"]) == {"model", "input"}
    images = request_schema(doc, "/v1/images/generations")
    assert {"model", "prompt", "n", "size", "quality", "style", "response_format", "user"} <= (
        _fields(images)
    )
    assert images["properties"]["n"] == {"type": "integer", "minimum": 1, "maximum": 10}

    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        audio = request_schema(doc, path, "multipart/form-data")
        assert {"file", "model", "prompt", "response_format", "temperature"} <= _fields(audio)
        assert audio["properties"]["file"]["format"] == "binary"
        assert set(audio["required"]) == {"file", "model"}
    transcriptions = request_schema(doc, "/v1/audio/transcriptions", "multipart/form-data")
    assert {"language", "timestamp_granularities[]"} <= _fields(transcriptions)

    responses = request_schema(doc, "/v1/responses")
    assert {"model", "input", "instructions", "tools", "tool_choice", "text", "reasoning",
            "max_output_tokens", "store", "previous_response_id", "stream", "include",
            "metadata"} <= _fields(responses)  # fmt: skip
    assert responses["additionalProperties"] is False  # unknown fields are a 400
    messages = request_schema(doc, "/v1/messages")
    assert {"model", "messages", "max_tokens", "system", "stream", "tools", "thinking"} <= (
        _fields(messages)
    )
    assert {"model", "messages"} <= _fields(request_schema(doc, "/v1/messages/count_tokens"))
    assert {"email"} <= _fields(request_schema(doc, "/auth/register"))
    assert {"token", "new_api_key"} <= _fields(request_schema(doc, "/auth"))


def test_error_answers_have_each_dialects_shape(doc: Doc) -> None:
    def error(path: str, method: str = "post", status: str = "400") -> dict[str, Any]:
        response = doc["paths"][path][method]["responses"][status]
        return resolve(doc, response["content"]["application/json"]["schema"])

    openai_error = error("/v1/chat/completions")
    inner = resolve(doc, openai_error["properties"]["error"])
    assert set(inner["required"]) == {"message", "type", "param", "code"}
    assert error("/v1/embeddings", status="402") == openai_error
    assert error("/user/api-keys/{key_id}", "patch") == openai_error  # FastAPI's 422, as sent
    anthropic_error = error("/v1/messages")
    assert anthropic_error["properties"]["type"] == {"type": "string", "const": "error"}
    assert {"type", "message"} <= set(anthropic_error["properties"]["error"]["required"])


def test_sdk_shaped_requests_match_the_request_schemas(doc: Doc) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": True,
            "stream_options": {"include_usage": True}, "tools": tools, "tool_choice": "auto",
            "response_format": {"type": "json_object"}, "max_tokens": 100, "stop": ["\n"],
            "provider": {"order": ["openai"], "allow_fallbacks": False}, "cache": {"ttl": 60},
            "some_new_openai_field": 1}  # fmt: skip
    cases = {
        "/v1/chat/completions": chat,
        "/v1/embeddings": {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8},
        "/v1/images/generations": {"model": "dall-e-3", "prompt": "a cat", "size": "1024x1024"},
        "/v1/responses": {"model": "gpt-4o", "input": "Hi", "store": False, "text": {}},
        "/v1/messages": {"model": "claude", "max_tokens": 10, "messages": chat["messages"]},
    }
    for path, body in cases.items():
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert problems(doc, schema["schema"], body) == [], path
    chat_schema = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]
    assert problems(doc, chat_schema["application/json"]["schema"], {"messages": []})
    responses = doc["paths"]["/v1/responses"]["post"]["requestBody"]["content"]
    assert problems(doc, responses["application/json"]["schema"], {"model": "m", "prompt": {}})


# ---- (4) a running gateway serves the document, the docs page and answers as documented


def test_openapi_json_and_docs_answer_on_a_running_gateway(gw: Gateway) -> None:
    r = httpx2.get(f"{gw.root}/openapi.json", timeout=10)
    assert r.status_code == 200
    served_doc = r.json()
    assert {"/v1/chat/completions", "/v1/messages", "/metrics", "/catalog/models"} <= set(
        served_doc["paths"]
    )
    assert "ApiKeyAuth" in served_doc["components"]["securitySchemes"]
    page = httpx2.get(f"{gw.root}/docs", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/openapi.json" in page.text and "swagger" in page.text.lower()


def _check(doc: Doc, response: httpx2.Response, template: str, status: int) -> None:
    """The answer has the status the test expects, and the media type and schema the document
    gives for it (or for `default`)."""
    method = response.request.method.lower()
    assert response.status_code == status, (template, response.text[:300])
    answers = doc["paths"][template][method]["responses"]
    documented = answers.get(str(status)) or answers["default"]
    media = response.headers["content-type"].split(";")[0]
    assert media in documented["content"], (template, media)
    if media == "application/json":
        schema = documented["content"][media]["schema"]
        assert problems(doc, schema, response.json()) == [], (template, status)


def test_the_answers_match_the_documented_schemas(gw: Gateway) -> None:
    doc = httpx2.get(f"{gw.root}/openapi.json", timeout=10).json()
    bearer = {"Authorization": f"Bearer {gw.api_key}"}
    anthropic = {"x-api-key": gw.api_key, "anthropic-version": "2023-06-01"}
    say_hi = [{"role": "user", "content": "hi"}]
    with httpx2.Client(base_url=gw.root, timeout=30) as c:

        def check(template: str, status: int, method: str, url: str, **kw: Any) -> Any:
            response = c.request(method, url, **kw)
            _check(doc, response, template, status)
            return response

        chat = {"model": "test-model", "messages": say_hi}
        check(
            "/v1/chat/completions", 200, "POST", "/v1/chat/completions", json=chat, headers=bearer
        )
        check("/v1/chat/completions", 401, "POST", "/v1/chat/completions", json=chat)
        check("/v1/chat/completions", 400, "POST", "/v1/chat/completions", json={}, headers=bearer)
        message = {"model": "test-model", "max_tokens": 20, "messages": say_hi}
        check("/v1/messages", 200, "POST", "/v1/messages", json=message, headers=anthropic)
        check("/v1/messages", 401, "POST", "/v1/messages", json=message)
        count = {"model": "test-model", "messages": say_hi}
        check("/v1/messages/count_tokens", 200, "POST", "/v1/messages/count_tokens", json=count,
              headers=anthropic)  # fmt: skip
        embed = {"model": "simulated/embed", "input": ["a", "b"]}
        check("/v1/embeddings", 200, "POST", "/v1/embeddings", json=embed, headers=bearer)
        image = {"model": "simulated/image", "prompt": "a cat"}
        check("/v1/images/generations", 200, "POST", "/v1/images/generations", json=image,
              headers=bearer)  # fmt: skip
        created = check("/v1/responses", 200, "POST", "/v1/responses",
                        json={"model": "test-model", "input": "hi"}, headers=bearer)  # fmt: skip
        stored = f"/v1/responses/{created.json()['id']}"
        for method in ("GET", "DELETE"):
            check("/v1/responses/{response_id}", 200, method, stored, headers=bearer)
        check("/v1/responses/{response_id}", 404, "GET", stored, headers=bearer)
        for headers in (bearer, anthropic):
            check("/v1/models", 200, "GET", "/v1/models", headers=headers)
            check("/v1/models/{model_id}", 200, "GET", "/v1/models/test-model", headers=headers)
        check("/v1/models/{model_id}", 200, "GET", "/v1/models/openai%2Fgpt-4o", headers=bearer)
        check("/catalog/models", 200, "GET", "/catalog/models")
        check("/catalog/models", 400, "GET", "/catalog/models?colour=blue")
        check("/catalog/models/{model_id}", 404, "GET", "/catalog/models/nobody/nothing")
        check("/catalog/providers", 200, "GET", "/catalog/providers")
        check("/metrics", 200, "GET", "/metrics")
        check("/auth", 501, "POST", "/auth", json={"token": "x"})  # Privy is not configured
        check("/user/balance", 200, "GET", "/user/balance", headers=bearer)
        check("/user/balance", 401, "GET", "/user/balance")
        check("/status/incidents", 400, "GET", "/status/incidents?limit=0")


def _wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * round(seconds * rate))
    return buf.getvalue()


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_audio_answers_match_the_documented_schemas(gw: Gateway, path: str, fmt: str) -> None:
    doc = httpx2.get(f"{gw.root}/openapi.json", timeout=10).json()
    form = {"model": "simulated/whisper", "response_format": fmt}
    response = httpx2.post(
        gw.root + path,
        headers={"Authorization": f"Bearer {gw.api_key}"},
        files={"file": ("a.wav", _wav(), "audio/wav")},
        data=form,
        timeout=30,
    )
    _check(doc, response, path, 200)
    assert (
        problems(doc, request_schema(doc, path, "multipart/form-data"), form | {"file": ""}) == []
    )
