"""Error reports to Sentry (CM-13.6), on only when `GATEWAYZ_SENTRY_DSN` is set (else the SDK is
not even imported): `init` once per process (each worker: `Services.start`), `shutdown` at its
end. Where the gateway turns an unexpected error into a 500 or a background job logs one, it
calls `report`; GatewayErrors (4xx, provider failures) are expected and never reported. An event
holds the exception (no local variables) and the tags request_id, route, provider (or job);
`scrub` (`before_send`; if it fails, the event is dropped) removes bodies, cookies, query strings,
credential headers, anything shaped like a key, and the reported request's texts (its prompt).
sentry-sdk 3.x (3.0.1) is not built on OpenTelemetry: only its opt-in OTLPIntegration imports it
(and would install a global TracerProvider and propagator); with no integration that records HTTP
calls, logs, model calls or traces, OpenTelemetry is left alone (the tests check this).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from gatewayz import __version__, background
from gatewayz.errors import GatewayError

if TYPE_CHECKING:
    from gatewayz.canonical.types import ChatRequest
    from gatewayz.settings import Settings

FILTERED = "[Filtered]"
# Keys by shape: Gatewayz's (security/keys.py: gw_{env}_{token_urlsafe}), providers' (sk-...,
# AIza..., gsk_..., xai-...), Stripe's (sk_live_, rk_, whsec_), any Bearer or Basic credential.
_SECRET = re.compile(
    r"\bgw_(?:live|test|staging|dev)_[\w-]+|\b(?:sk|rk)[-_][\w-]{8,}|\bwhsec_\w+"
    r"|\bAIza[\w-]{20,}|\bgsk_\w{8,}|\bxai-[\w-]{8,}|\b(?:Bearer|Basic)\s+[\w.~+/=-]+",
    re.IGNORECASE,
)
# `api_key=...`, `"token": "..."`, `?key=...`: the value of a credential-named field in text.
_ASSIGNED = re.compile(
    r"\b((?:x-)?api[-_]?key|key|authorization|password|secret|token|access_token|cookie)"
    r"([\"']?\s*[:=]\s*[\"']?)(?!\[Filtered\])[^\s\"'&,;}\]]+",
    re.IGNORECASE,
)
_INPUT_VALUE = re.compile(r"input_value=.*?, input_type=", re.DOTALL)  # pydantic quotes input
_SENSITIVE_KEY = re.compile(r"auth|cookie|api[-_]?key|passw|secret|token|credential|dsn", re.I)
_DROPPED_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"}
_DROPPED_KEYS = {"vars", "cookies"}  # a frame's local variables; cookies anywhere
# A stack frame's code and where it is: from our source files, never private, kept as is.
_CODE = {"context_line", "pre_context", "post_context", "abs_path", "filename", "function"}
# sentry-sdk 3.x's replacement of send_default_pii=False and include_local_variables=False.
_COLLECT_NOTHING = {
    "user_info": False,
    "stack_frame_variables": False,
    "http_bodies": [],
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "off"}},
    "url_query_params": {"mode": "off"},
    "gen_ai": {"inputs": False, "outputs": False},
}

# The texts of the request being reported, while `report` captures it (`scrub` runs inside).
_PRIVATE: ContextVar[tuple[str, ...]] = ContextVar("gatewayz_report_private", default=())
_client: Any = None  # the SDK client this process started; None while off


def init(settings: Settings) -> bool:
    """Start error reporting when a DSN is set and this process has not started it yet; True if
    started now (the caller then owns `shutdown`)."""
    global _client
    if settings.sentry_dsn is None or _client is not None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations import atexit, dedupe, excepthook, threading

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.env,
        release=__version__,
        sample_rate=settings.sentry_sample_rate,
        before_send=scrub,
        ignore_errors=[GatewayError],
        # Only these: none that patches HTTP clients, frameworks, logging, AI SDKs (they record
        # requests, prompts, answers) or sets up OpenTelemetry.
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            atexit.AtexitIntegration(),
            dedupe.DedupeIntegration(),
            excepthook.ExcepthookIntegration(),
            threading.ThreadingIntegration(),
        ],
        # Errors only: no tracing, profiling or sessions; no sentry-trace/baggage headers.
        traces_sample_rate=None,
        profile_session_sample_rate=None,
        auto_session_tracking=False,
        trace_propagation_targets=[],
        data_collection=_COLLECT_NOTHING,
        # Set here, so that the SDK's own environment variables do not apply.
        debug=False,
        spotlight=False,
        keep_alive=False,
    )
    _client = sentry_sdk.get_client()
    background.report_failure = report
    return True


async def shutdown(timeout_s: float = 2.0) -> None:
    """Send what is queued (for at most `timeout_s`), then stop reporting."""
    global _client
    client, _client = _client, None
    if client is None:
        return
    background.report_failure = None
    await asyncio.to_thread(client.close, timeout=timeout_s)
    import sentry_sdk

    sentry_sdk.get_global_scope().set_client(None)


def report(
    exc: BaseException,
    *,
    request_id: str | None = None,
    route: str | None = None,
    provider: str | None = None,
    job: str | None = None,
    request: ChatRequest | None = None,
) -> None:
    """Send an unexpected error, tagged; the texts of its request (`request`) kept out. Never
    raises: reporting must not turn one failure into another."""
    if _client is None or isinstance(exc, GatewayError):
        return
    tags = {"request_id": request_id, "route": route, "provider": provider, "job": job}
    with contextlib.suppress(Exception):
        import sentry_sdk

        token = _PRIVATE.set(_texts(request))
        try:
            sentry_sdk.capture_exception(exc, tags={k: v for k, v in tags.items() if v})
        finally:
            _PRIVATE.reset(token)


def scrub(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    """The SDK's `before_send`: the event without anything private (see the module's doc)."""
    event.pop("user", None)
    request = event.pop("request", None)
    if isinstance(request, dict):  # method, URL without query, headers but credentials
        headers = request.get("headers")
        headers = headers.items() if isinstance(headers, dict) else ()
        event["request"] = {
            "method": request.get("method"),
            "url": _without_query(request.get("url")),
            "headers": {k: v for k, v in headers if k.lower() not in _DROPPED_HEADERS},
        }
    return dict(_clean(event, _PRIVATE.get()))


def _clean(value: Any, private: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _redact(value, private)
    if isinstance(value, list | tuple):
        return [_clean(v, private) for v in value]
    if not isinstance(value, dict):
        return value
    return {
        k: FILTERED if _SENSITIVE_KEY.search(str(k)) else v if k in _CODE else _clean(v, private)
        for k, v in value.items()
        if k not in _DROPPED_KEYS
    }


def _redact(text: str, private: tuple[str, ...]) -> str:
    for t in private:
        text = text.replace(t, FILTERED)
    text = _INPUT_VALUE.sub(f"input_value={FILTERED}, input_type=", text)
    text = _SECRET.sub(FILTERED, text)
    return _ASSIGNED.sub(lambda m: f"{m[1]}{m[2]}{FILTERED}", text)


def _without_query(url: Any) -> str:
    parts = urlsplit(url if isinstance(url, str) else "")
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _texts(request: ChatRequest | None) -> tuple[str, ...]:
    """What the request says (texts, reasoning, tool arguments) as an error message may hold it:
    whole, line by line, repr- and JSON-escaped; longest first; shorter than 6 is too common."""
    texts: list[str | None] = []
    for m in request.messages if request is not None else ():
        content = m.content if isinstance(m.content, list) else [m.content]
        texts += [m.reasoning, m.refusal, *(c.arguments for c in m.tool_calls or ())]
        texts += [c if isinstance(c, str) else getattr(c, "text", None) for c in content]
    forms: set[str] = set()
    for t in texts:
        for piece in [t, *t.splitlines()] if isinstance(t, str) else ():
            forms.update((piece, repr(piece)[1:-1], json.dumps(piece)[1:-1]))
    return tuple(sorted((f for f in forms if len(f) >= 6), key=len, reverse=True))
