"""The AWS Bedrock family: Converse and ConverseStream on bedrock-runtime, signed with SigV4,
streams in AWS's binary event-stream framing. Its simulator is
`gatewayz.simulators.formats.bedrock`.
"""

from gatewayz.providers.bedrock.adapter import Adapter

__all__ = ["Adapter"]
