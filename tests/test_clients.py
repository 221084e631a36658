"""TGI's own clients, unmodified, against the gateway: they must not notice it is not TGI.

The suite runs twice (``backend``): against models on TGI endpoints, and against models whose
containers speak OpenAI (``backend: openai``: the emulator's vLLM, LMI and SGLang), where the
gateway rebuilds TGI's answers. The clients and what they are asked are the same; the one
difference a client can see is the fields an OpenAI server has no equivalent for
(``best_of``, ``decoder_input_details``: 422 naming them).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import TextGenerationError
from huggingface_hub.errors import ValidationError as HFValidationError
from langchain_core.messages import HumanMessage
from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint
from text_generation import AsyncClient, Client
from text_generation.errors import ValidationError as TGValidationError

from llm_gateway.config import Settings
from llm_gateway.emulator import Emulator, EndpointSpec
from tests.conftest import gateway_config

# Models on OpenAI-schema containers, the default one first (what a bare base URL reaches).
OPENAI_ENDPOINTS: dict[str, dict[str, Any]] = {
    "clients-vllm": {"server": "vllm", "model_id": "Qwen/Qwen3-4B"},
    "clients-vllm-split": {"server": "vllm", "split": "random"},
    "clients-lmi": {"server": "lmi", "split": "random"},
    "clients-sglang": {"server": "sglang", "split": "bytes:5"},
}
OPENAI_MODELS: list[dict[str, Any]] = [
    {"name": "qwen", "endpoint": "clients-vllm", "backend": "openai", "model_id": "Qwen/Qwen3-4B"},
    {"name": "qwen-split", "endpoint": "clients-vllm-split", "backend": "openai"},
    {"name": "qwen-lmi", "endpoint": "clients-lmi", "backend": "openai"},
    {"name": "qwen-sglang", "endpoint": "clients-sglang", "backend": "openai", "chat_only": True},
]
# Per backend: models reached by their own base URL, and one besides the default.
PER_MODEL = [
    *[("tgi", m) for m in ("tgi3", "tgi082", "split")],
    *[("openai", m["name"]) for m in OPENAI_MODELS],
]
OTHER_MODEL = {"tgi": "tgi082", "openai": "qwen-lmi"}
TOP_N_MODELS = [p for p in PER_MODEL if p[1] != "tgi082"]  # TGI 0.8.2 has no top_n_tokens


@pytest.fixture(scope="module")
def openai_gateway(emulator: Emulator, start_gateway: Callable[..., str]) -> Iterator[str]:
    for name, spec in OPENAI_ENDPOINTS.items():
        emulator.set_endpoint(name, EndpointSpec.model_validate(spec))
    yield start_gateway(
        gateway_config(OPENAI_MODELS, default="qwen"),
        Settings(stream_commit_seconds=3.0, heartbeat_seconds=0.2),
    )
    for name in OPENAI_ENDPOINTS:
        emulator.endpoints.pop(name, None)


@pytest.fixture(scope="module", params=["tgi", "openai"])
def backend(request: pytest.FixtureRequest) -> str:
    """The default model's backend: a TGI endpoint, or an OpenAI server (vLLM)."""
    return str(request.param)


@pytest.fixture(scope="module")
def gateway(backend: str, gateway: str, request: pytest.FixtureRequest) -> str:
    """A gateway whose default model is on ``backend`` (the TGI one: the suite's own)."""
    return str(request.getfixturevalue("openai_gateway")) if backend == "openai" else gateway


def test_text_generation_generate(gateway):
    client = Client(gateway)
    response = client.generate("Why is the sky blue?", max_new_tokens=6)
    assert response.details.generated_tokens == 6
    assert response.details.finish_reason.value == "length"
    assert len(response.details.tokens) == 6
    assert response.generated_text == "".join(t.text for t in response.details.tokens)


