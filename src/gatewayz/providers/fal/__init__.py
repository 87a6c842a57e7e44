"""The fal family: fal's synchronous endpoint (`POST https://fal.run/{app_id}`), chat through
its LLM app `fal-ai/any-llm`, images through its image apps. Its simulator is
`gatewayz.simulators.formats.fal`.
"""

from gatewayz.providers.fal.adapter import Adapter

__all__ = ["Adapter"]
