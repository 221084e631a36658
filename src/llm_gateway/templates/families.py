"""The built-in prompt formats, byte-exact with ``reference/prompt-templates.md`` §3.

Each family renders the prompt for TGI's raw-prompt path (``/generate``, SageMaker's generate
payload), where TGI's tokenizer adds the model's BOS itself: so no string starts with a BOS
token, and inner special tokens (Llama 2's ``</s><s>``) are written as text, which fast
tokenizers map to their ids. A conversation ending with an assistant message is *continued*:
the prompt stops right after that message's text (TGI ≥ 3.0's behaviour).

Where a model has no system role, the family's documented rule places the system text
(Mistral V1 and Gemma: first user message, followed by a blank line). Families whose own
templates insist on alternating user/assistant turns raise TGI's alternation error.

>>> from llm_gateway.templates.messages import Message
>>> FAMILIES["chatml"].render([Message("user", "Hi")])
'<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llm_gateway.templates.messages import (
    Message,
    normalise,
    require_alternation,
    require_no_inner_system,
)

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions."
)
ALPACA_SYSTEM = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request."
)


# (system message, conversation, whether the last message is the assistant's to continue)
Render = Callable[[Message | None, list[Message], bool], str]


@dataclass(frozen=True)
class Family:
    name: str
    stop: tuple[str, ...]
    _render: Render

    def render(self, messages: list[Message]) -> str:
        """The prompt for ``messages`` (continuing a final assistant message if there is one)."""
        system, conversation = normalise(messages)
        final = bool(conversation) and conversation[-1].role == "assistant"
        return self._render(system, conversation, final)


def _turns(
    conversation: list[Message],
    final: bool,
    turn: Callable[[int, Message], str],
    open_assistant: Callable[[Message], str],
    generation: str,
) -> str:
    """Render every turn; then either open the assistant's turn or continue the last one."""
    history = conversation[:-1] if final else conversation
    out = "".join(turn(i, m) for i, m in enumerate(history))
    return out + (open_assistant(conversation[-1]) if final else generation)


def _openassistant(system: Message | None, conv: list[Message], final: bool) -> str:
    # OA "v2-new": an optional <|system|> turn; "v2" models read it as a plain prefix.
    prefix = f"<|system|>{system.content}<|endoftext|>" if system and system.content else ""
    tags = {"user": "<|prompter|>", "assistant": "<|assistant|>", "system": "<|system|>"}
    return prefix + _turns(
        conv,
        final,
        lambda i, m: f"{tags[m.role]}{m.content}<|endoftext|>",
        lambda m: f"<|assistant|>{m.content}",
        "<|assistant|>",
    )


def _llama2(system: Message | None, conv: list[Message], final: bool) -> str:
    require_alternation(conv)

    def turn(i: int, m: Message) -> str:
        if m.role == "assistant":
            return f" {m.content.strip()} </s>"
        content = m.content
        if i == 0 and system is not None:
            content = f"<<SYS>>\n{system.content}\n<</SYS>>\n\n{content}"
        return f"<s>[INST] {content.strip()} [/INST]"

    out = _turns(conv, final, turn, lambda m: f" {m.content.strip()}", "")
    return out.removeprefix("<s>")  # the tokenizer adds the first BOS; inner ones stay


def _llama3(system: Message | None, conv: list[Message], final: bool) -> str:
    def block(m: Message) -> str:
        return f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{m.content.strip()}<|eot_id|>"

    prefix = block(system) if system else ""
    return prefix + _turns(
        conv,
        final,
        lambda i, m: block(m),
        lambda m: f"<|start_header_id|>assistant<|end_header_id|>\n\n{m.content.strip()}",
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    )


def _mistral(system: Message | None, conv: list[Message], final: bool) -> str:
    # Mistral's tokenizer V1 ground truth (mistral-common): "<s> [INST] U1 [/INST] A1</s> [INST] …",
    # the system text prepended to the first user message with a blank line.
    require_alternation(conv)

    def turn(i: int, m: Message) -> str:
        if m.role == "assistant":
            return f" {m.content}</s>"
        content = f"{system.content}\n\n{m.content}" if i == 0 and system else m.content
        return f"{' ' if i else ''}[INST] {content} [/INST]"

    return _turns(conv, final, turn, lambda m: f" {m.content}", "")


def _falcon_text(content: str) -> str:
    return content.strip().replace("\r\n", "\n").replace("\n\n", "\n")


def _falcon(system: Message | None, conv: list[Message], final: bool) -> str:
    require_alternation(conv)
    names = {"user": "User", "assistant": "Assistant"}
    prefix = system.content.strip() if system else ""
    return prefix + _turns(
        conv,
        final,
        lambda i, m: f"\n\n{names[m.role]}: {_falcon_text(m.content)}",
        lambda m: f"\n\nAssistant: {_falcon_text(m.content)}",
        "\n\nAssistant:",
    )


