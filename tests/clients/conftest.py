"""The client libraries people build on the official SDKs (LangChain, Pydantic AI),
pointed at a real gateway whose `openai` and `anthropic` providers are one simulator on loopback:
each test drives a library's common path and asserts what the library returns (text, tool calls
with parsed arguments, validated Pydantic objects) and, where it matters, what the provider
received (`Simulator.requests`).

Every library is tried against a model of each family: `openai/gpt-4o` reaches the simulator's
`/v1/chat/completions`, `anthropic/claude-sonnet-4-6` its `/v1/messages`, so each of the
gateway's dialects is tested both straight through and translated. The simulator calls tools only
when the request forces one (`tool_choice` required/named, Anthropic's any/tool) or when the
model's name ends with "tools": the `*_TOOLS_MODEL`s are those, for the agent loops that leave
`tool_choice` at auto. Structured output follows the request's JSON schema
(`simulators/schema.py`), so `FORECAST` is what every library must hand back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import orjson
import pytest
from pydantic import BaseModel, Field

from gatewayz.simulators import Simulator
from gatewayz.simulators.content import ECHO_PREFIX, TOOL_RESULT_PREFIX
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

OPENAI_MODEL, ANTHROPIC_MODEL = "openai/gpt-4o", "anthropic/claude-sonnet-4-6"
# Models no price list knows (priced below) whose simulated answers call the offered tools even
# under tool_choice "auto", as a real model asked for the weather would.
OPENAI_TOOLS_MODEL, ANTHROPIC_TOOLS_MODEL = "openai/sim-tools", "anthropic/claude-sim-tools"
FAMILIES = {"openai": OPENAI_MODEL, "anthropic": ANTHROPIC_MODEL}
TOOLS_MODELS = {"openai": OPENAI_TOOLS_MODEL, "anthropic": ANTHROPIC_TOOLS_MODEL}
# The provider path each family's requests reach on the simulator.
UPSTREAM_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}

PROMPT = "What is the weather in Paris?"
ANSWER = ECHO_PREFIX + PROMPT  # the simulator's echo of the last user message
TOOL_OUTPUT = "sunny in example city"  # what the `get_weather` tools below return
TOOL_ANSWER = TOOL_RESULT_PREFIX + TOOL_OUTPUT  # the answer once the tool's result came back
WEATHER_ARGS = {"city": "example city", "days": 1}  # the simulator's arguments for get_weather


class Day(BaseModel):
    day: int
    high: float


class Forecast(BaseModel):
    """A weather forecast (a nested model: its JSON schema has `$defs` and a `$ref`)."""

    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: list[Day]
    note: str | None = None


# The value the simulator generates from Forecast's schema: a library that hands this back
# sent the schema through the gateway and validated the answer against the model.
FORECAST = Forecast(
    city="example city", unit="celsius", days=[Day(day=1, high=1.5)], note="example note"
)


# A bounded rating: `minimum`/`maximum` in its JSON schema, which OpenAI's strict schemas allow
# and Anthropic's structured outputs refuse (400: "For 'integer' type, properties maximum,
# minimum are not supported"); Anthropic's SDK moves them into the description
# (`anthropic.lib._parse._transform.transform_schema`).
class Review(BaseModel):
    stars: int = Field(ge=1, le=5)
    summary: str


REVIEW = Review(stars=1, summary="example summary")


def get_weather(city: str, days: int) -> str:
    """The weather in a city for the next days."""
    return TOOL_OUTPUT if city == "example city" else "unknown city"


@pytest.fixture(scope="package")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="package")
def gateway(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = gateway_settings(tmp_path_factory.mktemp("clients"), upstream)
    gw = start_gateway(settings, upstream)
    set_price(gw, OPENAI_TOOLS_MODEL, "openai", prompt=1, completion=2)
    set_price(gw, ANTHROPIC_TOOLS_MODEL, "anthropic", prompt=1, completion=2)
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _clean(upstream: Simulator) -> None:
    upstream.clear()


@pytest.fixture(params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest) -> str:
    """The provider family behind the model (the test runs once per family)."""
    return str(request.param)


def sent(gateway: Gateway) -> list[tuple[str, dict[str, Any]]]:
    """(path, JSON body) of every inference request the provider received, oldest first."""
    return [
        (r.path, dict(orjson.loads(r.body)))
        for r in gateway.upstream.requests
        if r.path in UPSTREAM_PATHS.values()
    ]


def last_sent(gateway: Gateway, family: str) -> dict[str, Any]:
    """The body of the last inference request the provider received, which must have reached
    `family`'s path."""
    path, body = sent(gateway)[-1]
    assert path == UPSTREAM_PATHS[family]
    return body


def upstream_schema(body: dict[str, Any], family: str) -> dict[str, Any]:
    """The JSON schema of the structured output the provider was asked for."""
    if family == "openai":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema"
        return dict(fmt["json_schema"]["schema"])
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    return dict(fmt["schema"])


def upstream_tools(body: dict[str, Any], family: str) -> dict[str, dict[str, Any]]:
    """The tools the provider was offered: name → parameters schema."""
    if family == "openai":
        return {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}
    return {t["name"]: t["input_schema"] for t in body["tools"]}


def forced_tool(body: dict[str, Any], family: str) -> str | None:
    """The tool the request forced the provider to call; "*" when any tool; None when none."""
    choice = body.get("tool_choice")
    if family == "openai":
        if choice == "required":
            return "*"
        return choice["function"]["name"] if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or choice["type"] in ("auto", "none"):
        return None
    return "*" if choice["type"] == "any" else str(choice["name"])


def tool_result(body: dict[str, Any], family: str) -> tuple[str, str]:
    """(call id, content) of the tool result that ends the conversation the provider got."""
    last = body["messages"][-1]
    if family == "openai":
        assert last["role"] == "tool"
        content = last["content"]
        text = content if isinstance(content, str) else "".join(p["text"] for p in content)
        return last["tool_call_id"], text
    assert last["role"] == "user"
    (block,) = [b for b in last["content"] if b["type"] == "tool_result"]
    content = block["content"]
    text = content if isinstance(content, str) else "".join(p["text"] for p in content)
    return block["tool_use_id"], text


def assert_forecast_schema(schema: dict[str, Any]) -> None:
    """`schema` is Forecast's: the nested Day reached the provider (inline or under $defs)."""
    assert set(schema["properties"]) == {"city", "unit", "days", "note"}
    assert schema["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    day = schema["properties"]["days"]["items"]
    if "$ref" in day:
        day = schema["$defs"][day["$ref"].rsplit("/", 1)[1]]
    assert set(day["properties"]) == {"day", "high"}


# Keywords Anthropic's structured outputs (output_config.format, strict tools) refuse with a 400.
ANTHROPIC_REFUSED = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    | {"minLength", "maxLength", "maxItems"}
)


def keywords(schema: Any) -> set[str]:
    """Every key of every object anywhere in `schema` (property names included)."""
    if isinstance(schema, dict):
        return set(schema).union(*(keywords(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(keywords(v) for v in schema))
    return set()


def optional_properties(schema: Any) -> set[str]:
    """Properties, anywhere in `schema`, left out of their object's `required`: what OpenAI's
    strict mode refuses (400: "'required' is required to be supplied and to be an array
    including every key in properties")."""
    out: set[str] = set()
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            out |= set(props) - set(schema.get("required") or ())
        for value in schema.values():
            out |= optional_properties(value)
    elif isinstance(schema, list):
        for value in schema:
            out |= optional_properties(value)
    return out
