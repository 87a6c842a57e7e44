"""Deterministic JSON values generated from a JSON Schema (the subset structured outputs and tool
parameter schemas use): used for ``response_format`` json_schema answers and tool-call arguments."""

from __future__ import annotations

import math
from typing import Any

_MAX_DEPTH = 8
_STRING_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def schema_value(schema: Any, root: Any = None, name: str = "value", depth: int = 0) -> Any:
    """A deterministic JSON value that validates against ``schema`` (the common subset: local
    $ref, const, enum, anyOf/oneOf/allOf, object, array, string, number, integer, boolean, null)."""
    if root is None:
        root = schema
    if schema is True or schema is None:
        return f"example {name}"
    if not isinstance(schema, dict):
        return None
    if depth > 64:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return schema_value(_resolve_ref(root, ref), root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return schema_value(_prefer_non_null(options, root), root, name, depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        parts = [schema_value(s, root, name, depth + 1) for s in all_of]
        if all(isinstance(p, dict) for p in parts):
            merged: dict[str, Any] = {}
            for p in parts:
                merged.update(p)
            return merged
        return parts[0]
    kind = _schema_type(schema)
    if kind == "object":
        return _object_value(schema, root, depth)
    if kind == "array":
        return _array_value(schema, root, name, depth)
    if kind == "string":
        return _string_value(schema, name)
    if kind == "integer":
        return _number_value(schema, integer=True)
    if kind == "number":
        return _number_value(schema, integer=False)
    if kind == "boolean":
        return True
    return None


def _resolve_ref(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return {}
    node = root
    for raw in ref[1:].split("/"):
        if not raw:
            continue
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return {}
    return node


def _prefer_non_null(options: list[Any], root: Any) -> Any:
    for opt in options:
        target = _resolve_ref(root, opt["$ref"]) if isinstance(opt, dict) and "$ref" in opt else opt
        if not (isinstance(target, dict) and target.get("type") == "null"):
            return opt
    return options[0]


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        real = [k for k in kind if k != "null"]
        return str(real[0]) if real else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"


def _object_value(schema: dict[str, Any], root: Any, depth: int) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    required = schema.get("required")
    required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
    # Past a nesting depth only required members are generated, so recursive schemas terminate.
    names = list(props) if depth < _MAX_DEPTH else [n for n in props if n in required]
    out = {n: schema_value(props[n], root, n, depth + 1) for n in names}
    for n in required:
        if n not in out:
            out[n] = f"example {n}"
    return out


def _array_value(schema: dict[str, Any], root: Any, name: str, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    items = schema.get("items")
    if isinstance(items, list):  # draft-4 tuple form
        prefix, items = items, schema.get("additionalItems")
    out: list[Any] = []
    if isinstance(prefix, list):
        out = [schema_value(s, root, name, depth + 1) for s in prefix]
    min_items = schema.get("minItems")
    max_items = schema.get("maxItems")
    want = min_items if isinstance(min_items, int) else (0 if depth >= _MAX_DEPTH else 1)
    if isinstance(max_items, int):
        want = min(want, max_items)
    if items is not False:
        while len(out) < want:
            out.append(schema_value(items if items is not None else {}, root, name, depth + 1))
    return out


def _string_value(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    value = _STRING_FORMATS.get(fmt if isinstance(fmt, str) else "", f"example {name}")
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    if isinstance(min_len, int) and len(value) < min_len:
        value += "x" * (min_len - len(value))
    if isinstance(max_len, int) and len(value) > max_len:
        value = value[:max_len]
    return value


def _number_value(schema: dict[str, Any], integer: bool) -> int | float:
    value: float = 1 if integer else 1.5
    step = 1 if integer else 0.5
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(lo, int | float) and not isinstance(lo, bool) and value < lo:
        value = lo
    if isinstance(xlo, int | float) and not isinstance(xlo, bool) and value <= xlo:
        value = math.floor(xlo) + 1 if integer else xlo + step
    if isinstance(hi, int | float) and not isinstance(hi, bool) and value > hi:
        value = hi
    if isinstance(xhi, int | float) and not isinstance(xhi, bool) and value >= xhi:
        value = math.ceil(xhi) - 1 if integer else xhi - step
    multiple = schema.get("multipleOf")
    if isinstance(multiple, int | float) and not isinstance(multiple, bool) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
    return int(value) if integer else float(value)
