"""A SageMaker Runtime + TGI **simulator** for local runs, demos and tests.

It speaks SageMaker Runtime's real wire protocol (REST paths, rest-json errors, binary event
stream frames) so unmodified boto3 talks to it, and simulates TGI behind each endpoint. It is
never a production code path. Start it with ``llm-gateway emulate``.
"""

from llm_gateway.emulator.server import Emulator
from llm_gateway.emulator.spec import EndpointSpec, Fault, Pacing

__all__ = ["Emulator", "EndpointSpec", "Fault", "Pacing"]
