"""The OpenAI OpenAPI description (`../shared/specs/openai-openapi.yaml`) as a validator of what
the gateway answers: enough of JSON Schema for the Responses objects — `$ref`, `allOf`,
`anyOf`/`oneOf`, `type`, `enum`, `required`, `properties`, `items`, `additionalProperties: false`.
Problems are returned as paths, so a test shows every mismatch at once."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

SPEC = Path(__file__).resolve().parents[4] / "shared" / "specs" / "openai-openapi.yaml"
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@cache
def _schemas() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"the OpenAPI description is not at {SPEC}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open() as f:
        return dict(yaml.load(f, Loader=loader)["components"]["schemas"])


def problems(value: Any, schema_name: str) -> list[str]:
    """Where `value` does not match the named schema (empty: it matches)."""
    return _check(value, {"$ref": f"#/components/schemas/{schema_name}"}, "$")


def _check(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if "$ref" in schema:
        return _check(value, _schemas()[schema["$ref"].rsplit("/", 1)[1]], path)
    out: list[str] = []
    for sub in schema.get("allOf", ()):
        out += _check(value, sub, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            tries = [_check(value, sub, path) for sub in schema[key]]
            if all(tries):
                best = min(tries, key=len)
                out.append(f"{path}: matches no branch of {key} (closest: {best[:3]})")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        ok = any(
            isinstance(value, _TYPES[k])
            and not (k in ("integer", "number") and value is True)
            and not (k in ("integer", "number") and value is False)
            for k in kinds
        )
        if not ok:
            return [*out, f"{path}: {type(value).__name__} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                out.append(f"{path}: missing required {name!r}")
        for name, sub in props.items():
            if name in value:
                out += _check(value[name], sub, f"{path}.{name}")
        if schema.get("additionalProperties") is False:
            out += [f"{path}: unexpected {k!r}" for k in value if k not in props]
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += _check(v, schema["items"], f"{path}[{i}]")
    return out
