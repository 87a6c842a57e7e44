"""Cloudflare Workers AI through its OpenAI-compatible endpoint: the account id fills the
`{CLOUDFLARE_ACCOUNT_ID}` placeholder of the base URL, canonical ids map to `@cf/...` ids."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from gatewayz.providers.registry import load_registry
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.content import ECHO_PREFIX
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

TOKEN = "cf-token"
SLUG = "cloudflare-workers-ai"
PATH = "/client/v4/accounts/acc123/ai/v1/chat/completions"
MSG = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=TOKEN)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    base = f"http://127.0.0.1:{sim.port}/client/v4/accounts/{{CLOUDFLARE_ACCOUNT_ID}}/ai/v1"
    env = {SLUG: {"api_key": TOKEN, "var:CLOUDFLARE_ACCOUNT_ID": "acc123", "base_url": base}}
    g = start_gateway(
        gateway_settings(
            tmp_path_factory.mktemp("gw"), sim, provider_env=env, upstream_429_retries=0
        ),
        sim,
    )
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> None:
    sim.clear()


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def _upstream(sim: Simulator) -> dict:
    seen = [r for r in sim.requests if r.method == "POST"]
    assert [r.path for r in seen] == [PATH]
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    return seen[0].json


def test_default_base_url_gets_the_account_id(gw: Gateway) -> None:
    settings = gw.settings.model_copy(
        update={"provider_env": {SLUG: {"api_key": TOKEN, "var:CLOUDFLARE_ACCOUNT_ID": "acc9"}}}
    )
    p = load_registry(settings).get(SLUG)
    assert p is not None and p.enabled
    assert p.base_url == "https://api.cloudflare.com/client/v4/accounts/acc9/ai/v1"
    assert p.env == {"CLOUDFLARE_ACCOUNT_ID": "acc9"}


def test_canonical_id_reaches_the_account_path(client: openai.OpenAI, sim: Simulator) -> None:
    r = client.chat.completions.create(model="meta-llama/llama-3.3-70b-instruct", messages=MSG)
    assert r.model == "meta-llama/llama-3.3-70b-instruct"
    assert r.choices[0].message.content == ECHO_PREFIX + "Say hello"
    assert r.usage is not None and r.usage.prompt_tokens == 3
    assert _upstream(sim)["model"] == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def test_native_cf_id_streams(client: openai.OpenAI, sim: Simulator) -> None:
    chunks = list(
        client.chat.completions.create(
            model="@cf/meta/llama-3.1-8b-instruct",
            messages=MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ECHO_PREFIX + "Say hello"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 3
    assert _upstream(sim)["model"] == "@cf/meta/llama-3.1-8b-instruct"


def test_upstream_error_is_mapped(client: openai.OpenAI, sim: Simulator) -> None:
    sim.fault(Fault(status=429, retry_after="2"))
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="meta-llama/llama-3.1-8b-instruct", messages=MSG)
    assert e.value.response.headers["retry-after"] == "2"
    assert _upstream(sim)["model"] == "@cf/meta/llama-3.1-8b-instruct"
