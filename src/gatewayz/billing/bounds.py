"""The hold's token counts: true upper bounds of what a provider can bill for a request.

Prompt: the UTF-8 bytes of every text the provider reads (messages, names, tool calls and
their ids, reasoning and its signature, tool definitions, the response format's schema, the
extra fields forwarded as they are) — a byte-level or byte-fallback tokenizer never makes more
tokens than bytes — plus, from `bounds.toml`, the overhead of each message, of the request and
of each tool, and for each image or document what the most generous family counts for one.

Output: per provider, the request's `max_tokens`, capped by the model's own maximum output at
that provider (price data) when known. A request without `max_tokens` is bounded by those
maxima; when a candidate provider's maximum is unknown, the gateway sends an explicit limit
(the largest known maximum, at least `billing_default_max_tokens`) so the bound holds there too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson

from gatewayz.billing.pricing import Price
from gatewayz.canonical.types import ChatRequest, DocumentPart, ImagePart, Message, Part, TextPart

BOUNDS_FILE = Path(__file__).with_name("bounds.toml")


@dataclass(frozen=True, slots=True)
class TokenBounds:
    message: int
    request: int
    tool: int
    tools: int
    image: int
    document: int

    @classmethod
    def load(cls, path: Path = BOUNDS_FILE) -> TokenBounds:
        return _load(path)


@cache
def _load(path: Path) -> TokenBounds:
    with path.open("rb") as f:
        return TokenBounds(**tomllib.load(f))


def _utf8(text: str | None) -> int:
    if not text:
        return 0
    return len(text) if text.isascii() else len(text.encode())


def _message_bound(m: Message, b: TokenBounds) -> int:
    content = m.content
    if type(content) is str and content.isascii():  # the common message: plain text only
        n = b.message + len(content)
    else:
        n = b.message + (_utf8(content) if isinstance(content, str) else _parts_bound(content, b))
    if m.name or m.tool_call_id or m.refusal or m.reasoning or m.reasoning_signature:
        n += _utf8(m.name) + _utf8(m.tool_call_id) + _utf8(m.refusal)
        n += _utf8(m.reasoning) + _utf8(m.reasoning_signature)
    for tc in m.tool_calls or ():
        n += _utf8(tc.id) + _utf8(tc.name) + _utf8(tc.arguments)
    return n


def _parts_bound(parts: list[Part] | None, b: TokenBounds) -> int:
    n = 0
    for p in parts or ():
        if isinstance(p, TextPart):
            n += _utf8(p.text)
        elif isinstance(p, ImagePart):
            n += b.image
        elif isinstance(p, DocumentPart):
            n += _utf8(p.data) + _utf8(p.url) + _utf8(p.title)
            if p.media_type != "text/plain" or p.data is None:
                n += b.document
        else:  # audio, files: their bytes, and a document's worth for what they refer to
            n += len(orjson.dumps(p.data)) + b.document
    return n


def prompt_bound(req: ChatRequest, b: TokenBounds | None = None) -> int:
    """The most prompt tokens any provider can count for `req`."""
    b = b or TokenBounds.load()
    n = b.request + sum(_message_bound(m, b) for m in req.messages)
    if req.tools:
        n += b.tools
        for t in req.tools:
            n += b.tool + _utf8(t.name) + _utf8(t.description)
            n += len(orjson.dumps(t.parameters)) if t.parameters else 0
    if req.response_format:
        n += len(orjson.dumps(req.response_format))
    if req.extra:  # forwarded as is (server tools, cache_control, ...): counted as text
        n += len(orjson.dumps(req.extra, default=str)) + b.tools
    return n


def output_bounds(
    max_tokens: int | None, prices: dict[str, Price], default: int
) -> tuple[dict[str, int], int | None]:
    """(output tokens each candidate provider can bill per choice, the `max_tokens` to send
    when the request has none but a bound needs one, else None)."""
    if max_tokens is not None:
        return {s: min(max_tokens, p.output or max_tokens) for s, p in prices.items()}, None
    known = [p.output for p in prices.values() if p.output]
    if len(known) == len(prices):
        return {s: p.output or 0 for s, p in prices.items()}, None
    send = max([default, *known])
    return {s: min(send, p.output or send) for s, p in prices.items()}, send
