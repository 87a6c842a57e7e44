"""The OpenAI-compatible family: every provider that speaks `POST /chat/completions` (OpenAI,
the aggregators, self-hosted servers, Cloudflare Workers AI: providers.toml entries, no code).

Also the OpenAI dialect of our edge (`/v1/chat/completions`): the same codec serves both
directions. Its simulator is `gatewayz.simulators.formats.openai`.
"""

from gatewayz.providers.openai.adapter import Adapter

__all__ = ["Adapter"]
