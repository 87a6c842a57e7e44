"""Token estimation when a provider omits usage (CM-14): about one token per 4 characters.
Real usage from the provider always wins; estimated usage is marked as such."""

from __future__ import annotations

from gatewayz.canonical.types import ChatRequest, Usage


def estimate_tokens(chars: int, chars_per_token: int = 4) -> int:
    if chars <= 0:
        return 0
    return max(1, round(chars / chars_per_token))


def prompt_chars(req: ChatRequest) -> int:
    return sum(len(m.text()) for m in req.messages)


def estimate_usage(req: ChatRequest, completion_chars: int, chars_per_token: int = 4) -> Usage:
    return Usage(
        prompt_tokens=estimate_tokens(prompt_chars(req), chars_per_token),
        completion_tokens=estimate_tokens(completion_chars, chars_per_token),
        estimated=True,
    )


def final_usage(
    reported: Usage | None, req: ChatRequest, completion_chars: int, chars_per_token: int = 4
) -> Usage:
    """The provider's usage when it sent a readable one, else an estimate (flagged `invalid`
    when the provider's report was nonsense)."""
    if reported is not None and not reported.invalid:
        return reported
    usage = estimate_usage(req, completion_chars, chars_per_token)
    usage.invalid = reported is not None
    return usage
