"""TGI's own clients, unmodified, against the gateway: they must not notice it is not TGI."""

from __future__ import annotations

import asyncio
import re

import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import TextGenerationError
from huggingface_hub.errors import ValidationError as HFValidationError
from text_generation import AsyncClient, Client
from text_generation.errors import ValidationError as TGValidationError


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


@pytest.mark.parametrize("model", ["tgi3", "tgi082", "split"])
def test_text_generation_per_model_base_url(gateway, model):
    client = Client(f"{gateway}/models/{model}")
    response = client.generate(
        "Hello", max_new_tokens=200, stop_sequences=["."], do_sample=True, seed=3
    )
    assert response.details.finish_reason.value == "stop_sequence"
    assert response.details.seed == 3
    assert response.generated_text.endswith(".")
    streamed = list(
        client.generate_stream(
            "Hello", max_new_tokens=200, stop_sequences=["."], do_sample=True, seed=3
        )
    )
    assert streamed[-1].generated_text == response.generated_text


def test_text_generation_best_of_and_top_tokens(gateway):
    client = Client(gateway)
    response = client.generate(
        "Hi",
        max_new_tokens=3,
        best_of=2,
        do_sample=True,
        top_n_tokens=2,
        decoder_input_details=True,
    )
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


def test_inference_client_per_model_and_errors(gateway):
    client = InferenceClient(f"{gateway}/models/tgi082")
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
