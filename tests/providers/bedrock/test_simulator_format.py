"""The simulator's Bedrock format on its own: auth, validation, faults, frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from gatewayz.providers.bedrock.eventstream import EventStreamDecoder, EventStreamError
from gatewayz.simulators import Fault, Simulator

AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)
HEADERS = {"authorization": AUTH, "x-amz-date": "20250101T000000Z"}
USER = {"role": "user", "content": [{"text": "hi"}]}
TOOL_CONFIG = {
    "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key="AKID")
    s.start_in_thread()
    yield s
    s.stop_thread()


def _post(sim: Simulator, body: Any, stream: bool = False, **headers: str) -> httpx.Response:
    url = f"http://127.0.0.1:{sim.port}/model/us.amazon.nova-pro-v1%3A0/"
    url += "converse-stream" if stream else "converse"
    return httpx.post(url, content=orjson.dumps(body), headers={**HEADERS, **headers}, timeout=5)


def _events(r: httpx.Response) -> list[tuple[str, dict]]:
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    msgs = EventStreamDecoder().feed(r.content)
    return [(m.headers[":event-type"], orjson.loads(m.payload)) for m in msgs]


@pytest.mark.parametrize(
    ("auth", "kind"),
    [
        ("", "MissingAuthenticationTokenException"),
        ("Bearer AKID", "IncompleteSignatureException"),
        (AUTH.replace("AKID/", "OTHER/"), "UnrecognizedClientException"),
    ],
)
def test_auth(sim: Simulator, auth: str, kind: str) -> None:
    r = _post(sim, {"messages": [USER]}, authorization=auth)
    assert r.status_code == 403
    assert r.headers["x-amzn-errortype"].startswith(kind + ":")
    assert r.json()["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": []}, "start with a user message"),
        ({"messages": [USER, USER]}, "alternate"),
        ({"messages": [{"role": "user", "content": [{"text": "  "}]}]}, "blank"),
        (
            {"messages": [{"role": "user", "content": [
                {"toolResult": {"toolUseId": "x", "content": []}}]}]},
            "toolConfig field must be defined",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"toolResult": {"toolUseId": "x", "content": []}}]}], "toolConfig": TOOL_CONFIG},
            "does not answer a toolUse",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"image": {"format": "png", "source": {"bytes": "***"}}}]}]},
            "base64",
        ),
    ],
)  # fmt: skip
def test_validation(sim: Simulator, body: dict, needle: str) -> None:
    r = _post(sim, body)
    assert r.status_code == 400
    assert r.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert needle in r.json()["message"]


def test_plain_and_tools(sim: Simulator) -> None:
    r = _post(sim, {"messages": [USER], "inferenceConfig": {"maxTokens": 2}})
    out = r.json()
    assert out["output"]["message"]["content"] == [{"text": "Hello from "}]
    assert out["stopReason"] == "max_tokens"
    assert out["usage"]["outputTokens"] == 2
    assert out["usage"]["totalTokens"] == out["usage"]["inputTokens"] + 2
    config = {**TOOL_CONFIG, "toolChoice": {"any": {}}}
    r = _post(sim, {"messages": [USER], "toolConfig": config})
    [block] = r.json()["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "f" and block["toolUse"]["toolUseId"].startswith("tooluse_")
    assert r.json()["stopReason"] == "tool_use"
    # Without toolChoice, a model id containing "tools" calls tools too.
    url = f"http://127.0.0.1:{sim.port}/model/sim.tools-v1/converse"
    body = orjson.dumps({"messages": [USER], "toolConfig": TOOL_CONFIG})
    r = httpx.post(url, content=body, headers=HEADERS)
    assert "toolUse" in r.json()["output"]["message"]["content"][0]


def test_stream_frames_and_faults(sim: Simulator) -> None:
    events = _events(_post(sim, {"messages": [USER]}, stream=True))
    kinds = [k for k, _ in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    assert all(p["p"] for _, p in events)  # the padding field Bedrock adds
    sim.fault(Fault(empty_stream=True, omit_usage=True))
    events = _events(_post(sim, {"messages": [USER]}, stream=True))
    assert [k for k, _ in events] == ["messageStart", "messageStop"]
    sim.fault(Fault(text="a b c", chunk_delay_s=0.01))
    events = _events(_post(sim, {"messages": [USER]}, stream=True))
    assert "".join(p["delta"]["text"] for k, p in events if k == "contentBlockDelta") == "a b c"
    sim.fault(Fault(malformed=True))
    r = _post(sim, {"messages": [USER]}, stream=True)
    dec = EventStreamDecoder()
    assert len(dec.feed(r.content)) == 1  # messageStart; the second frame fails its CRC
    with pytest.raises(EventStreamError):
        dec.feed(b"")


def test_status_fault_body_and_drop(sim: Simulator) -> None:
    sim.fault(Fault(status=429, retry_after="3", body={"message": "slow"}))
    r = _post(sim, {"messages": [USER]})
    assert (r.status_code, r.headers["retry-after"], r.json()) == (429, "3", {"message": "slow"})
    assert r.headers["x-amzn-errortype"].startswith("ThrottlingException:")
    sim.fault(Fault(drop_after_chunks=0))
    with pytest.raises(httpx.TransportError):
        _post(sim, {"messages": [USER]})
