"""`/openapi.json` (and so `/docs`) for every route the app serves.

FastAPI documents its own routes (`APIRoute`s); the hot paths are raw ASGI `Route`s it does not
see (api/openai_routes.py), so their path items are written here (`PATHS`, with the bodies of
api/openapi_schemas.py) and merged into FastAPI's document once, when it is first asked for. A
raw route without an entry in `PATHS` stays undocumented, which tests/api/test_openapi.py
refuses. FastAPI's own operations get their security (those that depend on api/deps.py need a
key) and the error the app really answers (OpenAI's shape, a 400 where FastAPI says 422).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route

from gatewayz.api import deps
from gatewayz.api.openapi_schemas import SCHEMAS, STR, Schema, enum, ref, rng

Operation = dict[str, Any]
Security = list[dict[str, list[str]]]

SECURITY_SCHEMES: dict[str, Schema] = {
    "BearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A Gatewayz API key: `Authorization: Bearer <key>`.",
    },
    "ApiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "A Gatewayz API key in `x-api-key`, as Anthropic's SDK sends it.",
    },
}
BEARER: Security = [{"BearerAuth": []}]
ANTHROPIC_KEYS: Security = [{"ApiKeyAuth": []}, {"BearerAuth": []}]
PUBLIC: Security = []
OPTIONAL_BEARER: Security = [{}, {"BearerAuth": []}]

_STATUS = {
    400: "Invalid request (the error names the field)",
    401: "Missing or invalid API key",
    402: "Insufficient credits",
    403: "Not allowed (key restrictions, role, registration)",
    404: "Not found (an unknown model, path or id)",
    413: "Request body too large",
    429: "Rate limited (see Retry-After)",
    501: "Not configured on this gateway",
    502: "Every provider failed",
}
AI = (400, 401, 402, 403, 404, 413, 429, 502)  # the inference routes


def _content(schema: str | Schema, media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": ref(schema) if isinstance(schema, str) else schema}}


def _errors(error: str, codes: tuple[int, ...] = ()) -> dict[str, Any]:
    content = _content(error)
    out = {str(c): {"description": _STATUS[c], "content": content} for c in codes}
    return {**out, "default": {"description": "Error", "content": content}}


def op(
    route: str,
    op_id: str,
    summary: str,
    ok: str | dict[str, Any],
    body: str | dict[str, Any] | None = None,
    *,
    sec: Security = BEARER,
    codes: tuple[int, ...] = AI,
    err: str = "OpenAIError",
    params: tuple[Schema, ...] = (),
    status: str = "200",
    desc: str = "",
) -> tuple[str, Operation]:
    """(`route`: "METHOD /path", its operation). `ok` and `body`: a JSON schema's name, or content
    by media type. The tag is the path's first segment after /v1."""
    tag = route.split()[1].removeprefix("/v1").split("/")[1]
    out: Operation = {"operationId": op_id, "summary": summary, "tags": [tag], "security": sec}
    if desc:
        out["description"] = desc
    if params:
        out["parameters"] = list(params)
    if body is not None:
        content = _content(body) if isinstance(body, str) else body
        out["requestBody"] = {"required": True, "content": content}
    success = {"description": "Success", "content": _content(ok) if isinstance(ok, str) else ok}
    out["responses"] = {status: success, **_errors(err, codes)}
    return route, out


def param(where: str, name: str, schema: Schema = STR, desc: str = "") -> Schema:
    out = {"name": name, "in": where, "required": where == "path", "schema": schema}
    return out | {"description": desc} if desc else out


def _streamed(schema: str) -> dict[str, Any]:
    sse = {"type": "string", "description": "Server-sent events (`stream: true`)"}
    return {**_content(schema), **_content(sse, "text/event-stream")}


