"""Anthropic's structured outputs and effort, read from a Messages request into the canonical
request (so a provider of another family gets them as its own fields).

Anthropic's JSON outputs are `output_config.format` = `{"type": "json_schema", "schema": {...}}`
(generally available; the beta's `output_format`, with the `structured-outputs-2025-11-13`
header, still works for a transition). Canonically that is OpenAI's `response_format` of type
`json_schema` (named `output`, strict: Anthropic's outputs always follow the schema). Effort
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
        spec = {"name": "output", "schema": schema, "strict": True}
        response_format = {"type": "json_schema", "json_schema": spec}
    effort = config.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise InvalidRequest(
            "output_config.effort: Input should be 'low', 'medium', 'high' or 'max'",
            param="output_config.effort",
        )
    return response_format, _EFFORTS.get(effort) if effort is not None else None
