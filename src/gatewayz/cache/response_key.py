"""Cache keys: SHA-256 of the canonical JSON of {messages, model, generation parameters}.

What goes in, in this order:
    the key format version, the account (entries are never shared between accounts),
    the resolved canonical model id, the providers the request may use (only when it restricts
    them), the dialect its extra fields came in (only when it has some: they are forwarded to
    providers of that dialect alone), the messages, then every generation parameter:
    max_tokens, temperature, top_p, top_k, n, stop, seed, presence/frequency penalties,
    logit_bias, tools, tool_choice, parallel_tool_calls, response_format, logprobs,
    top_logprobs, reasoning_effort, thinking, Anthropic beta flags, and the extra (unmodelled)
    fields (those of content blocks and tools, such as `cache_control`, are in the messages
    and tools).
Not in it: stream / include_usage (a stored answer is replayed either way), user, metadata.

An OpenAI and an Anthropic request that parse into the same canonical request send the same
request upstream, so they share entries: the key is taken on the canonical request, after the
dialect is gone.

The semantic bucket is the same material without the last message (the prompt that is
embedded): similar prompts match only after an identical conversation, with identical
parameters, on the same model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from gatewayz.canonical.types import ChatRequest, Message, TextPart

KEY_VERSION = 1
_OPTS = orjson.OPT_SORT_KEYS


def params(req: ChatRequest) -> dict[str, Any]:
    """The generation parameters that shape an answer."""
    return {
        "max_tokens": req.max_tokens,
        "temperature": _number(req.temperature),
        "top_p": _number(req.top_p),
        "top_k": req.top_k,
        "n": req.n,
        "stop": req.stop,
        "seed": req.seed,
        "presence_penalty": _number(req.presence_penalty),
        "frequency_penalty": _number(req.frequency_penalty),
        "logit_bias": req.logit_bias,
        "tools": req.tools,
        "tool_choice": req.tool_choice,
        "parallel_tool_calls": req.parallel_tool_calls,
        "response_format": req.response_format,
        "logprobs": req.logprobs,
        "top_logprobs": req.top_logprobs,
        "reasoning_effort": req.reasoning_effort,
        "thinking": req.thinking,
        "betas": req.betas,
        "extra": req.extra,
    }


def _number(value: float | None) -> float | None:
    """0 and 0.0 are one temperature (dialects parse numbers differently)."""
    return None if value is None else float(value)


def canonical_json(
    req: ChatRequest,
    scope: str,
    model: str,
    providers: Sequence[Any] | None = None,
    messages: Sequence[Message] | None = None,
) -> bytes:
    """The bytes the key hashes (`messages` defaults to all of the request's)."""
    material = [
        KEY_VERSION,
        scope,
        model,
        providers,
        req.extra_dialect if req.extra else None,
        req.messages if messages is None else messages,
        params(req),
    ]
    return orjson.dumps(material, option=_OPTS)


def exact_key(
    req: ChatRequest, scope: str, model: str, providers: Sequence[Any] | None = None
) -> str:
    return hashlib.sha256(canonical_json(req, scope, model, providers)).hexdigest()


def semantic_bucket(
    req: ChatRequest, scope: str, model: str, providers: Sequence[Any] | None = None
) -> str:
    material = canonical_json(req, scope, model, providers, req.messages[:-1])
    return hashlib.sha256(b"semantic:" + material).hexdigest()


def prompt_text(req: ChatRequest) -> str | None:
    """The text the semantic cache embeds: the last message, when it is the user's and holds
    only text; None otherwise (such a request is looked up by exact match only)."""
    if not req.messages:
        return None
    last = req.messages[-1]
    if last.role != "user":
        return None
    content = last.content
    if isinstance(content, str):
        return content or None
    if not content or not all(isinstance(p, TextPart) for p in content):
        return None
    text = "\n".join(p.text for p in content if isinstance(p, TextPart))
    return text or None