def test_text_generation_generate_stream(gateway):
    client = Client(gateway)
    responses = list(client.generate_stream("Why is the sky blue?", max_new_tokens=5))
    assert len(responses) == 5
    assert responses[-1].details.generated_tokens == 5
    assert responses[-1].generated_text == "".join(r.token.text for r in responses)
    assert all(r.generated_text is None for r in responses[:-1])


@pytest.mark.parametrize(("backend", "model"), PER_MODEL, indirect=["backend"])
def test_text_generation_per_model_base_url(gateway, model):
    client = Client(f"{gateway}/models/{model}")
    response = client.generate(
        "Hello", max_new_tokens=200, stop_sequences=["."], do_sample=True, seed=3
    )
    assert response.details.finish_reason.value == "stop_sequence"
    assert response.details.seed == 3
    assert response.generated_text.endswith(".")  # TGI keeps the stop text
    streamed = list(
        client.generate_stream(
            "Hello", max_new_tokens=200, stop_sequences=["."], do_sample=True, seed=3
        )
    )
    assert streamed[-1].generated_text == response.generated_text


@pytest.mark.parametrize(("backend", "model"), TOP_N_MODELS, indirect=["backend"])
def test_text_generation_top_tokens_rows_as_wide_as_asked(gateway, model):
    client = Client(f"{gateway}/models/{model}")
    response = client.generate("Hi", max_new_tokens=200, top_n_tokens=2)
    details = response.details
    assert details.finish_reason.value == "eos_token" and details.tokens[-1].special
    assert len(details.top_tokens) == len(details.tokens)
    assert [len(row) for row in details.top_tokens] == [2] * len(details.tokens)  # EOS too
    streamed = list(client.generate_stream("Hi", max_new_tokens=200, top_n_tokens=2))
    assert streamed[-1].token.special
    assert [len(e.top_tokens) for e in streamed] == [2] * len(streamed)


def test_text_generation_best_of_and_top_tokens(gateway, backend):
    client = Client(gateway)

    def ask():
        return client.generate(
            "Hi",
            max_new_tokens=3,
            best_of=2,
            do_sample=True,
            top_n_tokens=2,
            decoder_input_details=True,
        )

    if backend == "openai":  # an OpenAI server returns neither other sequences nor the prompt's
        with pytest.raises(TGValidationError, match=r"`best_of` is not supported.*\(openai\)"):
            ask()
        with pytest.raises(TGValidationError, match="`decoder_input_details` is not supported"):
            client.generate("Hi", max_new_tokens=3, decoder_input_details=True)
        return
    response = ask()
    assert len(response.details.best_of_sequences) == 1
    assert len(response.details.top_tokens) == 3
    assert response.details.prefill[0].text == "Hi"


def test_text_generation_validation_errors_are_typed(gateway):
    client = Client(gateway)
    with pytest.raises(
        TGValidationError, match=re.escape("`top_n_tokens` must be >= 0 and <= 5. Given: 9")
    ):
        client.generate("Hi", top_n_tokens=9)
    # (the client checks top_k & co itself; the stop count only the server checks)
    with pytest.raises(
        TGValidationError, match=re.escape("`stop` supports up to 4 stop sequences. Given: 5")
    ):
        list(client.generate_stream("Hi", stop_sequences=list("abcde")))


def test_text_generation_async_client(gateway):
    async def run():
        client = AsyncClient(gateway)
        response = await client.generate("Hi", max_new_tokens=4)
        tokens = [r async for r in client.generate_stream("Hi", max_new_tokens=4)]
        return response, tokens

    response, tokens = asyncio.run(run())
    assert response.details.generated_tokens == 4
    assert tokens[-1].generated_text == response.generated_text


