"""A SageMaker Runtime + TGI **simulator** for local runs, demos and tests.

It speaks SageMaker Runtime's real wire protocol (REST paths, rest-json errors, binary event
stream frames) so unmodified boto3 talks to it, and simulates a container behind each endpoint:
TGI, or vLLM's / SGLang's OpenAI server, or LMI v17+ (``EndpointSpec.server``), optionally as an
inference component that scales to zero (``EndpointSpec.scale_to_zero``). It is never a
production code path. Start it with ``llm-gateway emulate``.
"""

from llm_gateway.emulator.server import Emulator
from llm_gateway.emulator.spec import EndpointSpec, Fault, Pacing, ScaleToZero

__all__ = ["Emulator", "EndpointSpec", "Fault", "Pacing", "ScaleToZero"]
