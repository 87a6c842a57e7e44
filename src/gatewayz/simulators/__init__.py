"""OpenAI-compatible simulated upstream with scriptable faults.

``Simulator`` is a fast loopback HTTP server speaking the Chat Completions wire format
(non-streamed and SSE, tools, structured output, logprobs); ``Fault`` scripts the next request's
misbehaviour (error status, delays, dropped connections, empty/malformed streams)."""

from .faults import Fault
from .server import DEFAULT_MODELS, RecordedRequest, Simulator

__all__ = ["DEFAULT_MODELS", "Fault", "RecordedRequest", "Simulator"]
