"""A provider that repeats the credentials it received in an error (some do) must not leak the
gateway's keys: the official SDKs → a gateway with one provider of every keyed family → one
simulator scripted to echo every credential header back, as a 400 (passed through to the
caller), a 503 (wrapped and failed over) and a mid-stream error event. Nothing the client
receives (status line aside: headers, body, stream events) may hold a configured secret."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway
from tests.providers.vertex.helpers import write_service_account

# One key per provider, none of them in a shape a generic pattern would catch (`sk-…`,
# `Bearer …` aside): each must be masked because it is configured.
KEYS = {
    "openai": "oa-" + secrets.token_hex(16),
    "anthropic": "ant-" + secrets.token_hex(16),
    "google-ai-studio": "AIza" + secrets.token_hex(16),
    "aws-bedrock": "AKIA" + secrets.token_hex(8).upper(),
    "cohere": "co-" + secrets.token_hex(16),
    "fal": "fal-" + secrets.token_hex(16),
}
AWS_SECRET = "aws-secret-" + secrets.token_hex(16)
AWS_SESSION = "aws-session-" + secrets.token_hex(16)
# The model each provider is asked for (pinned to it: one route, nothing to fail over to).
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "google-ai-studio": "google-ai-studio/gemini-2.5-flash",
    "google-vertex": "google-vertex/gemini-2.5-flash",
    "aws-bedrock": "aws-bedrock/us.amazon.nova-pro-v1:0",
    "cohere": "cohere/command-a-03-2025",
    "fal": "fal/google/gemini-flash-1.5",
}
MASK = "[redacted]"  # what the README promises in place of a secret
MSG: list[Any] = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator()  # no key of its own: it takes (and echoes) whatever it is sent
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("secrets")
    root = f"http://127.0.0.1:{sim.port}"
    env: dict[str, dict[str, str]] = {
        "openai": {"base_url": sim.base_url, "api_key": KEYS["openai"]},
        "anthropic": {"base_url": root, "api_key": KEYS["anthropic"]},
        "google-ai-studio": {"base_url": root, "api_key": KEYS["google-ai-studio"]},
        "google-vertex": {
            "base_url": root,
            "api_key": str(write_service_account(data_dir / "sa.json", sim.port)),
            "var:GOOGLE_CLOUD_LOCATION": "us-central1",
        },
        "aws-bedrock": {
            "base_url": root,
            "api_key": KEYS["aws-bedrock"],
            "var:AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "var:AWS_SESSION_TOKEN": AWS_SESSION,
            "var:AWS_REGION": "us-east-1",
        },
        "cohere": {"base_url": root + "/cohere", "api_key": KEYS["cohere"]},
        "fal": {"base_url": root, "api_key": KEYS["fal"]},
    }
    settings = gateway_settings(data_dir, sim, provider_env=env, upstream_429_retries=0)
    g = start_gateway(settings, sim)
    for slug, model in MODELS.items():
        set_price(g, model, slug, prompt="1", completion="2")
        assert [r.provider.slug for r in g.services.pipeline.chain(model)] == [slug]
    yield g
    g.stop()


@dataclass
class Seen:
    """Everything the client was sent: each response's headers and body."""

    responses: list[tuple[str, bytes]] = field(default_factory=list)

    def hook(self, response: httpx.Response) -> None:
        response.read()
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.responses.append((head, response.content))

    def text(self) -> str:
        return "\n".join(h + "\n" + b.decode("utf-8", "replace") for h, b in self.responses)


@pytest.fixture
def seen(sim: Simulator) -> Seen:
    sim.clear()
    return Seen()


def _openai(gw: Gateway, seen: Seen) -> openai.OpenAI:
    http = httpx.Client(trust_env=False, event_hooks={"response": [seen.hook]})
    return openai.OpenAI(
        base_url=gw.base_url,
        api_key=gw.api_key,
        max_retries=0,
        http_client=http,  # type: ignore[arg-type]
    )


def _anthropic(gw: Gateway, seen: Seen) -> anthropic.Anthropic:
    http = httpx.Client(trust_env=False, event_hooks={"response": [seen.hook]})
    return anthropic.Anthropic(
        base_url=gw.root,
        api_key=gw.api_key,
        max_retries=0,
        http_client=http,  # type: ignore[arg-type]
    )