def test_inference_client_text_generation(gateway):
    client = InferenceClient(base_url=gateway)
    # InferenceClient leaves return_full_text unset and posts to the base URL (TGI's compat
    # route), where TGI defaults it to true for text-generation models: the prompt comes back.
    text = client.text_generation("Why is the sky blue?", max_new_tokens=6)
    assert isinstance(text, str) and text.startswith("Why is the sky blue?")
    out = client.text_generation("Why is the sky blue?", max_new_tokens=6, details=True)
    assert out.generated_text == text
    assert out.details.generated_tokens == 6 and out.details.finish_reason == "length"
    streamed = list(client.text_generation("Why is the sky blue?", max_new_tokens=6, stream=True))
    assert "".join(streamed) == text.removeprefix("Why is the sky blue?")
    detailed = list(
        client.text_generation("Why is the sky blue?", max_new_tokens=6, stream=True, details=True)
    )
    assert detailed[-1].details.generated_tokens == 6
    assert detailed[-1].details.input_length == 6  # "Why| is| the| sky| blue|?"
    assert detailed[-1].generated_text == text  # the full text on streams too, as TGI's


def test_inference_client_top_n_tokens(gateway):
    client = InferenceClient(base_url=gateway)
    out = client.text_generation("Hi", max_new_tokens=200, details=True, top_n_tokens=2)
    assert out.details.finish_reason == "eos_token"
    assert [len(row) for row in out.details.top_tokens] == [2] * len(out.details.tokens)
    events = list(
        client.text_generation("Hi", max_new_tokens=200, details=True, stream=True, top_n_tokens=2)
    )
    assert events[-1].token.special and events[-1].details.finish_reason == "eos_token"
    assert [len(e.top_tokens) for e in events] == [2] * len(events)


def test_inference_client_per_model_and_errors(gateway, backend):
    client = InferenceClient(f"{gateway}/models/{OTHER_MODEL[backend]}")
    out = client.text_generation("Hi", max_new_tokens=3, details=True, stream=True)
    assert [e.token.text for e in out][-1]
    with pytest.raises(HFValidationError):
        client.text_generation("Hi", max_new_tokens=3, top_k=0)
    with pytest.raises(TextGenerationError):
        list(client.text_generation("Hi", max_new_tokens=3, top_k=0, stream=True))


def test_inference_client_async(gateway):
    async def run():
        client = AsyncInferenceClient(base_url=gateway)
        text = await client.text_generation("Hi", max_new_tokens=4)
        chunks = [
            c async for c in await client.text_generation("Hi", max_new_tokens=4, stream=True)
        ]
        return text, chunks

    text, chunks = asyncio.run(run())
    assert "".join(chunks) == text.removeprefix("Hi")  # compat route: full text, as TGI


# -- LangChain's Hugging Face integration (langchain-huggingface) -------------------------------


def test_langchain_huggingface_endpoint(gateway):
    # Its defaults include typical_p=0.95 and watermark=False: an OpenAI server has no typical
    # sampling, so on those models the gateway drops it (unsupported_params: drop).
    llm = HuggingFaceEndpoint(endpoint_url=gateway, max_new_tokens=8, seed=7, do_sample=True)
    assert llm.typical_p == 0.95
    text = llm.invoke("Why is the sky blue?")
    assert isinstance(text, str) and text.strip()
    assert not text.startswith("Why is the sky blue?")  # it asks return_full_text: false
    assert "".join(llm.stream("Why is the sky blue?")) == text  # same seed, same answer
    assert asyncio.run(llm.ainvoke("Why is the sky blue?")) == text
    stopped = HuggingFaceEndpoint(
        endpoint_url=gateway, max_new_tokens=200, seed=7, do_sample=True, stop_sequences=["."]
    )
    answer = stopped.invoke("Hello")
    assert answer and "." not in answer  # LangChain cuts the stop text TGI leaves in


def test_langchain_chat_huggingface(gateway):
    llm = HuggingFaceEndpoint(endpoint_url=gateway, max_new_tokens=8, seed=7, do_sample=True)
    chat = ChatHuggingFace(llm=llm)
    message = chat.invoke([HumanMessage("Why is the sky blue?")])
    assert isinstance(message.content, str) and message.content.strip()
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] > 0
    chunks = list(chat.stream([HumanMessage("Why is the sky blue?")]))
    assert "".join(str(c.content) for c in chunks).strip()
