"""The embedded default of ``llm-gateway serve``: emulated endpoints and a matching config."""

from __future__ import annotations

from typing import Any

from llm_gateway.core.parameters import Limits
from llm_gateway.emulator.spec import EndpointSpec, Pacing, ScaleToZero


def demo_endpoints() -> dict[str, EndpointSpec]:
    """A TGI 3.x endpoint (the seed's OpenAssistant model), a TGI 0.8.2 one, a vLLM DLC
    (OpenAI bodies only on ``/invocations``) and a TGI inference component that scales to zero
    (calls must name it; the first call after idle fails and wakes it for 8 s)."""
    paced = Pacing(first_token_ms=150, token_ms=30)  # feels like a model, keeps the demo readable
    return {
        "oasst-pythia-12b-tgi": EndpointSpec(
            model_id="OpenAssistant/pythia-12b-sft-v8-7k-steps",
            tgi_version="3.x",
            limits=Limits(max_input_tokens=1024, max_total_tokens=2048),
            pacing=paced,
        ),
        "llama-2-7b-chat-tgi": EndpointSpec(
            model_id="meta-llama/Llama-2-7b-chat-hf",
            tgi_version="0.8.2",
            limits=Limits(max_input_tokens=1000, max_total_tokens=1512),
            pacing=paced,
        ),
        "qwen3-4b-vllm": EndpointSpec(
            server="vllm",
            model_id="Qwen/Qwen3-4B",
            limits=Limits(max_input_tokens=4096, max_total_tokens=8192),
            pacing=paced,
        ),
        "oasst-pythia-12b-ic": EndpointSpec(
            model_id="OpenAssistant/pythia-12b-sft-v8-7k-steps",
            limits=Limits(max_input_tokens=1024, max_total_tokens=2048),
            pacing=paced,
            inference_component="oasst-pythia-12b-ic-1",
            scale_to_zero=ScaleToZero(wake_seconds=8, idle_seconds=300),
        ),
    }


def demo_config() -> dict[str, Any]:
    """The gateway's models file for :func:`demo_endpoints` (SPEC §4's example, plus three)."""
    return {
        "default_model": "oasst-pythia-12b",
        # Clients with hard-coded model names (Claude Code, agent frameworks) reach the model
        # that relays tools: ANTHROPIC_BASE_URL=<gateway> claude -p … works against the demo.
        "model_aliases": {"claude-*": "qwen3-4b", "gpt-*": "qwen3-4b"},
        "models": [
            {
                "name": "oasst-pythia-12b",
                "endpoint": "oasst-pythia-12b-tgi",
                "model_id": "OpenAssistant/pythia-12b-sft-v8-7k-steps",
                "template": "openassistant",
                "limits": {
                    "max_input_tokens": 1024,
                    "max_total_tokens": 2048,
                    "max_stop_sequences": 4,
                    "max_best_of": 2,
                    "max_top_n_tokens": 5,
                },
                "defaults": {
                    "max_new_tokens": 256,
                    "temperature": 0.7,
                    "top_p": 0.7,
                    "top_k": 50,
                    "repetition_penalty": 1.03,
                    "stop": ["<|endoftext|>"],
                },
            },
            {
                "name": "llama-2-7b-chat",
                "endpoint": "llama-2-7b-chat-tgi",
                "model_id": "meta-llama/Llama-2-7b-chat-hf",
                "template": "llama2",
                "limits": {"max_input_tokens": 1000, "max_total_tokens": 1512},
                "defaults": {"max_new_tokens": 200},
            },
            {
                # A vLLM DLC: OpenAI bodies upstream, both dialects for clients.
                "name": "qwen3-4b",
                "endpoint": "qwen3-4b-vllm",
                "model_id": "Qwen/Qwen3-4B",
                "backend": "openai",
                "limits": {"max_input_tokens": 4096, "max_total_tokens": 8192},
                "defaults": {"max_new_tokens": 256},
            },
            {
                # An inference component that sleeps when idle: the first call after idle
                # wakes it (8 s here, minutes on AWS); streams are held meanwhile.
                "name": "oasst-pythia-12b-ic",
                "endpoint": "oasst-pythia-12b-ic",
                "inference_component": "oasst-pythia-12b-ic-1",
                "model_id": "OpenAssistant/pythia-12b-sft-v8-7k-steps",
                "template": "openassistant",
                "limits": {"max_input_tokens": 1024, "max_total_tokens": 2048},
                "defaults": {"max_new_tokens": 128},
                "wake": {"wait_seconds": 60, "retry_seconds": 2},
            },
        ],
    }
