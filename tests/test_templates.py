"""Prompt templates byte for byte with reference/prompt-templates.md's worked examples.

Messages throughout: system ``S``, user ``U1``, assistant ``A1``, user ``U2``. Built-in families
render for TGI's raw-prompt path, so a BOS the tokenizer adds itself is not in the string.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_gateway.core.errors import GatewayError
from llm_gateway.templates import FAMILIES, template_for
from llm_gateway.templates.jinja import JinjaTemplate
from llm_gateway.templates.messages import Message

S, U1, A1, U2 = (
    Message("system", "S"),
    Message("user", "U1"),
    Message("assistant", "A1"),
    Message("user", "U2"),
)
WITH_SYSTEM = [S, U1, A1, U2]
NO_SYSTEM = [U1, A1, U2]
JINJA = json.loads((Path(__file__).parent / "fixtures" / "chat_templates.json").read_text())[
    "templates"
]

# family -> (messages, expected) from the reference (§3.x "Render"/examples)
FIXTURES = {
    "openassistant": [
        (
            NO_SYSTEM,
            "<|prompter|>U1<|endoftext|><|assistant|>A1<|endoftext|><|prompter|>U2<|endoftext|><|assistant|>",
        ),
        (
            WITH_SYSTEM,
            "<|system|>S<|endoftext|><|prompter|>U1<|endoftext|><|assistant|>A1<|endoftext|>"
            "<|prompter|>U2<|endoftext|><|assistant|>",
        ),
    ],
    # §3.2: '<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]' minus the first <s>
    "llama2": [
        (WITH_SYSTEM, "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]"),
        (NO_SYSTEM, "[INST] U1 [/INST] A1 </s><s>[INST] U2 [/INST]"),
    ],
    "llama3": [
        (
            WITH_SYSTEM,
            "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            "A1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
    ],
    # §3.4 Mistral tokenizer V1 ground truth '<s> [INST] S\n\nU1 [/INST] A1</s> [INST] U2 [/INST]'
    # without '<s> ' (TGI's tokenizer adds BOS and SentencePiece's leading space itself)
    "mistral": [
        (WITH_SYSTEM, "[INST] S\n\nU1 [/INST] A1</s> [INST] U2 [/INST]"),
        (NO_SYSTEM, "[INST] U1 [/INST] A1</s> [INST] U2 [/INST]"),
    ],
    "falcon": [
        (WITH_SYSTEM, "S\n\nUser: U1\n\nAssistant: A1\n\nUser: U2\n\nAssistant:"),
        (NO_SYSTEM, "\n\nUser: U1\n\nAssistant: A1\n\nUser: U2\n\nAssistant:"),
    ],
    "starchat": [
        (
            WITH_SYSTEM,
            "<|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n"
            "<|assistant|>\n",
        ),
        (
            NO_SYSTEM,
            "<|system|>\n<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n"
            "<|assistant|>\n",
        ),
    ],
    "vicuna": [
        (WITH_SYSTEM, "S USER: U1 ASSISTANT: A1</s>USER: U2 ASSISTANT:"),
        (
            NO_SYSTEM,
            "A chat between a curious user and an artificial intelligence assistant. The assistant "
            "gives helpful, detailed, and polite answers to the user's questions. "
            "USER: U1 ASSISTANT: A1</s>USER: U2 ASSISTANT:",
        ),
    ],
    "zephyr": [
        (
            WITH_SYSTEM,
            "<|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n<|assistant|>\n",
        ),
    ],
    "chatml": [
        (
            WITH_SYSTEM,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n"
            "A1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n",
        ),
    ],
    "redpajama": [
        (NO_SYSTEM, "<human>: U1\n<bot>: A1\n<human>: U2\n<bot>:"),
        (WITH_SYSTEM, "S\n<human>: U1\n<bot>: A1\n<human>: U2\n<bot>:"),
    ],
    "alpaca": [
        (
            WITH_SYSTEM,
            "S\n\n### Instruction: U1\n\n### Response: A1</s>### Instruction: U2\n\n### Response:",
        ),
        (
            [U1],
            "Below is an instruction that describes a task. Write a response that appropriately "
            "completes the request.\n\n### Instruction: U1\n\n### Response:",
        ),
    ],
    "gemma": [
        (
            NO_SYSTEM,
            "<start_of_turn>user\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
            "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n",
        ),
        # §3.13: the system text opens the first user turn (llama.cpp's expected output)
        (
            WITH_SYSTEM,
            "<start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
            "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n",
        ),
    ],
    "phi3": [
        (
            WITH_SYSTEM,
            "<|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n"
            "<|assistant|>\n",
        ),
    ],
    "instruction": [
        (WITH_SYSTEM, "S\n\nU1\n\nA1\n\nU2"),
        ([Message("user", "Translate to English: Je t’aime.")], "Translate to English: Je t’aime."),
    ],
}

DEFAULT_STOPS = {
    "openassistant": ("<|endoftext|>", "<|prompter|>"),
    "llama2": ("</s>", "[INST]"),
    "llama3": ("<|eot_id|>", "<|end_of_text|>"),
    "mistral": ("</s>", "[INST]"),
    "falcon": ("\nUser:", "<|endoftext|>"),
    "starchat": ("<|end|>", "<|endoftext|>", "<|user|>"),
    "vicuna": ("</s>", "USER:"),
    "zephyr": ("</s>", "<|user|>"),
    "chatml": ("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    "redpajama": ("<human>:", "\n<human>"),
    "alpaca": ("</s>", "### Instruction:"),
    "gemma": ("<end_of_turn>", "<eos>"),
    "phi3": ("<|end|>", "<|endoftext|>", "<|assistant|>", "<|user|>"),
    "instruction": (),
}


def test_every_family_of_the_contract_is_built_in():
    assert set(FAMILIES) == set(FIXTURES) == set(DEFAULT_STOPS)


@pytest.mark.parametrize(
    ("family", "messages", "expected"),
    [(f, m, e) for f, cases in FIXTURES.items() for m, e in cases],
)
def test_family_renders_reference_example(family, messages, expected):
    assert FAMILIES[family].render(messages) == expected


@pytest.mark.parametrize("family", sorted(DEFAULT_STOPS))
def test_default_stops(family):
    assert FAMILIES[family].stop == DEFAULT_STOPS[family]
    assert len(FAMILIES[family].stop) <= 4  # TGI's default max_stop_sequences


@pytest.mark.parametrize("family", ["llama2", "mistral", "falcon", "gemma"])
def test_alternation_is_enforced_where_the_model_requires_it(family):
    for messages in ([U1, U2], [A1, U1], [U1, A1, A1], [U1, S, U2]):
        with pytest.raises(GatewayError) as info:
            FAMILIES[family].render(messages)
        err = info.value
        assert (err.status, err.error_type) == (422, "template_error")
        assert (
            err.message
            == "Template error: Conversation roles must alternate user/assistant/user/assistant/..."
        )


def test_final_assistant_message_is_continued():
    assert FAMILIES["chatml"].render([U1, A1]) == (
        "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1"
    )
    assert FAMILIES["llama2"].render([U1, A1]) == "[INST] U1 [/INST] A1"
    assert (
        FAMILIES["openassistant"].render([U1, A1]) == "<|prompter|>U1<|endoftext|><|assistant|>A1"
    )
    assert FAMILIES["falcon"].render([U1, A1]) == "\n\nUser: U1\n\nAssistant: A1"


def test_developer_and_several_system_messages_merge():
    merged = [Message("developer", "D"), S, U1]
    assert FAMILIES["chatml"].render(merged) == (
        "<|im_start|>system\nD\n\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n"
    )


def test_empty_and_unknown_roles_are_template_errors():
    with pytest.raises(GatewayError, match="must not be empty"):
        FAMILIES["chatml"].render([])
    with pytest.raises(GatewayError, match="Unsupported role 'tool'"):
        FAMILIES["chatml"].render([U1, Message("tool", "42")])
    with pytest.raises(GatewayError, match="template not found"):
        template_for("none").render([U1])


# -- Hugging Face chat_template strings, rendered as transformers renders them ----------------


def jinja(name: str, **tokens) -> JinjaTemplate:
    return JinjaTemplate(JINJA[name], **tokens)


def test_llama2_hub_template_matches_the_family():
    t = jinja("llama-2-chat", bos_token="<s>", eos_token="</s>")
    assert t.render(WITH_SYSTEM) == FAMILIES["llama2"].render(WITH_SYSTEM)
    # and with BOS kept (a tokenizer that adds none), exactly the reference render
    kept = jinja("llama-2-chat", bos_token="<s>", eos_token="</s>", add_bos_token=False)
    assert (
        kept.render(WITH_SYSTEM)
        == "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]"
    )


def test_zephyr_multiline_template_uses_trim_blocks():
    t = jinja("zephyr-7b-beta", eos_token="</s>")
    assert t.render(WITH_SYSTEM) == FIXTURES["zephyr"][0][1]


def test_hub_templates_render_reference_outputs():
    assert (
        jinja("llama-3", bos_token="<|begin_of_text|>").render(WITH_SYSTEM)
        == FIXTURES["llama3"][0][1]
    )
    assert jinja("chatml").render(WITH_SYSTEM) == FIXTURES["chatml"][0][1]
    assert jinja("mistral-v0.1", bos_token="<s>", eos_token="</s>").render(NO_SYSTEM) == (
        "[INST] U1 [/INST]A1</s> [INST] U2 [/INST]"
    )  # §3.4 v0.1 render minus BOS
    assert jinja("falcon-7b-instruct").render(WITH_SYSTEM) == FIXTURES["falcon"][0][1]
    assert jinja("gemma-7b-it", bos_token="<bos>").render(NO_SYSTEM) == FIXTURES["gemma"][0][1]
    assert jinja("command-r-default", bos_token="<BOS_TOKEN>").render(WITH_SYSTEM) == (
        "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>S<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>U1"
        "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>A1<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>U2<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
    )
    assert jinja(
        "deepseek-llm-7b-chat",
        bos_token="<｜begin▁of▁sentence｜>",
        eos_token="<｜end▁of▁sentence｜>",
    ).render(WITH_SYSTEM) == (
        "S\n\nUser: U1\n\nAssistant: A1<｜end▁of▁sentence｜>User: U2\n\nAssistant:"
    )


def test_template_raise_exception_is_a_template_error():
    with pytest.raises(GatewayError) as info:
        jinja("gemma-7b-it", bos_token="<bos>").render(WITH_SYSTEM)
    assert info.value.message == "Template error: System role not supported"
    assert info.value.error_type == "template_error"
    with pytest.raises(GatewayError, match="Conversation roles must alternate"):
        jinja("mistral-v0.1", bos_token="<s>", eos_token="</s>").render(WITH_SYSTEM)


def test_sandbox_blocks_python_internals_and_mutation():
    for source in (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% set x = [] %}{{ x.append(1) }}",
        "{{ messages.pop() }}",
    ):
        with pytest.raises(GatewayError) as info:
            JinjaTemplate(source).render([U1])
        assert info.value.error_type == "template_error"


def test_transformers_helpers_are_available():
    t = JinjaTemplate(
        "{{ messages | tojson }}|{{ strftime_now('%Y') | length }}"
        "{% for m in messages %}{% if loop.first %}{% continue %}{% endif %}{% endfor %}"
    )
    assert t.render([Message("user", "é<>")]) == '[{"role": "user", "content": "é<>"}]|4'
    t = JinjaTemplate("{% generation %}{{ messages[0].content }}{% endgeneration %}")
    assert t.render([U1]) == "U1"
