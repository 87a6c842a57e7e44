"""The Gemini family: Google AI Studio's `generateContent` API (key in `x-goog-api-key`).

Vertex AI speaks the same bodies (`gatewayz.providers.vertex` builds on this package). Its
simulator is `gatewayz.simulators.formats.gemini`.
"""

from gatewayz.providers.gemini.adapter import Adapter

__all__ = ["Adapter"]
