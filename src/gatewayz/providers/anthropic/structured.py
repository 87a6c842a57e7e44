"""Anthropic's structured outputs and effort, read from a Messages request into the canonical
request (so a provider of another family gets them as its own fields).

Anthropic's JSON outputs are `output_config.format` = `{"type": "json_schema", "schema": {...}}`
(generally available; the beta's `output_format`, with the `structured-outputs-2025-11-13`
header, still works for a transition). Canonically that is OpenAI's `response_format` of type
`json_schema` (named `output`; strict when OpenAI's strict mode takes the schema). The other
way, an OpenAI schema reaches Anthropic with the constraints it refuses moved into
descriptions (`for_anthropic`). Effort
(`output_config.effort`: low, medium, high, max) is `reasoning_effort` (max: `xhigh`).

The fields themselves stay in the request's `extra`: an Anthropic provider gets them as they
came (`request.render_request`).
"""

from __future__ import annotations

from typing import Any

from gatewayz.errors import InvalidRequest

_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh"}


def structured_in(extra: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(canonical response_format, reasoning_effort) of a Messages request's extra fields."""
    config = extra.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise InvalidRequest("output_config: Input should be an object", param="output_config")
    config = config or {}
    fmt, param = config.get("format"), "output_config.format"
    if fmt is None and "output_format" in extra:
        fmt, param = extra["output_format"], "output_format"
    response_format = None
    if fmt is not None:
        schema = fmt.get("schema") if isinstance(fmt, dict) else None
        if (
            not isinstance(fmt, dict)
            or fmt.get("type") != "json_schema"
            or not isinstance(schema, dict)
        ):
            raise InvalidRequest(
                f"{param}: Input should be {{'type': 'json_schema', 'schema': {{...}}}}",
                param=param,
            )
        spec = {"name": "output", "schema": schema, "strict": strict_for_openai(schema)}
        response_format = {"type": "json_schema", "json_schema": spec}
    effort = config.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise InvalidRequest(
            "output_config.effort: Input should be 'low', 'medium', 'high' or 'max'",
            param="output_config.effort",
        )
    return response_format, _EFFORTS.get(effort) if effort is not None else None


# Constraints OpenAI's JSON Schema allows and Anthropic's structured outputs refuse (a 400:
# "For 'integer' type, properties maximum, minimum are not supported"). They are moved into the
# field's description, as Anthropic's own SDK does: the model still reads them.
UNSUPPORTED_BY_ANTHROPIC = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "pattern",
    "format",
)


def for_anthropic(schema: Any) -> Any:
    """`schema` (OpenAI's structured output) in the subset Anthropic accepts."""
    if isinstance(schema, list):
        return [for_anthropic(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    moved: list[str] = []
    for key, value in schema.items():
        if key in UNSUPPORTED_BY_ANTHROPIC and not isinstance(value, dict | list):
            moved.append(f"{key}: {value}")
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: for_anthropic(sub) for name, sub in value.items()}
        else:
            out[key] = for_anthropic(value)
    if moved:
        note = "{" + ", ".join(moved) + "}"
        out["description"] = f"{out['description']} {note}" if out.get("description") else note
    return out


def strict_for_openai(schema: Any) -> bool:
    """Whether OpenAI's strict mode takes `schema` as it is: every object closed
    (`additionalProperties: false`) with every property required. Anthropic's outputs follow
    any schema; a schema strict mode would refuse goes to OpenAI with `strict: false`."""
    if isinstance(schema, list):
        return all(strict_for_openai(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    if isinstance(props, dict) and (
        schema.get("additionalProperties") is not False
        or set(schema.get("required") or ()) != set(props)
    ):
        return False
    return all(strict_for_openai(v) for k, v in schema.items() if k != "required")