def _secrets_of(slug: str, sim: Simulator) -> list[str]:
    """What the provider was sent as credentials (the Vertex token is minted at run time)."""
    found = [KEYS[slug]] if slug in KEYS else []
    if slug == "aws-bedrock":
        found += [AWS_SECRET, AWS_SESSION]
    sent = sim.requests[-1].headers
    for name in ("authorization", "x-api-key", "x-goog-api-key", "x-amz-security-token"):
        if name in sent:
            found.append(sent[name].split(" ", 1)[-1].split(",", 1)[0])
    return found


def _assert_clean(seen: Seen, slug: str, sim: Simulator) -> str:
    text = seen.text()
    assert seen.responses, "the client received nothing"
    for secret in _secrets_of(slug, sim):
        assert secret not in text, f"{slug}: {secret!r} reached the client"
    return text


def _echoed(sim: Simulator) -> None:
    """The provider really did repeat a credential (else the test proves nothing)."""
    sent = sim.requests[-1].headers
    assert any(h in sent for h in ("authorization", "x-api-key", "x-goog-api-key"))


SLUGS = list(MODELS)


def _openai_chat(gw: Gateway, seen: Seen, model: str, stream: bool = False) -> Any:
    client = _openai(gw, seen)
    out = client.chat.completions.create(model=model, messages=MSG, max_tokens=50, stream=stream)
    return list(out) if stream else out


def _anthropic_messages(gw: Gateway, seen: Seen, model: str, stream: bool = False) -> Any:
    client = _anthropic(gw, seen)
    out = client.messages.create(model=model, messages=MSG, max_tokens=50, stream=stream)
    return list(out) if stream else out


@pytest.mark.parametrize("slug", SLUGS)
def test_a_400_echoing_the_key_reaches_openai_callers_masked(
    gw: Gateway, sim: Simulator, seen: Seen, slug: str
) -> None:
    sim.fault(Fault(status=400, echo_credentials=True))
    with pytest.raises(openai.BadRequestError) as exc:
        _openai_chat(gw, seen, MODELS[slug])
    _echoed(sim)
    _assert_clean(seen, slug, sim)
    assert exc.value.status_code == 400
    assert "Credentials received" in exc.value.message and MASK in exc.value.message


@pytest.mark.parametrize("slug", SLUGS)
def test_a_503_echoing_the_key_reaches_anthropic_callers_masked(
    gw: Gateway, sim: Simulator, seen: Seen, slug: str
) -> None:
    sim.fault(Fault(status=503, echo_credentials=True))
    with pytest.raises(anthropic.APIStatusError) as exc:
        _anthropic_messages(gw, seen, MODELS[slug])
    _echoed(sim)
    _assert_clean(seen, slug, sim)
    assert exc.value.status_code == 503
    body = exc.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert MASK in body["error"]["message"]


@pytest.mark.parametrize("slug", SLUGS)
def test_a_503_echoing_the_key_reaches_openai_callers_masked(
    gw: Gateway, sim: Simulator, seen: Seen, slug: str
) -> None:
    sim.fault(Fault(status=503, echo_credentials=True))
    with pytest.raises(openai.APIStatusError) as exc:
        _openai_chat(gw, seen, MODELS[slug], stream=True)
    _echoed(sim)
    _assert_clean(seen, slug, sim)
    assert exc.value.status_code == 503
    assert f"provider {slug} answered 503" in exc.value.message and MASK in exc.value.message


@pytest.mark.parametrize("slug", SLUGS)
def test_a_mid_stream_error_echoing_the_key_reaches_openai_callers_masked(
    gw: Gateway, sim: Simulator, seen: Seen, slug: str
) -> None:
    sim.fault(Fault(status=503, drop_after_chunks=2, echo_credentials=True))
    with pytest.raises(openai.APIError) as exc:
        _openai_chat(gw, seen, MODELS[slug], stream=True)
    _echoed(sim)
    text = _assert_clean(seen, slug, sim)
    assert "text/event-stream" in text  # the stream had started: the error is an event
    assert MASK in exc.value.message


@pytest.mark.parametrize("slug", SLUGS)
def test_a_mid_stream_error_echoing_the_key_reaches_anthropic_callers_masked(
    gw: Gateway, sim: Simulator, seen: Seen, slug: str
) -> None:
    sim.fault(Fault(status=503, drop_after_chunks=2, echo_credentials=True))
    with pytest.raises(anthropic.APIError) as exc:
        _anthropic_messages(gw, seen, MODELS[slug], stream=True)
    _echoed(sim)
    text = _assert_clean(seen, slug, sim)
    assert "event: error" in text
    assert MASK in str(exc.value)
