"""What the edge accepts from any dialect before a request goes further: model ids from a
documented character set, and numbers every provider and our ledger can hold.

Model ids: 1–200 characters, letters, digits and `. _ - : / @` only, with no empty, `.` or
`..` segment between slashes. That covers every id providers use (`gpt-4o`,
`accounts/fireworks/models/llama-v3p3-70b-instruct`, `@cf/meta/llama-3.1-8b-instruct`,
`anthropic.claude-3-5-sonnet-20241022-v2:0`, `claude-3-5-sonnet-v2@20241022`,
`deepseek/deepseek-r1:free`) and nothing that could change the meaning of an upstream URL or
request line (spaces, control characters, `?`, `#`, `%`, dot segments). The length is the
request log's column.

Output tokens: at most 2³¹−1 (providers declare the field as a 32-bit integer; a larger value can
never be honoured), so holds stay far inside the ledger's 64-bit amounts.

Token counts a provider reports: non-negative integers (an integral float such as `12.0` is
read as 12) up to 10⁸, ten times the largest context window served; anything else (negative,
10¹², strings, booleans) is not a usage report (`token_count` raises `BadUsage`) and the
gateway falls back to its estimate.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from gatewayz.errors import InvalidRequest

MODEL_ID_MAX_CHARS = 200
MAX_OUTPUT_TOKENS = 2**31 - 1
MAX_REPORTED_TOKENS = 10**8
_MODEL_ID = re.compile(r"[A-Za-z0-9._:/@\-]+")
_DOT_SEGMENTS = frozenset({"", ".", ".."})


def model_id_problem(model: object) -> str | None:
    """Why `model` is not an acceptable model id, or None when it is."""
    if not isinstance(model, str) or not model:
        return "it must be a non-empty string"
    if len(model) > MODEL_ID_MAX_CHARS:
        return f"it is longer than {MODEL_ID_MAX_CHARS} characters"
    if not _MODEL_ID.fullmatch(model):
        return "model ids may contain only letters, digits and . _ - : / @"
    if not _DOT_SEGMENTS.isdisjoint(model.split("/")):
        return "it is, or has between slashes, an empty, '.' or '..' segment"
    return None


_ACCEPTED: set[str] = set()  # ids already checked (a few hundred in practice), bounded
_ACCEPTED_MAX = 4096


def json_object(body: bytes | str) -> dict[str, Any]:
    """A request body that must be one JSON object; else a 400 saying what it is instead."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return raw


def check_model_id(model: object, param: str = "model") -> str:
    """`model` when it is an acceptable model id; else a 400 naming `param`."""
    if isinstance(model, str) and model in _ACCEPTED:
        return model
    problem = model_id_problem(model)
    if problem is None:
        assert isinstance(model, str)
        if len(_ACCEPTED) < _ACCEPTED_MAX:
            _ACCEPTED.add(model)
        return model
    shown = repr(model)[:80] if isinstance(model, str) else type(model).__name__
    raise InvalidRequest(f"Invalid value for '{param}' ({shown}): {problem}.", param=param)


def check_output_tokens(value: int | None, param: str) -> int | None:
    """An output-token limit within what providers can honour; else a 400 naming `param`."""
    if value is not None and value > MAX_OUTPUT_TOKENS:
        raise InvalidRequest(
            f"Invalid value for '{param}': at most {MAX_OUTPUT_TOKENS} tokens, got {value}.",
            param=param,
        )
    return value


class BadUsage(ValueError):
    """A provider's usage report that is not one (negative, absurd or mistyped counts)."""


def token_count(value: object) -> int:
    """A token count a provider reported, validated; BadUsage when it is not a plausible one."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadUsage(f"token count {value!r:.40} is not an integer")
    if not 0 <= value <= MAX_REPORTED_TOKENS:
        raise BadUsage(f"token count {value} is out of range")
    return value


def optional_count(value: object) -> int | None:
    """`token_count` for an optional field (None stays None)."""
    return None if value is None else token_count(value)
