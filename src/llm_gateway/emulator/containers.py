"""The containers an emulated endpoint can play besides TGI, by ``EndpointSpec.server``."""

from __future__ import annotations

from collections.abc import Callable

from llm_gateway.emulator.framing import ContainerAnswer, error_body, error_type, gson
from llm_gateway.emulator.lmi import lmi
from llm_gateway.emulator.openai_server import sglang, vllm
from llm_gateway.emulator.spec import EndpointSpec

Container = Callable[[EndpointSpec, bytes], ContainerAnswer]
CONTAINERS: dict[str, Container] = {"vllm": vllm, "sglang": sglang, "lmi": lmi}
FAILURE = "simulated failure"


def failure_body(spec: EndpointSpec, status: int) -> str:
    """The container's own error body for an injected ``model_error`` fault."""
    if spec.server == "lmi":
        return gson({"error": FAILURE, "code": status}).decode()
    shape = "flat" if spec.server == "sglang" else spec.error_shape
    return error_body(FAILURE, error_type(status), status, shape).decode()
