"""The Vertex family: Gemini on Google Cloud Vertex AI, with an OAuth token minted from a
service account. The bodies are Gemini's (`gatewayz.providers.gemini`); the path, the auth and
the model list are Vertex's own. Its simulator is `gatewayz.simulators.formats.vertex` (with
the fake OAuth token endpoint).
"""

from gatewayz.providers.vertex.adapter import Adapter

__all__ = ["Adapter"]
