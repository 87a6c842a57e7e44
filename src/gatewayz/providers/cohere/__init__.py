"""The Cohere family: Cohere's native v2 chat API (`POST /v2/chat`) and its typed SSE events.
Its simulator is `gatewayz.simulators.formats.cohere`.
"""

from gatewayz.providers.cohere.adapter import Adapter

__all__ = ["Adapter"]
