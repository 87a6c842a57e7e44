"""A gateway for the schema run (`test_openai_schema.py`) and the findings it reproduces
(`test_found.py`): the e2e harness's, in front of one simulator that serves every family the run
targets (`vllm` and `openai`: the OpenAI wire format; `anthropic`: Anthropic's), with an
embedding model priced, and a few objects made beforehand (a batch input file, a batch, a stored
response) so that generated ids can name something that exists."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2
import orjson
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

CHAT_MODEL, EMBED_MODEL = "test-model", "test-embed"


@pytest.fixture(scope="package")
def sim() -> Iterator[Simulator]:
    upstream = Simulator()
    upstream.start_in_thread()
    yield upstream
    upstream.stop_thread()


@pytest.fixture(scope="package")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = gateway_settings(
        tmp_path_factory.mktemp("schema"),
        sim,
        ip_rate_limit_rpm=1_000_000,  # every request of the run comes from 127.0.0.1
        batch_poll_s=0.05,
        price_refresh_s=3600,  # the embedding model's price is set on the meter below
    )
    env = dict(settings.provider_env)
    env["vllm"] = {"base_url": sim.base_url, "models": f"{CHAT_MODEL},{EMBED_MODEL}"}
    gateway = start_gateway(settings.model_copy(update={"provider_env": env}), sim)
    set_price(gateway, EMBED_MODEL, "vllm", mode="embedding", prompt=Decimal("0.02"))
    yield gateway
    gateway.stop()


def http(gateway: Gateway) -> httpx2.Client:
    return httpx2.Client(
        base_url=gateway.base_url,
        headers={"Authorization": f"Bearer {gateway.api_key}"},
        timeout=30,
    )


def batch_line(custom_id: str, endpoint: str = "/v1/chat/completions") -> dict[str, Any]:
    if endpoint == "/v1/embeddings":
        body: dict[str, Any] = {"model": EMBED_MODEL, "input": "hello"}
    else:
        body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    return {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}


def jsonl(*lines: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


@pytest.fixture(scope="package")
def known(gw: Gateway) -> dict[str, str]:
    """Ids of objects that exist, owned by the run's user: `file` (a chat batch input file),
    `embed_file` (an embeddings one), `batch` (a batch of `file`, ended), `response` (a stored
    response)."""
    with http(gw) as c:
        ids: dict[str, str] = {}
        for name, endpoint in (("file", "/v1/chat/completions"), ("embed_file", "/v1/embeddings")):
            data = jsonl(batch_line("a", endpoint), batch_line("b", endpoint))
            r = c.post("/files", files={"file": ("in.jsonl", data)}, data={"purpose": "batch"})
            assert r.status_code == 200, r.text
            ids[name] = r.json()["id"]
        r = c.post(
            "/batches",
            json={
                "input_file_id": ids["file"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        )
        assert r.status_code == 200, r.text
        ids["batch"] = r.json()["id"]
        deadline = time.monotonic() + 30
        while c.get(f"/batches/{ids['batch']}").json()["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, "the seed batch did not end"
            time.sleep(0.05)
        r = c.post("/responses", json={"model": CHAT_MODEL, "input": "hi"})
        assert r.status_code == 200, r.text
        ids["response"] = r.json()["id"]
    return ids
