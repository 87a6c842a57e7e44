"""The simulator's Cohere v2 format on the wire, below the gateway."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import orjson
import pytest

from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.content import ECHO_PREFIX

KEY = "co-sim-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hey"}]}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> None:
    sim.clear()


def _post(sim: Simulator, body: object, headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{sim.port}/v2/chat", json=body, headers=headers)


def _events(resp: httpx.Response) -> list[tuple[str, dict]]:
    out = []
    for block in resp.text.split("\n\n"):
        if not block:
            continue
        event, data = block.split("\n", 1)
        assert event.startswith("event: ") and data.startswith("data: ")
        payload = orjson.loads(data[6:])
        assert payload["type"] == event[7:]
        out.append((event[7:], payload))
    return out


def test_auth_and_validation(sim: Simulator) -> None:
    r = _post(sim, BODY, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["message"] == "invalid api token"
    r = _post(sim, {"model": "m", "messages": []})
    assert r.status_code == 400 and "messages" in r.json()["message"]
    r = _post(sim, {**BODY, "tool_choice": "auto"})
    assert r.status_code == 400 and "tool_choice" in r.json()["message"]
    bad_tool = {"model": "m", "messages": [{"role": "tool", "content": "x"}]}
    assert _post(sim, bad_tool).status_code == 400


def test_non_stream_shape(sim: Simulator) -> None:
    r = _post(sim, BODY).json()
    assert r["finish_reason"] == "COMPLETE"
    assert r["message"] == {
        "role": "assistant",
        "content": [{"type": "text", "text": ECHO_PREFIX + "hey"}],
    }
    assert r["usage"]["billed_units"] == {"input_tokens": 1, "output_tokens": 8}
    assert r["usage"]["tokens"]["input_tokens"] > 1


def test_stream_event_sequence(sim: Simulator) -> None:
    events = _events(_post(sim, {**BODY, "stream": True}))
    kinds = [k for k, _ in events]
    assert kinds[0] == "message-start" and kinds[1] == "content-start"
    assert kinds[-2:] == ["content-end", "message-end"]
    text = "".join(
        e["delta"]["message"]["content"]["text"] for k, e in events if k == "content-delta"
    )
    assert text == ECHO_PREFIX + "hey"
    assert events[-1][1]["delta"]["finish_reason"] == "COMPLETE"
    assert events[-1][1]["delta"]["usage"]["billed_units"]["output_tokens"] == 8


def test_fault_text_empty_and_omit_usage(sim: Simulator) -> None:
    sim.fault(Fault(text="exactly this", omit_usage=True))
    r = _post(sim, BODY).json()
    assert r["message"]["content"][0]["text"] == "exactly this" and "usage" not in r
    sim.fault(Fault(empty_stream=True))
    events = _events(_post(sim, {**BODY, "stream": True}))
    assert [k for k, _ in events] == ["message-start", "message-end"]
    assert events[-1][1]["delta"]["usage"]["billed_units"]["output_tokens"] == 0


def test_fault_status_and_drop(sim: Simulator) -> None:
    sim.fault(Fault(status=429, retry_after="4"))
    r = _post(sim, BODY)
    assert r.status_code == 429 and r.headers["retry-after"] == "4" and "message" in r.json()
    sim.fault(Fault(drop_after_chunks=0))
    with pytest.raises(httpx.HTTPError):
        _post(sim, BODY)
    sim.fault(Fault(drop_after_chunks=2, chunk_delay_s=0.01))
    with (
        pytest.raises(httpx.HTTPError),
        httpx.stream(
            "POST",
            f"http://127.0.0.1:{sim.port}/v2/chat",
            json={**BODY, "stream": True},
            headers=AUTH,
        ) as r,
    ):
        r.read()
