"""The Anthropic family: providers that speak the Messages API (`POST /v1/messages`).

Also the Anthropic dialect of our edge (`/v1/messages`): the same codec serves both
directions. Its simulator is `gatewayz.simulators.formats.anthropic`.
"""

from gatewayz.providers.anthropic.adapter import Adapter

__all__ = ["Adapter"]