def _tagged(open_tag: Callable[[str], str], end: str, generation: str) -> Render:
    """Formats where every message is ``<tag(role)> content <end>`` (StarChat, Zephyr,
    ChatML, Phi-3); a system message is its own turn."""

    def render(system: Message | None, conv: list[Message], final: bool) -> str:
        prefix = f"{open_tag('system')}{system.content}{end}" if system else ""
        return prefix + _turns(
            conv,
            final,
            lambda i, m: f"{open_tag(m.role)}{m.content}{end}",
            lambda m: f"{open_tag('assistant')}{m.content}",
            generation,
        )

    return render


def _starchat(system: Message | None, conv: list[Message], final: bool) -> str:
    # StarChat always opens with a system turn, empty when there is no system prompt.
    system = system or Message("system", "")
    return _tagged(lambda r: f"<|{r}|>\n", "<|end|>\n", "<|assistant|>\n")(system, conv, final)


def _vicuna(system: Message | None, conv: list[Message], final: bool) -> str:
    # FastChat vicuna_v1.1: "S USER: U1 ASSISTANT: A1</s>USER: U2 ASSISTANT:"
    require_no_inner_system(conv, "vicuna")
    prefix = f"{system.content if system else VICUNA_SYSTEM} "
    return prefix + _turns(
        conv,
        final,
        lambda i, m: f"USER: {m.content} " if m.role == "user" else f"ASSISTANT: {m.content}</s>",
        lambda m: f"ASSISTANT: {m.content}",
        "ASSISTANT:",
    )


def _redpajama(system: Message | None, conv: list[Message], final: bool) -> str:
    # The model card's "<human>: …\n<bot>:"; a system prompt is a plain first line.
    require_no_inner_system(conv, "redpajama")
    prefix = f"{system.content}\n" if system else ""
    names = {"user": "<human>", "assistant": "<bot>"}
    return prefix + _turns(
        conv,
        final,
        lambda i, m: f"{names[m.role]}: {m.content}\n",
        lambda m: f"<bot>: {m.content}",
        "<bot>:",
    )


def _alpaca(system: Message | None, conv: list[Message], final: bool) -> str:
    # FastChat's multi-turn alpaca; the Stanford preamble unless a system prompt replaces it.
    require_no_inner_system(conv, "alpaca")
    prefix = f"{system.content if system else ALPACA_SYSTEM}\n\n"
    return prefix + _turns(
        conv,
        final,
        lambda i, m: (
            f"### Instruction: {m.content}\n\n"
            if m.role == "user"
            else f"### Response: {m.content}</s>"
        ),
        lambda m: f"### Response: {m.content}",
        "### Response:",
    )


def _gemma(system: Message | None, conv: list[Message], final: bool) -> str:
    # Gemma has no system role: its text opens the first user turn, then a blank line.
    require_alternation(conv)

    def content(i: int, m: Message) -> str:
        text = f"{system.content}\n\n{m.content}" if i == 0 and system else m.content
        return text.strip()

    return _turns(
        conv,
        final,
        lambda i, m: (
            f"<start_of_turn>{'model' if m.role == 'assistant' else 'user'}\n"
            f"{content(i, m)}<end_of_turn>\n"
        ),
        lambda m: f"<start_of_turn>model\n{m.content.strip()}",
        "<start_of_turn>model\n",
    )


def _instruction(system: Message | None, conv: list[Message], final: bool) -> str:
    # BLOOMZ / mT0 / FLAN-T5 have no chat format: one plain instruction, turns as paragraphs.
    parts = ([system.content] if system and system.content else []) + [m.content for m in conv]
    return "\n\n".join(parts)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("openassistant", ("<|endoftext|>", "<|prompter|>"), _openassistant),
        Family("llama2", ("</s>", "[INST]"), _llama2),
        Family("llama3", ("<|eot_id|>", "<|end_of_text|>"), _llama3),
        Family("mistral", ("</s>", "[INST]"), _mistral),
        Family("falcon", ("\nUser:", "<|endoftext|>"), _falcon),
        Family("starchat", ("<|end|>", "<|endoftext|>", "<|user|>"), _starchat),
        Family("vicuna", ("</s>", "USER:"), _vicuna),
        Family(
            "zephyr",
            ("</s>", "<|user|>"),
            _tagged(lambda r: f"<|{r}|>\n", "</s>\n", "<|assistant|>\n"),
        ),
        Family(
            "chatml",
            ("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
            _tagged(lambda r: f"<|im_start|>{r}\n", "<|im_end|>\n", "<|im_start|>assistant\n"),
        ),
        Family("redpajama", ("<human>:", "\n<human>"), _redpajama),
        Family("alpaca", ("</s>", "### Instruction:"), _alpaca),
        Family("gemma", ("<end_of_turn>", "<eos>"), _gemma),
        Family(
            "phi3",
            ("<|end|>", "<|endoftext|>", "<|assistant|>", "<|user|>"),
            _tagged(lambda r: f"<|{r}|>\n", "<|end|>\n", "<|assistant|>\n"),
        ),
        Family("instruction", (), _instruction),
    )
}
