"""Usage (real vs estimated, CM-14), request logs, and stream edge cases end to end."""

from __future__ import annotations

import contextlib
import socket

import openai
from fastapi import FastAPI

from gatewayz.app import create_app
from gatewayz.settings import Settings
from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, request_log_rows

MSG = [{"role": "user", "content": "x" * 400}]


def test_cm_14_2_token_estimation_used_when_provider_omits_usage(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    gateway.upstream.fault(Fault(omit_usage=True, text="y" * 200))
    r = client.chat.completions.create(model="test-model", messages=MSG)
    assert r.usage.model_extra.get("estimated") is True
    assert r.usage.prompt_tokens == 100  # 400 characters / 4
    assert r.usage.completion_tokens == 50  # 200 characters / 4


def test_cm_14_2_estimation_for_streams_without_usage(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    gateway.upstream.fault(Fault(omit_usage=True, text="y" * 200))
    chunks = list(
        client.chat.completions.create(
            model="test-model", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert usage.model_extra.get("estimated") is True
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 50)


def test_cm_14_3_real_usage_preferred_over_estimation(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    gateway.upstream.fault(Fault(text="y" * 200))
    r = client.chat.completions.create(model="test-model", messages=MSG)
    # The simulator counts one token per word: one 200-character word is 1 token, not 50.
    assert r.usage.completion_tokens == 1
    assert r.usage.model_extra.get("estimated") is None


def test_every_request_leaves_a_request_log(client: openai.OpenAI, gateway: Gateway) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=MSG, extra_headers={"X-Request-ID": "log-ok-1"}
    )
    assert raw.headers["x-request-id"] == "log-ok-1"
    (row,) = request_log_rows(gateway, "log-ok-1")
    assert row["model"] == "test-model" and row["provider"] == "vllm"
    assert row["status_code"] == 200 and row["user_id"] == gateway.user_id
    assert row["prompt_tokens"] > 0 and row["total_tokens"] > row["prompt_tokens"]
    assert row["latency_ms"] >= row["upstream_ms"] >= 0
    gateway.upstream.fault(Fault(status=503))
    with contextlib.suppress(openai.InternalServerError):
        client.chat.completions.create(
            model="test-model", messages=MSG, extra_headers={"X-Request-ID": "log-fail-1"}
        )
    (row,) = request_log_rows(gateway, "log-fail-1")
    assert row["status_code"] == 503 and row["error_code"] == "upstream_unavailable"


def test_stream_log_has_ttft_and_usage(client: openai.OpenAI, gateway: Gateway) -> None:
    list(
        client.chat.completions.create(
            model="test-model", messages=MSG, stream=True, extra_headers={"X-Request-ID": "log-s-1"}
        )
    )
    (row,) = request_log_rows(gateway, "log-s-1")
    assert row["stream"] is True or row["stream"] == 1
    assert row["ttft_ms"] is not None and row["completion_tokens"] > 0


def test_client_disconnect_mid_stream_is_logged_and_upstream_dropped(gateway: Gateway) -> None:
    gateway.upstream.fault(Fault(chunk_delay_s=0.05))
    host, port = gateway.root.removeprefix("http://").split(":")
    body = b'{"model":"test-model","messages":[{"role":"user","content":"hi"}],"stream":true}'
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {gateway.api_key}\r\nX-Request-ID: log-gone-1\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(head + body)
        seen = b""
        while b'"content":"Hello' not in seen:  # hang up once real content has streamed
            data = s.recv(4096)
            assert data, "stream ended early"
            seen += data
        assert seen.startswith(b"HTTP/1.1 200")
    (row,) = request_log_rows(gateway, "log-gone-1")
    assert row["status_code"] == 499 and row["error_code"] == "client_disconnected"
    assert row["completion_tokens"] >= 1  # what was produced is still counted


def test_empty_stream_ends_cleanly(client: openai.OpenAI, gateway: Gateway) -> None:
    gateway.upstream.fault(Fault(empty_stream=True))
    chunks = list(
        client.chat.completions.create(
            model="test-model", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.completion_tokens == 0


def test_cm_17_1_create_app_returns_fastapi_instance(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path, env="test"))
    assert isinstance(app, FastAPI)
    paths = {getattr(r, "path", None) for r in app.routes} | set(app.openapi()["paths"])
    assert {"/v1/chat/completions", "/v1/models", "/v1/models/{model_id:path}", "/health"} <= paths