_MODEL_ID = param("path", "model_id", desc="A model id or alias; it may contain `/`.")
_RESPONSE_ID = param("path", "response_id", desc="A stored response's id (`resp_…`).")
_VERSION = param("header", "anthropic-version", desc="Answer in Anthropic's shape.")
_BETA = param("header", "anthropic-beta", desc="Anthropic's beta features, passed on.")
_PAGE = tuple(param("query", n, desc="With anthropic-version") for n in ("after_id", "before_id"))
_MODELS = {"anyOf": [ref("ModelList"), ref("AnthropicModelList")]}
_MODEL = {"anyOf": [ref("Model"), ref("AnthropicModel")]}
_AUDIO = {**_content("Transcription"), **_content(STR, "text/plain")}
_AUDIO_DESC = "`response_format` `text`, `srt` and `vtt` answer text/plain."
_PRICES = tuple(
    param("query", f"{b}_{k}_price", {"type": "number"}, "USD per 1M tokens")
    for b in ("min", "max")
    for k in ("prompt", "completion")
)
_CATALOG_QUERY = (
    param("query", "view", enum("unique", "full")),
    param("query", "provider"),
    param("query", "modality", desc="`text->text`, `text+image->text`, …"),
    param("query", "capability", enum("function_calling", "vision", "streaming")),
    *_PRICES,
    param("query", "min_context", rng(0)),
    param("query", "q", desc="Search in id and name"),
    param("query", "sort", enum("id", "price", "context")),
    param("query", "limit", rng(1, 500) | {"default": 100}),
    param("query", "offset", rng(0) | {"default": 0}),
)
_MULTIPART = "multipart/form-data"

_OPERATIONS = (
    op(
        "POST /v1/chat/completions",
        "createChatCompletion",
        "Create a chat completion",
        _streamed("ChatCompletion"),
        "ChatCompletionRequest",
        desc="OpenAI Chat Completions; `stream: true` sends `chat.completion.chunk` events "
        "ending with `data: [DONE]`. `provider` and `cache` are Gatewayz's own fields.",
    ),
    op(
        "GET /v1/models",
        "listModels",
        "List the models",
        _content(_MODELS),
        sec=ANTHROPIC_KEYS,
        codes=(400, 401),
        params=(_VERSION, param("query", "limit", rng(1), "With anthropic-version"), *_PAGE),
    ),
    op(
        "GET /v1/models/{model_id}",
        "retrieveModel",
        "Retrieve a model",
        _content(_MODEL),
        sec=ANTHROPIC_KEYS,
        codes=(401, 404),
        params=(_MODEL_ID, _VERSION),
    ),
    op(
        "POST /v1/messages",
        "createMessage",
        "Create a message (Anthropic Messages)",
        _streamed("AnthropicMessage"),
        "MessagesRequest",
        sec=ANTHROPIC_KEYS,
        err="AnthropicError",
        params=(_VERSION, _BETA),
        desc="`stream: true` sends Anthropic's events (message_start … message_stop).",
    ),
    op(
        "POST /v1/messages/count_tokens",
        "countMessageTokens",
        "Count a prompt's tokens (estimated locally)",
        "CountTokensResponse",
        "CountTokensRequest",
        sec=ANTHROPIC_KEYS,
        codes=(400, 401, 404),
        err="AnthropicError",
        params=(_VERSION,),
    ),
    op(
        "POST /v1/responses",
        "createResponse",
        "Create a response (OpenAI Responses)",
        _streamed("Response"),
        "ResponseRequest",
        desc="`stream: true` sends the Responses events. Hosted tools and unknown fields are "
        "a 400 naming them.",
    ),
    op(
        "GET /v1/responses/{response_id}",
        "getResponse",
        "Retrieve a stored response",
        "Response",
        codes=(401, 404),
        params=(_RESPONSE_ID,),
    ),
    op(
        "DELETE /v1/responses/{response_id}",
        "deleteResponse",
        "Delete a stored response",
        "ResponseDeleted",
        codes=(401, 404),
        params=(_RESPONSE_ID,),
    ),
    op(
        "POST /v1/embeddings",
        "createEmbedding",
        "Create embeddings",
        "EmbeddingList",
        "EmbeddingRequest",
    ),
    op(
        "POST /v1/images/generations",
        "createImage",
        "Generate images",
        "ImagesResponse",
        "ImageRequest",
    ),
    op(
        "POST /v1/audio/transcriptions",
        "createTranscription",
        "Transcribe audio",
        _AUDIO,
        _content("TranscriptionRequest", _MULTIPART),
        desc=_AUDIO_DESC,
    ),
    op(
        "POST /v1/audio/translations",
        "createTranslation",
        "Translate audio into English",
        _AUDIO,
        _content("TranslationRequest", _MULTIPART),
        desc=_AUDIO_DESC,
    ),
    op(
        "GET /metrics",
        "getMetrics",
        "Prometheus metrics (text format 0.0.4)",
        _content(STR, "text/plain"),
        sec=OPTIONAL_BEARER,
        codes=(401, 404),
        desc="Needs `Authorization: Bearer <GATEWAYZ_METRICS_TOKEN>` when that is set; 404 when "
        "metrics are off.",
    ),
    op(
        "POST /auth",
        "login",
        "Log in or sign up with a Privy identity token",
        "AuthResponse",
        "LoginRequest",
        sec=PUBLIC,
        codes=(400, 401, 429, 501),
        desc="The token in the body, or as `Authorization: Bearer <Privy token>`.",
    ),
    op(
        "POST /auth/register",
        "register",
        "Sign up with an e-mail address (where Privy is not configured)",
        "AuthResponse",
        "RegisterRequest",
        sec=PUBLIC,
        codes=(400, 403, 429),
        status="201",
    ),
    op(
        "GET /catalog/models",
        "listCatalogModels",
        "The model catalog",
        "CatalogModelList",
        sec=PUBLIC,
        codes=(400,),
        params=_CATALOG_QUERY,
        desc="An unknown query parameter is a 400.",
    ),
    op(
        "GET /catalog/models/{model_id}",
        "getCatalogModel",
        "One catalog model, by canonical id",
        "CatalogModel",
        sec=PUBLIC,
        codes=(404,),
        params=(param("path", "model_id", desc="A canonical id; it may contain `/`."),),
    ),
    op(
        "GET /catalog/providers",
        "listCatalogProviders",
        "The served providers",
        "CatalogProviderList",
        sec=PUBLIC,
    ),
)
# path → method → operation: the raw routes' path items.
PATHS: dict[str, dict[str, Operation]] = {}
for _route, _operation in _OPERATIONS:
    _method, _path = _route.split()
    PATHS.setdefault(_path, {})[_method.lower()] = _operation

# FastAPI routes that read their bodies themselves, so FastAPI cannot say what they take.
_REQUEST_BODIES = {
    ("/v1/files", "post"): _content("FileUpload", _MULTIPART),
    ("/v1/batches", "post"): _content("BatchRequest"),
}


def _needs_key(route: APIRoute) -> bool:
    """Whether the route depends on api/deps.py's `caller` or one of its permission guards."""
    todo = list(route.dependant.dependencies)
    while todo:
        dep = todo.pop()
        if getattr(dep.call, "__module__", None) == deps.__name__:
            return True
        todo.extend(dep.dependencies)
    return False


def _operations(app: FastAPI, paths: dict[str, Any]) -> None:
    """Merge the raw routes' path items into FastAPI's; give FastAPI's own operations their
    security, the bodies it cannot see and the error shape the app answers."""
    for rc in iter_route_contexts(app.routes):
        route, path = rc.original_route, rc.path_format
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        for method in sorted(m.lower() for m in rc.methods or ()):
            if not isinstance(route, APIRoute):  # a raw route: its item from PATHS, if any
                if method in PATHS.get(path, {}):
                    paths.setdefault(path, {})[method] = copy.deepcopy(PATHS[path][method])
                continue
            operation = paths.get(path, {}).get(method)
            if operation is None:
                continue
            operation["security"] = BEARER if _needs_key(route) else PUBLIC
            body = _REQUEST_BODIES.get((path, method))
            if body is not None:
                operation.setdefault("requestBody", {"required": True, "content": body})
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:  # the app answers OpenAI's 400 instead
                responses["400"] = _errors("OpenAIError", (400,))["400"]
            responses.setdefault("default", _errors("OpenAIError")["default"])


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of its own routes, with the raw routes' path items merged in."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        terms_of_service=app.terms_of_service,
        contact=app.contact,
        license_info=app.license_info,
        routes=app.routes,
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    _operations(app, doc.setdefault("paths", {}))
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in SCHEMAS.items():
        if name in schemas:
            raise RuntimeError(f"the OpenAPI schema name {name!r} is taken by a FastAPI model")
        schemas[name] = copy.deepcopy(schema)
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, now unused
        if f'"#/components/schemas/{unused}"'.encode() not in orjson.dumps(doc):
            schemas.pop(unused, None)
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    return doc


def install_openapi(app: FastAPI) -> None:
    """`app.openapi()`, which /openapi.json and /docs serve: built once, kept in
    `app.openapi_schema`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
